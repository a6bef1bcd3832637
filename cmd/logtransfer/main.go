// Command logtransfer consumes the log topics in a consumer group and indexes every
// record into Elasticsearch (or NDJSON files), committing offsets only after the
// output acknowledged the documents.
//
//	logtransfer [-config FILE]                     run
//	logtransfer [-config FILE] setup kibana        create the Kibana index pattern / data view
//	logtransfer [-config FILE] replay-dlq [TOPIC]  re-index dead letters under their original _id
//	logtransfer [-config FILE] parse --dataset NAME [--timezone ZONE] < lines
//	                                               print the document each line would become
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/service"
	"github.com/logpipe/logpipe/logtransfer"
)

func main() {
	service.Main("logtransfer", func(ctx context.Context, f service.Flags) error {
		args := f.Args
		if len(args) > 0 {
			// Flags may also follow the command: logtransfer setup kibana -config FILE.
			fs := flag.NewFlagSet("logtransfer "+args[0], flag.ContinueOnError)
			config := fs.String("config", f.Config, "configuration `file`")
			dataset := fs.String("dataset", "", "parse: the `dataset` whose parser to try")
			zone := fs.String("timezone", "", "parse: what times without a zone mean (IANA name or ±hh:mm; default: this host's zone)")
			cmd, rest := []string{args[0]}, args[1:]
			if args[0] == "setup" && len(rest) > 0 {
				cmd, rest = append(cmd, rest[0]), rest[1:]
			}
			if err := fs.Parse(rest); err != nil {
				return err
			}
			f.Config = *config
			args = append(cmd, fs.Args()...)
			if args[0] == "parse" {
				if len(args) != 1 || *dataset == "" {
					return fmt.Errorf("usage: logtransfer [-config FILE] parse --dataset NAME [--timezone ZONE] < lines")
				}
				cfg, err := logtransfer.LoadConfig(f.Config)
				if err != nil {
					return err
				}
				return logtransfer.ParseLines(cfg, *dataset, *zone, os.Stdin, os.Stdout)
			}
		}
		cfg, err := logtransfer.LoadConfig(f.Config)
		if err != nil {
			return err
		}
		log, err := logging.New(os.Stderr, cfg.Logging.Level, cfg.Logging.Format)
		if err != nil {
			return err
		}
		switch {
		case len(args) == 0:
		case len(args) == 2 && args[0] == "setup" && args[1] == "kibana":
			v, err := logtransfer.SetupKibana(ctx, cfg, log)
			if err != nil {
				return err
			}
			fmt.Printf("kibana %s: %s %s (%s, time field @timestamp): %s\n", v.Version, v.Kind, v.ID, v.Title, map[bool]string{true: "created", false: "exists already"}[v.Created])
			return nil
		case args[0] == "replay-dlq" && len(args) <= 2:
			topic := ""
			if len(args) == 2 {
				topic = args[1]
			}
			n, err := logtransfer.ReplayDLQ(ctx, cfg, topic, log)
			fmt.Printf("replayed %d dead letters\n", n)
			return err
		default:
			return fmt.Errorf("unknown command %q: want setup kibana, replay-dlq [TOPIC], or parse --dataset NAME", args)
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
