package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxInFlight bounds the requests of one connection that are decoded but not yet
// answered; the reader stops reading when it is reached (back-pressure).
const maxInFlight = 256

// pending is one response slot, queued in request order. The handler completes it
// exactly once with complete.
type pending struct {
	done      chan struct{}
	completed atomic.Bool
	api       int16
	start     time.Time

	frame []byte      // a complete frame, or
	fetch *fetchFrame // a Fetch response with file slices
	err   error       // close the connection instead of answering
}

func (p *pending) complete() {
	if p.completed.CompareAndSwap(false, true) {
		close(p.done)
	}
}

// fail completes p with an error that closes the connection, unless p is
// already complete (then its response stands).
func (p *pending) fail(err error) {
	if !p.completed.Load() {
		p.frame, p.fetch, p.err = nil, nil, err
		p.complete()
	}
}

func (p *pending) release() {
	if p.fetch != nil {
		p.fetch.release()
	}
}

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	client Client

	ctx    context.Context // cancelled when the connection is closed for good
	cancel context.CancelFunc

	queue chan *pending // responses in request order; the reader is the only sender

	groupJobs chan func() // serial group-request work; started on first use
	workers   sync.WaitGroup

	stopOnce sync.Once
	stopped  chan struct{} // closed by stopReading (server shutdown)
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	host := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return &conn{
		s:       s,
		nc:      nc,
		log:     s.log.With("remote", nc.RemoteAddr().String()),
		client:  Client{Host: host},
		ctx:     ctx,
		cancel:  cancel,
		queue:   make(chan *pending, maxInFlight),
		stopped: make(chan struct{}),
	}
}

// stopReading makes the reader stop after the request it is decoding; responses
// in flight are still written. Used by Server.Close.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stopped)
		c.nc.SetReadDeadline(time.Now())
	})
}

// abort closes the connection at once.
func (c *conn) abort() {
	c.cancel()
	c.nc.Close()
}

// serve runs the connection until it is closed.
func (c *conn) serve() {
	c.s.metrics.connOpened()
	defer c.s.metrics.connClosed()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	select {
	case <-c.stopped:
		// Shutdown: let the writer finish the responses in flight.
	default:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.log.Warn("closing connection", "err", err)
		}
		c.abort()
	}
	close(c.queue)
	if c.groupJobs != nil {
		close(c.groupJobs)
	}
	<-writerDone
	c.abort()
	c.workers.Wait()
}

// readLoop reads, decodes and dispatches requests until an error.
func (c *conn) readLoop() (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic while handling a request", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errors.New("truncated frame size")
			}
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.s.cfg.MaxRequestBytes {
			return fmt.Errorf("request size %d out of range [8, %d]", size, c.s.cfg.MaxRequestBytes)
		}
		frame := getFrame(int(size))
		if _, err := io.ReadFull(br, frame); err != nil {
			return fmt.Errorf("read request of %d bytes: %w", size, err)
		}
		select {
		case <-c.stopped:
			return nil
		default:
		}
		h, req, err := c.s.parseRequest(frame)
		if errors.Is(err, errApiVersionsTooNew) {
			c.respond(h, c.s.apiVersionsTooNew(), time.Now())
			continue
		}
		if err != nil {
			return err
		}
		c.client.ID = h.clientID
		if err := c.dispatch(h, req); err != nil {
			return err
		}
		if h.key == 0 {
			putFrame(frame) // the batches are in the log now
		}
	}
}

// push queues a response slot for the request with header h.
func (c *conn) push(h header) *pending {
	p := &pending{done: make(chan struct{}), api: h.key, start: time.Now()}
	c.queue <- p
	return p
}

// respond queues an already built response.
func (c *conn) respond(h header, resp kmsg.Response, start time.Time) {
	p := &pending{done: make(chan struct{}), api: h.key, start: start, frame: responseFrame(h.corr, resp)}
	p.complete()
	c.queue <- p
}

// goAsync runs fn in a goroutine owned by the connection, completing p; a panic
// closes the connection.
func (c *conn) goAsync(p *pending, fn func(p *pending)) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("panic while handling a request", "api", kmsg.NameForKey(p.api), "panic", r, "stack", string(debug.Stack()))
				p.fail(fmt.Errorf("panic: %v", r))
			}
		}()
		fn(p)
	}()
}

// dispatch routes one decoded request. Requests that may wait are completed in
// other goroutines; the rest are answered here. An error closes the connection.
func (c *conn) dispatch(h header, req kmsg.Request) error {
	s := c.s
	start := time.Now()
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		return c.handleProduce(h, r, start)
	case *kmsg.FetchRequest:
		p := c.push(h)
		c.goAsync(p, func(p *pending) { c.handleFetch(h, r, p) })
		return nil
	case *kmsg.ApiVersionsRequest:
		c.respond(h, s.handleApiVersions(r), start)
	case *kmsg.MetadataRequest:
		c.respond(h, s.handleMetadata(r), start)
	case *kmsg.ListOffsetsRequest:
		c.respond(h, s.handleListOffsets(r), start)
	case *kmsg.FindCoordinatorRequest:
		c.respond(h, s.handleFindCoordinator(r), start)
	case *kmsg.InitProducerIDRequest:
		c.respond(h, s.handleInitProducerID(r), start)
	case *kmsg.CreateTopicsRequest:
		c.respond(h, s.handleCreateTopics(r), start)
	case *kmsg.DeleteTopicsRequest:
		c.respond(h, s.handleDeleteTopics(r), start)
	case *kmsg.CreatePartitionsRequest:
		c.respond(h, s.handleCreatePartitions(r), start)
	case *kmsg.DescribeConfigsRequest:
		c.respond(h, s.handleDescribeConfigs(r), start)
	case *kmsg.DescribeLogDirsRequest:
		c.respond(h, s.handleDescribeLogDirs(r), start)
	default:
		if s.cfg.Groups == nil || !isGroupKey(h.key) {
			return fmt.Errorf("no handler for %s", kmsg.NameForKey(h.key))
		}
		c.handleGroup(h, req)
	}
	return nil
}

// handleGroup runs group requests one at a time, in order, in the connection's
// group worker, so that a JoinGroup waiting for a rebalance holds back only the
// group requests behind it.
func (c *conn) handleGroup(h header, req kmsg.Request) {
	p := c.push(h)
	if c.groupJobs == nil {
		c.groupJobs = make(chan func(), maxInFlight)
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			for job := range c.groupJobs {
				job()
			}
		}()
	}
	client := c.client
	c.groupJobs <- func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("panic in group coordinator", "api", kmsg.NameForKey(h.key), "panic", r, "stack", string(debug.Stack()))
				p.fail(fmt.Errorf("panic: %v", r))
			}
		}()
		resp, err := c.s.cfg.Groups.Handle(c.ctx, client, req)
		switch {
		case err != nil:
			p.err = fmt.Errorf("%s: %w", kmsg.NameForKey(h.key), err)
		case resp == nil:
			p.err = fmt.Errorf("%s: no response", kmsg.NameForKey(h.key))
		default:
			p.frame = responseFrame(h.corr, resp)
		}
		p.complete()
	}
}

// writeLoop writes the responses in request order. After a write error it keeps
// draining the queue (releasing what the responses hold) without writing.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	failed := false
	for p := range c.queue {
		select {
		case <-p.done:
		default:
			if !failed {
				if err := bw.Flush(); err != nil {
					failed = c.writeFailed(err)
				}
			}
			<-p.done
		}
		if !failed {
			if err := c.write(bw, p); err != nil {
				failed = c.writeFailed(err)
			}
		}
		c.s.metrics.request(p.api, time.Since(p.start))
		p.release()
		if !failed && len(c.queue) == 0 {
			if err := bw.Flush(); err != nil {
				failed = c.writeFailed(err)
			}
		}
	}
	if !failed {
		bw.Flush()
	}
}

func (c *conn) writeFailed(err error) bool {
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, errCloseConn) {
		c.log.Debug("write failed; closing connection", "err", err)
	}
	c.abort()
	return true
}

var errCloseConn = errors.New("close connection")

func (c *conn) write(bw *bufio.Writer, p *pending) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic while writing a response", "api", kmsg.NameForKey(p.api), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	switch {
	case p.err != nil:
		c.log.Warn("closing connection", "api", kmsg.NameForKey(p.api), "err", p.err)
		return errCloseConn
	case p.fetch != nil:
		return p.fetch.writeTo(bw, c.nc)
	case p.frame != nil:
		_, err := bw.Write(p.frame)
		return err
	}
	return errors.New("response slot completed without a response")
}
