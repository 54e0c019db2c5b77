// Command decant moves a live server to a new one, step by step, with a
// journal, undo and a transcript.
package main

import (
	"os"

	"github.com/decant-sh/decant/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
