package metrics

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

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
	s, err := Listen("127.0.0.1:0", reg, func() error {
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
