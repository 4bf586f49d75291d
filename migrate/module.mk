# migrate/: the engine. Snapshots are migration streams written to files.
LIB_OBJS += $(O)/migrate/mio.o $(O)/migrate/pagesend.o $(O)/migrate/incoming.o \
	$(O)/migrate/digest.o $(O)/migrate/snapshot.o
