package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
)

// roundStats are a job's means over its rounds from the second on (the first waits for the
// participants to join).
type roundStats struct {
	seconds, secureSeconds, unmaskSeconds float64
	bytesPerParticipant                   float64 // up and down, per round
	coordReceived                         float64 // bytes of secure steps the coordinator received, per round
}

func steady(h []fedjob.RoundSummary) roundStats {
	var s roundStats
	rs := h
	if len(h) > 1 {
		rs = h[1:]
	}
	for _, r := range rs {
		s.seconds += r.Seconds
		s.bytesPerParticipant += float64(node.RoundBytes(r))
		if r.Secure != nil {
			s.secureSeconds += r.Secure.Seconds
			s.unmaskSeconds += r.Secure.UnmaskSeconds
			s.coordReceived += float64(r.Secure.ReceivedBytes)
		}
	}
	n := float64(len(rs))
	return roundStats{s.seconds / n, s.secureSeconds / n, s.unmaskSeconds / n, s.bytesPerParticipant / n, s.coordReceived / n}
}

func best(h []fedjob.RoundSummary) (int, float64) {
	r, b := 0, 0.0
	for _, s := range h {
		if s.Accuracy > b {
			r, b = s.Round, s.Accuracy
		}
	}
	return r, b
}

func firstReaching(acc []float64, target float64) string {
	for i, a := range acc {
		if a >= target {
			return fmt.Sprint(i + 1)
		}
	}
	return "not reached"
}

func accuracies(h []fedjob.RoundSummary) []float64 {
	acc := make([]float64, len(h))
	for i, r := range h {
		acc[i] = r.Accuracy
	}
	return acc
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func (c centralRun) label() string {
	if c.lrDecay > 0 {
		return fmt.Sprintf("centralized, %s lr %g × %.4g an epoch", c.optimizer, c.lr, c.lrDecay)
	}
	return fmt.Sprintf("centralized, %s lr %g", c.optimizer, c.lr)
}

func (c centralRun) epochs() int { return len(c.acc) }

func writeReport(o options, runs []modeRun, centrals []centralRun) error {
	central := centrals[0] // the baseline: the centralized run with the best epoch
	for _, c := range centrals[1:] {
		if _, a := c.best(); a > func() float64 { _, b := central.best(); return b }() {
			central = c
		}
	}
	w := io.Writer(os.Stdout)
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	var modes []string
	for _, r := range runs {
		modes = append(modes, r.name)
	}
	p("# Federated training: plain, secure, differentially private — against centralized\n\n")
	p("Run: `fedbench %s` (modes %s) on %s, %d cores. Fashion-MNIST's 60,000 training\n", strings.Join(os.Args[1:], " "), strings.Join(modes, ", "), time.Now().UTC().Format("2006-01-02"), runtime.NumCPU())
	p("images split among %d participants with Dirichlet(α = %g) label shares; each trains on the 80%% training part of its\n", o.n, o.alpha)
	p("share (%d samples in all). %d meshnode daemons as processes on 127.0.0.1; the first coordinates and trains too.\n", runs[0].job.History[len(runs[0].job.History)-1].Samples, o.n)
	decay := "constant"
	if o.lrDecay > 0 {
		decay = fmt.Sprintf("× %g a round", o.lrDecay)
	}
	p("Every job starts from the same initial 784-%d-10 MLP and runs %d rounds of %d local epoch(s) (%s, lr %g %s, batch %d,\n", o.hidden, o.rounds, o.localEpochs, orAdam(o.optimizer), o.lr, decay, o.batch)
	if o.momentum > 0 {
		p("server momentum %g, ", o.momentum)
	}
	if o.dpRounds > 0 {
		p("the DP modes %d rounds, ", o.dpRounds)
	}
	if o.dpBatch > 0 {
		p("the DP modes batch %d, ", o.dpBatch)
	}
	p("fedavg, quorum = all %d, no soft wait). Centralized training runs the same network from the same weights on the union\n", o.n)
	p("of the same training parts for %d epochs with Adam at lr 0.001 and with the jobs' optimizer and learning rate, each\n", centrals[0].epochs())
	p("constant and with the jobs' decay; the best epoch of any of them is the baseline. Accuracy is on the 10,000 test\n")
	p("images. Secure aggregation clips each update to norm %g.", o.clip)
	for _, r := range runs {
		if r.epsilon > 0 && !r.record {
			p(" The dpE modes add Gaussian noise, calibrated by the coordinator so that ε after the last round stays\n")
			p("within the target at δ = %g (every participant takes part in every round: sampling rate 1, participant-level DP).", o.delta)
			break
		}
	}
	p("\n\n")

	_, cAcc := central.best()
	p("| | final accuracy | best accuracy (round of) | final − centralized best | rounds to %.2f | noise multiplier | ε spent | wall |\n", o.target)
	p("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range centrals {
		e, a := c.best()
		p("| %s | %.4f | %.4f (epoch %d) | %+.2f points | %s | - | - | %.1f s |\n", c.label(), c.acc[len(c.acc)-1], a, e,
			100*(c.acc[len(c.acc)-1]-cAcc), firstReaching(c.acc, o.target), c.wall.Seconds())
	}
	byName := map[string]modeRun{}
	for _, r := range runs {
		h := r.job.History
		br, ba := best(h)
		final := h[len(h)-1].Accuracy
		noise, eps := "-", "-"
		switch {
		case r.record:
			noise, eps = "each participant's own", fmt.Sprintf("%.3f per record (largest)", r.recordEps)
		case r.job.Spec.NoiseStd > 0:
			noise, eps = fmt.Sprintf("%.3g", r.job.Spec.NoiseStd), fmt.Sprintf("%.3f per participant", r.job.Epsilon)
		}
		p("| %s | %.4f | %.4f (%d of %d) | %+.2f points | %s | %s | %s | %.1f s |\n", r.label(), final, ba, br, r.rounds, 100*(final-cAcc),
			firstReaching(accuracies(h), o.target), noise, eps, r.wall.Seconds())
		byName[r.name] = r
	}
	p("\n")
	plain, hasPlain := byName["plain"]
	secure, hasSecure := byName["secure"]
	if hasPlain {
		h := plain.job.History
		gap := 100 * (cAcc - h[len(h)-1].Accuracy)
		_, pb := best(h)
		p("- Plain FedAvg's last round is %.2f points below centralized training's best epoch (budget 1: %s); its best\n", gap, verdict(gap <= 1))
		p("  round is %.2f points below. Both bests are picked on the test set, so they are optimistic alike.\n", 100*(cAcc-pb))
	}
	if hasPlain && hasSecure {
		hp, hs := plain.job.History, secure.job.History
		gap := 100 * (hp[len(hp)-1].Accuracy - hs[len(hs)-1].Accuracy)
		p("- Secure aggregation's last round is %.2f points from plain FedAvg's (budget 0.3: %s).\n", gap, verdict(math.Abs(gap) <= 0.3))
		sp, ss := steady(hp), steady(hs)
		added := 100 * (ss.seconds - sp.seconds) / sp.seconds
		p("- Cost per round (means from round 2 on): a plain round takes %.2f s, a secure one %.2f s: %+.1f%% (budget 20%%: %s).\n",
			sp.seconds, ss.seconds, added, verdict(added <= 20))
		p("  The secure steps after the adverts (dealing, masking, revealing, unmasking) take %.3f s of a secure round,\n", ss.secureSeconds)
		p("  %.1f%% of it; the coordinator's unmasking %.3f s. Bytes per participant per round: %.0f KiB plain, %.0f KiB secure\n",
			100*ss.secureSeconds/ss.seconds, ss.unmaskSeconds, sp.bytesPerParticipant/1024, ss.bytesPerParticipant/1024)
		p("  (%+.0f%%: a masked update is 8 bytes a parameter, mod 2^64, against 4 for a float32 update, plus the roster and\n",
			100*(ss.bytesPerParticipant-sp.bytesPerParticipant)/sp.bytesPerParticipant)
		p("  shares); the coordinator receives %.0f KiB of secure steps a round.\n", ss.coordReceived/1024)
	}
	var dpRuns, recRuns []modeRun
	for _, r := range runs {
		switch {
		case r.record:
			recRuns = append(recRuns, r)
		case r.epsilon > 0:
			dpRuns = append(dpRuns, r)
		}
	}
	if len(dpRuns) > 0 {
		r := dpRuns[len(dpRuns)-1]
		z := r.job.Spec.NoiseStd
		params := 784*o.hidden + o.hidden + o.hidden*10 + 10
		p("- Differential privacy here protects each participant's whole data set (participant-level DP over %d participants).\n", o.n)
		p("  The noise added to the mean update has deviation z·C/n per parameter, so its norm is about z·C·√d/n = %.1f·C for\n",
			z*math.Sqrt(float64(params))/float64(o.n))
		p("  ε = %g (z = %.3g, d = %d parameters, n = %d) against a signal of norm at most C: the model learns nothing useful\n",
			r.epsilon, z, params, o.n)
		p("  until n is in the thousands. This is the measured price of participant-level DP at this mesh size, not a bug.\n")
	}
	if len(recRuns) > 0 {
		p("- Record-level DP (the recE modes) protects every training record instead: each participant trains with DP-SGD\n")
		p("  (per-record gradients clipped to %g, Poisson sampling at batch/rows, Gaussian noise it adds itself), calibrating its\n", o.recordClip)
		p("  noise multiplier to its own data size so that its records stay within ε over all %d rounds; its update is then private\n", o.roundsFor(recRuns[0].mode))
		p("  even to a coordinator that could see it, and secure aggregation hides it besides. The ε column is the largest any\n")
		p("  participant reported.\n")
	}
	p("\n| round |")
	for _, r := range runs {
		p(" %s |", r.name)
	}
	p(" %s (same epochs) |", central.label())
	for _, r := range runs {
		p(" %s round s |", r.name)
	}
	p("\n|---|")
	for range runs {
		p("---|---|")
	}
	p("---|\n")
	for i := 0; i < o.rounds; i++ {
		p("| %d |", i+1)
		for _, r := range runs {
			if i < len(r.job.History) {
				p(" %.4f |", r.job.History[i].Accuracy)
			} else {
				p(" - |")
			}
		}
		if e := (i+1)*o.localEpochs - 1; e < len(central.acc) {
			p(" %.4f |", central.acc[e])
		} else {
			p(" - |")
		}
		for _, r := range runs {
			if i < len(r.job.History) {
				p(" %.2f |", r.job.History[i].Seconds)
			} else {
				p(" - |")
			}
		}
		p("\n")
	}
	return bw.Flush()
}
