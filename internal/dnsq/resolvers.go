package dnsq

import (
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// ResolvConf is where SystemResolvers looks by default; tests and chroots
// may point it elsewhere.
var ResolvConf = "/etc/resolv.conf"

// Resolver is a recursive resolver to watch, with a label for tables.
type Resolver struct {
	Addr  string `json:"addr"`  // host:port
	Label string `json:"label"` // "system", "Google", "runbook", ...
}

// PublicResolvers are the well-known public resolvers propagation is watched
// on by default. Data only: nothing here is contacted unless a run asks.
var PublicResolvers = []Resolver{
	{Addr: "8.8.8.8:53", Label: "Google"},
	{Addr: "8.8.4.4:53", Label: "Google"},
	{Addr: "1.1.1.1:53", Label: "Cloudflare"},
	{Addr: "1.0.0.1:53", Label: "Cloudflare"},
	{Addr: "9.9.9.9:53", Label: "Quad9"},
	{Addr: "149.112.112.112:53", Label: "Quad9"},
	{Addr: "208.67.222.222:53", Label: "OpenDNS"},
	{Addr: "208.67.220.220:53", Label: "OpenDNS"},
}

// SystemResolvers reads the nameservers of a resolv.conf file (ResolvConf
// when path is empty) as host:port addresses.
func SystemResolvers(path string) ([]Resolver, error) {
	if path == "" {
		path = ResolvConf
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("system resolvers from %s: %w", path, err)
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	out := make([]Resolver, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		// Zone-scoped link-local addresses (fe80::1%eth0) keep their scope.
		out = append(out, Resolver{Addr: net.JoinHostPort(s, port), Label: "system"})
	}
	return out, nil
}

// ResolverList builds the list to watch. mode "replace" keeps only extra;
// "extend" or "" puts the system resolvers, then the public ones, then extra.
// Duplicates are dropped, first label wins.
func ResolverList(mode string, system []Resolver, extra []string) ([]Resolver, error) {
	var all []Resolver
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "replace":
	case "", "extend":
		all = append(all, system...)
		all = append(all, PublicResolvers...)
	default:
		return nil, fmt.Errorf("resolvers_mode %q: want extend or replace", mode)
	}
	for _, e := range extra {
		if strings.TrimSpace(e) == "" {
			continue
		}
		all = append(all, Resolver{Addr: HostPort(e), Label: "runbook"})
	}
	seen := map[string]bool{}
	out := all[:0:0]
	for _, r := range all {
		if seen[r.Addr] {
			continue
		}
		seen[r.Addr] = true
		out = append(out, r)
	}
	return out, nil
}
