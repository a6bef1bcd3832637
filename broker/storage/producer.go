package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// retainedBatches is how many batches per producer are remembered to answer retries,
// as Kafka does (NUM_BATCHES_TO_RETAIN); clients keep at most 5 requests in flight.
const retainedBatches = 5

// producerExpiryMs drops the state of producers idle for longer (Kafka's
// producer.id.expiration.ms), so that the table does not grow with every restart of
// every producer.
const producerExpiryMs = 24 * 3600 * 1000

// batchMeta is what is remembered of one appended batch of an idempotent producer.
type batchMeta struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
	LastOffset int64 `json:"last_offset"`
}

// producerEntry is the state of one producer ID in one partition.
type producerEntry struct {
	Epoch    int16       `json:"epoch"`
	Batches  []batchMeta `json:"batches"`   // oldest first, at most retainedBatches
	LastSeen int64       `json:"last_seen"` // when its last batch was appended (ms), or that batch's timestamp on replay
}

// producers is the idempotent-producer state of one partition.
type producers map[int64]*producerEntry

// lastSeq is the sequence of the last record of a batch, wrapping past MaxInt32 to 0.
func lastSeq(first int32, delta int32) int32 {
	s := int64(first) + int64(delta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// check applies Kafka's idempotence rules to a batch before it is appended. It returns
// the remembered batch when h is a retry of it (the caller answers with its offsets and
// appends nothing).
func (ps producers) check(h recordbatch.Header) (*batchMeta, error) {
	if h.ProducerID < 0 {
		return nil, nil
	}
	e := ps[h.ProducerID]
	if e == nil {
		return nil, nil // unknown producer (new, or expired): any sequence is accepted
	}
	switch {
	case h.ProducerEpoch < e.Epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.Epoch)
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, want 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := lastSeq(h.BaseSequence, h.LastOffsetDelta)
	for i := range e.Batches {
		if b := &e.Batches[i]; b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			return b, nil
		}
	}
	if n := len(e.Batches); n > 0 {
		want := lastSeq(e.Batches[n-1].LastSeq, 1)
		if h.BaseSequence != want {
			return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, want %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
		}
	}
	return nil, nil
}

// update remembers an appended batch (whose offsets are assigned), seen at seenMs.
func (ps producers) update(h recordbatch.Header, seenMs int64) {
	if h.ProducerID < 0 {
		return
	}
	e := ps[h.ProducerID]
	if e == nil || e.Epoch != h.ProducerEpoch {
		e = &producerEntry{Epoch: h.ProducerEpoch}
		ps[h.ProducerID] = e
	}
	if len(e.Batches) == retainedBatches {
		copy(e.Batches, e.Batches[1:])
		e.Batches = e.Batches[:retainedBatches-1]
	}
	e.Batches = append(e.Batches, batchMeta{
		FirstSeq:   h.BaseSequence,
		LastSeq:    lastSeq(h.BaseSequence, h.LastOffsetDelta),
		BaseOffset: h.BaseOffset,
		LastOffset: h.LastOffset(),
	})
	e.LastSeen = max(seenMs, h.MaxTimestamp)
}

// expire drops producers not seen since nowMs - producerExpiryMs.
func (ps producers) expire(nowMs int64) {
	for id, e := range ps {
		if e.LastSeen < nowMs-producerExpiryMs {
			delete(ps, id)
		}
	}
}

// A producer-state snapshot, <offset>.snapshot, holds the state of every producer as
// of all batches below offset. At open the newest usable snapshot is loaded and the
// batches after it are replayed from the log.

type snapshotFile struct {
	Producers map[string]*producerEntry `json:"producers"`
}

func writeSnapshot(dir string, offset int64, ps producers) error {
	sf := snapshotFile{Producers: make(map[string]*producerEntry, len(ps))}
	for id, e := range ps {
		sf.Producers[strconv.FormatInt(id, 10)] = e
	}
	data, err := json.Marshal(sf)
	if err != nil {
		return fmt.Errorf("encode producer snapshot: %w", err)
	}
	if err := atomicfile.Write(segmentPath(dir, offset, ".snapshot"), data); err != nil {
		return err
	}
	// Keep the two newest snapshots; older ones are never needed again.
	offs := snapshotOffsets(dir)
	for i := 0; i+2 < len(offs); i++ {
		os.Remove(segmentPath(dir, offs[i], ".snapshot"))
	}
	return nil
}

// snapshotOffsets lists the offsets of the snapshots in dir, ascending.
func snapshotOffsets(dir string) []int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
	var offs []int64
	for _, n := range names {
		if off, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(n), ".snapshot"), 10, 64); err == nil {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs
}

// loadSnapshot loads the newest snapshot at or below maxOffset. It returns the offset
// from which batches must be replayed (0 when there is no usable snapshot).
func loadSnapshot(dir string, maxOffset int64) (producers, int64) {
	offs := snapshotOffsets(dir)
	for i := len(offs) - 1; i >= 0; i-- {
		if offs[i] > maxOffset {
			os.Remove(segmentPath(dir, offs[i], ".snapshot")) // the log was truncated below it
			continue
		}
		data, err := os.ReadFile(segmentPath(dir, offs[i], ".snapshot"))
		if err != nil {
			continue
		}
		var sf snapshotFile
		if json.Unmarshal(data, &sf) != nil {
			continue
		}
		ps := make(producers, len(sf.Producers))
		for k, e := range sf.Producers {
			if id, err := strconv.ParseInt(k, 10, 64); err == nil && e != nil {
				ps[id] = e
			}
		}
		return ps, offs[i]
	}
	return producers{}, 0
}
