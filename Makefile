# Rewind — build, test and run.
#
# Two commands set up and run everything on a fresh Debian machine:
#   make run    the main job
#   make test   the whole suite (installs what it needs first)

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s
BENCHTIME   ?= 1s

# Debian packages the project needs: flatc for `make generate`, Xvfb for the
# window tests, the X/GL runtime libraries an Ebiten window loads, and
# Chromium for the authority's debug page test (authority/ops).
DEB_PACKAGES := flatbuffers-compiler xvfb xauth libgl1 libgl1-mesa-dri \
	libx11-6 libxrandr2 libxcursor1 libxinerama1 libxi6 libxxf86vm1 libxext6 \
	chromium
# Commands the tests need that no Debian package provides: kubectl renders
# the Kubernetes and Agones manifests (deploy/). make deps fails, naming
# them, when one is missing.
TOOLS := kubectl

.PHONY: all deps build test check bench fuzz generate run demo-headless load cluster clean

all: build

## deps: install the Debian packages that are missing (a no-op when all are
## there), and check that the TOOLS are on the PATH.
deps:
	@DEB_PACKAGES="$(DEB_PACKAGES)" TOOLS="$(TOOLS)" sh scripts/deps.sh

## build: compile every package and command.
build:
	$(GO) build ./...

## test: the whole suite with the race detector, then the demo's full
## simulated matches held to the quality bars and the cluster's simulator
## properties over their full seed counts (500 seeds replicated, 200
## sharded, 100 with range moves, 3 × 50 against one store, 50 handed to
## a node that held nothing; without the race detector, which slows the
## simulator several times). Only cacheable flags are used,
## so Go reuses the result of every package whose code and test inputs did
## not change since it last passed (`go clean -testcache` forgets them).
test: deps
	$(GO) test -race -timeout 20m ./...
	$(GO) test -timeout 30m -run '^(TestMatchBars|TestClusterProperties|TestClusterSplit|TestClusterRejoinRace|TestShardedProperties|TestShardedMoves|TestShardedSingleStore|TestShardedHandoff)$$' ./demo-shooter/game/ ./authority/sim/

## check: formatting, vet, staticcheck, a tidy module, and the short
## suite in shuffled order (tests must not depend on each other's order).
check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	$(GO) test -short -shuffle=on -timeout 10m ./...

## bench: every benchmark, with allocation counts.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## fuzz: each fuzz target for FUZZTIME (default 10s), then the randomised
## property tests and the hostile-client suite over many more seeds (and,
## for the suite, longer attacks) than make test runs.
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) sh scripts/fuzz.sh
	$(GO) test -count=1 -run '^TestOrderIndependence$$' ./netcode/ -netcode.workloads=2000
	$(GO) test -count=1 -run '^(TestProperties|TestReconnects|TestClusterProperties|TestClusterSplit|TestClusterRejoinRace)$$' ./authority/sim/ -sim.seeds=2000
	$(GO) test -count=1 -run '^TestHostile$$' ./authority/internal/hostile/ -hostile.seeds=20 -hostile.attack=10s

## generate: regenerate the FlatBuffers Go code (needs flatc from `make deps`).
generate: deps
	$(GO) generate ./...

## run: the demo shooter: an authority on loopback, your client and 4 bots
## behind the mobile lag profile. It opens a window, so it needs a display
## (X11); without one it says so (try `xvfb-run -a make run`, or
## `make demo-headless`). The first build compiles Ebiten and GLFW (cgo)
## for a few minutes: -v names each package as it is compiled. The binary
## is built, then run (not `go run`, which exits 1 after Ctrl-C even when
## the program ended cleanly), so Ctrl-C ends make quietly.
run: deps
	@echo "make run: building the demo shooter; the first build takes a few minutes, each package is named as it compiles"
	$(GO) build -v -o bin/demo-shooter ./demo-shooter
	./bin/demo-shooter

## demo-headless: 16 bots play 60 s under broadband, mobile and awful with no
## window; the quality report is printed and written to docs/quality.json.
demo-headless: build
	$(GO) run ./demo-shooter -headless -bots 16 -duration 60s \
		-profiles broadband,mobile,awful -report docs/quality.json

## load: rewind-load's sweep: LOAD_PLAYERS simulated players (mobile lag,
## 30 inputs a second) against an authority on one core, 30 s measured
## each; the report and the plots go to docs/load (see docs/BENCHMARKS.md).
LOAD_PLAYERS ?= 100,250,500,1000
load:
	$(GO) build -o bin/rewind-load ./authority/cmd/rewind-load
	./bin/rewind-load -sweep $(LOAD_PLAYERS) -rate 30 -duration 30s -lag mobile \
		-report docs/load/load.json -plot docs/load \
		-commit "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

## cluster: three durable authorities on loopback as one cluster (UDP
## 7001-7003, gossip 7101-7103, operator pages on 9091-9093, data and logs
## under CLUSTER_DATA, default /tmp/rewind-cluster); Ctrl-C stops them.
cluster:
	@GO=$(GO) sh scripts/cluster.sh

clean:
	$(GO) clean -testcache
