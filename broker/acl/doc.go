// Package acl is the broker's authorizer: Kafka's ACL model (as Apache Kafka's
// StandardAuthorizer applies it), its durable store and the CreateAcls,
// DescribeAcls and DeleteAcls requests.
//
// # Model
//
// A Binding allows or denies a principal ("User:name", or "User:*" for every
// principal), connecting from a host ("*" or an IP address), an operation
// (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, or ALL) on resources of
// one type (TOPIC, GROUP, CLUSTER named "kafka-cluster", TRANSACTIONAL_ID, ...)
// chosen by a pattern: LITERAL (one name, or "*" for all) or PREFIXED (every
// name starting with it). Enumerations are kmsg's, so values are Kafka's wire
// values.
//
// Authorize decides as Kafka does: super users may do everything; otherwise a
// matching DENY wins over any ALLOW; an ALLOW of READ, WRITE, DELETE or ALTER
// also allows DESCRIBE, ALTER_CONFIGS allows DESCRIBE_CONFIGS (a DENY implies
// nothing); and when no ALLOW matches, the answer is no. With authorization
// disabled (and for a nil *Authorizer) everything is allowed.
//
// The bindings live in <data dir>/acls.json (FileName), one binding a line,
// replaced atomically (internal/atomicfile) on every change and read at Open;
// a file that does not parse is an error naming it. Authorize reads an
// immutable index (by resource type, then literal name, wildcard, and each
// prefix length present) without a lock and allocates nothing: about 110 ns
// with 1,000 bindings (BenchmarkAuthorize).
//
// # Bounds
//
// At most Config.MaxBindings bindings (DefaultMaxBindings, 100,000) are
// stored: a file holding more, or more bytes than they can take, does not
// load, and creations beyond answer POLICY_VIOLATION. Names and principals are
// at most MaxNameBytes. One DeleteAcls handles at most MaxFiltersPerRequest
// filters, of which MaxScanFiltersPerRequest without a resource name; each
// change rewrites the file (ACL changes are administrative and
// rare). Denials and refusals are counted in logpipe_broker_acl_denied_total
// {resource_type} and logpipe_broker_acl_refused_total{reason}; the stored
// count is logpipe_broker_acl_bindings.
//
// # Wiring it into the protocol server
//
//	supers, err := acl.ParseSuperUsers(cfg.ACL.SuperUsers) // [acl] super_users
//	...
//	auth, err := acl.Open(dataDir, acl.Config{
//		Enabled:    cfg.ACL.Enabled, // [acl] enabled
//		SuperUsers: supers,
//		Registerer: registry,
//	})
//
// For each connection, the principal is "User:" + the authenticated SASL user
// name (or the certificate's principal), AnonymousPrincipal without
// authentication; the host is HostOf(conn.RemoteAddr()).
//
//   - ApiVersions: append APIKeys() (keys 29, 30, 31, versions 0 to 3).
//   - CreateAcls, DescribeAcls, DeleteAcls: if !auth.Authorize(principal, host,
//     ClusterOperation(key), kmsg.ACLResourceTypeCluster, ClusterName), answer
//     CLUSTER_AUTHORIZATION_FAILED; else resp, _ := auth.Handle(req). The
//     response is at the request's version.
//   - Other requests: check as in the table below and answer
//     DeniedErrorCode(resourceType) for what is denied (per topic or
//     partition where the response has them, else at the top level).
//   - Metadata: list only auth.FilterDescribable(principal, host, topics);
//     a topic named in the request but not describable answers
//     TOPIC_AUTHORIZATION_FAILED.
//
// What Kafka checks for each request (resource type, operation):
//
//	Produce                    TOPIC WRITE
//	Fetch (consumer)           TOPIC READ
//	ListOffsets, OffsetForLeaderEpoch  TOPIC DESCRIBE
//	Metadata                   TOPIC DESCRIBE (filtered); auto-creation CLUSTER CREATE or TOPIC CREATE
//	OffsetCommit               GROUP READ, then TOPIC READ
//	OffsetFetch                GROUP DESCRIBE, then TOPIC DESCRIBE
//	FindCoordinator            GROUP DESCRIBE
//	JoinGroup, SyncGroup, Heartbeat, LeaveGroup  GROUP READ
//	DescribeGroups             GROUP DESCRIBE
//	ListGroups                 CLUSTER DESCRIBE lists all, else the groups with GROUP DESCRIBE
//	DeleteGroups               GROUP DELETE
//	OffsetDelete               GROUP DELETE, then TOPIC READ
//	CreateTopics               CLUSTER CREATE or TOPIC CREATE
//	DeleteTopics               TOPIC DELETE
//	CreatePartitions           TOPIC ALTER
//	DeleteRecords              TOPIC DELETE
//	DescribeConfigs            TOPIC or CLUSTER (broker) DESCRIBE_CONFIGS
//	AlterConfigs, IncrementalAlterConfigs  TOPIC or CLUSTER ALTER_CONFIGS
//	InitProducerId (idempotent) CLUSTER IDEMPOTENT_WRITE, or AuthorizeAny(TOPIC WRITE)
//	DescribeCluster, DescribeLogDirs  CLUSTER DESCRIBE
//	DescribeUserScramCredentials  CLUSTER DESCRIBE
//	AlterUserScramCredentials  CLUSTER ALTER
//	ApiVersions, SaslHandshake, SaslAuthenticate  none
//
// # Setting up ACLs (operators)
//
// Turn authorization on in broker.ini with the administrator as super user
// ([acl] enabled = true, super_users = User:admin), then, as User:admin
// (kafka-acls.sh, kadm, or logpipectl acls add):
//
//   - each agent: WRITE and DESCRIBE on its topics (PREFIXED "logs-" for a
//     naming scheme), and IDEMPOTENT_WRITE on the cluster;
//   - each transfer: READ (which implies DESCRIBE) on its topics, and READ on
//     its consumer group;
//   - everything else is denied. Super users need no bindings.
package acl
