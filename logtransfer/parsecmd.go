package logtransfer

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/record"
)

// MaxParseLineBytes bounds a line of ParseLines' input.
const MaxParseLineBytes = 4 << 20

// ParseLines writes to out, one JSON object a line, the document each line of in
// would become as a record of dataset (written with times in zone: an IANA name or
// ±hh:mm; empty: this host's zone), read now: the way to try a dataset's parser
// before deploying it. No Kafka or Elasticsearch is involved. A line the parser does
// not match is shown with its _parsefailure tag and error.message.
func ParseLines(cfg Config, dataset, zone string, in io.Reader, out io.Writer) error {
	if err := record.ValidDataset(dataset); err != nil {
		return fmt.Errorf("--dataset: %w", err)
	}
	if zone == "" {
		zone = record.HostZone()
	}
	if _, err := record.ParseZone(zone); err != nil {
		return fmt.Errorf("--timezone: %w", err)
	}
	b, err := cfg.builder()
	if err != nil {
		return err
	}
	if _, ok := b.Datasets.Lookup(dataset); !ok {
		return fmt.Errorf("unknown dataset %q: the built-in ones and the [dataset.NAME] sections of the config are %v", dataset, b.Datasets.Datasets())
	}
	headers := []*sarama.RecordHeader{
		{Key: []byte(record.Dataset), Value: []byte(dataset)},
		{Key: []byte(record.Timezone), Value: []byte(zone)},
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), MaxParseLineBytes)
	w := bufio.NewWriter(out)
	var offset int64
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if l := len(line); l > 0 && line[l-1] == '\r' {
			line = line[:l-1]
		}
		m := &sarama.ConsumerMessage{Topic: "parse", Offset: offset, Value: line, Timestamp: time.Now(), Headers: headers}
		offset++
		w.Write(b.Build(m).Body)
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", offset+1, err)
	}
	return w.Flush()
}
