// Package proctest runs logpipe's binaries as processes for tests and benchmarks,
// and reads a process's CPU time and peak memory from /proc, so that a benchmark can
// measure one component apart from the others.
package proctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build builds the commands (names under github.com/logpipe/logpipe/cmd/) into dir,
// in one go build, and returns dir. Every test that runs the binaries builds them
// here.
func Build(tb testing.TB, dir string, cmds ...string) string {
	tb.Helper()
	args := []string{"build", "-o", dir + "/"}
	for _, c := range cmds {
		args = append(args, "github.com/logpipe/logpipe/cmd/"+c)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", strings.Join(cmds, ", "), err, out)
	}
	return dir
}

// FreeAddr returns a free 127.0.0.1 port.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs the binary at path with `-config` an ini file written in dir from conf;
// its output goes to the test's stderr. Stop it with Stop.
func Start(tb testing.TB, dir, name, path, conf string) *exec.Cmd {
	tb.Helper()
	ini := filepath.Join(dir, name+".ini")
	if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(path, "-config", ini)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd
}

// Stop sends SIGTERM and waits, with SIGKILL after 10 s.
func Stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// CPU is the user and system CPU seconds of a running process (/proc/PID/stat).
func CPU(tb testing.TB, pid int) float64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// After the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// PeakRSS is the peak resident set size of a running process, in bytes (VmHWM).
func PeakRSS(tb testing.TB, pid int) float64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	tb.Fatal("no VmHWM in /proc status")
	return 0
}
