// Package dnsq is decant's DNS client: it queries authoritative servers and
// resolvers directly, finds a zone's NS and SOA, reads TSIG key files and
// sends RFC 2136 updates guarded by prerequisites.
package dnsq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// DefaultTimeout bounds one query when the caller gives none.
const DefaultTimeout = 2 * time.Second

// Client sends queries and updates. The zero value is usable.
type Client struct {
	// Timeout bounds each exchange (default DefaultTimeout).
	Timeout time.Duration
}

func (c *Client) timeout() time.Duration {
	if c == nil || c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// HostPort adds port 53 to an address given without one ("10.0.0.1",
// "[::1]", "::1") so runbooks may list resolvers the way people write them.
func HostPort(addr string) string {
	addr = strings.TrimSpace(addr)
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "53")
}

// Exchange sends m to server (host:port) over UDP, retrying over TCP when the
// answer is truncated, and returns the reply whatever its rcode.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg, server string, tsig *Key) (*dns.Msg, time.Duration, error) {
	return c.exchange(ctx, m, server, tsig, "udp")
}

func (c *Client) exchange(ctx context.Context, m *dns.Msg, server string, tsig *Key, network string) (*dns.Msg, time.Duration, error) {
	server = HostPort(server)
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	cl := &dns.Client{Net: network, Timeout: c.timeout(), UDPSize: 4096}
	if tsig != nil {
		cl.TsigSecret = map[string]string{tsig.Name: tsig.Secret}
	}
	r, rtt, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated && network == "udp" {
		cl.Net = "tcp"
		r, rtt, err = cl.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, rtt, &QueryError{Server: server, Err: err}
	}
	return r, rtt, nil
}

// Query asks server for name/qtype. recurse sets the RD bit: false for an
// authoritative server asked directly, true for a resolver.
func (c *Client) Query(ctx context.Context, server, name string, qtype uint16, recurse bool) (*dns.Msg, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.CanonicalName(name), qtype)
	m.RecursionDesired = recurse
	m.SetEdns0(4096, false)
	return c.Exchange(ctx, m, server, nil)
}

// QueryError is a failed exchange (no reply at all): timeout, refused
// connection, bad TSIG on the reply.
type QueryError struct {
	Server string
	Err    error
}

// Error says which server gave no answer and why, in one line.
func (e *QueryError) Error() string {
	return fmt.Sprintf("no answer from %s: %s", e.Server, Reason(e.Err))
}

// Unwrap exposes the transport error for errors.Is.
func (e *QueryError) Unwrap() error { return e.Err }

// Timeout reports whether the exchange ran out of time.
func (e *QueryError) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, os.ErrDeadlineExceeded) ||
		(errors.As(e.Err, &ne) && ne.Timeout())
}

// Reason turns a transport error into a short phrase for findings.
func Reason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listening)"
	case errors.Is(err, dns.ErrSig), errors.Is(err, dns.ErrSecret):
		return "TSIG verification of the reply failed"
	}
	var qe *QueryError
	if errors.As(err, &qe) {
		return Reason(qe.Err)
	}
	return err.Error()
}

// RcodeError is a reply whose rcode says the query failed (SERVFAIL,
// REFUSED, ...); NXDOMAIN and NOERROR are answers, not errors.
type RcodeError struct {
	Server string
	Name   string
	Rcode  int
}

// Error names the rcode, the server and the name.
func (e *RcodeError) Error() string {
	return fmt.Sprintf("%s from %s for %s", dns.RcodeToString[e.Rcode], e.Server, e.Name)
}

// Answer is what one server said about one name and type.
type Answer struct {
	// Records of the asked type owned by the final name of the CNAME chain.
	Records []dns.RR
	// CNAMEs is the chain followed from the asked name, in order.
	CNAMEs []*dns.CNAME
	// NXDomain is set when the name does not exist.
	NXDomain bool
	// NegTTL is the SOA TTL of a negative answer (NXDOMAIN or no data):
	// how long a resolver keeps saying "nothing here".
	NegTTL uint32
	// Authoritative mirrors the AA bit.
	Authoritative bool
	RTT           time.Duration
}

// TTL is the smallest TTL among the records (0 when there are none).
func (a *Answer) TTL() uint32 {
	return minTTL(a.Records)
}

// Values returns the records' rdata in presentation format, sorted.
func (a *Answer) Values() []string {
	return rdataList(a.Records)
}

// Lookup queries server for name/qtype and follows a CNAME chain inside the
// reply. Transport failures return *QueryError, SERVFAIL/REFUSED/NOTAUTH and
// the like *RcodeError.
func (c *Client) Lookup(ctx context.Context, server, name string, qtype uint16, recurse bool) (*Answer, error) {
	name = dns.CanonicalName(name)
	r, rtt, err := c.Query(ctx, server, name, qtype, recurse)
	if err != nil {
		return nil, err
	}
	ans := &Answer{RTT: rtt, Authoritative: r.Authoritative}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		ans.NXDomain = true
	default:
		return nil, &RcodeError{Server: HostPort(server), Name: name, Rcode: r.Rcode}
	}
	owner := name
	for hops := 0; hops < 16; hops++ {
		var next string
		for _, rr := range r.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, owner) && qtype != dns.TypeCNAME {
				ans.CNAMEs = append(ans.CNAMEs, cn)
				next = dns.CanonicalName(cn.Target)
				break
			}
		}
		if next == "" {
			break
		}
		owner = next
	}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, owner) {
			ans.Records = append(ans.Records, rr)
		}
	}
	if len(ans.Records) == 0 {
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ans.NegTTL = soa.Hdr.Ttl
			}
		}
	}
	if ans.NXDomain && len(ans.CNAMEs) > 0 {
		// The asked name exists; it is the CNAME target that does not.
		ans.NXDomain = false
	}
	return ans, nil
}
