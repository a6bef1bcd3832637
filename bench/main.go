// Command bench runs the benchmark suite of every component (`make bench`), prints one
// table and writes it, with the date, the machine and the Go version, to
// bench/RESULTS.md. From that file it then draws bench/RESULTS.svg (throughput and
// end-to-end latency) and rewrites the README's benchmark table. With -render it only
// does the second step, from the RESULTS.md already there.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// suite is one `go test -bench` run.
type suite struct {
	pkg, bench, benchtime string
	what                  string
}

var suites = []suite{
	{"./broker/storage/", ".", "2s", "storage engine: append (with and without fsync), read"},
	{"./broker/", "^Produce$|^Fetch$", "2000000x", "broker: produce and fetch with kgo and sarama, next to kfake"},
	{"./broker/", "ProduceUnderFlood|ProduceSASLSSL", "2000000x", "broker: produce under a hostile flood, and over SASL_SSL, as ratios"},
	{"./broker/", "IdleConnections", "1x", "broker: resident memory of 5,000 idle connections"},
	{"./broker/group/", "CommitLatency", "2000x", "group coordinator: offset commit latency"},
	{"./broker/group/", "Rebalance", "3x", "group coordinator: time to rebalance"},
	{"./broker/", "Stabilize", "3x", "group coordinator: time for a kgo group to stabilise"},
	{"./logagent/", "AgentProcess", "2000000x", "agent: file to broker, the agent's own process measured"},
	{"./logagent/", "AgentIdle", "65x", "agent: CPU of idle tailed files, the agent's own process (65 s measured: one round of the 1-minute safety polls)"},
	{"./logagent/", "NewFileFirstLine|FirstLineAfterQuiet", "10x", "agent: a new file's first line, and the first line after a quiet spell, to Kafka's acknowledgement"},
	{"./logtransfer/...", ".", "1000000x", "transfer: broker to a fast Elasticsearch stand-in"},
	{"./internal/e2e/", "EndToEndLatency", "10x", "whole pipeline: line appended to document indexed at 10,000 lines/s"},
}

// result is one benchmark line.
type result struct {
	suite   string
	name    string
	metrics []string // "value unit" pairs as go test prints them
}

func main() {
	out := flag.String("out", "bench/RESULTS.md", "where to write the results")
	plot := flag.String("plot", "bench/RESULTS.svg", "where to draw the plot")
	readme := flag.String("readme", "README.md", "the README whose benchmark table is rewritten; empty = none")
	only := flag.String("only", "", "run only suites whose package contains this")
	renderOnly := flag.Bool("render", false, "run nothing: draw the plot and the README table from -out")
	flag.Parse()
	if !*renderOnly {
		// With -only, the rows of the suites not run are kept from the last report.
		var previous []result
		if *only != "" {
			if f, err := os.Open(*out); err == nil {
				rep, _ := readReport(f)
				f.Close()
				previous = rep.results
			}
		}
		var results []result
		for _, s := range suites {
			if *only != "" && !strings.Contains(s.pkg, *only) {
				for _, r := range previous {
					if matchesSuite(r, s) {
						results = append(results, r)
					}
				}
				continue
			}
			fmt.Fprintf(os.Stderr, "== %s (%s)\n", s.pkg, s.what)
			rs, err := run(s)
			if err != nil {
				fmt.Fprintf(os.Stderr, "   %v\n", err)
			}
			results = append(results, rs...)
		}
		var md bytes.Buffer
		writeReport(&md, results)
		os.Stdout.Write(md.Bytes())
		if err := os.WriteFile(*out, md.Bytes(), 0o644); err != nil {
			fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	}
	if err := render(*out, *plot, *readme); err != nil {
		fatal(err)
	}
}

// matchesSuite tells whether a row of an earlier report came from suite s (several
// suites share a package and differ by their -bench pattern).
func matchesSuite(r result, s suite) bool {
	if strings.TrimSuffix(r.suite, "...") != strings.TrimSuffix(s.pkg, "...") && r.suite != s.pkg {
		return false
	}
	re, err := regexp.Compile(s.bench)
	return err == nil && re.MatchString(strings.SplitN(r.name, "/", 2)[0])
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// render draws the plot and rewrites the README's table from the report at results.
func render(results, plot, readme string) error {
	f, err := os.Open(results)
	if err != nil {
		return err
	}
	rep, err := readReport(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", results, err)
	}
	if err := os.WriteFile(plot, renderSVG(rep), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", plot)
	if readme == "" {
		return nil
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	updated, err := replaceREADMEBlock(old, readmeBlock(rep))
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	if err := os.WriteFile(readme, updated, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "rewrote the benchmark table in %s\n", readme)
	return nil
}

func run(s suite) ([]result, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", s.bench, "-benchtime", s.benchtime, "-timeout", "30m", s.pkg)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rs := parse(s.pkg, io.TeeReader(stdout, os.Stderr))
	if err := cmd.Wait(); err != nil {
		return rs, fmt.Errorf("%s: %w", s.pkg, err)
	}
	return rs, nil
}

// parse reads `go test -bench` output: "BenchmarkName-2  N  1234 ns/op  5.6 unit ...".
func parse(pkg string, r io.Reader) []result {
	var rs []result
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		res := result{suite: pkg, name: strings.TrimPrefix(f[0], "Benchmark")}
		for i := 2; i+1 < len(f); i += 2 {
			res.metrics = append(res.metrics, f[i]+" "+f[i+1])
		}
		rs = append(rs, res)
	}
	return rs
}

func writeReport(w io.Writer, rs []result) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# logpipe benchmark results\n\n")
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s, %d cores, %s memory, %s\n", host, runtime.NumCPU(), memTotal(), runtime.GOARCH)
	fmt.Fprintf(w, "- go: %s\n\n", runtime.Version())
	fmt.Fprintf(w, "| package | benchmark | results |\n|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s |\n", strings.Trim(r.suite, "./"), r.name, strings.Join(r.metrics, ", "))
	}
}

// memTotal reads the machine's memory from /proc/meminfo.
func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}
