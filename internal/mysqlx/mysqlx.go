// Package mysqlx opens MySQL/MariaDB connections through a host: the local
// socket, or a tunnel over the host's SSH connection registered as a
// go-sql-driver dialer. Credentials come from my.cnf-style option files read
// on that host, never from the command line.
package mysqlx

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/secret"
)

// Options is what an option file's client sections say.
type Options struct {
	User     string
	Password string
	Host     string
	Port     string
	Socket   string
}

// ParseOptions reads [client], [mysql] and [client-server] sections of a
// my.cnf-style file; later sections override earlier ones as the mysql
// client does. Quoted values are unquoted.
func ParseOptions(data []byte) Options {
	var o Options
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.ToLower(strings.Trim(line, "[] "))
			continue
		}
		switch section {
		case "client", "mysql", "client-server", "client-mariadb":
		default:
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		switch k {
		case "user":
			o.User = v
		case "password":
			o.Password = v
		case "host":
			o.Host = v
		case "port":
			o.Port = v
		case "socket":
			o.Socket = v
		}
	}
	return o
}

// Endpoint says where a server is as seen from its host.
type Endpoint struct {
	Name    string // for messages: "source", "target"
	Socket  string
	Address string // host:port
	// OptionsFile is read on the host; User overrides its user.
	OptionsFile string
	User        string
	Password    string // only when not from a file (tests, debian.cnf checks)
	Database    string
}

var dialerSeq atomic.Int64

// The driver logs dropped connections to stderr by default, which would
// write over the TUI; the errors reach the caller anyway.
func init() { _ = mysql.SetLogger(log.New(io.Discard, "", 0)) }

// ReadOptions reads an option file on h; "~/" is the login user's home there.
func ReadOptions(ctx context.Context, h hosts.Host, path string) (Options, error) {
	if strings.HasPrefix(path, "~/") {
		home, err := h.Output(ctx, `printf %s "$HOME"`)
		if err != nil {
			return Options{}, fmt.Errorf("find home on %s: %w", h.Name(), err)
		}
		path = strings.TrimRight(string(home), "/") + path[1:]
	}
	data, err := h.ReadFile(ctx, path)
	if err != nil {
		return Options{}, fmt.Errorf("read option file %s on %s: %w", path, h.Name(), err)
	}
	return ParseOptions(data), nil
}

// Open connects to ep through h and pings it. Passwords read are added to
// secrets so they are redacted from every record.
func Open(ctx context.Context, h hosts.Host, ep Endpoint, secrets *secret.Set) (*sql.DB, error) {
	cfg, err := Config(ctx, h, ep, secrets)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", ep.Name, err)
	}
	db := sql.OpenDB(conn)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql %s (%s as %s): %w", ep.Name, where(cfg), cfg.User, err)
	}
	return db, nil
}

func where(cfg *mysql.Config) string {
	return fmt.Sprintf("%s %s", strings.SplitN(cfg.Net, "-", 2)[0], cfg.Addr)
}

// Config builds a driver config for ep through h: it reads the option file,
// registers a dialer that goes through the host, and sets session defaults.
func Config(ctx context.Context, h hosts.Host, ep Endpoint, secrets *secret.Set) (*mysql.Config, error) {
	var o Options
	if ep.OptionsFile != "" {
		var err error
		if o, err = ReadOptions(ctx, h, ep.OptionsFile); err != nil {
			return nil, fmt.Errorf("mysql %s: %w", ep.Name, err)
		}
	}
	if ep.User != "" {
		o.User = ep.User
	}
	if ep.Password != "" {
		o.Password = ep.Password
	}
	if o.User == "" {
		o.User = "root"
	}
	secrets.Add(o.Password)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = o.User, o.Password
	cfg.DBName = ep.Database
	cfg.ParseTime = false
	cfg.InterpolateParams = false
	cfg.AllowNativePasswords = true
	cfg.AllowCleartextPasswords = false
	cfg.MaxAllowedPacket = 0 // ask the server
	cfg.Timeout = 20 * time.Second
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	network, addr := "tcp", ep.Address
	switch {
	case ep.Socket != "":
		network, addr = "unix", ep.Socket
	case ep.Address != "":
	case o.Socket != "" && (o.Host == "" || o.Host == "localhost"):
		network, addr = "unix", o.Socket
	default:
		host, port := o.Host, o.Port
		if host == "" || host == "localhost" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "3306"
		}
		addr = net.JoinHostPort(host, port)
	}
	name := fmt.Sprintf("%s-decant-%s-%d", network, ep.Name, dialerSeq.Add(1))
	mysql.RegisterDialContext(name, func(ctx context.Context, a string) (net.Conn, error) {
		return h.DialContext(ctx, network, a)
	})
	cfg.Net, cfg.Addr = name, addr
	return cfg, nil
}
