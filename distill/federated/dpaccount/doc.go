// Package dpaccount is the privacy accountant of federated training: it bounds the (ε, δ)
// spent by repeated runs of the sampled Gaussian mechanism through Rényi differential
// privacy (Mironov, CSF 2017; Mironov, Talwar and Zhang, "Rényi Differential Privacy of the
// Sampled Gaussian Mechanism", 2019).
//
// One step adds Gaussian noise of standard deviation z·C to a sum of contributions each
// clipped to norm C, over a batch in which every contributor takes part with probability q.
// RDP composes additively over steps, so T steps cost T times one step's RDP at every order
// α; the (ε, δ) bound is the best, over the orders tried, of the conversion of Canonne,
// Kamath and Steinke (2020, Proposition 12 of Balle et al. 2020's form).
//
// The package is pure arithmetic: no I/O, no state.
package dpaccount
