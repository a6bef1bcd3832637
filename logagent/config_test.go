package logagent

import (
	"reflect"
	"testing"
)

// TestShippedIniIsTheDefaults loads conf/logagent.ini, which says its values are the
// defaults, and compares it with DefaultConfig: a default changed in one place and not
// the other (flush_frequency, 0 since 2026-11) fails here.
func TestShippedIniIsTheDefaults(t *testing.T) {
	got, err := LoadConfig("../conf/logagent.ini")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conf/logagent.ini differs from DefaultConfig:\n ini:      %+v\n defaults: %+v", got, want)
	}
	if want.Kafka.FlushFrequency != 0 {
		t.Errorf("flush_frequency defaults to %v; want 0 (a batch goes at once when its partition has nothing in flight)", want.Kafka.FlushFrequency)
	}
}
