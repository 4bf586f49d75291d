# SPDX-License-Identifier: MIT
#
# kvmig - one non-recursive Makefile. Each folder adds its objects through
# its module.mk (LIB_OBJS, UNIT_TESTS, FUZZ_TARGETS, BENCHES, ...).
#
#   make            build kvmigd, kvmig and the guests
#   make test       unit + KVM + end-to-end tests (installs deps when missing)
#   make demo       the demo of the README
#   make demo-hosts the same across two namespaced hosts, with --announce
#   make test-long  make test with the longer matrix (KVMIG_LONG=1)
#   make asan       everything under ASan+UBSan into build-asan/, then tests
#   make tsan       everything under TSan into build-tsan/, then the unit and KVM tests
#   make deps       install missing Debian -dev packages
#   make install    kvmig, kvmigd, the systemd unit, man pages (PREFIX=/usr/local,
#                   DESTDIR, BINDIR, SYSCONFDIR=/etc, ...: tools/module.mk); make uninstall
#   knobs: O=<builddir> SANITIZER=address|thread WERROR=0 V=1

O ?= build
# make's built-in default is cc; the gcc-only warnings below need the name
ifeq ($(origin CC),default)
CC := gcc
endif
V ?= 0
WERROR ?= 1
SANITIZER ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := libssh2 openssl liblz4 libzstd jansson
DEB_PKGS := libssh2-1-dev libssl-dev liblz4-dev libzstd-dev libjansson-dev libcmocka-dev pkg-config jq \
	openssh-server openssh-client iproute2 tcpdump openssl python3

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wold-style-definition -Wpointer-arith -Wcast-qual \
	-Wwrite-strings -Wformat=2 -Wformat-security -Wundef -Wvla -Wswitch-enum \
	-Wimplicit-fallthrough -Wnull-dereference -Wredundant-decls -Winit-self \
	-Wfloat-equal
ifeq ($(findstring gcc,$(notdir $(CC))),gcc)
WARN += -Wduplicated-cond -Wduplicated-branches -Wlogical-op -Wjump-misses-init
endif
ifeq ($(WERROR),1)
WARN += -Werror
endif

CPPFLAGS := -I. -D_GNU_SOURCE -MMD -MP
CFLAGS := -std=c11 -g -fno-common $(WARN)
LDFLAGS :=

ifeq ($(SANITIZER),address)
CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZER),thread)
CFLAGS += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
else
CFLAGS += -O2 -fstack-protector-strong -fno-omit-frame-pointer
CPPFLAGS += -D_FORTIFY_SOURCE=2
endif

HAVE_PKGS := $(shell pkg-config --exists $(PKGS) cmocka 2>/dev/null && echo 1)
ifeq ($(HAVE_PKGS),1)
CPPFLAGS += $(shell pkg-config --cflags $(PKGS))
LIBS := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)
else
LIBS := -lssh2 -lssl -lcrypto -llz4 -lzstd -ljansson -lpthread -lm
CMOCKA_LIBS := -lcmocka
endif

LIB := $(O)/libkvmig.a
LIB_OBJS :=
PROGS :=
UNIT_TESTS :=
KVM_TESTS :=
FUZZ_TARGETS :=
BENCHES :=
GUESTS :=

all: build-all

include $(wildcard common/module.mk vm/module.mk dirtylog/module.mk protocol/module.mk protocol/stream.mk \
	migrate/module.mk tools/module.mk tests/module.mk bench/module.mk bench/e2e.mk)

build-all: $(PROGS) $(UNIT_TESTS) $(KVM_TESTS) $(BENCHES) $(FUZZ_REPLAY)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

deps:
	@tools/deps.sh $(DEB_PKGS)

# Tests: tests/run.sh counts passes, failures and skips (exit 77) and prints
# "N passed, N failed, N skipped".
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh --build $(O)

test-long: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KVMIG_LONG=1 KVMIG_TEST_TIMEOUT=1800 KVMIG_VMHOST_TIMEOUT=5400 tests/run.sh --build $(O)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(O)

# the demo across two hosts: network namespaces on a bridge (tests/netbed.sh), --announce
demo-hosts: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo-hosts.sh $(O)

asan: deps
	$(Q)$(MAKE) --no-print-directory O=build-asan SANITIZER=address all
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		tests/run.sh --build build-asan

# The threaded code (vCPU threads, throttle timer, lanes, uffd) under TSan:
# a report fails the test (exit 66). The e2e scripts stay out: they time the
# agents, which TSan slows 5-15x.
tsan: deps
	$(Q)$(MAKE) --no-print-directory O=build-tsan SANITIZER=thread all
	$(Q)TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $${TSAN_OPTIONS:-}" \
		tests/run.sh --build build-tsan unit/ kvm/

bench: all
	$(Q)bench/run.sh $(O)

clean:
	rm -rf $(O) build-asan build-tsan build-fuzz

.PHONY: all build-all deps test test-long demo demo-hosts asan tsan bench clean

-include $(shell find $(O) -name '*.d' 2>/dev/null)
.SECONDARY:
