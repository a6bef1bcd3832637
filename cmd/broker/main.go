// Command broker is logpipe's built-in single-node Kafka-compatible broker.
//
//	broker -config conf/broker.ini
//	broker -config conf/broker.ini users add NAME [--mechanism M] --password-file F
//	broker -config conf/broker.ini users list
//	broker -config conf/broker.ini users delete NAME [--mechanism M]
//
// It serves the Kafka protocol until SIGTERM or SIGINT, then lets requests in
// flight finish briefly and closes its log cleanly. SIGHUP reloads the TLS
// certificate. The users commands manage the SCRAM credentials in the data
// directory, of a stopped broker or of a running one (it sees the change at the
// next authentication): that is how the first admin of a fresh broker is made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/service"
	"github.com/logpipe/logpipe/internal/version"
)

func main() {
	service.Main("broker", run)
}

func run(ctx context.Context, f service.Flags) error {
	cfg, err := broker.LoadConfig(f.Config)
	if err != nil {
		return err
	}
	if len(f.Args) > 0 {
		return command(cfg, f.Args, os.Stdout)
	}
	logger, err := logging.New(os.Stderr, cfg.Logging.Level, cfg.Logging.Format)
	if err != nil {
		return err
	}
	logger.Info("starting broker", "version", version.Version, "config", f.Config)
	b, err := broker.Start(cfg, logger)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := b.ReloadTLS(); err != nil {
				logger.Error("SIGHUP: TLS certificate not reloaded; the previous one stays in use", "err", err)
			} else {
				logger.Info("SIGHUP: TLS certificate reloaded")
			}
			continue
		case <-ctx.Done():
			logger.Info("signal received; shutting down")
		case <-b.Done():
		}
		return b.Close()
	}
}

const usage = "usage: broker [-config FILE] users add NAME [--mechanism SCRAM-SHA-512|SCRAM-SHA-256|both] [--iterations N] --password-file F | users list | users delete NAME [--mechanism M]"

// command runs a subcommand on the data directory of cfg.
func command(cfg broker.Config, args []string, out io.Writer) error {
	if len(args) < 2 || args[0] != "users" {
		return errors.New(usage)
	}
	users, err := sasl.OpenUsers(cfg.Log.Dir)
	if err != nil {
		return err
	}
	switch args[1] {
	case "list":
		list, err := users.List()
		if err != nil {
			return err
		}
		for _, u := range list {
			var mechs []string
			for m, iters := range u.Mechanisms {
				mechs = append(mechs, fmt.Sprintf("%s(%d)", m, iters))
			}
			fmt.Fprintf(out, "%s\t%s\n", u.Name, strings.Join(mechs, ","))
		}
		return nil
	case "add", "delete":
		if len(args) < 3 || strings.HasPrefix(args[2], "-") {
			return errors.New(usage)
		}
		name := args[2]
		fs := flag.NewFlagSet("users", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		mech := fs.String("mechanism", "both", "")
		pwFile := fs.String("password-file", "", "")
		iters := fs.Int("iterations", sasl.DefaultIterations, "")
		if err := fs.Parse(args[3:]); err != nil {
			return fmt.Errorf("%v\n%s", err, usage)
		}
		mechs := []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256}
		if *mech != "both" {
			m, err := sasl.ParseMechanism(*mech)
			if err != nil || m == sasl.Plain {
				return fmt.Errorf("--mechanism %s: want SCRAM-SHA-512, SCRAM-SHA-256 or both", *mech)
			}
			mechs = []sasl.Mechanism{m}
		}
		if args[1] == "delete" {
			for _, m := range mechs {
				if err := users.Delete(name, m); err != nil && !(errors.Is(err, sasl.ErrNoCredential) && *mech == "both") {
					return fmt.Errorf("delete %s %s: %w", name, m, err)
				}
			}
			fmt.Fprintf(out, "deleted %s\n", name)
			return nil
		}
		if *pwFile == "" {
			return errors.New("users add needs --password-file (a password on the command line would show in ps and shell history)")
		}
		pw, err := broker.ReadPasswordFile(*pwFile)
		if err != nil {
			return err
		}
		for _, m := range mechs {
			if err := users.SetPassword(name, m, pw, *iters); err != nil {
				return fmt.Errorf("add %s %s: %w", name, m, err)
			}
		}
		fmt.Fprintf(out, "added %s (%d mechanisms, %d iterations)\n", name, len(mechs), *iters)
		return nil
	}
	return errors.New(usage)
}
