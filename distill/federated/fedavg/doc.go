// Package fedavg owns the arithmetic of federated training: a participant's local update (train
// a copy of the round's model on private data, send the difference), and the aggregators that
// combine updates into the next model — FedAvg weighted by sample count with a cap on any one
// participant's share, coordinate-wise median, trimmed mean and Multi-Krum (robust to a minority
// of bad participants), with update-norm clipping and optional Gaussian noise for differential
// privacy. Everything here is a function of its inputs; moving models and updates between nodes
// is the caller's business.
package fedavg
