package group

// Offset expiry: offsets of groups without members expire OffsetsRetention after the later
// of their commit and the group becoming empty.

func (c *Coordinator) expireLoop() {
	if c.closed.Load() {
		return
	}
	c.ExpireOffsets()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() {
		c.expireTimer = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, c.expireLoop)
	}
}

// ExpireOffsets deletes the offsets of groups without members that are older than the
// offsets retention, and forgets empty groups without offsets. It runs every
// RetentionCheckInterval; tests call it directly.
func (c *Coordinator) ExpireOffsets() {
	if c.available() != 0 {
		return
	}
	now := c.clock.Now()
	for _, id := range c.offsets.groupIDs() {
		var emptySince int64
		if cl := c.lookup(id); cl != nil {
			cl.mu.Lock()
			members := len(cl.g.members) + len(cl.g.pending)
			emptySince = cl.g.emptySince.UnixMilli()
			cl.mu.Unlock()
			if members > 0 {
				continue
			}
		}
		offs := c.offsets.all(id)
		keys := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			keys = append(keys, tp)
		}
		cutoff := now.Add(-c.cfg.OffsetsRetention).UnixMilli()
		err := c.offsets.remove(id, keys, func(_ topicPartition, v offsetValue) bool {
			return max(v.commitTime, emptySince) > cutoff
		})
		if err != nil {
			c.log.Error("expire offsets", "group", id, "err", err)
		}
	}
	// Forget empty groups without offsets; their metadata tombstones are written after the
	// locks are released.
	var forgotten []*cell
	c.mu.Lock()
	for id, cl := range c.groups {
		if c.offsets.has(id) {
			continue
		}
		cl.mu.Lock()
		forget := cl.g.state == stateEmpty && cl.g.idle()
		var eff effects
		if forget {
			eff = c.stopLocked(cl, errCoordinatorNotAvailable, true)
		}
		cl.mu.Unlock()
		if forget {
			c.finish(cl, eff) // answers nothing, writes nothing: the group was idle
			delete(c.groups, id)
			forgotten = append(forgotten, cl)
		}
	}
	c.mu.Unlock()
	for _, cl := range forgotten {
		if c.offsets.hasMeta(cl.id) {
			if err := c.deleteMetadata(cl); err != nil {
				c.log.Error("delete group metadata", "group", cl.id, "err", err)
			}
		}
	}
}
