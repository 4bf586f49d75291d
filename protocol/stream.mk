# protocol/: the stream (frames, order), channel addresses and the channels.
LIB_OBJS += $(O)/protocol/frame.o $(O)/protocol/uri.o $(O)/protocol/channel.o \
	$(O)/protocol/channel_tcp.o $(O)/protocol/channel_unix.o $(O)/protocol/channel_tls.o
# SSH (libssh2): protocol/channel_ssh.c
LIB_OBJS += $(O)/protocol/channel_ssh.o $(O)/protocol/channel_pipe.o
UNIT_TESTS += $(O)/tests/unit/test_channel_ssh $(O)/tests/unit/test_channel_pipe
UNIT_TESTS += $(O)/tests/unit/test_frame $(O)/tests/unit/test_channel \
	$(O)/tests/unit/test_channel_tls
FUZZ_TARGETS += fuzz_frame_decode fuzz_uri_parse

# bench/bench_channel: channel throughput against a plain socket pump.
BENCHES += $(O)/bench/bench_channel
# Its measurement is bench/chanbench's, in bench/module.mk's archive.
$(O)/bench/bench_channel: $(O)/bench/bench_channel.o $(O)/bench/libbench.a $(O)/libkvmig.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BENCH_LIB) $(LIB) $(LIBS)

# bench/bench_ssh: the SSH channel against a bare libssh2 direct-tcpip pump.
BENCHES += $(O)/bench/bench_ssh
$(O)/bench/bench_ssh: $(O)/bench/bench_ssh.o $(O)/libkvmig.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)
