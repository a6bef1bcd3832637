package group

import "unicode/utf16"

// javaStringHashCode is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over the UTF-16
// code units of s, in wrapping int32 arithmetic.
func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + int32(hi)
			h = 31*h + int32(lo)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// PartitionFor returns the __consumer_offsets partition that holds group's records, as Kafka
// computes it: Utils.abs(groupId.hashCode()) % partitions, where Utils.abs maps
// Integer.MIN_VALUE to 0.
func PartitionFor(group string, partitions int32) int32 {
	h := javaStringHashCode(group)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
