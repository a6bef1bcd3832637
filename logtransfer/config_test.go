package logtransfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/logging"
)

// TestShippedConfigIsTheDefault: conf/logtransfer.ini states the defaults of the
// hostile-input limits, and New applies the decompression bound to sarama.
func TestShippedConfigIsTheDefault(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "conf", "logtransfer.ini"))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.Kafka.MaxDecompressedBatchBytes != def.Kafka.MaxDecompressedBatchBytes || cfg.Kafka.DLQMaxMessageBytes != def.Kafka.DLQMaxMessageBytes ||
		cfg.Decode.MaxTimestampFuture != 24*time.Hour || cfg.Decode.MaxTimestampAge != 720*time.Hour {
		t.Fatalf("shipped %+v %+v, defaults %+v %+v", cfg.Kafka, cfg.Decode, def.Kafka, def.Decode)
	}
	cfg.Output.Type, cfg.Output.Dir = "file", t.TempDir()
	if _, err := New(context.Background(), cfg, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	if sarama.MaxDecompressedBatchSize != 64<<20 || sarama.MaxResponseSize < 64<<20 {
		t.Fatalf("sarama limits: decompressed %d, response %d", sarama.MaxDecompressedBatchSize, sarama.MaxResponseSize)
	}
	small := def
	small.Kafka.MaxDecompressedBatchBytes = 1 << 20
	if _, err := newRawFetcher(small).client(); err != nil {
		t.Fatalf("rescue client with the smallest limit: %v", err)
	}
	bad := def
	bad.Kafka.MaxDecompressedBatchBytes = 0
	if bad.Validate() == nil {
		t.Fatal("max_decompressed_batch_bytes = 0 accepted")
	}
}

func TestCanProbe(t *testing.T) {
	for err, want := range map[error]bool{
		sarama.PacketDecodingError{Info: "varint overflow"}:      true,
		fmt.Errorf("x: %w", sarama.ErrDecompressedBatchTooLarge): true,
		errors.New("window size exceeded"):                       true,
		sarama.ErrOffsetOutOfRange:                               false,
		sarama.ErrMessageTooLarge:                                false,
		sarama.ErrNotConnected:                                   false,
		&net.OpError{Op: "read", Err: syscall.ECONNRESET}:        false,
	} {
		if got := canProbe(err); got != want {
			t.Errorf("canProbe(%v) = %v", err, got)
		}
	}
}
