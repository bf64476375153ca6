# tracegate: two commands on a fresh Debian 12 machine, as root.
#   make run   installs what is missing, builds, starts the demo ePRO services and the gateway
#   make test  installs what is missing, builds (plain and sanitizer), runs every test
#   make lint  clang-format, include layers and clang-tidy (tools/lint/); make format fixes the first
#   make fuzz  runs each libFuzzer harness of tests/fuzz/ for FUZZ_SECONDS (make test: a few each)
#   make soak  the long kill -9 soak of durable routes (200 kills; minutes)
#   make soak-stream  SOAK_MIB each way through the gateway (default 1 GiB), RSS watched
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
SOAK_MIB   ?= 1024
READ_SECONDS ?= 20
CONF       ?= conf/tracegate.json
PORT       ?= 8080
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

DEB_PACKAGES := build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev \
	libjansson-dev uuid-dev libssl-dev libcjose-dev libgnutls28-dev libsqlite3-dev \
	libcriterion-dev curl openssl
# What the tests use beside the build: promtool (in Debian's prometheus package) checks /metrics;
# python3-yaml reads the manifests for tools/deploy/check.py; kubectl (Debian's kubernetes-client,
# unless a kubectl is there already) renders deploy/kubernetes.
TEST_PACKAGES := prometheus python3 python3-yaml
# Debian 12's are LLVM 14, the version .clang-format and .clang-tidy are written for.
LINT_PACKAGES := clang-format clang-tidy
# libFuzzer comes with clang's runtime libraries.
FUZZ_PACKAGES := clang libclang-rt-14-dev

.PHONY: all deps test-deps kubectl-deps lint-deps fuzz-deps build configure asan fuzz-build run \
	test test-plain test-asan test-fuzz fuzz lint format check-conf bench soak soak-stream clean

all: build

# $(call install_missing,PACKAGES): apt-get installs those of PACKAGES dpkg does not have.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

test-deps:
	$(call install_missing,$(TEST_PACKAGES))
	@command -v kubectl >/dev/null 2>&1 || $(MAKE) --no-print-directory kubectl-deps

kubectl-deps:
	$(call install_missing,kubernetes-client)

lint-deps:
	$(call install_missing,$(LINT_PACKAGES))

fuzz-deps:
	$(call install_missing,$(FUZZ_PACKAGES))

# Writes $(BUILD)/compile_commands.json too, which clang-tidy reads.
configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz-build: deps fuzz-deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTG_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

run: build
	BUILD=$(BUILD) CONF=$(CONF) PORT=$(PORT) docker/demo.sh

check-conf: build
	$(BUILD)/tracegate --check -c $(CONF)

test: test-plain test-asan test-fuzz

test-plain: build test-deps
	ctest --test-dir $(BUILD) --output-on-failure

test-asan: asan test-deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

# Each harness a few seconds from its seed corpus, under ASan+UBSan: a crash fails the run.
test-fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) 5

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The layer checker's own test, then format, layers and clang-tidy. Every step runs; the target
# fails if any step did. clang-tidy needs cmake's compile database, not a build.
LINT_STEPS := test_layers format layers tidy events
lint: configure lint-deps
	@failed=""; for step in $(LINT_STEPS); do \
	  echo "== tools/lint/$$step.sh"; \
	  BUILD=$(BUILD) JOBS=$(JOBS) tools/lint/$$step.sh || failed="$$failed $$step"; \
	done; \
	if [ -n "$$failed" ]; then echo "make lint: failed:$$failed" >&2; exit 1; fi

format: lint-deps
	tools/lint/format.sh --fix

bench: build
	bench/run.sh

# The durable suite's long kill -9 soak (tests/integration/test_durable_crash.c); every
# `make test` runs the bounded one.
soak: build
	TG_SOAK=long $(BUILD)/integration_tests --jobs 1 --filter 'durable_crash/long_kill_9_soak'

# Streaming at size (bench/stream_soak.sh): not in `make test`; CI runs a short one.
soak-stream: build
	SOAK_MIB=$(SOAK_MIB) READ_SECONDS=$(READ_SECONDS) TRACEGATE=$(BUILD)/tracegate bench/stream_soak.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
