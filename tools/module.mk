# tools/: the agent (kvmigd), the CLI (kvmig) and the control API they share
# (tools/API.md). control, registry, jobs and agentconf go into the library so
# the unit tests link them like everything else; so do the drain's planner and
# inventory (with the CLI helpers they call). The migration listener is
# protocol/channel's.
LIB_OBJS += $(O)/tools/control.o $(O)/tools/registry.o $(O)/tools/jobs.o \
	$(O)/tools/agentconf.o $(O)/tools/cli.o $(O)/tools/drain.o $(O)/tools/inventory.o
PROGS += $(O)/kvmigd $(O)/kvmig
UNIT_TESTS += $(O)/tests/unit/test_control $(O)/tests/unit/test_jobs \
	$(O)/tests/unit/test_registry $(O)/tests/unit/test_agentconf $(O)/tests/unit/test_drain

# The agent: main and set-up, the event loop, the API methods, the
# arriving migrations, the limits (tools/agent.h). Nothing of it goes into
# the library.
KVMIGD_OBJS := $(O)/tools/kvmigd.o $(O)/tools/agent_loop.o $(O)/tools/agent_api.o \
	$(O)/tools/agent_incoming.o $(O)/tools/agent_limits.o

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

# make install: the programs, the agent's systemd unit, the example
# configuration and the man pages, where packagers expect them. DESTDIR
# stages the tree (make install DESTDIR=/tmp/root PREFIX=/usr). An
# existing kvmigd.conf is never overwritten; make uninstall removes it only
# when it is still the example.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/kvmig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install

MAN_PAGES := tools/man/kvmig.1 tools/man/kvmigd.8 tools/man/kvmigd.conf.5
CONF_DIR = $(DESTDIR)$(SYSCONFDIR)/kvmig

install: $(O)/kvmigd $(O)/kvmig
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(CONF_DIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(O)/kvmigd $(O)/kvmig $(DESTDIR)$(BINDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' tools/kvmigd.service.in \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/kvmigd.service.tmp
	mv $(DESTDIR)$(SYSTEMDUNITDIR)/kvmigd.service.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/kvmigd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/kvmigd.service
	$(INSTALL) -m 0644 tools/kvmigd.conf.example $(CONF_DIR)/kvmigd.conf.example
	@if [ -e $(CONF_DIR)/kvmigd.conf ]; then \
		echo "  keeping $(CONF_DIR)/kvmigd.conf (the example is kvmigd.conf.example)"; \
	else \
		echo "$(INSTALL) -m 0644 tools/kvmigd.conf.example $(CONF_DIR)/kvmigd.conf"; \
		$(INSTALL) -m 0644 tools/kvmigd.conf.example $(CONF_DIR)/kvmigd.conf; \
	fi
	$(INSTALL) -m 0644 tools/man/kvmig.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 tools/man/kvmigd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 tools/man/kvmigd.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 README.md tools/API.md tools/kvmigd.conf.example $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kvmigd $(DESTDIR)$(BINDIR)/kvmig \
		$(DESTDIR)$(SYSTEMDUNITDIR)/kvmigd.service \
		$(DESTDIR)$(MANDIR)/man1/kvmig.1 $(DESTDIR)$(MANDIR)/man5/kvmigd.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/kvmigd.8 \
		$(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/API.md \
		$(DESTDIR)$(DOCDIR)/kvmigd.conf.example
	@if [ -e $(CONF_DIR)/kvmigd.conf ] && ! cmp -s tools/kvmigd.conf.example $(CONF_DIR)/kvmigd.conf; then \
		echo "  keeping $(CONF_DIR)/kvmigd.conf: it is not the example any more"; \
	else \
		echo "rm -f $(CONF_DIR)/kvmigd.conf"; rm -f $(CONF_DIR)/kvmigd.conf; \
	fi
	rm -f $(CONF_DIR)/kvmigd.conf.example
	@for d in $(CONF_DIR) $(DESTDIR)$(DOCDIR); do \
		[ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d; \
	done

.PHONY: install uninstall
