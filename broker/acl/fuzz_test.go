package acl

import (
	"bytes"
	"runtime"
	"slices"
	"testing"
	"time"
)

// FuzzParse feeds the store loader arbitrary files: it must refuse or accept
// them within time and memory proportional to their size, and what it
// accepts must survive a write and a reload unchanged.
func FuzzParse(f *testing.F) {
	bs := []Binding{
		bind(topic, literal, "logs", "User:agent", opWrite, allow),
		bind(topic, prefixed, "logs-", "User:transfer", opRead, allow),
		{ResourceType: cluster, PatternType: literal, ResourceName: ClusterName, Principal: "User:agent", Host: "10.0.0.1", Operation: opIdemWrite, Permission: deny},
	}
	good, err := encode(bs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version": 1, "bindings": []}`))
	f.Add([]byte(`{"bindings": [{"resource_type":"GROUP"}], "version": 1}`))
	f.Add([]byte(`{"version": 1, "bindings": [[[[[[[[[[]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		got, err := parse(bytes.NewReader(data), max)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20+64*uint64(len(data)) {
			t.Fatalf("parse allocated %d bytes for %d input bytes", grew, len(data))
		}
		if took > time.Second {
			t.Fatalf("parse took %v for %d bytes", took, len(data))
		}
		if err != nil {
			return
		}
		if len(got) > max {
			t.Fatalf("%d bindings accepted with a limit of %d", len(got), max)
		}
		for _, b := range got {
			if nb, err := Normalize(b); err != nil || nb != b {
				t.Fatalf("accepted %s: %v", b, err)
			}
		}
		again, err := encode(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parse(bytes.NewReader(again), max)
		if err != nil || !slices.Equal(back, got) {
			t.Fatalf("reload: %v\n%v\n%v", err, back, got)
		}
	})
}
