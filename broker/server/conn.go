package server

import (
	"bufio"
	"context"
	"crypto/tls"
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

	"github.com/logpipe/logpipe/broker/acl"
	"github.com/logpipe/logpipe/broker/sasl"
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

	held claim // request bytes held until the response is written

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
	lst    listenerInfo
	log    *slog.Logger
	client Client

	// Who the connection is: Anonymous until a client certificate or SASL says
	// otherwise. Only the reader goroutine changes these.
	principal     string
	host          string         // the remote IP, as ACLs name hosts
	authenticated bool           // SASL done (SASL listeners)
	exchange      *sasl.Exchange // the SASL exchange in progress

	ctx    context.Context // cancelled when the connection is closed for good
	cancel context.CancelFunc

	queue chan *pending // responses in request order; the reader is the only sender

	groupJobs chan func() // serial group-request work; started on first use
	workers   sync.WaitGroup

	stopOnce sync.Once
	stopped  chan struct{} // closed by stopReading (server shutdown)

	// cur is what the request being read or dispatched holds of a budget; the
	// reader hands it to the request's response slot, or releases it after
	// dispatch. queued is what all of the connection's requests hold; the
	// reader waits while it is at maxConnQueuedBytes, woken by released.
	cur      claim
	queued   atomic.Int64
	released chan struct{}
}

// maxConnQueuedBytes bounds the request bytes one connection may hold at once
// (pipelined requests awaiting their responses), so that no single client can
// take a whole budget; one request larger than this is still served, alone.
const maxConnQueuedBytes = 16 << 20

// claim is an amount held of one of the server's budgets.
type claim struct {
	pool *budget
	n    int64
}

func newConn(s *Server, nc net.Conn, lst listenerInfo) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	host := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return &conn{
		s:         s,
		nc:        nc,
		lst:       lst,
		principal: Anonymous,
		host:      acl.HostOf(nc.RemoteAddr()),
		log:       s.log.With("remote", nc.RemoteAddr().String()),
		client:    Client{Host: host},
		ctx:       ctx,
		cancel:    cancel,
		queue:     make(chan *pending, maxInFlight),
		stopped:   make(chan struct{}),
		released:  make(chan struct{}, 1),
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
	var err error
	if tc, ok := c.nc.(*tls.Conn); ok {
		err = c.handshakeTLS(tc)
	}
	if err == nil {
		err = c.readLoop()
	}
	select {
	case <-c.stopped:
		// Shutdown: let the writer finish the responses in flight.
	default:
		if errors.Is(err, errCloseAfterResponse) {
			break // the writer sends the last response, then the connection closes
		}
		switch {
		case errors.Is(err, errIdle):
			c.s.metrics.limitHit("idle_timeout")
			c.log.Debug("closing idle connection", "idle_timeout", c.s.cfg.IdleTimeout)
		case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
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
		c.releaseCost()
	}()
	br := bufio.NewReaderSize(c.nc, 16<<10)
	for {
		if err := c.waitQueued(); err != nil {
			return err
		}
		frame, err := c.readFrame(br)
		if err != nil {
			return err
		}
		h, req, err := c.s.parseRequest(frame)
		if errors.Is(err, errApiVersionsTooNew) {
			c.respond(h, c.s.apiVersionsTooNew(), time.Now())
			c.releaseCost()
			continue
		}
		if err != nil {
			return err
		}
		if err := c.checkAuthenticated(h.key); err != nil {
			return err
		}
		c.client.ID = h.clientID
		if err := c.dispatch(h, req); err != nil {
			return err
		}
		c.releaseCost()
		if h.key == 0 {
			putFrame(frame) // the batches are in the log now
		}
	}
}

// errIdle ends a connection that sent no request for IdleTimeout.
var errIdle = errors.New("idle")

// readFrame reads the next request frame, without its size prefix. It bounds
// what the frame may cost before reading it: the size must be within the limit
// for its API, the frame's bytes are claimed from the server's request budget
// (waiting while it is spent), and the buffer grows only as bytes arrive. The
// whole frame must arrive within RequestTimeout of its first byte; a connection
// with nothing to say is closed after IdleTimeout.
func (c *conn) readFrame(br *bufio.Reader) ([]byte, error) {
	cfg := &c.s.cfg
	if err := c.setReadDeadline(cfg.IdleTimeout); err != nil {
		return nil, err
	}
	var head [6]byte // size, then the API key
	if _, err := io.ReadFull(br, head[:1]); err != nil {
		if isTimeout(err) {
			return nil, errIdle
		}
		return nil, err
	}
	if err := c.setReadDeadline(cfg.RequestTimeout); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(br, head[1:4]); err != nil {
		return nil, c.frameErr(err, "request size", 4)
	}
	size := int64(int32(binary.BigEndian.Uint32(head[:4])))
	if size < 8 || size > int64(cfg.MaxRequestBytes) {
		c.s.metrics.limitHit("request_bytes")
		return nil, fmt.Errorf("request of %d bytes, outside [8, %d] (max_request_bytes)", size, cfg.MaxRequestBytes)
	}
	if _, err := io.ReadFull(br, head[4:]); err != nil {
		return nil, c.frameErr(err, "request header", size)
	}
	// Only Produce carries records; every other request is held to the smaller
	// limit, since decoding its arrays costs a few times its size, and draws on
	// a budget of its own, so that a crowd of parked Fetches cannot starve
	// producers, nor stalled producers everyone else.
	c.cur.pool = c.s.produceBudget
	if key := int16(binary.BigEndian.Uint16(head[4:])); key != 0 {
		if size > int64(cfg.MaxOtherRequestBytes) {
			c.s.metrics.limitHit("request_bytes")
			return nil, fmt.Errorf("%s request of %d bytes, above %d (max_other_request_bytes)", kmsg.NameForKey(key), size, cfg.MaxOtherRequestBytes)
		}
		c.cur.pool = c.s.otherBudget
	}
	// The buffer starts with what is likely already here and at most doubles at
	// a time, so memory follows the bytes that actually arrived, and each growth
	// is claimed from the server's budget first: a sender that declares a large
	// request and stalls holds only what it sent, and only until RequestTimeout.
	first := min(size, 64<<10)
	if err := c.claim(first); err != nil {
		return nil, err
	}
	frame := getFrame(int(first))
	copy(frame, head[4:])
	got := int64(2)
	for got < size {
		if got == int64(len(frame)) {
			n := min(size, 2*got)
			if err := c.claim(n - got); err != nil {
				putFrame(frame)
				return nil, err
			}
			bigger := getFrame(int(n))
			copy(bigger, frame)
			putFrame(frame)
			frame = bigger
		}
		n, err := br.Read(frame[got:])
		got += int64(n)
		if err != nil && got < size {
			return nil, c.frameErr(err, "request", size)
		}
	}
	select {
	case <-c.stopped:
		return nil, io.EOF
	default:
	}
	return frame, nil
}

// setReadDeadline arms the read deadline, unless the server is stopping (then
// stopReading's deadline in the past must stand).
func (c *conn) setReadDeadline(d time.Duration) error {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	c.nc.SetReadDeadline(t)
	select {
	case <-c.stopped:
		c.nc.SetReadDeadline(time.Now())
		return io.EOF
	default:
		return nil
	}
}

func (c *conn) frameErr(err error, what string, size int64) error {
	select {
	case <-c.stopped:
		return io.EOF
	default:
	}
	if isTimeout(err) {
		c.s.metrics.limitHit("request_timeout")
		return fmt.Errorf("%s of %d bytes not received within request_timeout (%s)", what, size, c.s.cfg.RequestTimeout)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s of %d bytes: %w", what, size, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// claim takes n more bytes of the current request's budget for the request
// being read. It waits while others hold the budget, at most RequestTimeout.
func (c *conn) claim(n int64) error {
	pool := c.cur.pool
	n = min(n, pool.total-c.cur.n) // one request alone may use the whole budget
	if n <= 0 {
		return nil
	}
	if !pool.tryAcquire(n) {
		c.s.metrics.limitHit("queued_request_bytes")
		t := time.NewTimer(c.s.cfg.RequestTimeout)
		defer t.Stop()
		switch pool.acquire(n, c.stopped, c.ctx.Done(), t.C) {
		case stopped:
			return io.EOF
		case timedOut:
			return fmt.Errorf("request budget (queued_max_request_bytes = %d) still spent after request_timeout", pool.total)
		}
	}
	c.cur.n += n
	c.queued.Add(n)
	return nil
}

// releaseCost returns what the current request still holds.
func (c *conn) releaseCost() {
	c.release(c.cur)
	c.cur = claim{}
}

// takeCost hands the current request's claim to its response slot.
func (c *conn) takeCost(p *pending) {
	p.held, c.cur = c.cur, claim{}
}

// release gives h back to its budget and wakes the reader if it waits for the
// connection's own requests.
func (c *conn) release(h claim) {
	if h.n <= 0 {
		return
	}
	h.pool.release(h.n)
	c.queued.Add(-h.n)
	select {
	case c.released <- struct{}{}:
	default:
	}
}

// waitQueued waits while the connection's requests hold maxConnQueuedBytes.
func (c *conn) waitQueued() error {
	for c.queued.Load() >= maxConnQueuedBytes {
		c.s.metrics.limitHit("conn_queued_bytes")
		select {
		case <-c.released:
		case <-c.stopped:
			return io.EOF
		case <-c.ctx.Done():
			return io.EOF
		}
	}
	return nil
}

// push queues a response slot for the request with header h.
func (c *conn) push(h header) *pending {
	p := &pending{done: make(chan struct{}), api: h.key, start: time.Now()}
	c.takeCost(p)
	c.queue <- p
	return p
}

// respond queues an already built response.
func (c *conn) respond(h header, resp kmsg.Response, start time.Time) {
	p := &pending{done: make(chan struct{}), api: h.key, start: start, frame: responseFrame(h.corr, resp)}
	p.complete()
	c.takeCost(p)
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
	deny, complete := c.screen(req)
	if deny != nil {
		c.respond(h, deny, start)
		return nil
	}
	reply := func(resp kmsg.Response) {
		if complete != nil {
			complete(resp)
		}
		c.respond(h, resp, start)
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		return c.handleProduce(h, r, start)
	case *kmsg.FetchRequest:
		p := c.push(h)
		c.goAsync(p, func(p *pending) { c.handleFetch(h, r, p) })
		return nil
	case *kmsg.ApiVersionsRequest:
		reply(s.handleApiVersions(r))
	case *kmsg.SASLHandshakeRequest:
		reply(c.handleSaslHandshake(r))
	case *kmsg.SASLAuthenticateRequest:
		resp, err := c.handleSaslAuthenticate(r)
		reply(resp)
		return err
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		reply(s.handleDescribeUserSCRAMs(r))
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		reply(s.handleAlterUserSCRAMs(r))
	case *kmsg.CreateACLsRequest, *kmsg.DescribeACLsRequest, *kmsg.DeleteACLsRequest:
		reply(c.handleACLs(req))
	case *kmsg.MetadataRequest:
		reply(c.handleMetadata(r))
	case *kmsg.ListOffsetsRequest:
		reply(s.handleListOffsets(r))
	case *kmsg.FindCoordinatorRequest:
		reply(s.handleFindCoordinator(r, c.lst))
	case *kmsg.InitProducerIDRequest:
		reply(s.handleInitProducerID(r))
	case *kmsg.CreateTopicsRequest:
		reply(s.handleCreateTopics(r))
	case *kmsg.DeleteTopicsRequest:
		reply(s.handleDeleteTopics(r))
	case *kmsg.CreatePartitionsRequest:
		reply(s.handleCreatePartitions(r))
	case *kmsg.DescribeConfigsRequest:
		reply(s.handleDescribeConfigs(r))
	case *kmsg.DescribeLogDirsRequest:
		reply(s.handleDescribeLogDirs(r))
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
	deny, complete := c.screenGroup(req)
	if deny != nil {
		deny.SetVersion(req.GetVersion())
		c.respond(h, deny, time.Now())
		return
	}
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
			if complete != nil {
				complete(resp)
			}
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
				c.setWriteDeadline()
				if err := bw.Flush(); err != nil {
					failed = c.writeFailed(err)
				}
			}
			<-p.done
		}
		if !failed {
			c.setWriteDeadline()
			if err := c.write(bw, p); err != nil {
				failed = c.writeFailed(err)
			}
		}
		c.s.metrics.request(p.api, time.Since(p.start))
		p.release()
		c.release(p.held)
		p.held = claim{}
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

// setWriteDeadline gives the next write WriteTimeout to complete: a client that
// stops reading loses its connection instead of holding its responses forever.
func (c *conn) setWriteDeadline() {
	if d := c.s.cfg.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
}

func (c *conn) writeFailed(err error) bool {
	if isTimeout(err) {
		c.s.metrics.limitHit("write_timeout")
		c.log.Warn("client did not read its responses within write_timeout; closing connection", "write_timeout", c.s.cfg.WriteTimeout)
	}
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
