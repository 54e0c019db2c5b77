// Package secret keeps the secrets a run has seen (passwords, TSIG keys) so
// every line the engine records can be redacted before it is written.
package secret

import (
	"sort"
	"strings"
	"sync"
)

// Mask replaces a secret in redacted text.
const Mask = "[REDACTED]"

// Set is a concurrency-safe set of secret strings.
type Set struct {
	mu      sync.RWMutex
	secrets []string
	rep     *strings.Replacer
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{} }

// Add registers secrets; values shorter than 4 bytes are ignored because
// masking them would shred ordinary text and they are not secrets worth
// the name.
func (s *Set) Add(vals ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if len(v) < 4 || s.has(v) {
			continue
		}
		s.secrets = append(s.secrets, v)
	}
	// Longest first so a secret containing another is masked whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	pairs := make([]string, 0, 2*len(s.secrets))
	for _, v := range s.secrets {
		pairs = append(pairs, v, Mask)
	}
	s.rep = strings.NewReplacer(pairs...)
}

func (s *Set) has(v string) bool {
	for _, x := range s.secrets {
		if x == v {
			return true
		}
	}
	return false
}

// Redact returns text with every known secret masked.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	rep := s.rep
	s.mu.RUnlock()
	if rep == nil {
		return text
	}
	return rep.Replace(text)
}

// Values returns a copy of the known secrets (for tests that grep output).
func (s *Set) Values() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.secrets...)
}
