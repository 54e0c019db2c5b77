package discover_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/discover"
	"github.com/decant-sh/decant/internal/dnslab"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(labtest.Main(m, &theLab, lab.Options{NoSSH: true}))
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func run(t *testing.T, o discover.Options) *discover.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := discover.Discover(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

type vh struct {
	File    string
	Names   []string
	DocRoot string
	TLS     bool
}

func vhosts(rep *discover.Report, server string) []vh {
	var out []vh
	for _, v := range rep.VHosts {
		if v.Server == server {
			out = append(out, vh{v.File, v.Names, v.DocRoot, v.TLS})
		}
	}
	return out
}

func has(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A Debian Apache tree: includes through relative and absolute symlinks in
// sites-enabled, line continuations, quoted docroots, an Include inside a
// vhost; Laravel and Capistrano env files; every kind of crontab. MySQL is
// not reachable (its socket is not in the tree) and that is one problem,
// not a failure.
func TestApacheDebianTree(t *testing.T) {
	rep := run(t, discover.Options{Root: fixture(t, "apache-debian"), DNS: discover.DNSOptions{Skip: true}})

	want := []vh{
		{"/etc/apache2/sites-enabled/000-default.conf", nil, "/var/www/html", false},
		{"/etc/apache2/sites-enabled/api.conf", []string{"api.shop.test"}, "/var/www/api/current/public", false},
		{"/etc/apache2/sites-enabled/blog.conf", []string{"blog.shop.test", "news.shop.test"}, "/var/www/blog", false},
		{"/etc/apache2/sites-enabled/shop.conf", []string{"shop.test", "www.shop.test"}, "", false},
		{"/etc/apache2/sites-enabled/shop.conf", []string{"shop.test", "www.shop.test", "m.shop.test"}, "/var/www/shop/public", true},
	}
	if got := vhosts(rep, "apache"); !reflect.DeepEqual(got, want) {
		t.Errorf("apache vhosts:\n got %+v\nwant %+v", got, want)
	}
	if got := vhosts(rep, "nginx"); len(got) != 0 {
		t.Errorf("nginx vhosts in an Apache-only tree: %+v", got)
	}
	if got, want := rep.DocRoots(), []string{"/var/www/api/current/public", "/var/www/blog", "/var/www/html", "/var/www/shop/public"}; !reflect.DeepEqual(got, want) {
		t.Errorf("docroots %v, want %v", got, want)
	}

	wantEnv := []discover.EnvFile{
		{Path: "/var/www/api/shared/.env", Keys: []string{"API_TOKEN", "REDIS_URL"}},
		{Path: "/var/www/shop/.env", Keys: []string{"APP_DEBUG", "APP_ENV", "APP_KEY", "APP_NAME", "APP_URL", "DB_CONNECTION",
			"DB_DATABASE", "DB_HOST", "DB_PASSWORD", "DB_PORT", "DB_USERNAME", "MAIL_MAILER", "QUEUE_CONNECTION"}},
	}
	if !reflect.DeepEqual(rep.EnvFiles, wantEnv) {
		t.Errorf("env files:\n got %+v\nwant %+v", rep.EnvFiles, wantEnv)
	}

	wantCron := []discover.Crontab{
		{Path: "/var/spool/cron/crontabs/root", User: "root", Jobs: 1},
		{Path: "/var/spool/cron/crontabs/www-data", User: "www-data", Jobs: 2},
		{Path: "/etc/crontab", Jobs: 4},
		{Path: "/etc/cron.d/php", Jobs: 1},
		{Path: "/etc/cron.d/shop", Jobs: 1},
	}
	if !reflect.DeepEqual(rep.Crontabs, wantCron) {
		t.Errorf("crontabs:\n got %+v\nwant %+v", rep.Crontabs, wantCron)
	}

	var names []string
	for _, d := range rep.Domains {
		names = append(names, d.Name)
		if d.Zone != "" || len(d.NS) > 0 {
			t.Errorf("DNS was skipped but %s has zone %q NS %v", d.Name, d.Zone, d.NS)
		}
	}
	wantNames := []string{"shop.test.", "api.shop.test.", "blog.shop.test.", "m.shop.test.", "news.shop.test.", "www.shop.test."}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("domains %v, want %v", names, wantNames)
	}

	if rep.MySQL != nil {
		t.Errorf("MySQL found through a fixture tree: %+v", rep.MySQL)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "mysql: /etc/mysql/debian.cnf: socket /run/mysqld/mysqld.sock is not there") {
		t.Errorf("problems: want only the MySQL socket one, got %q", rep.Problems)
	}
	if !has(rep.Notes, "nginx: not installed") || !has(rep.Notes, "dns: not asked") {
		t.Errorf("notes %q lack nginx and dns", rep.Notes)
	}

	// Services come from the tree's supervisor and rc.d (and this machine's
	// processes); supervisor's program is there whatever the machine runs.
	if !reflect.DeepEqual(rep.Services.Programs, []string{"shop-worker"}) {
		t.Errorf("supervisor programs %v, want [shop-worker]", rep.Services.Programs)
	}
	if !rep.Services.Systemd {
		if want := []string{"apache2", "mariadb", "supervisor"}; !reflect.DeepEqual(rep.Services.Init, want) {
			t.Errorf("init services %v, want %v (cron is base system)", rep.Services.Init, want)
		}
	}

	// Values never reach the report.
	b, _ := json.Marshal(rep)
	for _, secret := range []string{"fixture-secret-do-not-print", "fixture-token", "c2VjcmV0", "fixture-not-a-real-password"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("report contains the secret %q", secret)
		}
	}
}

// A Debian nginx tree: includes relative to /etc/nginx, conf.d before
// sites-enabled, server blocks in stream{} ignored, root from location /,
// regex and "_" server names left out of domains.
func TestNginxDebianTree(t *testing.T) {
	rep := run(t, discover.Options{Root: fixture(t, "nginx-debian"), DNS: discover.DNSOptions{Skip: true}, NoServices: true})
	want := []vh{
		{"/etc/nginx/conf.d/api.conf", []string{"api.shop.test", `~^(?<tenant>.+)\.api\.shop\.test$`}, "/srv/api/public", false},
		{"/etc/nginx/sites-enabled/default", nil, "/var/www/html", false},
		{"/etc/nginx/sites-enabled/shop", []string{"shop.test", "www.shop.test"}, "", false},
		{"/etc/nginx/sites-enabled/shop", []string{"shop.test", "www.shop.test"}, "/var/www/shop/public", true},
	}
	if got := vhosts(rep, "nginx"); !reflect.DeepEqual(got, want) {
		t.Errorf("nginx vhosts:\n got %+v\nwant %+v", got, want)
	}
	wantEnv := []discover.EnvFile{
		{Path: "/srv/api/.env", Keys: []string{"NODE_ENV", "SECRET_KEY_BASE"}},
		{Path: "/var/www/shop/.env.production", Keys: []string{"APP_ENV", "DB_PASSWORD"}},
	}
	if !reflect.DeepEqual(rep.EnvFiles, wantEnv) {
		t.Errorf("env files:\n got %+v\nwant %+v", rep.EnvFiles, wantEnv)
	}
	var names []string
	for _, d := range rep.Domains {
		names = append(names, d.Name)
	}
	if want := []string{"shop.test.", "api.shop.test.", "www.shop.test."}; !reflect.DeepEqual(names, want) {
		t.Errorf("domains %v, want %v", names, want)
	}
	if len(rep.Crontabs) != 0 || !has(rep.Notes, "cron: no crontab spool") {
		t.Errorf("crontabs %v, notes %q", rep.Crontabs, rep.Notes)
	}
	if !has(rep.Problems, "mysql: no option file") || len(rep.Problems) != 1 {
		t.Errorf("problems %q: want only the missing MySQL", rep.Problems)
	}
	if !has(rep.Notes, "apache: not installed") {
		t.Errorf("notes %q lack apache", rep.Notes)
	}
}

// An empty tree: every source missing is a line, never an error.
func TestEmptyTree(t *testing.T) {
	rep := run(t, discover.Options{Root: t.TempDir(), NoServices: true})
	for _, want := range []string{"web: no Apache or nginx configuration", "mysql: no option file"} {
		if !has(rep.Problems, want) {
			t.Errorf("problems %q lack %q", rep.Problems, want)
		}
	}
	if len(rep.VHosts)+len(rep.EnvFiles)+len(rep.Crontabs)+len(rep.Domains) != 0 {
		t.Errorf("found things in an empty tree: %+v", rep)
	}
	if _, err := discover.Discover(context.Background(), discover.Options{Root: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing root is not an error")
	}
}

// Broken configuration: a parse error and an include loop are problems
// with file:line; what could be read is still reported.
func TestBrokenConfigs(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/nginx/nginx.conf", "http {\n include sites-enabled/*;\n include loop.conf;\n}\n")
	write("etc/nginx/loop.conf", "include loop.conf;\n")
	write("etc/nginx/sites-enabled/good", "server { server_name good.test; root /srv/good; }\n")
	write("etc/nginx/sites-enabled/bad", "server {\n server_name bad.test\n root /srv/bad;\n")
	write("etc/apache2/apache2.conf", "Include sites-enabled/missing.conf\n<VirtualHost *:80>\nServerName a.test\nDocumentRoot /srv/a\n</VirtualHost>\n")
	rep := run(t, discover.Options{Root: root, NoServices: true, MySQL: discover.MySQLOptions{Skip: true}, DNS: discover.DNSOptions{Skip: true}})
	for _, want := range []string{
		"nginx: /etc/nginx/sites-enabled/bad:",
		"nginx: /etc/nginx/loop.conf includes itself",
		"apache: include /etc/apache2/sites-enabled/missing.conf: no such file",
		"apache: /etc/apache2/apache2.conf:2: docroot /srv/a does not exist",
	} {
		if !has(rep.Problems, want) {
			t.Errorf("problems lack %q:\n%s", want, strings.Join(rep.Problems, "\n"))
		}
	}
	var names []string
	for _, v := range rep.VHosts {
		names = append(names, v.Names...)
	}
	if !reflect.DeepEqual(names, []string{"a.test", "good.test"}) {
		t.Errorf("vhost names %v, want the readable ones [a.test good.test]", names)
	}
}

// A queue worker running on this machine is found in the process list.
func TestWorkerInProcessList(t *testing.T) {
	cmd := exec.Command("bash", "-c", `exec -a "php /srv/shop/artisan queue:work --queue=decant-test" sleep 60`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// ps shows the new argv once exec has happened: poll for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("ps", "-o", "args=", "-p", strconv.Itoa(cmd.Process.Pid)).Output()
		if strings.Contains(string(out), "queue:work") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker never showed in ps: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep := run(t, discover.Options{Root: fixture(t, "nginx-debian"), MySQL: discover.MySQLOptions{Skip: true}, DNS: discover.DNSOptions{Skip: true}})
	if !has(rep.Services.Workers, "artisan queue:work") {
		t.Errorf("workers %v lack artisan queue:work", rep.Services.Workers)
	}
}

// Databases with their sizes on the lab's source server, found through an
// option file given by the operator; a wrong one tried first is a problem
// line, and the next one still works.
func TestLabMySQL(t *testing.T) {
	ctx := context.Background()
	db, err := theLab.RootDB(theLab.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"DROP DATABASE IF EXISTS discover_shop", "DROP DATABASE IF EXISTS discover_empty",
		"CREATE DATABASE discover_shop", "CREATE DATABASE discover_empty",
		"CREATE TABLE discover_shop.orders (id INT PRIMARY KEY, note VARCHAR(200), KEY (note))",
		"CREATE TABLE discover_shop.users (id INT PRIMARY KEY)",
		"INSERT INTO discover_shop.orders SELECT seq, REPEAT('x', 150) FROM discover_shop.seq_1_to_2000",
		"ANALYZE TABLE discover_shop.orders",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.cnf")
	if err := os.WriteFile(bad, []byte("[client]\nuser=root\npassword=wrong-password\nhost=127.0.0.1\nport="+strconv.Itoa(theLab.Source.Port)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := run(t, discover.Options{
		Root:       fixture(t, "apache-debian"),
		NoServices: true,
		DNS:        discover.DNSOptions{Skip: true},
		MySQL:      discover.MySQLOptions{OptionFiles: []string{bad, theLab.Source.OptionFile}, NoDefaults: true},
	})
	m := rep.MySQL
	if m == nil {
		t.Fatalf("no MySQL found; problems: %q", rep.Problems)
	}
	if m.OptionFile != theLab.Source.OptionFile || m.Address != theLab.Source.Addr || m.User != "root" {
		t.Errorf("connected through %+v, want %s at %s", m, theLab.Source.OptionFile, theLab.Source.Addr)
	}
	if m.Version != theLab.Source.Version {
		t.Errorf("version %q, want %q", m.Version, theLab.Source.Version)
	}
	byName := map[string]discover.Database{}
	for _, d := range m.Databases {
		byName[d.Name] = d
		if d.Name == "mysql" || d.Name == "information_schema" || d.Name == "performance_schema" || d.Name == "sys" {
			t.Errorf("system schema %s listed", d.Name)
		}
	}
	if d := byName["discover_shop"]; d.Tables != 2 || d.Bytes < 200_000 {
		t.Errorf("discover_shop = %+v, want 2 tables and at least 200 kB", d)
	}
	if d, ok := byName["discover_empty"]; !ok || d.Tables != 0 {
		t.Errorf("discover_empty = %+v (listed: %v), want listed with 0 tables", d, ok)
	}
	if len(rep.Problems) != 0 || !has(rep.Notes, "mysql: "+bad+" did not work") || !has(rep.Notes, "Access denied") {
		t.Errorf("problems %q, notes %q: want no problem and a note of the wrong option file's access denied", rep.Problems, rep.Notes)
	}
	// With only the wrong file, the failure is a problem.
	rep = run(t, discover.Options{Root: t.TempDir(), NoServices: true, MySQL: discover.MySQLOptions{OptionFiles: []string{bad}, NoDefaults: true}})
	if rep.MySQL != nil || !has(rep.Problems, "mysql: "+bad+": mysql source") || !has(rep.Problems, "Access denied") {
		t.Errorf("MySQL %+v, problems %q: want the access denied", rep.MySQL, rep.Problems)
	}
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), "wrong-password") || strings.Contains(string(b), theLab.Source.RootPassword) && theLab.Source.RootPassword != "" {
		t.Error("report contains a password")
	}
}

// Zones, name servers and addresses from a real authoritative server;
// names outside any zone are problems; an unreachable resolver stops the
// lookups after one problem instead of waiting once per name.
func TestDomainsDNS(t *testing.T) {
	ctx := context.Background()
	dl, err := dnslab.Start(ctx, dnslab.Options{Dir: t.TempDir(), Zone: "shop.test.", Records: []string{
		"@ 300 IN A 192.0.2.10",
		"www 300 IN CNAME @",
		"api 300 IN A 192.0.2.11",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Stop()
	root := fixture(t, "apache-debian")
	rep := run(t, discover.Options{Root: root, NoServices: true, MySQL: discover.MySQLOptions{Skip: true},
		DNS: discover.DNSOptions{Resolvers: []string{dl.Primary}}})
	byName := map[string]discover.Domain{}
	for _, d := range rep.Domains {
		byName[d.Name] = d
		if d.Zone != "shop.test." {
			t.Errorf("%s: zone %q, want shop.test.", d.Name, d.Zone)
		}
		if !reflect.DeepEqual(d.NS, []string{"ns1.shop.test.", "ns2.shop.test."}) {
			t.Errorf("%s: NS %v", d.Name, d.NS)
		}
	}
	if got := byName["shop.test."].Addresses; !reflect.DeepEqual(got, []string{"192.0.2.10"}) {
		t.Errorf("shop.test. addresses %v", got)
	}
	if d := byName["www.shop.test."]; d.CNAME != "shop.test." || !reflect.DeepEqual(d.Addresses, []string{"192.0.2.10"}) {
		t.Errorf("www.shop.test. = %+v, want CNAME to the apex and its address", d)
	}
	if d := byName["blog.shop.test."]; len(d.Addresses) != 0 {
		t.Errorf("blog.shop.test. has addresses %v in a zone without it", d.Addresses)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %q", rep.Problems)
	}

	start := time.Now()
	rep = run(t, discover.Options{Root: root, NoServices: true, MySQL: discover.MySQLOptions{Skip: true},
		DNS: discover.DNSOptions{Resolvers: []string{"127.0.0.1:1"}, Timeout: 500 * time.Millisecond}})
	if !has(rep.Problems, "dns: stopped asking") {
		t.Errorf("problems %q lack the stop", rep.Problems)
	}
	if n := len(rep.Problems); n != 2 {
		t.Errorf("%d DNS problems for an unreachable resolver, want 2: %q", n, rep.Problems)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("unreachable resolver took %s", d)
	}
}

func TestDomainNames(t *testing.T) {
	got := discover.DomainNames([]discover.VHost{{Names: []string{
		"WWW.Shop.Test", ".shop.test", "*.shop.test", "_", "localhost", "intranet", "10.0.0.5", "[::1]",
		"~^(www\\.)?shop\\.test$", "app.local", "dev.localhost", "shop.test.", "api.other.test",
	}}})
	want := []string{"api.other.test.", "shop.test.", "www.shop.test."}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DomainNames = %v, want %v", got, want)
	}
}
