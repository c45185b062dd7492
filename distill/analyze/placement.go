package analyze

// Placement is a plan for hosting every routed expert on nodes of one memory size.
type Placement struct {
	NodeMemory     int64   `json:"node_memory"`
	UsableShare    float64 `json:"usable_share"` // share of a node's memory given to expert weights
	ExpertBytes    int64   `json:"expert_bytes"` // one routed expert as stored, with its scales
	Experts        int     `json:"experts"`      // routed experts to host
	ExpertsPerNode int     `json:"experts_per_node"`
	Nodes          int     `json:"nodes"` // nodes that host all routed experts (0 when one does not fit)
	// BackboneBytes is everything else (attention, embeddings, dense and
	// shared MLPs, routers, norms); BackboneNodes nodes hold it.
	BackboneBytes int64       `json:"backbone_bytes"`
	BackboneNodes int         `json:"backbone_nodes"`
	Assignment    []NodeRange `json:"assignment,omitempty"`
	Note          string      `json:"note,omitempty"`
}

// NodeRange is the contiguous run of (layer, expert) slots one node hosts.
type NodeRange struct {
	Node      int `json:"node"`
	FromLayer int `json:"from_layer"`
	FromIdx   int `json:"from_expert"`
	ToLayer   int `json:"to_layer"`
	ToIdx     int `json:"to_expert"`
	Experts   int `json:"experts"`
}

// Plan packs the routed experts of moeLayers (experts per layer each) onto
// nodes of nodeMemory bytes, usableShare of which holds weights, in layer
// order, and sizes the backbone separately.
func Plan(nodeMemory int64, usableShare float64, expertBytes int64, moeLayers []int, experts int, backboneBytes int64) Placement {
	p := Placement{NodeMemory: nodeMemory, UsableShare: usableShare, ExpertBytes: expertBytes,
		Experts: len(moeLayers) * experts, BackboneBytes: backboneBytes}
	usable := int64(float64(nodeMemory) * usableShare)
	if expertBytes <= 0 || usable <= 0 {
		p.Note = "node memory or expert size is zero"
		return p
	}
	p.ExpertsPerNode = int(min(usable/expertBytes, int64(p.Experts)))
	p.BackboneNodes = int((backboneBytes + usable - 1) / usable)
	if p.ExpertsPerNode == 0 {
		p.Note = "one routed expert does not fit in the usable memory of a node"
		return p
	}
	p.Nodes = (p.Experts + p.ExpertsPerNode - 1) / p.ExpertsPerNode
	for n := range p.Nodes {
		first, last := n*p.ExpertsPerNode, min((n+1)*p.ExpertsPerNode, p.Experts)-1
		p.Assignment = append(p.Assignment, NodeRange{Node: n + 1,
			FromLayer: moeLayers[first/experts], FromIdx: first % experts,
			ToLayer: moeLayers[last/experts], ToIdx: last % experts, Experts: last - first + 1})
	}
	return p
}
