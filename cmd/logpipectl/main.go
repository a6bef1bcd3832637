// Command logpipectl administers topics and consumer groups over the Kafka protocol,
// so it works the same against logpipe's broker and an Apache Kafka cluster.
//
//	logpipectl [--brokers host:port,...] [--config FILE] [--json] topics list
//	logpipectl ... topics create NAME --partitions N [--config key=value ...]
//	logpipectl ... topics describe NAME
//	logpipectl ... topics add-partitions NAME TOTAL
//	logpipectl ... topics delete NAME
//	logpipectl ... groups list
//	logpipectl ... groups describe NAME
//	logpipectl ... groups reset-offsets NAME --topic T --to earliest|latest|OFFSET|TIME
//	logpipectl ... groups delete NAME
//	logpipectl ... produce TOPIC [--key K] [--acks 0|1|all]      (lines from stdin)
//	logpipectl ... consume TOPIC [--from-beginning] [--group G] [--max N]
//
// The brokers are, in this order: --brokers, the environment variable
// LOGPIPE_BROKERS, `[kafka] brokers` in --config FILE (default
// /etc/logpipe/logpipectl.ini, if it exists), 127.0.0.1:9092.
//
// Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	os.Exit(runWith(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errUsage marks a command line that does not parse.
var errUsage = errors.New("usage")

const usage = `usage: logpipectl [--brokers host:port,...] [--config FILE] [--json] [--timeout 10s] COMMAND
  topics list | create NAME --partitions N [--config k=v]... | describe NAME |
         add-partitions NAME TOTAL | delete NAME
  groups list | describe NAME | reset-offsets NAME --topic T --to earliest|latest|OFFSET|TIME |
         delete NAME
  produce TOPIC [--key K] [--acks 0|1|all]            (one record per line of stdin)
  consume TOPIC [--from-beginning] [--group G] [--max N]
                                  (prints partition, offset, key, headers, value)
  users list | add NAME [--mechanism SCRAM-SHA-512|SCRAM-SHA-256] [--iterations N] --password-file F |
        delete NAME [--mechanism M]
  acls list | add|remove --principal User:NAME [--deny] [--host H]
        (--topic T | --group G | --cluster) [--prefixed] --operation OP[,OP...]
TLS and SASL come from the [kafka] section of --config (tls, ca_file, sasl_mechanism, username,
password_file, ...), as for the agent and the transfer.`

// cli is one invocation.
type cli struct {
	brokers []string
	sec     []kgo.Opt // TLS and SASL
	json    bool
	out     io.Writer
	stdin   io.Reader
	adm     *kadm.Client
	ctx     context.Context
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, strings.NewReader(""), stdout, stderr)
}

func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logpipectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "bootstrap brokers (default: env LOGPIPE_BROKERS, then [kafka] brokers of --config, then 127.0.0.1:9092)")
	configPath := fs.String("config", "", "ini file with [kafka] brokers (default "+defaultConfig+" if it exists)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	list, sec, err := resolveBrokers(*brokers, *configPath)
	if err != nil {
		fmt.Fprintf(stderr, "logpipectl: %v\n", err)
		return 2
	}
	secOpts, err := sec.KgoOpts()
	if err != nil {
		fmt.Fprintf(stderr, "logpipectl: %v\n", err)
		return 2
	}
	c := &cli{brokers: list, sec: secOpts, json: *asJSON, out: stdout, stdin: stdin}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c.ctx = ctx
	err = c.dispatch(fs.Args())
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "logpipectl: %v\n%s\n", err, usage)
		return 2
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer from %s within %v (is the broker running and reachable?): %w", strings.Join(c.brokers, ","), *timeout, err)
		}
		fmt.Fprintf(stderr, "logpipectl: %v\n", err)
		return 1
	}
	return 0
}

// defaultConfig is read for the brokers when --config is not given, if it exists.
const defaultConfig = "/etc/logpipe/logpipectl.ini"

// fileConfig is logpipectl.ini.
type fileConfig struct {
	Kafka struct {
		kafkasec.Config `ini:"-"`
		Brokers         string `ini:"brokers"`
	} `ini:"kafka"`
}

// resolveBrokers picks the brokers: the flag, then LOGPIPE_BROKERS, then the config
// file (an explicit one must exist), then 127.0.0.1:9092.
// The security settings come from the config file only.
func resolveBrokers(flagValue, configPath string) ([]string, kafkasec.Config, error) {
	var fc fileConfig
	path := configPath
	if path == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			path = defaultConfig
		}
	}
	if path != "" {
		if err := config.Load(path, &fc); err != nil {
			return nil, fc.Kafka.Config, err
		}
	}
	switch {
	case flagValue != "":
		return config.SplitList(flagValue), fc.Kafka.Config, nil
	case os.Getenv("LOGPIPE_BROKERS") != "":
		return config.SplitList(os.Getenv("LOGPIPE_BROKERS")), fc.Kafka.Config, nil
	case fc.Kafka.Brokers != "":
		return config.SplitList(fc.Kafka.Brokers), fc.Kafka.Config, nil
	}
	return []string{"127.0.0.1:9092"}, fc.Kafka.Config, nil
}

func (c *cli) dispatch(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: missing command or argument", errUsage)
	}
	cl, err := kgo.NewClient(c.opts(kgo.DialTimeout(3*time.Second), kgo.RequestRetries(2))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	c.adm = kadm.NewClient(cl)
	if args[0] == "produce" {
		return c.produceCmd(args[1:], c.stdin)
	}
	if args[0] == "consume" {
		return c.consumeCmd(args[1:])
	}
	rest := args[2:]
	switch args[0] + " " + args[1] {
	case "topics list":
		return c.topicsList()
	case "topics create":
		return c.topicsCreate(rest)
	case "topics describe":
		return c.withName(rest, c.topicsDescribe)
	case "topics delete":
		return c.withName(rest, c.topicsDelete)
	case "topics add-partitions":
		return c.topicsAddPartitions(rest)
	case "groups list":
		return c.groupsList()
	case "groups describe":
		return c.withName(rest, c.groupsDescribe)
	case "groups delete":
		return c.withName(rest, c.groupsDelete)
	case "groups reset-offsets":
		return c.groupsReset(rest)
	case "users list":
		return c.usersList()
	case "users add":
		return c.usersAdd(rest)
	case "users delete":
		return c.usersDelete(rest)
	case "acls list":
		return c.aclsList()
	case "acls add":
		return c.aclsChange(rest, true)
	case "acls remove":
		return c.aclsChange(rest, false)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(args[:2], " "))
}

// opts are the client options every command starts from: the brokers and the
// security settings.
func (c *cli) opts(more ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.sec...), more...)
}

func (c *cli) withName(args []string, f func(string) error) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: want exactly one name", errUsage)
	}
	return f(args[0])
}

// print writes v as JSON with --json, else calls table.
func (c *cli) print(v any, table func(w *tabwriter.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}
