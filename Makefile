# drover — see README.md. Every target is a line or two; the work lives in go and scripts/.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
EXAMPLES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/*/main.go))))

.PHONY: build php-ext run run-php test test-php test-short check-unit bench fuzz outdated deps clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/drover ./cmd/drover
	@for e in $(EXAMPLES); do $(GO) build -o bin/$$e ./examples/$$e || exit 1; done

run: build
	bin/drover start -c examples/hello.yaml

# drover's PHP extension (worker/php/ext): the PHP SDK's per-request path in
# C, loaded by the examples' workers (PHP_INI_SCAN_DIR). Needs PHP's headers
# (apt-get install php-dev); without them PHP workers run the pure-PHP SDK.
php-ext:
	@REQUIRE=$${CI:+1} scripts/php-ext.sh

# The same with two resident PHP workers (examples/php/hello.php) on :8082.
run-php: build php-ext
	bin/drover start -c examples/php/hello.yaml

test: build test-php check-unit
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# The PHP SDK's own tests (Debian: apt-get install phpunit php-cli php-msgpack
# php-symfony-framework-bundle php-symfony-runtime libatomic1; bash .ci/run installs
# all), under scripts/shmhost, which gives them the shared tables they test
# (Drover\Table, tests/TableTest.php). They run twice: with drover's PHP
# extension loaded (make php-ext; on CI it must build) and without it.
SHMHOST_TABLES := -table 'cache:1000:value=string(256),hits=int,updated=float' \
	-table 'small:3:s=string(4)' -table 'big:16384:s=string(1024)' -atomic requests -atomic flag
test-php: php-ext
	@command -v phpunit >/dev/null || { echo "phpunit is not installed: apt-get install phpunit php-cli php-msgpack (bash .ci/run installs what the tests need)"; exit 1; }
	$(GO) build -o bin/shmhost ./scripts/shmhost
	cd worker/php && ../../bin/shmhost $(SHMHOST_TABLES) -- phpunit
	@if [ -f bin/php-ext/drover.so ]; then echo "PHPUnit with drover's PHP extension:"; \
		cd worker/php && PHP_INI_SCAN_DIR=:$(CURDIR)/bin/php-ext DROVER_TEST_NATIVE=1 ../../bin/shmhost $(SHMHOST_TABLES) -- phpunit; fi

# The systemd unit (deploy/systemd/drover.service): systemd-analyze verify,
# the copy in docs/operations.md, a start and stop as the unit runs drover.
check-unit: build
	scripts/check-unit.sh

test-short:
	$(GO) test -race -short ./...

bench: build
	scripts/bench/echo.sh
	scripts/bench/http.sh
	scripts/bench/php.sh
	scripts/bench/pool.sh

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# Dependencies with a newer version (in brackets); update with
# go get -u ./... && go mod tidy, then go test -race ./... . govulncheck
# (go run golang.org/x/vuln/cmd/govulncheck@latest ./...) needs its database online.
outdated deps:
	$(GO) list -m -u all | grep '\[' || echo "every module is at its newest version"

clean:
	rm -rf bin
