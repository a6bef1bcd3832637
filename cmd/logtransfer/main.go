// Command logtransfer consumes the log topics in a consumer group and indexes every
// record into Elasticsearch (or NDJSON files), committing offsets only after the
// output acknowledged the documents.
package main

import (
	"context"
	"os"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/service"
	"github.com/logpipe/logpipe/logtransfer"
)

func main() {
	service.Main("logtransfer", func(ctx context.Context, f service.Flags) error {
		cfg, err := logtransfer.LoadConfig(f.Config)
		if err != nil {
			return err
		}
		log, err := logging.New(os.Stderr, cfg.Logging.Level, cfg.Logging.Format)
		if err != nil {
			return err
		}
		t, err := logtransfer.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		if cfg.Metrics.Listen != "" {
			ms, err := metrics.Listen(cfg.Metrics, t.Registry(), nil, log)
			if err != nil {
				return err
			}
			go ms.Serve()
			defer ms.Close()
		}
		err = t.Run(ctx)
		log.Info("logtransfer stopped")
		return err
	})
}
