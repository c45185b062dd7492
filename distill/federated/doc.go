// Package federated is the root of federated training: experts trained together by several
// nodes with no central server, by averaging the local updates of their participants. It
// holds no code of its own; its sub-packages split the work:
//
//   - distill/federated/fedjob holds a job's messages and rules apart from any transport: the
//     signed job spec, the coordinator's round announcements, the participants' signed updates
//     with their binary codec, and the collector that decides when a round closes;
//   - distill/federated/fedavg holds the arithmetic: a participant's local update and the
//     aggregators that combine updates into the next model (FedAvg, median, trimmed mean,
//     Multi-Krum), with norm clipping, Gaussian noise for differential privacy and server
//     momentum;
//   - distill/federated/secagg holds secure aggregation's arithmetic and cryptography (masks
//     that cancel in the sum, Shamir shares of their seeds), and fedjob its round protocol;
//   - distill/federated/dpaccount holds the privacy accountant (Rényi DP of the sampled
//     Gaussian mechanism) for both participant-level noise and DP-SGD at the participants.
//
// It sits under distill because the project's layout keeps every way of making an expert
// there; like distill/kd it trains experts' models (package experts) rather than defining
// them. node/daemon moves the messages and models over libp2p.
package federated
