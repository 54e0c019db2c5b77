package hosts

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is returned by DialSSH when the server's host key is not
// trusted: unknown (the UI may show the fingerprint and offer
// AcceptHostKey) or different from known_hosts (a hard stop).
type HostKeyError struct {
	Host        string        // known_hosts form: "host" or "[host]:port"
	Fingerprint string        // SHA256:... of the key the server presented
	KeyType     string        // e.g. "ssh-ed25519"
	Key         ssh.PublicKey // the presented key, for AcceptHostKey
	Unknown     bool          // the host is not in known_hosts at all
	Want        []string      // on mismatch: fingerprints known_hosts has
	WantLines   []string      // on mismatch: "FILE:LINE" of those entries
	KnownHosts  string        // the known_hosts file consulted
	Revoked     bool          // the key is marked @revoked
}

// Error is one line telling the operator what to check and what to run.
func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key for %s (%s %s) is marked @revoked in %s; refusing to connect", e.Host, e.KeyType, e.Fingerprint, e.KnownHosts)
	case e.Unknown:
		return fmt.Sprintf("host key for %s is not in %s: %s %s; verify it and accept it", e.Host, e.KnownHosts, e.KeyType, e.Fingerprint)
	default:
		where := e.KnownHosts
		if len(e.WantLines) > 0 {
			where = strings.Join(e.WantLines, ", ")
		}
		return fmt.Sprintf("host key for %s does not match known_hosts (%s): got %s %s, known %s — possible man-in-the-middle; if the server was reinstalled, remove the old line with: ssh-keygen -R %s -f %s",
			e.Host, where, e.KeyType, e.Fingerprint, strings.Join(e.Want, ", "), Quote(e.Host), Quote(e.KnownHosts))
	}
}

// AcceptHostKey appends a plain known_hosts line for hostport ("host:port"
// or "host") and key, creating the file 0600 (and its directory 0700) if
// needed. Reading accepts both hashed and plain lines.
func AcceptHostKey(knownHostsFile, hostport string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(knownHostsFile), 0o700); err != nil {
		return fmt.Errorf("accept host key: %w", err)
	}
	f, err := os.OpenFile(knownHostsFile, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("accept host key: %w", err)
	}
	defer f.Close()
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	// Do not glue our line onto a last line lacking its newline.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("accept host key: %w", err)
	}
	return f.Close()
}

// hostKeyChecker verifies host keys against one known_hosts file and keeps
// the typed error, since the ssh handshake error only carries its text.
type hostKeyChecker struct {
	file string
	cb   ssh.HostKeyCallback
	err  *HostKeyError
	key  ssh.PublicKey
}

func newHostKeyChecker(file string) (*hostKeyChecker, error) {
	files := []string{file}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		files = nil // every host is unknown
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return &hostKeyChecker{file: file, cb: cb}, nil
}

func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.cb(hostname, remote, key)
	if err == nil {
		h.key = key
		return nil
	}
	e := &HostKeyError{
		Host:        knownhosts.Normalize(hostname),
		Fingerprint: ssh.FingerprintSHA256(key),
		KeyType:     key.Type(),
		Key:         key,
		KnownHosts:  h.file,
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke):
		e.Unknown = len(ke.Want) == 0
		for _, w := range ke.Want {
			e.Want = append(e.Want, w.Key.Type()+" "+ssh.FingerprintSHA256(w.Key))
			e.WantLines = append(e.WantLines, fmt.Sprintf("%s:%d", w.Filename, w.Line))
		}
	case errors.As(err, &re):
		e.Revoked = true
	default:
		return err
	}
	h.err = e
	return e
}

// algorithms lists host key algorithms for the key types known_hosts has
// for hostport, so the server is asked for a key we can actually verify
// (as ssh(1) does) instead of one we would report as a "mismatch".
func (h *hostKeyChecker) algorithms(hostport string) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	// A throwaway key never matches, so the error lists every known key.
	err = h.cb(hostport, &net.TCPAddr{IP: net.IPv4zero}, probe)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}
