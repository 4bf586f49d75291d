# tools/: the agent (kvmigd), the CLI (kvmig) and the control API they share
# (tools/API.md). control.o and registry.o go into the library so the unit
# tests link them like everything else.
LIB_OBJS += $(O)/tools/control.o $(O)/tools/registry.o
PROGS += $(O)/kvmigd $(O)/kvmig
UNIT_TESTS += $(O)/tests/unit/test_control

$(O)/kvmigd: $(O)/tools/kvmigd.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(O)/kvmig: $(O)/tools/kvmig.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)
