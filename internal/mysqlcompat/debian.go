package mysqlcompat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

// DebianCnfPath is where Debian's MySQL/MariaDB packages keep the
// credentials their maintenance scripts (init, logrotate, upgrade) use.
const DebianCnfPath = "/etc/mysql/debian.cnf"

// DebianLogin is the outcome of logging in with a host's debian.cnf.
type DebianLogin struct {
	Path   string
	Exists bool
	// Debian reports a Debian-family host (/etc/debian_version exists).
	Debian bool
	User   string
	// Password is a secret: it is added to the run's secrets and must
	// never be logged or journaled.
	Password string `json:"-"`
	// Via says how decant connected: "socket /run/mysqld/mysqld.sock".
	Via string
	OK  bool
	// Denied is error 1045/1698: the account is missing or its password
	// differs from debian.cnf.
	Denied bool
	Err    error
	// Grants are SHOW GRANTS for the logged-in account.
	Grants []string
}

// ReadDebianLogin reads the endpoint's debian.cnf (ep.DebianCnf, default
// DebianCnfPath) on h and logs in with it the way Debian's scripts do:
// through the socket it names, else the endpoint's socket or address.
func ReadDebianLogin(ctx context.Context, h hosts.Host, ep steps.MySQLEndpoint, secrets *secret.Set) (*DebianLogin, error) {
	l := &DebianLogin{Path: ep.DebianCnf}
	if l.Path == "" {
		l.Path = DebianCnfPath
	}
	if fi, err := h.Stat(ctx, "/etc/debian_version"); err == nil && fi.Exists {
		l.Debian = true
	}
	fi, err := h.Stat(ctx, l.Path)
	if err != nil {
		return nil, fmt.Errorf("stat %s on %s: %w", l.Path, h.Name(), err)
	}
	if !fi.Exists {
		return l, nil
	}
	l.Exists = true
	o, err := mysqlx.ReadOptions(ctx, h, l.Path)
	if err != nil {
		return nil, err
	}
	secrets.Add(o.Password)
	l.User, l.Password = o.User, o.Password
	if l.User == "" {
		l.User = "root"
	}
	me := mysqlx.Endpoint{Name: ep.Name + " (debian.cnf)", User: l.User, Password: o.Password}
	switch {
	case o.Socket != "":
		me.Socket, l.Via = o.Socket, "socket "+o.Socket
	case ep.Socket != "":
		me.Socket, l.Via = ep.Socket, "socket "+ep.Socket
	default:
		me.Address, l.Via = ep.Address, "TCP "+ep.Address
	}
	db, err := mysqlx.Open(ctx, h, me, secrets)
	if err != nil {
		l.Err = err
		var my *mysql.MySQLError
		l.Denied = errors.As(err, &my) && (my.Number == 1045 || my.Number == 1698)
		return l, nil
	}
	defer db.Close()
	l.OK = true
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return l, nil
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if rows.Scan(&g) == nil {
			l.Grants = append(l.Grants, g)
		}
	}
	return l, nil
}

// HasAllPrivileges reports whether the grants include ALL PRIVILEGES ON *.*
// WITH GRANT OPTION, which Debian gives its maintenance account.
func (l *DebianLogin) HasAllPrivileges() bool {
	for _, g := range l.Grants {
		u := strings.ToUpper(g)
		if strings.HasPrefix(u, "GRANT ALL PRIVILEGES ON *.* TO") && strings.Contains(u, "WITH GRANT OPTION") {
			return true
		}
	}
	return false
}

// DebianFixSQL is what gives user@localhost the password from debian.cnf
// and all privileges, in the syntax server v accepts: CREATE USER or
// ALTER USER then GRANT where ALTER USER exists, else GRANT ... IDENTIFIED
// BY. password is written as given: pass a placeholder for display.
func DebianFixSQL(v Version, q Quoter, user string, exists bool, password string) []string {
	acct := q.Account(user, "localhost")
	pw := q.String(password)
	if !v.HasAlterUser() {
		return []string{"GRANT ALL PRIVILEGES ON *.* TO " + acct + " IDENTIFIED BY " + pw + " WITH GRANT OPTION"}
	}
	first := "CREATE USER " + acct + " IDENTIFIED BY " + pw
	if exists {
		first = "ALTER USER " + acct + " IDENTIFIED BY " + pw
	}
	return []string{first, "GRANT ALL PRIVILEGES ON *.* TO " + acct + " WITH GRANT OPTION"}
}
