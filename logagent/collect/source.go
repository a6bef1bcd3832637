package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CacheFile is the name of the cached last good config in the agent's data directory.
const CacheFile = "collect_config.json"

// Source follows one host's collection config in etcd.
type Source struct {
	Client   *clientv3.Client
	Key      string // e.g. /logagent/web-1/collect_config
	CacheDir string // where the last good config is kept
	Log      *slog.Logger
	// Rejected is called with the reason when a value is invalid (for metrics).
	Rejected func(err error)
	// Applied is called after a config is handed to apply (for metrics).
	Applied func()
}

// LoadCache returns the cached last good config, if there is one.
func (s *Source) LoadCache() (Config, bool) {
	data, err := os.ReadFile(filepath.Join(s.CacheDir, CacheFile))
	if err != nil {
		return nil, false
	}
	c, err := Parse(data)
	if err != nil {
		s.Log.Warn("ignoring invalid cached collection config", "file", filepath.Join(s.CacheDir, CacheFile), "err", err)
		return nil, false
	}
	return c, true
}

// Run calls apply with the cached config (if any), then with the key's value from
// etcd and with every valid change after it, until ctx ends. An invalid value is
// logged and skipped: the previous config keeps running. Lost connections, etcd
// restarts and compacted watches are survived by getting the key again and watching
// from there. A deleted key means an empty config.
func (s *Source) Run(ctx context.Context, apply func(Config)) {
	var last []byte
	if c, ok := s.LoadCache(); ok {
		s.Log.Info("running the cached collection config until etcd answers", "entries", len(c))
		apply(c)
	}
	handle := func(value []byte, rev int64) {
		if last != nil && string(value) == string(last) {
			return
		}
		c, err := Parse(value)
		if err != nil {
			s.Log.Error("rejected collection config; the previous one keeps running", "key", s.Key, "revision", rev, "err", err)
			if s.Rejected != nil {
				s.Rejected(err)
			}
			return
		}
		last = append([]byte(nil), value...)
		if err := atomicfile.Write(filepath.Join(s.CacheDir, CacheFile), value); err != nil {
			s.Log.Warn("could not cache the collection config", "err", err)
		}
		s.Log.Info("applying collection config", "key", s.Key, "revision", rev, "entries", len(c))
		apply(c)
		if s.Applied != nil {
			s.Applied()
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := s.getAndWatch(ctx, handle)
		if ctx.Err() != nil {
			return
		}
		s.Log.Warn("etcd watch ended; getting the key again", "key", s.Key, "revision", rev, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// getAndWatch gets the key, then watches it from the next revision until the watch
// fails.
func (s *Source) getAndWatch(ctx context.Context, handle func([]byte, int64)) (int64, error) {
	getCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := s.Client.Get(getCtx, s.Key)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", s.Key, err)
	}
	rev := resp.Header.Revision
	if len(resp.Kvs) == 0 {
		handle([]byte("[]"), rev)
	} else {
		handle(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	}
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	for wr := range s.Client.Watch(wctx, s.Key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return rev, err
		}
		for _, ev := range wr.Events {
			rev = ev.Kv.ModRevision
			if ev.Type == clientv3.EventTypeDelete {
				handle([]byte("[]"), rev)
			} else {
				handle(ev.Kv.Value, rev)
			}
		}
	}
	if ctx.Err() != nil {
		return rev, ctx.Err()
	}
	return rev, errors.New("watch channel closed")
}
