package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups, ListGroups and DeleteGroups.

func (c *Coordinator) describeGroups(r *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	code := c.available()
	for _, id := range r.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = id
		if code != 0 {
			d.ErrorCode = code
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d.State = stateDead.String()
		if cl := c.lookup(id); cl != nil {
			cl.mu.Lock()
			cl.g.describe(&d)
			cl.mu.Unlock()
		}
		if d.State == stateDead.String() && c.offsets.has(id) {
			d.State = stateEmpty.String()
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func (c *Coordinator) listGroups(r *kmsg.ListGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	if len(r.TypesFilter) > 0 && !slices.ContainsFunc(r.TypesFilter, func(t string) bool { return strings.EqualFold(t, "classic") }) {
		return resp
	}
	type info struct{ state, protocolType string }
	seen := map[string]info{}
	for _, cl := range c.cells() {
		cl.mu.Lock()
		if g := cl.g; g.state != stateDead {
			seen[g.id] = info{g.state.String(), g.protocolType}
		}
		cl.mu.Unlock()
	}
	for _, id := range c.offsets.groupIDs() {
		if _, ok := seen[id]; !ok {
			seen[id] = info{stateEmpty.String(), ""}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		in := seen[id]
		if len(r.StatesFilter) > 0 && !slices.ContainsFunc(r.StatesFilter, func(s string) bool { return strings.EqualFold(s, in.state) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = id, in.protocolType, in.state, "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func (c *Coordinator) deleteGroups(r *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	code := c.available()
	for _, id := range r.Groups {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = id
		if d.ErrorCode = code; code == 0 {
			d.ErrorCode = c.deleteGroup(id)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

// deleteGroup deletes an empty group and its offsets.
func (c *Coordinator) deleteGroup(id string) int16 {
	if id == "" {
		return errInvalidGroupID
	}
	c.mu.Lock()
	cl := c.groups[id]
	if cl != nil {
		if code := c.askNow(cl, func(from waiterID) event { return deleteEvent{from} }).code; code != 0 {
			c.mu.Unlock()
			return code
		}
		delete(c.groups, id)
	}
	c.mu.Unlock()
	found := cl != nil
	if found {
		if err := c.deleteMetadata(cl); err != nil {
			c.log.Error("delete group metadata", "group", id, "err", err)
			return errCoordinatorNotAvailable
		}
	}
	offs := c.offsets.all(id)
	if len(offs) > 0 {
		found = true
		keys := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			keys = append(keys, tp)
		}
		if err := c.offsets.remove(id, keys, nil); err != nil {
			c.log.Error("delete group offsets", "group", id, "err", err)
			return errCoordinatorNotAvailable
		}
	}
	if !found {
		return errGroupIDNotFound
	}
	return 0
}

// cells returns every group's cell.
func (c *Coordinator) cells() []*cell {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*cell, 0, len(c.groups))
	for _, cl := range c.groups {
		out = append(out, cl)
	}
	return out
}
