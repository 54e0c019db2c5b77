// Package envfile reads dotenv-style files (KEY=VALUE, as Laravel, Symfony,
// Node and docker compose use them) and describes values without showing
// them: a keyed short hash, stable for one runbook, stands in for the value
// in every finding, plan and log line.
package envfile

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Entry is one KEY=VALUE assignment.
type Entry struct {
	Key   string
	Value string
	Line  int
}

// File is a parsed env file; when a key is assigned twice the last wins,
// as in every dotenv loader.
type File struct {
	Entries []Entry
	byKey   map[string]int
}

// Get returns the value of key and whether it is set.
func (f *File) Get(key string) (string, bool) {
	if f == nil {
		return "", false
	}
	i, ok := f.byKey[key]
	if !ok {
		return "", false
	}
	return f.Entries[i].Value, true
}

// Keys returns the keys in sorted order.
func (f *File) Keys() []string {
	if f == nil {
		return nil
	}
	out := make([]string, 0, len(f.byKey))
	for k := range f.byKey {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var keyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// Parse reads dotenv syntax: `KEY=VALUE`, an optional `export ` prefix,
// '#' comments (after whitespace when the value is unquoted), single quotes
// (literal), double quotes (with \n, \t, \", \\ escapes, may span lines) and
// backticks. Lines that are not assignments are errors with their number,
// never with their text (it may be a secret).
func Parse(data []byte) (*File, error) {
	f := &File{byKey: map[string]int{}}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		no := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, rest, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !keyRe.MatchString(key) {
			return nil, fmt.Errorf("line %d: not a KEY=VALUE assignment", no)
		}
		rest = strings.TrimLeft(rest, " \t")
		var val string
		switch {
		case rest == "":
		case rest[0] == '\'' || rest[0] == '`':
			q := rest[0]
			body := rest[1:]
			for {
				if j := strings.IndexByte(body, q); j >= 0 {
					val += body[:j]
					break
				}
				if i+1 >= len(lines) {
					return nil, fmt.Errorf("line %d: unterminated quote", no)
				}
				val += body + "\n"
				i++
				body = lines[i]
			}
		case rest[0] == '"':
			body := rest[1:]
			var b strings.Builder
			for done := false; !done; {
				for j := 0; j < len(body); j++ {
					c := body[j]
					if c == '\\' && j+1 < len(body) {
						j++
						switch body[j] {
						case 'n':
							b.WriteByte('\n')
						case 't':
							b.WriteByte('\t')
						case 'r':
							b.WriteByte('\r')
						default:
							b.WriteByte(body[j])
						}
						continue
					}
					if c == '"' {
						done = true
						break
					}
					b.WriteByte(c)
				}
				if done {
					break
				}
				if i+1 >= len(lines) {
					return nil, fmt.Errorf("line %d: unterminated quote", no)
				}
				b.WriteByte('\n')
				i++
				body = lines[i]
			}
			val = b.String()
		default:
			val = rest
			if j := strings.Index(val, " #"); j >= 0 {
				val = val[:j]
			}
			if j := strings.Index(val, "\t#"); j >= 0 {
				val = val[:j]
			}
			val = strings.TrimSpace(val)
		}
		if old, dup := f.byKey[key]; dup {
			f.Entries[old].Value, f.Entries[old].Line = val, no
			continue
		}
		f.byKey[key] = len(f.Entries)
		f.Entries = append(f.Entries, Entry{Key: key, Value: val, Line: no})
	}
	return f, nil
}

// ParseEnv0 reads `env -0` output (NUL-separated KEY=VALUE) into a map.
func ParseEnv0(data []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// Hasher turns values into short keyed hashes. The key lives in the
// runbook's state directory (0600), so the same value hashes the same way in
// every run of one runbook (findings stay comparable across days) while a
// transcript alone does not let anyone brute-force short values.
type Hasher struct{ key []byte }

// HashKeyFile is the key's file name inside the state directory.
const HashKeyFile = "envhash.key"

// NewHasher loads or creates the key in stateDir; with stateDir "" the key
// is random for this process only.
func NewHasher(stateDir string) (*Hasher, error) {
	key := make([]byte, 32)
	if stateDir == "" {
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return &Hasher{key: key}, nil
	}
	path := filepath.Join(stateDir, HashKeyFile)
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 64 {
		if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(k) == 32 {
			return &Hasher{key: k}, nil
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read hash key: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("hash key: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(stateDir, HashKeyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("hash key: %w", err)
	}
	_, werr := tmp.WriteString(hex.EncodeToString(key) + "\n")
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("hash key: %w", errors.Join(werr, cerr))
	}
	// Link rather than rename: two processes racing both end up with the
	// key that got there first.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("hash key: %w", err)
	}
	os.Remove(tmp.Name())
	return NewHasher(stateDir)
}

// Sum describes value: "h:" and 10 hex digits of HMAC-SHA256, or "(empty)".
func (h *Hasher) Sum(value string) string {
	if value == "" {
		return "(empty)"
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(value))
	return "h:" + hex.EncodeToString(m.Sum(nil))[:10]
}

// SumFile describes a whole file's content the same way.
func (h *Hasher) SumFile(data []byte) string {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return "h:" + hex.EncodeToString(m.Sum(nil))[:10]
}

var secretKeyRe = regexp.MustCompile(`(?i)(KEY|SECRET|PASS|PWD|TOKEN|AUTH|SALT|PRIVATE|CREDENTIAL|DSN|CERT|SIGN)`)

// Secretish lists the values of f worth adding to a redaction set: every
// value of a key that sounds secret, and every long value (URLs with
// credentials, random strings). Short everyday values ("production",
// "3306") are left out so redaction does not shred ordinary log text.
func Secretish(f *File) []string {
	var out []string
	for _, e := range f.Entries {
		if secretKeyRe.MatchString(e.Key) || len(e.Value) >= 16 || strings.Contains(e.Value, "@") {
			out = append(out, e.Value)
			// Dotenv files are copied verbatim, so a value may show up in
			// logs with its quoting too.
			out = append(out, `"`+e.Value+`"`)
		}
	}
	return out
}

// Diff compares src against dst key by key.
type Diff struct {
	Missing []string // in src, not in dst
	Changed []string // in both with different values
	Extra   []string // in dst only
	Same    []string
}

// Compare returns the key-level differences between two files.
func Compare(src, dst *File) Diff {
	var d Diff
	for _, k := range src.Keys() {
		sv, _ := src.Get(k)
		dv, ok := dst.Get(k)
		switch {
		case !ok:
			d.Missing = append(d.Missing, k)
		case sv != dv:
			d.Changed = append(d.Changed, k)
		default:
			d.Same = append(d.Same, k)
		}
	}
	for _, k := range dst.Keys() {
		if _, ok := src.Get(k); !ok {
			d.Extra = append(d.Extra, k)
		}
	}
	return d
}
