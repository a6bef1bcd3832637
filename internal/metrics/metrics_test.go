package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "logpipe_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var unhealthy atomic.Bool
	s, err := Listen(DefaultConfig("127.0.0.1:0"), reg, func() error {
		if unhealthy.Load() {
			return errors.New("storage offline")
		}
		return nil
	}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "logpipe_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz healthy: %d", code)
	}
	unhealthy.Store(true)
	if code, body := get(t, base+"/healthz"); code != 503 || !strings.Contains(body, "storage offline") {
		t.Fatalf("/healthz unhealthy: %d %q", code, body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func serve(t *testing.T, c Config) *Server {
	t.Helper()
	s, err := Listen(c, NewRegistry(), nil, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, s *Server) string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close(); <-done })
	return s.Addr()
}

func TestPprofOffByDefault(t *testing.T) {
	addr := start(t, serve(t, DefaultConfig("127.0.0.1:0")))
	if code, _ := get(t, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without pprof = true: %d", code)
	}
	c := DefaultConfig("127.0.0.1:0")
	c.Pprof = true
	addr = start(t, serve(t, c))
	if code, body := get(t, "http://"+addr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ with pprof = true: %d", code)
	}
	// A profile of pprof's default length (30 s) fits the server's write timeout.
	if s := serve(t, c); s.srv.WriteTimeout <= 30*time.Second {
		t.Fatalf("write timeout %v refuses pprof's default 30 s profile", s.srv.WriteTimeout)
	} else {
		s.ln.Close()
	}
}

func TestDefaultBounds(t *testing.T) {
	s := serve(t, Config{Listen: "127.0.0.1:0"}) // zero values: the defaults
	defer s.ln.Close()
	if s.srv.ReadHeaderTimeout != DefaultReadTimeout || s.srv.ReadTimeout != DefaultReadTimeout || s.srv.WriteTimeout != DefaultWriteTimeout ||
		s.srv.IdleTimeout != DefaultIdleTimeout || s.srv.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("bounds %+v", s.srv)
	}
}

// Hostile clients: one that never finishes its headers, one that sends huge headers,
// one that never reads its response, one that idles. Each costs a bounded time, and
// an honest scrape keeps working meanwhile.
func TestHostileClients(t *testing.T) {
	c := DefaultConfig("127.0.0.1:0")
	c.Pprof = true // the server's own write timeout is then long: handlers must bound theirs
	c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	s := serve(t, c)
	wrote := make(chan error, 1)
	s.Handle("GET /big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 4096; i++ { // 256 MiB: far more than socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}))
	addr := start(t, s)
	closedWithin := func(what string, conn net.Conn, d time.Duration) {
		t.Helper()
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, conn)
		if took := time.Since(start); took > d {
			t.Fatalf("%s: connection open %v, want at most %v", what, took, d)
		} else {
			t.Logf("%s: closed after %v", what, took.Round(time.Millisecond))
		}
	}
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	slow := dial()
	fmt.Fprintf(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // and never the end of the headers
	closedWithin("unfinished headers", slow, 2*time.Second)

	big := dial()
	fmt.Fprintf(big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 2*DefaultMaxHeaderBytes))
	big.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(big).ReadString('\n'); !strings.Contains(line, "431") {
		t.Fatalf("huge headers: %q", line)
	}

	idle := dial()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	closedWithin("kept alive and idle", idle, 2*time.Second)

	nonReader := dial()
	fmt.Fprintf(nonReader, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never reads
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("256 MiB written to a client that reads nothing")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler is still writing to a client that reads nothing")
	}

	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("honest request: %d", code)
	}
}
