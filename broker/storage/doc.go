// Package storage is the broker's storage engine: topics of partitions, each partition
// an append-only log of Kafka record batches (v2) kept in Kafka's on-disk layout. It
// knows nothing of the network.
//
// # Layout
//
// Under the data directory:
//
//	topics.json                  topic names, ids, partition counts and config overrides
//	producer-id                  the end of the last reserved block of producer IDs
//	.clean_shutdown              present only while the store is cleanly closed
//	<topic>-<partition>/
//	    00000000000000000000.log        batches exactly as on the wire, offsets assigned
//	    00000000000000000000.index      sparse: 4-byte relative offset, 4-byte position
//	    00000000000000000000.timeindex  8-byte max timestamp so far, 4-byte relative offset
//	    00000000000000012345.snapshot   idempotent-producer state as of offset 12345
//
// A partition's last segment is active: it takes appends and keeps its index entries
// in memory. When it reaches segment.bytes or segment.ms it is sealed (index files
// written, everything fsynced) and a new segment starts at the log end offset. Sealed
// index files are searched on disk, so memory does not grow with the data stored.
//
// # Open files
//
// Only active segments keep their log file open. A sealed segment's file is opened on
// demand through a cache shared by the store (Options.MaxOpenSegments, least recently
// used closed first), and Open does not open the sealed segments whose indexes are
// sound, so the descriptors the store holds do not grow with the number of segments.
// Open files are reference-counted: one evicted or deleted while a Slice holds it is
// closed when the Slice is released. Topics and partitions are bounded by
// Options.MaxTopics and MaxPartitions (ErrPolicyViolation).
//
// # Durability and recovery
//
// Append writes a batch with one write(2); it is readable at once. Sync fsyncs the
// active segment; concurrent callers share one fsync (group commit). Sealed segments
// were fsynced when sealed, so after a crash only the active segment can hold torn
// bytes: without the clean-shutdown marker, Open reads every batch of each active
// segment, checks length, magic, CRC-32C, record count and offset continuity, and
// truncates the file at the first batch that fails. Index files that are missing or
// damaged are rebuilt from the log in any case. Nothing that Sync reported durable is
// lost.
//
// # Idempotent producers
//
// Per partition and producer ID the store keeps the epoch and the last five batches'
// sequence numbers and offsets: a retried batch gets its original offsets back, a gap
// is ErrOutOfOrderSequence, an older epoch ErrInvalidProducerEpoch. The state is
// snapshotted when a segment rolls and at Close, and rebuilt at Open from the newest
// snapshot plus the headers of the batches after it.
//
// # Retention
//
// A goroutine of the Store deletes whole sealed segments older than retention.ms (by
// their largest timestamp) or beyond retention.bytes per partition, oldest first; the
// log start offset is the base offset of the first remaining segment. A Slice from
// Read keeps its segment's file open until released, so deletion never breaks a read.
package storage
