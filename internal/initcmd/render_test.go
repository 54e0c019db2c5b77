package initcmd_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/decant-sh/decant/internal/discover"
	"github.com/decant-sh/decant/internal/initcmd"
	"github.com/decant-sh/decant/runbook"
)

// A template using today's kinds, with comments that must survive.
const testTemplate = `# top comment kept
name: example to the new server

hosts:
  source:
    address: local   # the old server
  target:
    address: ssh://deploy@new.example.com:22

mysql:
  source:
    host: source
    socket: /run/mysqld/mysqld.sock
    options: ~/.my.cnf
  target:
    host: target
    address: 127.0.0.1:3306
    options: /etc/mysql/debian.cnf

dns:
  zone: example.com.
  names: [example.com., www.example.com.]

phases:
  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target}
      # versions and sizes of the databases that move
      - check: mysql.version
        with:
          databases: [shop]
      - check: mysql.space
      - check: env.parity
        with:
          files: [/var/www/example/.env]
      - check: cron.parity
      - check: services.parity
      - check: tls.cert
  - name: prepare
    steps:
      - id: flag
        shell: target
        run: touch /tmp/flag
`

func get(t *testing.T, doc []byte, path string) any {
	t.Helper()
	p, err := yaml.PathString(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := p.Read(strings.NewReader(string(doc)), &v); err != nil {
		return nil
	}
	return v
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

func report() *discover.Report {
	return &discover.Report{
		Root: "/",
		MySQL: &discover.MySQL{Address: "127.0.0.1:3307", OptionFile: "/root/lab/root.cnf", User: "root", Version: "10.11.6-MariaDB",
			Databases: []discover.Database{{Name: "blog", Bytes: 1 << 20, Tables: 12}, {Name: "shop", Bytes: 5 << 20, Tables: 40}}},
		VHosts: []discover.VHost{
			{Server: "nginx", Names: []string{"shop.test", "www.shop.test"}, DocRoot: "/var/www/shop/public", TLS: true},
			{Server: "nginx", Names: []string{"api.other.test"}, DocRoot: "/srv/api/public"},
		},
		EnvFiles: []discover.EnvFile{{Path: "/var/www/shop/.env", Keys: []string{"APP_KEY"}}},
		Crontabs: []discover.Crontab{{Path: "/var/spool/cron/crontabs/www-data", User: "www-data", Jobs: 2}, {Path: "/etc/cron.d/shop", Jobs: 1}},
		Services: discover.Services{Units: []string{"nginx", "php8.2-fpm"}, Workers: []string{"artisan queue:work"}},
		Domains: []discover.Domain{
			{Name: "shop.test.", Zone: "shop.test.", Addresses: []string{"192.0.2.10"}},
			{Name: "api.other.test.", Zone: "other.test.", Addresses: []string{"192.0.2.99"}},
			{Name: "www.shop.test.", Zone: "shop.test.", CNAME: "shop.test.", Addresses: []string{"192.0.2.10"}},
		},
	}
}

// Everything found goes where the kinds take it; comments survive; what
// no step takes is a note; the result validates.
func TestRenderFillsSteps(t *testing.T) {
	a := initcmd.Defaults(report())
	a.Target = "ssh://deploy@203.0.113.7:2222"
	a.Ignored = []string{"unit php8.2-fpm"}
	out, notes, err := initcmd.Render([]byte(testTemplate), a)
	if err != nil {
		t.Fatalf("render: %v\nnotes: %q", err, notes)
	}
	if _, err := runbook.Parse("out.yaml", out); err != nil {
		t.Fatalf("result does not parse: %v\n%s", err, out)
	}
	text := string(out)
	for _, c := range []string{"# top comment kept", "# the old server", "# versions and sizes of the databases that move"} {
		if !strings.Contains(text, c) {
			t.Errorf("comment %q lost:\n%s", c, text)
		}
	}
	checks := []struct {
		path string
		want any
	}{
		{"$.name", "shop.test to the new server"},
		{"$.hosts.target.address", "ssh://deploy@203.0.113.7:2222"},
		{"$.mysql.source.address", "127.0.0.1:3307"},
		{"$.mysql.source.options", "/root/lab/root.cnf"},
		{"$.mysql.source.socket", nil},
		{"$.dns.zone", "shop.test."},
		{"$.phases[0].steps[0].with.host", "target"},
	}
	for _, c := range checks {
		if got := get(t, out, c.path); got != c.want {
			t.Errorf("%s = %v, want %v", c.path, got, c.want)
		}
	}
	lists := []struct {
		path string
		want []string
	}{
		{"$.dns.names", []string{"shop.test.", "www.shop.test."}},
		{"$.dns.old_address", []string{"192.0.2.10"}},
		{"$.settings.domains", []string{"shop.test", "api.other.test", "www.shop.test"}},
		{"$.phases[0].steps[1].with.databases", []string{"blog", "shop"}},
		{"$.phases[0].steps[2].with.databases", []string{"blog", "shop"}},
		{"$.phases[0].steps[3].with.files", []string{"/var/www/shop/.env"}},
		{"$.phases[0].steps[4].with.users", []string{"www-data"}},
		{"$.phases[0].steps[5].with.ignore", []string{"php8.2-fpm"}},
	}
	for _, c := range lists {
		if got := strs(get(t, out, c.path)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %v, want %v\n%s", c.path, got, c.want, text)
		}
	}
	// ssh.reachable takes no databases, tls.cert reads settings.domains.
	if get(t, out, "$.phases[0].steps[0].with.databases") != nil || get(t, out, "$.phases[0].steps[6].with") != nil {
		t.Errorf("values added where the kind does not take them:\n%s", text)
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{"outside shop.test.", "no step of the template takes: web directories (files.*/rsync.* paths)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q: %q", want, notes)
		}
	}
}

// Deselected parts remove the steps that act on them, with a note; a
// template value that cannot stay (an env check without files) removes
// its step; the rest still validates.
func TestRenderDeselected(t *testing.T) {
	a := initcmd.Defaults(report())
	a.Target = "deploy@203.0.113.7"
	a.Databases, a.EnvFiles, a.Domains = nil, nil, nil
	out, notes, err := initcmd.Render([]byte(testTemplate), a)
	if err != nil {
		t.Fatalf("render: %v\nnotes %q", err, notes)
	}
	rb, err := runbook.Parse("out.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range rb.Steps() {
		kinds = append(kinds, s.Kind)
	}
	if want := []string{"ssh.reachable", "cron.parity", "services.parity", "shell"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("steps %v, want %v\n%s", kinds, want, out)
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{
		"removed step preflight/mysql.version: no database kept",
		"removed step preflight/tls.cert: no domain kept",
		"removed step preflight/env.parity",
		"dns: no domain kept",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(string(out), "# versions and sizes") {
		t.Errorf("the removed step's comment stayed:\n%s", out)
	}
}

// A target that is not an address, or a key file that does not exist, is
// an error naming the problem, never a written file.
func TestRenderRejects(t *testing.T) {
	a := initcmd.Defaults(report())
	if _, _, err := initcmd.Render([]byte(testTemplate), a); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Errorf("no target: err %v", err)
	}
	a.Target = "ssh://"
	if _, _, err := initcmd.Render([]byte(testTemplate), a); err == nil || !strings.Contains(err.Error(), "hosts.target.address") {
		t.Errorf("bad target: err %v", err)
	}
	a.Target, a.Key = "deploy@host", "/nonexistent/key"
	if _, _, err := initcmd.Render([]byte(testTemplate), a); err == nil || !strings.Contains(err.Error(), "hosts.target.key") {
		t.Errorf("missing key: err %v", err)
	}
}

// The built-in template renders with every discovered part (whatever
// steps it has today).
func TestRenderBuiltinTemplate(t *testing.T) {
	tmpl, err := runbook.Template("lamp")
	if err != nil {
		t.Fatal(err)
	}
	a := initcmd.Defaults(report())
	a.Target = "ssh://deploy@203.0.113.7:22"
	out, notes, err := initcmd.Render(tmpl, a)
	if err != nil {
		t.Fatalf("render: %v\nnotes %q", err, notes)
	}
	if got := get(t, out, "$.mysql.source.address"); got != "127.0.0.1:3307" {
		t.Errorf("mysql.source.address %v\n%s", got, out)
	}
	if _, err := runbook.Parse("out.yaml", out); err != nil {
		t.Fatal(err)
	}
}

func TestSiteDirAndTargetIP(t *testing.T) {
	for in, want := range map[string]string{
		"/var/www/shop/public":         "/var/www/shop",
		"/var/www/html":                "/var/www/html",
		"/var/www/api/current/public":  "/var/www/api",
		"/srv/api/public":              "/srv/api",
		"/home/alice/public_html/blog": "/home/alice/public_html",
		"/opt/app/web":                 "/opt/app/web",
	} {
		if got := initcmd.SiteDir(in); got != want {
			t.Errorf("SiteDir(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"ssh://deploy@203.0.113.7:22": "203.0.113.7",
		"deploy@[2001:db8::1]:22":     "2001:db8::1",
		"root@198.51.100.4":           "198.51.100.4",
		"ssh://deploy@new.example:22": "",
		"newbox":                      "",
	} {
		if got := initcmd.TargetIP(in); got != want {
			t.Errorf("TargetIP(%s) = %q, want %q", in, got, want)
		}
	}
}

// The actions of a migration get the same values as the checks: web
// directories to files.sync, env files to env.copy, crontabs to
// cron.install, databases to the copy and verify but not to the freeze.
func TestRenderFillsActions(t *testing.T) {
	tmpl := strings.Replace(testTemplate, `  - name: prepare
    steps:
`, `  - name: prepare
    steps:
      - action: files.sync
        with:
          paths: [/var/www/example]
      - action: env.copy
      - action: cron.install
      - action: mysql.copy
      - action: mysql.freeze
      - action: mysql.verify
      - action: http.smoke
`, 1)
	a := initcmd.Defaults(report())
	a.Target = "ssh://deploy@203.0.113.7:2222"
	out, notes, err := initcmd.Render([]byte(tmpl), a)
	if err != nil {
		t.Fatalf("render: %v\nnotes: %q", err, notes)
	}
	lists := []struct {
		path string
		want []string
	}{
		{"$.phases[1].steps[0].with.paths", []string{"/srv/api", "/var/www/shop"}},
		{"$.phases[1].steps[1].with.files", []string{"/var/www/shop/.env"}},
		{"$.phases[1].steps[2].with.users", []string{"www-data"}},
		{"$.phases[1].steps[2].with.cron_d", []string{"/etc/cron.d/shop"}},
		{"$.phases[1].steps[3].with.databases", []string{"blog", "shop"}},
		{"$.phases[1].steps[4].with.databases", nil},
		{"$.phases[1].steps[5].with.databases", []string{"blog", "shop"}},
		{"$.phases[1].steps[6].with.urls", []string{"https://shop.test/", "http://api.other.test/"}},
	}
	for _, c := range lists {
		if got := strs(get(t, out, c.path)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %v, want %v", c.path, got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("notes %q\n%s", notes, out)
	}

	// No database kept: the steps taking databases go, the freeze stays.
	a.Databases = nil
	out, notes, err = initcmd.Render([]byte(tmpl), a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse("out.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	var mysql []string
	for _, s := range rb.Steps() {
		if strings.HasPrefix(s.Kind, "mysql.") {
			mysql = append(mysql, s.Kind)
		}
	}
	if !reflect.DeepEqual(mysql, []string{"mysql.freeze"}) {
		t.Errorf("mysql steps %v, want only mysql.freeze; notes %q", mysql, notes)
	}
}
