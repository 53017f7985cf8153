# vqtap: the two commands a user types are `make demo` and `make test`.
# Both install the Debian packages they need (as root) or print the apt-get line to run.

SWIFT      ?= swift
BUILD_DEBS := libpcap-dev libncurses-dev pkg-config
TEST_DEBS  := $(BUILD_DEBS) mandoc tmux tshark qemu-system-x86 qemu-utils socat cpio kmod
VQTAP      := .build/release/vqtap

.PHONY: all deps test-deps build release demo test lint man-lint bench clean

all: build

deps:
	@scripts/ensure-debs $(BUILD_DEBS)

test-deps:
	@scripts/ensure-debs $(TEST_DEBS)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The main job: the live view on a busy simulated disk (Ctrl-C or q ends it).
demo: release
	@$(VQTAP) demo

test: test-deps lint man-lint
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip QEMUIntegrationTests
	@# The real guest takes both cores (QEMU on one, a busy tap on the other): alone, so that
	@# it neither starves the timing-sensitive simulator tests nor is starved by them. The tap
	@# there is the release build, as users run it: its completeness is the one reported.
	$(SWIFT) build -c release --product vqtap
	VQTAP_RELEASE_BINARY=$(CURDIR)/$(VQTAP) $(SWIFT) test --skip-build --filter QEMUIntegrationTests

lint:
	@scripts/lint-sources

man-lint: test-deps
	@out=$$(mandoc -Tlint -W warning man/*.[0-9] 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; echo "man: mandoc -Tlint reported the above" >&2; exit 1; fi

# Benchmarks (release builds; each script prints a markdown table for the README).
bench: deps
	@for b in benchmarks/*; do echo "== $$b"; "$$b" || exit 1; done

clean:
	rm -rf .build
