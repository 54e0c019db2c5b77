package dnslab

import (
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// rrKey identifies an RRset inside the in-memory zone.
type rrKey struct {
	name  string
	rtype uint16
}

// memZone is one copy of the zone, guarded by its own lock so the primary
// and the secondary can diverge when a test pauses synchronisation.
type memZone struct {
	mu     sync.RWMutex
	origin string
	sets   map[rrKey][]dns.RR
}

func newMemZone(origin string, rrs []dns.RR) *memZone {
	z := &memZone{origin: dns.CanonicalName(origin), sets: map[rrKey][]dns.RR{}}
	z.load(rrs)
	return z
}

// load replaces the whole content (used to sync the secondary).
func (z *memZone) load(rrs []dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.sets = map[rrKey][]dns.RR{}
	for _, rr := range rrs {
		z.addLocked(dns.Copy(rr))
	}
}

func canon(rr dns.RR) dns.RR {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	return rr
}

func (z *memZone) addLocked(rr dns.RR) {
	rr = canon(rr)
	h := rr.Header()
	k := rrKey{h.Name, h.Rrtype}
	set := z.sets[k]
	for i, old := range set {
		if dns.IsDuplicate(old, rr) {
			set = slices.Delete(set, i, i+1)
			break
		}
	}
	if h.Rrtype == dns.TypeCNAME || h.Rrtype == dns.TypeSOA {
		set = nil // singletons: a new one replaces the old
	}
	set = append(set, rr)
	// One TTL per RRset (RFC 2181 §5.2): the newest record's TTL wins.
	for _, x := range set {
		x.Header().Ttl = h.Ttl
	}
	z.sets[k] = set
}

// snapshot returns a sorted deep copy of every record.
func (z *memZone) snapshot() []dns.RR {
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []dns.RR
	for _, set := range z.sets {
		for _, rr := range set {
			out = append(out, dns.Copy(rr))
		}
	}
	sortRRs(out)
	return out
}

func sortRRs(rrs []dns.RR) {
	slices.SortFunc(rrs, func(a, b dns.RR) int {
		if c := strings.Compare(a.Header().Name, b.Header().Name); c != 0 {
			return c
		}
		if c := int(a.Header().Rrtype) - int(b.Header().Rrtype); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
}

func (z *memZone) inZone(name string) bool {
	return dns.IsSubDomain(z.origin, dns.CanonicalName(name))
}

// nameExists reports whether name owns records or is an empty non-terminal.
func (z *memZone) nameExistsLocked(name string) bool {
	for k, set := range z.sets {
		if len(set) == 0 {
			continue
		}
		if k.name == name || dns.IsSubDomain(name, k.name) {
			return true
		}
	}
	return false
}

func (z *memZone) hasNameLocked(name string) bool {
	for k, set := range z.sets {
		if k.name == name && len(set) > 0 {
			return true
		}
	}
	return false
}

func (z *memZone) soaLocked() *dns.SOA {
	if set := z.sets[rrKey{z.origin, dns.TypeSOA}]; len(set) > 0 {
		return set[0].(*dns.SOA)
	}
	return nil
}

// answer fills m for a query, following CNAMEs inside the zone.
func (z *memZone) answer(q dns.Question, m *dns.Msg) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	name := dns.CanonicalName(q.Name)
	m.Authoritative = true
	for hops := 0; hops < 8; hops++ {
		if q.Qtype != dns.TypeCNAME {
			if cn := z.sets[rrKey{name, dns.TypeCNAME}]; len(cn) > 0 {
				m.Answer = append(m.Answer, dns.Copy(cn[0]))
				target := dns.CanonicalName(cn[0].(*dns.CNAME).Target)
				if !z.inZone(target) {
					return
				}
				name = target
				continue
			}
		}
		if q.Qtype == dns.TypeANY {
			for k, set := range z.sets {
				if k.name == name {
					for _, rr := range set {
						m.Answer = append(m.Answer, dns.Copy(rr))
					}
				}
			}
		} else {
			for _, rr := range z.sets[rrKey{name, q.Qtype}] {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		if len(m.Answer) == 0 || m.Answer[len(m.Answer)-1].Header().Rrtype == dns.TypeCNAME {
			if !z.nameExistsLocked(name) {
				m.Rcode = dns.RcodeNameError
			}
			if soa := z.soaLocked(); soa != nil {
				// Negative answers are cached for min(SOA TTL, MINIMUM) (RFC 2308).
				neg := dns.Copy(soa).(*dns.SOA)
				neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
				m.Ns = append(m.Ns, neg)
			}
		}
		return
	}
}

// update applies an RFC 2136 update's prerequisite and update sections and
// returns the rcode and whether the zone changed.
func (z *memZone) update(prereq, upd []dns.RR) (int, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if rc := z.checkPrereqLocked(prereq); rc != dns.RcodeSuccess {
		return rc, false
	}
	if rc := z.prescanLocked(upd); rc != dns.RcodeSuccess {
		return rc, false
	}
	changed := false
	soaUpdated := false
	for _, rr := range upd {
		rr = canon(dns.Copy(rr))
		h := rr.Header()
		apex := h.Name == z.origin
		switch h.Class {
		case dns.ClassINET:
			k := rrKey{h.Name, h.Rrtype}
			if h.Rrtype == dns.TypeSOA {
				if !apex {
					continue
				}
				if old := z.soaLocked(); old != nil && !serialGreater(rr.(*dns.SOA).Serial, old.Serial) {
					continue
				}
				soaUpdated = true
			}
			// RFC 2136 §3.4.2.2: CNAME and other data do not mix; ignore.
			if h.Rrtype == dns.TypeCNAME && z.hasOtherThanLocked(h.Name, dns.TypeCNAME) {
				continue
			}
			if h.Rrtype != dns.TypeCNAME && len(z.sets[rrKey{h.Name, dns.TypeCNAME}]) > 0 {
				continue
			}
			before := rrsetString(z.sets[k])
			z.addLocked(rr)
			changed = changed || before != rrsetString(z.sets[k])
		case dns.ClassANY:
			for k := range z.sets {
				if k.name != h.Name || (h.Rrtype != dns.TypeANY && k.rtype != h.Rrtype) {
					continue
				}
				if apex && (k.rtype == dns.TypeSOA || k.rtype == dns.TypeNS) {
					continue
				}
				if len(z.sets[k]) > 0 {
					changed = true
				}
				delete(z.sets, k)
			}
		case dns.ClassNONE:
			if h.Rrtype == dns.TypeSOA {
				continue
			}
			k := rrKey{h.Name, h.Rrtype}
			set := z.sets[k]
			if apex && h.Rrtype == dns.TypeNS && len(set) <= 1 {
				continue
			}
			probe := dns.Copy(rr)
			probe.Header().Class = dns.ClassINET
			for i, old := range set {
				if dns.IsDuplicate(old, probe) {
					set = slices.Delete(set, i, i+1)
					changed = true
					break
				}
			}
			if len(set) == 0 {
				delete(z.sets, k)
			} else {
				z.sets[k] = set
			}
		}
	}
	if changed && !soaUpdated {
		z.bumpSerialLocked()
	}
	return dns.RcodeSuccess, changed
}

func (z *memZone) bumpSerialLocked() {
	if soa := z.soaLocked(); soa != nil {
		soa.Serial++
	}
}

func serialGreater(a, b uint32) bool { return a != b && a-b < 1<<31 }

func (z *memZone) hasOtherThanLocked(name string, t uint16) bool {
	for k, set := range z.sets {
		if k.name == name && k.rtype != t && len(set) > 0 {
			return true
		}
	}
	return false
}

func rrsetString(set []dns.RR) string {
	var b strings.Builder
	for _, rr := range set {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func metaType(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB:
		return true
	}
	return false
}

// checkPrereqLocked evaluates the prerequisite section (RFC 2136 §3.2).
func (z *memZone) checkPrereqLocked(prereq []dns.RR) int {
	want := map[rrKey][]dns.RR{}
	var order []rrKey
	for _, rr := range prereq {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		if h.Ttl != 0 {
			return dns.RcodeFormatError
		}
		if !z.inZone(name) {
			return dns.RcodeNotZone
		}
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if !z.hasNameLocked(name) {
					return dns.RcodeNameError
				}
			} else if len(z.sets[rrKey{name, h.Rrtype}]) == 0 {
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if z.hasNameLocked(name) {
					return dns.RcodeYXDomain
				}
			} else if len(z.sets[rrKey{name, h.Rrtype}]) > 0 {
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			k := rrKey{name, h.Rrtype}
			if _, ok := want[k]; !ok {
				order = append(order, k)
			}
			want[k] = append(want[k], canon(dns.Copy(rr)))
		default:
			return dns.RcodeFormatError
		}
	}
	// Value-dependent prerequisites compare whole RRsets (§3.2.3).
	for _, k := range order {
		if !sameRdata(want[k], z.sets[k]) {
			return dns.RcodeNXRrset
		}
	}
	return dns.RcodeSuccess
}

func sameRdata(a, b []dns.RR) bool {
	contains := func(set []dns.RR, rr dns.RR) bool {
		for _, x := range set {
			if dns.IsDuplicate(x, rr) {
				return true
			}
		}
		return false
	}
	for _, rr := range a {
		if !contains(b, rr) {
			return false
		}
	}
	for _, rr := range b {
		if !contains(a, rr) {
			return false
		}
	}
	return true
}

// prescanLocked checks the update section before anything changes (§3.4.1).
func (z *memZone) prescanLocked(upd []dns.RR) int {
	for _, rr := range upd {
		h := rr.Header()
		if !z.inZone(h.Name) {
			return dns.RcodeNotZone
		}
		switch h.Class {
		case dns.ClassINET:
			if metaType(h.Rrtype) {
				return dns.RcodeFormatError
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 || (metaType(h.Rrtype) && h.Rrtype != dns.TypeANY) {
				return dns.RcodeFormatError
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || metaType(h.Rrtype) {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}
	return dns.RcodeSuccess
}
