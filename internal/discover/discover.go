// Package discover finds what runs on the old server so `decant init` can
// propose a runbook: MySQL/MariaDB databases with their sizes, Apache and
// nginx virtual hosts with their names and docroots, env files in those
// docroots (key names only, never values), crontabs, running services and
// queue workers, and the domains with their authoritative servers.
//
// Discovery never fails as a whole because one source is missing or
// unreadable: each part that could not be read adds one line to
// Report.Problems, and the rest is still reported.
package discover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/secret"
)

// Options say where to look.
type Options struct {
	// Root is the configuration tree: "/" on the old server; tests and an
	// operator inspecting a mounted copy give another directory. Every file
	// path read (web server configs, docroots, crontabs, option files found
	// by default) is taken inside it, and every path reported is the tree's
	// own ("/etc/nginx/...").
	Root string
	// Host runs the commands discovery needs (the process list, systemctl,
	// supervisorctl, web server binaries) and dials MySQL. Default: the
	// local machine.
	Host hosts.Host
	// MySQL configures the database part.
	MySQL MySQLOptions
	// DNS configures the domain part.
	DNS DNSOptions
	// NoServices skips the commands run for services and workers (a tree
	// copied from another machine says nothing about this one's processes).
	NoServices bool
	// Secrets receives every password read, for redaction. Default: a new set.
	Secrets *secret.Set
}

// MySQLOptions say how to find a MySQL/MariaDB server to list databases.
type MySQLOptions struct {
	// Skip leaves the database part out (reported as a note).
	Skip bool
	// OptionFiles are option files tried first, as written (machine paths,
	// not inside Root; their socket= too): e.g. a lab server's root.cnf.
	OptionFiles []string
	// NoDefaults skips the usual places: ~/.my.cnf, /etc/mysql/debian.cnf
	// and the usual sockets, all taken inside Root.
	NoDefaults bool
	// Timeout bounds each connection attempt (default 10s).
	Timeout time.Duration
}

// DNSOptions say how to look up the domains' zones and name servers.
type DNSOptions struct {
	// Skip leaves the lookups out: domains are still listed from the
	// virtual hosts, without zone or name servers.
	Skip bool
	// Resolvers are recursive resolvers (host:port); default: the system's
	// from /etc/resolv.conf.
	Resolvers []string
	// Timeout bounds each query (default 2s).
	Timeout time.Duration
}

// Report is what discovery found.
type Report struct {
	Root      string     `json:"root"`
	MySQL     *MySQL     `json:"mysql,omitempty"`
	VHosts    []VHost    `json:"vhosts"`
	EnvFiles  []EnvFile  `json:"env_files"`
	Crontabs  []Crontab  `json:"crontabs"`
	Services  Services   `json:"services"`
	Domains   []Domain   `json:"domains"`
	WebServer *WebServer `json:"web_server,omitempty"`
	// Problems are what could not be read, one line each.
	Problems []string `json:"problems,omitempty"`
	// Notes are sources that are simply absent (no nginx on this host).
	Notes []string `json:"notes,omitempty"`
}

// MySQL is the database server discovery could log in to.
type MySQL struct {
	// How it connected, for the runbook's mysql.source.
	OptionFile string `json:"option_file,omitempty"` // machine path
	Socket     string `json:"socket,omitempty"`      // machine path
	Address    string `json:"address,omitempty"`     // host:port
	User       string `json:"user"`
	Version    string `json:"version"`
	// Datadir is the server's @@datadir.
	Datadir   string     `json:"datadir,omitempty"`
	Databases []Database `json:"databases"`
}

// Database is one schema with its size.
type Database struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"` // data + index length of its tables
	Tables int    `json:"tables"`
}

// VHost is one virtual host of Apache or nginx.
type VHost struct {
	Server string `json:"server"` // "apache" or "nginx"
	File   string `json:"file"`   // tree path of the file defining it
	Line   int    `json:"line"`
	// Names are ServerName then ServerAlias (or server_name's list).
	Names   []string `json:"names,omitempty"`
	DocRoot string   `json:"docroot,omitempty"`
	Listen  []string `json:"listen,omitempty"`
	TLS     bool     `json:"tls,omitempty"`
}

// EnvFile is a dotenv file with its key names (values are never read
// into the report).
type EnvFile struct {
	Path string   `json:"path"`
	Keys []string `json:"keys"`
}

// Crontab is a user's crontab or a system cron file.
type Crontab struct {
	Path string `json:"path"`
	// User is the owner of a per-user crontab; "" for /etc/crontab and
	// /etc/cron.d files, whose lines name their user.
	User string `json:"user,omitempty"`
	Jobs int    `json:"jobs"`
}

// Services are what runs on the host.
type Services struct {
	// Systemd is set when systemd runs; Units are its running services.
	Systemd bool     `json:"systemd"`
	Units   []string `json:"units,omitempty"`
	// Init are SysV services started at boot (rc2-5.d links), listed when
	// systemd does not run.
	Init []string `json:"init,omitempty"`
	// Programs are supervisor programs.
	Programs []string `json:"programs,omitempty"`
	// Workers are queue runners seen in the process list ("artisan
	// queue:work").
	Workers []string `json:"workers,omitempty"`
}

// WebServer is the web stack found: versions and binaries.
type WebServer struct {
	Apache string `json:"apache,omitempty"` // version, "" when absent
	Nginx  string `json:"nginx,omitempty"`
	PHP    string `json:"php,omitempty"`
}

// Domain is a name served by a virtual host, with its zone and name
// servers when DNS was asked.
type Domain struct {
	Name string `json:"name"` // canonical, with the trailing dot
	Zone string `json:"zone,omitempty"`
	// NS are the zone's name servers.
	NS []string `json:"ns,omitempty"`
	// Addresses are its current A/AAAA records (after a CNAME chain).
	Addresses []string `json:"addresses,omitempty"`
	CNAME     string   `json:"cname,omitempty"`
}

// Discover looks at the host and returns what it found. It returns an error
// only for unusable options; everything else is a line in Problems.
func Discover(ctx context.Context, o Options) (*Report, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	fsys := newRootFS(o.Root)
	if fi, err := fsys.Stat("/"); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("discover: root %s is not a directory", o.Root)
	}
	if o.Host == nil {
		o.Host = hosts.Local("source")
	}
	if o.Secrets == nil {
		o.Secrets = secret.NewSet()
	}
	d := &discoverer{o: o, fs: fsys}
	rep := &Report{Root: fsys.root}

	// MySQL and services talk to processes and may wait on timeouts; they
	// run while the files are read.
	var wg sync.WaitGroup
	var myPart, svcPart part
	wg.Add(2)
	go func() {
		defer wg.Done()
		rep.MySQL = d.mysql(ctx, &myPart)
	}()
	go func() {
		defer wg.Done()
		rep.Services, rep.WebServer = d.services(ctx, &svcPart)
	}()

	var web, env, cron, dnsPart part
	rep.VHosts = d.vhosts(&web)
	rep.EnvFiles = d.envFiles(rep.VHosts, &env)
	rep.Crontabs = d.crontabs(&cron)
	rep.Domains = d.domains(ctx, rep.VHosts, &dnsPart)
	wg.Wait()

	// A fixed order keeps the report stable whatever finished first.
	for _, p := range []*part{&myPart, &web, &env, &cron, &svcPart, &dnsPart} {
		rep.Problems = append(rep.Problems, p.problems...)
		rep.Notes = append(rep.Notes, p.notes...)
	}
	return rep, nil
}

type discoverer struct {
	o  Options
	fs rootFS
}

// part collects one source's problems and notes; each goroutine owns one.
type part struct {
	problems, notes []string
}

// problem records one line: joined errors' lines are folded into it.
func (p *part) problem(format string, args ...any) {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "; ")), " ")
	p.problems = append(p.problems, msg)
}

func (p *part) note(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}

// DocRoots returns the distinct docroots of the virtual hosts, sorted.
func (r *Report) DocRoots() []string {
	var out []string
	for _, v := range r.VHosts {
		if v.DocRoot != "" {
			out = append(out, v.DocRoot)
		}
	}
	return uniqSorted(out)
}

// Size formats a byte count for people: 12.3 MiB.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func uniqSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
