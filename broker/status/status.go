// Package status serves the broker's status page: topics with their partitions,
// offsets, sizes and traffic over the last minute, consumer groups with their members
// and lag, and the data directory's disk usage. It renders plain HTML at "/" and the
// same data as JSON at "/status.json".
package status

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logpipe/logpipe/broker/group"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/broker/storage"
)

// Config is what the page reads.
type Config struct {
	Store   *storage.Store
	Traffic func() map[string]server.Traffic // records and bytes per topic since start
	Groups  func() []group.GroupInfo         // nil: no group coordinator
	DataDir string
	Listen  string // the Kafka listener, shown in the header
	Version string
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now (tests set a clock)
}

// Window is how far back the records/s rates look.
const Window = time.Minute

// DiskInterval is how long a measure of the data directory's usage is shown before
// the directory is walked again: requests, however many, cost at most one walk per
// interval, and never two at a time.
const DiskInterval = 5 * time.Second

// Page is the status page; it is an http.Handler for "/" and "/status.json".
type Page struct {
	cfg     Config
	started time.Time

	mu      sync.Mutex
	samples []sample // of Traffic, oldest first, spanning at most Window

	disk diskCache
}

// diskCache is the last measure of the data directory's usage.
type diskCache struct {
	mu      sync.Mutex
	d       Disk
	at      time.Time     // when d was measured; zero: never
	walking chan struct{} // while a walk runs: closed when it ends
	walks   int           // walks started, for tests
}

// sample is the traffic counters at one moment.
type sample struct {
	at      time.Time
	traffic map[string]server.Traffic
}

// New returns the page. Call Sample regularly (Run does, every second) so that the
// rates cover the last minute.
func New(cfg Config) *Page {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Page{cfg: cfg, started: cfg.Now()}
	p.Sample()
	return p
}

// Run samples the traffic every second until stop is closed.
func (p *Page) Run(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.Sample()
		}
	}
}

// Sample records the traffic counters now and forgets samples older than Window
// (keeping one at or before the window's start, to measure from).
func (p *Page) Sample() {
	s := sample{at: p.cfg.Now(), traffic: p.cfg.Traffic()}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, s)
	for len(p.samples) > 2 && !p.samples[1].at.After(s.at.Add(-Window)) {
		p.samples = p.samples[1:]
	}
}

// Status is everything the page shows.
type Status struct {
	Version   string        `json:"version"`
	Listen    string        `json:"listen"`
	StartedAt time.Time     `json:"started_at"`
	Uptime    string        `json:"uptime"`
	Disk      Disk          `json:"disk"`
	Topics    []TopicStatus `json:"topics"`
	Groups    []GroupStatus `json:"groups"`
}

// Disk is the data directory's usage.
type Disk struct {
	Dir       string `json:"dir"`
	UsedBytes int64  `json:"used_bytes"` // all files under Dir
	FreeBytes uint64 `json:"free_bytes"` // on Dir's file system, for unprivileged users
	SizeBytes uint64 `json:"size_bytes"` // of Dir's file system
}

// TopicStatus is one topic.
type TopicStatus struct {
	Name             string            `json:"name"`
	Internal         bool              `json:"internal"`
	Partitions       []PartitionStatus `json:"partitions"`
	SizeBytes        int64             `json:"size_bytes"`
	Records          int64             `json:"records"` // stored: end - start, summed
	RecordsInPerSec  float64           `json:"records_in_per_sec"`
	RecordsOutPerSec float64           `json:"records_out_per_sec"`
}

// PartitionStatus is one partition of a topic.
type PartitionStatus struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	SizeBytes   int64 `json:"size_bytes"`
}

// GroupStatus is one consumer group.
type GroupStatus struct {
	ID         string           `json:"id"`
	State      string           `json:"state"`
	Protocol   string           `json:"protocol"`
	Members    []MemberStatus   `json:"members"`
	Partitions []GroupPartition `json:"partitions"`
	Lag        int64            `json:"lag"`
}

// MemberStatus is one member of a group.
type MemberStatus struct {
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
	Assigned string `json:"assigned"` // "topic: 0,1,2; other: 0"
}

// GroupPartition is a group's position in one partition.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: none
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"` // -1: unknown (nothing committed)
}

// Snapshot gathers the status now.
func (p *Page) Snapshot() Status {
	now := p.cfg.Now()
	st := Status{
		Version:   p.cfg.Version,
		Listen:    p.cfg.Listen,
		StartedAt: p.started.UTC(),
		Uptime:    now.Sub(p.started).Round(time.Second).String(),
		Disk:      p.diskUsage(),
	}
	in, out := p.rates(now)
	ends := map[string][]int64{}
	for _, t := range p.cfg.Store.Topics() {
		ts := TopicStatus{Name: t.Name(), Internal: strings.HasPrefix(t.Name(), "__"), RecordsInPerSec: in[t.Name()], RecordsOutPerSec: out[t.Name()]}
		for _, part := range t.Partitions() {
			ps := PartitionStatus{Partition: part.Index(), StartOffset: part.LogStartOffset(), EndOffset: part.HighWatermark(), SizeBytes: part.Size()}
			ts.Partitions = append(ts.Partitions, ps)
			ts.SizeBytes += ps.SizeBytes
			ts.Records += ps.EndOffset - ps.StartOffset
			ends[t.Name()] = append(ends[t.Name()], ps.EndOffset)
		}
		st.Topics = append(st.Topics, ts)
	}
	slices.SortFunc(st.Topics, func(a, b TopicStatus) int {
		if a.Internal != b.Internal { // user topics first
			if a.Internal {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if p.cfg.Groups != nil {
		for _, g := range p.cfg.Groups() {
			gs := GroupStatus{ID: g.ID, State: g.State, Protocol: g.Protocol}
			for _, m := range g.Members {
				gs.Members = append(gs.Members, MemberStatus{ClientID: m.ClientID, Host: m.Host, Assigned: assigned(m.Assigned)})
			}
			seen := map[string]map[int32]bool{}
			for _, c := range g.Committed {
				gp := GroupPartition{Topic: c.Topic, Partition: c.Partition, Committed: c.Offset, End: -1, Lag: -1}
				if e := ends[c.Topic]; int(c.Partition) < len(e) {
					gp.End = e[c.Partition]
					gp.Lag = max(gp.End-c.Offset, 0)
					gs.Lag += gp.Lag
				}
				gs.Partitions = append(gs.Partitions, gp)
				if seen[c.Topic] == nil {
					seen[c.Topic] = map[int32]bool{}
				}
				seen[c.Topic][c.Partition] = true
			}
			// Partitions a member is assigned but the group never committed: no committed
			// offset and no lag to tell (-1, shown as "-"), as Kafka's tools do.
			for _, m := range g.Members {
				for topic, parts := range m.Assigned {
					for _, p := range parts {
						if seen[topic][p] {
							continue
						}
						gp := GroupPartition{Topic: topic, Partition: p, Committed: -1, End: -1, Lag: -1}
						if e := ends[topic]; int(p) < len(e) {
							gp.End = e[p]
						}
						gs.Partitions = append(gs.Partitions, gp)
					}
				}
			}
			slices.SortFunc(gs.Partitions, func(a, b GroupPartition) int {
				if c := strings.Compare(a.Topic, b.Topic); c != 0 {
					return c
				}
				return int(a.Partition - b.Partition)
			})
			st.Groups = append(st.Groups, gs)
		}
	}
	return st
}

// rates are each topic's records/s in and out, from the oldest sample in the window
// to the counters now.
func (p *Page) rates(now time.Time) (in, out map[string]float64) {
	cur := p.cfg.Traffic()
	p.mu.Lock()
	first := p.samples[0]
	p.mu.Unlock()
	in, out = map[string]float64{}, map[string]float64{}
	secs := now.Sub(first.at).Seconds()
	if secs <= 0 {
		return in, out
	}
	for name, c := range cur {
		old := first.traffic[name]
		in[name] = float64(c.RecordsIn-old.RecordsIn) / secs
		out[name] = float64(c.RecordsOut-old.RecordsOut) / secs
	}
	return in, out
}

func assigned(m map[string][]int32) string {
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	var b strings.Builder
	for i, t := range topics {
		if i > 0 {
			b.WriteString("; ")
		}
		parts := slices.Clone(m[t])
		slices.Sort(parts)
		b.WriteString(t + ": ")
		for j, p := range parts {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(itoa(int64(p)))
		}
	}
	return b.String()
}

// diskUsage is the data directory's usage, measured at most DiskInterval ago. The
// request that finds the measure too old walks the directory; requests that come
// meanwhile show the previous measure, or, before the first one, wait for it.
func (p *Page) diskUsage() Disk {
	c := &p.disk
	c.mu.Lock()
	for {
		if !c.at.IsZero() && (c.walking != nil || p.cfg.Now().Sub(c.at) < DiskInterval) {
			d := c.d
			c.mu.Unlock()
			return d
		}
		if c.walking == nil {
			break
		}
		w := c.walking
		c.mu.Unlock()
		<-w
		c.mu.Lock()
	}
	w := make(chan struct{})
	c.walking = w
	c.walks++
	c.mu.Unlock()
	d := diskUsage(p.cfg.DataDir)
	c.mu.Lock()
	c.d, c.at, c.walking = d, p.cfg.Now(), nil
	c.mu.Unlock()
	close(w)
	return d
}

// diskUsage sums the files under dir and asks the file system for its size.
func diskUsage(dir string) Disk {
	d := Disk{Dir: dir}
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				d.UsedBytes += fi.Size()
			}
		}
		return nil
	})
	var sfs syscall.Statfs_t
	if syscall.Statfs(dir, &sfs) == nil {
		d.FreeBytes = sfs.Bavail * uint64(sfs.Bsize)
		d.SizeBytes = sfs.Blocks * uint64(sfs.Bsize)
	}
	return d
}

// ServeHTTP serves the page at "/" and the JSON at "/status.json"; anything else is
// not found.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTemplate.Execute(w, p.Snapshot()); err != nil {
			p.cfg.Logger.Warn("status page", "err", err)
		}
	case "/status.json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(p.Snapshot())
	default:
		http.NotFound(w, r)
	}
}

//go:embed page.html
var pageFS embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bytes": humanBytes,
	"rate":  humanRate,
	"num":   itoa,
	"off":   offset,
}).ParseFS(pageFS, "page.html"))

// offset prints an offset or lag, or "-" for none (-1).
func offset(n int64) string {
	if n < 0 {
		return "-"
	}
	return itoa(n)
}

func itoa(n int64) string {
	s := []byte{}
	neg := n < 0
	if neg {
		n = -n
	}
	for i := 0; n > 0 || i == 0; i++ {
		if i > 0 && i%3 == 0 {
			s = append(s, ',')
		}
		s = append(s, byte('0'+n%10))
		n /= 10
	}
	if neg {
		s = append(s, '-')
	}
	slices.Reverse(s)
	return string(s)
}

func humanBytes(n any) string {
	var v float64
	switch x := n.(type) {
	case int64:
		v = float64(x)
	case uint64:
		v = float64(x)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return itoa(int64(v)) + " B"
	}
	return strings.TrimSuffix(strings.TrimSuffix(formatFloat(v), "0"), ".") + " " + units[i]
}

func humanRate(v float64) string {
	if v == 0 {
		return "0"
	}
	if v < 10 {
		return formatFloat(v)
	}
	return itoa(int64(v + 0.5))
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
