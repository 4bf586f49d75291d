# vm/: the VMM and its guests. Guests are assembled as flat binaries linked
# at GUEST_CODE_GPA and embedded through build/vm/guests/blobs.S.
GUESTS := idle seqdirty randdirty memcheck

LIB_OBJS += $(O)/vm/vm.o $(O)/vm/guest.o $(O)/vm/state.o $(O)/vm/ramwalk.o $(O)/vm/cpucheck.o \
	$(O)/vm/guests/blobs.o $(O)/common/crc32c.o

GUEST_BINS := $(patsubst %,$(O)/vm/guests/%.bin,$(GUESTS))

$(O)/vm/guests/%.elf: vm/guests/%.S vm/guests/common.S vm/guest_abi.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  GUEST   $<"
	$(Q)$(CC) -c -I. -Ivm/guests -o $(@:.elf=.o) $<
	$(Q)ld -nostdlib -static -Ttext=0x100000 -e _start -o $@ $(@:.elf=.o)

$(O)/vm/guests/%.bin: $(O)/vm/guests/%.elf
	$(Q)objcopy -O binary -j .text $< $@
	@sz=$$(stat -c %s $@); [ $$sz -le 65536 ] || { echo "$@: $$sz bytes, over GUEST_CODE_MAX"; exit 1; }

$(O)/vm/guests/blobs.S: $(GUEST_BINS) vm/module.mk
	@mkdir -p $(dir $@)
	$(Q){ echo '	.section .rodata'; \
	  for g in $(GUESTS); do \
	    echo "	.globl guest_blob_$$g, guest_blob_$${g}_end"; \
	    echo "	.balign 16"; \
	    echo "guest_blob_$$g: .incbin \"$(O)/vm/guests/$$g.bin\""; \
	    echo "guest_blob_$${g}_end:"; \
	  done; \
	  echo '	.section .note.GNU-stack,"",@progbits'; } > $@

$(O)/vm/guests/blobs.o: $(O)/vm/guests/blobs.S
	$(Q)$(CC) -c -o $@ $<
UNIT_TESTS += $(O)/tests/unit/test_state $(O)/tests/unit/test_parse $(O)/tests/unit/test_ramwalk \
	$(O)/tests/unit/test_cpucheck
KVM_TESTS += $(O)/tests/kvm/test_vm
