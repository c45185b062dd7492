#!/usr/bin/env bash
# Federated training on the mesh against centralized training: 10 meshnode daemons as processes
# on loopback, Fashion-MNIST split with Dirichlet α = 0.5, a 784-100-10 MLP. One job per mode —
# plain FedAvg, secure aggregation, secure aggregation with participant-level DP at ε = 1, 4, 8
# and with record-level DP-SGD at ε = 1, 4, 8 — and centralized training of the same network
# in the same run. Writes bench/results/federated.md (about 30 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/meshnode ./cmd/meshnode
go build -o bin/fedbench ./bench/fedbench
bin/fedbench -meshnode bin/meshnode -n "${PARTICIPANTS:-10}" -rounds "${ROUNDS:-100}" -dp-rounds "${DP_ROUNDS:-30}" \
	-alpha "${ALPHA:-0.5}" -optimizer sgd -lr 0.05 -lr-decay "${LR_DECAY:-0.98}" -clip 50 -record-clip 1 -dp-batch 256 \
	-modes "${MODES:-plain,secure,dp1,dp4,dp8,rec1,rec4,rec8}" -out bench/results/federated.md
echo "wrote bench/results/federated.md"
