# bench/: benchmarks, run by bench/run.sh (`make bench`).
BENCHES += $(O)/bench/bench_codec
# bench/bench_pagepath: the real sender and receiver on loopback, no VM (bench/pagebench.h).
BENCHES += $(O)/bench/bench_pagepath

# The measuring code of the benchmarks (bench/benchutil.h): codecbench,
# chanbench, pagebench and migbench, with tests/helpers/mdest (migbench's parallel
# channels), archived so that the bench programs and kvmig (tools/cmd_bench)
# link the same objects. Prerequisites elsewhere name the archive by its
# path: tools/module.mk and protocol/stream.mk are read before this file.
BENCH_LIB := $(O)/bench/libbench.a
BENCH_LIB_OBJS := $(O)/bench/benchutil.o $(O)/bench/codecbench.o $(O)/bench/chanbench.o \
	$(O)/bench/pagebench.o $(O)/bench/migbench.o $(O)/tests/helpers/mdest.o

$(BENCH_LIB): $(BENCH_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

# $(LIB) is defined after the module.mk files are read: name the archive.
$(O)/bench/%: $(O)/bench/%.o $(O)/bench/libbench.a $(O)/libkvmig.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BENCH_LIB) $(LIB) $(LIBS)
