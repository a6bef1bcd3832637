// Package container decodes the log files container runtimes write: CRI (containerd,
// CRI-O, Kubernetes) and Docker's json-file, and reads the pod, namespace and
// container of a Kubernetes /var/log/containers file name.
package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"time"
)

// Piece is one line of a container log: a whole log line, or a piece of a long one
// (Partial) whose continuation follows.
type Piece struct {
	Time    time.Time // the runtime's timestamp of the line
	Stream  string    // stdout or stderr
	Partial bool      // more of this line follows in the next piece
	Text    []byte    // the line's text, without its newline; points into the input or its own buffer
}

// Errors of lines that are not in the expected format.
var (
	ErrCRI    = errors.New("not a CRI log line (<time> <stream> <P|F> <text>)")
	ErrDocker = errors.New(`not a Docker json-file log line ({"log", "stream", "time"})`)
)

// ParseCRI decodes "<RFC 3339 time> <stdout|stderr> <P|F> <text>". The text points
// into line.
func ParseCRI(line []byte) (Piece, error) {
	var p Piece
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return p, ErrCRI
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
	if err != nil {
		return p, ErrCRI
	}
	rest := line[sp+1:]
	switch {
	case bytes.HasPrefix(rest, []byte("stdout ")):
		p.Stream = "stdout"
	case bytes.HasPrefix(rest, []byte("stderr ")):
		p.Stream = "stderr"
	default:
		return p, ErrCRI
	}
	rest = rest[7:]
	if len(rest) == 0 {
		return p, ErrCRI
	}
	// The tag is P or F, possibly followed by further ':'-separated flags.
	tag := rest
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		tag, rest = rest[:i], rest[i+1:]
	} else {
		rest = nil // a final piece with no text: an empty line
	}
	if i := bytes.IndexByte(tag, ':'); i >= 0 {
		tag = tag[:i]
	}
	switch string(tag) {
	case "P":
		p.Partial = true
	case "F":
	default:
		return p, ErrCRI
	}
	p.Time, p.Text = t, rest
	return p, nil
}

type dockerLine struct {
	Log    *string `json:"log"`
	Stream string  `json:"stream"`
	Time   string  `json:"time"`
}

// ParseDocker decodes a json-file line: {"log": "text\n", "stream": "stdout", "time":
// "..."}; a log without its trailing newline is a partial piece (Docker splits lines
// at 16 KiB).
func ParseDocker(line []byte) (Piece, error) {
	var p Piece
	var d dockerLine
	if err := json.Unmarshal(line, &d); err != nil || d.Log == nil {
		return p, ErrDocker
	}
	if d.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, d.Time)
		if err != nil {
			return p, ErrDocker
		}
		p.Time = t
	}
	p.Stream = d.Stream
	text := *d.Log
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
	} else {
		p.Partial = true
	}
	p.Text = []byte(text)
	return p, nil
}

// K8s is what a Kubernetes container log's file name tells.
type K8s struct {
	Pod, Namespace, Container, ContainerID string
}

// k8sName is /var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log.
var k8sName = regexp.MustCompile(`^([a-z0-9][-a-z0-9.]*)_([a-z0-9][-a-z0-9]*)_(.+)-([0-9a-f]{64})\.log$`)

// FromPath reads the pod, namespace and container of a file in a directory named
// "containers" (Kubernetes' /var/log/containers), named as the kubelet names them.
func FromPath(path string) (K8s, bool) {
	if filepath.Base(filepath.Dir(path)) != "containers" {
		return K8s{}, false
	}
	m := k8sName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return K8s{}, false
	}
	return K8s{Pod: m[1], Namespace: m[2], Container: m[3], ContainerID: m[4]}, true
}
