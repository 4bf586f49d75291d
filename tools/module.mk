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

# The CLI: main and the command table, the helpers its commands share,
# one object per command group. Nothing of it goes into the library.
KVMIG_OBJS := $(O)/tools/kvmig.o $(O)/tools/cli.o $(O)/tools/cmd_vm.o \
	$(O)/tools/cmd_migrate.o $(O)/tools/cmd_agent.o

$(O)/kvmig: $(KVMIG_OBJS) $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(KVMIG_OBJS) $(LIB) $(LIBS)
