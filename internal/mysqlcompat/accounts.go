package mysqlcompat

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
)

// Account is one row of mysql.user: an account or (MariaDB) a role.
type Account struct {
	User, Host string
	// Plugin is the authentication plugin; inferred from the hash on old
	// servers that leave it empty.
	Plugin string
	// Auth is the authentication string (password hash). It is a secret:
	// never log it, never journal it.
	Auth   string `json:"-"`
	IsRole bool
	Locked bool
}

// Name is 'user'@'host' (a role: 'role').
func (a Account) Name() string {
	if a.IsRole {
		return "'" + a.User + "'"
	}
	return AccountName(a.User, a.Host)
}

// SQL is the account as a SQL user specification for q's session.
func (a Account) SQL(q Quoter) string {
	if a.IsRole {
		return q.String(a.User)
	}
	return q.Account(a.User, a.Host)
}

// systemUsers are the accounts servers and packages create for themselves.
var systemUsers = map[string]bool{
	"root": true, "mysql.sys": true, "mysql.session": true, "mysql.infoschema": true,
	"mariadb.sys": true, "debian-sys-maint": true, "mysql": true, "": true, "PUBLIC": true,
	"mysql.pxc.internal.session": true, "mysql.pxc.sst.role": true,
}

// IsSystemAccount reports whether user is one the server or the OS
// packages own (root, mysql.sys, mariadb.sys, debian-sys-maint, the
// anonymous user, ...). decant leaves those alone unless named.
func IsSystemAccount(user string) bool { return systemUsers[user] }

// ListAccounts reads every account of mysql.user, whatever the server
// version's column set (Password or authentication_string, is_role,
// account_locked).
func ListAccounts(ctx context.Context, q Querier) ([]Account, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM mysql.user")
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Account
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		col := map[string]string{}
		for i, c := range cols {
			col[strings.ToLower(c)] = vals[i].String
		}
		a := Account{User: col["user"], Host: col["host"], Plugin: col["plugin"],
			IsRole: strings.EqualFold(col["is_role"], "Y"), Locked: strings.EqualFold(col["account_locked"], "Y")}
		a.Auth = col["authentication_string"]
		if a.Auth == "" {
			a.Auth = col["password"]
		}
		if a.Plugin == "" {
			switch {
			case len(a.Auth) == 16:
				a.Plugin = "mysql_old_password"
			default:
				a.Plugin = "mysql_native_password"
			}
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Host < out[j].Host
	})
	return out, nil
}

// LockedAccounts returns the names of locked accounts on MariaDB 10.4+,
// where the lock lives in mysql.global_priv rather than mysql.user.
func LockedAccounts(ctx context.Context, q Querier) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.account_locked') = 'true'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			return nil, err
		}
		out[AccountName(u, h)] = true
	}
	return out, rows.Err()
}

// ShowGrants returns SHOW GRANTS FOR the account, one statement per line.
func ShowGrants(ctx context.Context, q Querier, a Account) ([]string, error) {
	qt := Quoter{NoBackslashEscapes: true}
	if strings.Contains(a.User+a.Host, `\`) {
		qt.NoBackslashEscapes = false
	}
	rows, err := q.QueryContext(ctx, "SHOW GRANTS FOR "+a.SQL(qt))
	if err != nil {
		return nil, fmt.Errorf("show grants for %s: %w", a.Name(), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ShowCreateUser returns SHOW CREATE USER for the account.
func ShowCreateUser(ctx context.Context, q Querier, a Account) (string, error) {
	var s string
	qt := Quoter{NoBackslashEscapes: !strings.Contains(a.User+a.Host, `\`)}
	if err := q.QueryRowContext(ctx, "SHOW CREATE USER "+a.SQL(qt)).Scan(&s); err != nil {
		return "", fmt.Errorf("show create user %s: %w", a.Name(), err)
	}
	return s, nil
}

// StripIdentified removes the IDENTIFIED ... clause (password hashes) that
// old servers and MariaDB print in SHOW GRANTS lines; the account's
// authentication is set by CREATE USER instead.
func StripIdentified(grant string) string {
	toks := tokenize(grant)
	for i, t := range toks {
		if t.kind != tokWord || t.upper() != "IDENTIFIED" {
			continue
		}
		end := len(grant)
		for _, u := range toks[i+1:] {
			if u.kind == tokWord && (u.upper() == "REQUIRE" || u.upper() == "WITH") {
				end = u.start
				break
			}
		}
		return strings.TrimRight(grant[:t.start], " ") + suffixSpace(grant[end:])
	}
	return grant
}

func suffixSpace(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// Grant is one GRANT line split into its privileges and the rest.
type Grant struct {
	Line string
	// Privileges are upper-cased names without column lists ("SELECT",
	// "BINLOG MONITOR"); empty for role grants (GRANT role TO user).
	Privileges []string
	// privText keeps each privilege as written, with its column list.
	privText []string
	// rest is the text from ON to the end.
	rest string
	role bool
}

// ParseGrant splits a SHOW GRANTS line. Lines that are not GRANT
// statements (SET DEFAULT ROLE, ...) come back with no privileges.
func ParseGrant(line string) Grant {
	g := Grant{Line: line}
	toks := tokenize(line)
	if len(toks) == 0 || toks[0].upper() != "GRANT" {
		return g
	}
	depth := 0
	start := -1
	var cur []token
	flush := func(endPos int) {
		if len(cur) == 0 {
			return
		}
		txt := strings.TrimSpace(line[cur[0].start:endPos])
		var names []string
		for _, t := range cur {
			if t.text == "(" {
				break
			}
			names = append(names, t.upper())
		}
		g.Privileges = append(g.Privileges, strings.Join(names, " "))
		g.privText = append(g.privText, txt)
		cur = nil
	}
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		if start < 0 {
			start = t.start
		}
		switch {
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
		case depth == 0 && t.text == ",":
			flush(t.start)
			continue
		case depth == 0 && t.kind == tokWord && t.upper() == "ON":
			flush(t.start)
			g.rest = line[t.start:]
			return g
		case depth == 0 && t.kind == tokWord && t.upper() == "TO":
			// GRANT role TO user: no ON clause.
			g.Privileges, g.privText, g.role = nil, nil, true
			return g
		}
		cur = append(cur, t)
	}
	g.Privileges, g.privText = nil, nil
	return g
}

// IsRoleGrant reports a GRANT role TO account line.
func (g Grant) IsRoleGrant() bool { return g.role }

// Without returns the GRANT line without the privileges for which drop
// returns true, and false when nothing is left to grant.
func (g Grant) Without(drop func(priv string) bool) (string, bool) {
	if g.rest == "" {
		return g.Line, true
	}
	var keep []string
	for i, p := range g.Privileges {
		if !drop(p) {
			keep = append(keep, g.privText[i])
		}
	}
	if len(keep) == 0 {
		return "", false
	}
	return "GRANT " + strings.Join(keep, ", ") + " " + g.rest, true
}

var ipLike = regexp.MustCompile(`^[0-9.%_/]+$|^[0-9a-fA-F:%_/]*:[0-9a-fA-F:%_/]*$`)

// HostKind classifies an account's host pattern: "any" (%), "local"
// (localhost, 127.0.0.1, ::1), "ip" (addresses, masks, wildcards) or
// "name" (host names, which need name resolution on the server).
func HostKind(host string) string {
	switch strings.ToLower(host) {
	case "%", "":
		return "any"
	case "localhost", "127.0.0.1", "::1", "localhost.localdomain":
		return "local"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "local"
	}
	if ipLike.MatchString(host) {
		return "ip"
	}
	return "name"
}
