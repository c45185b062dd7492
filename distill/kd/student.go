package kd

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/meshnode/meshnode/experts"
)

// ErrBudgetTooSmall marks a parameter budget that cannot hold a student for the input width.
var ErrBudgetTooSmall = errors.New("parameter budget too small")

// ErrUnknownDomain marks a domain with no preset budget (and no override) or one an analysis
// does not know.
var ErrUnknownDomain = errors.New("unknown domain")

// SeedBudgets are the parameter budgets of the six seed domains (DESIGN.md): small enough to
// run anywhere, sized to how much each domain asks of a model.
func SeedBudgets() map[string]int {
	return map[string]int{
		"reasoning":   10_000,
		"coding":      50_000,
		"language":    25_000,
		"tool_use":    15_000,
		"mathematics": 20_000,
		"context":     30_000,
	}
}

// DomainBudget returns the budget of a domain: override when positive, else the domain's
// preset. A domain without a preset needs an override.
func DomainBudget(domain string, override int) (int, error) {
	if override > 0 {
		return override, nil
	}
	if override < 0 {
		return 0, fmt.Errorf("parameter budget %d must be positive", override)
	}
	if b, ok := SeedBudgets()[domain]; ok {
		return b, nil
	}
	var names []string
	for d := range SeedBudgets() {
		names = append(names, d)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%w %q: no preset budget (presets: %s); give --params", ErrUnknownDomain, domain, strings.Join(names, ", "))
}

// SizeStudent returns the widest student architecture within budget parameters:
//
//   - classes (softmax head): in → h ReLU → out, in·h + h + h·out + out parameters;
//   - vectors (linear head): one SwiGLU layer in → h → out, 2·in·h + h·out parameters.
//
// It fails with ErrBudgetTooSmall when even h = 1 does not fit.
func SizeStudent(in, out int, head string, budget int) (experts.Arch, error) {
	if in <= 0 || out <= 0 {
		return experts.Arch{}, fmt.Errorf("student: input %d and output %d widths must be positive", in, out)
	}
	var h, smallest int
	switch head {
	case experts.OutputSoftmax:
		h, smallest = (budget-out)/(in+1+out), in+1+2*out
	case experts.OutputLinear:
		h, smallest = budget/(2*in+out), 2*in+out
	default:
		return experts.Arch{}, fmt.Errorf("student: unknown head %q", head)
	}
	if h < 1 || budget < smallest {
		return experts.Arch{}, fmt.Errorf("%w: %d parameters cannot hold a student of input dimension %d and output %d; the smallest (one hidden unit) needs %d",
			ErrBudgetTooSmall, budget, in, out, smallest)
	}
	if head == experts.OutputSoftmax {
		return experts.MLP(in, []int{h}, "relu", out, experts.OutputSoftmax), nil
	}
	return experts.Arch{Input: in, Output: experts.OutputLinear,
		Layers: []experts.LayerSpec{{Kind: experts.KindSwiGLU, Hidden: h, Units: out}}}, nil
}
