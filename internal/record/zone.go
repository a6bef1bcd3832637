package record

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HostZone is this host's own time zone as the event.timezone header gives it: the
// IANA name the system is set to (TZ, /etc/timezone, or where /etc/localtime points),
// else the current offset from UTC as ±hh:mm.
func HostZone() string {
	for _, name := range zoneNames() {
		if _, err := ParseZone(name); err == nil {
			return name
		}
	}
	_, off := time.Now().Zone()
	return offsetName(off)
}

// zoneNames are the system's candidates for its zone's name, in the order libc reads
// them.
func zoneNames() []string {
	var names []string
	if tz, ok := os.LookupEnv("TZ"); ok {
		tz = strings.TrimPrefix(tz, ":")
		if tz == "" {
			return []string{"UTC"} // TZ set empty: UTC, as libc reads it
		}
		names = append(names, zoneinfoName(tz))
	}
	if b, err := os.ReadFile("/etc/timezone"); err == nil && len(b) < 256 {
		names = append(names, strings.TrimSpace(string(b)))
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		names = append(names, zoneinfoName(target))
	}
	return names
}

// zoneinfoName turns a zoneinfo file's path into its zone's name:
// /usr/share/zoneinfo/Europe/Berlin is Europe/Berlin.
func zoneinfoName(path string) string {
	if i := strings.Index(path, "zoneinfo/"); i >= 0 {
		return path[i+len("zoneinfo/"):]
	}
	if filepath.IsAbs(path) {
		return ""
	}
	return path
}

// offsetName writes an offset from UTC in seconds as ±hh:mm.
func offsetName(off int) string {
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60)
}
