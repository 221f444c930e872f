# Piazza developer tasks. Go workspace: always name ./pkg/... ./services/...
# (`go build ./...` does not work at the workspace root).
#
#   make run   [ARGS="-flag ..."]   start PostgreSQL if needed, run the server on :8080
#   make test  [TESTFLAGS="-run X"] start PostgreSQL if needed, go test -race
#   make build | vet | bench | clean
#   make bench [LOADFLAGS="-n 5000"]  micro-benchmarks, then a short load-harness run
#              (docs/benchmarks.md has the full harness commands)
#
# PostgreSQL comes from scripts/dev-postgres.sh, which prints a DATABASE_URL
# (or passes through an already set DATABASE_URL).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Go lives at /usr/local/go/bin on our machines; it may not be on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := $(PATH):/usr/local/go/bin
endif

GO        ?= go
PKGS      := ./pkg/... ./services/...
ARGS      ?=
TESTFLAGS ?=
BENCH     ?= .
DBSCRIPT  := scripts/dev-postgres.sh
# The short harness run of make bench (about a minute); full runs: docs/benchmarks.md.
LOADFLAGS ?= -n 2000 -duration 5s

.PHONY: all run test build vet bench clean

all: build

run:
	url="$$($(DBSCRIPT))"; \
	DATABASE_URL="$$url" $(GO) run ./services/cmd/piazza $(ARGS)

test:
	url="$$($(DBSCRIPT))"; \
	DATABASE_URL="$$url" PIAZZA_TEST_DATABASE_URL="$$url" \
		$(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)

build:
	$(GO) build -o bin/piazza ./services/cmd/piazza
	$(GO) build -o bin/piazza-load ./services/cmd/piazza-load

vet:
	$(GO) vet $(PKGS)

bench:
	url="$$($(DBSCRIPT))"; \
	DATABASE_URL="$$url" PIAZZA_TEST_DATABASE_URL="$$url" \
		$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem $(PKGS); \
	$(GO) build -o bin/piazza ./services/cmd/piazza; \
	$(GO) build -o bin/piazza-load ./services/cmd/piazza-load; \
	DATABASE_URL="$$url" bin/piazza-load bench -piazza bin/piazza $(LOADFLAGS)

clean:
	rm -rf bin
