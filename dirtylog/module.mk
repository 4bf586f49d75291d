LIB_OBJS += $(O)/dirtylog/dirtylog.o
