LIB_OBJS += $(O)/common/log.o $(O)/common/xio.o $(O)/common/parse.o
