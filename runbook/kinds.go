package runbook

// The engine runs the kinds that checks and actions register in init.
import (
	_ "github.com/decant-sh/decant/actions"
	_ "github.com/decant-sh/decant/checks"
)
