#!/usr/bin/env bash
# Query latency and throughput with echo baselines, in one run; writes bench/results/query.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/querybench -duration "${DURATION:-3s}" -out bench/results/query.md
echo "wrote bench/results/query.md"
