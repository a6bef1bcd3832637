// Package discover finds the files a collection entry names: it expands the entry's
// glob (with "**" for any depth of directories), tells which directories to watch so
// that files and directories created later are seen the moment they appear, and
// delivers file system events from one inotify instance (through fsnotify) to every
// entry that cares about them.
package discover

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaxDepth bounds how deep "**" descends below the directory it starts at, so that a
// pattern over a deep or huge tree cannot make a scan unbounded.
const MaxDepth = 16

// Pattern is a compiled entry path: an absolute glob whose components are
// filepath.Match patterns, or "**" for zero or more directories.
type Pattern struct {
	path  string
	comps []string // the components below "/"
}

// Compile checks and compiles an absolute glob.
func Compile(path string) (*Pattern, error) {
	clean := filepath.Clean(path)
	var comps []string
	for _, c := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if c == "" {
			continue
		}
		if c != "**" {
			if _, err := filepath.Match(c, ""); err != nil {
				return nil, err
			}
		}
		comps = append(comps, c)
	}
	return &Pattern{path: clean, comps: comps}, nil
}

// String is the pattern as given (cleaned).
func (p *Pattern) String() string { return p.path }

// HasMeta reports whether a path component holds glob syntax.
func HasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// Expand lists the paths that match now (any type of file: the caller checks what
// it may read), and the directories to watch so that whatever could match later is
// seen: each directory a wildcard or the last component is looked up in, and, where
// a literal directory of the pattern does not exist yet, its nearest existing
// ancestor.
func (p *Pattern) Expand() (matches, dirs []string) {
	p.walk("/", 0, 0, &matches, &dirs)
	slices.Sort(dirs)
	return matches, slices.Compact(dirs)
}

func (p *Pattern) walk(dir string, i, depth int, matches, dirs *[]string) {
	if i == len(p.comps) {
		return
	}
	c := p.comps[i]
	last := i == len(p.comps)-1
	switch {
	case c == "**":
		*dirs = append(*dirs, dir)
		if last {
			// "/a/**" matches every file below /a.
			p.listAll(dir, depth, matches, dirs)
			return
		}
		p.walk(dir, i+1, depth, matches, dirs) // zero directories
		if depth >= MaxDepth {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.IsDir() { // real directories only: a symlink loop cannot trap "**"
				p.walk(filepath.Join(dir, e.Name()), i, depth+1, matches, dirs)
			}
		}
	case !HasMeta(c):
		next := filepath.Join(dir, c)
		if last {
			*dirs = append(*dirs, dir)
			if _, err := os.Lstat(next); err == nil {
				*matches = append(*matches, next)
			}
			return
		}
		if fi, err := os.Stat(next); err == nil && fi.IsDir() {
			p.walk(next, i+1, depth, matches, dirs)
			return
		}
		*dirs = append(*dirs, dir) // the nearest existing ancestor: watch for next to appear
	default:
		*dirs = append(*dirs, dir)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if ok, _ := filepath.Match(c, e.Name()); !ok {
				continue
			}
			next := filepath.Join(dir, e.Name())
			if last {
				*matches = append(*matches, next)
				continue
			}
			isDir := e.IsDir()
			if !isDir && e.Type()&os.ModeSymlink != 0 {
				// Whether the symlink may be followed is the caller's check on the
				// files found through it.
				fi, err := os.Stat(next)
				isDir = err == nil && fi.IsDir()
			}
			if isDir {
				p.walk(next, i+1, depth, matches, dirs)
			}
		}
	}
}

// listAll adds every non-directory below dir (a trailing "**").
func (p *Pattern) listAll(dir string, depth int, matches, dirs *[]string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		next := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if depth < MaxDepth {
				*dirs = append(*dirs, next)
				p.listAll(next, depth+1, matches, dirs)
			}
			continue
		}
		*matches = append(*matches, next)
	}
}

// Relevant tells whether something at path could change what the pattern matches:
// path matches it, or path is a directory on the way to a match.
func (p *Pattern) Relevant(path string) bool {
	full, prefix := match(p.comps, splitPath(path), 0)
	return full || prefix
}

// Match reports whether path matches the pattern.
func (p *Pattern) Match(path string) bool {
	full, _ := match(p.comps, splitPath(path), 0)
	return full
}

func splitPath(path string) []string {
	var out []string
	for _, c := range strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// match matches name against pat: full when all of name matches all of pat, prefix
// when name is a directory that a match could be below.
func match(pat, name []string, depth int) (full, prefix bool) {
	if len(name) == 0 {
		return len(pat) == 0, len(pat) > 0
	}
	if len(pat) == 0 {
		return false, false
	}
	if pat[0] == "**" {
		if len(pat) == 1 {
			return depth+len(name) <= MaxDepth+1, true
		}
		f1, p1 := match(pat[1:], name, depth)
		if depth >= MaxDepth {
			return f1, p1
		}
		f2, p2 := match(pat, name[1:], depth+1)
		return f1 || f2, p1 || p2
	}
	if ok, _ := filepath.Match(pat[0], name[0]); !ok {
		return false, false
	}
	return match(pat[1:], name[1:], depth)
}
