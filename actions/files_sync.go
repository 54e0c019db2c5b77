package actions

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "files.sync",
		Doc:  "rsync directories to the target over the runbook's SSH link (archive, numeric ids, hard links, ACLs/xattrs where supported); overwritten and deleted files are kept for undo; run it again during the freeze for the final delta",
		New: func(n ast.Node) (any, error) {
			a := &FilesSync{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if err := hostparity.CheckPairs("paths", a.Paths); err != nil {
				return nil, err
			}
			for _, p := range a.Paths {
				if path.Clean(p.To) == "/" {
					return nil, steps.BadParam("paths", "refusing to sync onto / of the target; name the directories (/var/www/shop)")
				}
			}
			return a, nil
		},
	})
}

// FilesSync mirrors directories from the source to the target with rsync.
//
// Undo: rsync runs with --backup --backup-dir, so every file it overwrites
// or deletes on the target is moved into a per-run backup directory next to
// the destination (same filesystem: a rename, not a copy). The itemized
// list of what rsync did and the attributes of what it only touched go to
// files under the state directory; the receipt names them. Undo removes
// what the sync created, moves the backups back, and restores attributes
// and directory times, so the target is as it was file by file.
type FilesSync struct {
	Source string                `yaml:"source"`
	Target string                `yaml:"target"`
	Paths  []hostparity.FilePair `yaml:"paths"`
	// Exclude are rsync patterns (cache/, *.log).
	Exclude []string `yaml:"exclude"`
	// NoDelete keeps files on the target that the source does not have.
	NoDelete bool `yaml:"no_delete"`
	// Checksum compares content instead of size and time (slow, thorough).
	Checksum bool `yaml:"checksum"`
	// ACLs and Xattrs: "auto" (default: when the target's filesystem takes
	// them), "yes" or "no".
	ACLs   string `yaml:"acls"`
	Xattrs string `yaml:"xattrs"`
	// BWLimit is rsync's --bwlimit (e.g. 20m), to spare a live site.
	BWLimit string `yaml:"bwlimit"`
}

// FilesSyncReceipt is the journaled record: one pass per attempt (a resumed
// copy adds a pass; undo unwinds passes newest first).
type FilesSyncReceipt struct {
	Target string          `json:"target"`
	Passes []FilesSyncPass `json:"passes"`
}

// FilesSyncPass is one rsync of one path pair.
type FilesSyncPass struct {
	From string `json:"from"`
	To   string `json:"to"` // mapped destination directory (or file's directory)
	// File is set when a single file was synced into To.
	File bool `json:"file,omitempty"`
	// Existed reports whether the destination existed; CreatedDirs are the
	// parents decant made for it.
	Existed     bool     `json:"existed"`
	CreatedDirs []string `json:"created_dirs,omitempty"`
	// BackupDir is on the target; List and Attrs are under the state dir.
	BackupDir string            `json:"backup_dir"`
	List      string            `json:"list"`
	Attrs     string            `json:"attrs"`
	MTimes    map[string]string `json:"mtimes,omitempty"`
	// Figures from rsync's --stats, for the transcript.
	Files   int64         `json:"files_sent"`
	Bytes   int64         `json:"bytes_sent"`
	Deleted int64         `json:"deleted"`
	Took    time.Duration `json:"took"`
	Done    bool          `json:"done"`
}

// filesSyncPlanData is what Plan hands to Do.
type filesSyncPlanData struct {
	Bytes int64 `json:"bytes"`
}

// filesSyncJob is one pair resolved against the hosts.
type filesSyncJob struct {
	pair     hostparity.FilePair
	src, dst string // mapped; directories end with "/"
	base     string // the directory names in rsync's output are relative to
	file     bool
}

func (a *FilesSync) hosts(ctx context.Context, env *steps.Env) (hosts.Host, hosts.Host, error) {
	src, err := env.Host(ctx, a.Source)
	if err != nil {
		return nil, nil, err
	}
	if src.String() != "local" {
		return nil, nil, fmt.Errorf("files.sync runs rsync where decant runs: the source host %q must be local (address: local)", a.Source)
	}
	dst, err := env.Host(ctx, a.Target)
	if err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

func (a *FilesSync) jobs(ctx context.Context, env *steps.Env, src hosts.Host) ([]filesSyncJob, error) {
	var out []filesSyncJob
	for _, p := range a.Paths {
		j := filesSyncJob{pair: p, src: env.Path(a.Source, p.From), dst: env.Path(a.Target, p.To)}
		st, err := src.Stat(ctx, j.src)
		if err != nil {
			return nil, err
		}
		if !st.Exists {
			return nil, fmt.Errorf("%s does not exist on %s", p.From, a.Source)
		}
		if st.Mode.IsDir() {
			j.src = strings.TrimRight(j.src, "/") + "/"
			j.dst = strings.TrimRight(j.dst, "/") + "/"
			j.base = strings.TrimRight(j.dst, "/")
		} else {
			if path.Base(p.From) != path.Base(p.To) {
				return nil, fmt.Errorf("%s: a single file keeps its name (to: %s/)", p.From, path.Dir(p.To))
			}
			j.file = true
			j.base = path.Dir(j.dst)
			j.dst = j.base + "/"
		}
		out = append(out, j)
	}
	return out, nil
}

// rsyncBase builds the command without the paths; cleanup releases what
// RsyncShell set up.
func (a *FilesSync) rsyncBase(ctx context.Context, src, dst hosts.Host, j filesSyncJob) ([]string, func(), error) {
	args := []string{"rsync", "-a", "--numeric-ids", "-H"}
	if !a.NoDelete {
		args = append(args, "--delete")
	}
	if a.Checksum {
		args = append(args, "--checksum")
	}
	if a.BWLimit != "" {
		args = append(args, "--bwlimit="+hosts.Quote(a.BWLimit))
	}
	// Both sides must take them: the target's rsync and filesystem store
	// them (probed there); the source's rsync must be built with them (a
	// source filesystem without them just has none to send).
	acl, xattr, err := a.probeACLs(ctx, dst, j.base)
	if err != nil {
		return nil, func() {}, err
	}
	if acl || xattr {
		caps, err := src.Output(ctx, "rsync --version")
		if err != nil {
			return nil, func() {}, fmt.Errorf("rsync on %s: %w", src.Name(), err)
		}
		c := " " + strings.Join(strings.Fields(strings.ReplaceAll(string(caps), ",", " ")), " ") + " "
		acl = acl && strings.Contains(c, " ACLs ") && !strings.Contains(c, " no ACLs ")
		xattr = xattr && strings.Contains(c, " xattrs ") && !strings.Contains(c, " no xattrs ")
	}
	if acl {
		args = append(args, "-A")
	}
	if xattr {
		args = append(args, "-X")
	}
	// Never carry over, nor delete, another run's backups.
	args = append(args, "--exclude=.decant-backup-*")
	for _, e := range a.Exclude {
		args = append(args, "--exclude="+hosts.Quote(e))
	}
	cleanup := func() {}
	if s, ok := dst.(*hosts.SSH); ok {
		shell, c, err := s.RsyncShell()
		if err != nil {
			return nil, func() {}, err
		}
		cleanup = c
		args = append(args, "-e", hosts.Quote(shell))
	}
	return args, cleanup, nil
}

// remote is rsync's name for a destination path on the target.
func filesSyncRemote(dst hosts.Host, p string) string {
	if s, ok := dst.(*hosts.SSH); ok {
		_, host, _ := s.Target()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return hosts.Quote(host + ":" + p)
	}
	return hosts.Quote(p)
}

// probeACLs decides -A and -X: "auto" asks rsync itself to copy a file with
// them inside the target's destination filesystem.
func (a *FilesSync) probeACLs(ctx context.Context, dst hosts.Host, dir string) (bool, bool, error) {
	want := func(v string) (bool, bool) { // (decided, value)
		switch strings.ToLower(v) {
		case "yes", "true", "on":
			return true, true
		case "no", "false", "off":
			return true, false
		}
		return false, false
	}
	ad, av := want(a.ACLs)
	xd, xv := want(a.Xattrs)
	if ad && xd {
		return av, xv, nil
	}
	// The probe leaves no trace: the directory's time is put back, so a
	// plan stays read-only and a later undo finds the times it recorded.
	script := `d=` + hosts.Quote(dir) + `; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
m=$(stat -c %.9Y -- "$d")
t=$(mktemp -d "$d/.decant-probe.XXXXXX") || exit 0; : > "$t/f"
rsync -A "$t/f" "$t/a" >/dev/null 2>&1 && echo acl
rsync -X "$t/f" "$t/x" >/dev/null 2>&1 && echo xattr
rm -rf -- "$t"; touch -m -d "@$m" -- "$d"`
	out, err := dst.Output(ctx, script)
	if err != nil {
		return false, false, fmt.Errorf("probe ACL/xattr support on %s: %w", dst.Name(), err)
	}
	s := string(out)
	if !ad {
		av = strings.Contains(s, "acl")
	}
	if !xd {
		xv = strings.Contains(s, "xattr")
	}
	return av, xv, nil
}

// filesSyncStats are the figures of rsync --stats.
type filesSyncStats struct {
	Files, Bytes, Deleted, Literal, Total, Created int64
}

var filesSyncStatRe = regexp.MustCompile(`^(Number of regular files transferred|Total transferred file size|Number of deleted files|Literal data|Total file size|Number of created files): ([\d,]+)`)

func (s *filesSyncStats) parse(line string) {
	m := filesSyncStatRe.FindStringSubmatch(line)
	if m == nil {
		return
	}
	n, _ := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
	switch m[1] {
	case "Number of regular files transferred":
		s.Files = n
	case "Total transferred file size":
		s.Bytes = n
	case "Number of deleted files":
		s.Deleted = n
	case "Literal data":
		s.Literal = n
	case "Total file size":
		s.Total = n
	case "Number of created files":
		s.Created = n
	}
}

// filesSyncItem is one itemized line: "%i %n".
type filesSyncItem struct {
	Flags string `json:"i"`
	Name  string `json:"n"`
}

func (it filesSyncItem) deleted() bool { return strings.HasPrefix(it.Flags, "*deleting") }

// created: every attribute column is '+' (a new file, dir, link or device).
func (it filesSyncItem) created() bool {
	return len(it.Flags) > 2 && strings.Trim(it.Flags[2:], "+") == "" && it.Flags[0] != '*'
}

// parseItem reads "DECANT %i %n" (prefix already removed), undoing rsync's
// \#ooo escapes of unusual bytes in names.
func filesSyncParseItem(s string) (filesSyncItem, bool) {
	var it filesSyncItem
	if strings.HasPrefix(s, "*deleting") {
		it.Flags = "*deleting"
		it.Name = strings.TrimLeft(strings.TrimPrefix(s, "*deleting"), " ")
	} else {
		f, n, ok := strings.Cut(s, " ")
		if !ok || len(f) < 11 {
			return it, false
		}
		it.Flags, it.Name = f, n
	}
	it.Name = filesSyncUnescape(it.Name)
	return it, it.Name != ""
}

func filesSyncUnescape(s string) string {
	if !strings.Contains(s, `\#`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+5 <= len(s) && s[i+1] == '#' {
			if n, err := strconv.ParseUint(s[i+2:i+5], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// filesSyncLines calls fn for each \r- or \n-terminated piece of output.
type filesSyncLines struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (l *filesSyncLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexAny(string(l.buf), "\r\n")
		if i < 0 {
			break
		}
		if i > 0 {
			l.fn(string(l.buf[:i]))
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *filesSyncLines) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.fn(string(l.buf))
		l.buf = nil
	}
}

// dryRun itemizes what rsync would do for one job.
func (a *FilesSync) dryRun(ctx context.Context, src, dst hosts.Host, j filesSyncJob) ([]filesSyncItem, filesSyncStats, error) {
	base, cleanup, err := a.rsyncBase(ctx, src, dst, j)
	defer cleanup()
	if err != nil {
		return nil, filesSyncStats{}, err
	}
	var items []filesSyncItem
	var st filesSyncStats
	w := &filesSyncLines{fn: func(l string) {
		if rest, ok := strings.CutPrefix(l, "DECANT "); ok {
			if it, ok := filesSyncParseItem(rest); ok {
				items = append(items, it)
			}
			return
		}
		st.parse(l)
	}}
	// rsync creates the destination but not its parents: with those
	// missing, everything is new and there is nothing to itemize.
	if pst, err := dst.Stat(ctx, path.Dir(j.base)); err != nil {
		return nil, st, err
	} else if !pst.Exists {
		return nil, st, errFilesSyncNoDest
	}
	cmd := strings.Join(append(base, "--dry-run", "--stats", "--out-format='DECANT %i %n'", filesSyncSrcArg(j), filesSyncRemote(dst, j.dst)), " ")
	err = src.Run(ctx, cmd, nil, w, nil)
	w.flush()
	if err != nil {
		return nil, st, fmt.Errorf("rsync dry run for %s: %w", j.pair.From, err)
	}
	return items, st, nil
}

var errFilesSyncNoDest = errors.New("destination parent missing")

// sizeAll measures a full copy of j's source: an rsync dry run into an
// empty scratch directory on the source host.
func (a *FilesSync) sizeAll(ctx context.Context, src hosts.Host, j filesSyncJob) (filesSyncStats, error) {
	var st filesSyncStats
	args := []string{"rsync", "-a", "-H", "--dry-run", "--stats", "--exclude=.decant-backup-*"}
	for _, e := range a.Exclude {
		args = append(args, "--exclude="+hosts.Quote(e))
	}
	cmd := `t=$(mktemp -d) || exit 1; ` + strings.Join(args, " ") + " " + filesSyncSrcArg(j) + ` "$t/"; rc=$?; rmdir "$t"; exit $rc`
	w := &filesSyncLines{fn: st.parse}
	err := src.Run(ctx, cmd, nil, w, nil)
	w.flush()
	if err != nil {
		return st, fmt.Errorf("size %s: %w", j.pair.From, err)
	}
	return st, nil
}

// filesSyncSrcArg is the source argument: "dir/" copies the directory's
// content, a file is copied into the destination directory.
func filesSyncSrcArg(j filesSyncJob) string {
	return hosts.Quote(j.src)
}

// Plan summarises an rsync dry run: files and bytes to send, files to delete.
func (a *FilesSync) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	src, dst, err := a.hosts(ctx, env)
	if err != nil {
		return nil, err
	}
	js, err := a.jobs(ctx, env, src)
	if err != nil {
		return nil, err
	}
	p := &steps.Plan{Noop: true, Unit: "bytes"}
	var sumFiles, sumDel int64
	for _, j := range js {
		items, st, err := a.dryRun(ctx, src, dst, j)
		if errors.Is(err, errFilesSyncNoDest) {
			// Everything is new: size it with a dry run into an empty
			// scratch directory where decant runs.
			st, err := a.sizeAll(ctx, src, j)
			if err != nil {
				return nil, err
			}
			p.Noop = false
			sumFiles += st.Files
			p.Total += st.Bytes
			p.Changes = append(p.Changes, steps.Change{What: j.pair.To + " on " + a.Target, Before: "absent (parent directories too)",
				After: fmt.Sprintf("a copy of %s: %d files to send (%s)", j.pair.From, st.Files, filesSyncSize(st.Bytes))})
			continue
		}
		if err != nil {
			return nil, err
		}
		if j.file {
			items = filesSyncOnly(items, path.Base(j.pair.To))
		}
		if len(items) > 0 {
			p.Noop = false
		}
		sumFiles += st.Files
		sumDel += st.Deleted
		p.Total += st.Bytes
		p.Changes = append(p.Changes, steps.Change{What: j.pair.To + " on " + a.Target,
			After: fmt.Sprintf("%d files to send (%s), %d to delete, %d other changes", st.Files, filesSyncSize(st.Bytes), st.Deleted, int64(len(items))-st.Files-st.Deleted)})
		for i, it := range items {
			if i == 15 {
				p.Changes = append(p.Changes, steps.Change{What: fmt.Sprintf("… and %d more", len(items)-15)})
				break
			}
			p.Changes = append(p.Changes, steps.Change{What: "  " + it.Flags + " " + path.Join(j.pair.To, it.Name)})
		}
	}
	for _, j := range js {
		base, cleanup, err := a.rsyncBase(ctx, src, dst, j)
		cleanup()
		if err != nil {
			return nil, err
		}
		p.Commands = append(p.Commands, strings.Join(append(base, "--backup", "--backup-dir=<per-run backup dir>", "--info=progress2",
			filesSyncSrcArg(j), filesSyncRemote(dst, j.dst)), " "))
	}
	if p.Noop {
		p.Summary = fmt.Sprintf("%s already match on %s: nothing to send", filesSyncNames(js), a.Target)
	} else {
		p.Summary = fmt.Sprintf("sync %s: %d files (%s) to send, %d to delete on %s", filesSyncNames(js), sumFiles, filesSyncSize(p.Total), sumDel, a.Target)
	}
	data, _ := json.Marshal(filesSyncPlanData{Bytes: p.Total})
	p.Data = data
	return p, nil
}

// filesSyncOnly keeps the items of a single-file sync (rsync also lists
// the directory when it is told to copy into it).
func filesSyncOnly(items []filesSyncItem, name string) []filesSyncItem {
	var out []filesSyncItem
	for _, it := range items {
		if it.Name == name {
			out = append(out, it)
		}
	}
	return out
}

func filesSyncNames(js []filesSyncJob) string {
	var n []string
	for _, j := range js {
		n = append(n, j.pair.From)
	}
	return hostparity.Limit(n, 3)
}

func filesSyncSize(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}

// Do runs rsync for each path with backups, journaling before each pass.
func (a *FilesSync) Do(ctx context.Context, env *steps.Env, plan *steps.Plan, r steps.Reporter) (any, error) {
	src, dst, err := a.hosts(ctx, env)
	if err != nil {
		return nil, err
	}
	js, err := a.jobs(ctx, env, src)
	if err != nil {
		return nil, err
	}
	rc := FilesSyncReceipt{Target: a.Target}
	if r.Resume(&rc) && len(rc.Passes) > 0 {
		r.Logf("resuming: %d earlier passes kept for undo; rsync only sends what is still missing", len(rc.Passes))
	}
	var total int64
	if plan != nil {
		var pd filesSyncPlanData
		if json.Unmarshal(plan.Data, &pd) == nil {
			total = pd.Bytes
		}
	}
	var done int64
	for _, j := range js {
		n := len(rc.Passes)
		pass, err := a.prepare(ctx, env, dst, j, n)
		if err != nil {
			return rc, err
		}
		rc.Passes = append(rc.Passes, pass)
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		p := &rc.Passes[len(rc.Passes)-1]
		st, err := a.sync(ctx, src, dst, j, p, r, done, total)
		if err != nil {
			_ = r.Checkpoint(rc)
			return rc, err
		}
		done += st.Bytes
		p.Files, p.Bytes, p.Deleted, p.Done = st.Files, st.Literal, st.Deleted, true
		r.Logf("%s → %s: sent %d files, %s of data for %s in all (%s already there), deleted %d, in %s",
			j.pair.From, j.pair.To, st.Files, filesSyncSize(st.Literal), filesSyncSize(st.Total), filesSyncSize(st.Total-st.Literal), st.Deleted, p.Took.Round(time.Millisecond))
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
	}
	return rc, nil
}

// prepare records, before rsync touches anything, what undo will need: the
// backup directory, the list file, and the attributes of what rsync will
// change in place (it does not back up a chmod, a chown or a new mtime).
func (a *FilesSync) prepare(ctx context.Context, env *steps.Env, dst hosts.Host, j filesSyncJob, n int) (FilesSyncPass, error) {
	p := FilesSyncPass{From: j.pair.From, To: j.base, File: j.file}
	st, err := dst.Stat(ctx, j.base)
	if err != nil {
		return p, err
	}
	p.Existed = st.Exists
	if p.CreatedDirs, err = hostparity.MissingDirs(ctx, dst, j.base); err != nil {
		return p, err
	}
	parent := path.Dir(j.base)
	if k := len(p.CreatedDirs); k > 0 {
		parent = path.Dir(p.CreatedDirs[k-1])
	}
	// Unique per pass: two files.sync steps (the first copy and the final
	// delta) of one run must not share backups or lists.
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := fmt.Sprintf("%s-%d-%x", env.RunID, n, rnd)
	p.BackupDir = path.Join(path.Dir(j.base), ".decant-backup-"+path.Base(j.base), id)
	// The backups' parent may hold an earlier step's backups: its time too.
	if p.MTimes, err = hostparity.MTimes(ctx, dst, []string{parent, path.Dir(p.BackupDir)}); err != nil {
		return p, err
	}
	if err := os.MkdirAll(env.StateDir, 0o700); err != nil {
		return p, err
	}
	p.List = filepath.Join(env.StateDir, "files.sync-"+id+".list")
	p.Attrs = filepath.Join(env.StateDir, "files.sync-"+id+".attrs")
	// What will change in place: a dry run now, the real run right after.
	var items []filesSyncItem
	if p.Existed {
		src, err := env.Host(ctx, a.Source)
		if err != nil {
			return p, err
		}
		if items, _, err = a.dryRun(ctx, src, dst, j); err != nil && !errors.Is(err, errFilesSyncNoDest) {
			return p, err
		}
	}
	want := map[string]bool{".": p.Existed}
	for _, it := range items {
		name := strings.TrimSuffix(it.Name, "/")
		if !it.created() && !it.deleted() {
			want[name] = true
		}
		// Adding or removing entries changes the parent's time.
		for d := path.Dir(name); ; d = path.Dir(d) {
			want[d] = true
			if d == "." || d == "/" {
				break
			}
		}
	}
	delete(want, "/")
	var names []string
	for k, ok := range want {
		if ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	attrs, err := filesSyncStat(ctx, dst, j.base, names)
	if err != nil {
		return p, err
	}
	b, _ := json.Marshal(attrs)
	if _, err := hostparity.WriteBackup(env.StateDir, filepath.Base(p.Attrs), b); err != nil {
		return p, err
	}
	return p, nil
}

// filesSyncAttr is an item's metadata before the sync.
type filesSyncAttr struct {
	Name  string `json:"n"`
	Mode  string `json:"m"`
	UID   string `json:"u"`
	GID   string `json:"g"`
	MTime string `json:"t"`
	Link  bool   `json:"l,omitempty"`
}

// filesSyncStat reads mode, owner and mtime of names under base on h.
func filesSyncStat(ctx context.Context, h hosts.Host, base string, names []string) ([]filesSyncAttr, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var script strings.Builder
	script.WriteString("cd " + hosts.Quote(base) + " || exit 1\n")
	for _, n := range names {
		fmt.Fprintf(&script, "stat -c '%%a %%u %%g %%.9Y %%F' -- %s 2>/dev/null || echo -\n", hosts.Quote(n))
	}
	var out strings.Builder
	if err := h.Run(ctx, "sh -s", strings.NewReader(script.String()), &out, nil); err != nil {
		return nil, fmt.Errorf("read attributes under %s on %s: %w", base, h.Name(), err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	var attrs []filesSyncAttr
	for i, n := range names {
		if i >= len(lines) || lines[i] == "-" {
			continue
		}
		f := strings.SplitN(lines[i], " ", 5)
		if len(f) < 5 {
			continue
		}
		attrs = append(attrs, filesSyncAttr{Name: n, Mode: f[0], UID: f[1], GID: f[2], MTime: f[3], Link: f[4] == "symbolic link"})
	}
	return attrs, nil
}

// sync runs the real rsync, streaming its itemized list to the list file
// and its progress to the reporter.
func (a *FilesSync) sync(ctx context.Context, src, dst hosts.Host, j filesSyncJob, p *FilesSyncPass, r steps.Reporter, done, total int64) (filesSyncStats, error) {
	var st filesSyncStats
	if len(p.CreatedDirs) > 0 {
		if err := dst.Run(ctx, "mkdir -p -- "+hosts.Quote(path.Dir(j.base)), nil, nil, nil); err != nil {
			return st, err
		}
	}
	list, err := os.OpenFile(p.List, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return st, err
	}
	defer list.Close()
	lw := bufio.NewWriter(list)
	enc := json.NewEncoder(lw)
	base, cleanup, err := a.rsyncBase(ctx, src, dst, j)
	defer cleanup()
	if err != nil {
		return st, err
	}
	progRe := regexp.MustCompile(`^\s*([\d,]+)\s+\d+%`)
	var mu sync.Mutex
	w := &filesSyncLines{fn: func(l string) {
		mu.Lock()
		defer mu.Unlock()
		if rest, ok := strings.CutPrefix(l, "DECANT "); ok {
			if it, ok := filesSyncParseItem(rest); ok {
				_ = enc.Encode(it)
				_ = lw.Flush()
			}
			return
		}
		if m := progRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
			r.Progress(done+n, total, "bytes")
			return
		}
		st.parse(l)
	}}
	errw := steps.NewLineWriter(r, "rsync: ")
	cmd := strings.Join(append(base, "--backup", "--backup-dir="+hosts.Quote(p.BackupDir), "--info=progress2", "--stats",
		"--out-format='DECANT %i %n'", filesSyncSrcArg(j), filesSyncRemote(dst, j.dst)), " ")
	t0 := time.Now()
	err = src.Run(ctx, cmd, nil, w, errw)
	w.flush()
	errw.Flush()
	p.Took = time.Since(t0)
	mu.Lock()
	ferr := lw.Flush()
	mu.Unlock()
	if serr := list.Sync(); ferr == nil {
		ferr = serr
	}
	if err != nil {
		return st, fmt.Errorf("rsync %s: %w", j.pair.From, err)
	}
	return st, ferr
}

// Undo unwinds the passes newest first: remove what the sync created, move
// the backups back, restore attributes and times, drop the backup dir.
func (a *FilesSync) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc FilesSyncReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read files.sync receipt: %w", err)
	}
	dst, err := env.Host(ctx, rc.Target)
	if err != nil {
		return err
	}
	for i := len(rc.Passes) - 1; i >= 0; i-- {
		if err := filesSyncUndoPass(ctx, dst, rc.Passes[i], r); err != nil {
			return err
		}
	}
	return nil
}

func filesSyncUndoPass(ctx context.Context, dst hosts.Host, p FilesSyncPass, r steps.Reporter) error {
	items, err := filesSyncReadList(p.List)
	if err != nil {
		return err
	}
	var files, dirs []string
	for _, it := range items {
		if !it.created() {
			continue
		}
		if strings.HasSuffix(it.Name, "/") || it.Flags[1] == 'd' {
			if n := strings.TrimSuffix(it.Name, "/"); n != "." {
				dirs = append(dirs, n)
			}
		} else {
			files = append(files, it.Name)
		}
	}
	// Deepest directories first.
	sort.Slice(dirs, func(i, j int) bool {
		return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") || (strings.Count(dirs[i], "/") == strings.Count(dirs[j], "/") && dirs[i] > dirs[j])
	})
	var script strings.Builder
	script.WriteString("cd " + hosts.Quote(p.To) + " 2>/dev/null || exit 0\n")
	for _, f := range files {
		script.WriteString("rm -f -- " + hosts.Quote(f) + "\n")
	}
	for _, d := range dirs {
		script.WriteString("rmdir -- " + hosts.Quote(d) + " 2>/dev/null\n")
	}
	// Put back what rsync overwrote or deleted (moved into the backup dir).
	script.WriteString("if [ -d " + hosts.Quote(p.BackupDir) + " ]; then cp -a -- " + hosts.Quote(p.BackupDir) + "/. . || exit 1; fi\n")
	attrs, err := filesSyncReadAttrs(p.Attrs)
	if err != nil {
		return err
	}
	sort.Slice(attrs, func(i, j int) bool { return len(attrs[i].Name) > len(attrs[j].Name) })
	for _, at := range attrs {
		q := hosts.Quote(at.Name)
		if at.Link {
			fmt.Fprintf(&script, "chown -h %s:%s -- %s; touch -h -m -d @%s -- %s\n", at.UID, at.GID, q, at.MTime, q)
			continue
		}
		fmt.Fprintf(&script, "[ -e %[1]s ] && { chown %[2]s:%[3]s -- %[1]s; chmod %[4]s -- %[1]s; touch -m -d @%[5]s -- %[1]s; }\n", q, at.UID, at.GID, at.Mode, at.MTime)
	}
	script.WriteString("cd /\n")
	if !p.Existed {
		script.WriteString("rmdir -- " + hosts.Quote(p.To) + " 2>/dev/null\n")
		for _, d := range p.CreatedDirs {
			script.WriteString("rmdir -- " + hosts.Quote(d) + " 2>/dev/null\n")
		}
	}
	bk := path.Dir(p.BackupDir)
	script.WriteString("rm -rf -- " + hosts.Quote(p.BackupDir) + "\nrmdir -- " + hosts.Quote(bk) + " 2>/dev/null\ntrue\n")
	var errb strings.Builder
	if err := dst.Run(ctx, "sh -s", strings.NewReader(script.String()), nil, &errb); err != nil {
		return fmt.Errorf("undo sync of %s on %s: %w", p.From, dst.Name(), err)
	}
	if err := hostparity.SetMTimes(ctx, dst, p.MTimes); err != nil {
		return err
	}
	r.Logf("%s: removed %d files and %d directories the sync created, restored overwritten and deleted files from %s, reset %d attributes",
		p.To, len(files), len(dirs), p.BackupDir, len(attrs))
	_ = os.Remove(p.List)
	_ = os.Remove(p.Attrs)
	return nil
}

func filesSyncReadList(p string) ([]filesSyncItem, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // rsync never started
	}
	if err != nil {
		return nil, fmt.Errorf("read sync list: %w", err)
	}
	defer f.Close()
	var out []filesSyncItem
	dec := json.NewDecoder(f)
	for {
		var it filesSyncItem
		if err := dec.Decode(&it); err == io.EOF {
			break
		} else if err != nil {
			// A torn last line after a crash: use what is complete.
			break
		}
		out = append(out, it)
	}
	return out, nil
}

func filesSyncReadAttrs(p string) ([]filesSyncAttr, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sync attributes: %w", err)
	}
	var out []filesSyncAttr
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("read sync attributes %s: %w", p, err)
		}
	}
	return out, nil
}
