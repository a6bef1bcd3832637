package server

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// handleCreateTopics creates topics (or only validates them).
func (s *Server) handleCreateTopics(r *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	count := map[string]int{}
	for _, rt := range r.Topics {
		count[rt.Topic]++
	}
	for _, rt := range r.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		var t *storage.Topic
		var cfg storage.TopicConfig
		var n int32
		var err error
		if count[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q given more than once", errInvalidRequest, rt.Topic)
		} else {
			t, cfg, n, err = s.createTopic(&rt, r.ValidateOnly)
		}
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = errMessage(err)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if t != nil {
			out.TopicID = t.ID()
			s.log.Info("created topic", "topic", rt.Topic, "partitions", n)
		}
		out.NumPartitions, out.ReplicationFactor = n, 1
		for _, e := range cfg.Entries() {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = e.Name
			v := e.Value
			c.Value = &v
			c.Source = int8(configSource(e))
			out.Configs = append(out.Configs, c)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}

// errInvalidRequest is answered with INVALID_REQUEST.
var errInvalidRequest = errors.New("invalid request")

func (s *Server) createTopic(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*storage.Topic, storage.TopicConfig, int32, error) {
	cfg := s.cfg.TopicDefaults
	if !validTopicName(rt.Topic) {
		return nil, cfg, 0, fmt.Errorf("%w: %q", storage.ErrInvalidTopic, rt.Topic)
	}
	if s.store.Topic(rt.Topic) != nil {
		return nil, cfg, 0, fmt.Errorf("%w: %q", storage.ErrTopicExists, rt.Topic)
	}
	n := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 {
			return nil, cfg, 0, fmt.Errorf("%w: both partition count and replica assignment given", errInvalidRequest)
		}
		for _, a := range rt.ReplicaAssignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != nodeID {
				return nil, cfg, 0, fmt.Errorf("%w: replicas of partition %d must be [%d]: this broker is a single node", errInvalidReplicaAssignment, a.Partition, nodeID)
			}
		}
		n = int32(len(rt.ReplicaAssignment))
	}
	if n == -1 {
		n = s.cfg.NumPartitions
	}
	if n <= 0 {
		return nil, cfg, 0, fmt.Errorf("%w: %d partitions", storage.ErrInvalidPartitions, n)
	}
	if rf := rt.ReplicationFactor; rf != -1 && rf != 1 {
		return nil, cfg, 0, fmt.Errorf("%w: replication factor %d, but this broker is a single node", errInvalidReplicationFactor, rf)
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue // null = the default
		}
		if err := cfg.Set(c.Name, *c.Value); err != nil {
			return nil, cfg, 0, err
		}
	}
	if validateOnly {
		return nil, cfg, n, s.store.CheckCreate(n)
	}
	t, err := s.store.CreateTopic(rt.Topic, n, cfg)
	if err != nil {
		return nil, cfg, 0, err
	}
	return t, t.Config(), n, nil
}

var (
	errInvalidReplicationFactor = errors.New("invalid replication factor")
	errInvalidReplicaAssignment = errors.New("invalid replica assignment")
)

// handleDeleteTopics deletes topics by name (or, v6+, by id).
func (s *Server) handleDeleteTopics(r *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.Version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, name := range r.TopicNames {
			targets = append(targets, target{name: &name})
		}
	}
	for _, tg := range targets {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		var t *storage.Topic
		if tg.name != nil {
			t = s.store.Topic(*tg.name)
		} else {
			t = s.topicByID(tg.id)
		}
		if t == nil {
			if tg.name == nil {
				out.ErrorCode = kerr.UnknownTopicID.Code
			} else {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			resp.Topics = append(resp.Topics, out)
			continue
		}
		name := t.Name()
		out.Topic, out.TopicID = &name, t.ID()
		if err := s.refuseInternal("deleted", name); err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = errMessage(err)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if err := s.store.DeleteTopic(name); err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = errMessage(err)
		} else {
			s.log.Info("deleted topic", "topic", name)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}

// handleCreatePartitions grows topics.
func (s *Server) handleCreatePartitions(r *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range r.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		var err error
		t := s.store.Topic(rt.Topic)
		switch {
		case t == nil:
			err = fmt.Errorf("%w: %q", storage.ErrUnknownTopic, rt.Topic)
		case storage.IsInternalTopic(rt.Topic):
			err = s.refuseInternal("given partitions", rt.Topic)
		case int(rt.Count) <= len(t.Partitions()):
			err = fmt.Errorf("%w: topic %q has %d partitions, asked for %d", storage.ErrInvalidPartitions, rt.Topic, len(t.Partitions()), rt.Count)
		case r.ValidateOnly:
			err = s.store.CheckGrow(rt.Topic, rt.Count)
		default:
			err = s.store.CreatePartitions(rt.Topic, rt.Count)
		}
		out.ErrorCode = errorCode(err)
		out.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}

// configTypes are the types of the topic configs the broker honours.
var configTypes = map[string]kmsg.ConfigType{
	"cleanup.policy":       kmsg.ConfigTypeList,
	"index.interval.bytes": kmsg.ConfigTypeInt,
	"max.message.bytes":    kmsg.ConfigTypeInt,
	"retention.bytes":      kmsg.ConfigTypeLong,
	"retention.ms":         kmsg.ConfigTypeLong,
	"segment.bytes":        kmsg.ConfigTypeInt,
	"segment.ms":           kmsg.ConfigTypeLong,
}

func configSource(e storage.ConfigEntry) kmsg.ConfigSource {
	if e.Default {
		return kmsg.ConfigSourceDefaultConfig
	}
	return kmsg.ConfigSourceDynamicTopicConfig
}

// handleDescribeConfigs describes topics (the configs the broker honours) and
// this broker (its static configuration).
func (s *Server) handleDescribeConfigs(r *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		add := func(name, value string, source kmsg.ConfigSource, readOnly bool, typ kmsg.ConfigType) {
			if !want(name) {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = name
			v := value
			c.Value = &v
			c.ReadOnly = readOnly
			c.IsDefault = source == kmsg.ConfigSourceDefaultConfig
			c.Source = source
			c.ConfigType = typ
			if r.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = name, &v, source
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
			out.Configs = append(out.Configs, c)
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := s.store.Topic(rr.ResourceName)
			if t == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				out.ErrorMessage = errMessage(fmt.Errorf("unknown topic %q", rr.ResourceName))
				break
			}
			for _, e := range t.Config().Entries() {
				typ, ok := configTypes[e.Name]
				if !ok {
					typ = kmsg.ConfigTypeString
				}
				add(e.Name, e.Value, configSource(e), false, typ)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != "0" {
				out.ErrorCode = kerr.InvalidRequest.Code
				out.ErrorMessage = errMessage(fmt.Errorf("unknown broker %q: this cluster has only broker 0", rr.ResourceName))
				break
			}
			names := make([]string, 0, len(s.cfg.BrokerConfigs))
			for n := range s.cfg.BrokerConfigs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				add(n, s.cfg.BrokerConfigs[n], kmsg.ConfigSourceStaticBrokerConfig, true, kmsg.ConfigTypeString)
			}
		default:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = errMessage(fmt.Errorf("unsupported resource type %d", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

// handleDescribeLogDirs reports the one log directory: the size of each requested
// partition (every partition when Topics is null), and from v4 the file system's
// total and usable bytes. Unknown topics and partitions are left out, as Kafka does.
func (s *Server) handleDescribeLogDirs(r *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.store.Dir()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var sfs syscall.Statfs_t
	if syscall.Statfs(dir.Dir, &sfs) == nil {
		dir.TotalBytes = int64(sfs.Blocks) * int64(sfs.Bsize)
		dir.UsableBytes = int64(sfs.Bavail) * int64(sfs.Bsize)
	}
	addTopic := func(t *storage.Topic, only []int32) {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Name()
		for _, p := range t.Partitions() {
			if only != nil && !slices.Contains(only, p.Index()) {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p.Index(), p.Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	if r.Topics == nil {
		for _, t := range s.store.Topics() {
			addTopic(t, nil)
		}
	} else {
		for _, rt := range r.Topics {
			if t := s.store.Topic(rt.Topic); t != nil {
				addTopic(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
