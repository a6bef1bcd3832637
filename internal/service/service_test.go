package service

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	f, err := ParseFlags("broker", nil, &out)
	if err != nil || f.Config != "conf/broker.ini" {
		t.Fatalf("defaults: %+v %v", f, err)
	}
	f, err = ParseFlags("logagent", []string{"-config", "/etc/logpipe/logagent.ini", "config", "show"}, &out)
	if err != nil || f.Config != "/etc/logpipe/logagent.ini" || strings.Join(f.Args, " ") != "config show" {
		t.Fatalf("explicit: %+v %v", f, err)
	}
	out.Reset()
	if _, err := ParseFlags("logtransfer", []string{"-version"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(out.String(), "logtransfer ") {
		t.Fatalf("-version: %v %q", err, out.String())
	}
	if _, err := ParseFlags("broker", []string{"-nope"}, &out); err == nil {
		t.Fatal("unknown flag accepted")
	}
}
