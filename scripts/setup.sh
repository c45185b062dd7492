#!/usr/bin/env bash
# Installs what meshnode's tests, benchmarks and demo need on a fresh Debian machine:
# Go modules, Fashion-MNIST (dataset-fashion-mnist), scikit-learn's CSV data sets (extracted
# from the python3-sklearn package; its Python dependencies are not needed) and chromium for
# the dashboard's headless browser test, and Debian's word lists (wamerican, wfrench, wngerman,
# wspanish) for the language benchmark suite, and iptables for internal/netlab's network lab
# (its tests also need root, ip and tc, which Debian ships by default). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SKLEARN_DIR=${MESHNODE_SKLEARN_DATA:-/usr/local/share/meshnode/sklearn}
FMNIST_DIR=${MESHNODE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_update_once() {
	if [ -z "$apt_updated" ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
}

if [ ! -f "$FMNIST_DIR/t10k-labels-idx1-ubyte.gz" ]; then
	echo "setup: installing dataset-fashion-mnist"
	apt_update_once
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

if [ ! -f "$SKLEARN_DIR/iris.csv" ] && [ ! -f /usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv ]; then
	echo "setup: extracting scikit-learn's CSV data sets to $SKLEARN_DIR"
	apt_update_once
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download python3-sklearn >/dev/null)
	dpkg-deb -x "$tmp"/python3-sklearn_*.deb "$tmp/x"
	as_root mkdir -p "$SKLEARN_DIR"
	as_root cp "$tmp"/x/usr/lib/python3/dist-packages/sklearn/datasets/data/*.csv* "$SKLEARN_DIR"/
fi

DICT_DIR=/usr/share/dict
if [ ! -f "$DICT_DIR/american-english" ] || [ ! -f "$DICT_DIR/french" ] || [ ! -f "$DICT_DIR/ngerman" ] || [ ! -f "$DICT_DIR/spanish" ]; then
	echo "setup: installing word lists wamerican, wfrench, wngerman, wspanish (the language benchmark suite)"
	apt_update_once
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wamerican wfrench wngerman wspanish >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
	echo "setup: installing chromium (the dashboard's browser test drives it headless)"
	apt_update_once
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x /usr/sbin/iptables ]; then
	echo "setup: installing iptables (internal/netlab shapes and NATs its namespaces with it)"
	apt_update_once
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
fi

go mod download
echo "setup: ready (Fashion-MNIST in $FMNIST_DIR, scikit-learn CSVs found, word lists in $DICT_DIR)"
