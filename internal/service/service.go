// Package service holds the start-up every logpipe binary shares: the -config and
// -version flags and a context that ends on SIGTERM or SIGINT.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/logpipe/logpipe/internal/version"
)

// Flags are the command-line flags every binary takes.
type Flags struct {
	Config string // path of the ini file
	Args   []string
}

// ParseFlags parses args (without the program name) for the binary name, whose
// default config file is conf/<name>.ini. It reports flag.ErrHelp after printing the
// version when -version is given.
func ParseFlags(name string, args []string, out io.Writer) (Flags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	var f Flags
	fs.StringVar(&f.Config, "config", "conf/"+name+".ini", "configuration `file`")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if *showVersion {
		fmt.Fprintf(out, "%s %s\n", name, version.Version)
		return f, flag.ErrHelp
	}
	f.Args = fs.Args()
	return f, nil
}

// Main runs a binary: it parses the flags, then calls run with a context that is
// cancelled on the first SIGTERM or SIGINT (a second one kills the process), and
// exits with status 1 if run fails.
func Main(name string, run func(ctx context.Context, f Flags) error) {
	f, err := ParseFlags(name, os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal ends the process at once
	}()
	if err := run(ctx, f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
