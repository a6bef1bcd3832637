// Command logagent tails the log files named in its host's collection config in etcd
// and produces every line to Kafka.
//
//	logagent [-config conf/logagent.ini]            run the agent
//	logagent [-config F] config show                print this host's collection config
//	logagent [-config F] config validate FILE       check a collection config file
//	logagent [-config F] config put FILE            validate FILE, then store it in etcd
//	logagent [-config F] status                     list the files the running agent tails
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/service"
	"github.com/logpipe/logpipe/logagent"
	"github.com/logpipe/logpipe/logagent/collect"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	service.Main("logagent", func(ctx context.Context, f service.Flags) error {
		cfg, err := logagent.LoadConfig(f.Config)
		if err != nil {
			return err
		}
		if len(f.Args) > 0 {
			return command(ctx, cfg, f.Args, os.Stdout)
		}
		return run(ctx, cfg)
	})
}

func run(ctx context.Context, cfg logagent.Config) error {
	log, err := logging.New(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	a, err := logagent.New(cfg, log)
	if err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		ms, err := metrics.Listen(cfg.Metrics, a.Registry(), nil, log)
		if err != nil {
			return err
		}
		ms.Handle("GET /status", a.StatusHandler())
		go ms.Serve()
		defer ms.Close()
	}
	log.Info("logagent starting", "host", cfg.Agent.Host, "key", cfg.CollectKey(), "brokers", cfg.Kafka.Brokers)
	return a.Run(ctx)
}

func command(ctx context.Context, cfg logagent.Config, args []string, out io.Writer) error {
	switch {
	case args[0] == "status" && len(args) == 1:
		return status(cfg, out)
	case args[0] == "config" && len(args) == 2 && args[1] == "show":
		return withEtcd(ctx, cfg, func(ctx context.Context, cli *clientv3.Client) error {
			resp, err := cli.Get(ctx, cfg.CollectKey())
			if err != nil {
				return fmt.Errorf("get %s: %w", cfg.CollectKey(), err)
			}
			if len(resp.Kvs) == 0 {
				return fmt.Errorf("%s is not set", cfg.CollectKey())
			}
			fmt.Fprintf(out, "# %s (revision %d)\n%s\n", cfg.CollectKey(), resp.Kvs[0].ModRevision, resp.Kvs[0].Value)
			return nil
		})
	case args[0] == "config" && len(args) == 3 && args[1] == "validate":
		c, err := readConfigFile(args[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: valid, %d entries\n", args[2], len(c))
		return nil
	case args[0] == "config" && len(args) == 3 && args[1] == "put":
		c, err := readConfigFile(args[2])
		if err != nil {
			return err
		}
		data, _ := json.Marshal(c)
		return withEtcd(ctx, cfg, func(ctx context.Context, cli *clientv3.Client) error {
			if _, err := cli.Put(ctx, cfg.CollectKey(), string(data)); err != nil {
				return fmt.Errorf("put %s: %w", cfg.CollectKey(), err)
			}
			fmt.Fprintf(out, "stored %d entries at %s\n", len(c), cfg.CollectKey())
			return nil
		})
	}
	return errors.New("usage: logagent [-config FILE] [status | config show | config validate FILE | config put FILE]")
}

func readConfigFile(path string) (collect.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := collect.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func withEtcd(ctx context.Context, cfg logagent.Config, f func(context.Context, *clientv3.Client) error) error {
	cc, err := cfg.EtcdClientConfig()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", cfg.Etcd.Endpoints, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return f(ctx, cli)
}

func status(cfg logagent.Config, out io.Writer) error {
	if cfg.Metrics.Listen == "" {
		return errors.New("[metrics] listen is empty: the agent serves no status")
	}
	url := "http://" + cfg.Metrics.Listen + "/status"
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	var files []logagent.FileStatus
	if err := json.NewDecoder(resp.Body).Decode(&files); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tTOPIC\tOFFSET\tSIZE\tLAG\tFILE_ID")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", f.Path, f.Topic, f.Offset, f.Size, f.Lag, f.FileID)
	}
	return tw.Flush()
}
