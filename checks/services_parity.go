package checks

import (
	"context"
	"errors"
	"sync"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "services.parity",
		Check: true,
		Doc:   "web server and modules, PHP version and extensions, listening services and workers (systemd, supervisor, init, queue runners) present on the source and missing on the target",
		New: func(n ast.Node) (any, error) {
			c := &ServicesParity{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// ServicesParity compares what runs a site on two hosts.
type ServicesParity struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Binaries to ask, per host when they differ: {source: php7.4, target: php8.2}.
	PHP           hostparity.PerHost `yaml:"php"`
	Apache        hostparity.PerHost `yaml:"apache"`
	Nginx         hostparity.PerHost `yaml:"nginx"`
	Supervisorctl hostparity.PerHost `yaml:"supervisorctl"`
	// Runners are extra regular expressions for workers in `ps` output.
	Runners []string `yaml:"runners"`
	// Ignore lists names (globs) not to compare: modules, extensions,
	// processes, units, programs.
	Ignore []string `yaml:"ignore"`
	// NoListen skips the comparison of listening sockets.
	NoListen bool `yaml:"no_listen"`
}

// Run collects both inventories at the same moment and compares them.
func (c *ServicesParity) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	// Both at once: processes and ports come and go, and a lab's two
	// hosts are one machine.
	var inv [2]*hostparity.Inventory
	var errs [2]error
	var wg sync.WaitGroup
	for i, name := range []string{c.Source, c.Target} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := env.Host(ctx, name)
			if err != nil {
				errs[i] = err
				return
			}
			p := hostparity.InventoryParams{Apache: c.Apache.For(name, ""), Nginx: c.Nginx.For(name, ""), PHP: c.PHP.For(name, ""),
				Supervisorctl: c.Supervisorctl.For(name, ""), Runners: c.Runners}
			inv[i], errs[i] = hostparity.CollectInventory(ctx, h, func(p string) string { return env.Path(name, p) }, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	var out []steps.Finding
	for _, f := range hostparity.CompareInventories(inv[0], inv[1], c.Source, c.Target, c.Ignore, !c.NoListen) {
		out = append(out, steps.Finding{Status: steps.Status(f.Level), Subject: f.Subject, Message: f.Message, Fix: f.Fix})
	}
	return out, nil
}
