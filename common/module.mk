LIB_OBJS += $(O)/common/err.o $(O)/common/log.o $(O)/common/xio.o $(O)/common/parse.o
UNIT_TESTS += $(O)/tests/unit/test_crc32c $(O)/tests/unit/test_bitmap
