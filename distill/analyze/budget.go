package analyze

// DomainBudget is a micro-expert's parameter budget for a domain.
type DomainBudget struct {
	Domain string `json:"domain"`
	Params int64  `json:"params"`
}

// SeedBudgets returns the parameter budgets of the six seed domains.
func SeedBudgets() []DomainBudget {
	return []DomainBudget{
		{"reasoning", 10_000}, {"coding", 50_000}, {"language", 25_000},
		{"tool_use", 15_000}, {"mathematics", 20_000}, {"context", 30_000},
	}
}

// Compression is how much smaller a domain's micro-expert is than what it distils.
type Compression struct {
	DomainBudget
	// VsRoutedExpert is one routed expert's parameters / the budget.
	VsRoutedExpert float64 `json:"vs_routed_expert"`
	// VsActivated is the parameters one token activates / the budget.
	VsActivated float64 `json:"vs_activated"`
}

// Compressions computes the compression ratio of each budget.
func Compressions(budgets []DomainBudget, perExpert, activated int64) []Compression {
	out := make([]Compression, 0, len(budgets))
	for _, b := range budgets {
		c := Compression{DomainBudget: b}
		if b.Params > 0 {
			c.VsRoutedExpert = float64(perExpert) / float64(b.Params)
			c.VsActivated = float64(activated) / float64(b.Params)
		}
		out = append(out, c)
	}
	return out
}
