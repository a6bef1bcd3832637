package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"
)

func TestParseAndReport(t *testing.T) {
	out := `goos: linux
BenchmarkAppend/batch=15KiB-2   	   84520	     49877 ns/op	 311.51 MB/s	   3009332 records/s
PASS
ok  	github.com/logpipe/logpipe/broker/storage	29.230s
`
	rs := parse("./broker/storage/", strings.NewReader(out))
	if len(rs) != 1 || rs[0].name != "Append/batch=15KiB-2" || len(rs[0].metrics) != 3 || rs[0].metrics[2] != "3009332 records/s" {
		t.Fatalf("%+v", rs)
	}
	var b bytes.Buffer
	writeReport(&b, rs)
	if !strings.Contains(b.String(), "| broker/storage | Append/batch=15KiB-2 | 49877 ns/op, 311.51 MB/s, 3009332 records/s |") || !strings.Contains(b.String(), "cores") {
		t.Fatalf("report:\n%s", b.String())
	}
}

// TestREADMEMatchesResults checks that the README's benchmark table is the one
// `make bench` generated from bench/RESULTS.md, and that the committed plot is drawn
// from it too.
func TestREADMEMatchesResults(t *testing.T) {
	f, err := os.Open("RESULTS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := readReport(f)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), readmeBlock(rep)) {
		t.Fatal("README.md's benchmark table differs from bench/RESULTS.md: run `go run ./bench -render`")
	}
	svg, err := os.ReadFile("RESULTS.svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svg, renderSVG(rep)) {
		t.Fatal("bench/RESULTS.svg is not drawn from bench/RESULTS.md: run `go run ./bench -render`")
	}
}

func TestRenderRoundTripAndSVG(t *testing.T) {
	rs := []result{
		{suite: "./broker/", name: "Produce/x-2", metrics: []string{"609.0 ns/op", "164.19 MB/s", "1642443 records/s"}},
		{suite: "./logagent/", name: "IdleFiles/files=1000-2", metrics: []string{"1000513036 ns/op", "1.332 %core"}},
		{suite: "./internal/e2e/", name: "EndToEndLatency-2", metrics: []string{"1007405566 ns/op", "10000 lines/s", "57.74 p50-ms", "321.1 p99-ms", "400.6 p99.9-ms"}},
	}
	var md bytes.Buffer
	writeReport(&md, rs)
	rep, err := readReport(&md)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.results) != 3 || len(rep.header) != 3 || rep.results[2].suite != "./internal/e2e/" || strings.Join(rep.results[2].metrics, ", ") != strings.Join(rs[2].metrics, ", ") {
		t.Fatalf("round trip: %+v", rep)
	}
	svg := renderSVG(rep)
	d := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if c, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(c))
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"broker Produce/x", "1.64M records/s", "append → indexed, p99", "321.1 ms"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
	if strings.Contains(all, "IdleFiles") {
		t.Error("a benchmark without a rate is drawn as throughput")
	}
	block := readmeBlock(rep)
	out, err := replaceREADMEBlock([]byte("intro\n"+readmeBegin+"\nold\n"+readmeEnd+"\nrest\n"), block)
	if err != nil || string(out) != "intro\n"+block+"\nrest\n" {
		t.Fatalf("replace: %v\n%s", err, out)
	}
	if _, err := replaceREADMEBlock([]byte("no markers"), block); err == nil {
		t.Fatal("a README without markers was accepted")
	}
}
