package hostparity

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/decant-sh/decant/internal/hosts"
)

// Tool is a program found on a host with what it reports about itself.
type Tool struct {
	Path    string
	Version string
	Modules []string // sorted
}

// Inventory is what services.parity compares between two hosts.
type Inventory struct {
	Apache, Nginx, PHP *Tool // nil when absent
	// Listen maps a listening process name to its addresses.
	Listen map[string][]string
	// Runners are queue runners and workers seen in the process list, by
	// signature ("artisan queue:work").
	Runners []string
	// Systemd reports whether systemd runs; Units are its running services.
	Systemd bool
	Units   []string
	// UnitFiles are the local unit files in /etc/systemd/system (*.service).
	UnitFiles []string
	// Programs are supervisor programs ([program:x] in its conf.d, plus what
	// supervisorctl reports).
	Programs []string
	// InitServices start at boot from /etc/rc2.d-rc5.d links.
	InitServices []string
}

// InventoryParams say which binaries to ask, per host (a host may have
// php8.1 and php8.3 side by side, or apachectl instead of apache2ctl).
type InventoryParams struct {
	Apache        string // default: apache2ctl, apachectl or httpd
	Nginx         string // default: nginx
	PHP           string // default: php
	Supervisorctl string // default: supervisorctl
	// Runners are extra regular expressions naming workers to look for in
	// the process list.
	Runners []string
}

// DefaultRunners match common queue runners and workers in `ps` args.
var DefaultRunners = []string{
	`artisan (queue:work|queue:listen|horizon)\S*`,
	`console messenger:consume`,
	`\bsidekiq\b`,
	`celery\b.*\bworker\b`,
	`\brq worker\b`,
	`\bresque\b`,
	`\bdelayed_job\b`,
	`\bgearmand?\b`,
	`\bbeanstalkd\b`,
	`\bPM2\b`,
	`wp-cron\.php`,
}

// CollectInventory runs one script on h and parses its sections. mapPath
// maps an absolute path through the host's root (config directories are
// read from the host's tree; processes and ports are the machine's).
func CollectInventory(ctx context.Context, h hosts.Host, mapPath func(string) string, p InventoryParams) (*Inventory, error) {
	q := func(s string) string { return hosts.Quote(mapPath(s)) }
	find := func(explicit string, names ...string) string {
		if explicit != "" {
			return "command -v " + hosts.Quote(explicit)
		}
		var alts []string
		for _, n := range names {
			alts = append(alts, "command -v "+n)
		}
		return strings.Join(alts, " || ")
	}
	sup := p.Supervisorctl
	if sup == "" {
		sup = "supervisorctl"
	}
	script := `exec 2>/dev/null
echo '@@apache'; A=$(` + find(p.Apache, "apache2ctl", "apachectl", "httpd") + `) && { echo "path $A"; "$A" -v | sed -n 's/^Server version: */version /p'; "$A" -M; }
echo '@@nginx'; N=$(` + find(p.Nginx, "nginx") + `) && { echo "path $N"; "$N" -V 2>&1; cat ` + q("/etc/nginx/modules-enabled") + `/*.conf; }
echo '@@php'; P=$(` + find(p.PHP, "php") + `) && { echo "path $P"; echo "version $("$P" -r 'echo PHP_VERSION;')"; "$P" -m; }
echo '@@listen'; ss -Hltnp || netstat -ltnp
echo '@@procs'; ps -eo args=
echo '@@systemd'; if [ -d /run/systemd/system ]; then echo yes; systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}'; fi
echo '@@unitfiles'; ls -1A ` + q("/etc/systemd/system") + `
echo '@@supervisor'; cat ` + q("/etc/supervisor/conf.d") + `/*.conf ` + q("/etc/supervisor/supervisord.conf") + ` ` + q("/etc/supervisord.conf") + ` | sed -n 's/^\[program:\([^]]*\)\].*/program \1/p'; ` + sup + ` status | awk '{print "status " $1}'
echo '@@rc'; ls -1A ` + q("/etc/rc2.d") + ` ` + q("/etc/rc3.d") + ` ` + q("/etc/rc4.d") + ` ` + q("/etc/rc5.d") + `
true`
	out, err := h.Output(ctx, script)
	if err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", h.Name(), err)
	}
	return ParseInventory(string(out), append(append([]string(nil), DefaultRunners...), p.Runners...))
}

// ParseInventory parses CollectInventory's output.
func ParseInventory(out string, runners []string) (*Inventory, error) {
	sec := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "@@") {
			cur = strings.TrimPrefix(l, "@@")
			continue
		}
		if cur != "" && strings.TrimSpace(l) != "" {
			sec[cur] = append(sec[cur], l)
		}
	}
	inv := &Inventory{Listen: map[string][]string{}}
	inv.Apache = parseApache(sec["apache"])
	inv.Nginx = parseNginx(sec["nginx"])
	inv.PHP = parsePHP(sec["php"])
	inv.Listen = parseListen(sec["listen"])
	var res []*regexp.Regexp
	for _, r := range runners {
		re, err := regexp.Compile(r)
		if err != nil {
			return nil, fmt.Errorf("runner pattern %q: %w", r, err)
		}
		res = append(res, re)
	}
	inv.Runners = parseRunners(sec["procs"], res)
	if s := sec["systemd"]; len(s) > 0 && s[0] == "yes" {
		inv.Systemd = true
		inv.Units = uniqSorted(s[1:])
	}
	for _, f := range sec["unitfiles"] {
		if strings.HasSuffix(f, ".service") {
			inv.UnitFiles = append(inv.UnitFiles, f)
		}
	}
	inv.UnitFiles = uniqSorted(inv.UnitFiles)
	for _, l := range sec["supervisor"] {
		if name, ok := strings.CutPrefix(l, "program "); ok {
			inv.Programs = append(inv.Programs, name)
		} else if name, ok := strings.CutPrefix(l, "status "); ok && !strings.Contains(l, "unix://") && !strings.HasPrefix(name, "error") {
			// group:name → name as in [program:name]
			if _, n, ok := strings.Cut(name, ":"); ok {
				name = n
			}
			inv.Programs = append(inv.Programs, strings.TrimRight(name, "_0123456789"))
		}
	}
	inv.Programs = uniqSorted(inv.Programs)
	for _, l := range sec["rc"] {
		if len(l) > 3 && l[0] == 'S' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' && l[2] <= '9' {
			inv.InitServices = append(inv.InitServices, l[3:])
		}
	}
	inv.InitServices = uniqSorted(inv.InitServices)
	return inv, nil
}

func toolPath(lines []string) (*Tool, []string) {
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "path ") {
		return nil, nil
	}
	return &Tool{Path: strings.TrimPrefix(lines[0], "path ")}, lines[1:]
}

// parseApache reads `apache2ctl -M`: " rewrite_module (shared)".
func parseApache(lines []string) *Tool {
	t, rest := toolPath(lines)
	if t == nil {
		return nil
	}
	for _, l := range rest {
		if v, ok := strings.CutPrefix(l, "version "); ok {
			t.Version = strings.TrimSpace(v)
			continue
		}
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasSuffix(f[0], "_module") && strings.HasPrefix(f[1], "(") {
			t.Modules = append(t.Modules, f[0])
		}
	}
	t.Modules = uniqSorted(t.Modules)
	return t
}

var nginxLoadRe = regexp.MustCompile(`^\s*load_module\s+\S*?([A-Za-z0-9_]+)\.so\s*;`)

// parseNginx reads `nginx -V` (static modules from the configure
// arguments) and the load_module lines of modules-enabled (dynamic ones).
func parseNginx(lines []string) *Tool {
	t, rest := toolPath(lines)
	if t == nil {
		return nil
	}
	for _, l := range rest {
		if v, ok := strings.CutPrefix(l, "nginx version: "); ok {
			t.Version = strings.TrimSpace(v)
		}
		if args, ok := strings.CutPrefix(l, "configure arguments:"); ok {
			for _, a := range strings.Fields(args) {
				switch {
				case strings.HasPrefix(a, "--with-") && strings.HasSuffix(a, "_module"):
					t.Modules = append(t.Modules, strings.TrimPrefix(a, "--with-"))
				case strings.HasPrefix(a, "--add-module="):
					t.Modules = append(t.Modules, path.Base(strings.TrimPrefix(a, "--add-module=")))
				}
			}
		}
		if m := nginxLoadRe.FindStringSubmatch(l); m != nil {
			t.Modules = append(t.Modules, m[1])
		}
	}
	t.Modules = uniqSorted(t.Modules)
	return t
}

// parsePHP reads the version line and `php -m`.
func parsePHP(lines []string) *Tool {
	t, rest := toolPath(lines)
	if t == nil {
		return nil
	}
	for _, l := range rest {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "version "); ok {
			t.Version = v
			continue
		}
		if l == "" || strings.HasPrefix(l, "[") {
			continue
		}
		t.Modules = append(t.Modules, strings.ToLower(l))
	}
	t.Modules = uniqSorted(t.Modules)
	return t
}

var ssUsersRe = regexp.MustCompile(`\(\("([^"]+)"`)

// parseListen reads `ss -Hltnp` (or netstat -ltnp) into process → addresses.
func parseListen(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		var addr, name string
		switch {
		case len(f) >= 5 && f[0] == "LISTEN": // ss
			addr = f[3]
			if m := ssUsersRe.FindStringSubmatch(l); m != nil {
				name = m[1]
			}
		case len(f) >= 7 && strings.HasPrefix(f[0], "tcp"): // netstat
			addr = f[3]
			if _, n, ok := strings.Cut(f[6], "/"); ok {
				name = n
			}
		default:
			continue
		}
		if name == "" {
			name = "port " + addr[strings.LastIndex(addr, ":")+1:]
		}
		if !slicesContains(out[name], addr) {
			out[name] = append(out[name], addr)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func parseRunners(procs []string, res []*regexp.Regexp) []string {
	var out []string
	for _, p := range procs {
		for _, re := range res {
			if m := re.FindString(p); m != "" {
				out = append(out, m)
			}
		}
	}
	return uniqSorted(out)
}

func uniqSorted(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slicesContains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Missing returns the items of want absent from have.
func Missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slicesContains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// Ignored reports whether name matches one of the glob patterns.
func Ignored(name string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok || p == name {
			return true
		}
	}
	return false
}

func dropIgnored(in []string, patterns []string) []string {
	var out []string
	for _, s := range in {
		if !Ignored(s, patterns) {
			out = append(out, s)
		}
	}
	return out
}

// phpPackages maps `php -m` names to the Debian package providing them.
var phpPackages = map[string]string{
	"mysqli": "mysql", "pdo_mysql": "mysql", "mysqlnd": "mysql", "gd": "gd", "mbstring": "mbstring", "intl": "intl",
	"curl": "curl", "dom": "xml", "simplexml": "xml", "xml": "xml", "xmlreader": "xml", "xmlwriter": "xml", "xsl": "xml",
	"zip": "zip", "bcmath": "bcmath", "redis": "redis", "imagick": "imagick", "zend opcache": "opcache",
	"apcu": "apcu", "memcached": "memcached", "soap": "soap", "pgsql": "pgsql", "pdo_pgsql": "pgsql",
	"sqlite3": "sqlite3", "pdo_sqlite": "sqlite3", "ldap": "ldap", "gmp": "gmp", "igbinary": "igbinary", "xdebug": "xdebug",
}

// InvFinding is one comparison result (the check turns it into a Finding).
type InvFinding struct {
	Level   string // pass, warn, fail
	Subject string
	Message string
	Fix     string
}

// CompareInventories compares what src has against dst. A tool absent on
// both hosts passes with a note; present only on the source fails.
func CompareInventories(src, dst *Inventory, s, d string, ignore []string, listen bool) []InvFinding {
	var out []InvFinding
	add := func(level, subject, msg, fix string) {
		out = append(out, InvFinding{level, subject, msg, fix})
	}
	tool := func(name, pkg string, a, b *Tool, fixMod func([]string) string) {
		switch {
		case a == nil && b == nil:
			add("pass", name, fmt.Sprintf("%s is installed on neither host: nothing to compare", name), "")
		case a == nil:
			add("pass", name, fmt.Sprintf("%s is on %s only (%s)", name, d, b.Path), "")
		case b == nil:
			add("fail", name, fmt.Sprintf("%s (%s) is installed on %s but not on %s", name, orPath(a), s, d), "apt-get install "+pkg+"   # on "+d)
		default:
			missing := dropIgnored(Missing(a.Modules, b.Modules), ignore)
			ver := ""
			if a.Version != b.Version {
				ver = fmt.Sprintf(" (version %s on %s, %s on %s)", orUnknown(a.Version), s, orUnknown(b.Version), d)
			}
			if len(missing) > 0 {
				add("fail", name, fmt.Sprintf("%s on %s lacks %d modules %s has: %s%s", name, d, len(missing), s, Limit(missing, 10), ver), fixMod(missing))
			} else {
				add("pass", name, fmt.Sprintf("%s on %s has all %d modules of %s%s", name, d, len(a.Modules), s, ver), "")
			}
		}
	}
	tool("Apache", "apache2", src.Apache, dst.Apache, func(m []string) string {
		var mods []string
		for _, x := range m {
			mods = append(mods, strings.TrimSuffix(x, "_module"))
		}
		return "a2enmod " + strings.Join(mods, " ") + " && systemctl reload apache2   # on " + d + " (install the libapache2-mod-* package first where a2enmod does not know one)"
	})
	tool("nginx", "nginx", src.Nginx, dst.Nginx, func(m []string) string {
		return "install an nginx build or libnginx-mod-* packages providing " + strings.Join(m, ", ") + " on " + d + ", then nginx -t && systemctl reload nginx"
	})
	// PHP: version first, then extensions.
	switch a, b := src.PHP, dst.PHP; {
	case a == nil && b == nil:
		add("pass", "PHP", "PHP is installed on neither host: nothing to compare", "")
	case a == nil:
		add("pass", "PHP", fmt.Sprintf("PHP is on %s only (%s)", d, b.Version), "")
	case b == nil:
		add("fail", "PHP", fmt.Sprintf("PHP %s is installed on %s but not on %s", a.Version, s, d), "apt-get install php-cli php-fpm   # on "+d)
	default:
		am, bm := majorMinor(a.Version), majorMinor(b.Version)
		switch {
		case strings.Split(am, ".")[0] != strings.Split(bm, ".")[0]:
			add("fail", "PHP version", fmt.Sprintf("PHP %s on %s but %s on %s: a major version change breaks applications", a.Version, s, b.Version, d), "install PHP "+am+" on "+d+" (e.g. from packages.sury.org) or test the application on "+bm)
		case am != bm:
			add("warn", "PHP version", fmt.Sprintf("PHP %s on %s but %s on %s: check the application's deprecations", a.Version, s, b.Version, d), "")
		default:
			add("pass", "PHP version", fmt.Sprintf("PHP %s on %s, %s on %s", a.Version, s, b.Version, d), "")
		}
		missing := dropIgnored(Missing(a.Modules, b.Modules), ignore)
		if len(missing) > 0 {
			var pkgs []string
			for _, m := range missing {
				p := phpPackages[m]
				if p == "" {
					p = strings.ReplaceAll(m, " ", "-")
				}
				p = "php" + bm + "-" + p
				if !slicesContains(pkgs, p) {
					pkgs = append(pkgs, p)
				}
			}
			add("fail", "PHP extensions", fmt.Sprintf("%d PHP extensions of %s are missing on %s: %s", len(missing), s, d, Limit(missing, 12)), "apt-get install "+strings.Join(pkgs, " ")+"   # on "+d)
		} else {
			add("pass", "PHP extensions", fmt.Sprintf("all %d PHP extensions of %s are on %s", len(a.Modules), s, d), "")
		}
	}
	if listen {
		var names []string
		for n := range src.Listen {
			if !Ignored(n, ignore) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		var missing, moved []string
		for _, n := range names {
			b, ok := dst.Listen[n]
			if !ok {
				missing = append(missing, fmt.Sprintf("%s (%s)", n, strings.Join(src.Listen[n], " ")))
			} else if strings.Join(b, " ") != strings.Join(src.Listen[n], " ") {
				moved = append(moved, fmt.Sprintf("%s (%s on %s, %s on %s)", n, strings.Join(src.Listen[n], " "), s, strings.Join(b, " "), d))
			}
		}
		switch {
		case len(missing) > 0:
			add("fail", "listening services", fmt.Sprintf("%d services listen on %s but not on %s: %s", len(missing), s, d, Limit(missing, 8)), "install and start them on "+d+" (or list them under ignore: if they stay behind)")
		default:
			add("pass", "listening services", fmt.Sprintf("all %d listening services of %s listen on %s", len(names), s, d), "")
		}
		if len(moved) > 0 {
			add("warn", "listening addresses", "services listen on other addresses: "+Limit(moved, 6), "")
		}
	}
	list := func(subject, what string, a, b []string, fix string) {
		a = dropIgnored(a, ignore)
		if len(a) == 0 {
			return
		}
		if m := Missing(a, b); len(m) > 0 {
			add("fail", subject, fmt.Sprintf("%d of %d %s on %s are missing on %s: %s", len(m), len(a), what, s, d, Limit(m, 8)), fmt.Sprintf(fix, m[0]))
			return
		}
		add("pass", subject, fmt.Sprintf("all %d %s of %s are on %s", len(a), what, s, d), "")
	}
	list("queue runners", "queue runners/workers running", src.Runners, dst.Runners, "start %q on "+d+" (under systemd or supervisor) once the code is there")
	if src.Systemd && !dst.Systemd {
		add("warn", "systemd", fmt.Sprintf("systemd runs on %s but not on %s: its units need another supervisor there", s, d), "")
	}
	if src.Systemd && dst.Systemd {
		list("systemd services", "running systemd services", src.Units, dst.Units, "systemctl enable --now %s   # on "+d)
	}
	list("unit files", "local unit files in /etc/systemd/system", src.UnitFiles, dst.UnitFiles, "copy /etc/systemd/system/%s to "+d+", then systemctl daemon-reload && systemctl enable --now it")
	list("supervisor programs", "supervisor programs", src.Programs, dst.Programs, "copy the [program:%s] config to /etc/supervisor/conf.d on "+d+", then supervisorctl reread && supervisorctl update")
	list("init services", "boot-time init services", src.InitServices, dst.InitServices, "install /etc/init.d/%[1]s on "+d+", then update-rc.d %[1]s defaults")
	return out
}

func orPath(t *Tool) string {
	if t.Version != "" {
		return t.Version
	}
	return t.Path
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// majorMinor turns "8.2.7" into "8.2".
func majorMinor(v string) string {
	f := strings.SplitN(v, ".", 3)
	if len(f) >= 2 {
		return f[0] + "." + f[1]
	}
	return v
}
