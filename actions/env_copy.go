package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/envfile"
	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "env.copy",
		Doc:  "copy named env files to the target keeping mode and owner; values never shown (key names and hashes only); undo restores the previous file",
		New: func(n ast.Node) (any, error) {
			a := &EnvCopy{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if err := hostparity.CheckPairs("files", a.Files); err != nil {
				return nil, err
			}
			return a, nil
		},
	})
}

// EnvCopy copies env files from the source to the target.
type EnvCopy struct {
	Source string                `yaml:"source"`
	Target string                `yaml:"target"`
	Files  []hostparity.FilePair `yaml:"files"`
}

// EnvCopyReceipt is what env.copy journals: paths, owners, modes and the
// location of the 0600 backups, never contents.
type EnvCopyReceipt struct {
	Target string            `json:"target"`
	Files  []EnvCopyFileUndo `json:"files"`
}

// EnvCopyFileUndo is one target file as it was before the copy.
type EnvCopyFileUndo struct {
	Path    string `json:"path"` // on the target, mapped through its root
	Existed bool   `json:"existed"`
	// Backup is a 0600 file under the state directory holding the previous
	// content; SHA256 lets undo refuse a tampered or truncated backup.
	Backup string `json:"backup,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	// CreatedDirs are the directories the copy had to create, deepest
	// first; undo removes them again.
	CreatedDirs []string `json:"created_dirs,omitempty"`
	// MTimes are the modification times of the file and of the directory
	// whose entries the copy changes, put back by undo.
	MTimes map[string]string `json:"mtimes,omitempty"`
}

// envCopyFile is what Plan and Do learn about one file.
type envCopyFile struct {
	pair           hostparity.FilePair
	src, dst       string // mapped paths
	data           []byte
	mode           fs.FileMode
	owner          string // user:group names on the source
	uid, gid       int
	parsed         *envfile.File
	before         []byte
	beforeInfo     hosts.FileInfo
	beforeOwner    string
	changes        steps.Change
	identical      bool
	sameOwnerMode  bool
	beforeExisting bool
}

func (a *EnvCopy) inspect(ctx context.Context, env *steps.Env) ([]*envCopyFile, hosts.Host, error) {
	src, err := env.Host(ctx, a.Source)
	if err != nil {
		return nil, nil, err
	}
	dst, err := env.Host(ctx, a.Target)
	if err != nil {
		return nil, nil, err
	}
	hash, err := envfile.NewHasher(env.StateDir)
	if err != nil {
		return nil, nil, err
	}
	var out []*envCopyFile
	for _, p := range a.Files {
		f := &envCopyFile{pair: p, src: env.Path(a.Source, p.From), dst: env.Path(a.Target, p.To)}
		if f.data, err = src.ReadFile(ctx, f.src); err != nil {
			return nil, nil, fmt.Errorf("read %s on %s: %w", p.From, a.Source, err)
		}
		if f.parsed, err = envfile.Parse(f.data); err != nil {
			return nil, nil, fmt.Errorf("%s on %s: %w", p.From, a.Source, err)
		}
		env.Secrets.Add(envfile.Secretish(f.parsed)...)
		if f.mode, f.uid, f.gid, f.owner, err = envCopyStat(ctx, src, f.src); err != nil {
			return nil, nil, err
		}
		b, err := dst.ReadFile(ctx, f.dst)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, nil, fmt.Errorf("read %s on %s: %w", p.To, a.Target, err)
		default:
			f.before, f.beforeExisting = b, true
			var bmode fs.FileMode
			var buid, bgid int
			if bmode, buid, bgid, f.beforeOwner, err = envCopyStat(ctx, dst, f.dst); err != nil {
				return nil, nil, err
			}
			f.beforeInfo = hosts.FileInfo{Mode: bmode, UID: buid, GID: bgid, Exists: true}
		}
		after := fmt.Sprintf("%d keys, %04o %s, %s", len(f.parsed.Keys()), f.mode.Perm(), f.owner, hash.SumFile(f.data))
		if !f.beforeExisting {
			f.changes = steps.Change{What: p.To + " on " + a.Target, Before: "absent", After: after + "; keys: " + hostparity.Limit(f.parsed.Keys(), 20)}
		} else {
			old, perr := envfile.Parse(f.before)
			if perr != nil {
				old = &envfile.File{}
			} else {
				env.Secrets.Add(envfile.Secretish(old)...)
			}
			d := envfile.Compare(f.parsed, old)
			var parts []string
			if len(d.Missing) > 0 {
				parts = append(parts, "adds "+hostparity.Limit(d.Missing, 10))
			}
			if len(d.Changed) > 0 {
				var ch []string
				for _, k := range d.Changed {
					nv, _ := f.parsed.Get(k)
					ov, _ := old.Get(k)
					ch = append(ch, fmt.Sprintf("%s %s→%s", k, hash.Sum(ov), hash.Sum(nv)))
				}
				parts = append(parts, "changes "+hostparity.Limit(ch, 10))
			}
			if len(d.Extra) > 0 {
				parts = append(parts, "drops "+hostparity.Limit(d.Extra, 10))
			}
			f.identical = string(f.before) == string(f.data)
			f.sameOwnerMode = f.beforeInfo.Mode.Perm() == f.mode.Perm() && f.beforeOwner == f.owner
			if !f.identical && len(parts) == 0 {
				parts = append(parts, "same keys and values, other formatting or comments")
			}
			if !f.sameOwnerMode {
				parts = append(parts, fmt.Sprintf("mode/owner %04o %s → %04o %s", f.beforeInfo.Mode.Perm(), f.beforeOwner, f.mode.Perm(), f.owner))
			}
			f.changes = steps.Change{What: p.To + " on " + a.Target,
				Before: fmt.Sprintf("%d keys, %04o %s, %s", len(old.Keys()), f.beforeInfo.Mode.Perm(), f.beforeOwner, hash.SumFile(f.before)),
				After:  after + "; " + strings.Join(parts, "; ")}
		}
		out = append(out, f)
	}
	return out, dst, nil
}

// envCopyStat returns mode, numeric owner and "user:group" names.
func envCopyStat(ctx context.Context, h hosts.Host, p string) (fs.FileMode, int, int, string, error) {
	out, err := h.Output(ctx, "LC_ALL=C stat -L -c '%a %u %g %U:%G' -- "+hosts.Quote(p))
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("stat %s on %s: %w", p, h.Name(), err)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 {
		return 0, 0, 0, "", fmt.Errorf("stat %s on %s: unexpected %q", p, h.Name(), out)
	}
	m, _ := strconv.ParseUint(f[0], 8, 32)
	uid, _ := strconv.Atoi(f[1])
	gid, _ := strconv.Atoi(f[2])
	return fs.FileMode(m), uid, gid, f[3], nil
}

// Plan shows key names and hashes, never values.
func (a *EnvCopy) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	files, _, err := a.inspect(ctx, env)
	if err != nil {
		return nil, err
	}
	p := &steps.Plan{Noop: true}
	for _, f := range files {
		if f.beforeExisting && f.identical && f.sameOwnerMode {
			p.Changes = append(p.Changes, steps.Change{What: f.pair.To + " on " + a.Target, Before: "identical", After: "identical"})
			continue
		}
		p.Noop = false
		p.Changes = append(p.Changes, f.changes)
		p.Commands = append(p.Commands, fmt.Sprintf("write %s on %s (mode %04o, owner %s); previous content kept 0600 under %s for undo",
			f.pair.To, a.Target, f.mode.Perm(), f.owner, env.StateDir))
	}
	if p.Noop {
		p.Summary = fmt.Sprintf("%d env files already identical on %s", len(files), a.Target)
	} else {
		p.Summary = fmt.Sprintf("copy %d env files to %s (values hidden)", len(p.Commands), a.Target)
	}
	return p, nil
}

// Do backs up each target file (0600, state directory), journals where,
// then writes the source's content with its mode and owner.
func (a *EnvCopy) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	files, dst, err := a.inspect(ctx, env)
	if err != nil {
		return nil, err
	}
	rc := EnvCopyReceipt{Target: a.Target}
	var todo []*envCopyFile
	for i, f := range files {
		if f.beforeExisting && f.identical && f.sameOwnerMode {
			r.Logf("%s: already identical on %s", f.pair.To, a.Target)
			continue
		}
		u := EnvCopyFileUndo{Path: f.dst, Existed: f.beforeExisting}
		if f.beforeExisting {
			u.Mode, u.UID, u.GID = uint32(f.beforeInfo.Mode.Perm()), f.beforeInfo.UID, f.beforeInfo.GID
			name := fmt.Sprintf("env.copy-%s-%d-%s.bak", env.RunID, i, filepath.Base(f.pair.To))
			if u.Backup, err = hostparity.WriteBackup(env.StateDir, name, f.before); err != nil {
				return rc, err
			}
			sum := sha256.Sum256(f.before)
			u.SHA256 = hex.EncodeToString(sum[:])
		}
		rc.Files = append(rc.Files, u)
		todo = append(todo, f)
	}
	for i, f := range todo {
		u := &rc.Files[i]
		if u.CreatedDirs, err = hostparity.MissingDirs(ctx, dst, filepath.Dir(f.dst)); err != nil {
			return rc, err
		}
		parent := filepath.Dir(f.dst)
		if n := len(u.CreatedDirs); n > 0 {
			parent = filepath.Dir(u.CreatedDirs[n-1])
		}
		if u.MTimes, err = hostparity.MTimes(ctx, dst, []string{f.dst, parent}); err != nil {
			return rc, err
		}
	}
	if err := r.Checkpoint(rc); err != nil {
		return rc, err
	}
	for _, f := range todo {
		if err := dst.Run(ctx, "mkdir -p -- "+hosts.Quote(filepath.Dir(f.dst)), nil, nil, nil); err != nil {
			return rc, err
		}
		if err := dst.WriteFile(ctx, f.dst, f.data, f.mode); err != nil {
			return rc, err
		}
		if err := envCopyChown(ctx, dst, f.dst, f.owner, f.uid, f.gid); err != nil {
			return rc, err
		}
		r.Logf("%s: wrote %d keys (%s), mode %04o, owner %s", f.pair.To, len(f.parsed.Keys()), hostparity.Limit(f.parsed.Keys(), 12), f.mode.Perm(), f.owner)
	}
	return rc, nil
}

// envCopyChown sets the owner by name (accounts may have other ids on the
// new host), falling back to the numeric ids.
func envCopyChown(ctx context.Context, h hosts.Host, p, names string, uid, gid int) error {
	cmd := fmt.Sprintf("chown %s %s 2>/dev/null || chown %d:%d %s", hosts.Quote(names), hosts.Quote(p), uid, gid, hosts.Quote(p))
	if err := h.Run(ctx, cmd, nil, nil, nil); err != nil {
		return fmt.Errorf("chown %s on %s: %w", p, h.Name(), err)
	}
	return nil
}

// Undo puts back each previous file (content, mode, owner) or removes the
// file the copy created, newest first.
func (a *EnvCopy) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc EnvCopyReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read env.copy receipt: %w", err)
	}
	dst, err := env.Host(ctx, rc.Target)
	if err != nil {
		return err
	}
	for i := len(rc.Files) - 1; i >= 0; i-- {
		u := rc.Files[i]
		if !u.Existed {
			if err := dst.Run(ctx, "rm -f -- "+hosts.Quote(u.Path), nil, nil, nil); err != nil {
				return fmt.Errorf("remove %s: %w", u.Path, err)
			}
			r.Logf("%s: removed (it did not exist before)", u.Path)
			hostparity.RemoveDirs(ctx, dst, u.CreatedDirs)
			if err := hostparity.SetMTimes(ctx, dst, u.MTimes); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(u.Backup)
		if err != nil {
			return fmt.Errorf("read backup of %s: %w", u.Path, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != u.SHA256 {
			return fmt.Errorf("backup %s of %s does not match its checksum: restore it by hand", u.Backup, u.Path)
		}
		if env.Secrets != nil {
			if f, err := envfile.Parse(data); err == nil {
				env.Secrets.Add(envfile.Secretish(f)...)
			}
		}
		if err := dst.WriteFile(ctx, u.Path, data, fs.FileMode(u.Mode)); err != nil {
			return err
		}
		if err := dst.Run(ctx, fmt.Sprintf("chown %d:%d %s", u.UID, u.GID, hosts.Quote(u.Path)), nil, nil, nil); err != nil {
			return fmt.Errorf("chown %s: %w", u.Path, err)
		}
		if err := hostparity.SetMTimes(ctx, dst, u.MTimes); err != nil {
			return err
		}
		r.Logf("%s: previous file restored (mode %04o, owner %d:%d)", u.Path, u.Mode, u.UID, u.GID)
	}
	for _, u := range rc.Files {
		if u.Backup != "" {
			_ = os.Remove(u.Backup)
		}
	}
	return nil
}
