package discover

import (
	"context"
	"strings"
	"time"

	"github.com/decant-sh/decant/internal/hostparity"
)

// baseUnits are services every Debian/Ubuntu host runs whatever it serves:
// listing them would drown the few an operator must carry over.
var baseUnits = []string{
	"accounts-daemon", "apparmor", "atd", "auditd", "chrony", "chronyd", "console-setup",
	"containerd", "cron", "crond", "dbus", "fwupd", "getty@*", "irqbalance", "keyboard-setup",
	"kmod-static-nodes", "lvm2-*", "ModemManager", "multipathd", "networkd-dispatcher",
	"networking", "NetworkManager", "ntp", "ntpsec", "packagekit", "polkit", "qemu-guest-agent",
	"rsyslog", "serial-getty@*", "setvtrgb", "snapd", "ssh", "sshd", "systemd-*", "udisks2",
	"unattended-upgrades", "upower", "user@*", "user-runtime-dir@*", "wpa_supplicant",
	"hwclock.sh", "procps", "udev", "bootlogs", "bootmisc.sh", "rc.local", "rmnologin",
	"sudo", "motd", "kmod", "urandom", "x11-common", "plymouth",
}

// base reports whether a unit or init script is part of the base system.
func base(name string) bool {
	name = strings.TrimSuffix(name, ".service")
	for _, b := range baseUnits {
		if b == name || strings.HasSuffix(b, "*") && strings.HasPrefix(name, strings.TrimSuffix(b, "*")) {
			return true
		}
	}
	return false
}

// services asks the host what runs: systemd's running services (or, on a
// host without systemd, the init scripts started at boot — running every
// script's status on a production host is slow and intrusive), supervisor
// programs, and queue workers matched in the process list. It also notes
// the web stack's versions. The commands are those services.parity runs,
// so what init proposes is what that check will compare.
func (d *discoverer) services(ctx context.Context, p *part) (Services, *WebServer) {
	if d.o.NoServices {
		p.note("services: not asked (--no-services)")
		return Services{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	inv, err := hostparity.CollectInventory(ctx, d.o.Host, d.fs.join, hostparity.InventoryParams{})
	if err != nil {
		p.problem("services: %v", err)
		return Services{}, nil
	}
	s := Services{Systemd: inv.Systemd, Programs: inv.Programs, Workers: inv.Runners}
	for _, u := range inv.Units {
		if !base(u) {
			s.Units = append(s.Units, strings.TrimSuffix(u, ".service"))
		}
	}
	if !inv.Systemd {
		p.note("services: systemd does not run here; listed the init scripts started at boot")
		for _, u := range inv.InitServices {
			if !base(u) {
				s.Init = append(s.Init, u)
			}
		}
	}
	s.Units, s.Init = uniqSorted(s.Units), uniqSorted(s.Init)
	var w WebServer
	if inv.Apache != nil {
		w.Apache = orPresent(inv.Apache.Version)
	}
	if inv.Nginx != nil {
		w.Nginx = orPresent(inv.Nginx.Version)
	}
	if inv.PHP != nil {
		w.PHP = orPresent(inv.PHP.Version)
	}
	if w == (WebServer{}) {
		return s, nil
	}
	return s, &w
}

func orPresent(v string) string {
	if v == "" {
		return "present"
	}
	return v
}

// AllServices lists everything Services holds as one list of names, with
// what they are: "unit nginx", "program shop-worker", "worker artisan
// queue:work".
func (s Services) AllServices() []string {
	var out []string
	for _, u := range s.Units {
		out = append(out, "unit "+u)
	}
	for _, u := range s.Init {
		out = append(out, "init "+u)
	}
	for _, u := range s.Programs {
		out = append(out, "program "+u)
	}
	for _, u := range s.Workers {
		out = append(out, "worker "+u)
	}
	return out
}
