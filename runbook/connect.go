package runbook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

// HostKeyPrompt asks the operator whether to trust an unknown host key; it
// returns true to accept (the key is then added to known_hosts).
type HostKeyPrompt func(err *hosts.HostKeyError) bool

// Connector opens the runbook's hosts and MySQL endpoints on first use and
// keeps them for the run. A failed dial is not cached: the next step retries.
type Connector struct {
	rb      *Runbook
	secrets *secret.Set
	prompt  HostKeyPrompt

	mu    sync.Mutex
	hosts map[string]hosts.Host
	dbs   map[string]*sql.DB
	// dialing serialises dials per host so parallel checks share one link.
	dialing map[string]*sync.Mutex
}

// NewConnector returns a connector for rb; prompt may be nil (unknown host
// keys are then errors).
func NewConnector(rb *Runbook, secrets *secret.Set, prompt HostKeyPrompt) *Connector {
	return &Connector{rb: rb, secrets: secrets, prompt: prompt,
		hosts: map[string]hosts.Host{}, dbs: map[string]*sql.DB{}, dialing: map[string]*sync.Mutex{}}
}

// SetPrompt sets the host key prompt (the TUI installs its own).
func (c *Connector) SetPrompt(p HostKeyPrompt) {
	c.mu.Lock()
	c.prompt = p
	c.mu.Unlock()
}

// HostNames lists the runbook's hosts.
func (c *Connector) HostNames() []string {
	var out []string
	for n := range c.rb.Hosts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// HostRoot is the host's path prefix.
func (c *Connector) HostRoot(name string) string { return c.rb.Hosts[name].Root }

// Host returns the named host, dialing it on first use.
func (c *Connector) Host(ctx context.Context, name string) (hosts.Host, error) {
	spec, ok := c.rb.Hosts[name]
	if !ok {
		return nil, fmt.Errorf("no host %q in the runbook", name)
	}
	c.mu.Lock()
	if h := c.hosts[name]; h != nil {
		if !dead(h) {
			c.mu.Unlock()
			return h, nil
		}
		// The link died (a dropped connection): forget it and the MySQL
		// pools tunnelled through it, and dial again.
		c.forget(name)
	}
	dm := c.dialing[name]
	if dm == nil {
		dm = &sync.Mutex{}
		c.dialing[name] = dm
	}
	prompt := c.prompt
	c.mu.Unlock()

	dm.Lock()
	defer dm.Unlock()
	c.mu.Lock()
	if h := c.hosts[name]; h != nil {
		c.mu.Unlock()
		return h, nil
	}
	c.mu.Unlock()

	var h hosts.Host
	if spec.IsLocal() {
		h = hosts.Local(name)
	} else {
		cfg := hosts.SSHConfig{Name: name, Address: spec.Address, KeyFile: expandHome(spec.Key),
			KnownHosts: expandHome(spec.KnownHosts), SSHConfigFile: expandHome(spec.SSHConfig)}
		s, err := hosts.DialSSH(ctx, cfg)
		var hk *hosts.HostKeyError
		if err != nil && errors.As(err, &hk) && hk.Unknown && prompt != nil && hk.Key != nil && prompt(hk) {
			if aerr := hosts.AcceptHostKey(hk.KnownHosts, hk.Host, hk.Key); aerr != nil {
				return nil, fmt.Errorf("accept host key: %w", aerr)
			}
			s, err = hosts.DialSSH(ctx, cfg)
		}
		if err != nil {
			return nil, err
		}
		h = s
	}
	c.learnSecrets(ctx, name, h)
	c.mu.Lock()
	c.hosts[name] = h
	c.mu.Unlock()
	return h, nil
}

// learnSecrets reads the passwords in the option files of the host's MySQL
// endpoints as soon as the host is reachable, so that any line showing them
// (a shell step's output, an error) is redacted even before a step opens
// the database. Unreadable files are left to the step that needs them.
func (c *Connector) learnSecrets(ctx context.Context, name string, h hosts.Host) {
	for _, ep := range c.rb.MySQL {
		if ep.Host != name {
			continue
		}
		for _, f := range []string{ep.Options, ep.DebianCnf} {
			if f == "" {
				continue
			}
			if o, err := mysqlx.ReadOptions(ctx, h, f); err == nil {
				c.secrets.Add(o.Password)
			}
		}
	}
}

// dead reports whether a host's connection is known to be lost.
func dead(h hosts.Host) bool {
	a, ok := h.(interface{ Alive() bool })
	return ok && !a.Alive()
}

// forget drops a dead host and the pools reached through it; c.mu is held.
func (c *Connector) forget(name string) {
	c.hosts[name].Close()
	delete(c.hosts, name)
	for ep, db := range c.dbs {
		if c.rb.MySQL[ep].Host == name {
			db.Close()
			delete(c.dbs, ep)
		}
	}
}

// MySQLEndpoint returns the runbook's endpoint settings.
func (c *Connector) MySQLEndpoint(name string) (steps.MySQLEndpoint, bool) {
	ep, ok := c.rb.MySQL[name]
	return ep, ok
}

// MySQL returns a pool for the named endpoint, opening it on first use.
func (c *Connector) MySQL(ctx context.Context, name string) (*sql.DB, error) {
	ep, ok := c.rb.MySQL[name]
	if !ok {
		return nil, fmt.Errorf("no mysql endpoint %q in the runbook (have: %s)", name, c.mysqlNames())
	}
	// Host first: it notices a dead link and drops the pools behind it.
	h, err := c.Host(ctx, ep.Host)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if db := c.dbs[name]; db != nil {
		c.mu.Unlock()
		return db, nil
	}
	c.mu.Unlock()
	db, err := mysqlx.Open(ctx, h, mysqlx.Endpoint{Name: name, Socket: ep.Socket, Address: ep.Address,
		OptionsFile: ep.Options, User: ep.User}, c.secrets)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.dbs[name]; old != nil {
		db.Close()
		return old, nil
	}
	c.dbs[name] = db
	return db, nil
}

func (c *Connector) mysqlNames() string {
	var out []string
	for n := range c.rb.MySQL {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return fmt.Sprint(out)
}

// Close closes every pool and host connection.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, db := range c.dbs {
		db.Close()
	}
	for _, h := range c.hosts {
		h.Close()
	}
	c.dbs, c.hosts = map[string]*sql.DB{}, map[string]hosts.Host{}
	return nil
}
