package status

// DiskWalks is how many times p walked its data directory.
func DiskWalks(p *Page) int {
	p.disk.mu.Lock()
	defer p.disk.mu.Unlock()
	return p.disk.walks
}
