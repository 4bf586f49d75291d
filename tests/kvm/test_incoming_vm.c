/* SPDX-License-Identifier: MIT */
/*
 * test_incoming_vm.c - the stream decoder's last step on real KVM: a VM
 * built from a synthetic stream (tests/helpers/streamgen, whose vCPU state
 * is the boot state vm_create() gives, so every KVM must accept it). Each
 * valid stream (every codec, 1 and 2 vCPUs, a parallel one) becomes a VM
 * whose configuration and RAM are the stream's, left unstarted; a stream
 * whose vCPU state KVM refuses (long mode without CR4.PAE) is refused with
 * a message naming the register set, and no VM is left; a stream whose
 * SWITCHOVER says the guest was paused reports it. The host-only checks of
 * the same decoder are tests/unit/test_incoming. Exits 77 without /dev/kvm.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/incoming.h"
#include "migrate/session.h"
#include "tests/helpers/streamgen.h"
#include "vm/vm.h"

/* Build a VM from m; return the error and its message; *st the stats. */
static int build(struct memio *m, struct vm **vm, char *err, size_t errlen,
		 struct incoming_stats *st)
{
	struct incoming *inc;
	int ret;

	*vm = NULL;
	memio_rewind(m);
	assert_int_equal(incoming_create(&m->io, NULL, NULL, &inc), 0);
	ret = incoming_run(inc, vm, err, errlen);
	incoming_get_stats(inc, st);
	incoming_destroy(inc);
	if (ret == 0)
		assert_non_null(*vm);
	else
		assert_null(*vm);
	return ret;
}

/* The VM holds what the stream carried: its configuration and data pages. */
static void check_vm(struct vm *vm, const struct streamgen_opts *o)
{
	const struct vm_config *cfg = vm_get_config(vm);
	uint8_t page[4096];

	assert_string_equal(cfg->name, o->name);
	assert_int_equal(cfg->vcpus, o->vcpus);
	assert_int_equal(cfg->mem_bytes, o->mem_bytes);
	assert_int_equal(vm_vcpu_count(vm), o->vcpus);
	assert_int_equal(vm_get_run_state(vm), VM_RUN_CREATED);
	for (uint64_t i = 0; i < o->pages; i++) {
		streamgen_page(i, page);
		if (memcmp(vm_ram(vm) + (512 + i) * 4096, page, sizeof(page)))
			fail_msg("data page %llu differs in the built VM", (unsigned long long)i);
	}
}

static void test_incoming_vm_valid_streams(void **unused)
{
	const char *codecs[] = { NULL, "zstd", "lz4", "lz4hc" };
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512];

	(void)unused;
	for (size_t c = 0; c < 4; c++) {
		for (unsigned vcpus = 1; vcpus <= 2; vcpus++) {
			memio_init(&m);
			streamgen_defaults(&o);
			o.compress = codecs[c];
			o.vcpus = vcpus;
			o.pages = 700;
			o.digest = 1;
			assert_int_equal(streamgen_write(&m.io, &o), 0);
			if (build(&m, &vm, err, sizeof(err), &st) != 0)
				fail_msg("%s, %u vCPU(s): %s", codecs[c] ? codecs[c] : "raw", vcpus,
					 err);
			assert_int_equal(st.pages, 700);
			assert_false(st.paused);
			check_vm(vm, &o);
			vm_destroy(vm);
			memio_fini(&m);
		}
	}
}

/* KVM refuses the vCPU state: the error names the register set; no VM. */
static void test_incoming_vm_refused_state(void **unused)
{
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512] = "";
	int ret;

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.bad_sregs = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	ret = build(&m, &vm, err, sizeof(err), &st);
	assert_true(ret < 0);
	assert_true(st.stream_ok);	/* the stream was fine; KVM said no */
	if (!strstr(err, "cannot build the VM") || !strstr(err, "KVM_SET_SREGS"))
		fail_msg("the refusal does not name the register set: %s", err);
	memio_fini(&m);
}

/* A guest that left its host paused is built, and the stats say so. */
static void test_incoming_vm_paused(void **unused)
{
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.paused = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	if (build(&m, &vm, err, sizeof(err), &st) != 0)
		fail_msg("%s", err);
	assert_true(st.paused);
	check_vm(vm, &o);
	vm_destroy(vm);
	memio_fini(&m);
}

struct chan {
	struct memio in, back;
	pthread_t thread;
	int ret;
	char err[512];
	struct vm *vm;
	struct session_table *sessions;
};

static void *chan_thread(void *arg)
{
	struct chan *c = arg;
	struct incoming *inc;

	memio_rewind(&c->in);
	if (incoming_create(&c->in.io, &c->back.io, NULL, &inc) < 0) {
		c->ret = -ENOMEM;
		return NULL;
	}
	incoming_set_sessions(inc, c->sessions);
	c->ret = incoming_run(inc, &c->vm, c->err, sizeof(c->err));
	incoming_destroy(inc);
	return NULL;
}

/* Two channels of one migration meet in one RAM; channel 0 builds the VM. */
static void test_incoming_vm_parallel(void **unused)
{
	struct streamgen_opts o[2];
	struct session_table *t;
	struct chan c[2];

	(void)unused;
	memset(c, 0, sizeof(c));
	assert_int_equal(session_table_create(&t), 0);
	for (unsigned i = 0; i < 2; i++) {
		c[i].sessions = t;
		memio_init(&c[i].in);
		memio_init(&c[i].back);
		streamgen_defaults(&o[i]);
		o[i].pages = 1000;
		o[i].digest = 1;
		o[i].compress = "zstd";
		o[i].channels = 2;
		o[i].channel = i;
		o[i].session = 9100;
		assert_int_equal(streamgen_write(&c[i].in.io, &o[i]), 0);
	}
	for (unsigned i = 2; i-- > 0;)
		assert_int_equal(pthread_create(&c[i].thread, NULL, chan_thread, &c[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(c[i].thread, NULL);
	session_table_destroy(t);
	if (c[0].ret != 0)
		fail_msg("channel 0: %s", c[0].err);
	assert_int_equal(c[1].ret, 1);
	assert_null(c[1].vm);
	check_vm(c[0].vm, &o[0]);
	vm_destroy(c[0].vm);
	for (unsigned i = 0; i < 2; i++) {
		memio_fini(&c[i].in);
		memio_fini(&c[i].back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incoming_vm_valid_streams),
		cmocka_unit_test(test_incoming_vm_refused_state),
		cmocka_unit_test(test_incoming_vm_paused),
		cmocka_unit_test(test_incoming_vm_parallel),
	};
	char why[200];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: needs /dev/kvm: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
