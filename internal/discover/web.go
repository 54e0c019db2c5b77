package discover

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/decant-sh/decant/internal/cronfile"
	"github.com/decant-sh/decant/internal/envfile"
	"github.com/decant-sh/decant/internal/hostparity"
)

// vhosts reads Apache's and nginx's configurations.
func (d *discoverer) vhosts(p *part) []VHost {
	a, haveApache := d.apacheVHosts(p)
	n, haveNginx := d.nginxVHosts(p)
	switch {
	case !haveApache && !haveNginx:
		p.problem("web: no Apache or nginx configuration found (looked for /etc/apache2, /etc/httpd, /etc/nginx)")
	case !haveApache:
		p.note("apache: not installed (no /etc/apache2 or /etc/httpd)")
	case !haveNginx:
		p.note("nginx: not installed (no /etc/nginx)")
	}
	out := append(a, n...)
	for _, v := range out {
		if v.DocRoot != "" && !d.fs.Exists(v.DocRoot) {
			p.problem("%s: %s:%d: docroot %s does not exist", v.Server, v.File, v.Line, v.DocRoot)
		}
	}
	return out
}

// envCandidates are the dotenv names looked for next to an app. Examples
// and test settings are committed with the code and need no copying.
func envName(name string) bool {
	if name != ".env" && !strings.HasPrefix(name, ".env.") {
		return false
	}
	for _, skip := range []string{".example", ".dist", ".sample", ".template", ".test", ".testing", ".swp", "~"} {
		if strings.HasSuffix(name, skip) {
			return false
		}
	}
	return true
}

// envFiles looks for dotenv files where apps keep them: in each docroot,
// in its parent and grandparent (Laravel's public/, a release directory),
// in their shared/ (Capistrano and Deployer layouts), and in every site
// under /var/www and /srv. Only the key names are kept.
func (d *discoverer) envFiles(vhosts []VHost, p *part) []EnvFile {
	var dirs []string
	for _, v := range vhosts {
		if v.DocRoot == "" {
			continue
		}
		dir := v.DocRoot
		for i := 0; i < 3 && depth(dir) >= 3; i++ {
			dirs = append(dirs, dir, path.Join(dir, "shared"))
			dir = path.Dir(dir)
		}
	}
	for _, base := range []string{"/var/www", "/srv"} {
		sites, _ := d.fs.Glob(base + "/*")
		dirs = append(dirs, sites...)
	}
	var out []EnvFile
	seen := map[string]bool{}
	for _, dir := range uniqSorted(dirs) {
		ents, err := d.fs.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) && !isNotDir(err) {
				p.problem("env: %v", err)
			}
			continue
		}
		for _, e := range ents {
			name := path.Join(dir, e.Name())
			if !envName(e.Name()) || seen[name] {
				continue
			}
			if fi, err := d.fs.Stat(name); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			seen[name] = true
			data, err := d.fs.ReadFile(name)
			if err != nil {
				p.problem("env: %v", err)
				continue
			}
			ef := EnvFile{Path: name}
			f, err := envfile.Parse(data)
			if err != nil {
				// The parser names the line, never its text.
				p.problem("env: %s: %v", name, err)
			}
			ef.Keys = f.Keys()
			out = append(out, ef)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func depth(p string) int {
	return len(strings.Split(strings.Trim(path.Clean(p), "/"), "/"))
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// Where crontabs live: Debian's spool, Red Hat's, and the system files.
const (
	debianSpool = "/var/spool/cron/crontabs"
	redhatSpool = "/var/spool/cron"
)

// crontabs lists users' crontabs from the spool, /etc/crontab and the
// files cron reads in /etc/cron.d, with their job counts.
func (d *discoverer) crontabs(p *part) []Crontab {
	var out []Crontab
	read := func(name, user string, system bool) {
		data, err := d.fs.ReadFile(name)
		if err != nil {
			p.problem("cron: %v", err)
			return
		}
		jobs := len(cronfile.Entries(cronfile.Parse(string(data), system)))
		out = append(out, Crontab{Path: name, User: user, Jobs: jobs})
	}
	spool := debianSpool
	if !d.fs.Exists(spool) && d.fs.Exists(redhatSpool) {
		spool = redhatSpool
	}
	ents, err := d.fs.ReadDir(spool)
	switch {
	case errors.Is(err, fs.ErrPermission):
		p.problem("cron: cannot read users' crontabs in %s: permission denied (run decant init as root)", spool)
	case errors.Is(err, fs.ErrNotExist):
		p.note("cron: no crontab spool (%s)", debianSpool)
	case err != nil:
		p.problem("cron: %v", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "tmp.") {
			read(path.Join(spool, e.Name()), e.Name(), false)
		}
	}
	if d.fs.Exists("/etc/crontab") {
		read("/etc/crontab", "", true)
	}
	ents, err = d.fs.ReadDir("/etc/cron.d")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.problem("cron: %v", err)
	}
	for _, e := range ents {
		if hostparity.CronDName(e.Name()) && !e.IsDir() {
			read(path.Join("/etc/cron.d", e.Name()), "", true)
		}
	}
	return out
}
