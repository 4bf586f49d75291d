LIB_OBJS += $(O)/common/err.o $(O)/common/log.o $(O)/common/xio.o $(O)/common/parse.o
