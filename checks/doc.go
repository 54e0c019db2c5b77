// Package checks holds decant's preflight checks. Each is read-only, takes
// a context, can run any number of times, and returns findings with a
// status (pass, warn, fail), a message a first-timer understands and a
// separate Fix (the exact command or SQL). Each registers its kind in init;
// the kind's name (mysql.version) is also what --waive takes.
package checks
