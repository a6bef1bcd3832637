package logtransfer

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Topics is the [kafka] topics setting: names, and regular expressions written
// between slashes (pattern subscription: /.*_log$/).
type Topics struct {
	Names    []string
	Patterns []*regexp.Regexp
	dlq      *regexp.Regexp // names the dead-letter template produces
}

// maxTopicPatternLen bounds one expression (Go's regexp runs in linear time, but a
// huge one costs memory to compile).
const maxTopicPatternLen = 1024

// ParseTopics splits a comma-separated list of names and /expressions/ (an
// expression may hold commas). An expression must match the whole topic name, as in
// Kafka's pattern subscription; dlqTemplate is [kafka] dlq_topic, whose names a
// pattern never matches.
func ParseTopics(s, dlqTemplate string) (Topics, error) {
	var t Topics
	for rest := strings.TrimSpace(s); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == ',' {
			rest = rest[1:]
			continue
		}
		if rest[0] == '/' {
			// The expression ends at the first slash followed by a comma or the end.
			end := -1
			for k := 1; k < len(rest); k++ {
				if rest[k] == '/' {
					if after := strings.TrimLeft(rest[k+1:], " \t"); after == "" || after[0] == ',' {
						end = k
						break
					}
				}
			}
			if end < 0 {
				return t, fmt.Errorf("[kafka] topics: %q: a regular expression is written /like this/", rest)
			}
			expr := rest[1:end]
			rest = rest[end+1:]
			if expr == "" || len(expr) > maxTopicPatternLen {
				return t, fmt.Errorf("[kafka] topics: regular expression /%.40s/: want 1 to %d characters", expr, maxTopicPatternLen)
			}
			re, err := regexp.Compile(`^(?:` + expr + `)$`)
			if err != nil {
				return t, fmt.Errorf("[kafka] topics: /%s/: %w", expr, err)
			}
			t.Patterns = append(t.Patterns, re)
			continue
		}
		name, tail, _ := strings.Cut(rest, ",")
		rest = tail
		if name = strings.TrimSpace(name); name != "" {
			t.Names = append(t.Names, name)
		}
	}
	if len(t.Names) == 0 && len(t.Patterns) == 0 {
		return t, fmt.Errorf("[kafka] topics is empty")
	}
	if dlqTemplate != "" {
		pre, post, _ := strings.Cut(dlqTemplate, "{topic}")
		t.dlq = regexp.MustCompile("^" + regexp.QuoteMeta(pre) + ".*" + regexp.QuoteMeta(post) + "$")
	}
	return t, nil
}

// Excluded reports whether a pattern may never match name: internal topics (__*),
// dead-letter topics (*.dlq, and whatever [kafka] dlq_topic names).
func (t Topics) Excluded(name string) bool {
	return strings.HasPrefix(name, "__") || strings.HasSuffix(name, ".dlq") || (t.dlq != nil && t.dlq.MatchString(name))
}

// Resolve is the sorted list of topics to consume: the names, and the existing
// topics that a pattern matches.
func (t Topics) Resolve(existing []string) []string {
	out := slices.Clone(t.Names)
	for _, name := range existing {
		if t.Excluded(name) || slices.Contains(out, name) {
			continue
		}
		for _, re := range t.Patterns {
			if re.MatchString(name) {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// topicWatcher follows the cluster's topics for the patterns: every interval it
// refreshes the metadata, and when the resolved list changes it calls changed
// (which ends the session: the next one joins with the new list).
type topicWatcher struct {
	topics   Topics
	client   sarama.Client
	interval time.Duration
}

// list refreshes the metadata and resolves the topics.
func (w *topicWatcher) list() ([]string, error) {
	if w.client == nil {
		return w.topics.Resolve(nil), nil
	}
	if err := w.client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("refresh topic metadata: %w", err)
	}
	all, err := w.client.Topics()
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return w.topics.Resolve(all), nil
}

// watch calls changed whenever the list differs from current(); it returns when ctx
// ends.
func (w *topicWatcher) watch(ctx context.Context, current func() []string, changed func([]string), warn func(string, ...any)) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list, err := w.list()
		if err != nil {
			warn("topic patterns: cannot list topics", "err", err)
			continue
		}
		if !slices.Equal(list, current()) {
			changed(list)
		}
	}
}
