package listing

import "sort"

// Reviews holds the reviews of one listing: at most one per reviewer (its latest) and at most
// a bound in all. When full, a verified purchase's review displaces an unverified one (the
// oldest) before anything else, so reviews from free keys can never crowd out buyers'.
type Reviews struct {
	by map[string]*Review // reviewer -> its latest review
}

// Add keeps r if it is new: the first of its reviewer, or newer than the reviewer's last. It
// returns whether r was kept and the reviews it displaced (for the caller to forget). verified
// tells a verified purchase's review.
func (s *Reviews) Add(r *Review, limit int, verified func(*Review) bool) (bool, []*Review) {
	if s.by == nil {
		s.by = map[string]*Review{}
	}
	if old := s.by[r.Reviewer]; old != nil {
		if r.Time < old.Time || (r.Time == old.Time && r.ID() <= old.ID()) {
			return false, nil // older than, or the same as, what the reviewer said last
		}
		s.by[r.Reviewer] = r
		return true, []*Review{old}
	}
	if len(s.by) < limit {
		s.by[r.Reviewer] = r
		return true, nil
	}
	// Full: displace the oldest unverified review; a verified one displaces the oldest verified
	// review when there is no unverified one left.
	var victim *Review
	rv := verified(r)
	for _, o := range s.All() {
		if !verified(o) {
			victim = o
			break
		}
	}
	if victim == nil && rv {
		for _, o := range s.All() {
			if o.Time < r.Time {
				victim = o
				break
			}
		}
	}
	if victim == nil {
		return false, nil
	}
	delete(s.by, victim.Reviewer)
	s.by[r.Reviewer] = r
	return true, []*Review{victim}
}

// Len is the number of reviews held.
func (s *Reviews) Len() int { return len(s.by) }

// All lists the reviews, oldest first.
func (s *Reviews) All() []*Review {
	out := make([]*Review, 0, len(s.by))
	for _, r := range s.by {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].Reviewer < out[j].Reviewer
	})
	return out
}

// Mean is the mean accuracy of the verified purchases' reviews and how many there are.
func (s *Reviews) Mean(verified func(*Review) bool) (float64, int) {
	var sum float64
	n := 0
	for _, r := range s.by {
		if verified(r) {
			sum += r.Accuracy
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}
