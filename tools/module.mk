# tools/: the agent (kvmigd), the CLI (kvmig) and the control API they share
# (tools/API.md). control, registry and jobs go into the library so the unit tests
# link them like everything else. The migration listener is protocol/channel's.
LIB_OBJS += $(O)/tools/control.o $(O)/tools/registry.o $(O)/tools/jobs.o
PROGS += $(O)/kvmigd $(O)/kvmig
UNIT_TESTS += $(O)/tests/unit/test_control $(O)/tests/unit/test_jobs \
	$(O)/tests/unit/test_registry

$(O)/kvmigd: $(O)/tools/kvmigd.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(O)/kvmig: $(O)/tools/kvmig.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)
