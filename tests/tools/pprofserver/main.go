// pprofserver is a Go program that serves net/http/pprof and keeps itself
// busy, for the pull-mode (hotpath-scraper) tests: a CPU loop in
// hotpathScrapeBurn, steady allocations in hotpathScrapeAlloc, and mutex
// and block contention. It prints "listening <addr>" once it listens.
//
//	go run tests/tools/pprofserver/main.go -addr 127.0.0.1:0
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"
)

var sink [][]byte

//go:noinline
func hotpathScrapeBurn(n int) uint64 {
	var x uint64 = 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func hotpathScrapeAlloc() {
	b := make([]byte, 64<<10)
	sink = append(sink, b)
	if len(sink) > 64 {
		sink = sink[1:]
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	var mu sync.Mutex
	for w := 0; w < 2; w++ {
		go func() {
			for {
				mu.Lock()
				hotpathScrapeBurn(200000)
				mu.Unlock()
				hotpathScrapeAlloc()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	http.Serve(ln, nil)
}
