package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceCmd sends each line of stdin as one record.
func (c *cli) produceCmd(args []string, stdin io.Reader) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: produce TOPIC [--key K] [--acks 0|1|all]", errUsage)
	}
	topic := args[0]
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "record key (default: none)")
	acks := fs.String("acks", "all", "0, 1 or all")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: produce TOPIC [--key K] [--acks 0|1|all]", errUsage)
	}
	opts := c.opts(kgo.DefaultProduceTopic(topic), kgo.DialTimeout(3*time.Second), kgo.AllowAutoTopicCreation())
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fmt.Errorf("%w: --acks %q: want 0, 1 or all", errUsage, *acks)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	var firstErr error
	for sc.Scan() {
		r := &kgo.Record{Value: append([]byte(nil), sc.Bytes()...)}
		if *key != "" {
			r.Key = []byte(*key)
		}
		cl.Produce(c.ctx, r, func(_ *kgo.Record, err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if err := cl.Flush(c.ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	if firstErr != nil {
		return fmt.Errorf("produce to %s: %w", topic, firstErr)
	}
	return c.print(map[string]any{"topic": topic, "records": n}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "produced %d records to %s\n", n, topic) })
}

// consumedRecord is one record as `consume --json` prints it.
type consumedRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       string            `json:"key,omitempty"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// consumeCmd prints records of a topic until --max records or Ctrl-C.
func (c *cli) consumeCmd(args []string) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: consume TOPIC [--from-beginning] [--group G] [--max N]", errUsage)
	}
	topic := args[0]
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromStart := fs.Bool("from-beginning", false, "start at the oldest record (default: only new ones)")
	group := fs.String("group", "", "consume in this group and commit what was printed")
	maxN := fs.Int("max", 0, "stop after this many records (0: until Ctrl-C)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: consume TOPIC [--from-beginning] [--group G] [--max N]", errUsage)
	}
	start := kgo.NewOffset().AtEnd()
	if *fromStart {
		start = kgo.NewOffset().AtStart()
	}
	opts := c.opts(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start), kgo.DialTimeout(3*time.Second))
	if *group != "" {
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.DisableAutoCommit())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Consuming runs until --max or a signal, not until --timeout.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(c.out)
	n := 0
	for *maxN == 0 || n < *maxN {
		fetches := cl.PollRecords(ctx, *maxN-n)
		if ctx.Err() != nil {
			break
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return fmt.Errorf("consume %s: %w", topic, errs[0].Err)
		}
		var done []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if *maxN != 0 && n >= *maxN {
				return
			}
			n++
			done = append(done, r)
			if c.json {
				cr := consumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Key: string(r.Key), Value: string(r.Value)}
				if len(r.Headers) > 0 {
					cr.Headers = map[string]string{}
					for _, h := range r.Headers {
						cr.Headers[h.Key] = string(h.Value)
					}
				}
				enc.Encode(cr)
				return
			}
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			fmt.Fprintf(c.out, "%d\t%d\t%s\t%s\t%s\n", r.Partition, r.Offset, r.Key, strings.Join(hs, ","), r.Value)
		})
		if *group != "" && len(done) > 0 {
			if err := cl.CommitRecords(context.Background(), done...); err != nil {
				return fmt.Errorf("commit in group %s: %w", *group, err)
			}
		}
	}
	return nil
}
