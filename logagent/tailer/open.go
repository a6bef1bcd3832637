package tailer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink and ErrNotRegular are why a path is refused: only regular files are
// read, and symlinks are followed only when the collection entry allows it.
var (
	ErrSymlink    = errors.New("is a symbolic link (set \"follow_symlinks\": true on the entry to follow it)")
	ErrNotRegular = errors.New("is not a regular file")
)

// RefusedError is a path the tailer will not read, for one of the reasons above.
type RefusedError struct {
	Path   string
	Reason error // ErrSymlink or ErrNotRegular
	Mode   fs.FileMode
}

func (e *RefusedError) Error() string {
	if e.Reason == ErrNotRegular {
		return fmt.Sprintf("%s %v (%s)", e.Path, e.Reason, kind(e.Mode))
	}
	return fmt.Sprintf("%s %v", e.Path, e.Reason)
}

func (e *RefusedError) Unwrap() error { return e.Reason }

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}

// Access is how a path may be opened.
type Access struct {
	// Trusted is a directory that holds the path, whose own symlinks are followed
	// (the literal part of the collection entry, written by the administrator).
	// Components of the path below it are not followed unless FollowSymlinks. Empty:
	// only the last component is checked.
	Trusted string
	// FollowSymlinks follows every symlink of the path.
	FollowSymlinks bool
}

// Check tells, without opening anything, whether path would be refused: a symlink
// where none may be, or not a regular file. It returns a *RefusedError, or another
// error when the path cannot be examined (for example, it no longer exists).
func (a Access) Check(path string) error {
	if a.FollowSymlinks {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return &RefusedError{Path: path, Reason: ErrNotRegular, Mode: fi.Mode()}
		}
		return nil
	}
	dir, rest := a.split(path)
	for i := range rest {
		p := filepath.Join(dir, filepath.Join(rest[:i+1]...))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		m := fi.Mode()
		switch {
		case m&fs.ModeSymlink != 0:
			return &RefusedError{Path: p, Reason: ErrSymlink, Mode: m}
		case i < len(rest)-1 && !m.IsDir():
			return &RefusedError{Path: p, Reason: ErrNotRegular, Mode: m}
		case i == len(rest)-1 && !m.IsRegular():
			return &RefusedError{Path: p, Reason: ErrNotRegular, Mode: m}
		}
	}
	return nil
}

// split cuts path into the trusted directory and the components below it.
func (a Access) split(path string) (dir string, rest []string) {
	path = filepath.Clean(path)
	dir = filepath.Dir(path)
	if t := filepath.Clean(a.Trusted); a.Trusted != "" && (t == "/" || strings.HasPrefix(path, t+"/")) && t != path {
		dir = t
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, dir), "/")
	return dir, strings.Split(rel, "/")
}

// Open opens path for reading without ever blocking and without following a
// symlink it may not follow: each component below the trusted directory is opened
// with O_NOFOLLOW relative to its parent, the file itself with O_NONBLOCK (a FIFO or
// device never blocks the open), and anything but a regular file is refused with a
// *RefusedError. The file returned is in blocking mode.
func (a Access) Open(path string) (*os.File, error) {
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	var fd int
	if a.FollowSymlinks {
		var err error
		if fd, err = openat(unix.AT_FDCWD, path, flags); err != nil {
			if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
				return nil, &RefusedError{Path: path, Reason: ErrNotRegular, Mode: fi.Mode()}
			}
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	} else {
		dir, rest := a.split(path)
		dfd, err := openat(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		p := dir
		for i, name := range rest {
			p = filepath.Join(p, name)
			fl := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_DIRECTORY
			if i == len(rest)-1 {
				fl = flags | unix.O_NOFOLLOW
			}
			next, err := openat(dfd, name, fl)
			if err != nil {
				// ELOOP: a symlink under O_NOFOLLOW; ENOTDIR: not a directory where
				// one was expected; ENXIO: a socket. Say which.
				var st unix.Stat_t
				if serr := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
					last := i == len(rest)-1
					switch m := modeOf(st.Mode); {
					case m&fs.ModeSymlink != 0:
						err = &RefusedError{Path: p, Reason: ErrSymlink, Mode: m}
					case last && !m.IsRegular() || !last && !m.IsDir():
						err = &RefusedError{Path: p, Reason: ErrNotRegular, Mode: m}
					}
				}
				unix.Close(dfd)
				if _, ok := err.(*RefusedError); ok {
					return nil, err
				}
				return nil, &os.PathError{Op: "open", Path: p, Err: err}
			}
			unix.Close(dfd)
			dfd = next
		}
		fd = dfd
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if m := modeOf(st.Mode); !m.IsRegular() {
		unix.Close(fd)
		return nil, &RefusedError{Path: path, Reason: ErrNotRegular, Mode: m}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openat(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// modeOf converts a stat mode to an fs.FileMode's type bits.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}
