package runbook

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed templates/*.yaml
var templateFS embed.FS

// Template returns a built-in runbook template by name ("lamp").
func Template(name string) ([]byte, error) {
	b, err := templateFS.ReadFile("templates/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in runbook %q (have: %s)", name, strings.Join(Templates(), ", "))
	}
	return b, nil
}

// Templates lists the built-in runbook names.
func Templates() []string {
	ents, _ := fs.ReadDir(templateFS, "templates")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}
