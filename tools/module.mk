# tools/: the agent (kvmigd), the CLI (kvmig) and the control API they share
# (tools/API.md). control, registry and jobs go into the library so the unit tests
# link them like everything else; so do the drain's planner and inventory (with
# the CLI helpers they call). The migration listener is protocol/channel's.
LIB_OBJS += $(O)/tools/control.o $(O)/tools/registry.o $(O)/tools/jobs.o \
	$(O)/tools/cli.o $(O)/tools/drain.o $(O)/tools/inventory.o
PROGS += $(O)/kvmigd $(O)/kvmig
UNIT_TESTS += $(O)/tests/unit/test_control $(O)/tests/unit/test_jobs \
	$(O)/tests/unit/test_registry $(O)/tests/unit/test_drain

# The agent: main and set-up, the event loop, the API methods, the
# arriving migrations (tools/agent.h). Nothing of it goes into the library.
KVMIGD_OBJS := $(O)/tools/kvmigd.o $(O)/tools/agent_loop.o $(O)/tools/agent_api.o \
	$(O)/tools/agent_incoming.o

$(O)/kvmigd: $(KVMIGD_OBJS) $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(KVMIGD_OBJS) $(LIB) $(LIBS)

# The CLI: main and the command table, the helpers its commands share,
# one object per command group. Nothing of it goes into the library.
# kvmig bench (cmd_bench) links the benchmarks' archive, bench/module.mk's
# (named by its path: that file is read after this one).
KVMIG_OBJS := $(O)/tools/kvmig.o $(O)/tools/cmd_vm.o \
	$(O)/tools/cmd_migrate.o $(O)/tools/cmd_agent.o $(O)/tools/migopts.o \
	$(O)/tools/cmd_drain.o $(O)/tools/cmd_bench.o $(O)/tools/cmd_events.o

$(O)/kvmig: $(KVMIG_OBJS) $(O)/bench/libbench.a $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(KVMIG_OBJS) $(BENCH_LIB) $(LIB) $(LIBS)
