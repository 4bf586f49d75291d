# SPDX-License-Identifier: MIT
#
# bench/e2e.mk: the end-to-end migration benchmark, kvmig next to QEMU
# (bench/e2e.sh BUILD_DIR; the table names the command that made it). bench_migrate
# links bench/module.mk's archive (its rule below); the QEMU guest (bench/qemu/dirty.S) is assembled by
# bench/e2e.sh per working-set size.
BENCHES += $(O)/bench/bench_migrate

bench-e2e: $(O)/bench/bench_migrate
	$(Q)KVMIG_E2E_CMD="make bench-e2e (bench/e2e.sh $(O))" bench/e2e.sh $(O)

.PHONY: bench-e2e

# Its measurement is bench/migbench's, in bench/module.mk's archive (with mdest).
$(O)/bench/bench_migrate: $(O)/bench/bench_migrate.o $(O)/bench/libbench.a $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BENCH_LIB) $(LIB) $(LIBS)
