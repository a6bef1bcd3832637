package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Child describes one process devrun starts.
type Child struct {
	Name   string   // short name, prefixed to each of its log lines
	Path   string   // executable
	Args   []string // arguments
	Env    []string // extra environment (KEY=value), added to devrun's own
	Dir    string   // working directory; empty = devrun's
	Health string   // URL that answers 200 once the child is ready; empty = ready at once
}

// proc is a started child.
type proc struct {
	Child
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained
	err  error         // the exit status, valid after done
}

// Procs is an ordered set of running children. Stop ends them in reverse order of
// start, so start the ones others depend on first.
type Procs struct {
	out           io.Writer // shared, line-prefixed output
	healthTimeout time.Duration
	stopTimeout   time.Duration

	mu     sync.Mutex
	procs  []*proc
	exited chan string // names of children that exited on their own
}

// NewProcs returns an empty set whose children write their output, line by line and
// prefixed with their names, to out.
func NewProcs(out io.Writer, healthTimeout, stopTimeout time.Duration) *Procs {
	return &Procs{
		out:           &lockedWriter{w: out},
		healthTimeout: healthTimeout,
		stopTimeout:   stopTimeout,
		exited:        make(chan string, 16),
	}
}

// Exited reports the name of a child that ended before Stop was called.
func (ps *Procs) Exited() <-chan string { return ps.exited }

// Start starts c and waits until its health URL answers 200. A child that exits or
// stays unhealthy past the health timeout is an error (and is stopped).
func (ps *Procs) Start(ctx context.Context, c Child) (pid int, err error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	pw := &prefixWriter{w: ps.out, prefix: []byte(fmt.Sprintf("%-12s| ", c.Name))}
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second // do not hang on output a grandchild holds open
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &proc{Child: c, cmd: cmd, done: make(chan struct{})}
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		pw.Flush()
		close(p.done)
		select {
		case ps.exited <- c.Name:
		default:
		}
	}()
	if err := ps.waitHealthy(ctx, p); err != nil {
		ps.stopOne(p)
		return 0, err
	}
	return cmd.Process.Pid, nil
}

func (ps *Procs) waitHealthy(ctx context.Context, p *proc) error {
	if p.Health == "" {
		return nil
	}
	client := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(ps.healthTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := client.Get(p.Health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting: %v", p.Name, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v at %s: %v", p.Name, ps.healthTimeout, p.Health, last)
		}
	}
}

// Stop ends every child, the last started first: SIGTERM, then SIGKILL if it has not
// exited within the stop timeout. It returns the errors of children that did not
// exit cleanly.
func (ps *Procs) Stop() error {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := ps.stopOne(procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (ps *Procs) stopOne(p *proc) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s had exited: %w", p.Name, p.err)
		}
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(ps.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.Name, p.err)
		}
		return nil
	case <-timer.C:
		// The whole group, in case the child started processes of its own.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGTERM; killed", p.Name, ps.stopTimeout)
	}
}

// lockedWriter serialises writes of whole lines from several children.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter writes each complete line with a prefix; a partial line waits for its
// end (or Flush).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (pw *prefixWriter) Write(p []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, p...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte{}, pw.prefix...), pw.buf[:i+1]...)
		if _, err := pw.w.Write(line); err != nil {
			return len(p), err
		}
		pw.buf = pw.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a trailing partial line.
func (pw *prefixWriter) Flush() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if len(pw.buf) > 0 {
		line := append(append(append([]byte{}, pw.prefix...), pw.buf...), '\n')
		_, _ = pw.w.Write(line)
		pw.buf = nil
	}
}
