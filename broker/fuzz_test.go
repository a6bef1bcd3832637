package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzConnection writes arbitrary bytes to a connection of a running broker:
// whatever it does with that connection, it must keep answering others.
func FuzzConnection(f *testing.F) {
	frame := func(req kmsg.Request, version int16) []byte {
		req.SetVersion(version)
		return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, 1)
	}
	f.Add(frame(apiVersionsReq(), 3))
	f.Add(frame(kmsg.NewPtrMetadataRequest(), 12))
	f.Add(frame(produceReq("fuzz", 1, batch(2, 0)), 9))
	f.Add(frame(produceReq("fuzz", 0, batch(2, 0)), 3))
	f.Add(frame(produceReq("fuzz", -1, batch(1, 0)), 7))
	f.Add([]byte{0, 0, 0, 14, 0, 18, 0, 99, 0, 0, 0, 7, 0, 1, 'x', 0, 1, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})

	b := startBroker(f, nil)
	healthy, err := net.Dial("tcp", b.Addr())
	if err != nil {
		f.Fatal(err)
	}
	defer healthy.Close()
	check := frame(apiVersionsReq(), 3)

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(data)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		io.Copy(io.Discard, c) // whatever the broker answers, or a timeout
		c.Close()

		if _, err := healthy.Write(check); err != nil {
			t.Fatalf("healthy connection: %v", err)
		}
		healthy.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(healthy, size[:]); err != nil {
			t.Fatalf("healthy connection: %v", err)
		}
		if _, err := io.CopyN(io.Discard, healthy, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatalf("healthy connection: %v", err)
		}
	})
}
