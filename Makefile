# drover — see README.md. Every target is a line or two; the work lives in go and scripts/.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
EXAMPLES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/*/main.go))))

.PHONY: build run test test-short bench fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/drover ./cmd/drover
	@for e in $(EXAMPLES); do $(GO) build -o bin/$$e ./examples/$$e || exit 1; done

run: build
	bin/drover start -c examples/hello.yaml

test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -race -short ./...

bench: build
	scripts/bench/echo.sh
	scripts/bench/http.sh

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
