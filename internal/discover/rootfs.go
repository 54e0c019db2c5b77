package discover

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// rootFS reads a configuration tree as if its root were "/". Paths given to
// and returned by it are the tree's own absolute paths ("/etc/nginx/...");
// only real() knows where they live on this machine. Symlinks are resolved
// inside the tree, so an absolute link such as Debian's
// sites-enabled/shop.conf -> /etc/apache2/sites-available/shop.conf stays in
// a fixture tree instead of escaping to the real /etc.
type rootFS struct {
	root string // "/" or an absolute directory
}

func newRootFS(root string) rootFS {
	if root == "" {
		root = "/"
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return rootFS{root: filepath.Clean(root)}
}

// isReal reports whether the tree is this machine's own "/".
func (r rootFS) isReal() bool { return r.root == "/" }

// join maps a tree path to a machine path without resolving links.
func (r rootFS) join(p string) string {
	if r.isReal() {
		return path.Clean("/" + p)
	}
	return filepath.Join(r.root, path.Clean("/"+p))
}

// real maps a tree path to a machine path, resolving symlinks inside the
// tree. A dangling link resolves to where it points (which then does not
// exist), so errors still name a sensible path.
func (r rootFS) real(p string) string {
	if r.isReal() {
		return path.Clean("/" + p)
	}
	return r.join(r.resolve(p))
}

// resolve follows symlinks component by component inside the tree and
// returns the final tree path.
func (r rootFS) resolve(p string) string {
	p = path.Clean("/" + p)
	done := "/"
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "" {
			continue
		}
		next := path.Join(done, c)
		fi, err := os.Lstat(r.join(next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		hops++
		if hops > 40 {
			return path.Join(append([]string{next}, rest...)...)
		}
		target, err := os.Readlink(r.join(next))
		if err != nil {
			done = next
			continue
		}
		if !path.IsAbs(target) {
			target = path.Join(done, target)
		}
		target = path.Clean(target)
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
		done = "/"
	}
	return done
}

// ReadFile reads a tree path.
func (r rootFS) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(r.real(p))
	return b, r.treeErr(p, err)
}

// Stat describes a tree path, following links inside the tree.
func (r rootFS) Stat(p string) (fs.FileInfo, error) {
	fi, err := os.Stat(r.real(p))
	return fi, r.treeErr(p, err)
}

// Exists reports whether a tree path exists (following links).
func (r rootFS) Exists(p string) bool {
	_, err := r.Stat(p)
	return err == nil
}

// ReadDir lists a tree directory, sorted by name.
func (r rootFS) ReadDir(p string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(r.real(p))
	return ents, r.treeErr(p, err)
}

// Glob expands a tree pattern (path.Match syntax per component) and
// returns sorted tree paths; directories on the way are read through links
// inside the tree, as include globs such as /etc/nginx/sites-enabled/*
// need.
func (r rootFS) Glob(pattern string) ([]string, error) {
	pattern = path.Clean("/" + pattern)
	if !strings.ContainsAny(pattern, "*?[") {
		if r.Exists(pattern) {
			return []string{pattern}, nil
		}
		return nil, nil
	}
	parts := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	i := 0
	for i < len(parts) && !strings.ContainsAny(parts[i], "*?[") {
		i++
	}
	dirs := []string{"/" + path.Join(parts[:i]...)}
	for _, part := range parts[i:] {
		var next []string
		for _, d := range dirs {
			ents, err := r.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range ents {
				ok, err := path.Match(part, e.Name())
				if err != nil {
					return nil, err
				}
				// A leading '*' does not match dot files, as in the shell
				// and in Apache's and nginx's own globbing.
				if ok && !(strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(part, ".")) {
					next = append(next, path.Join(d, e.Name()))
				}
			}
		}
		dirs = next
	}
	sort.Strings(dirs)
	return dirs, nil
}

// treeErr rewrites an *fs.PathError to name the tree path, so messages say
// /etc/nginx/nginx.conf rather than a fixture directory.
func (r rootFS) treeErr(p string, err error) error {
	if err == nil || r.isReal() {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: path.Clean("/" + p), Err: pe.Err}
	}
	return err
}
