// gopush profiles itself with runtime/pprof (CPU for a few seconds, then
// the heap) and pushes each profile to a hotpath distributor the way the
// Pyroscope Go SDK does: POST /ingest, multipart with a `profile` part (and
// a `sample_type_config` part for the heap), from/until in nanoseconds.
// Each pushed profile is also written to -out so a test can compare the
// server's answer with `go tool pprof` on the same bytes.
//
//	gopush -url http://127.0.0.1:4040 -app myapp -seconds 2 -out DIR
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"
)

var sink []byte

func hashLoop(d time.Duration) {
	buf := make([]byte, 4096)
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := sha256.Sum256(buf)
		buf[0] = s[0]
	}
}

func sortLoop(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		xs := make([]int, 5000)
		for i := range xs {
			xs[i] = (i * 7919) % 5003
		}
		sort.Ints(xs)
	}
}

func allocLoop(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 1024+i%4096)
	}
}

func push(server, app string, from, until time.Time, profile []byte, stc string) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return err
	}
	fw.Write(profile)
	if stc != "" {
		fw, err = mw.CreateFormFile("sample_type_config", "sample_type_config.json")
		if err != nil {
			return err
		}
		io.WriteString(fw, stc)
	}
	mw.Close()
	q := url.Values{}
	q.Set("name", app+"{env=it,runtime=go}")
	q.Set("from", fmt.Sprint(from.UnixNano()))
	q.Set("until", fmt.Sprint(until.UnixNano()))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	q.Set("units", "samples")
	q.Set("aggregationType", "sum")
	req, err := http.NewRequest("POST", server+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("push: %s: %s", resp.Status, msg)
	}
	return nil
}

func main() {
	server := flag.String("url", "http://127.0.0.1:4040", "distributor URL")
	app := flag.String("app", "gopush", "application name")
	seconds := flag.Float64("seconds", 2, "CPU profile duration")
	out := flag.String("out", ".", "directory for the pushed profiles")
	flag.Parse()

	runtime.MemProfileRate = 4096
	var cpu bytes.Buffer
	from := time.Now()
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d := time.Duration(*seconds * float64(time.Second))
	done := make(chan bool)
	go func() { hashLoop(d); done <- true }()
	sortLoop(d)
	<-done
	allocLoop(20000)
	pprof.StopCPUProfile()
	until := time.Now()

	var heap bytes.Buffer
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stc := `{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}`
	for _, p := range []struct {
		name string
		data []byte
		stc  string
	}{{"cpu.pb.gz", cpu.Bytes(), ""}, {"heap.pb.gz", heap.Bytes(), stc}} {
		if err := os.WriteFile(filepath.Join(*out, p.name), p.data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := push(*server, *app, from, until, p.data, p.stc); err != nil {
			fmt.Fprintln(os.Stderr, p.name, err)
			os.Exit(1)
		}
	}
	fmt.Println("pushed cpu and heap profiles")
}
