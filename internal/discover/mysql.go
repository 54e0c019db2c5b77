package discover

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path"
	"time"

	"github.com/decant-sh/decant/internal/mysqlx"
)

// defaultSockets are where Debian, Red Hat and source builds put the
// server's socket, looked up inside the tree.
var defaultSockets = []string{
	"/run/mysqld/mysqld.sock",
	"/var/run/mysqld/mysqld.sock",
	"/var/lib/mysql/mysql.sock",
	"/tmp/mysql.sock",
}

// mysqlTry is one way to log in: an option file's credentials with its
// socket or address, or the socket alone as root (unix_socket auth).
type mysqlTry struct {
	label      string // for problems: the option file, or "socket"
	optionFile string // machine path; "" for a socket alone
	opts       mysqlx.Options
	inTree     bool // the file is part of the tree: its socket is too
	err        error
}

// mysql finds a server it can log in to and lists its databases.
func (d *discoverer) mysql(ctx context.Context, p *part) *MySQL {
	o := d.o.MySQL
	if o.Skip {
		p.note("mysql: not asked (--no-mysql)")
		return nil
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	var tries []mysqlTry
	for _, f := range o.OptionFiles {
		t := mysqlTry{label: f, optionFile: f}
		data, err := os.ReadFile(f)
		if err != nil {
			t.err = err
		} else {
			t.opts = mysqlx.ParseOptions(data)
		}
		tries = append(tries, t)
	}
	if !o.NoDefaults {
		var files []string
		if home, err := os.UserHomeDir(); err == nil {
			files = append(files, path.Join(home, ".my.cnf"))
		}
		files = append(files, "/etc/mysql/debian.cnf")
		for _, f := range files {
			if !d.fs.Exists(f) {
				continue
			}
			t := mysqlTry{label: f, optionFile: d.fs.real(f), inTree: true}
			data, err := d.fs.ReadFile(f)
			if err != nil {
				t.err = err
			} else {
				t.opts = mysqlx.ParseOptions(data)
			}
			tries = append(tries, t)
		}
		if sock := d.defaultSocket(); sock != "" {
			tries = append(tries, mysqlTry{label: "socket " + sock, opts: mysqlx.Options{User: "root", Socket: sock}, inTree: true})
		}
	}
	if len(tries) == 0 {
		p.problem("mysql: no option file (~/.my.cnf, /etc/mysql/debian.cnf) and no server socket (%s) found; name one with --mysql-options", defaultSockets[0])
		return nil
	}
	for i := range tries {
		t := &tries[i]
		if t.err != nil {
			continue
		}
		m, err := d.mysqlLogin(ctx, t, o.Timeout)
		if err == nil {
			// Earlier ways that failed are worth knowing (a stale
			// ~/.my.cnf), but nothing is missing.
			for _, f := range tries[:i] {
				p.note("mysql: %s did not work (%v); logged in with %s", f.label, f.err, t.label)
			}
			return m
		}
		t.err = err
	}
	for _, t := range tries {
		p.problem("mysql: %s: %v", t.label, t.err)
	}
	return nil
}

// defaultSocket returns the first default socket present in the tree, as
// a machine path.
func (d *discoverer) defaultSocket() string {
	for _, s := range defaultSockets {
		if fi, err := d.fs.Stat(s); err == nil && fi.Mode().Type() == os.ModeSocket {
			return d.fs.real(s)
		}
	}
	return ""
}

// mysqlEndpoint says where an option file points, as the mysql client
// reads it: a socket for localhost, else TCP.
func (d *discoverer) mysqlEndpoint(t *mysqlTry) (socket, address string, err error) {
	local := t.opts.Host == "" || t.opts.Host == "localhost"
	switch {
	case local && t.opts.Socket != "":
		socket = t.opts.Socket
		if t.inTree {
			socket = d.fs.real(socket)
		}
		if fi, err := os.Stat(socket); err != nil || fi.Mode().Type() != os.ModeSocket {
			return "", "", fmt.Errorf("socket %s is not there (is the server running?)", t.opts.Socket)
		}
		return socket, "", nil
	case local:
		if socket = d.defaultSocket(); socket == "" {
			return "", "", fmt.Errorf("no server socket at %s", defaultSockets[0])
		}
		return socket, "", nil
	}
	port := t.opts.Port
	if port == "" {
		port = "3306"
	}
	return "", net.JoinHostPort(t.opts.Host, port), nil
}

// mysqlLogin connects one way and lists the databases.
func (d *discoverer) mysqlLogin(ctx context.Context, t *mysqlTry, timeout time.Duration) (*MySQL, error) {
	socket, address, err := d.mysqlEndpoint(t)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ep := mysqlx.Endpoint{Name: "source", Socket: socket, Address: address, User: t.opts.User, Password: t.opts.Password}
	db, err := mysqlx.Open(ctx, d.o.Host, ep, d.o.Secrets)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	user := t.opts.User
	if user == "" {
		user = "root"
	}
	m := &MySQL{OptionFile: t.optionFile, Socket: socket, Address: address, User: user}
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@datadir").Scan(&m.Version, &m.Datadir); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	if m.Databases, err = mysqlDatabases(ctx, db); err != nil {
		return nil, err
	}
	return m, nil
}

// mysqlDatabases lists user databases with data+index bytes and table
// counts; empty databases are listed too (they still need creating).
func mysqlDatabases(ctx context.Context, db *sql.DB) ([]Database, error) {
	rows, err := db.QueryContext(ctx, `SELECT s.SCHEMA_NAME,
	COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0), COUNT(t.TABLE_NAME)
FROM information_schema.SCHEMATA s
LEFT JOIN information_schema.TABLES t
	ON t.TABLE_SCHEMA = s.SCHEMA_NAME AND t.TABLE_TYPE = 'BASE TABLE'
WHERE s.SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
GROUP BY s.SCHEMA_NAME
ORDER BY s.SCHEMA_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	defer rows.Close()
	var out []Database
	for rows.Next() {
		var db Database
		if err := rows.Scan(&db.Name, &db.Bytes, &db.Tables); err != nil {
			return nil, fmt.Errorf("list databases: %w", err)
		}
		out = append(out, db)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return out, nil
}
