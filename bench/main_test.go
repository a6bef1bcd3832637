package main

import (
	"bytes"
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
