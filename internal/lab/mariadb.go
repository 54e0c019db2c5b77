package lab

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	mariadbdPath  = "/usr/sbin/mariadbd"
	installDBPath = "mariadb-install-db"
)

// serverArgs are the settings shared by bootstrap and server: small and
// fast on a 2-core box, with Debian's utf8mb4 defaults for realism.
var serverArgs = []string{
	"--innodb-buffer-pool-size=256M",
	"--innodb-log-file-size=256M",
	"--innodb-flush-log-at-trx-commit=2",
	"--innodb-doublewrite=0",
	"--skip-name-resolve",
	"--character-set-server=utf8mb4",
	"--collation-server=utf8mb4_general_ci",
}

func (l *Lab) startMariaDB(ctx context.Context, m *MariaDB, sockDir string, debianSysMaint bool) error {
	t0 := time.Now()
	base := filepath.Join(l.Dir, m.Name)
	m.DataDir = filepath.Join(base, "data")
	m.ErrorLog = filepath.Join(base, "mariadbd.err")
	m.OptionFile = filepath.Join(base, "root.cnf")
	m.DebianCnf = filepath.Join(base, "etc", "mysql", "debian.cnf")
	if sockDir == "" {
		sockDir = filepath.Join(base, "run")
		m.Socket = filepath.Join(sockDir, "mysqld.sock")
	} else {
		m.Socket = filepath.Join(sockDir, m.Name+".sock")
	}
	// A private tmpdir: parallel bootstraps sharing /tmp fail now and then
	// with "Unknown table 'mysql.tmp_user_sys'".
	tmpDir := filepath.Join(base, "tmp")
	for _, d := range []string{base, sockDir, tmpDir, filepath.Dir(m.DebianCnf)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("lab: mariadb %s: %w", m.Name, err)
		}
	}
	if _, err := os.Stat(m.DataDir); err == nil {
		return fmt.Errorf("lab: mariadb %s: %s already exists (use a fresh dir or remove it)", m.Name, m.DataDir)
	}

	root := os.Geteuid() == 0
	var userArg []string
	if root {
		// mariadbd refuses to run as root unless told so explicitly.
		userArg = []string{"--user=root"}
	}
	install := append([]string{"--no-defaults", "--datadir=" + m.DataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--tmpdir=" + tmpDir}, userArg...)
	install = append(install, serverArgs...)
	m.created = true // from here on, a failed Start may delete DataDir
	cmd := exec.CommandContext(ctx, installDBPath, install...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		logPath := filepath.Join(base, "install-db.log")
		_ = os.WriteFile(logPath, out, 0o600)
		return fmt.Errorf("lab: mariadb %s: mariadb-install-db: %v: %s (full output: %s)", m.Name, err, errorLines(string(out)), logPath)
	}

	var p *proc
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("lab: mariadb %s: free port: %w", m.Name, err)
		}
		m.Port = port
		m.Addr = "127.0.0.1:" + strconv.Itoa(port)
		argv := append([]string{mariadbdPath, "--no-defaults",
			"--datadir=" + m.DataDir,
			"--tmpdir=" + tmpDir,
			"--socket=" + m.Socket,
			"--port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--pid-file=" + filepath.Join(base, "mariadbd.pid"),
			"--log-error=" + m.ErrorLog,
			"--local-infile=1",
			"--max-allowed-packet=256M",
		}, userArg...)
		argv = append(argv, serverArgs...)
		_ = os.Remove(m.ErrorLog) // mariadbd appends; keep only this attempt
		p, err = startDetached(argv, filepath.Join(base, "mariadbd.out"))
		if err != nil {
			return fmt.Errorf("lab: mariadb %s: start mariadbd: %w", m.Name, err)
		}
		l.addProc(p)
		m.PID = p.pid
		err = waitMariaDB(ctx, m, p)
		if err == nil {
			break
		}
		log := tail(m.ErrorLog, 4)
		if p.exited() && attempt < 5 && (strings.Contains(log, "Address already in use") || strings.Contains(log, "Bind on TCP/IP port")) {
			l.logf("lab: mariadb %s: port %d taken, retrying", m.Name, port)
			continue
		}
		return fmt.Errorf("lab: mariadb %s: %w; error log %s: %s", m.Name, err, m.ErrorLog, log)
	}

	if err := m.secure(ctx, debianSysMaint); err != nil {
		return fmt.Errorf("lab: mariadb %s: %w", m.Name, err)
	}
	l.logf("lab: mariadb %s %s ready on %s in %s", m.Name, m.Version, m.Addr, time.Since(t0).Round(time.Millisecond))
	return nil
}

// waitMariaDB polls the unix socket until the fresh server (root without a
// password) answers, the process exits, or 60s pass.
func waitMariaDB(ctx context.Context, m *MariaDB, p *proc) error {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = m.Socket
	cfg.Timeout = 2 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("mariadbd exited during startup (%v)", p.err)
		}
		if _, err := os.Stat(m.Socket); err == nil {
			db, err := openDB(cfg)
			if err == nil {
				err = db.PingContext(ctx)
				db.Close()
				if err == nil {
					return nil
				}
			}
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd not ready after 60s (last error: %v)", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func openDB(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// secure sets the random root password (only ever written to the 0600
// option file), drops the password-less bootstrap accounts, writes
// debian.cnf and optionally creates debian-sys-maint like old Debian did.
func (m *MariaDB) secure(ctx context.Context, debianSysMaint bool) error {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = m.Socket
	db, err := openDB(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection: after ALTER USER a new password-less connection
	// would be refused.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect as root: %w", err)
	}
	defer conn.Close()

	m.RootPassword = randomPassword()
	dsmPassword := randomPassword()
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.Version); err != nil {
		return fmt.Errorf("select version: %w", err)
	}
	var hosts []string
	rows, err := conn.QueryContext(ctx, "SELECT Host FROM mysql.user WHERE User='root' AND Host NOT IN ('localhost','127.0.0.1','%')")
	if err != nil {
		return fmt.Errorf("list root accounts: %w", err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return err
		}
		hosts = append(hosts, h)
	}
	rows.Close()

	pw := m.RootPassword
	stmts := []string{}
	for _, h := range hosts {
		stmts = append(stmts, fmt.Sprintf("DROP USER IF EXISTS 'root'@'%s'", strings.ReplaceAll(h, "'", "''")))
	}
	stmts = append(stmts, "DELETE FROM mysql.global_priv WHERE User=''")
	for _, h := range []string{"127.0.0.1", "%"} {
		stmts = append(stmts,
			fmt.Sprintf("CREATE OR REPLACE USER 'root'@'%s' IDENTIFIED BY '%s'", h, pw),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%s' WITH GRANT OPTION", h),
		)
	}
	if debianSysMaint {
		stmts = append(stmts,
			fmt.Sprintf("CREATE OR REPLACE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY '%s'", dsmPassword),
			"GRANT ALL PRIVILEGES ON *.* TO 'debian-sys-maint'@'localhost' WITH GRANT OPTION",
		)
	}
	// Last, so every statement above still runs on the password-less session.
	stmts = append(stmts,
		fmt.Sprintf("ALTER USER 'root'@'localhost' IDENTIFIED BY '%s'", pw),
		"FLUSH PRIVILEGES")
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			// The statement holds a password: report only its verb.
			return fmt.Errorf("setup SQL %q: %w", sqlVerb(s), err)
		}
	}

	opt := fmt.Sprintf("[client]\nuser=root\npassword=%s\nhost=127.0.0.1\nport=%d\nsocket=%s\n", pw, m.Port, m.Socket)
	if err := writeSecret(m.OptionFile, opt); err != nil {
		return err
	}
	// Debian's exact layout (written by mariadb-server's postinst before 10.4).
	dc := "# Automatically generated for Debian scripts. DO NOT TOUCH!\n"
	for _, sec := range []string{"client", "mysql_upgrade"} {
		dc += fmt.Sprintf("[%s]\nhost     = localhost\nuser     = debian-sys-maint\npassword = %s\nsocket   = %s\n", sec, dsmPassword, m.Socket)
	}
	dc += "basedir  = /usr\n"
	return writeSecret(m.DebianCnf, dc)
}

func sqlVerb(s string) string {
	f := strings.Fields(s)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}

func writeSecret(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // WriteFile keeps the mode of an existing file
}

// readOptionPassword reads password= from the [client] section of an
// option file written by secure.
func readOptionPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "password" {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no password= line in " + path)
}

// errorLines picks the lines of mariadb-install-db's chatty output that say
// what went wrong, joined on one line.
func errorLines(s string) string {
	var picked []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "[Warning]") {
			picked = append(picked, strings.TrimSpace(l))
		}
	}
	if len(picked) == 0 {
		return lastLines(s, 3)
	}
	if len(picked) > 4 {
		picked = picked[len(picked)-4:]
	}
	return strings.Join(picked, " | ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// RootDB opens a go-sql-driver connection pool to which (Source or Target)
// as root over TCP on loopback, and pings it.
func (l *Lab) RootDB(which *MariaDB) (*sql.DB, error) {
	if which == nil {
		return nil, errors.New("lab: RootDB: no such server (started with NoMariaDB?)")
	}
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Passwd = which.RootPassword
	cfg.Net = "tcp"
	cfg.Addr = which.Addr
	cfg.Timeout = 5 * time.Second
	cfg.ParseTime = true
	db, err := openDB(cfg)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", which.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("lab: connect to %s (%s) as root: %w", which.Name, which.Addr, err)
	}
	return db, nil
}

// currentUser is the login name processes run as.
func currentUser() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
