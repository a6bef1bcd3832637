package logagent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/wait"
)

// rotatingWriter writes numbered lines to a file at a steady rate and rotates it every
// so many lines.
type rotatingWriter struct {
	t      *testing.T
	path   string
	prefix string
	f      *os.File
	n      int
}

func (w *rotatingWriter) write(k int) {
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			w.t.Fatal(err)
		}
		w.f = f
	}
	var b strings.Builder
	for i := 0; i < k; i++ {
		fmt.Fprintf(&b, "%s line %06d payload-payload-payload-payload\n", w.prefix, w.n)
		w.n++
	}
	if _, err := w.f.WriteString(b.String()); err != nil {
		w.t.Fatal(err)
	}
}

// rename rotates as logrotate's create mode does: the writer keeps its descriptor
// for a moment (a last line lands in the renamed file), then opens a new file.
func (w *rotatingWriter) rename(i int) {
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, i)); err != nil {
		w.t.Fatal(err)
	}
	w.write(1)
	w.f.Close()
	w.f = nil
}

// copytruncate rotates as logrotate's copytruncate does, once the agent has read
// what is there: lines written between the agent's last read and the truncation
// exist only in the copy, which no shipper can see.
func (w *rotatingWriter) copytruncate(i int, caughtUp func() bool) time.Duration {
	start := time.Now()
	wait.For(w.t, 10*time.Second, "the agent to read "+w.path+" before its truncation", caughtUp)
	waited := time.Since(start)
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	os.WriteFile(fmt.Sprintf("%s.%d", w.path, i), data, 0o644)
	if err := w.f.Truncate(0); err != nil {
		w.t.Fatal(err)
	}
	return waited
}

// TestAgentFilesCreatedAfterConfig is the new user's scenario, with the shipped
// defaults: the collection config names web.log and app.log before they exist; then
// the application creates them, writes 1,500 lines/s to each and rotates every 4,000
// lines (rename for web.log, copytruncate for app.log). Every line must arrive exactly
// once. A third entry's directory is created after the config.
func TestAgentFilesCreatedAfterConfig(t *testing.T) {
	e := newEnv(t)
	logs := filepath.Join(e.dir, "logs")
	os.MkdirAll(logs, 0o755)
	web := filepath.Join(logs, "web.log")
	app := filepath.Join(logs, "app.log")
	later := filepath.Join(logs, "later", "svc", "*.log")
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "app_log"}, {"path": %q, "topic": "app_log"}]`, web, app, later))
	c := consume(t, e.broker.Addr(), "web_log", "app_log")
	ag := start(t, e.defaults(t.TempDir()))
	wait.For(t, 10*time.Second, "the config to apply", func() bool {
		ag.a.mu.Lock()
		defer ag.a.mu.Unlock()
		return len(ag.a.entries) == 3
	})
	time.Sleep(50 * time.Millisecond) // the entries' first scans

	// A directory created after the config: its file is shipped within milliseconds.
	svc := filepath.Join(logs, "later", "svc")
	created := time.Now()
	os.MkdirAll(svc, 0o755)
	late := filepath.Join(svc, "late.log")
	appendLines(t, late, "late", 0, 10)
	wait.For(t, 10*time.Second, "lines of a file in a directory created later", func() bool { return len(linesOf(c.records(), late)) == 10 })
	t.Logf("file in a new directory: first lines in Kafka %v after the directory was created", time.Since(created).Round(time.Millisecond))

	const perSecond, rotateEvery, total = 1500, 4000, 14000
	ws := &rotatingWriter{t: t, path: web, prefix: "web"}
	wa := &rotatingWriter{t: t, path: app, prefix: "app"}
	caughtUp := func() bool {
		fi, err := os.Stat(app)
		if err != nil {
			return false
		}
		for _, st := range ag.a.Status() {
			if st.Path == app && st.Offset == fi.Size() {
				return true
			}
		}
		return false
	}
	begin := time.Now()
	ws.write(1) // the files appear, each with a first line
	wa.write(1)
	firstLine := time.Now()
	wait.For(t, 10*time.Second, "the first lines of the new files", func() bool {
		r := c.records()
		return len(linesOf(r, web)) > 0 && len(linesOf(r, app)) > 0
	})
	t.Logf("new files: first line in Kafka %v after their creation", time.Since(firstLine).Round(time.Millisecond))
	const tick = 10 * time.Millisecond
	perTick := perSecond * int(tick) / int(time.Second)
	var waited time.Duration
	rotations := 0
	for next := time.Now(); ws.n < total; next = next.Add(tick) {
		time.Sleep(time.Until(next))
		for _, w := range []*rotatingWriter{ws, wa} {
			k := min(perTick, total-w.n)
			if w.n/rotateEvery != (w.n+k)/rotateEvery {
				k = (w.n/rotateEvery+1)*rotateEvery - w.n // up to the rotation point
			}
			w.write(k)
			if w.n%rotateEvery == 0 && w.n < total {
				rotations++
				if w == ws {
					ws.rename(w.n / rotateEvery)
				} else {
					waited += wa.copytruncate(w.n/rotateEvery, caughtUp)
				}
			}
		}
	}
	t.Logf("wrote %d lines to each file in %v with %d rotations; waited %v in all for the agent to catch up before the truncations",
		total, time.Since(begin).Round(time.Millisecond), rotations, waited.Round(time.Millisecond))
	wait.For(t, 30*time.Second, "every line", func() bool {
		r := c.records()
		return len(linesOf(r, web)) >= ws.n && len(linesOf(r, app)) >= wa.n
	})
	time.Sleep(200 * time.Millisecond) // duplicates would show up meanwhile
	recs := c.records()
	for _, w := range []*rotatingWriter{ws, wa} {
		got := linesOf(recs, w.path)
		for i := 0; i < w.n; i++ {
			if k := got[fmt.Sprintf("%s line %06d payload-payload-payload-payload", w.prefix, i)]; k != 1 {
				t.Fatalf("%s: line %d arrived %d times", w.path, i, k)
			}
		}
		if len(got) != w.n {
			t.Fatalf("%s: %d distinct lines, want %d", w.path, len(got), w.n)
		}
	}
	if ws.f != nil {
		ws.f.Close()
	}
	wa.f.Close()
}

// fdCount is the number of descriptors the test process holds.
func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// seriesOf counts the label values of a per-file metric.
func seriesOf(t *testing.T, a *Agent, name string) int {
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestAgentStateStaysBounded rotates a file by rename 100 times and creates and
// deletes 50 files of a glob, with the shipped defaults: every line arrives once, and
// the registry, the descriptors and the per-file metric series stay flat; a deleted
// file's descriptor is closed once it is read.
func TestAgentStateStaysBounded(t *testing.T) {
	e := newEnv(t)
	logs := filepath.Join(e.dir, "logs")
	os.MkdirAll(filepath.Join(logs, "tmp"), 0o755)
	app := filepath.Join(logs, "app.log")
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "app_log"}, {"path": %q, "topic": "app_log"}]`, app, filepath.Join(logs, "tmp", "*.log")))
	c := consume(t, e.broker.Addr(), "app_log")
	ag := start(t, e.defaults(t.TempDir()))

	appendLines(t, app, "rot", 0, 5)
	wait.For(t, 10*time.Second, "the first lines", func() bool { return len(linesOf(c.records(), app)) == 5 })
	fds := fdCount(t)
	regMax, fdMax := 0, 0
	const rotations = 100
	for i := 1; i <= rotations; i++ {
		os.Rename(app, app+".1") // over the previous rotation: that file is deleted
		appendLines(t, app, "rot", 5*i, 5*i+5)
		wait.For(t, 10*time.Second, "lines after a rotation", func() bool { return len(linesOf(c.records(), app)) == 5*i+5 })
		regMax = max(regMax, ag.a.reg.Len())
		fdMax = max(fdMax, fdCount(t))
	}
	wantExactly(t, c.records(), app, "rot", 0, 5*rotations+5)
	wait.For(t, 5*time.Second, "the registry to forget rotated files", func() bool { return ag.a.reg.Len() == 1 })
	t.Logf("%d rename rotations: registry at most %d entries (1 at the end), descriptors %d at the start, at most %d",
		rotations, regMax, fds, fdMax)
	if regMax > 4 || fdMax > fds+4 {
		t.Fatalf("state grew: registry up to %d entries, descriptors from %d up to %d", regMax, fds, fdMax)
	}

	// Files of a glob created and deleted: their series and entries go with them,
	// and no descriptor of a deleted file stays open.
	var tmp []string
	for i := 0; i < 50; i++ {
		p := filepath.Join(logs, "tmp", fmt.Sprintf("job-%02d.log", i))
		appendLines(t, p, "job", 0, 20)
		tmp = append(tmp, p)
	}
	wait.For(t, 10*time.Second, "the jobs' lines", func() bool {
		r := c.records()
		for _, p := range tmp {
			if len(linesOf(r, p)) != 20 {
				return false
			}
		}
		return true
	})
	if n := seriesOf(t, ag.a, "logagent_lines_read_total"); n != 51 {
		t.Fatalf("%d series of lines read, want 51", n)
	}
	deleted := time.Now()
	for _, p := range tmp {
		os.Remove(p)
	}
	wait.For(t, 10*time.Second, "deleted files closed, forgotten and their series removed", func() bool {
		return seriesOf(t, ag.a, "logagent_lines_read_total") == 1 && ag.a.reg.Len() == 1 && fdCount(t) <= fds
	})
	t.Logf("50 deleted files: descriptors closed, registry entries and metric series removed %v after the unlinks", time.Since(deleted).Round(time.Millisecond))
}

// hrec is a consumed record with all its headers.
type hrec struct {
	value   string
	ts      time.Time
	headers map[string]string
}

func consumeHeaders(t *testing.T, addr, topic string, want int) []hrec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []hrec
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := hrec{value: string(r.Value), ts: r.Timestamp, headers: map[string]string{}}
			for _, x := range r.Headers {
				h.headers[x.Key] = string(x.Value)
			}
			out = append(out, h)
		})
	}
	if len(out) < want {
		t.Fatalf("%s: %d records, want %d", topic, len(out), want)
	}
	return out
}

// TestAgentContainerFormatsFieldsRecursive ships, with the shipped defaults, a CRI
// log under a Kubernetes-style containers/ directory and a Docker json-file log (the
// captured samples of logagent/container/testdata), with partial lines joined, the
// stream and the runtime's timestamp kept and the pod, namespace and container named;
// every record of an entry carries its static fields; "**" finds files at any depth,
// in directories created after the config; a file shorter than the fingerprint is
// read at once.
func TestAgentContainerFormatsFieldsRecursive(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "var")
	cdir := filepath.Join(root, "log", "containers")
	ddir := filepath.Join(root, "lib", "docker", "containers", "abc")
	os.MkdirAll(cdir, 0o755)
	os.MkdirAll(ddir, 0o755)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	criPath := filepath.Join(cdir, "checkout-7d9f8b6c5d-x2x9z_shop-prod_checkout-api-"+id+".log")
	dockerPath := filepath.Join(ddir, "abc-json.log")
	deep := filepath.Join(root, "apps")
	e.put(fmt.Sprintf(`[
		{"path": %q, "topic": "k8s_log", "format": "cri", "fields": {"cluster": "eu-1", "env": "prod"}},
		{"path": %q, "topic": "docker_log", "format": "docker"},
		{"path": %q, "topic": "deep_log", "fields": {"service": "checkout"}}]`,
		filepath.Join(cdir, "*.log"), filepath.Join(root, "lib", "docker", "containers", "*", "*-json.log"), filepath.Join(deep, "**", "*.log")))
	start(t, e.defaults(t.TempDir()))
	time.Sleep(50 * time.Millisecond) // the entries' first scans (not needed for correctness)

	cri, _ := os.ReadFile("container/testdata/cri.log")
	docker, _ := os.ReadFile("container/testdata/docker.log")
	os.WriteFile(criPath, cri, 0o644)
	os.WriteFile(dockerPath, docker, 0o644)
	// "**": files at several depths, in directories created after the config; one is
	// a few bytes, far shorter than the fingerprint.
	for _, p := range []string{"a.log", "x/b.log", "x/y/z/c.log"} {
		full := filepath.Join(deep, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte("hi "+p+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(deep, "x", "skip.txt"), []byte("no\n"), 0o644)

	k8s := consumeHeaders(t, e.broker.Addr(), "k8s_log", 5)
	want := []struct{ text, stream, ts string }{
		{`10.1.2.3 - - [27/Nov/2026:21:04:05 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.31"`, "stdout", "2026-11-27T21:04:05.123Z"},
		{"W1127 21:04:05.199999       1 reflector.go:561] watch of *v1.Pod ended with: an error on the server", "stderr", "2026-11-27T21:04:05.2Z"},
		{`{"level":"info","msg":"a long line cut by the runtime at 16 KiB, first piece second piece, last piece"}`, "stdout", "2026-11-27T21:04:06Z"},
		{"", "stdout", "2026-11-27T21:04:07.5Z"},
		{"panic: runtime error: index out of range [3] with length 3", "stderr", "2026-11-27T21:04:08Z"},
	}
	for i, r := range k8s {
		w := want[i]
		wt, _ := time.Parse(time.RFC3339Nano, w.ts)
		h := r.headers
		if r.value != w.text || h["stream"] != w.stream || !r.ts.Equal(wt) || h["event.created"] == "" ||
			h["kubernetes.pod.name"] != "checkout-7d9f8b6c5d-x2x9z" || h["kubernetes.namespace"] != "shop-prod" ||
			h["container.name"] != "checkout-api" || h["container.id"] != id || h["fields.cluster"] != "eu-1" || h["fields.env"] != "prod" {
			t.Fatalf("cri record %d: %q at %v, headers %v", i, r.value, r.ts, h)
		}
	}
	if k8s[2].headers["offset"] != fmt.Sprint(bytes.Index(cri, []byte("2026-11-27T21:04:06.000000001Z"))) {
		t.Fatalf("joined line's offset %s: want its first piece's", k8s[2].headers["offset"])
	}

	dk := consumeHeaders(t, e.broker.Addr(), "docker_log", 4)
	if dk[0].headers["stream"] != "stdout" || dk[1].headers["stream"] != "stderr" || dk[0].ts.Nanosecond()/1e6 != 123 ||
		dk[2].value != `{"level":"info","msg":"a long line split by dockerd at 16 KiB, first piece last piece"}` || dk[3].value != "café ☃ tab\there" {
		t.Fatalf("docker records %+v", dk)
	}
	if _, ok := dk[0].headers["kubernetes.pod.name"]; ok {
		t.Fatal("kubernetes names outside a containers/ directory")
	}

	got := map[string]bool{}
	for _, r := range consumeHeaders(t, e.broker.Addr(), "deep_log", 3) {
		if r.headers["fields.service"] != "checkout" {
			t.Fatalf("record without the entry's fields: %v", r.headers)
		}
		got[r.value] = true
	}
	if len(got) != 3 || !got["hi x/y/z/c.log"] || !got["hi a.log"] {
		t.Fatalf("** matched %v", got)
	}
}
