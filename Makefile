# chaosd / chaosctl — see README.md. Longer logic lives in hack/.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test demo demo-kube lab-up lab-down lint bench deps clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/chaosd ./cmd/chaosctl ./lab/cmd/petclinic ./lab/cmd/loadgen ./lab/cmd/cadvisor ./lab/cmd/alertsink ./lab/cmd/chaoslab

deps:
	hack/deps.sh

test: deps build
	hack/test.sh

demo: deps build
	hack/demo.sh

demo-kube: deps build
	hack/demo.sh --kube

lab-up: deps build
	$(BIN)/chaoslab up --bin-dir $(BIN) --experiments-dir experiments/library

lab-down:
	@if [ -x $(BIN)/chaoslab ]; then $(BIN)/chaoslab down; else $(GO) run ./lab/cmd/chaoslab down; fi

lint:
	hack/lint.sh

bench: deps build
	hack/bench.sh

clean:
	rm -rf $(BIN)
