// loadgen pushes copies of one pprof profile to a hotpath distributor as
// fast as a few workers can, the way the Pyroscope Go SDK sends them
// (POST /ingest, multipart `profile` part), and prints what was acked.
// Each copy gets its own time_nanos, so every push is a distinct profile.
//
//	loadgen -url http://127.0.0.1:4040 -file cpu.pb.gz -copies 1000 -c 4 -d 10s -app bench
//	loadgen ... -n 10000    # exactly n pushes instead of a duration
//	loadgen ... -span 24h -step 10s -services 10 -ago 15m
//	        # a history: every service one profile per step over the span
//	        # that ended -ago before now (services × span/step pushes),
//	        # oldest first
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:4040", "distributor URL")
	file := flag.String("file", "", "pprof file (gzip or plain)")
	copies := flag.Int("copies", 100, "distinct copies to cycle through")
	conc := flag.Int("c", 4, "concurrent workers")
	dur := flag.Duration("d", 10*time.Second, "how long to push (ignored with -n)")
	total := flag.Int64("n", 0, "push exactly this many profiles")
	app := flag.String("app", "loadgen", "application name")
	span := flag.Duration("span", 0, "push a history this long instead of copies")
	step := flag.Duration("step", 10*time.Second, "with -span: time between a service's profiles")
	services := flag.Int("services", 1, "with -span: services <app>-0 .. <app>-N-1")
	ago := flag.Duration("ago", 0, "with -span: how long before now the history ends")
	flag.Parse()

	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	base := time.Now().UnixNano()
	bodies := []body{}
	if *span == 0 {
		bodies = make([]body, *copies)
		for i := range bodies {
			bodies[i] = encode(p, base+int64(i)*1000)
		}
	} else {
		if *services < 1 || *step <= 0 {
			fmt.Fprintln(os.Stderr, "-services must be >= 1 and -step > 0")
			os.Exit(2)
		}
		*total = int64(*services) * int64(*span / *step)
		base -= int64(*span + *ago)
	}
	endpointFor := func(name string) string {
		q := url.Values{}
		q.Set("name", name+"{env=bench}")
		q.Set("spyName", "gospy")
		return *target + "/ingest?" + q.Encode()
	}
	endpoint := endpointFor(*app)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc * 2}, Timeout: 60 * time.Second}

	var ok, failed, next int64
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := p.Copy() // history mode re-times its own copy
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if *total > 0 && i >= *total || *total == 0 && time.Now().After(deadline) {
					return
				}
				var b body
				to := endpoint
				if *span == 0 {
					b = bodies[i%int64(len(bodies))]
				} else {
					svc, slot := i%int64(*services), i/int64(*services)
					b = encode(mine, base+slot*int64(*step)+svc*1000)
					to = endpointFor(fmt.Sprintf("%s-%d", *app, svc))
				}
				resp, err := client.Post(to, b.ct, bytes.NewReader(b.data))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 {
					atomic.AddInt64(&ok, 1)
				} else {
					if atomic.AddInt64(&failed, 1) <= 3 {
						if err != nil {
							fmt.Fprintln(os.Stderr, "push:", err)
						} else {
							fmt.Fprintln(os.Stderr, "push:", resp.Status)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("ok=%d failed=%d seconds=%.2f rate=%.0f/s\n", ok, failed, secs, float64(ok)/secs)
}

type body struct {
	data []byte
	ct   string
}

// encode is p with time_nanos set to ts, as the multipart body the Go SDK
// sends. It changes p.TimeNanos.
func encode(p *profile.Profile, ts int64) body {
	p.TimeNanos = ts
	var pb bytes.Buffer
	p.Write(&pb)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("profile", "profile.pprof")
	fw.Write(pb.Bytes())
	mw.Close()
	return body{mp.Bytes(), mw.FormDataContentType()}
}
