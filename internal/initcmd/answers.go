package initcmd

import (
	"net"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/decant-sh/decant/internal/discover"
)

// Answers are what goes into the runbook: the target, and the discovered
// parts the operator kept. Defaults takes everything discovered.
type Answers struct {
	Name string
	// Target is hosts.target.address; Key, KnownHosts and TargetRoot its
	// optional key:, known_hosts: and root:.
	Target, Key, KnownHosts, TargetRoot string
	// SourceRoot is hosts.source.root: the discovery root when it is not
	// "/" (a lab or a mounted copy), so the runbook reads the same tree.
	SourceRoot string

	// MySQL is how discovery logged in on the source; nil leaves the
	// template's mysql.source.
	MySQL *discover.MySQL
	// TargetMySQLAddress and TargetMySQLOptions override mysql.target.
	TargetMySQLAddress, TargetMySQLOptions string
	Databases                              []string

	// SiteDirs are the web directories to copy (each docroot's site).
	SiteDirs []string
	EnvFiles []string
	// CronUsers are the users whose crontabs move; CronFiles the system
	// cron files (/etc/crontab, /etc/cron.d/*).
	CronUsers, CronFiles []string
	// Services are the kept entries of Services.AllServices(); Ignored the
	// ones the operator unticked (services.parity ignores them).
	Services, Ignored []string

	// Domains are canonical names (trailing dot); Zone their zone.
	Domains []string
	Zone    string
	TSIGKey string
	// OldAddress are the names' current addresses; NewAddress the new
	// host's public addresses.
	OldAddress, NewAddress []string
	// URLs are the key pages http.parity compares.
	URLs []string
	// Authoritative overrides the name servers decant asks (dns.
	// authoritative); Resolvers replace the resolvers it watches (labs,
	// split horizon).
	Authoritative, Resolvers []string
}

// webBases are directories whose children are sites: the site of
// /var/www/shop/public is /var/www/shop (the app around its public dir).
var webBases = []string{"/var/www", "/srv/www", "/srv/http", "/srv", "/usr/share/nginx", "/home"}

// SiteDir is the directory to copy for a docroot.
func SiteDir(docroot string) string {
	docroot = path.Clean(docroot)
	for _, b := range webBases {
		rest, ok := strings.CutPrefix(docroot, b+"/")
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(rest, "/")
		if b == "/home" {
			// /home/alice/public_html: the user's web dir, not their home.
			if parts := strings.SplitN(rest, "/", 3); len(parts) >= 2 {
				return path.Join(b, parts[0], parts[1])
			}
			return docroot
		}
		return path.Join(b, first)
	}
	return docroot
}

// Defaults takes everything discovery found.
func Defaults(rep *discover.Report) Answers {
	a := Answers{MySQL: rep.MySQL}
	if rep.Root != "" && rep.Root != "/" {
		a.SourceRoot = rep.Root
	}
	if rep.MySQL != nil {
		for _, d := range rep.MySQL.Databases {
			a.Databases = append(a.Databases, d.Name)
		}
	}
	for _, d := range rep.DocRoots() {
		a.SiteDirs = append(a.SiteDirs, SiteDir(d))
	}
	a.SiteDirs = uniq(a.SiteDirs)
	for _, e := range rep.EnvFiles {
		a.EnvFiles = append(a.EnvFiles, e.Path)
	}
	for _, c := range rep.Crontabs {
		if c.User != "" {
			a.CronUsers = append(a.CronUsers, c.User)
		} else {
			a.CronFiles = append(a.CronFiles, c.Path)
		}
	}
	a.Services = rep.Services.AllServices()
	for _, d := range rep.Domains {
		a.Domains = append(a.Domains, d.Name)
	}
	a.Zone = MainZone(rep.Domains, a.Domains)
	a.OldAddress = OldAddresses(rep.Domains, a.Zone, a.Domains)
	a.URLs = KeyURLs(rep.VHosts)
	if len(a.Domains) > 0 {
		a.Name = strings.TrimSuffix(a.Domains[0], ".") + " to the new server"
	}
	return a
}

// MainZone is the zone most selected names are in: the one discovery
// found, else (DNS not asked) the shortest selected name.
func MainZone(doms []discover.Domain, selected []string) string {
	sel := set(selected)
	count := map[string]int{}
	for _, d := range doms {
		if sel[d.Name] && d.Zone != "" {
			count[d.Zone]++
		}
	}
	best := ""
	for z, n := range count {
		if n > count[best] || n == count[best] && z < best {
			best = z
		}
	}
	if best != "" {
		return best
	}
	for _, n := range selected {
		if best == "" || strings.Count(n, ".") < strings.Count(best, ".") {
			best = n
		}
	}
	return best
}

// InZone keeps the names inside zone.
func InZone(names []string, zone string) []string {
	var out []string
	for _, n := range names {
		if zone != "" && (n == zone || strings.HasSuffix(n, "."+zone)) {
			out = append(out, n)
		}
	}
	return out
}

// OldAddresses are the current addresses of the selected names in zone.
func OldAddresses(doms []discover.Domain, zone string, selected []string) []string {
	sel := set(InZone(selected, zone))
	var out []string
	for _, d := range doms {
		if sel[d.Name] {
			out = append(out, d.Addresses...)
		}
	}
	return uniq(out)
}

// KeyURLs are one URL per named virtual host with a docroot: https when
// the host serves TLS for that name.
func KeyURLs(vhosts []discover.VHost) []string {
	tls := map[string]bool{}
	for _, v := range vhosts {
		if v.TLS && len(v.Names) > 0 {
			tls[v.Names[0]] = true
		}
	}
	var out []string
	for _, v := range vhosts {
		if v.DocRoot == "" || len(v.Names) == 0 || len(discover.DomainNames([]discover.VHost{{Names: v.Names[:1]}})) == 0 {
			continue
		}
		scheme := "http"
		if tls[v.Names[0]] {
			scheme = "https"
		}
		out = append(out, (&url.URL{Scheme: scheme, Host: v.Names[0], Path: "/"}).String())
	}
	return uniq(out)
}

// TargetIP returns the target's address when it is an IP literal (the
// new host's public address for DNS), else "".
func TargetIP(target string) string {
	host := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if _, h, ok := strings.Cut(target, "@"); ok {
		host = h
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return ip.String()
	}
	return ""
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// uniq keeps the first of each value, in order.
func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// sortedCopy returns a sorted copy.
func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
