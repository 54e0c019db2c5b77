package initcmd

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// yamlDoc edits a runbook's YAML through its AST so that the template's
// comments and layout survive. Paths are YAML paths ("$.hosts.target.
// address"); keys are plain identifiers.
type yamlDoc struct {
	f *ast.File
}

func parseDoc(b []byte) (*yamlDoc, error) {
	f, err := parser.ParseBytes(b, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("want one YAML document, got %d", len(f.Docs))
	}
	return &yamlDoc{f: f}, nil
}

func (d *yamlDoc) bytes() []byte {
	s := d.f.String()
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s)
}

// node returns the node at path, or nil when it is absent.
func (d *yamlDoc) node(path string) ast.Node {
	p, err := yaml.PathString(path)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(d.f)
	if err != nil {
		return nil
	}
	return n
}

// mapping returns the mapping at path, or nil.
func (d *yamlDoc) mapping(path string) *ast.MappingNode {
	m, _ := d.node(path).(*ast.MappingNode)
	return m
}

// splitPath cuts "$.a.b" into "$.a" and "b".
func splitPath(path string) (parent, key string) {
	i := strings.LastIndexByte(path, '.')
	return path[:i], path[i+1:]
}

// set puts v at path: it replaces an existing value, or adds the key to
// its parent mapping (creating the parent the same way when missing).
func (d *yamlDoc) set(path string, v any) error {
	if d.node(path) != nil {
		text, err := valueText(v)
		if err != nil {
			return err
		}
		p, err := yaml.PathString(path)
		if err != nil {
			return err
		}
		if err := p.ReplaceWithReader(d.f, strings.NewReader(text)); err != nil {
			return fmt.Errorf("set %s: %w", path, err)
		}
		return nil
	}
	parent, key := splitPath(path)
	if parent == "$" || d.mapping(parent) != nil {
		// A new key is written in block style: it lays out well when
		// merged, unlike a replaced value.
		b, err := yaml.Marshal(yaml.MapSlice{{Key: key, Value: v}})
		if err != nil {
			return err
		}
		p, err := yaml.PathString(parent)
		if err != nil {
			return err
		}
		if err := p.MergeFromReader(d.f, strings.NewReader(string(b))); err != nil {
			return fmt.Errorf("add %s: %w", path, err)
		}
		if parent == "$" {
			d.phasesLast()
		}
		return nil
	}
	if d.node(parent) != nil {
		return fmt.Errorf("set %s: %s is not a mapping", path, parent)
	}
	return d.set(parent, yaml.MapSlice{{Key: key, Value: v}})
}

// phasesLast moves phases: back to the end of the document after a
// top-level section was added, where a reader expects the steps.
func (d *yamlDoc) phasesLast() {
	m, _ := d.f.Docs[0].Body.(*ast.MappingNode)
	if m == nil {
		return
	}
	for i, mv := range m.Values {
		if mv.Key.String() == "phases" && i < len(m.Values)-1 {
			m.Values = append(append(m.Values[:i:i], m.Values[i+1:]...), mv)
			return
		}
	}
}

// valueText renders a value replacing an existing one: mappings in block
// style, sequences and scalars in flow style (a block sequence replacing a
// value keeps the old column and lays out oddly).
func valueText(v any) (string, error) {
	var b []byte
	var err error
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Struct:
		b, err = yaml.Marshal(v)
	default:
		if ms, ok := v.(yaml.MapSlice); ok {
			b, err = yaml.Marshal(ms)
		} else {
			b, err = yaml.MarshalWithOptions(v, yaml.Flow(true))
		}
	}
	return string(b), err
}

// del removes the key at path; an absent key is not an error.
func (d *yamlDoc) del(path string) {
	parent, key := splitPath(path)
	m := d.mapping(parent)
	if m == nil {
		return
	}
	for i, mv := range m.Values {
		if mv.Key.String() == key {
			m.Values = append(m.Values[:i], m.Values[i+1:]...)
			return
		}
	}
}

// stepRef locates one step of the template.
type stepRef struct {
	phase, step int
	kind        string // check or action kind; "shell" for shell steps
	id          string
	phaseName   string
}

func (s stepRef) path() string { return fmt.Sprintf("$.phases[%d].steps[%d]", s.phase, s.step) }

// label names a step in notes: its id or phase/kind.
func (s stepRef) label() string {
	if s.id != "" {
		return s.id
	}
	return s.phaseName + "/" + s.kind
}

// steps lists the steps in order.
func (d *yamlDoc) steps() []stepRef {
	var out []stepRef
	phases, _ := d.node("$.phases").(*ast.SequenceNode)
	if phases == nil {
		return nil
	}
	for i, pn := range phases.Values {
		pm, _ := pn.(*ast.MappingNode)
		if pm == nil {
			continue
		}
		name := scalar(pm, "name")
		var seq *ast.SequenceNode
		for _, mv := range pm.Values {
			if mv.Key.String() == "steps" {
				seq, _ = mv.Value.(*ast.SequenceNode)
			}
		}
		if seq == nil {
			continue
		}
		for j, sn := range seq.Values {
			sm, _ := sn.(*ast.MappingNode)
			if sm == nil {
				continue
			}
			ref := stepRef{phase: i, step: j, id: scalar(sm, "id"), phaseName: name}
			switch {
			case scalar(sm, "check") != "":
				ref.kind = scalar(sm, "check")
			case scalar(sm, "action") != "":
				ref.kind = scalar(sm, "action")
			case scalar(sm, "shell") != "":
				ref.kind = "shell"
			}
			out = append(out, ref)
		}
	}
	return out
}

// deleteStep removes a step (and the comment above it), and its phase
// when it was the last step there.
func (d *yamlDoc) deleteStep(s stepRef) {
	seq, _ := d.node(fmt.Sprintf("$.phases[%d].steps", s.phase)).(*ast.SequenceNode)
	if seq == nil || s.step >= len(seq.Values) {
		return
	}
	removeItem(seq, s.step)
	if len(seq.Values) == 0 {
		if phases, _ := d.node("$.phases").(*ast.SequenceNode); phases != nil && s.phase < len(phases.Values) {
			removeItem(phases, s.phase)
		}
	}
}

// only keeps step s as the one step of the one phase.
func (d *yamlDoc) only(s stepRef) bool {
	phases, _ := d.node("$.phases").(*ast.SequenceNode)
	seq, _ := d.node(fmt.Sprintf("$.phases[%d].steps", s.phase)).(*ast.SequenceNode)
	if phases == nil || seq == nil || s.step >= len(seq.Values) || s.phase >= len(phases.Values) {
		return false
	}
	keepItem(seq, s.step)
	keepItem(phases, s.phase)
	return true
}

func removeItem(seq *ast.SequenceNode, i int) {
	seq.Values = append(seq.Values[:i], seq.Values[i+1:]...)
	if len(seq.ValueHeadComments) > i {
		seq.ValueHeadComments = append(seq.ValueHeadComments[:i], seq.ValueHeadComments[i+1:]...)
	}
}

func keepItem(seq *ast.SequenceNode, i int) {
	seq.Values = seq.Values[i : i+1]
	if len(seq.ValueHeadComments) > i {
		seq.ValueHeadComments = seq.ValueHeadComments[i : i+1]
	}
}

// scalar returns the string value of key in m, or "".
func scalar(m *ast.MappingNode, key string) string {
	for _, mv := range m.Values {
		if mv.Key.String() != key {
			continue
		}
		switch v := mv.Value.(type) {
		case *ast.StringNode:
			return v.Value
		case nil:
			return ""
		default:
			return strings.TrimSpace(v.String())
		}
	}
	return ""
}
