/* SPDX-License-Identifier: MIT */
/*
 * test_incoming.c - the stream decoder that restores snapshots and receives
 * migrations, fed synthetic streams: a valid stream is decoded up to the
 * VM build (pages land in RAM, state is complete); every kind of damage
 * (truncation anywhere, a flipped byte anywhere, a page outside RAM, a
 * missing section, a wrong digest, frames out of order, an empty stream)
 * is refused with its own error and no VM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/incoming.h"
#include "protocol/frame.h"
#include "tests/helpers/streamgen.h"
#include "vm/vm.h"

static bool have_kvm;

/* Decode m; return the error (0 when a VM was built) and its message. */
static int decode(struct memio *m, char *err, size_t errlen, struct incoming_stats *st)
{
	struct incoming *inc;
	struct vm *vm = NULL;
	int ret;

	memio_rewind(m);
	assert_int_equal(incoming_create(&m->io, NULL, NULL, &inc), 0);
	ret = incoming_run(inc, &vm, err, errlen);
	if (st)
		incoming_get_stats(inc, st);
	incoming_destroy(inc);
	if (ret == 0) {
		assert_non_null(vm);
		vm_destroy(vm);
	} else {
		assert_null(vm);
	}
	return ret;
}

/* A valid stream decodes; without KVM only the very last step fails. */
static void expect_valid(struct memio *m, uint64_t pages)
{
	struct incoming_stats st;
	char err[512] = "";
	int ret = decode(m, err, sizeof(err), &st);

	if (have_kvm)
		assert_int_equal(ret, 0);
	else if (!strstr(err, "cannot build the VM"))
		fail_msg("a valid stream failed before the VM build: %s", err);
	assert_int_equal(st.pages, pages);
}

static void test_incoming_valid_streams(void **unused)
{
	const char *codecs[] = { NULL, "zstd", "lz4", "lz4hc" };
	struct streamgen_opts o;
	struct memio m;

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
			expect_valid(&m, 700);
			memio_fini(&m);
		}
	}
}

static void test_incoming_truncated_anywhere(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	size_t full;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.pages = 40;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	full = m.len;
	assert_int_equal(decode(&m, err, sizeof(err), NULL) == -ENODATA, 0);
	/* cut at many places, frame boundaries and mid-frame alike */
	for (size_t cut = 1; cut < full; cut += 997) {
		int ret;

		m.len = cut;
		ret = decode(&m, err, sizeof(err), NULL);
		assert_int_equal(ret, -ECONNRESET);
		if (!strstr(err, "ended"))
			fail_msg("cut at %zu: %s", cut, err);
	}
	m.len = 0;
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -ENODATA);
	assert_non_null(strstr(err, "empty"));
	memio_fini(&m);
}

static void test_incoming_flipped_byte_anywhere(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.pages = 20;
	o.compress = "zstd";
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	for (size_t pos = 0; pos < m.len; pos += 211) {
		int ret;

		m.buf[pos] ^= 0x20;
		ret = decode(&m, err, sizeof(err), NULL);
		m.buf[pos] ^= 0x20;
		/* header bytes may also break a length or type; all are refusals */
		if (ret != -EBADMSG && ret != -ECONNRESET && ret != -EPROTO)
			fail_msg("flip at %zu gave %d: %s", pos, ret, err);
	}
	expect_valid(&m, 20);
	memio_fini(&m);
}

static void test_incoming_page_outside_ram(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.bad_page = (16ull << 20) / 4096; /* first page past the end */
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -ERANGE);
	assert_non_null(strstr(err, "outside"));
	memio_fini(&m);
}

static void test_incoming_missing_vcpu(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.vcpus = 2;
	o.skip_vcpu = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -EBADMSG);
	assert_non_null(strstr(err, "vCPU"));
	memio_fini(&m);
}

static void test_incoming_wrong_digest(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.digest = 2;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -EBADMSG);
	assert_non_null(strstr(err, "digest mismatch"));
	memio_fini(&m);
}

static void test_incoming_out_of_order(void **unused)
{
	struct streamgen_opts o;
	struct memio m, bad;
	struct frame_hdr h;
	size_t off = 0, first_state = 0, switchover = 0;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	/* find SWITCHOVER and the first STATE frame */
	while (off < m.len) {
		assert_int_equal(frame_check_header(m.buf + off, m.len - off, &h, err, sizeof(err)), 0);
		if (h.type == WIRE_F_SWITCHOVER)
			switchover = off;
		if (h.type == WIRE_F_STATE && !first_state)
			first_state = off;
		off += frame_total(&h);
	}
	assert_true(switchover && first_state > switchover);
	/* drop SWITCHOVER: STATE then arrives during precopy */
	memio_init(&bad);
	assert_int_equal(bad.io.write(&bad.io, m.buf, switchover), 0);
	assert_int_equal(bad.io.write(&bad.io, m.buf + first_state, m.len - first_state), 0);
	assert_int_equal(decode(&bad, err, sizeof(err), NULL), -EPROTO);
	assert_non_null(strstr(err, "out of order"));
	memio_fini(&bad);
	/* a stream that starts with anything but HELLO */
	memio_init(&bad);
	assert_int_equal(bad.io.write(&bad.io, m.buf + switchover, m.len - switchover), 0);
	assert_int_equal(decode(&bad, err, sizeof(err), NULL), -EPROTO);
	assert_non_null(strstr(err, "expected HELLO"));
	memio_fini(&bad);
	memio_fini(&m);
}

static void test_incoming_garbage(void **unused)
{
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	assert_int_equal(m.io.write(&m.io, "this is not a kvmig stream at all\n", 34), 0);
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -EBADMSG);
	assert_non_null(strstr(err, "unknown frame type"));
	memio_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incoming_valid_streams),
		cmocka_unit_test(test_incoming_truncated_anywhere),
		cmocka_unit_test(test_incoming_flipped_byte_anywhere),
		cmocka_unit_test(test_incoming_page_outside_ram),
		cmocka_unit_test(test_incoming_missing_vcpu),
		cmocka_unit_test(test_incoming_wrong_digest),
		cmocka_unit_test(test_incoming_out_of_order),
		cmocka_unit_test(test_incoming_garbage),
	};
	char why[200];

	have_kvm = vm_kvm_available(why, sizeof(why)) == 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
