package dnsq

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RRset is one name's records of one type in a journal-friendly form: the
// rdata in presentation format, so receipts stay readable and replayable.
type RRset struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	TTL    uint32   `json:"ttl"`
	Values []string `json:"values,omitempty"` // sorted; empty = the RRset does not exist
}

// NewRRset builds an RRset from records (all of name/qtype; others ignored).
func NewRRset(name string, qtype uint16, rrs []dns.RR) RRset {
	name = dns.CanonicalName(name)
	s := RRset{Name: name, Type: dns.TypeToString[qtype]}
	var own []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, name) {
			own = append(own, rr)
		}
	}
	s.TTL = minTTL(own)
	s.Values = rdataList(own)
	return s
}

// Qtype is the RRset's type as a number.
func (s RRset) Qtype() uint16 { return dns.StringToType[s.Type] }

// Empty reports whether the RRset does not exist.
func (s RRset) Empty() bool { return len(s.Values) == 0 }

// Key identifies the RRset: owner and type.
func (s RRset) Key() string { return dns.CanonicalName(s.Name) + " " + s.Type }

// SameValues compares rdata only, which is all an RFC 2136 prerequisite can see.
func (s RRset) SameValues(o RRset) bool {
	return s.Key() == o.Key() && slices.Equal(s.Values, o.Values)
}

// Equal compares rdata and TTL.
func (s RRset) Equal(o RRset) bool {
	return s.SameValues(o) && (s.Empty() || s.TTL == o.TTL)
}

// RRs turns the RRset back into records of class IN.
func (s RRset) RRs() ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(s.Values))
	for _, v := range s.Values {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", dns.CanonicalName(s.Name), s.TTL, s.Type, v))
		if err != nil {
			return nil, fmt.Errorf("record %s %s %q: %w", s.Name, s.Type, v, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// Lines renders the RRset in zone-file syntax, one record a line.
func (s RRset) Lines() []string {
	if s.Empty() {
		return []string{fmt.Sprintf("; %s %s (none)", s.Name, s.Type)}
	}
	out := make([]string, 0, len(s.Values))
	for _, v := range s.Values {
		out = append(out, fmt.Sprintf("%s\t%d\tIN\t%s\t%s", s.Name, s.TTL, s.Type, v))
	}
	return out
}

// Short is a one-line summary: "A 192.0.2.10 (TTL 3600)".
func (s RRset) Short() string {
	if s.Empty() {
		return s.Type + " (none)"
	}
	return fmt.Sprintf("%s %s (TTL %d)", s.Type, strings.Join(s.Values, ", "), s.TTL)
}

// Receipt is what an RFC 2136 action journals: every RRset it changed, as it
// was before and as decant set it. Undo restores Previous only while the zone
// still holds New.
type Receipt struct {
	Zone     string    `json:"zone"`
	Primary  string    `json:"primary"`
	Time     time.Time `json:"time"`
	Previous []RRset   `json:"previous"`
	New      []RRset   `json:"new"`
}

// MaxPreviousTTL is the longest TTL the zone served before the change: how
// long a resolver may keep the old answer after it.
func (r Receipt) MaxPreviousTTL() uint32 {
	var m uint32
	for _, s := range r.Previous {
		if !s.Empty() && s.TTL > m {
			m = s.TTL
		}
	}
	return m
}

func minTTL(rrs []dns.RR) uint32 {
	var m uint32
	for i, rr := range rrs {
		if t := rr.Header().Ttl; i == 0 || t < m {
			m = t
		}
	}
	return m
}

// rdataList returns each record's rdata (its text after the header), sorted
// and de-duplicated so RRsets compare as sets.
func rdataList(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, Rdata(rr))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Rdata is a record's data in presentation format (no owner, TTL, class, type).
func Rdata(rr dns.RR) string {
	full := rr.String()
	hdr := rr.Header().String()
	return strings.TrimSpace(strings.TrimPrefix(full, hdr))
}
