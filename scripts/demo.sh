#!/usr/bin/env bash
# make demo: a node trains a real Fashion-MNIST micro-expert, identifies it by content, runs it
# on test images, and a second node imports it with the same ID; then three daemons form a mesh,
# route queries, fetch an expert by bitswap, train together for five federated rounds and trade
# an expert on the market. Everything printed is computed.
set -euo pipefail
cd "$(dirname "$0")/.."
MESHNODE=${MESHNODE:-bin/meshnode}
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
A="$OUT/node-a"
B="$OUT/node-b"

step() { printf '\n== %s\n' "$*"; }

step "1. Create two nodes (repo folders with identity, config and database)"
$MESHNODE --repo "$A" init
$MESHNODE --repo "$B" init

step "2. Train a 784-100-10 expert on Fashion-MNIST's 60,000 training images on node A"
$MESHNODE --repo "$A" expert train --dataset fashion-mnist --hidden 100 --epochs 8 \
	--name fashion --domain vision,fashion --seed 1

step "3. Inspect it: its ID is the CID of its manifest; the weights blob has a CID of its own"
$MESHNODE --repo "$A" expert inspect fashion

step "4. Classify five test images (PNG files written from the test set)"
correct=0
while IFS=$'\t' read -r file label; do
	got=$($MESHNODE --repo "$A" query --expert fashion --input "$file" --json | sed -n 's/^  "[Ll]abel": "\(.*\)",$/\1/p')
	mark="wrong"
	if [ "$got" = "$label" ]; then mark="right"; correct=$((correct + 1)); fi
	printf '%-34s true %-12s predicted %-12s %s\n' "$file" "$label" "$got" "$mark"
done < <($MESHNODE data sample --dataset fashion-mnist --count 5 --output "$OUT/samples")
echo "$correct of 5 right"

step "5. Evaluate on all 10,000 test images"
$MESHNODE --repo "$A" expert eval fashion --dataset fashion-mnist

step "6. Export from A (safetensors + manifest) and import on B: same bytes, same ID"
$MESHNODE --repo "$A" expert export fashion "$OUT/fashion.safetensors"
$MESHNODE --repo "$B" expert import "$OUT/fashion.safetensors"
ida=$($MESHNODE --repo "$A" expert list --json | sed -n 's/^    "id": "\(.*\)",$/\1/p' | head -1)
idb=$($MESHNODE --repo "$B" expert list --json | sed -n 's/^    "id": "\(.*\)",$/\1/p' | head -1)
echo "node A hosts $ida"
echo "node B hosts $idb"
if [ "$ida" != "$idb" ] || [ -z "$ida" ]; then
	echo "demo: the imported expert has a different ID" >&2
	exit 1
fi

step "7. A mesh: three daemons on 127.0.0.1, C bootstrapped to B, B to A; A serves, B and C see it"
C="$OUT/node-c"
cat > "$OUT/mesh.yaml" <<'YAML'
preset: development
mesh:
  listen: [/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1]
  mdns: false   # this demo links its nodes by bootstrap addresses only
  advert_ttl: 30s
  advert_refresh: 10s
YAML
$MESHNODE --repo "$C" init --config "$OUT/mesh.yaml" > /dev/null
for r in "$A" "$B"; do cp "$OUT/mesh.yaml" "$r/config.yaml"; done
# The starting point of step 10's federated job: an untrained 784-100-10 expert on A; and an
# iris expert A will sell in step 11.
$MESHNODE --repo "$A" expert train --dataset fashion-mnist --hidden 100 --epochs 0 --name fed-base --seed 2 > /dev/null
$MESHNODE --repo "$A" expert train --dataset iris --hidden 16 --epochs 200 --lr 0.01 --patience 0 --name iris-for-sale --seed 3 > /dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
tcp_addr() { # the daemon's loopback TCP address, once its API answers
	for _ in $(seq 100); do
		a=$($MESHNODE --repo "$1" id --json 2>/dev/null | sed -n 's|^ *"\(/ip4/127.0.0.1/tcp/[^"]*\)",\{0,1\}$|\1|p' | head -1)
		if [ -n "$a" ]; then echo "$a"; return; fi
		sleep 0.1
	done
	echo "demo: daemon on $1 did not start; see $1.log" >&2; exit 1
}
$MESHNODE --repo "$A" daemon --log-level warn > "$A.log" 2>&1 & pids+=($!)
addr_a=$(tcp_addr "$A")
$MESHNODE --repo "$B" daemon --log-level warn --bootstrap "$addr_a" > "$B.log" 2>&1 & pids+=($!)
addr_b=$(tcp_addr "$B")
$MESHNODE --repo "$C" daemon --log-level warn --bootstrap "$addr_b" > "$C.log" 2>&1 & pids+=($!)
tcp_addr "$C" > /dev/null
echo "A $addr_a"
echo "B $addr_b (bootstrapped to A)"
echo "C bootstrapped to B"
$MESHNODE --repo "$A" expert serve fashion
for _ in $(seq 100); do
	if $MESHNODE --repo "$C" expert list --remote --json | grep -q '"name": "fashion"'; then break; fi
	sleep 0.1
done
echo "--- node C's table of remote experts:"
$MESHNODE --repo "$C" expert list --remote
echo "--- node B's status:"
$MESHNODE --repo "$B" status

step "8. Node C hosts no expert; it asks the mesh for the best 'fashion' expert"
$MESHNODE --repo "$C" query --domain fashion --input "$OUT/samples/fashion-mnist-0000.png"
$MESHNODE --repo "$C" query --domain fashion --input "$OUT/samples/fashion-mnist-0001.png"

step "9. Node C fetches the expert itself by its ID (bitswap, verified) and answers locally"
$MESHNODE --repo "$C" expert fetch "$ida"
$MESHNODE --repo "$C" query --expert "$ida" --input "$OUT/samples/fashion-mnist-0002.png"

step "10. Train together: A, B and C each hold a non-IID share of 9,000 images; A coordinates five rounds and, by secure aggregation, sees only their sum"
$MESHNODE train partition --dataset fashion-mnist --parts 3 --alpha 0.5 --limit 9000 --seed 1 --output "$OUT/parts"
job=$($MESHNODE --repo "$A" --json train start --base fed-base --eval-dataset fashion-mnist --rounds 5 --min 3 \
	--secure --clip 10 --soft-deadline 1s --dataset "csv:$OUT/parts/part-00.csv" | sed -n 's/^  "id": "\(.*\)",$/\1/p')
echo "job $job"
for pair in "$B:part-01" "$C:part-02"; do
	repo=${pair%%:*}
	for _ in $(seq 100); do # the job reaches B and C by gossip within a few seconds
		if $MESHNODE --repo "$repo" train join "$job" --dataset "csv:$OUT/parts/${pair##*:}.csv" 2>/dev/null; then break; fi
		sleep 0.2
	done
done
$MESHNODE --repo "$A" train status "$job" --wait 5m --plot "$OUT/federated-accuracy.png"
echo "--- node C at the end (it holds the final version):"
$MESHNODE --repo "$C" train status "$job" --wait 1m | sed -n 1,3p # sed reads to the end: no SIGPIPE

step "11. The market: A sells its iris expert for 25 credits; C buys it; B, who did not pay, cannot fetch it"
$MESHNODE --repo "$A" market publish iris-for-sale --price 25 --licence "CC-BY-4.0"
iris_id=$($MESHNODE --repo "$A" expert list --json | grep -B1 '"name": "iris-for-sale"' | sed -n 's/^    "id": "\(.*\)",$/\1/p')
listing=""
for _ in $(seq 100); do # the listing reaches C by gossip
	listing=$($MESHNODE --repo "$C" market list --json | sed -n 's/^    "id": "\(.*\)",$/\1/p' | sed -n 1p)
	if [ -n "$listing" ]; then break; fi
	sleep 0.2
done
$MESHNODE --repo "$C" market list
$MESHNODE --repo "$C" market buy "$listing"
$MESHNODE --repo "$C" query --expert iris-for-sale --vector '[5.9, 3.0, 5.1, 1.8]'
echo "--- balances: A (seller), C (buyer)"
$MESHNODE --repo "$A" market balance
$MESHNODE --repo "$C" market balance
echo "--- B asks for the paid expert without a receipt (3 s timeout):"
if $MESHNODE --repo "$B" expert fetch "$iris_id" --timeout-ms 3000; then
	echo "demo: B fetched a paid expert without paying" >&2
	exit 1
fi

step "12. Node C's dashboard (open it in a browser while the daemons run; this demo stops them on exit)"
$MESHNODE --repo "$C" dashboard
if [ -n "${DEMO_KEEP_RUNNING:-}" ]; then
	echo "DEMO_KEEP_RUNNING is set: the three daemons keep running until you press Enter"
	read -r _
fi

step "Done. Repos are in $OUT/; try: $MESHNODE --repo $A query --expert fashion --input $OUT/samples/fashion-mnist-0000.png"
