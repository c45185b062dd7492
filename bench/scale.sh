#!/usr/bin/env bash
# Discovery at scale: N real libp2p mesh nodes (mesh.New, TCP on 127.0.0.1) in one process for
# each N in SIZES, with churn and queries. Writes bench/results/scale.md, scale.png and the raw
# results, scale.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100 300 1000"}
MEASURE=${MEASURE:-60s}
WARMUP=${WARMUP:-30s}
ulimit -n "$(ulimit -Hn)"
go build -o bin/scale ./bench/scale
raw=bench/results/scale.jsonl
: > "$raw"
for n in $SIZES; do
	bin/scale -n "$n" -warmup "$WARMUP" -measure "$MEASURE" -out "$raw"
done
table=$(mktemp)
bin/scale -plot bench/results/scale.png -md "$table" -out "$raw"
discovery=$(head -1 "$raw" | sed -E 's/.*"discovery":"([^"]*)".*/\1/')
{
	echo "# Discovery at scale"
	echo
	echo "Run: \`make bench-scale\` (SIZES=\"$SIZES\", measured for $MEASURE after a $WARMUP warm-up) on $(date -u +%Y-%m-%d), $(nproc) cores."
	echo "N real libp2p mesh nodes (mesh.New: TCP on 127.0.0.1, Kademlia DHT, gossipsub, the advert table) run in one"
	echo "process; three are bootstrap peers for the rest. Discovery: $discovery. Each node serves 3 experts"
	echo "(synthetic CIDs) in random domains of 20; 10% of the nodes are replaced per minute (half stopped"
	echo "gracefully, half crashed; the seeds never), and 20 queries a second go from random nodes to random domains,"
	echo "each routed as the query router does (the domain's providers discovery knows, least loaded first, up to three"
	echo "tried, 2 s each) to a one-line responder. Traffic is stream payload in and out per node over the window (nodes"
	echo "that lived through it); memory and CPU are the process's divided by the nodes. \"Found\" is the time from a"
	echo "newcomer's serve call until each of 20 random nodes lists its expert (polled every 20 ms, up to 10 s)."
	echo
	cat "$table"
	echo
	echo "![per-node discovery traffic against N](scale.png)"
} > bench/results/scale.md
rm -f "$table"
echo "wrote bench/results/scale.md and bench/results/scale.png"
