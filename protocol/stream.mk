# protocol/: the stream (frames, order) and the channels.
LIB_OBJS += $(O)/protocol/frame.o
UNIT_TESTS += $(O)/tests/unit/test_frame
FUZZ_TARGETS += fuzz_frame_decode
