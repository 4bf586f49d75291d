LIB_OBJS += $(O)/dirtylog/dirtylog.o
KVM_TESTS += $(O)/tests/kvm/test_dirtylog
