# meshnode — see README.md.
GO       ?= go
BIN      := bin
PKGS     := ./...
GOTEST   ?= $(GO) test
STATICCHECK_VERSION := v0.8.2

.PHONY: lab bench-network bench-scale all setup build test lint fuzz bench bench-ledger security demo clean

all: build

setup:
	bash scripts/setup.sh

build:
	$(GO) build -o $(BIN)/meshnode ./cmd/meshnode
	$(GO) build -o $(BIN)/kimi-analyzer ./cmd/kimi-analyzer

# The README's test command: set-up, static checks, every test (unit, fuzz seeds, end to end).
test: setup lint staticcheck
	$(GOTEST) -count=1 -timeout 15m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

# Each fuzz target for FUZZTIME (new inputs land in the packages' testdata/fuzz).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzDecode$$ -fuzztime $(FUZZTIME) ./experts/safetensors/
	$(GO) test -run XXX -fuzz FuzzReadHeader -fuzztime $(FUZZTIME) ./experts/safetensors/
	$(GO) test -run XXX -fuzz FuzzDecodeManifest -fuzztime $(FUZZTIME) ./experts/
	$(GO) test -run XXX -fuzz FuzzReadIDX -fuzztime $(FUZZTIME) ./experts/dataset/
	$(GO) test -run XXX -fuzz FuzzReadSklearnCSV -fuzztime $(FUZZTIME) ./experts/dataset/
	$(GO) test -run XXX -fuzz FuzzParseIndex -fuzztime $(FUZZTIME) ./distill/checkpoint/
	$(GO) test -run XXX -fuzz FuzzParseConfig -fuzztime $(FUZZTIME) ./distill/checkpoint/
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./mesh/advert/
	$(GO) test -run XXX -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME) ./routing/
	$(GO) test -run XXX -fuzz FuzzReadFrame -fuzztime $(FUZZTIME) ./mesh/rpc/
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./market/ledger/
	$(GO) test -run XXX -fuzz FuzzDecodeListing -fuzztime $(FUZZTIME) ./market/listing/
	$(GO) test -run XXX -fuzz FuzzDecodeMessage -fuzztime $(FUZZTIME) ./market/listing/
	$(GO) test -run XXX -fuzz FuzzDecodePurchaseRequest -fuzztime $(FUZZTIME) ./market/listing/
	$(GO) test -run XXX -fuzz FuzzDecodeSync -fuzztime $(FUZZTIME) ./market/listing/
	$(GO) test -run XXX -fuzz FuzzReadUserSuite -fuzztime $(FUZZTIME) ./experts/dataset/
	$(GO) test -run XXX -fuzz FuzzParseSpec -fuzztime $(FUZZTIME) ./distill/kd/
	$(GO) test -run XXX -fuzz FuzzParseAnswer -fuzztime $(FUZZTIME) ./distill/kd/
	$(GO) test -run XXX -fuzz FuzzDecodeUpdate -fuzztime $(FUZZTIME) ./distill/federated/fedjob/
	$(GO) test -run XXX -fuzz FuzzDecodeAnnouncement -fuzztime $(FUZZTIME) ./distill/federated/fedjob/
	$(GO) test -run XXX -fuzz FuzzDecodePull -fuzztime $(FUZZTIME) ./mesh/

# Benchmarks; tables go to bench/results/.
bench: setup
	bash bench/experts.sh

# The ledger's benchmarks (add, closure, sync of a 20,000-entry book).
bench-ledger:
	bash bench/ledger.sh

# Discovery at scale: N = 100, 300 and 1,000 mesh nodes in one process (SIZES to choose), with
# churn and queries; writes bench/results/scale.md and scale.png.
bench-scale:
	bash bench/scale.sh

# The network lab's tests (as root: namespaces, NAT, delay, loss, partitions), with their logs.
lab: setup
	$(GO) test -count=1 -v -timeout 20m -run '^TestLab' ./integration/

# The mesh over the lab's links: latency against RTT, hedging at loss, a shaped 64 MiB fetch,
# hole punching per NAT behaviour; writes bench/results/network.md.
bench-network: setup
	MESHNODE_LAB_BENCH=$(CURDIR)/bench/results/network.md $(GO) test -count=1 -v -timeout 60m -run '^TestLabNetworkBench$$' ./integration/

# The adversary suite against a daemon process; one row per attack.
security: setup
	MESHNODE_SECURITY_REPORT=$(CURDIR)/bench/results/security.md $(GO) test -count=1 -v -run TestHostilePeer ./integration/

demo: setup build
	bash scripts/demo.sh

clean:
	rm -rf $(BIN) demo-out
