package dnslab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// authServer is an authoritative server for one zone on 127.0.0.1, UDP and
// TCP on the same port. It answers with AA and accepts RFC 2136 updates only
// when they carry a valid TSIG signature (and only if updatable).
type authServer struct {
	addr      string
	zone      *memZone
	updatable bool
	onChange  func()
	udp, tcp  *dns.Server
}

func startAuth(zone *memZone, secrets map[string]string, updatable bool, onChange func()) (*authServer, error) {
	s := &authServer{zone: zone, updatable: updatable, onChange: onChange}
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dnslab: listen udp: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			// The UDP port's TCP twin is taken; try another port.
			pc.Close()
			lastErr = err
			continue
		}
		s.addr = pc.LocalAddr().String()
		s.udp = &dns.Server{PacketConn: pc, Handler: s, TsigSecret: secrets, MsgAcceptFunc: acceptMsg}
		s.tcp = &dns.Server{Listener: ln, Handler: s, TsigSecret: secrets, MsgAcceptFunc: acceptMsg}
		if err := serve(s.udp); err != nil {
			ln.Close()
			return nil, err
		}
		if err := serve(s.tcp); err != nil {
			s.udp.Shutdown()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("dnslab: no free port for UDP and TCP: %w", lastErr)
}

// acceptMsg lets UPDATE through, which miekg/dns's default filter rejects
// because its sections may hold many records; queries keep the default rules.
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
		if dh.Qdcount != 1 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

// serve starts srv and returns once it is accepting, so callers never race
// the first query against the listener.
func serve(srv *dns.Server) error {
	started := make(chan struct{})
	failed := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
		}
	}()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return fmt.Errorf("dnslab: serve: %w", err)
	case <-time.After(5 * time.Second):
		return errors.New("dnslab: server did not start within 5s")
	}
}

func (s *authServer) stop(ctx context.Context) {
	if s == nil {
		return
	}
	if s.udp != nil {
		_ = s.udp.ShutdownContext(ctx)
	}
	if s.tcp != nil {
		_ = s.tcp.ShutdownContext(ctx)
	}
}

// ServeDNS answers queries and updates.
func (s *authServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	switch {
	case r.Opcode == dns.OpcodeUpdate:
		s.update(w, r, m)
		return
	case r.Opcode != dns.OpcodeQuery || len(r.Question) != 1:
		m.Rcode = dns.RcodeNotImplemented
	case r.Question[0].Qclass != dns.ClassINET || !s.zone.inZone(r.Question[0].Name):
		m.Rcode = dns.RcodeRefused
	default:
		s.zone.answer(r.Question[0], m)
	}
	writeQuery(w, r, m)
}

func writeQuery(w dns.ResponseWriter, r, m *dns.Msg) {
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (s *authServer) update(w dns.ResponseWriter, r, m *dns.Msg) {
	t := r.IsTsig()
	switch {
	case t == nil:
		// Unsigned updates are refused outright, like allow-update { key ...; }.
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	case w.TsigStatus() != nil:
		// A reply signed with a key we could not verify would fail too, so
		// the NOTAUTH goes back unsigned (RFC 8945 §5.3.2).
		m.Rcode = dns.RcodeNotAuth
		_ = w.WriteMsg(m)
		return
	}
	var rc int
	var changed bool
	switch {
	case !s.updatable:
		rc = dns.RcodeRefused
	case len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSOA ||
		r.Question[0].Qclass != dns.ClassINET || dns.CanonicalName(r.Question[0].Name) != s.zone.origin:
		rc = dns.RcodeNotAuth
	default:
		rc, changed = s.zone.update(r.Answer, r.Ns)
	}
	// Sync the secondary before replying, so a test that reads it right
	// after the update sees it (PauseSync makes lag explicit instead).
	if changed && s.onChange != nil {
		s.onChange()
	}
	m.Rcode = rc
	// miekg/dns clients reject any signed NOTAUTH (ErrAuth), so that one
	// rcode goes back unsigned.
	if rc != dns.RcodeNotAuth {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	_ = w.WriteMsg(m)
}
