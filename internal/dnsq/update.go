package dnsq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Change replaces one RRset: From is what decant last saw (sent as the
// prerequisite, so a concurrent edit is refused rather than clobbered), To is
// what it becomes. An empty From means "must not exist"; an empty To deletes.
type Change struct {
	From RRset `json:"from"`
	To   RRset `json:"to"`
}

// BuildUpdate makes the RFC 2136 message for changes, unsigned.
func BuildUpdate(zone string, changes []Change) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetUpdate(dns.CanonicalName(zone))
	for _, ch := range changes {
		if ch.From.Key() != ch.To.Key() {
			return nil, fmt.Errorf("change %s -> %s mixes two RRsets", ch.From.Key(), ch.To.Key())
		}
		from, err := ch.From.RRs()
		if err != nil {
			return nil, err
		}
		if len(from) == 0 {
			m.RRsetNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.CanonicalName(ch.From.Name), Rrtype: ch.From.Qtype()}}})
		} else {
			m.Used(from)
		}
	}
	for _, ch := range changes {
		to, err := ch.To.RRs()
		if err != nil {
			return nil, err
		}
		if !ch.From.Empty() {
			m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.CanonicalName(ch.From.Name), Rrtype: ch.From.Qtype()}}})
		}
		if len(to) > 0 {
			m.Insert(to)
		}
	}
	return m, nil
}

// Update sends changes to server as one signed, atomic RFC 2136 update.
// A refusal comes back as *UpdateError.
func (c *Client) Update(ctx context.Context, server, zone string, key *Key, changes []Change) error {
	if key == nil {
		return fmt.Errorf("dns update %s: no TSIG key", zone)
	}
	m, err := BuildUpdate(zone, changes)
	if err != nil {
		return fmt.Errorf("dns update %s: %w", zone, err)
	}
	m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	// Like nsupdate: UDP for a small update, TCP once it outgrows a plain
	// 512-byte datagram (updates carry no EDNS to announce more).
	network := "udp"
	if m.Len() > dns.MinMsgSize-100 {
		network = "tcp"
	}
	r, _, err := c.exchange(ctx, m, server, key, network)
	if errors.Is(err, dns.ErrAuth) {
		// miekg/dns refuses to verify a signed NOTAUTH reply and says ErrAuth.
		return &UpdateError{Zone: dns.CanonicalName(zone), Server: HostPort(server), Rcode: dns.RcodeNotAuth}
	}
	if err != nil {
		return fmt.Errorf("dns update %s: %w", dns.CanonicalName(zone), err)
	}
	if r.Rcode != dns.RcodeSuccess {
		ue := &UpdateError{Zone: dns.CanonicalName(zone), Server: HostPort(server), Rcode: r.Rcode}
		if t := r.IsTsig(); t != nil {
			ue.TSIGError = t.Error
		}
		return ue
	}
	return nil
}

// UpdateError is an update the server answered with an error rcode.
type UpdateError struct {
	Zone, Server string
	Rcode        int
	TSIGError    uint16 // BADSIG/BADKEY/BADTIME when the server said so
}

// Error is one line: zone, server, rcode and what it means.
func (e *UpdateError) Error() string {
	return fmt.Sprintf("dns update %s refused by %s: %s (%s)", e.Zone, e.Server, dns.RcodeToString[e.Rcode], e.Why())
}

// Why explains the rcode in operator terms.
func (e *UpdateError) Why() string {
	switch e.TSIGError {
	case dns.RcodeBadSig:
		return "TSIG key rejected: wrong secret"
	case dns.RcodeBadKey:
		return "TSIG key rejected: the server does not know this key name or algorithm"
	case dns.RcodeBadTime:
		return "TSIG rejected: clocks differ by more than 5 minutes"
	}
	switch e.Rcode {
	case dns.RcodeNotAuth:
		return "TSIG key rejected, or the server is not authoritative for the zone"
	case dns.RcodeNXRrset:
		return "prerequisite failed: the records changed since decant read them"
	case dns.RcodeYXRrset:
		return "prerequisite failed: a record decant expected absent now exists"
	case dns.RcodeNameError:
		return "prerequisite failed: a name decant expected is gone"
	case dns.RcodeYXDomain:
		return "prerequisite failed: a name decant expected absent exists"
	case dns.RcodeRefused:
		return "the server refuses updates for this zone or key; check allow-update/update-policy"
	case dns.RcodeNotZone:
		return "a record is outside the zone"
	case dns.RcodeFormatError:
		return "the server could not parse the update"
	case dns.RcodeServerFailure:
		return "the server failed to apply the update"
	case dns.RcodeNotImplemented:
		return "the server does not support RFC 2136 updates"
	}
	return "unexpected rcode"
}

// PrerequisiteFailed reports whether err is a refused prerequisite: someone
// changed the zone since decant read it.
func PrerequisiteFailed(err error) bool {
	var ue *UpdateError
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.Rcode {
	case dns.RcodeNXRrset, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeYXDomain:
		return true
	}
	return false
}

// UpdateScript renders changes as the nsupdate(1) script that does the same,
// in zone-file syntax, for the plan and for operators doing it by hand. The
// key is named, never its secret.
func UpdateScript(server, zone string, key *Key, changes []Change) []string {
	host, port, err := net.SplitHostPort(HostPort(server))
	if err != nil {
		host, port = server, "53"
	}
	var out []string
	if key != nil {
		out = append(out, "; nsupdate -k <tsig key file>   # key "+key.String())
	}
	out = append(out, "server "+host+" "+port, "zone "+dns.CanonicalName(zone))
	for _, ch := range changes {
		if ch.From.Empty() {
			out = append(out, fmt.Sprintf("prereq nxrrset %s IN %s", ch.From.Name, ch.From.Type))
			continue
		}
		for _, v := range ch.From.Values {
			out = append(out, fmt.Sprintf("prereq yxrrset %s IN %s %s", ch.From.Name, ch.From.Type, v))
		}
	}
	for _, ch := range changes {
		if !ch.From.Empty() {
			out = append(out, fmt.Sprintf("update delete %s IN %s", ch.From.Name, ch.From.Type))
		}
		for _, v := range ch.To.Values {
			out = append(out, fmt.Sprintf("update add %s %d IN %s %s", ch.To.Name, ch.To.TTL, ch.To.Type, v))
		}
	}
	return append(out, "send")
}

// Describe is a one-line summary of a change: "shop.test. A 192.0.2.10 (TTL 3600) -> A 192.0.2.10 (TTL 300)".
func (ch Change) Describe() string {
	return strings.TrimSpace(ch.From.Name + " " + ch.From.Short() + " -> " + ch.To.Short())
}
