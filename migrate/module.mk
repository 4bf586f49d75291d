# migrate/: the engine. Snapshots are migration streams written to files.
LIB_OBJS += $(O)/migrate/mio.o $(O)/migrate/pagesend.o $(O)/migrate/incoming.o \
	$(O)/migrate/digest.o $(O)/migrate/snapshot.o $(O)/migrate/source.o \
	$(O)/migrate/converge.o $(O)/migrate/ratelimit.o $(O)/migrate/outgoing.o \
	$(O)/migrate/session.o $(O)/migrate/opts.o $(O)/migrate/job.o $(O)/migrate/lanes.o \
	$(O)/migrate/retpath.o $(O)/migrate/handover.o $(O)/migrate/announce.o \
	$(O)/migrate/sshtls.o $(O)/migrate/uffd.o $(O)/migrate/pcdest.o $(O)/migrate/postcopy.o \
	$(O)/migrate/autocomp.o
LIB_OBJS += $(O)/migrate/pageplace.o

UNIT_TESTS += $(O)/tests/unit/test_incoming $(O)/tests/unit/test_job
PROGS += $(O)/tests/tools/mksnap

$(O)/tests/unit/test_incoming: $(O)/tests/unit/test_incoming.o $(O)/tests/helpers/streamgen.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LIBS) $(CMOCKA_LIBS)

$(O)/tests/tools/mksnap: $(O)/tests/tools/mksnap.o $(O)/tests/helpers/streamgen.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LIBS)
UNIT_TESTS += $(O)/tests/unit/test_autocomp $(O)/tests/unit/test_converge $(O)/tests/unit/test_opts $(O)/tests/unit/test_announce \
	$(O)/tests/unit/test_uffd $(O)/tests/unit/test_pcdest
UNIT_TESTS += $(O)/tests/unit/test_pageplace
KVM_TESTS += $(O)/tests/kvm/test_migrate
KVM_TESTS += $(O)/tests/kvm/test_postcopy

# in-process destinations accept a parallel migration's other channels
$(O)/tests/kvm/test_migrate: $(O)/tests/kvm/test_migrate.o $(O)/tests/helpers/mdest.o \
		$(O)/tests/helpers/kvmtest.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LIBS) $(CMOCKA_LIBS)

# the same synthetic streams, built into real VMs (KVM)
KVM_TESTS += $(O)/tests/kvm/test_incoming_vm
$(O)/tests/kvm/test_incoming_vm: $(O)/tests/kvm/test_incoming_vm.o $(O)/tests/helpers/streamgen.o \
		$(O)/tests/helpers/kvmtest.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LIBS) $(CMOCKA_LIBS)

# a hostile snapshot file through the whole decoder (check-only: no KVM)
FUZZ_TARGETS += fuzz_snapshot_stream
