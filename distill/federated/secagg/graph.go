package secagg

import (
	"crypto/sha256"
	"slices"
)

// neighbourhoods gives every member of a roster its neighbours (itself not included): all the
// others when degree is 0 or at least len(ids)−1, otherwise the degree/2 members on each side
// of it on a ring whose order is a hash of the session and the IDs (a Harary graph, as in
// SecAgg+). The order is public: everyone derives the same graph from the roster.
func neighbourhoods(session []byte, ids []string, degree int) map[string][]string {
	n := len(ids)
	out := make(map[string][]string, n)
	if degree <= 0 || degree >= n-1 {
		for _, id := range ids {
			nb := make([]string, 0, n-1)
			for _, o := range ids {
				if o != id {
					nb = append(nb, o)
				}
			}
			out[id] = nb
		}
		return out
	}
	type ranked struct {
		id  string
		key [32]byte
	}
	ring := make([]ranked, n)
	for i, id := range ids {
		h := sha256.New()
		h.Write([]byte("meshnode secagg ring"))
		h.Write(session)
		h.Write([]byte(id))
		copy(ring[i].key[:], h.Sum(nil))
		ring[i].id = id
	}
	slices.SortFunc(ring, func(a, b ranked) int {
		if c := slices.Compare(a.key[:], b.key[:]); c != 0 {
			return c
		}
		return cmpString(a.id, b.id)
	})
	half := (degree + 1) / 2
	for i, r := range ring {
		nb := make([]string, 0, 2*half)
		for d := 1; d <= half; d++ {
			nb = append(nb, ring[(i+d)%n].id, ring[(i-d+n)%n].id)
		}
		slices.Sort(nb)
		out[r.id] = slices.Compact(nb)
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
