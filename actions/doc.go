// Package actions holds the steps that change things. Each action has Plan
// (a read-only dry run), Do (returns a receipt of what it changed and the
// values before, checkpointed to the journal before the change) and Undo
// (works from that receipt, not from re-reading the world).
package actions
