// Package group is the consumer group coordinator of logpipe's single-node broker.
//
// It implements server.Groups: JoinGroup, SyncGroup, Heartbeat, LeaveGroup (single and
// batched), OffsetCommit, OffsetFetch (including all partitions and the v8 multi-group form),
// DescribeGroups, ListGroups, DeleteGroups and OffsetDelete of Kafka's classic group protocol,
// at the versions Versions reports.
//
// # Groups
//
// Each group is a state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead).
// A member joining, leaving or missing its session timeout starts a
// rebalance; members must rejoin within the largest rebalance timeout of the group or are
// removed; the join phase ends early once every member has rejoined. A group that was empty
// waits the initial rebalance delay (extended while new members keep arriving, up to the
// rebalance timeout) so that members starting together rebalance once. The first member to
// join is the leader and stays leader while it remains; the protocol is the one every member
// supports that most members prefer. From JoinGroup v4 a member joining without id gets
// MEMBER_ID_REQUIRED and an id to rejoin with. Static members (group.instance.id) that rejoin
// without a member id get a new id, the old id is fenced (FENCED_INSTANCE_ID) and, if the
// group is stable and their protocols are unchanged, they keep their assignment without a
// rebalance. Close stops all timers and answers blocked requests with
// COORDINATOR_NOT_AVAILABLE.
//
// # State machine and IO
//
// A group does no IO, in the style of etcd's raft: group.Step takes one event — a request
// (JoinGroup, SyncGroup, Heartbeat, one member of a LeaveGroup, the member check of an
// OffsetCommit, DeleteGroups), a timer firing, the restore of stored metadata, a stop — with
// the time it happens, and returns the answers to give (a blocked JoinGroup or SyncGroup is
// answered by a later Step), the timers to arm or stop and the group metadata record to
// write. The Coordinator does all the IO (cell.go): it runs each Step under the group's
// mutex and applies its timer operations there with the Clock it owns (so that a timer
// replaced meanwhile never fires into the group), then, with the mutex released, writes the
// record (records of one group are written in Step order, an older one never after a newer
// one) and delivers the answers. The group holds no pointer to the coordinator, and no
// storage write happens under a group's mutex. Tests drive a bare group with events and
// move time by stepping its timers (machine_test.go), with no goroutine or clock.
//
// Files: group.go (events, outputs, Step), join.go (JoinGroup), rebalance.go (join and sync
// phases, SyncGroup), session.go (heartbeats, session expiry, LeaveGroup, commit checks),
// protocol.go (protocol selection), metadata.go (the group's metadata record and restore);
// coordinator.go (configuration, loading, Close, dispatch), cell.go (the IO loop),
// membership.go, commit.go, admin.go (the requests' coordinator side), expire.go (offset
// expiry), offsets.go and records.go (the __consumer_offsets log).
//
// # Committed offsets
//
// Offsets are records of the internal topic __consumer_offsets (created with
// cleanup.policy=compact), with Apache Kafka's schema: key version 1 (group, topic,
// partition), value version 3 (offset, leader epoch, metadata, commit timestamp), a null value
// deleting the key. A group's records go to partition abs(javaHashCode(group)) % partitions,
// as Kafka places them, so Kafka tooling can read the topic. A commit is answered only after
// its batch is fsynced (Partition.Sync, group-committed with concurrent commits). At start the
// coordinator replays every partition to rebuild the offsets; until then it answers
// COORDINATOR_NOT_AVAILABLE. After every completed rebalance (and when a group empties or a
// static member is replaced) the group's metadata is written too, as Kafka's group metadata
// record (key version 2: group; value version 3: protocol type, generation, protocol, leader,
// members with their subscriptions and assignments), without waiting for an fsync (the next
// commit's fsync covers it). A restarted broker restores stable groups from it: members keep
// their ids, generation and assignments, their sessions start anew, and a broker restart
// causes no rebalance.
//
// # Bounded growth
//
// The log is kept bounded by snapshots plus size-based retention, without a log cleaner:
//
//   - Each partition counts the bytes appended since the start of its latest snapshot. When the
//     commits since then exceed OffsetsSegmentBytes (T), the next write first appends the whole
//     live state of the partition (every current offset and group metadata record of its
//     groups; L bytes) and fsyncs it.
//     Everything before that snapshot is then redundant: replaying from the snapshot's first
//     record gives the same state.
//   - The topic has segment.bytes = T and retention.bytes = 3T+3L (L the largest live state of
//     any partition, raised by the coordinator as L grows), retention.ms = -1; the storage
//     applies retention.bytes (only) to compacted topics. It deletes whole sealed segments,
//     oldest first, only while at least retention.bytes remain, and the newest complete
//     snapshot and everything after it never span more than L + T + L bytes (previous
//     snapshot, commits, snapshot being written; a write checks the threshold before it
//     appends), which is less. So retention only ever deletes redundant records, and a
//     partition holds at most about 4T + 3L bytes.
//
// Offsets of groups without members expire OffsetsRetention after the later of their commit
// and the group becoming empty (tombstones, then gone at the next snapshot).
package group
