# Unit tests: tests/unit/test_<module>.c, one cmocka program each. A folder's
# module.mk adds its tests with UNIT_TESTS += $(O)/tests/unit/test_<module>.
# KVM tests (tests/kvm/*.c) exit 77 when /dev/kvm is missing.
# tests/vmhost/kvm_probe: tests/run.sh runs its guests to a known exit to
# decide whether the KVM tests run natively or in the QEMU-TCG VM. Static
# and never sanitized, so it runs in that VM too and in every build dir.
# Fuzz targets: tests/fuzz/<target>.c defining LLVMFuzzerTestOneInput; added
# with FUZZ_TARGETS += <target>. With gcc each is linked against
# tests/fuzz/regression_driver.c into $(O)/tests/fuzz/<target>-replay, which
# replays tests/fuzz/corpus/<target>/; `make fuzz` builds libFuzzer binaries
# with clang into build-fuzz/, `make fuzz-run T=<target> SECS=60` runs one.

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS) $(CMOCKA_LIBS)

$(O)/tests/kvm/%: $(O)/tests/kvm/%.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS) $(CMOCKA_LIBS)

PROGS += $(O)/tests/vmhost/kvm_probe

$(O)/tests/vmhost/kvm_probe: tests/vmhost/kvm_probe.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC LD   $@"
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -static -pthread \
		-o $@ $<

FUZZ_REPLAY = $(patsubst %,$(O)/tests/fuzz/%-replay,$(FUZZ_TARGETS))

$(O)/tests/fuzz/%-replay: $(O)/tests/fuzz/%.o $(O)/tests/fuzz/regression_driver.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(O)/tests/fuzz/regression_driver.o $(LIB) $(LIBS)

FUZZ_CC ?= clang
FUZZ_FLAGS := -std=c11 -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_SRCS = $(wildcard $(patsubst $(O)/%.o,%.c,$(LIB_OBJS)))
FUZZ_LIB := build-fuzz/libkvmig-fuzz.a

# The library's C sources go into an archive, so each target links only the
# objects it uses (generated sources such as vm/guests/blobs.S stay out).
fuzz:
	@mkdir -p build-fuzz/obj
	$(Q)rm -f $(FUZZ_LIB)
	$(Q)for s in $(FUZZ_LIB_SRCS); do \
		o=build-fuzz/obj/$$(echo $$s | tr / _ | sed 's/\.c$$/.o/'); \
		$(FUZZ_CC) $(FUZZ_FLAGS) -c -o $$o $$s && ar rcs $(FUZZ_LIB) $$o || exit 1; \
	done
	$(Q)for t in $(FUZZ_TARGETS); do \
		echo "  FUZZ    $$t"; \
		$(FUZZ_CC) $(FUZZ_FLAGS) -o build-fuzz/$$t tests/fuzz/$$t.c $(FUZZ_LIB) $(LIBS) || exit 1; \
	done

T ?=
SECS ?= 60
fuzz-run:
	@[ -x build-fuzz/$(T) ] || $(MAKE) --no-print-directory fuzz
	@mkdir -p build-fuzz/corpus-$(T)
	build-fuzz/$(T) -max_total_time=$(SECS) -max_len=16384 build-fuzz/corpus-$(T) tests/fuzz/corpus/$(T)

.PHONY: fuzz fuzz-run

print-fuzz-targets:
	@echo $(FUZZ_TARGETS)

.PHONY: print-fuzz-targets
