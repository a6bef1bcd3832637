package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicInfo is a topic as `topics list` and `topics describe` report it.
type topicInfo struct {
	Name       string            `json:"name"`
	Partitions []partitionInfo   `json:"partitions,omitempty"`
	Count      int               `json:"partition_count"`
	Replicas   int               `json:"replication_factor"`
	Size       int64             `json:"size_bytes"` // on the leaders' disks; -1 when the cluster does not say
	Configs    map[string]string `json:"configs,omitempty"`
}

type partitionInfo struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	Start     int64   `json:"start_offset"`
	End       int64   `json:"end_offset"`
	Size      int64   `json:"size_bytes"` // on the leader's disk; -1 when unknown
}

func (c *cli) topicsList() error {
	tds, err := c.adm.ListTopics(c.ctx)
	if err != nil {
		return fmt.Errorf("list topics on %s: %w", strings.Join(c.brokers, ","), err)
	}
	var out []topicInfo
	for _, td := range tds.Sorted() {
		out = append(out, topicInfo{Name: td.Topic, Count: len(td.Partitions), Replicas: td.Partitions.NumReplicas()})
	}
	return c.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TOPIC\tPARTITIONS\tREPLICAS")
		for _, t := range out {
			fmt.Fprintf(w, "%s\t%d\t%d\n", t.Name, t.Count, t.Replicas)
		}
	})
}

func (c *cli) topicsCreate(args []string) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: topics create NAME --partitions N", errUsage)
	}
	name := args[0]
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parts := fs.Int("partitions", -1, "partitions (-1: the broker's default)")
	repl := fs.Int("replication-factor", -1, "replicas (-1: the broker's default)")
	var cfgs multiFlag
	fs.Var(&cfgs, "config", "key=value, repeatable")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: topics create NAME --partitions N [--config key=value]", errUsage)
	}
	configs := map[string]*string{}
	for _, kv := range cfgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%w: --config %q: want key=value", errUsage, kv)
		}
		configs[k] = &v
	}
	resp, err := c.adm.CreateTopic(c.ctx, int32(*parts), int16(*repl), configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return c.print(map[string]any{"created": name, "partitions": resp.NumPartitions}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created topic %s with %d partitions\n", name, resp.NumPartitions)
	})
}

func (c *cli) topicsDescribe(name string) error {
	tds, err := c.adm.ListTopics(c.ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", name, err)
	}
	td, ok := tds[name]
	if !ok || td.Err != nil {
		if ok && td.Err != nil && !isUnknown(td.Err) {
			return fmt.Errorf("describe topic %s: %w", name, td.Err)
		}
		return fmt.Errorf("topic %s does not exist", name)
	}
	starts, err := c.adm.ListStartOffsets(c.ctx, name)
	if err != nil {
		return fmt.Errorf("start offsets of %s: %w", name, err)
	}
	ends, err := c.adm.ListEndOffsets(c.ctx, name)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", name, err)
	}
	info := topicInfo{Name: name, Count: len(td.Partitions), Replicas: td.Partitions.NumReplicas(), Size: -1, Configs: map[string]string{}}
	sizes := c.partitionSizes(name, td)
	for _, p := range td.Partitions.Sorted() {
		pi := partitionInfo{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, Size: -1}
		if s, ok := sizes[p.Partition]; ok {
			pi.Size = s
			info.Size = max(info.Size, 0) + s
		}
		if o, ok := starts.Lookup(name, p.Partition); ok {
			pi.Start = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok {
			pi.End = o.Offset
		}
		info.Partitions = append(info.Partitions, pi)
	}
	if rcs, err := c.adm.DescribeTopicConfigs(c.ctx, name); err == nil {
		for _, rc := range rcs {
			for _, cfg := range rc.Configs {
				if cfg.Value != nil {
					info.Configs[cfg.Key] = *cfg.Value
				}
			}
		}
	}
	return c.print(info, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "topic %s: %d partitions, replication factor %d, size %s\n\n", name, info.Count, info.Replicas, humanSize(info.Size))
		fmt.Fprintln(w, "PARTITION\tLEADER\tREPLICAS\tSTART\tEND\tRECORDS\tSIZE")
		for _, p := range info.Partitions {
			fmt.Fprintf(w, "%d\t%d\t%v\t%d\t%d\t%d\t%s\n", p.Partition, p.Leader, p.Replicas, p.Start, p.End, p.End-p.Start, humanSize(p.Size))
		}
		keys := make([]string, 0, len(info.Configs))
		for k := range info.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			fmt.Fprintln(w, "\nCONFIG\tVALUE")
		}
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\n", k, info.Configs[k])
		}
	})
}

func (c *cli) topicsAddPartitions(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: topics add-partitions NAME TOTAL", errUsage)
	}
	total, err := strconv.Atoi(args[1])
	if err != nil || total < 1 {
		return fmt.Errorf("%w: TOTAL %q is not a partition count", errUsage, args[1])
	}
	resps, err := c.adm.UpdatePartitions(c.ctx, total, args[0])
	if err == nil {
		if r, ok := resps[args[0]]; ok {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("grow topic %s to %d partitions: %w", args[0], total, err)
	}
	return c.print(map[string]any{"topic": args[0], "partitions": total}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "topic %s now has %d partitions\n", args[0], total)
	})
}

func (c *cli) topicsDelete(name string) error {
	resps, err := c.adm.DeleteTopics(c.ctx, name)
	if err == nil {
		if r, ok := resps[name]; ok {
			err = r.Err
		}
	}
	if err != nil {
		if isUnknown(err) {
			return fmt.Errorf("topic %s does not exist", name)
		}
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	return c.print(map[string]any{"deleted": name}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted topic %s\n", name) })
}

// partitionSizes asks each partition's leader for the partition's size on disk
// (DescribeLogDirs). A cluster that does not answer gives no sizes.
func (c *cli) partitionSizes(name string, td kadm.TopicDetail) map[int32]int64 {
	set := kadm.TopicsSet{}
	for p := range td.Partitions {
		set.Add(name, p)
	}
	dirs, err := c.adm.DescribeAllLogDirs(c.ctx, set)
	if err != nil {
		return nil
	}
	sizes := map[int32]int64{}
	for _, p := range td.Partitions {
		if dir, ok := dirs[p.Leader]; ok {
			if dp, ok := dir.LookupPartition(name, p.Partition); ok {
				sizes[p.Partition] = dp.Size
			}
		}
	}
	return sizes
}

// humanSize prints bytes with a binary unit, or "-" for an unknown size.
func humanSize(n int64) string {
	if n < 0 {
		return "-"
	}
	v, units := float64(n), []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func isUnknown(err error) bool { return err == kerr.UnknownTopicOrPartition }

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
