// Package mysqlcompat knows how MySQL and MariaDB versions differ: version
// and flavour parsing, reserved words, removed sql_mode values and system
// variables, authentication plugins, engines, collations and account
// syntax per version. It compares what a source server holds (an
// Inventory) with what a target accepts (a Profile, built from a live
// server or from a named version such as "mysql-8.0") and lists the
// concrete incompatibilities found in that data.
package mysqlcompat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Flavor is the server family.
type Flavor string

// Server families. Percona Server and other MySQL builds count as MySQL.
const (
	MySQL   Flavor = "mysql"
	MariaDB Flavor = "mariadb"
)

// Name is the family as people write it.
func (f Flavor) Name() string {
	if f == MariaDB {
		return "MariaDB"
	}
	return "MySQL"
}

// Version is a server's version as VERSION() and @@version_comment report it.
type Version struct {
	Flavor              Flavor
	Major, Minor, Patch int
	// Raw is VERSION(), e.g. "10.11.6-MariaDB-0+deb12u1"; Comment is
	// @@version_comment, e.g. "Debian 12" or "Percona Server (GPL), Release 29".
	Raw     string
	Comment string
}

var versionRe = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads VERSION() and @@version_comment. The "5.5.5-" prefix
// MariaDB 10+ puts in its handshake is skipped.
func ParseVersion(version, comment string) (Version, error) {
	raw := strings.TrimSpace(version)
	s := raw
	if rest, ok := strings.CutPrefix(s, "5.5.5-"); ok && strings.Contains(strings.ToLower(rest), "mariadb") {
		s = rest
	}
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("cannot read server version %q", version)
	}
	v := Version{Raw: raw, Comment: strings.TrimSpace(comment), Flavor: MySQL}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	if strings.Contains(strings.ToLower(raw+" "+comment), "mariadb") {
		v.Flavor = MariaDB
	}
	return v, nil
}

// MustVersion builds a version from its parts (tables and tests).
func MustVersion(f Flavor, major, minor, patch int) Version {
	return Version{Flavor: f, Major: major, Minor: minor, Patch: patch,
		Raw: fmt.Sprintf("%d.%d.%d", major, minor, patch)}
}

// String is "MariaDB 10.11.6 (Debian 12)".
func (v Version) String() string {
	s := fmt.Sprintf("%s %d.%d.%d", v.Flavor.Name(), v.Major, v.Minor, v.Patch)
	if v.Patch == 999 {
		s = fmt.Sprintf("%s %d.%d.x", v.Flavor.Name(), v.Major, v.Minor)
	}
	if v.Comment != "" && !strings.EqualFold(v.Comment, "mysql community server - gpl") &&
		!strings.EqualFold(v.Comment, "mariadb.org binary distribution") && !strings.EqualFold(v.Comment, "source distribution") {
		s += " (" + v.Comment + ")"
	}
	return s
}

// Series is the release series people call the major version: "10.11",
// "8.0", "5.7". MariaDB 10.3 and 10.11 differ as much as MySQL 5.7 and 8.0.
func (v Version) Series() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Percona reports whether the build is Percona Server (MySQL flavour).
func (v Version) Percona() bool { return strings.Contains(strings.ToLower(v.Comment), "percona") }

// Cmp compares version numbers (the flavour is ignored).
func (v Version) Cmp(o Version) int {
	for _, d := range [][2]int{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// AtLeast reports whether v >= major.minor.patch.
func (v Version) AtLeast(major, minor, patch int) bool {
	return v.Cmp(Version{Major: major, Minor: minor, Patch: patch}) >= 0
}

// Is reports whether v is of flavour f and at least major.minor.patch.
func (v Version) Is(f Flavor, major, minor, patch int) bool {
	return v.Flavor == f && v.AtLeast(major, minor, patch)
}

// SameSeries reports whether both are the same flavour and series.
func (v Version) SameSeries(o Version) bool {
	return v.Flavor == o.Flavor && v.Major == o.Major && v.Minor == o.Minor
}

// HasAlterUser reports whether ALTER USER ... IDENTIFIED BY sets passwords
// (MySQL 5.7.6, MariaDB 10.2); before that GRANT ... IDENTIFIED BY did.
func (v Version) HasAlterUser() bool {
	return v.Is(MySQL, 5, 7, 6) || v.Is(MariaDB, 10, 2, 0)
}

// HasGrantIdentifiedBy reports whether GRANT ... IDENTIFIED BY is still
// accepted (removed in MySQL 8.0; MariaDB keeps it).
func (v Version) HasGrantIdentifiedBy() bool {
	return v.Flavor == MariaDB || !v.AtLeast(8, 0, 0)
}

// HasShowCreateUser reports whether SHOW CREATE USER exists (MySQL 5.7.6,
// MariaDB 10.2); older servers are read from mysql.user.
func (v Version) HasShowCreateUser() bool { return v.HasAlterUser() }

// HasSuperReadOnly reports whether @@super_read_only exists (MySQL 5.7.8;
// MariaDB has none).
func (v Version) HasSuperReadOnly() bool { return v.Is(MySQL, 5, 7, 8) }

// HasGlobalPriv reports whether accounts live in mysql.global_priv
// (MariaDB 10.4+), with mysql.user a view over it.
func (v Version) HasGlobalPriv() bool { return v.Is(MariaDB, 10, 4, 0) }

// ParseProfileName reads a profile name such as "mysql-8.0",
// "mariadb-10.11" or "mysql-8.0.36". A missing patch level means the
// newest release of that series.
func ParseProfileName(name string) (Version, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	var f Flavor
	switch {
	case strings.HasPrefix(n, "mysql-"):
		f = MySQL
	case strings.HasPrefix(n, "mariadb-"):
		f = MariaDB
	default:
		return Version{}, fmt.Errorf("profile %q: want mysql-X.Y or mariadb-X.Y (e.g. mysql-8.0, mariadb-10.11)", name)
	}
	num := n[strings.IndexByte(n, '-')+1:]
	m := versionRe.FindStringSubmatch(num)
	if m == nil || m[0] != num {
		return Version{}, fmt.Errorf("profile %q: bad version %q", name, num)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch := 999
	if m[3] != "" {
		patch, _ = strconv.Atoi(m[3])
	}
	v := MustVersion(f, major, minor, patch)
	if m[3] == "" {
		v.Raw = fmt.Sprintf("%d.%d", major, minor)
	}
	return v, nil
}
