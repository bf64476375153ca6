# tracegate: two commands on a fresh Debian 12 machine, as root.
#   make run   installs what is missing, builds, starts the demo ePRO services and the gateway
#   make test  installs what is missing, builds (plain and sanitizer), runs every test
BUILD      ?= build
ASAN_BUILD ?= build-asan
CONF       ?= conf/tracegate.json
PORT       ?= 8080
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

DEB_PACKAGES := build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev \
	libjansson-dev uuid-dev libcriterion-dev curl openssl

.PHONY: all deps build asan run test test-plain test-asan check-conf bench clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	BUILD=$(BUILD) CONF=$(CONF) PORT=$(PORT) docker/demo.sh

check-conf: build
	$(BUILD)/tracegate --check -c $(CONF)

test: test-plain test-asan

test-plain: build
	ctest --test-dir $(BUILD) --output-on-failure

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
