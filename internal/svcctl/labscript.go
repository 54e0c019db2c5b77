package svcctl

import (
	"fmt"
	"path/filepath"
)

// LabScript returns an LSB init script for a lab worker named name: a real
// background process (a shell loop writing a heartbeat file every 200ms and
// counting SIGHUP reloads) managed with start-stop-daemon and a pid file in
// runDir. `decant demo` and the tests install it under the target's root.
func LabScript(name, runDir string) string {
	pid := filepath.Join(runDir, name+".pid")
	beat := filepath.Join(runDir, name+".heartbeat")
	reloads := filepath.Join(runDir, name+".reloads")
	// `sleep & wait` rather than a plain sleep: a signal interrupts wait at
	// once, so stop and reload take effect without a delay.
	loop := fmt.Sprintf(`trap "echo reload >> %s" HUP; while :; do date +%%s.%%N > %s; sleep 0.2 & wait $!; done`, reloads, beat)
	return fmt.Sprintf(`#!/bin/sh
### BEGIN INIT INFO
# Provides:          %[1]s
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: decant lab queue worker
### END INIT INFO
PIDFILE=%[2]s
case "$1" in
  start)
    mkdir -p %[3]s
    start-stop-daemon --start --oknodo --quiet --background --make-pidfile --pidfile "$PIDFILE" \
      --startas /bin/sh -- -c '%[4]s'
    ;;
  stop)
    start-stop-daemon --stop --oknodo --quiet --pidfile "$PIDFILE" --retry TERM/5/KILL/5 --remove-pidfile
    ;;
  status)
    start-stop-daemon --status --pidfile "$PIDFILE"
    ;;
  reload)
    start-stop-daemon --stop --signal HUP --quiet --pidfile "$PIDFILE"
    ;;
  restart|force-reload)
    "$0" stop && "$0" start
    ;;
  *)
    echo "Usage: $0 {start|stop|status|reload|restart|force-reload}" >&2
    exit 3
    ;;
esac
`, name, pid, runDir, loop)
}
