package document

import (
	"sync"
	"time"

	"github.com/logpipe/logpipe/internal/record"
)

// zoneCache remembers the time zones that records name, so that each is loaded once,
// and the dataset names they carry, so that each is one string. It is bounded: a
// producer naming ever new ones costs a lookup and a string each, not memory.
type zoneCache struct {
	mu       sync.RWMutex
	zones    map[string]zone // zone.loc nil: the name is not a zone
	datasets map[string]string
}

type zone struct {
	loc  *time.Location
	name string
}

// maxZones bounds the zones a builder remembers (there are about 600 IANA names).
const maxZones = 1024

func newZoneCache() *zoneCache {
	return &zoneCache{zones: map[string]zone{}, datasets: map[string]string{}}
}

// get returns the zone of name and name as a string; loc is nil if it is not a zone.
func (c *zoneCache) get(name []byte) (loc *time.Location, s string) {
	if c == nil {
		loc, _ := record.ParseZone(string(name))
		return loc, string(name)
	}
	c.mu.RLock()
	z, ok := c.zones[string(name)]
	c.mu.RUnlock()
	if ok {
		return z.loc, z.name
	}
	z.name = string(name)
	z.loc, _ = record.ParseZone(z.name)
	c.mu.Lock()
	if len(c.zones) < maxZones {
		c.zones[z.name] = z
	}
	c.mu.Unlock()
	return z.loc, z.name
}

// dataset returns the dataset a header names, "" if the name is not valid.
func (c *zoneCache) dataset(name []byte) string {
	if c != nil {
		c.mu.RLock()
		s, ok := c.datasets[string(name)]
		c.mu.RUnlock()
		if ok {
			return s
		}
	}
	s := string(name)
	if record.ValidDataset(s) != nil {
		s = ""
	}
	if c != nil {
		c.mu.Lock()
		if len(c.datasets) < maxZones {
			c.datasets[string(name)] = s
		}
		c.mu.Unlock()
	}
	return s
}

// zone is the zone that times without one mean in a record of dataset: the dataset's
// own timezone if it has one, else the record's event.timezone, else UTC; and the
// name event.timezone shows ("" for the UTC fallback).
func (b Builder) zone(dataset string, header []byte) (*time.Location, string) {
	if loc := b.Datasets.Zone(dataset); loc != nil {
		return loc, loc.String()
	}
	if header != nil {
		if loc, name := b.zones.get(header); loc != nil {
			return loc, name
		}
	}
	return time.UTC, ""
}
