package actions

// MySQLFreezeForgetTimer stops the in-process budget timer without lifting
// the freeze, as if decant had died: only the host's watchdog is left.
func MySQLFreezeForgetTimer(stateFile string) { mysqlFreezeStopTimer(stateFile) }
