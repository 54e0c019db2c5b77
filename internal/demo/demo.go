// Package demo builds the disposable rehearsal that `decant demo` runs: a
// lab (two MariaDB servers, an sshd standing for the new host, a DNS zone
// with caching resolvers), an "old" side with a small shop (database,
// docroot, crontab, env file) and a runbook that moves it.
package demo

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/decant-sh/decant/internal/dnslab"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/weblab"
)

// Zone is the demo's DNS zone; the cut-over asks for Domain to be typed.
const (
	Zone   = "shop.test."
	Domain = "shop.test"
	OldIP  = "192.0.2.10"
	NewIP  = "198.51.100.7"
)

// Demo is a running rehearsal.
type Demo struct {
	Dir     string
	Runbook string
	Lab     *lab.Lab
	DNS     *dnslab.Lab
	Web     *weblab.Lab
	OldRoot string // the old host's tree (source files)
	NewRoot string // the new host's tree (target root)
}

// Start builds the lab and the runbook in dir. logf may be nil.
func Start(ctx context.Context, dir string, logf func(string, ...any)) (*Demo, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &Demo{Dir: dir, OldRoot: filepath.Join(dir, "old"), NewRoot: filepath.Join(dir, "new")}
	logf("starting two MariaDB servers and an sshd ...")
	l, err := lab.Start(ctx, lab.Options{Dir: filepath.Join(dir, "lab"), Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("demo lab: %w", err)
	}
	d.Lab = l
	logf("starting the DNS zone %s with 3 caching resolvers ...", Zone)
	dl, err := dnslab.Start(ctx, dnslab.Options{Dir: filepath.Join(dir, "dns"), Zone: Zone, Resolvers: 3,
		Records: []string{"@ 60 IN A " + OldIP, "www 60 IN CNAME @"}})
	if err != nil {
		d.Stop()
		return nil, fmt.Errorf("demo dns: %w", err)
	}
	d.DNS = dl
	if err := d.seed(ctx); err != nil {
		d.Stop()
		return nil, err
	}
	logf("starting the old and new web servers for %s ...", Domain)
	if err := os.MkdirAll(filepath.Join(dir, "web"), 0o700); err != nil {
		d.Stop()
		return nil, err
	}
	web, err := weblab.Start(weblab.Options{Dir: filepath.Join(dir, "web"), OldRoot: d.OldRoot, NewRoot: d.NewRoot,
		Vhosts: map[string]string{Domain: "/var/www/shop", "www." + Domain: "/var/www/shop"}})
	if err != nil {
		d.Stop()
		return nil, fmt.Errorf("demo web: %w", err)
	}
	d.Web = web
	if err := d.writeRunbook(); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// Stop stops every server; the runbook, journal and transcript stay.
func (d *Demo) Stop() {
	if d.Web != nil {
		_ = d.Web.Close()
	}
	if d.DNS != nil {
		d.DNS.Stop()
	}
	if d.Lab != nil {
		_ = d.Lab.Stop()
		_ = d.Lab.RemoveAll()
	}
}

func (d *Demo) seed(ctx context.Context) error {
	db, err := d.Lab.RootDB(d.Lab.Source)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range shopSQL {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed shop: %w (%.60s)", err, q)
		}
	}
	if err := seedOrders(ctx, db); err != nil {
		return err
	}
	docroot := filepath.Join(d.OldRoot, "var/www/shop")
	files := map[string]string{
		"index.html":         "<html><head><title>Demo shop</title></head><body>Welcome to the demo shop.</body></html>\n",
		"uploads/logo.txt":   "a logo, pretend\n",
		"uploads/2026/a.txt": "an upload\n",
		".env":               "APP_ENV=production\nAPP_KEY=base64:c2VjcmV0LWRlbW8ta2V5LXZhbHVl\nDB_PASSWORD=demo-db-password-123\n",
	}
	for name, body := range files {
		p := filepath.Join(docroot, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if name == ".env" {
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			return err
		}
	}
	cron := filepath.Join(d.OldRoot, "etc/cron.d/shop")
	if err := os.MkdirAll(filepath.Dir(cron), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(cron, []byte("# shop jobs\n*/5 * * * * www-data php /var/www/shop/artisan schedule:run\n"), 0o644); err != nil {
		return err
	}
	return os.MkdirAll(d.NewRoot, 0o755)
}

var shopSQL = []string{
	"CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4",
	`CREATE TABLE IF NOT EXISTS shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(190) NOT NULL UNIQUE,
	  name VARCHAR(100) NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS shop.products (id INT PRIMARY KEY AUTO_INCREMENT, sku VARCHAR(32) NOT NULL UNIQUE,
	  title VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, product_id INT NOT NULL,
	  qty INT NOT NULL, note TEXT, placed_at DATETIME NOT NULL, KEY (customer_id), KEY (product_id)) ENGINE=InnoDB`,
	"CREATE USER IF NOT EXISTS 'shop'@'localhost' IDENTIFIED BY 'shop-demo-pass-456'",
	"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO 'shop'@'localhost'",
}

func seedOrders(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM shop.customers").Scan(&n); err != nil || n > 0 {
		return err
	}
	var b strings.Builder
	b.WriteString("INSERT INTO shop.customers (email, name) VALUES ")
	for i := 1; i <= 200; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "('c%d@example.org', 'Customer %d Ünïcødé ✓')", i, i)
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("seed customers: %w", err)
	}
	b.Reset()
	b.WriteString("INSERT INTO shop.products (sku, title, price) VALUES ")
	for i := 1; i <= 50; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "('SKU-%04d', 'Product %d', %d.99)", i, i, i)
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("seed products: %w", err)
	}
	b.Reset()
	b.WriteString("INSERT INTO shop.orders (customer_id, product_id, qty, note, placed_at) VALUES ")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 2000; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d, %d, %d, 'order %d', '%s')", i%200+1, i%50+1, i%5+1, i, t0.Add(time.Duration(i)*time.Hour).Format(time.DateTime))
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("seed orders: %w", err)
	}
	return nil
}

func (d *Demo) writeRunbook() error {
	d.Runbook = filepath.Join(d.Dir, "demo.yaml")
	var b strings.Builder
	err := runbookTmpl.Execute(&b, map[string]any{
		"D": d, "SSH": fmt.Sprintf("ssh://%s@%s", d.Lab.SSH.User, d.Lab.SSH.Addr), "L": d.Lab,
		"Zone": Zone, "OldIP": OldIP, "NewIP": NewIP, "DNS": d.DNS,
		"Resolvers": strings.Join(quoteAll(d.DNS.Resolvers), ", "), "Web": d.Web, "Domain": Domain,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(d.Runbook, []byte(b.String()), 0o600)
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

var runbookTmpl = template.Must(template.New("demo").Parse(`# decant demo: move the demo shop from the "old" side to the "new" one.
# The old side is this machine ({{.D.OldRoot}}); the new host is reached
# over SSH ({{.SSH}}) and keeps its files under {{.D.NewRoot}}.
name: demo shop to the new server
notes: |
  A rehearsal on a local lab. Run every step, try undo, skip and notes;
  the cut-over asks you to type the domain ({{.Zone}}).
hosts:
  source:
    address: local
    root: {{.D.OldRoot}}
  target:
    address: {{.SSH}}
    key: {{.L.SSH.ClientKeyFile}}
    known_hosts: {{.L.SSH.KnownHostsFile}}
    root: {{.D.NewRoot}}
mysql:
  source:
    host: source
    address: {{.L.Source.Addr}}
    options: {{.L.Source.OptionFile}}
  target:
    host: target
    address: {{.L.Target.Addr}}
    options: {{.L.Target.OptionFile}}
    debian_cnf: {{.L.Target.DebianCnf}}
dns:
  zone: {{.Zone}}
  names: [{{.Zone}}, www.{{.Zone}}]
  primary: {{.DNS.Primary}}
  authoritative: [{{.DNS.Primary}}]
  tsig_key: {{.DNS.KeyFile}}
  ttl: 30
  old_address: [{{.OldIP}}]
  new_address: [{{.NewIP}}]
  resolvers: [{{.Resolvers}}]
  resolvers_mode: replace
  timeout: 1s
settings:
  freeze_budget: 90s
  domains: [shop.test]
phases:
  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target, tools: [sh, rsync, mysql]}
      - check: mysql.version
      - check: mysql.debian_sys_maint
      - check: mysql.space
      - check: mysql.users
      - check: mysql.triggers
      - check: env.parity
        with: {files: [/var/www/shop/.env]}
      - check: cron.parity
        with: {cron_d: /etc/cron.d, no_timers: true}
      - check: dns.ttl
      - check: tls.cert
        with: {address: {{printf "%q" .Web.New.HTTPSAddr}}, ca_file: {{.Web.CA.File}}}
  - name: prepare
    steps:
      - action: dns.set_ttl
      - action: mysql.fix_debian_sys_maint
      - action: env.copy
        with: {files: [/var/www/shop/.env]}
      - action: cron.install
        with: {cron_d: [/etc/cron.d/shop]}
      - id: files-first
        title: first full copy of the web files
        action: files.sync
        with: {paths: [/var/www/shop], exclude: [.env]}
      - action: mysql.capture
        with: {databases: [shop]}
      - action: mysql.copy
        with: {databases: [shop]}
      - action: mysql.copy_users
      - id: catchup-live
        title: catch up while the site is live
        action: mysql.catchup
  - name: freeze
    steps:
      - action: mysql.freeze
      - id: files-final
        title: final file delta
        action: files.sync
        with: {paths: [/var/www/shop], exclude: [.env]}
      - id: catchup-final
        title: final catch-up
        action: mysql.catchup
      - action: mysql.verify
        with: {databases: [shop]}
  - name: cutover
    steps:
      - action: http.smoke
        with:
          urls: [https://{{.Domain}}/]
          old: {http: {{printf "%q" .Web.Old.HTTPAddr}}, https: {{printf "%q" .Web.Old.HTTPSAddr}}}
          new: {http: {{printf "%q" .Web.New.HTTPAddr}}, https: {{printf "%q" .Web.New.HTTPSAddr}}}
          ca_file: {{.Web.CA.File}}
      - check: dns.ttl
      - action: dns.switch
      - action: mysql.unfreeze
        with: {keep_read_only: true}
      - check: dns.propagation
`))
