package group

import (
	"bytes"
	"slices"
)

// candidates returns the protocols that every member except skip supports, in the order of
// the longest-standing such member's preference; nil means no constraint (no other member).
func (g *group) candidates(skip *member) []string {
	var out []string
	first := true
	for _, m := range g.orderedMembers() {
		if m == skip {
			continue
		}
		if first {
			for _, p := range m.protocols {
				out = append(out, p.name)
			}
			first = false
			continue
		}
		out = slices.DeleteFunc(out, func(name string) bool { return !m.supports(name) })
	}
	if first {
		return nil
	}
	return out
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// acceptsProtocols reports whether a member (skip, or a new one when skip is nil) with these
// protocols can be in the group: same protocol type, and at least one protocol that all other
// members support.
func (g *group) acceptsProtocols(skip *member, protocolType string, protocols []protocol) bool {
	others := len(g.members)
	if skip != nil {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidates(skip)
	for _, p := range protocols {
		if slices.Contains(cands, p.name) {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol for the new generation as Kafka does: among the protocols
// every member supports, each member votes for the one it prefers most; the most votes win
// (ties go to the longest-standing member's preference).
func (g *group) selectProtocol() string {
	cands := g.candidates(nil)
	votes := make(map[string]int, len(cands))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(cands, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, name := range cands {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool {
		return x.name == y.name && bytes.Equal(x.metadata, y.metadata)
	})
}
