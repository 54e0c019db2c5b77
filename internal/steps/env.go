package steps

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/secret"
)

// Env is what a check or action sees of the run: its hosts, its MySQL
// endpoints, the runbook's DNS settings, the secrets to redact and the
// history of earlier steps. The engine builds it; connections are opened
// lazily and shared between steps.
type Env struct {
	// Runbook is the runbook file's path; StateDir is <runbook>.decant/.
	Runbook  string
	StateDir string
	// RunID identifies this run (journal session) for per-run files.
	RunID    string
	DNS      DNSConfig
	Settings Settings
	Secrets  *secret.Set
	Conn     Connector
	// History lists completed actions, oldest first, when set directly
	// (tests); the engine sets HistoryFunc instead. Read it with Records.
	History     []Record
	HistoryFunc func() []Record
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Connector opens the run's hosts and MySQL endpoints on first use.
type Connector interface {
	Host(ctx context.Context, name string) (hosts.Host, error)
	MySQL(ctx context.Context, name string) (*sql.DB, error)
	MySQLEndpoint(name string) (MySQLEndpoint, bool)
	HostNames() []string
	// HostRoot is the path prefix of a host's files ("" or "/" for the real
	// root); labs keep an old and a new tree on one machine this way.
	HostRoot(name string) string
}

// Path maps an absolute path on a host through the host's root prefix.
func (e *Env) Path(host, p string) string {
	root := e.Conn.HostRoot(host)
	if root == "" || root == "/" {
		return p
	}
	return strings.TrimRight(root, "/") + "/" + strings.TrimLeft(p, "/")
}

// Host returns the named host ("source", "target", ...).
func (e *Env) Host(ctx context.Context, name string) (hosts.Host, error) {
	return e.Conn.Host(ctx, name)
}

// MySQL returns a pool for the named endpoint ("source", "target").
func (e *Env) MySQL(ctx context.Context, name string) (*sql.DB, error) {
	return e.Conn.MySQL(ctx, name)
}

// Record is a finished step as the journal remembers it.
type Record struct {
	StepID  string          `json:"step"`
	Kind    string          `json:"kind"`
	Time    time.Time       `json:"time"`
	Receipt json.RawMessage `json:"receipt,omitempty"`
	Undone  bool            `json:"undone,omitempty"`
	Seq     int64           `json:"seq,omitempty"` // journal order
}

// Records returns the finished actions so far, oldest first.
func (e *Env) Records() []Record {
	if e.HistoryFunc != nil {
		return e.HistoryFunc()
	}
	return e.History
}

// Clock returns Env.Now or time.Now.
func (e *Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// MySQLEndpoint says how to reach one MySQL/MariaDB server.
type MySQLEndpoint struct {
	Name string `yaml:"-" json:"name"`
	// Host is the runbook host the server is reached through.
	Host string `yaml:"host" json:"host"`
	// Socket is a unix socket path on that host; Address a host:port as seen
	// from that host (127.0.0.1:3306). One of the two, socket preferred.
	Socket  string `yaml:"socket" json:"socket,omitempty"`
	Address string `yaml:"address" json:"address,omitempty"`
	// Options is a my.cnf-style option file on that host holding user and
	// password ([client] section), e.g. ~/.my.cnf or /etc/mysql/debian.cnf.
	Options string `yaml:"options" json:"options,omitempty"`
	// User overrides the option file's user.
	User string `yaml:"user" json:"user,omitempty"`
	// Datadir overrides @@datadir for the free-space check (lab servers).
	Datadir string `yaml:"datadir" json:"datadir,omitempty"`
	// DebianCnf is where the Debian maintenance credentials live on the host
	// (default /etc/mysql/debian.cnf).
	DebianCnf string `yaml:"debian_cnf" json:"debian_cnf,omitempty"`
}

// DNSConfig is the runbook's DNS section.
type DNSConfig struct {
	Zone string `yaml:"zone" json:"zone,omitempty"`
	// Names are the records to move (apex, www, ...), fully qualified or
	// relative to Zone.
	Names []string `yaml:"names" json:"names,omitempty"`
	// Primary is where RFC 2136 updates go (host:port); default the SOA MNAME.
	Primary string `yaml:"primary" json:"primary,omitempty"`
	// Authoritative overrides NS discovery (host:port list), for labs and
	// split-horizon setups.
	Authoritative []string `yaml:"authoritative" json:"authoritative,omitempty"`
	// TSIGKey is a 0600 file holding the key (BIND key-file syntax or
	// "name algorithm secret").
	TSIGKey string `yaml:"tsig_key" json:"tsig_key,omitempty"`
	// TTL is the TTL to lower to before the switch (default 300).
	TTL uint32 `yaml:"ttl" json:"ttl,omitempty"`
	// OldAddress and NewAddress are the A/AAAA values before and after.
	OldAddress []string `yaml:"old_address" json:"old_address,omitempty"`
	NewAddress []string `yaml:"new_address" json:"new_address,omitempty"`
	// Resolvers to watch for propagation (host:port or host); see
	// ResolversMode.
	Resolvers []string `yaml:"resolvers" json:"resolvers,omitempty"`
	// ResolversMode is "extend" (default: system + public + these) or
	// "replace" (only these).
	ResolversMode string `yaml:"resolvers_mode" json:"resolvers_mode,omitempty"`
	// Timeout per DNS query (default 2s).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Settings are run-wide knobs from the runbook.
type Settings struct {
	// FreezeBudget is how long writes may stay frozen before decant lifts
	// the freeze itself (default 90s).
	FreezeBudget time.Duration `yaml:"freeze_budget" json:"freeze_budget,omitempty"`
	// Parallel is the number of concurrent copy workers (default: cores).
	Parallel int `yaml:"parallel" json:"parallel,omitempty"`
	// Domains are the site's domains (TLS, HTTP checks, cut-over confirm).
	Domains []string `yaml:"domains" json:"domains,omitempty"`
}
