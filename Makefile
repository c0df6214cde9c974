# outbound: build, test and run targets.
#
# `make test` is the project's test command: scripts/with-services installs (when
# needed) and starts a real Apache Kafka broker, a redis-server and a three-master
# Redis Cluster on free loopback ports, runs vet and the tests against them (see
# internal/testenv), and always stops them afterwards. The whole suite runs on the
# single node, then the suites in CLUSTER_PKGS again on the cluster, and the
# end-to-end suite (./cmd/outbound) again on the cluster with every Kafka client
# on the broker's SASL_SSL listener (SCRAM-SHA-512): one extra pass shows both
# that the workers keep their promises on a cluster and over authenticated Kafka.

GO ?= go
WITH_SERVICES := bash scripts/with-services
# The suites that isolate their keys by testenv.KeyPrefix, as the cluster needs.
CLUSTER_PKGS := ./windowing ./sink ./processor ./control ./internal/webhooklog ./internal/console

.PHONY: all test build lint vulncheck demo bench bench-quick chaos services kafka-install redis-install chromium-install clean

all: build

test:
	$(WITH_SERVICES) sh -c '$(GO) vet ./... && $(GO) test -race -count=1 -timeout 25m ./... && \
		OUTBOUND_TEST_REDIS=cluster $(GO) test -race -count=1 -timeout 10m $(CLUSTER_PKGS) && \
		OUTBOUND_TEST_REDIS=cluster OUTBOUND_TEST_KAFKA=sasl $(GO) test -race -count=1 -timeout 15m ./cmd/outbound'

build:
	$(GO) build -o bin/outbound ./cmd/outbound

# gofmt, go vet, and go.mod as `go mod tidy` leaves it with no direct dependency
# marked // indirect (scripts/lint.sh says what each check means).
lint:
	GO=$(GO) bash scripts/lint.sh

# govulncheck v1.9.0 on ./..., against a database built offline from the pinned
# golang.org/x/vulndb module (cached under .cache/vulndb/). Fails on called
# vulnerabilities in required modules; stdlib ones are printed (scripts/vulncheck.sh).
vulncheck:
	GO=$(GO) bash scripts/vulncheck.sh

# Each fuzz target for a while (go test -fuzz takes one package and one target per
# run). The budget is a count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a clean run with "context deadline exceeded" when the time
# is up (golang/go#75804). FUZZTIME=30s runs longer, by the clock.
.PHONY: fuzz
FUZZTIME ?= 20000x
FUZZ_TARGETS := schemas:FuzzParseJSON schemas:FuzzDecodeEvent schemas:FuzzDecodeEventMatchesSchema \
	schemas:FuzzDecodeControl \
	control:FuzzApply sink:FuzzRender \
	windowing:FuzzMessageCodec windowing:FuzzDetailsCodec windowing:FuzzDecodeStored
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(GO) test ./$${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME); \
	done

demo:
	$(GO) run ./cmd/outbound-demo

# Both binaries are built before the services start: the bench runs the worker
# binary itself, bin/outbound, as its `outbound worker` subprocesses. A quick run
# writes its own JSON so that it never replaces the full run's
# bench/results/latest.json.
bench: build
	$(GO) build -o bin/outbound-bench ./cmd/outbound-bench
	$(WITH_SERVICES) bin/outbound-bench --worker-binary bin/outbound --out bench/results/latest.json

bench-quick: build
	$(GO) build -o bin/outbound-bench ./cmd/outbound-bench
	$(WITH_SERVICES) bin/outbound-bench --worker-binary bin/outbound --quick --out bench/results/latest-quick.json

# Three `outbound worker` processes on a Kafka broker and a redis-server of the
# harness's own, under worker kills, a freeze, a receiver outage and restarts of
# both services; fails on any lost, duplicated or out-of-order message
# (internal/chaos; docs/reliability.md quotes a run).
chaos:
	$(GO) build -o bin/outbound ./cmd/outbound
	$(GO) run ./cmd/outbound-chaos --worker bin/outbound

# An interactive shell with Kafka and redis-server running and
# OUTBOUND_TEST_KAFKA_BROKERS / OUTBOUND_TEST_REDIS_ADDR set; exit it to stop them.
services:
	$(WITH_SERVICES) bash -i

kafka-install:
	bash scripts/kafka.sh install

redis-install:
	bash scripts/redis.sh install

# Debian's chromium, which the console's browser tests drive headless.
chromium-install:
	bash scripts/chromium.sh install

clean:
	rm -rf bin/
