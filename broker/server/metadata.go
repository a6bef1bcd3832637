package server

import (
	"errors"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// ClusterID is the cluster id reported in Metadata.
const ClusterID = "logpipe"

// nodeID is this broker's id: the only node of its cluster.
const nodeID = 0

// consumerOffsetsTopic is the internal topic of committed offsets.
const consumerOffsetsTopic = "__consumer_offsets"

// handleApiVersions answers ApiVersions with every advertised key.
func (s *Server) handleApiVersions(r *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.Version >= 3 && (!validSoftware.MatchString(r.ClientSoftwareName) || !validSoftware.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
	}
	resp.ApiKeys = make([]kmsg.ApiVersionsResponseApiKey, 0, len(s.apiKeys))
	for _, k := range s.apiKeys {
		e := kmsg.NewApiVersionsResponseApiKey()
		e.ApiKey, e.MinVersion, e.MaxVersion = k.key, k.min, k.max
		resp.ApiKeys = append(resp.ApiKeys, e)
	}
	return resp
}

// validSoftware is the pattern of ApiVersions v3+ client software names and versions.
var validSoftware = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

// apiVersionsTooNew is the answer to an ApiVersions request newer than advertised
// (KIP-511): a v0 body with UNSUPPORTED_VERSION and only the ApiVersions entry, so
// that the client retries with a version it finds there.
func (s *Server) apiVersionsTooNew() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	vr := s.versions[18]
	e := kmsg.NewApiVersionsResponseApiKey()
	e.ApiKey, e.MinVersion, e.MaxVersion = 18, vr.min, vr.max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{e}
	return resp
}

// handleMetadata answers Metadata: this node leads every partition.
// With ACLs, c lists only the topics its principal may describe, answers
// TOPIC_AUTHORIZATION_FAILED for a named one it may not, and creates a topic
// only with CREATE on the cluster or the topic.
func (c *conn) handleMetadata(r *kmsg.MetadataRequest) kmsg.Response {
	s, lst := c.s, c.lst
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	host, port := lst.host, lst.port
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = nodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	cluster := ClusterID
	resp.ClusterID = &cluster
	resp.ControllerID = nodeID

	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		for _, t := range s.store.Topics() {
			if c.can(opDescribe, rtTopic, t.Name()) {
				resp.Topics = append(resp.Topics, topicMetadata(t))
			}
		}
		return resp
	}
	autoCreate := s.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	for _, rt := range r.Topics {
		var t *storage.Topic
		if rt.Topic == nil {
			if t = s.topicByID(rt.TopicID); t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !c.can(opDescribe, rtTopic, t.Name()) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID, mt.ErrorCode = rt.TopicID, topicDenied
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, topicMetadata(t))
			continue
		}
		name := *rt.Topic
		t = s.store.Topic(name)
		var err error
		if t == nil {
			switch {
			case !validTopicName(name):
				err = storage.ErrInvalidTopic
			case autoCreate && !storage.IsInternalTopic(name) && !c.canCreateTopic(name):
				err = errTopicDenied
			case autoCreate && !storage.IsInternalTopic(name):
				// The group coordinator creates its internal topic itself.
				t, err = s.autoCreate(name)
			default:
				err = storage.ErrUnknownTopic
			}
		}
		if err == nil && !c.can(opDescribe, rtTopic, name) {
			err = errTopicDenied
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &name
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, topicMetadata(t))
	}
	return resp
}

// autoCreate creates a topic with the default partition count and configuration.
func (s *Server) autoCreate(name string) (*storage.Topic, error) {
	t, err := s.store.CreateTopic(name, s.cfg.NumPartitions, s.cfg.TopicDefaults)
	if errors.Is(err, storage.ErrTopicExists) {
		if t = s.store.Topic(name); t != nil {
			return t, nil
		}
	}
	if err != nil {
		s.log.Warn("auto-create topic failed", "topic", name, "err", err)
		return nil, err
	}
	s.log.Info("auto-created topic", "topic", name, "partitions", s.cfg.NumPartitions)
	return t, nil
}

func (s *Server) topicByID(id [16]byte) *storage.Topic {
	if id == ([16]byte{}) {
		return nil
	}
	for _, t := range s.store.Topics() {
		if t.ID() == id {
			return t
		}
	}
	return nil
}

var (
	selfReplicas = []int32{nodeID}
	noReplicas   = []int32{}
)

func topicMetadata(t *storage.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name()
	mt.Topic = &name
	mt.TopicID = t.ID()
	mt.IsInternal = name == consumerOffsetsTopic
	parts := t.Partitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(parts))
	for _, p := range parts {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index()
		mp.Leader = nodeID
		mp.LeaderEpoch = 0
		mp.Replicas = selfReplicas
		mp.ISR = selfReplicas
		mp.OfflineReplicas = noReplicas
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// validTopicName applies Kafka's topic name rules: 1..249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// handleFindCoordinator answers that this node coordinates every group.
func (s *Server) handleFindCoordinator(r *kmsg.FindCoordinatorRequest, lst listenerInfo) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := lst.host, lst.port
	answer := func(key string) (code int16, msg *string) {
		switch {
		case r.CoordinatorType == 1:
			m := "transactions are not supported by this broker"
			return kerr.TransactionalIDAuthorizationFailed.Code, &m
		case r.CoordinatorType != 0:
			m := "unsupported coordinator type"
			return kerr.InvalidRequest.Code, &m
		case s.cfg.Groups == nil:
			m := "this broker has no group coordinator"
			return kerr.CoordinatorNotAvailable.Code, &m
		}
		return 0, nil
	}
	if r.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = answer(r.CoordinatorKey)
		if resp.ErrorCode == 0 {
			resp.NodeID, resp.Host, resp.Port = nodeID, host, port
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return resp
	}
	for _, key := range r.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.ErrorCode, c.ErrorMessage = answer(key)
		if c.ErrorCode == 0 {
			c.NodeID, c.Host, c.Port = nodeID, host, port
		} else {
			c.NodeID, c.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}

// handleInitProducerID allocates a producer id for idempotent producers.
func (s *Server) handleInitProducerID(r *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		s.log.Warn("refused InitProducerId for a transactional producer: transactions are not supported", "transactional_id", *r.TransactionalID)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	id, err := s.store.NextProducerID()
	if err != nil {
		s.log.Error("allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
