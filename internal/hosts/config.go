package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// endpoint is a fully resolved SSH destination.
type endpoint struct {
	user, host string
	port       int
	keyFiles   []string // candidate identity files, in order
	explicit   bool     // keyFiles came from SSHConfig.KeyFile: must work
	knownHosts string
}

// parseAddress splits "ssh://user@host:port", "user@host:port", "host",
// "[v6]:port" or a bare IPv6 address. Missing parts are zero.
func parseAddress(a string) (userName, host string, port int, err error) {
	s := strings.TrimPrefix(strings.TrimSpace(a), "ssh://")
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return "", "", 0, errors.New("empty address")
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		userName, s = s[:i], s[i+1:]
	}
	portStr := ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", 0, fmt.Errorf("address %q: missing ]", a)
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", 0, fmt.Errorf("address %q: junk after ]", a)
			}
			portStr = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		host, portStr, _ = strings.Cut(s, ":")
	default: // a name, IPv4 address or bare IPv6 address
		host = s
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("address %q: no host", a)
	}
	if portStr != "" {
		port, err = strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("address %q: bad port %q", a, portStr)
		}
	}
	return userName, host, port, nil
}

// resolve applies ~/.ssh/config (HostName, User, Port, IdentityFile,
// UserKnownHostsFile) the way ssh(1) does: values given in the address or
// in SSHConfig win, the first matching config value wins otherwise.
func resolve(c SSHConfig) (endpoint, error) {
	var ep endpoint
	u, alias, port, err := parseAddress(c.Address)
	if err != nil {
		return ep, err
	}
	home, _ := os.UserHomeDir()
	localUser := ""
	if cu, err := user.Current(); err == nil {
		localUser = cu.Username
	}

	cfgPath := c.SSHConfigFile
	if cfgPath == "" && home != "" {
		cfgPath = filepath.Join(home, ".ssh", "config")
	}
	var cfg *ssh_config.Config
	if cfgPath != "" {
		b, err := os.ReadFile(cfgPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return ep, fmt.Errorf("ssh config: %w", err)
		default:
			if cfg, err = ssh_config.DecodeBytes(b); err != nil {
				return ep, fmt.Errorf("ssh config %s: %w", cfgPath, err)
			}
		}
	}
	get := func(key string) string {
		if cfg == nil {
			return ""
		}
		v, _ := cfg.Get(alias, key)
		return strings.TrimSpace(v)
	}
	getAll := func(key string) []string {
		if cfg == nil {
			return nil
		}
		v, _ := cfg.GetAll(alias, key)
		return v
	}

	ep.host = alias
	if hn := get("HostName"); hn != "" {
		ep.host = strings.ReplaceAll(hn, "%h", alias)
	}
	ep.user = u
	if ep.user == "" {
		ep.user = get("User")
	}
	if ep.user == "" {
		ep.user = localUser
	}
	ep.port = port
	if ep.port == 0 {
		if p := get("Port"); p != "" {
			if ep.port, err = strconv.Atoi(p); err != nil {
				return ep, fmt.Errorf("ssh config %s: Host %s: bad Port %q", cfgPath, alias, p)
			}
		}
	}
	if ep.port == 0 {
		ep.port = 22
	}
	expand := func(s string) string {
		s = strings.Trim(s, `"`)
		if s == "~" || strings.HasPrefix(s, "~/") {
			s = home + s[1:]
		}
		r := strings.NewReplacer("%%", "%", "%d", home, "%u", localUser, "%h", ep.host,
			"%p", strconv.Itoa(ep.port), "%r", ep.user, "%n", alias)
		return r.Replace(s)
	}

	if c.KeyFile != "" {
		ep.keyFiles = []string{expand(c.KeyFile)}
		ep.explicit = true
	} else {
		for _, f := range getAll("IdentityFile") {
			ep.keyFiles = append(ep.keyFiles, expand(f))
		}
	}
	ep.knownHosts = c.KnownHosts
	if ep.knownHosts == "" {
		if f := strings.Fields(get("UserKnownHostsFile")); len(f) > 0 {
			ep.knownHosts = expand(f[0])
		}
	}
	if ep.knownHosts == "" {
		ep.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	} else {
		ep.knownHosts = expand(ep.knownHosts)
	}
	return ep, nil
}

// defaultKeyFiles are tried when neither a key file, an IdentityFile nor
// an agent is available, like ssh(1) does.
func defaultKeyFiles() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	return []string{
		filepath.Join(home, ".ssh", "id_ed25519"),
		filepath.Join(home, ".ssh", "id_ecdsa"),
		filepath.Join(home, ".ssh", "id_rsa"),
	}
}

func (ep endpoint) hostport() string {
	return net.JoinHostPort(ep.host, strconv.Itoa(ep.port))
}
