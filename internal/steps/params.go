package steps

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// DecodeParams decodes a step's `with:` node into v (a pointer to a struct
// with yaml tags), rejecting unknown keys. Errors keep the node's position
// so the runbook parser can report file:line.
func DecodeParams(node ast.Node, v any) error {
	if node == nil {
		return nil
	}
	return yaml.NodeToValue(node, v, yaml.DisallowUnknownField())
}

// ParamError is a parameter problem found after decoding (a bad value),
// attached to a key so the parser can point at its line.
type ParamError struct {
	Key string // the key under `with:`, "" for the step itself
	Msg string
}

func (e *ParamError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// BadParam returns a ParamError for key.
func BadParam(key, format string, args ...any) error {
	return &ParamError{Key: key, Msg: sprintf(format, args...)}
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
