package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/internal/steps"
)

// planView shows an action's dry run in place of the log, before the
// operator decides to run it.
type planView struct {
	step   string
	plan   *steps.Plan
	lines  []string
	offset int
	width  int
	height int
}

func newPlanView(step string, p *steps.Plan) *planView {
	v := &planView{step: step, plan: p}
	v.lines = append(v.lines, planLines(p)...)
	v.lines = append(v.lines, "", "enter runs the step with this plan; esc goes back to the log.")
	return v
}

func (v *planView) setSize(w, h int) { v.width, v.height = max(w, 1), max(h, 1) }

func (v *planView) scroll(n int) {
	v.offset = max(0, min(v.offset+n, len(v.wrapped())-v.height))
}

func (v *planView) wrapped() []string {
	var out []string
	for _, l := range v.lines {
		out = append(out, strings.Split(ansi.Wrap(l, v.width, " /"), "\n")...)
	}
	return out
}

// View draws the plan, wrapped to the pane.
func (v *planView) View(s *styles) string {
	lines := v.wrapped()
	if len(lines) > v.height {
		off := min(v.offset, len(lines)-v.height+1)
		lines = append(lines[off:off+v.height-1:off+v.height-1],
			s.dim.Render(fmt.Sprintf("lines %d-%d of %d: ↑/↓ scroll", off+1, off+v.height-1, len(lines))))
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "plan: ") {
			lines[i] = s.bold.Render(l)
		}
	}
	return strings.Join(lines, "\n")
}
