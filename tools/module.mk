# tools/: the agent (kvmigd), the CLI (kvmig) and the control API they share
# (tools/API.md). control, registry and jobs go into the library so the unit tests
# link them like everything else. The migration listener is protocol/channel's.
LIB_OBJS += $(O)/tools/control.o $(O)/tools/registry.o $(O)/tools/jobs.o
PROGS += $(O)/kvmigd $(O)/kvmig
UNIT_TESTS += $(O)/tests/unit/test_control $(O)/tests/unit/test_jobs \
	$(O)/tests/unit/test_registry

# The agent: main and set-up, the event loop, the API methods, the
# arriving migrations (tools/agent.h). Nothing of it goes into the library.
KVMIGD_OBJS := $(O)/tools/kvmigd.o $(O)/tools/agent_loop.o $(O)/tools/agent_api.o \
	$(O)/tools/agent_incoming.o

$(O)/kvmigd: $(KVMIGD_OBJS) $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(KVMIGD_OBJS) $(LIB) $(LIBS)

# The CLI: main and the command table, the helpers its commands share,
# one object per command group. Nothing of it goes into the library.
KVMIG_OBJS := $(O)/tools/kvmig.o $(O)/tools/cli.o $(O)/tools/cmd_vm.o \
	$(O)/tools/cmd_migrate.o $(O)/tools/cmd_agent.o $(O)/tools/cmd_events.o

$(O)/kvmig: $(KVMIG_OBJS) $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(KVMIG_OBJS) $(LIB) $(LIBS)
