// Command broker is logpipe's built-in single-node Kafka-compatible broker.
//
//	broker -config conf/broker.ini
//
// It serves the Kafka protocol until SIGTERM or SIGINT, then lets requests in
// flight finish briefly and closes its log cleanly.
package main

import (
	"context"
	"os"

	"github.com/logpipe/logpipe/broker"
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
	logger, err := logging.New(os.Stderr, cfg.Logging.Level, cfg.Logging.Format)
	if err != nil {
		return err
	}
	logger.Info("starting broker", "version", version.Version, "config", f.Config)
	b, err := broker.Start(cfg, logger)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("signal received; shutting down")
	case <-b.Done():
	}
	return b.Close()
}
