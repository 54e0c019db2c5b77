// Package tui is decant's terminal interface: a bubbletea app over the
// engine's event stream. Until the full checklist UI lands, Available
// reports false and decant run falls back to plain mode.
package tui

// Available reports whether the interactive UI is built in.
func Available() bool { return false }
