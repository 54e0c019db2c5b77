package dnsq

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/miekg/dns"
)

// Key is a TSIG key. Secret is base64, as in BIND key files; it must never
// reach a log line, so String hides it.
type Key struct {
	Name      string // canonical, e.g. "decant-key."
	Algorithm string // canonical, e.g. dns.HmacSHA256
	Secret    string
}

// String describes the key without its secret.
func (k *Key) String() string {
	if k == nil {
		return "<no key>"
	}
	return fmt.Sprintf("%s (%s)", strings.TrimSuffix(k.Name, "."), strings.TrimSuffix(k.Algorithm, "."))
}

// algorithms maps the names people write to the ones miekg/dns signs with.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// Algorithm returns the canonical TSIG algorithm for a name such as
// "hmac-sha256" or "HMAC-SHA512.".
func Algorithm(name string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if a, ok := algorithms[n]; ok {
		return a, nil
	}
	if strings.HasPrefix(n, "hmac-md5") {
		return "", fmt.Errorf("TSIG algorithm %s is no longer supported; use hmac-sha256", name)
	}
	return "", fmt.Errorf("unknown TSIG algorithm %q (want hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512)", name)
}

// LoadKey reads a TSIG key file, refusing one that group or others can read:
// whoever reads the key can rewrite the zone.
func LoadKey(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("TSIG key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("TSIG key file %s is readable by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TSIG key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("TSIG key file %s: %w", path, err)
	}
	return k, nil
}

var (
	bindKeyRe  = regexp.MustCompile(`(?s)key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;?`)
	bindAlgRe  = regexp.MustCompile(`algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;`)
	bindSecRe  = regexp.MustCompile(`secret\s+"([^"]+)"\s*;`)
	commentsRe = regexp.MustCompile(`(?m)^\s*(//|#).*$`) // whole-line only: base64 may hold "//"
)

// ParseKey reads the first key of BIND key-file syntax
// (key "name" { algorithm hmac-sha256; secret "..."; };), or a single line
// "name algorithm secret", or nsupdate's "algorithm:name:secret".
func ParseKey(text string) (*Key, error) {
	clean := commentsRe.ReplaceAllString(text, "")
	var name, alg, secret string
	if m := bindKeyRe.FindStringSubmatch(clean); m != nil {
		name = m[1]
		if a := bindAlgRe.FindStringSubmatch(m[2]); a != nil {
			alg = a[1]
		}
		if s := bindSecRe.FindStringSubmatch(m[2]); s != nil {
			secret = s[1]
		}
		if alg == "" || secret == "" {
			return nil, fmt.Errorf("key %q needs both an algorithm and a secret", name)
		}
	} else {
		line := strings.TrimSpace(clean)
		switch f := strings.Fields(line); {
		case len(f) == 3:
			name, alg, secret = f[0], f[1], f[2]
		case len(f) == 1 && strings.Count(line, ":") == 2:
			p := strings.SplitN(line, ":", 3)
			alg, name, secret = p[0], p[1], p[2]
		default:
			return nil, fmt.Errorf(`no key found; want BIND syntax (key "name" { algorithm hmac-sha256; secret "..."; };) or "name algorithm secret"`)
		}
	}
	a, err := Algorithm(alg)
	if err != nil {
		return nil, err
	}
	if _, err := base64.StdEncoding.DecodeString(secret); err != nil {
		return nil, fmt.Errorf("key %q: the secret is not valid base64", name)
	}
	return &Key{Name: dns.CanonicalName(name), Algorithm: a, Secret: secret}, nil
}

// BIND renders the key in BIND key-file syntax.
func (k *Key) BIND() string {
	return fmt.Sprintf("key \"%s\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n",
		strings.TrimSuffix(k.Name, "."), strings.TrimSuffix(k.Algorithm, "."), k.Secret)
}

// WriteKeyFile writes k to path in BIND syntax with mode 0600.
func WriteKeyFile(path string, k *Key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(k.BIND()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
