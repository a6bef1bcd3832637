package logtransfer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/internal/wait"
)

// TestTransferSIGKILL kills the transfer binary with SIGKILL while it indexes, three
// times, and restarts it: every record ends up exactly one document.
func TestTransferSIGKILL(t *testing.T) {
	testSIGKILL(t, estest.Elasticsearch7, "index")
}

// TestTransferSIGKILLDataStream is TestTransferSIGKILL into Elasticsearch 8 data
// streams: re-delivered records are answered 409 and count as indexed.
func TestTransferSIGKILLDataStream(t *testing.T) {
	testSIGKILL(t, estest.Elasticsearch8, "data_stream")
}

func testSIGKILL(t *testing.T, f estest.Flavor, mode string) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startFlavor(t, f)
	bin := filepath.Join(proctest.Build(t, t.TempDir(), "logtransfer"), "logtransfer")
	ini := filepath.Join(t.TempDir(), "logtransfer.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf(`[kafka]
brokers = %s
topics = web_log
session_timeout = 6s
[output]
bulk_actions = 500
flush_interval = 20ms
[es]
urls = %s
mode = %s
[metrics]
listen =
[logging]
level = warn
`, b.Addr(), es.URL(), mode)), 0o644)
	const n = 30000
	produce(t, b.Addr(), "web_log", 0, n)
	for kill := 0; kill < 3; kill++ {
		cmd := exec.Command(bin, "-config", ini)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := es.Indexed.Load() + es.Conflicts.Load()
		wait.For(t, 60*time.Second, "indexing progress", func() bool { return es.Indexed.Load()+es.Conflicts.Load() > before+2000 })
		cmd.Process.Kill()
		cmd.Wait()
	}
	cmd := exec.Command(bin, "-config", ini)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	wait.For(t, 90*time.Second, "every document after three kills", func() bool { return es.Count("*") >= n })
	fence(t, b.Addr(), "web_log", 6, es)
	if mode == "data_stream" {
		checkDocsIn(t, es, "logs-web_log-default", n, inStream)
	} else {
		checkDocs(t, es, n)
	}
	t.Logf("%s %s: %d records, 3 SIGKILLs: %d documents, %d items indexed (%d re-indexed under the same _id, %d answered 409)",
		f, mode, n, es.Count("*"), es.Indexed.Load(), es.Overwrites.Load(), es.Conflicts.Load())
}
