# logpipe: build, test, run and measure. `make help` lists the targets.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/logpipe/logpipe/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Test packages run one or two at a time: the machine has 2 cores and the suites
# start real brokers, etcd servers and client processes.
TESTFLAGS ?= -count=1 -timeout 15m -p 2

.PHONY: all build test test-race run bench fuzz lint fmt clean help

all: build

help:
	@echo "make build   - build bin/broker, bin/logagent, bin/logtransfer, bin/logpipectl"
	@echo "make test    - go vet, then every test"
	@echo "make run     - the whole pipeline on this machine (embedded etcd, broker, file output)"
	@echo "make bench   - the benchmark suite; writes bench/RESULTS.md, bench/RESULTS.svg and the README table"
	@echo "make fuzz    - run each fuzz target for FUZZTIME (default 30s)"
	@echo "make lint    - gofmt and staticcheck"
	@echo "make clean   - remove bin/ and data/"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/broker ./cmd/logagent ./cmd/logtransfer ./cmd/logpipectl

test:
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

test-race:
	$(GO) test -race $(TESTFLAGS) ./...

run: build
	$(GO) build -o $(BIN)/devrun ./cmd/devrun
	./$(BIN)/devrun

bench: build
	$(GO) run ./bench

FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) data
