package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// fileVersion is the version of the acls.json layout.
const fileVersion = 1

// maxBindingBytes bounds the JSON text of one binding in the file: two names
// of at most MaxNameBytes (escaped, up to 6 bytes a byte) and the rest.
const maxBindingBytes = 2*6*MaxNameBytes + 512

// loadFile reads the bindings stored at path, none if it does not exist. At
// most max bindings, and as many bytes as they may take, are read.
func loadFile(path string, max int) ([]Binding, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acl store: %w", err)
	}
	defer f.Close()
	bs, err := parse(f, max)
	if err != nil {
		return nil, fmt.Errorf("acl store %s is corrupt: %w", path, err)
	}
	return bs, nil
}

// parse decodes the file layout {"version": 1, "bindings": [...]} as a
// stream: the count of bindings is checked as they are read, and every binding
// is checked with Normalize.
func parse(r io.Reader, max int) ([]Binding, error) {
	limit := int64(max)*maxBindingBytes + 4096
	lr := &io.LimitedReader{R: r, N: limit + 1}
	bs, err := decode(json.NewDecoder(lr), max)
	if err != nil && lr.N <= 0 {
		return nil, fmt.Errorf("larger than %d bytes, the most %d bindings take", limit, max)
	}
	return bs, err
}

func decode(dec *json.Decoder, max int) ([]Binding, error) {
	dec.DisallowUnknownFields()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var (
		bs                    []Binding
		version               int
		sawVersion, sawBindgs bool
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t {
		case "version":
			if sawVersion {
				return nil, errors.New("version given twice")
			}
			sawVersion = true
			if err := dec.Decode(&version); err != nil {
				return nil, fmt.Errorf("version: %w", err)
			}
			if version != fileVersion {
				return nil, fmt.Errorf("unknown version %d (this broker reads version %d)", version, fileVersion)
			}
		case "bindings":
			if sawBindgs {
				return nil, errors.New("bindings given twice")
			}
			sawBindgs = true
			if err := expectDelim(dec, '['); err != nil {
				return nil, fmt.Errorf("bindings: %w", err)
			}
			for dec.More() {
				if len(bs) >= max {
					return nil, fmt.Errorf("more than %d bindings (the limit)", max)
				}
				var b Binding
				if err := dec.Decode(&b); err != nil {
					return nil, fmt.Errorf("binding %d: %w", len(bs), err)
				}
				nb, err := Normalize(b)
				if err != nil {
					return nil, fmt.Errorf("binding %d %s: %w", len(bs), b, err)
				}
				bs = append(bs, nb)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, fmt.Errorf("bindings: %w", err)
			}
		default:
			return nil, fmt.Errorf("unknown field %v", t)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if !sawVersion {
		return nil, errors.New("no version")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the end")
	}
	return bs, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return fmt.Errorf("found %v where %v was expected", t, d)
	}
	return nil
}

// encode returns the file's text, one binding a line.
func encode(bs []Binding) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\"version\": %d, \"bindings\": [", fileVersion)
	for i, b := range bs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n  ")
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("acl store: binding %s: %w", b, err)
		}
		buf.Write(j)
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// saveFile replaces the file at path with bs, atomically and durably.
func saveFile(path string, bs []Binding) error {
	data, err := encode(bs)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("acl store: %w", err)
	}
	return nil
}
