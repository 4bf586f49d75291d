/* SPDX-License-Identifier: MIT */
/*
 * test_incoming.c - the stream decoder that restores snapshots and receives
 * migrations, fed synthetic streams: a valid stream is decoded up to the
 * VM build (pages land in RAM, state is complete); every kind of damage
 * (truncation anywhere, a flipped byte anywhere, a page outside RAM, a
 * missing section, a wrong digest, frames out of order, an empty stream)
 * is refused with its own error and no VM. The channels of a parallel
 * migration, decoded on their own threads, meet in one RAM; a broken
 * channel fails the whole migration. The decoder runs in check-only mode
 * (incoming_check_only): no VM is built, so this needs no /dev/kvm;
 * tests/kvm/test_incoming_vm builds real VMs from the same streams.
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
#include "protocol/frame.h"
#include "tests/helpers/streamgen.h"
#include "vm/vm.h"

/* Decode m; return the error (0 when a VM was built) and its message. */
static int decode(struct memio *m, char *err, size_t errlen, struct incoming_stats *st)
{
	struct incoming *inc;
	struct vm *vm = NULL;
	int ret;

	memio_rewind(m);
	assert_int_equal(incoming_create(&m->io, NULL, NULL, &inc), 0);
	incoming_check_only(inc);
	ret = incoming_run(inc, &vm, err, errlen);
	if (st)
		incoming_get_stats(inc, st);
	incoming_destroy(inc);
	assert_null(vm);
	return ret;
}

/* A valid stream decodes and checks out. */
static void expect_valid(struct memio *m, uint64_t pages)
{
	struct incoming_stats st;
	char err[512] = "";
	int ret = decode(m, err, sizeof(err), &st);

	if (ret != 0)
		fail_msg("a valid stream failed: %s", err);
	assert_true(st.stream_ok);
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

/* SWITCHOVER's PAUSED flag reaches the stats (the agent keeps such a VM paused). */
static void test_incoming_paused_flag(void **unused)
{
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	for (int paused = 0; paused <= 1; paused++) {
		memio_init(&m);
		streamgen_defaults(&o);
		o.pages = 10;
		o.paused = paused;
		assert_int_equal(streamgen_write(&m.io, &o), 0);
		assert_int_equal(decode(&m, err, sizeof(err), &st), 0);
		assert_int_equal(st.paused, paused);
		memio_fini(&m);
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

/* One channel of a parallel stream, decoded on its own thread. */
struct chan {
	struct memio in, back;
	pthread_t thread;
	int ret;
	char err[512];
	struct incoming_stats st;
	struct session_table *sessions;	/* shared by the channels of one run */
};

static void *chan_thread(void *arg)
{
	struct chan *c = arg;
	struct incoming *inc;
	struct vm *vm = NULL;

	memio_rewind(&c->in);
	assert_int_equal(incoming_create(&c->in.io, &c->back.io, NULL, &inc), 0);
	incoming_set_sessions(inc, c->sessions);
	incoming_check_only(inc);
	c->ret = incoming_run(inc, &vm, c->err, sizeof(c->err));
	incoming_get_stats(inc, &c->st);
	incoming_destroy(inc);
	assert_null(vm);
	return NULL;
}

/* Channels 0..n-1 of one stream; damage: 0, or 1 truncated, 2 bad page on the last. */
static void run_parallel(unsigned n, int damage, uint64_t session, struct chan *c)
{
	struct streamgen_opts o;
	struct session_table *t;

	assert_int_equal(session_table_create(&t), 0);
	for (unsigned i = 0; i < n; i++) {
		memio_init(&c[i].in);
		memio_init(&c[i].back);
		c[i].sessions = t;
		streamgen_defaults(&o);
		o.pages = 1000;
		o.digest = 1;
		o.compress = "zstd";
		o.channels = n;
		o.channel = i;
		o.session = session;
		if (damage == 2 && i == n - 1)
			o.bad_page = 1ull << 40;
		assert_int_equal(streamgen_write(&c[i].in.io, &o), 0);
		if (damage == 1 && i == n - 1)
			c[i].in.len -= 100;
	}
	/* the others may come before channel 0: they wait for it */
	for (unsigned i = n; i-- > 0;)
		assert_int_equal(pthread_create(&c[i].thread, NULL, chan_thread, &c[i]), 0);
	for (unsigned i = 0; i < n; i++)
		pthread_join(c[i].thread, NULL);
	session_table_destroy(t);
}

static void free_chans(unsigned n, struct chan *c)
{
	for (unsigned i = 0; i < n; i++) {
		memio_fini(&c[i].in);
		memio_fini(&c[i].back);
	}
}

static void test_incoming_parallel(void **unused)
{
	struct chan c[4];

	(void)unused;
	for (unsigned n = 2; n <= 4; n += 2) {
		uint64_t total = 0;

		run_parallel(n, 0, 7000 + n, c);
		/* channel 0 got every page (its digest covers them) */
		if (c[0].ret != 0)
			fail_msg("channel 0 of %u failed: %s", n, c[0].err);
		assert_true(c[0].st.stream_ok);
		assert_int_equal(c[0].st.digest_ok, 1);
		assert_int_equal(c[0].st.pages, 1000);
		for (unsigned i = 1; i < n; i++) {
			if (c[i].ret != 1)
				fail_msg("channel %u of %u: %d %s", i, n, c[i].ret, c[i].err);
			assert_true(c[i].st.pages > 0);
			total += c[i].st.pages;
		}
		assert_true(total < 1000);
		free_chans(n, c);
	}
}

static void test_incoming_parallel_broken_channel(void **unused)
{
	struct chan c[3];

	(void)unused;
	/* the last channel's stream is cut short: channel 0 fails and says which */
	run_parallel(3, 1, 8001, c);
	if (c[2].ret != -ECONNRESET)
		fail_msg("channel 2: %d %s", c[2].ret, c[2].err);
	assert_true(c[0].ret < 0);
	if (!strstr(c[0].err, "parallel channel 2 failed"))
		fail_msg("channel 0: %s", c[0].err);
	assert_false(c[0].st.stream_ok);
	free_chans(3, c);
	/* a page outside RAM on a secondary channel */
	run_parallel(3, 2, 8002, c);
	assert_true(c[2].ret < 0);
	assert_non_null(strstr(c[2].err, "outside"));
	if (!strstr(c[0].err, "parallel channel 2 failed"))
		fail_msg("channel 0: %s", c[0].err);
	free_chans(3, c);
}

/* A receiver without a session table refuses a parallel HELLO, naming why. */
static void test_incoming_parallel_needs_sessions(void **unused)
{
	struct streamgen_opts o;
	struct incoming *inc;
	struct memio m, back;
	struct vm *vm = NULL;
	char err[512];

	(void)unused;
	memio_init(&m);
	memio_init(&back);
	streamgen_defaults(&o);
	o.channels = 2;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	assert_int_equal(incoming_create(&m.io, &back.io, NULL, &inc), 0);
	incoming_check_only(inc);
	assert_int_equal(incoming_run(inc, &vm, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "takes no parallel migrations"));
	incoming_destroy(inc);
	memio_fini(&m);
	memio_fini(&back);
}

/* A file holds one channel: HELLO of a parallel stream is refused there. */
static void test_incoming_parallel_not_in_files(void **unused)
{
	struct streamgen_opts o;
	struct memio m;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.channels = 2;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	assert_int_equal(decode(&m, err, sizeof(err), NULL), -EPROTO);
	assert_non_null(strstr(err, "a stream file holds one channel"));
	memio_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incoming_valid_streams),
		cmocka_unit_test(test_incoming_paused_flag),
		cmocka_unit_test(test_incoming_truncated_anywhere),
		cmocka_unit_test(test_incoming_flipped_byte_anywhere),
		cmocka_unit_test(test_incoming_page_outside_ram),
		cmocka_unit_test(test_incoming_missing_vcpu),
		cmocka_unit_test(test_incoming_wrong_digest),
		cmocka_unit_test(test_incoming_out_of_order),
		cmocka_unit_test(test_incoming_garbage),
		cmocka_unit_test(test_incoming_parallel),
		cmocka_unit_test(test_incoming_parallel_broken_channel),
		cmocka_unit_test(test_incoming_parallel_not_in_files),
		cmocka_unit_test(test_incoming_parallel_needs_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
