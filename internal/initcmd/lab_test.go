package initcmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/discover"
	"github.com/decant-sh/decant/internal/dnslab"
	"github.com/decant-sh/decant/internal/initcmd"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/runbook"
)

var (
	theLab *lab.Lab
	decant string
)

func TestMain(m *testing.M) { os.Exit(labtest.MainWithDecant(m, &theLab, &decant, lab.Options{})) }

// fixtureRoot is the Debian Apache tree of the discover tests: the lab's
// "old server" configuration.
func fixtureRoot() string {
	return filepath.Join(labtest.RepoRoot(), "internal", "discover", "testdata", "apache-debian")
}

func labDatabases(t *testing.T) {
	t.Helper()
	db, err := theLab.RootDB(theLab.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS init_shop",
		"CREATE TABLE IF NOT EXISTS init_shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2))",
		"REPLACE INTO init_shop.orders VALUES (1, 9.99), (2, 19.50)",
		"CREATE DATABASE IF NOT EXISTS init_blog",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// The "done when": decant init on the lab's old side (the fixture
// tree, the lab's source MariaDB through its option file) writes a runbook
// that decant check accepts; it refuses to overwrite without --force, and
// asks for --yes without a terminal.
func TestInitYesThenCheck(t *testing.T) {
	labDatabases(t)
	work := t.TempDir()
	dl := labDNS(t)
	out := filepath.Join(work, "decant.yaml")
	newRoot := filepath.Join(work, "new")
	args := labArgs(t, dl, newRoot, out)
	start := time.Now()
	r := run(t, "", args...)
	t.Logf("init took %s", time.Since(start).Round(time.Millisecond))
	if r.Code != 0 {
		t.Fatalf("init exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"init_shop", "/var/www/shop/.env", "crontab", "zone shop.test.  NS ns1.shop.test. ns2.shop.test.", "wrote " + out, "decant check " + out} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, r.Stdout)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("runbook mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(out)
	if strings.Contains(string(data), password(t, theLab.Source.OptionFile)) {
		t.Error("the runbook holds the source's root password")
	}
	rb, err := runbook.Load(out)
	if err != nil {
		t.Fatalf("runbook does not load: %v\n%s", err, data)
	}
	if src := rb.MySQL["source"]; src.Address != theLab.Source.Addr || src.Options != theLab.Source.OptionFile {
		t.Errorf("mysql.source = %+v, want %s with %s", src, theLab.Source.Addr, theLab.Source.OptionFile)
	}
	if tgt := rb.MySQL["target"]; tgt.Address != theLab.Target.Addr || tgt.Options != theLab.Target.OptionFile {
		t.Errorf("mysql.target = %+v", tgt)
	}
	if h := rb.Hosts["source"]; h.Root != fixtureRoot() || !h.IsLocal() {
		t.Errorf("hosts.source = %+v, want local with root %s", h, fixtureRoot())
	}
	if h := rb.Hosts["target"]; h.Address != labtest.SSHHost(theLab) || h.Root != newRoot || h.Key != theLab.SSH.ClientKeyFile {
		t.Errorf("hosts.target = %+v", h)
	}
	if rb.DNS.Zone != "shop.test." || len(rb.Settings.Domains) < 2 || !reflect.DeepEqual(rb.Settings.Domains[:2], []string{"shop.test", "api.shop.test"}) {
		t.Errorf("dns.zone %q, settings.domains %v", rb.DNS.Zone, rb.Settings.Domains)
	}
	if d := rb.DNS; !reflect.DeepEqual(d.OldAddress, []string{"127.0.0.1"}) || !reflect.DeepEqual(d.Authoritative, []string{dl.Primary}) ||
		!reflect.DeepEqual(d.Resolvers, []string{dl.Primary}) || d.ResolversMode != "replace" || len(d.NewAddress) != 0 {
		t.Errorf("dns = %+v: want old address 127.0.0.1 and the lab server as authoritative and only resolver", d)
	}
	// Whatever steps the template has, those taking databases got the
	// lab's (read through the built steps' parameters).
	for _, st := range rb.Steps() {
		v := reflect.Indirect(reflect.ValueOf(st.Impl))
		if v.Kind() != reflect.Struct {
			continue
		}
		if f := v.FieldByName("Databases"); f.IsValid() && f.Kind() == reflect.Slice {
			dbs := f.Interface().([]string)
			if !contains(dbs, "init_shop") || !contains(dbs, "init_blog") {
				t.Errorf("step %s databases %v lack the lab's", st.ID, dbs)
			}
		}
	}

	// decant check runs it: findings or not, never a usage error.
	start = time.Now()
	c := run(t, "", "check", out)
	t.Logf("check took %s, exit %d", time.Since(start).Round(time.Millisecond), c.Code)
	if c.Code != 0 && c.Code != 1 && c.Code != 2 {
		t.Fatalf("check exit %d (want 0, 1 or 2)\nstdout:\n%s\nstderr:\n%s", c.Code, c.Stdout, c.Stderr)
	}
	if !strings.Contains(c.Stdout, "preflight:") {
		t.Errorf("check printed no verdict:\n%s\n%s", c.Stdout, c.Stderr)
	}
	if strings.Contains(c.Stdout+c.Stderr, "unknown") && strings.Contains(c.Stdout+c.Stderr, "kind") {
		t.Errorf("check complains about kinds:\n%s%s", c.Stdout, c.Stderr)
	}

	// Again without --force: refused, file untouched.
	before, _ := os.ReadFile(out)
	r = run(t, "", args...)
	if r.Code != 64 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("second init: exit %d, stderr %q; want 64 and already exists", r.Code, r.Stderr)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Error("second init changed the file")
	}
	r = run(t, "", append(args, "--force", "--name", "forced")...)
	if r.Code != 0 {
		t.Fatalf("init --force: exit %d\n%s", r.Code, r.Stderr)
	}
	if rb, err := runbook.Load(out); err != nil || rb.Name != "forced" {
		t.Errorf("after --force: name %v, err %v", rb, err)
	}

	// No terminal and no --yes: a usage error, nothing asked.
	r = run(t, "", "init", "--target", "deploy@host", "--out", filepath.Join(work, "other.yaml"), "--root", fixtureRoot())
	if r.Code != 64 || !strings.Contains(r.Stderr, "--yes required") {
		t.Errorf("init without --yes: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// --out - prints the runbook; the summary goes to stderr.
	r = run(t, "", "init", "--yes", "--target", "deploy@203.0.113.7", "--root", fixtureRoot(), "--no-mysql", "--no-dns", "--no-services", "--out", "-")
	if r.Code != 0 {
		t.Fatalf("init --out -: exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := runbook.Parse("stdout", []byte(r.Stdout)); err != nil {
		t.Errorf("printed runbook does not parse: %v\n%s", err, r.Stdout)
	}
	if !strings.Contains(r.Stderr, "Web sites") || strings.Contains(r.Stdout, "Web sites") {
		t.Errorf("summary not on stderr only:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	}
}

// labDNS serves the fixture's domains on loopback: the old server is this
// machine, as it is for an operator running decant init on it.
func labDNS(t *testing.T) *dnslab.Lab {
	t.Helper()
	dl, err := dnslab.Start(context.Background(), dnslab.Options{Dir: filepath.Join(t.TempDir(), "dns"), Zone: "shop.test.", Records: []string{
		"@ 3600 IN A 127.0.0.1", "www 3600 IN CNAME @", "api 3600 IN A 127.0.0.1", "blog 3600 IN A 127.0.0.1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dl.Stop)
	return dl
}

// labArgs are the init flags for the lab: the fixture tree as the old
// server with the lab's source MariaDB, the lab's sshd as the new server
// with its own tree and MariaDB, and DNS only on loopback.
func labArgs(t *testing.T, dl *dnslab.Lab, newRoot, out string) []string {
	t.Helper()
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"init", "--yes",
		"--target", labtest.SSHHost(theLab),
		"--key", theLab.SSH.ClientKeyFile,
		"--known-hosts", theLab.SSH.KnownHostsFile,
		"--target-root", newRoot,
		"--target-mysql", theLab.Target.Addr,
		"--target-mysql-options", theLab.Target.OptionFile,
		"--root", fixtureRoot(),
		"--mysql-options", theLab.Source.OptionFile,
		"--resolver", dl.Primary,
		"--dns-server", dl.Primary,
		"--out", out,
	}
}

// A template of the operator's own (--template FILE) using every check
// kind registered today: init fills it and decant check runs each check
// against the lab, with findings but no usage error.
func TestInitOwnTemplateCheck(t *testing.T) {
	labDatabases(t)
	dl := labDNS(t)
	work := t.TempDir()
	tmpl := filepath.Join(work, "mine.yaml")
	extra := `      - check: mysql.debian_sys_maint
      - check: dns.ttl
      - check: dns.propagation
      - check: http.parity
`
	src := strings.Replace(testTemplate, "      - check: tls.cert\n", "      - check: tls.cert\n"+extra, 1)
	if err := os.WriteFile(tmpl, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "decant.yaml")
	r := run(t, "", append(labArgs(t, dl, filepath.Join(work, "new"), out), "--template", tmpl)...)
	if r.Code != 0 {
		t.Fatalf("init exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	rb, err := runbook.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, st := range rb.Steps() {
		kinds[st.Kind] = true
	}
	for _, k := range []string{"mysql.version", "mysql.space", "env.parity", "cron.parity", "dns.ttl", "http.parity"} {
		if !kinds[k] {
			t.Errorf("step %s missing from the filled runbook:\n%s", k, r.Stdout)
		}
	}
	start := time.Now()
	c := run(t, "", "check", "--json", out)
	t.Logf("check took %s, exit %d", time.Since(start).Round(time.Millisecond), c.Code)
	if c.Code != 0 && c.Code != 1 && c.Code != 2 {
		t.Fatalf("check exit %d\nstdout:\n%s\nstderr:\n%s", c.Code, c.Stdout, c.Stderr)
	}
	var doc struct {
		Checks []struct {
			Kind     string
			Status   string
			Findings []struct{ Status, Subject, Message string }
		}
	}
	if err := json.Unmarshal([]byte(c.Stdout), &doc); err != nil {
		t.Fatalf("check --json: %v\n%s", err, c.Stdout)
	}
	byKind := map[string]string{}
	for _, ch := range doc.Checks {
		byKind[ch.Kind] = ch.Status
		for _, f := range ch.Findings {
			t.Logf("%s %s %s: %s", ch.Kind, f.Status, f.Subject, f.Message)
		}
	}
	// The parts init filled from the lab work as filled: the SSH link,
	// the source databases it listed and the DNS it found.
	for _, k := range []string{"ssh.reachable", "mysql.version", "mysql.space", "dns.ttl", "dns.propagation"} {
		if byKind[k] == "fail" || byKind[k] == "" {
			t.Errorf("%s: %q", k, byKind[k])
		}
	}
}

// The form, in huh's accessible mode (plain prompts read line by line):
// untick a database, an env file and a crontab, give the target; the
// answers follow.
func TestFormAccessible(t *testing.T) {
	labDatabases(t)
	ctx := context.Background()
	rep, err := discover.Discover(ctx, discover.Options{Root: fixtureRoot(), NoServices: true,
		MySQL: discover.MySQLOptions{OptionFiles: []string{theLab.Source.OptionFile}, NoDefaults: true},
		DNS:   discover.DNSOptions{Skip: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.MySQL == nil {
		t.Fatalf("no MySQL: %q", rep.Problems)
	}
	dbIndex := 0
	for i, d := range rep.MySQL.Databases {
		if d.Name == "init_blog" {
			dbIndex = i + 1
		}
	}
	if dbIndex == 0 {
		t.Fatal("init_blog not discovered")
	}
	lines := []string{
		"ssh://deploy@203.0.113.9:22", // target
		"",                            // key: none
		"",                            // name: keep the default
		fmt.Sprint(dbIndex), "0",      // databases: untick init_blog
		"0",      // web directories: keep all
		"1", "0", // env files: untick /var/www/api/shared/.env
		"2", "0", // crontabs: untick www-data's
		"0",             // domains: keep all
		"",              // zone: as found
		"198.51.100.20", // new address
		"",              // TSIG key: none
		"y",             // write
	}
	var out bytes.Buffer
	a0 := initcmd.Defaults(rep)
	a, err := initcmd.Ask(ctx, rep, a0, initcmd.Options{Accessible: true}, strings.NewReader(strings.Join(lines, "\n")+"\n"), &out)
	if err != nil {
		t.Fatalf("ask: %v\n%s", err, out.String())
	}
	if a.Target != "ssh://deploy@203.0.113.9:22" || a.Name != a0.Name {
		t.Errorf("target %q name %q", a.Target, a.Name)
	}
	if contains(a.Databases, "init_blog") || !contains(a.Databases, "init_shop") {
		t.Errorf("databases %v: want init_shop without init_blog", a.Databases)
	}
	if !reflect.DeepEqual(a.EnvFiles, []string{"/var/www/shop/.env"}) {
		t.Errorf("env files %v", a.EnvFiles)
	}
	if !reflect.DeepEqual(a.CronUsers, []string{"root"}) || len(a.CronFiles) != 3 {
		t.Errorf("cron users %v files %v", a.CronUsers, a.CronFiles)
	}
	if !reflect.DeepEqual(a.SiteDirs, a0.SiteDirs) || !reflect.DeepEqual(a.Domains, a0.Domains) {
		t.Errorf("untouched parts changed: sites %v domains %v", a.SiteDirs, a.Domains)
	}
	if !reflect.DeepEqual(a.NewAddress, []string{"198.51.100.20"}) || a.Zone != "shop.test." {
		t.Errorf("new address %v zone %q", a.NewAddress, a.Zone)
	}
	if !strings.Contains(out.String(), "Databases to move") {
		t.Errorf("form output lacks the databases question:\n%s", out.String())
	}

	// Declining to write is ErrAborted.
	lines[len(lines)-1] = "n"
	_, err = initcmd.Ask(ctx, rep, a0, initcmd.Options{Accessible: true}, strings.NewReader(strings.Join(lines, "\n")+"\n"), &out)
	if err != initcmd.ErrAborted {
		t.Errorf("declined: err %v, want ErrAborted", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run(t *testing.T, stdin string, args ...string) labtest.Result {
	t.Helper()
	return labtest.Run(t, decant, stdin, args...)
}

func password(t *testing.T, optionFile string) string { return labtest.Password(t, optionFile) }
