package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// groupInfo is a group as `groups list` and `groups describe` report it.
type groupInfo struct {
	Name     string         `json:"name"`
	State    string         `json:"state"`
	Protocol string         `json:"protocol,omitempty"`
	Members  []memberInfo   `json:"members,omitempty"`
	Offsets  []partitionLag `json:"offsets,omitempty"`
	TotalLag int64          `json:"total_lag"`
}

type memberInfo struct {
	ID     string `json:"id"`
	Client string `json:"client_id"`
	Host   string `json:"host"`
}

type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
}

func (c *cli) groupsList() error {
	gs, err := c.adm.ListGroups(c.ctx)
	if err != nil {
		return fmt.Errorf("list groups on %s: %w", c.brokers, err)
	}
	var out []groupInfo
	for _, g := range gs.Sorted() {
		out = append(out, groupInfo{Name: g.Group, State: g.State, Protocol: g.ProtocolType})
	}
	return c.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "GROUP\tSTATE\tTYPE")
		for _, g := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\n", g.Name, g.State, g.Protocol)
		}
	})
}

func (c *cli) groupsDescribe(name string) error {
	lags, err := c.adm.Lag(c.ctx, name)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", name, err)
	}
	l, ok := lags[name]
	if !ok {
		return fmt.Errorf("group %s: no answer", name)
	}
	if err := l.Error(); err != nil {
		return fmt.Errorf("describe group %s: %w", name, err)
	}
	if l.State == "Dead" {
		return fmt.Errorf("group %s does not exist", name)
	}
	g := groupInfo{Name: name, State: l.State, Protocol: l.Protocol, TotalLag: l.Lag.Total()}
	for _, m := range l.Members {
		g.Members = append(g.Members, memberInfo{ID: m.MemberID, Client: m.ClientID, Host: m.ClientHost})
	}
	for _, pl := range l.Lag.Sorted() {
		p := partitionLag{Topic: pl.Topic, Partition: pl.Partition, Committed: pl.Commit.At, End: pl.End.Offset, Lag: pl.Lag}
		if pl.Member != nil {
			p.Member = pl.Member.MemberID
		}
		g.Offsets = append(g.Offsets, p)
	}
	return c.print(g, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "group %s: %s, %d members, protocol %q, total lag %d\n\n", name, g.State, len(g.Members), g.Protocol, g.TotalLag)
		fmt.Fprintln(w, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
		for _, p := range g.Offsets {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition, p.Committed, p.End, p.Lag, p.Member)
		}
	})
}

func (c *cli) groupsDelete(name string) error {
	resps, err := c.adm.DeleteGroups(c.ctx, name)
	if err == nil {
		if r, ok := resps[name]; ok {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	return c.print(map[string]any{"deleted": name}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted group %s\n", name) })
}

// groupsReset moves an empty group's committed offsets of one topic to the start, the
// end or a given offset of every partition. Kafka allows it only for an empty group,
// so that no running member overwrites it.
func (c *cli) groupsReset(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%w: groups reset-offsets NAME --topic T --to earliest|latest|OFFSET|TIME", errUsage)
	}
	name := args[0]
	fs := flag.NewFlagSet("reset-offsets", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	topic := fs.String("topic", "", "topic whose offsets move")
	to := fs.String("to", "", "earliest, latest or an offset")
	if err := fs.Parse(args[1:]); err != nil || *topic == "" || *to == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: groups reset-offsets NAME --topic T --to earliest|latest|OFFSET|TIME", errUsage)
	}
	groups, err := c.adm.DescribeGroups(c.ctx, name)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", name, err)
	}
	if g, ok := groups[name]; ok && g.Err == nil && g.State != "Empty" && g.State != "Dead" {
		return fmt.Errorf("group %s is %s with %d members: stop its consumers first (only an empty group's offsets can be reset)", name, g.State, len(g.Members))
	}
	var listed kadm.ListedOffsets
	switch *to {
	case "earliest":
		listed, err = c.adm.ListStartOffsets(c.ctx, *topic)
	case "latest":
		listed, err = c.adm.ListEndOffsets(c.ctx, *topic)
	default:
		if ts, terr := time.Parse(time.RFC3339, *to); terr == nil {
			// The first offset at or after the time; partitions with nothing newer go to their end.
			listed, err = c.adm.ListOffsetsAfterMilli(c.ctx, ts.UnixMilli(), *topic)
			break
		}
		var off int64
		if off, err = strconv.ParseInt(*to, 10, 64); err != nil || off < 0 {
			return fmt.Errorf("%w: --to %q: want earliest, latest, an offset or an RFC 3339 time", errUsage, *to)
		}
		if listed, err = c.adm.ListEndOffsets(c.ctx, *topic); err == nil {
			for _, ps := range listed {
				for p, o := range ps {
					o.Offset = min(off, o.Offset)
					ps[p] = o
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("offsets of %s: %w", *topic, err)
	}
	if err := listed.Error(); err != nil {
		return fmt.Errorf("offsets of %s: %w", *topic, err)
	}
	if len(listed[*topic]) == 0 {
		return fmt.Errorf("topic %s does not exist", *topic)
	}
	resps, err := c.adm.CommitOffsets(c.ctx, name, listed.Offsets())
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("commit offsets of %s: %w", name, err)
	}
	var out []partitionLag
	for _, o := range listed.Offsets().Sorted() {
		out = append(out, partitionLag{Topic: o.Topic, Partition: o.Partition, Committed: o.At})
	}
	return c.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TOPIC\tPARTITION\tNEW OFFSET")
		for _, p := range out {
			fmt.Fprintf(w, "%s\t%d\t%d\n", p.Topic, p.Partition, p.Committed)
		}
	})
}
