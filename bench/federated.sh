#!/usr/bin/env bash
# Federated against centralized training: 10 meshnode daemons as processes on loopback,
# Fashion-MNIST split with Dirichlet α = 0.5, a 784-100-10 MLP, 30 rounds, and centralized
# training of the same network for 30 epochs in the same run. Writes bench/results/federated.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/meshnode ./cmd/meshnode
go build -o bin/fedbench ./bench/fedbench
bin/fedbench -meshnode bin/meshnode -n "${PARTICIPANTS:-10}" -rounds "${ROUNDS:-30}" -alpha "${ALPHA:-0.5}" \
	-out bench/results/federated.md
echo "wrote bench/results/federated.md"
