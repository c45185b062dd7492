#!/usr/bin/env bash
# Advert propagation on loopback: N = 10 and 30 daemons as processes, each bootstrapped to the
# previous one. Writes bench/results/mesh.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/meshnode ./cmd/meshnode
go build -o bin/meshbench ./bench/meshbench
out=bench/results/mesh.md
TRIALS=${TRIALS:-30}
{
	echo "# Advert propagation"
	echo
	echo "Run: \`bash bench/mesh.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores. N daemons as processes on 127.0.0.1, each"
	echo "bootstrapped only to the previous one; the first serves an expert, and the latency is the time from the"
	echo "serve call until the last node's table records the advert (arrival times the nodes record, one clock)."
	echo "Each trial is a serve and a withdrawal; bytes are each node's gossipsub stream bytes (adverts, forwarding"
	echo "and control) during the trials divided by the adverts published. Budget: p99 under 1 s at N = 30."
	echo
	echo "| N | trials | peers per node | p50 | p99 | max | adverts | gossip bytes sent per advert, mean per node | max node |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$out"
for n in 10 30; do
	bin/meshbench -meshnode bin/meshnode -n "$n" -trials "$TRIALS" -out "$out"
done
echo "wrote $out"
