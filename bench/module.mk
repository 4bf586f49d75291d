# bench/: benchmarks, run by bench/run.sh (`make bench`).
BENCHES += $(O)/bench/bench_codec

# $(LIB) is defined after the module.mk files are read: name the archive.
$(O)/bench/%: $(O)/bench/%.o $(O)/libkvmig.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)
