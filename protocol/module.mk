# protocol/: page codecs (zero, raw, xbzrle, zstd, lz4) and the XBZRLE page
# cache. protocol/ is where wire bytes are parsed, so its objects also build
# with -Wconversion -Wsign-conversion.
LIB_OBJS += $(O)/protocol/xbzrle.o $(O)/protocol/codec.o $(O)/protocol/codec_zstd.o \
	$(O)/protocol/codec_lz4.o $(O)/protocol/pagecache.o

$(O)/protocol/%.o: CFLAGS += -Wconversion -Wsign-conversion

UNIT_TESTS += $(O)/tests/unit/test_xbzrle $(O)/tests/unit/test_codec $(O)/tests/unit/test_pagecache

FUZZ_TARGETS += fuzz_xbzrle_decode fuzz_xbzrle_roundtrip fuzz_codec_roundtrip fuzz_codec_decode
