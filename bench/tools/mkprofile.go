// mkprofile writes a copy of a pprof profile cut to about a target gzip
// size by keeping its first samples, so benchmarks can use realistic
// profiles of a chosen size.
//
//	mkprofile -in heap.pb.gz -out heap500k.pb.gz -size 500000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/google/pprof/profile"
)

func gzSize(p *profile.Profile, n int) (int, []byte) {
	q := p.Copy()
	q.Sample = q.Sample[:n]
	// drop the symbols no kept sample refers to
	if m, err := profile.Merge([]*profile.Profile{q}); err == nil {
		q = m
	}
	var b bytes.Buffer
	q.Write(&b)
	return b.Len(), b.Bytes()
}

func main() {
	in := flag.String("in", "", "input pprof")
	out := flag.String("out", "", "output pprof (gzip)")
	size := flag.Int("size", 500000, "target gzip size in bytes")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	p, err := profile.Parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	lo, hi := 1, len(p.Sample)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if n, _ := gzSize(p, mid); n <= *size {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	n, data := gzSize(p, lo)
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("%s: %d samples, %d bytes gzip\n", *out, lo, n)
}
