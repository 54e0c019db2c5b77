package mysqlx_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
)

var theLab *lab.Lab

func TestMain(m *testing.M) { os.Exit(labtest.Main(m, &theLab, lab.Options{})) }

func TestParseOptions(t *testing.T) {
	o := mysqlx.ParseOptions([]byte(`# Automatically generated for Debian scripts. DO NOT TOUCH!
[client]
host     = localhost
user     = debian-sys-maint
password = "s3cr3t pass"
socket   = /run/mysqld/mysqld.sock
[mysqld]
user = mysql
[mysql_upgrade]
password = other
`))
	if o.User != "debian-sys-maint" || o.Password != "s3cr3t pass" || o.Socket != "/run/mysqld/mysqld.sock" || o.Host != "localhost" {
		t.Fatalf("%+v", o)
	}
}

func sshTarget(t *testing.T) *hosts.SSH {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := hosts.DialSSH(ctx, hosts.SSHConfig{Name: "target", Address: labtest.SSHHost(theLab),
		KeyFile: theLab.SSH.ClientKeyFile, KnownHosts: theLab.SSH.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// The target server is reached through the SSH connection (a go-sql-driver
// dialer over direct-tcpip), with the option file read on the target host;
// the source through its unix socket on the local host.
func TestOpenThroughTunnelAndSocket(t *testing.T) {
	ctx := context.Background()
	sec := secret.NewSet()
	h := sshTarget(t)
	db, err := mysqlx.Open(ctx, h, mysqlx.Endpoint{Name: "target", Address: theLab.Target.Addr, OptionsFile: theLab.Target.OptionFile}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var port int
	var tz string
	if err := db.QueryRowContext(ctx, "SELECT @@port, @@session.time_zone").Scan(&port, &tz); err != nil {
		t.Fatal(err)
	}
	if port != theLab.Target.Port || tz != "+00:00" {
		t.Fatalf("port %d tz %s", port, tz)
	}
	if len(sec.Values()) != 1 || !strings.Contains(theLabOptionFile(t), sec.Values()[0]) {
		t.Fatal("the password read from the option file was not registered as a secret")
	}
	src, err := mysqlx.Open(ctx, hosts.Local("source"), mysqlx.Endpoint{Name: "source", Socket: theLab.Source.Socket, OptionsFile: theLab.Source.OptionFile}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil || port != theLab.Source.Port {
		t.Fatalf("source port %d err %v", port, err)
	}
}

// A wrong password is one clear line that names the endpoint, and the
// password itself is redacted from it.
func TestWrongPassword(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "my.cnf")
	os.WriteFile(bad, []byte("[client]\nuser=root\npassword=definitely-wrong-pw\n"), 0o600)
	sec := secret.NewSet()
	_, err := mysqlx.Open(context.Background(), sshTarget(t), mysqlx.Endpoint{Name: "target", Address: theLab.Target.Addr, OptionsFile: bad}, sec)
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	msg := sec.Redact(err.Error())
	if !strings.Contains(msg, "mysql target") || !strings.Contains(msg, "1045") || strings.Contains(msg, "\n") || strings.Contains(msg, "definitely-wrong-pw") {
		t.Fatalf("error = %q", msg)
	}
	// A missing option file says which file on which host.
	_, err = mysqlx.Open(context.Background(), hosts.Local("source"), mysqlx.Endpoint{Name: "source", Socket: theLab.Source.Socket, OptionsFile: "/nonexistent/my.cnf"}, sec)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/my.cnf") {
		t.Fatalf("missing option file: %v", err)
	}
}

func theLabOptionFile(t *testing.T) string {
	b, err := os.ReadFile(theLab.Target.OptionFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
