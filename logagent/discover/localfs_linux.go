package discover

import "golang.org/x/sys/unix"

// localFS reports whether dir is on a local disk or memory file system, where
// inotify reports every change made on this host. Network and FUSE file systems
// (NFS, SMB, CephFS, sshfs...) report none of the changes other hosts make, and
// unknown ones are not trusted either.
func localFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	switch int64(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.OVERLAYFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC, unix.REISERFS_SUPER_MAGIC, unix.RAMFS_MAGIC,
		unix.NILFS_SUPER_MAGIC, unix.BCACHEFS_SUPER_MAGIC, zfsSuperMagic:
		return true
	}
	return false
}

// zfsSuperMagic is OpenZFS's f_type (not in x/sys/unix).
const zfsSuperMagic = 0x2fc12fc1
