/* SPDX-License-Identifier: MIT */
/*
 * test_frame.c - the frames of protocol/wire.h: every frame type through its
 * writer and reader, the PAGES batch builder and iterator with pages encoded
 * by all five codecs, then one test per rule of frame.c's readers and of the
 * order checker, each asserting the errno and a distinctive piece of the
 * message.
 *
 * `test_frame --write-corpus DIR` writes the seed corpus of the
 * fuzz_frame_decode target (input format: see tests/fuzz/fuzz_frame_decode.c)
 * and exits.
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

#include "tests/helpers/expect_err.h"
#include "tests/helpers/frame_bytes.h"
#include "tests/helpers/prng.h"

#include "common/buf.h"
#include "common/crc32c.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define NPAGES 256u		/* guest RAM of the tests: 1 MiB */
#define ALL_CODECS (WIRE_CAP_XBZRLE | WIRE_CAP_ZSTD | WIRE_CAP_LZ4)
#define MAX_FRAME (WIRE_HDR_BYTES + WIRE_MAX_PAYLOAD + WIRE_CRC_BYTES)

static char err[256];

/* ---- helpers --------------------------------------------------------------- */



/* Header and CRC of a whole frame; the header must announce exactly total bytes. */
static void check_frame(const uint8_t *f, size_t total, unsigned type, struct frame_hdr *h)
{
	err[0] = '\0';
	assert_int_equal(frame_check_header(f, total, h, err, sizeof(err)), 0);
	assert_int_equal(h->type, type);
	assert_int_equal(h->flags, 0);
	assert_int_equal(frame_total(h), total);
	assert_int_equal(frame_check_crc(f, total, err, sizeof(err)), 0);
}

static struct prng rng = { 0x9e3779b97f4a7c15ull };

static uint64_t rnd(void)
{
	return prng_next(&rng);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static void fill_text(uint8_t *p, size_t n)
{
	static const char *const w[] = { "guest ", "page ", "dirty ", "round ", "kvm\n" };
	size_t i = 0;

	while (i < n) {
		const char *s = w[rnd() % 5];

		for (; *s && i < n; s++)
			p[i++] = (uint8_t)*s;
	}
}

static void sample_hello(struct wire_hello *h)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

	memset(h, 0, sizeof(*h));
	h->version = WIRE_VERSION;
	h->caps = WIRE_CAP_ALL;
	h->page_size = PAGE;
	h->mem_bytes = (uint64_t)NPAGES * PAGE;
	h->vcpus = 2;
	h->channel = 1;
	h->channels = 4;
	h->session = 0x0123456789abcdefull;
	snprintf(h->name, sizeof(h->name), "vm-one");
	snprintf(h->guest, sizeof(h->guest), "memcheck");
	snprintf(h->guest_args, sizeof(h->guest_args), "workset=16M,seed=7");
	memcpy(h->mac, mac, 6);
}

/* ---- round trips ------------------------------------------------------------- */

static void test_frame_crc32c_check_value(void **state)
{
	(void)state;
	/* the CRC-32C check value PROTOCOL.md quotes */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
}

static void test_frame_golden_bytes(void **state)
{
	/* SWITCHOVER round 5, the example frame of PROTOCOL.md */
	static const uint8_t want[] = { 0x04, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
					0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_switchover(f, sizeof(f), 5, 0);
	assert_int_equal(n, sizeof(want) + 4);
	assert_memory_equal(f, want, sizeof(want));
	assert_int_equal(f[16] | f[17] << 8 | f[18] << 16 | (uint32_t)f[19] << 24,
			 crc32c(0, want, sizeof(want)));
}

static void test_frame_type_names(void **state)
{
	static const struct {
		unsigned type;
		const char *name;
	} t[] = {
		{ WIRE_F_HELLO, "HELLO" },	   { WIRE_F_PAGES, "PAGES" },
		{ WIRE_F_END_ROUND, "END_ROUND" }, { WIRE_F_SWITCHOVER, "SWITCHOVER" },
		{ WIRE_F_STATE, "STATE" },	   { WIRE_F_COMPLETE, "COMPLETE" },
		{ WIRE_F_ERROR, "ERROR" },	   { WIRE_F_HELLO_ACK, "HELLO_ACK" },
		{ WIRE_F_ACK, "ACK" },		   { WIRE_F_RESUMED, "RESUMED" },
		{ WIRE_F_PAGE_REQ, "PAGE_REQ" },   { WIRE_F_GO, "GO" },
		{ WIRE_F_READY, "READY" },	   { WIRE_F_CPUID, "CPUID" },
		{ 0, "unknown" },		   { 14, "unknown" },
		{ 0xffff, "unknown" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(frame_type_name(t[i].type), t[i].name);
}

static void test_frame_hello_roundtrip(void **state)
{
	struct wire_hello in, out;
	struct frame_hdr h;
	uint8_t f[512];
	ssize_t n;

	(void)state;
	sample_hello(&in);
	n = frame_put_hello(f, sizeof(f), &in);
	assert_int_equal(n, WIRE_HDR_BYTES + WIRE_HELLO_BYTES + WIRE_CRC_BYTES);
	check_frame(f, (size_t)n, WIRE_F_HELLO, &h);
	assert_int_equal(h.len, WIRE_HELLO_BYTES);
	memset(&out, 0xee, sizeof(out));
	assert_int_equal(frame_get_hello(f + WIRE_HDR_BYTES, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.version, WIRE_VERSION);
	assert_int_equal(out.caps, in.caps);
	assert_int_equal(out.page_size, PAGE);
	assert_int_equal(out.mem_bytes, in.mem_bytes);
	assert_int_equal(out.vcpus, in.vcpus);
	assert_int_equal(out.channel, in.channel);
	assert_int_equal(out.channels, in.channels);
	assert_int_equal(out.session, in.session);
	assert_string_equal(out.name, in.name);
	assert_string_equal(out.guest, in.guest);
	assert_string_equal(out.guest_args, in.guest_args);
	assert_memory_equal(out.mac, in.mac, 6);
	/* field offsets of PROTOCOL.md */
	assert_int_equal(f[WIRE_HDR_BYTES + 0], 'K');
	assert_memory_equal(f + WIRE_HDR_BYTES, "KVMIGSTR", 8);
	assert_int_equal(f[WIRE_HDR_BYTES + 8], WIRE_VERSION);
	assert_string_equal((const char *)f + WIRE_HDR_BYTES + 48, "vm-one");
	assert_string_equal((const char *)f + WIRE_HDR_BYTES + 112, "memcheck");
	assert_string_equal((const char *)f + WIRE_HDR_BYTES + 128, "workset=16M,seed=7");
	assert_memory_equal(f + WIRE_HDR_BYTES + 384, in.mac, 6);
}

static void test_frame_hello_long_strings_truncated(void **state)
{
	struct wire_hello in, out;
	struct frame_hdr h;
	uint8_t f[512];
	ssize_t n;

	(void)state;
	sample_hello(&in);
	/* no NUL at all: the writer keeps n-1 bytes and terminates */
	memset(in.name, 'n', sizeof(in.name));
	memset(in.guest, 'g', sizeof(in.guest));
	memset(in.guest_args, 'a', sizeof(in.guest_args));
	n = frame_put_hello(f, sizeof(f), &in);
	assert_true(n > 0);
	check_frame(f, (size_t)n, WIRE_F_HELLO, &h);
	assert_int_equal(frame_get_hello(f + WIRE_HDR_BYTES, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(strlen(out.name), WIRE_NAME_BYTES - 1);
	assert_int_equal(strlen(out.guest), WIRE_GUEST_BYTES - 1);
	assert_int_equal(strlen(out.guest_args), WIRE_ARGS_BYTES - 1);
}

static void test_frame_end_round_roundtrip(void **state)
{
	struct wire_end_round in = { 7, 123456789012ull, 0xfedcba9876543210ull }, out;
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_end_round(f, sizeof(f), &in);
	assert_int_equal(n, 8 + 20 + 4);
	check_frame(f, (size_t)n, WIRE_F_END_ROUND, &h);
	assert_int_equal(frame_get_end_round(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.round, 7);
	assert_int_equal(out.pages, in.pages);
	assert_int_equal(out.dirty_rate, in.dirty_rate);
}

static void test_frame_switchover_roundtrip(void **state)
{
	struct frame_hdr h;
	uint32_t round = 0, flags = 7;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_switchover(f, sizeof(f), 0xdeadbeef, 0);
	assert_int_equal(n, 8 + 8 + 4);
	check_frame(f, (size_t)n, WIRE_F_SWITCHOVER, &h);
	assert_int_equal(frame_get_switchover(f + 8, h.len, &round, &flags, err, sizeof(err)), 0);
	assert_int_equal(round, 0xdeadbeef);
	assert_int_equal(flags, 0);
	/* a paused guest: the flag travels */
	n = frame_put_switchover(f, sizeof(f), 3, WIRE_SWITCHOVER_PAUSED);
	check_frame(f, (size_t)n, WIRE_F_SWITCHOVER, &h);
	assert_int_equal(frame_get_switchover(f + 8, h.len, &round, &flags, err, sizeof(err)), 0);
	assert_int_equal(round, 3);
	assert_int_equal(flags, WIRE_SWITCHOVER_PAUSED);
}

static void test_frame_state_roundtrip(void **state)
{
	static const size_t sizes[] = { 1, 12, 4096, WIRE_MAX_STATE };
	uint8_t *sec = malloc(WIRE_MAX_STATE), *f = malloc(WIRE_MAX_STATE + 12);
	struct frame_hdr h;

	(void)state;
	assert_non_null(sec);
	assert_non_null(f);
	fill_random(sec, WIRE_MAX_STATE);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ssize_t n = frame_put_state(f, WIRE_MAX_STATE + 12, sec, sizes[i]);

		assert_int_equal(n, sizes[i] + 12);
		check_frame(f, (size_t)n, WIRE_F_STATE, &h);
		assert_int_equal(h.len, sizes[i]);
		assert_memory_equal(f + 8, sec, sizes[i]);
	}
	/* the writer refuses what the reader would refuse */
	assert_int_equal(frame_put_state(f, WIRE_MAX_STATE + 12, sec, 0), -EINVAL);
	assert_int_equal(frame_put_state(f, WIRE_MAX_STATE + 13, sec, WIRE_MAX_STATE + 1), -EINVAL);
	free(sec);
	free(f);
}

static void test_frame_complete_roundtrip(void **state)
{
	struct wire_complete in, out;
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	for (uint8_t alg = WIRE_DIGEST_NONE; alg <= WIRE_DIGEST_SHA256; alg++) {
		in.pages = 1ull << 33;
		in.state_sections = 11;
		in.digest_alg = alg;
		fill_random(in.digest, sizeof(in.digest));
		n = frame_put_complete(f, sizeof(f), &in);
		assert_int_equal(n, 8 + 45 + 4);
		check_frame(f, (size_t)n, WIRE_F_COMPLETE, &h);
		assert_int_equal(frame_get_complete(f + 8, h.len, &out, err, sizeof(err)), 0);
		assert_int_equal(out.pages, in.pages);
		assert_int_equal(out.state_sections, 11);
		assert_int_equal(out.digest_alg, alg);
		assert_memory_equal(out.digest, in.digest, WIRE_DIGEST_BYTES);
	}
}

static void test_frame_error_roundtrip(void **state)
{
	char msg[WIRE_MAX_MSG + 100];
	struct wire_error out;
	struct frame_hdr h;
	uint8_t f[WIRE_MAX_MSG + 64];
	ssize_t n;

	(void)state;
	n = frame_put_error(f, sizeof(f), EPROTO, "PAGES: entry 3: page 9 lies outside RAM");
	assert_true(n > 0);
	check_frame(f, (size_t)n, WIRE_F_ERROR, &h);
	assert_int_equal(frame_get_error(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.code, EPROTO);
	assert_string_equal(out.msg, "PAGES: entry 3: page 9 lies outside RAM");

	/* empty message */
	n = frame_put_error(f, sizeof(f), 0, "");
	assert_int_equal(n, 8 + 6 + 4);
	check_frame(f, (size_t)n, WIRE_F_ERROR, &h);
	assert_int_equal(frame_get_error(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_string_equal(out.msg, "");

	/* a longer message is cut at WIRE_MAX_MSG bytes */
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	n = frame_put_error(f, sizeof(f), 1, msg);
	assert_int_equal(n, 8 + 6 + WIRE_MAX_MSG + 4);
	check_frame(f, (size_t)n, WIRE_F_ERROR, &h);
	assert_int_equal(frame_get_error(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(strlen(out.msg), WIRE_MAX_MSG);
}

static void test_frame_hello_ack_roundtrip(void **state)
{
	struct wire_hello_ack in = { WIRE_VERSION, WIRE_CAP_ZSTD | WIRE_CAP_VERIFY }, out;
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_hello_ack(f, sizeof(f), &in);
	assert_int_equal(n, 8 + 8 + 4);
	check_frame(f, (size_t)n, WIRE_F_HELLO_ACK, &h);
	assert_int_equal(frame_get_hello_ack(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.version, WIRE_VERSION);
	assert_int_equal(out.caps, in.caps);
}

static void test_frame_ack_roundtrip(void **state)
{
	struct wire_ack in = { 42, 1ull << 40 }, out;
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_ack(f, sizeof(f), &in);
	assert_int_equal(n, 8 + 12 + 4);
	check_frame(f, (size_t)n, WIRE_F_ACK, &h);
	assert_int_equal(frame_get_ack(f + 8, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.round, 42);
	assert_int_equal(out.pages, 1ull << 40);
}

static void test_frame_resumed_roundtrip(void **state)
{
	struct frame_hdr h;
	uint8_t f[64];

	(void)state;
	for (uint8_t ok = 0; ok <= 1; ok++) {
		struct wire_resumed in = { ok }, out = { 7 };
		ssize_t n = frame_put_resumed(f, sizeof(f), &in);

		assert_int_equal(n, 8 + 4 + 4);
		check_frame(f, (size_t)n, WIRE_F_RESUMED, &h);
		assert_int_equal(frame_get_resumed(f + 8, h.len, &out, err, sizeof(err)), 0);
		assert_int_equal(out.digest_ok, ok);
	}
}

static void test_frame_ready_go_roundtrip(void **state)
{
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	for (uint8_t ok = 0; ok <= 1; ok++) {
		struct wire_resumed in = { ok }, out = { 7 };

		n = frame_put_ready(f, sizeof(f), &in);
		assert_int_equal(n, 8 + 4 + 4);
		check_frame(f, (size_t)n, WIRE_F_READY, &h);
		assert_int_equal(frame_get_ready(f + 8, h.len, &out, err, sizeof(err)), 0);
		assert_int_equal(out.digest_ok, ok);
	}
	n = frame_put_go(f, sizeof(f));
	assert_int_equal(n, 8 + 4 + 4);
	check_frame(f, (size_t)n, WIRE_F_GO, &h);
	assert_int_equal(frame_get_go(f + 8, h.len, err, sizeof(err)), 0);
	assert_int_equal(frame_put_go(f, 15), -ENOSPC);
}

static void test_frame_ready_go_rejects(void **state)
{
	struct wire_resumed r;
	uint8_t p[8] = { 0 };

	(void)state;
	p[0] = 2;
	expect_err(frame_get_ready(p, 4, &r, err, sizeof(err)), -EBADMSG, "READY: digest_ok 2");
	p[0] = 1;
	p[3] = 1;
	expect_err(frame_get_ready(p, 4, &r, err, sizeof(err)), -EBADMSG,
		   "READY: reserved field not zero");
	p[3] = 0;
	expect_err(frame_get_ready(p, 5, &r, err, sizeof(err)), -EBADMSG,
		   "READY: payload length mismatch");
	memset(p, 0, sizeof(p));
	for (int i = 0; i < 4; i++) {
		p[i] = 0x80;
		expect_err(frame_get_go(p, 4, err, sizeof(err)), -EBADMSG,
			   "GO: reserved field not zero");
		p[i] = 0;
	}
	expect_err(frame_get_go(p, 3, err, sizeof(err)), -EBADMSG, "GO: payload length mismatch");
}

static void test_frame_page_req_roundtrip(void **state)
{
	/* the last WIRE_MAX_BATCH pages of a RAM of 4 * WIRE_MAX_BATCH pages */
	struct wire_page_req in = { 3 * WIRE_MAX_BATCH, WIRE_MAX_BATCH }, out;
	struct frame_hdr h;
	uint8_t f[64];
	ssize_t n;

	(void)state;
	n = frame_put_page_req(f, sizeof(f), &in);
	assert_int_equal(n, 8 + 12 + 4);
	check_frame(f, (size_t)n, WIRE_F_PAGE_REQ, &h);
	assert_int_equal(frame_get_page_req(f + 8, h.len, 4 * WIRE_MAX_BATCH, &out, err,
					    sizeof(err)),
			 0);
	assert_int_equal(out.page, 3 * WIRE_MAX_BATCH);
	assert_int_equal(out.count, WIRE_MAX_BATCH);
}

static void test_frame_writers_need_space(void **state)
{
	struct wire_hello hello;
	struct wire_end_round er = { 1, 2, 3 };
	struct wire_complete c = { 0 };
	struct wire_hello_ack ha = { WIRE_VERSION, 0 };
	struct wire_ack a = { 1, 2 };
	struct wire_resumed r = { 1 };
	struct wire_page_req q = { 1, 1 };
	uint8_t f[512];

	(void)state;
	sample_hello(&hello);
	for (size_t cap = 0; cap < 8 + WIRE_HELLO_BYTES + 4; cap++)
		assert_int_equal(frame_put_hello(f, cap, &hello), -ENOSPC);
	for (size_t cap = 0; cap < 32; cap++)
		assert_int_equal(frame_put_end_round(f, cap, &er), -ENOSPC);
	for (size_t cap = 0; cap < 20; cap++)
		assert_int_equal(frame_put_switchover(f, cap, 1, 0), -ENOSPC);
	for (size_t cap = 0; cap < 13; cap++)
		assert_int_equal(frame_put_state(f, cap, "x", 1), -ENOSPC);
	for (size_t cap = 0; cap < 57; cap++)
		assert_int_equal(frame_put_complete(f, cap, &c), -ENOSPC);
	for (size_t cap = 0; cap < 21; cap++)
		assert_int_equal(frame_put_error(f, cap, 1, "abc"), -ENOSPC);
	for (size_t cap = 0; cap < 20; cap++)
		assert_int_equal(frame_put_hello_ack(f, cap, &ha), -ENOSPC);
	for (size_t cap = 0; cap < 24; cap++)
		assert_int_equal(frame_put_ack(f, cap, &a), -ENOSPC);
	for (size_t cap = 0; cap < 16; cap++)
		assert_int_equal(frame_put_resumed(f, cap, &r), -ENOSPC);
	for (size_t cap = 0; cap < 24; cap++)
		assert_int_equal(frame_put_page_req(f, cap, &q), -ENOSPC);
	/* and exactly enough is enough */
	assert_int_equal(frame_put_switchover(f, 20, 1, 0), 20);
	assert_int_equal(frame_put_error(f, 21, 1, "abc"), 21);
}

/* ---- PAGES: builder and iterator ------------------------------------------- */

struct codecs {
	struct codec_ctx *ctx[CODEC_COUNT];
};

static void codecs_open(struct codecs *c)
{
	static const char *const names[CODEC_COUNT] = { "zero", "raw", "xbzrle", "zstd", "lz4" };

	for (int i = 0; i < CODEC_COUNT; i++) {
		struct codec_config cfg;

		assert_int_equal(codec_by_name(names[i], &cfg), 0);
		assert_int_equal(codec_ctx_create(&cfg, PAGE, &c->ctx[i]), 0);
	}
}

static void codecs_close(struct codecs *c)
{
	for (int i = 0; i < CODEC_COUNT; i++)
		codec_ctx_destroy(c->ctx[i]);
}

static void test_frame_batch_roundtrip_all_codecs(void **state)
{
	enum { N = 40 };
	struct codecs c;
	uint8_t *old = malloc((size_t)N * PAGE), *cur = malloc((size_t)N * PAGE);
	uint8_t *dst = malloc((size_t)N * PAGE), *f = malloc(MAX_FRAME);
	uint8_t used[CODEC_COUNT] = { 0 };
	struct page_batch b;
	struct page_iter it;
	struct wire_page pg;
	struct frame_hdr h;
	size_t total;
	unsigned n = 0;
	int ret;

	(void)state;
	assert_true(old && cur && dst && f);
	codecs_open(&c);
	/* page i is encoded with codec i % 5 */
	for (unsigned i = 0; i < N; i++) {
		uint8_t *o = old + (size_t)i * PAGE, *p = cur + (size_t)i * PAGE;

		switch (i % CODEC_COUNT) {
		case CODEC_ZERO:
			memset(p, 0, PAGE);
			fill_random(o, PAGE);
			break;
		case CODEC_RAW:
			fill_random(p, PAGE);
			fill_random(o, PAGE);
			break;
		case CODEC_XBZRLE:
			fill_random(o, PAGE);
			memcpy(p, o, PAGE);
			for (int k = 0; k < 20; k++)
				p[rnd() % PAGE] ^= (uint8_t)(1 + rnd() % 255);
			p[PAGE - 1] ^= 0x55;	/* a difference in the last byte */
			break;
		default:
			fill_text(p, PAGE);
			fill_random(o, PAGE);
			break;
		}
	}
	batch_begin(&b, f, MAX_FRAME, 9);
	for (unsigned i = 0; i < N; i++) {
		unsigned id = i % CODEC_COUNT;
		const struct codec_ops *ops = codec_get(id);
		size_t bound = ops->bound(PAGE);
		uint8_t *d = batch_reserve(&b, bound);
		ssize_t len;

		assert_non_null(d);
		if (id == CODEC_XBZRLE)
			codec_ctx_set_ref(c.ctx[id], old + (size_t)i * PAGE);
		len = codec_encode(c.ctx[id], cur + (size_t)i * PAGE, PAGE, d, bound);
		assert_true(len >= 0);
		batch_commit(&b, 3 * i + 1, (uint8_t)id, (size_t)len);
	}
	assert_int_equal(b.count, N);
	total = batch_finish(&b);
	assert_int_equal(b.count, 0);
	check_frame(f, total, WIRE_F_PAGES, &h);

	assert_int_equal(pages_begin(&it, f + 8, h.len, 3 * N, PAGE, ALL_CODECS, err, sizeof(err)),
			 0);
	assert_int_equal(it.count, N);
	assert_int_equal(it.round, 9);
	while ((ret = pages_next(&it, &pg, err, sizeof(err))) == 1) {
		uint8_t *d = dst + (size_t)n * PAGE;

		assert_int_equal(pg.page, 3 * n + 1);
		assert_int_equal(pg.codec, n % CODEC_COUNT);
		assert_true(pg.data >= f + 8 && pg.data + pg.len <= f + 8 + h.len);
		memcpy(d, old + (size_t)n * PAGE, PAGE);	/* the receiver's copy */
		assert_int_equal(codec_decode(c.ctx[pg.codec], pg.data, pg.len, d, PAGE), PAGE);
		assert_memory_equal(d, cur + (size_t)n * PAGE, PAGE);
		used[pg.codec] = 1;
		n++;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(n, N);
	/* the end is sticky */
	assert_int_equal(pages_next(&it, &pg, err, sizeof(err)), 0);
	for (int i = 0; i < CODEC_COUNT; i++)
		assert_true(used[i]);

	/* the buffer is reused for the next batch */
	batch_begin(&b, f, MAX_FRAME, 10);
	assert_int_equal(batch_finish(&b), 0);
	assert_non_null(batch_reserve(&b, 0));
	batch_commit(&b, 0, CODEC_ZERO, 0);
	total = batch_finish(&b);
	assert_int_equal(total, 8 + 8 + 13 + 4);
	check_frame(f, total, WIRE_F_PAGES, &h);
	assert_int_equal(pages_begin(&it, f + 8, h.len, 1, PAGE, 0, err, sizeof(err)), 0);
	assert_int_equal(it.round, 10);
	assert_int_equal(pages_next(&it, &pg, err, sizeof(err)), 1);
	assert_int_equal(pg.codec, CODEC_ZERO);
	assert_int_equal(pg.len, 0);
	assert_int_equal(pages_next(&it, &pg, err, sizeof(err)), 0);

	codecs_close(&c);
	free(old);
	free(cur);
	free(dst);
	free(f);
}

static void test_frame_batch_full_count(void **state)
{
	uint8_t *f = malloc(MAX_FRAME);
	struct page_batch b;
	struct page_iter it;
	struct wire_page pg;
	struct frame_hdr h;
	unsigned n = 0;
	size_t total;

	(void)state;
	assert_non_null(f);
	batch_begin(&b, f, MAX_FRAME, 1);
	for (unsigned i = 0; i < WIRE_MAX_BATCH; i++) {
		assert_non_null(batch_reserve(&b, 0));
		batch_commit(&b, i, CODEC_ZERO, 0);
	}
	/* the 513th page does not fit in any frame */
	assert_null(batch_reserve(&b, 0));
	total = batch_finish(&b);
	assert_int_equal(total, 8 + 8 + WIRE_MAX_BATCH * 13 + 4);
	check_frame(f, total, WIRE_F_PAGES, &h);
	assert_int_equal(pages_begin(&it, f + 8, h.len, WIRE_MAX_BATCH, PAGE, 0, err, sizeof(err)),
			 0);
	while (pages_next(&it, &pg, err, sizeof(err)) == 1)
		assert_int_equal(pg.page, n++);
	assert_int_equal(n, WIRE_MAX_BATCH);
	free(f);
}

static void test_frame_batch_max_payload(void **state)
{
	uint8_t *f = malloc(MAX_FRAME);
	struct page_batch b;
	struct page_iter it;
	struct wire_page pg;
	struct frame_hdr h;
	unsigned n = 0;
	size_t total;

	(void)state;
	assert_non_null(f);
	/* a buffer of exactly the largest frame holds 512 raw pages */
	batch_begin(&b, f, MAX_FRAME, 2);
	for (unsigned i = 0; i < WIRE_MAX_BATCH; i++) {
		uint8_t *d = batch_reserve(&b, PAGE);

		assert_non_null(d);
		memset(d, (int)i, PAGE);
		batch_commit(&b, i, CODEC_RAW, PAGE);
	}
	assert_null(batch_reserve(&b, 0));
	total = batch_finish(&b);
	assert_int_equal(total, MAX_FRAME);
	check_frame(f, total, WIRE_F_PAGES, &h);
	assert_int_equal(h.len, WIRE_MAX_PAYLOAD);
	assert_int_equal(pages_begin(&it, f + 8, h.len, WIRE_MAX_BATCH, PAGE, 0, err, sizeof(err)),
			 0);
	while (pages_next(&it, &pg, err, sizeof(err)) == 1) {
		assert_int_equal(pg.len, PAGE);
		assert_int_equal(pg.data[0], (uint8_t)n);
		assert_int_equal(pg.data[PAGE - 1], (uint8_t)n);
		n++;
	}
	assert_int_equal(n, WIRE_MAX_BATCH);
	free(f);
}

static void test_frame_batch_full_space(void **state)
{
	uint8_t f[3 * (13 + PAGE) + 20];
	struct page_batch b;

	(void)state;
	/* room for exactly three raw pages, then the builder says full */
	batch_begin(&b, f, sizeof(f), 1);
	for (unsigned i = 0; i < 3; i++) {
		assert_non_null(batch_reserve(&b, PAGE));
		batch_commit(&b, i, CODEC_RAW, PAGE);
	}
	assert_null(batch_reserve(&b, PAGE));
	assert_null(batch_reserve(&b, 1));
	/* a reserve larger than what is committed still counts */
	batch_begin(&b, f, sizeof(f), 1);
	assert_null(batch_reserve(&b, sizeof(f)));
	assert_int_equal(batch_finish(&b), 0);
	assert_int_equal(batch_finish(&b), 0);
}

/* ---- header rejections ------------------------------------------------------- */

static void test_frame_rejects_truncated_header(void **state)
{
	uint8_t f[8] = { 3, 0, 0, 0, 20, 0, 0, 0 };
	struct frame_hdr h;

	(void)state;
	for (size_t len = 0; len < 8; len++)
		expect_err(frame_check_header(f, len, &h, err, sizeof(err)), -EBADMSG,
			   "frame header truncated");
	assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
	/* the message names how much arrived */
	assert_int_equal(frame_check_header(f, 5, &h, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "5 of 8"));
	/* NULL err is fine */
	assert_int_equal(frame_check_header(f, 5, &h, NULL, 0), -EBADMSG);
}

static void test_frame_rejects_unknown_type(void **state)
{
	static const uint16_t bad[] = { 0, 13, 14, 15, 25, 26, 0x100, 0x8001, 0xffff };
	uint8_t f[8] = { 0, 0, 0, 0, 20, 0, 0, 0 };
	struct frame_hdr h;
	char want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_le(f, 2, bad[i]);
		snprintf(want, sizeof(want), "unknown frame type %u", bad[i]);
		expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG, want);
	}
}

static void test_frame_rejects_flags(void **state)
{
	uint8_t f[8] = { WIRE_F_END_ROUND, 0, 0, 0, 20, 0, 0, 0 };
	struct frame_hdr h;

	(void)state;
	for (unsigned bit = 0; bit < 16; bit++) {
		set_le(f + 2, 2, 1u << bit);
		expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG,
			   "END_ROUND frame with unknown flags");
	}
	set_le(f + 2, 2, 0x8000);
	assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "0x8000"));
}

/* KEY / KEY_ACK (--ssh-data tls): round trip, and every field checked. */
static void test_frame_key(void **state)
{
	uint8_t f[WIRE_HDR_BYTES + WIRE_KEY_BYTES + WIRE_CRC_BYTES];
	struct wire_key k = {.key_len = 32, .lifetime_ms = 60000}, out;
	struct wire_key_ack a = {.port = 49153}, aout;
	uint8_t *p = f + WIRE_HDR_BYTES;
	ssize_t n;

	(void)state;
	snprintf(k.identity, sizeof(k.identity), "0123456789abcdef0123456789abcde");
	for (unsigned i = 0; i < WIRE_KEY_MAX; i++)
		k.key[i] = (uint8_t)(i * 7 + 1);
	n = frame_put_key(f, sizeof(f), &k);
	assert_int_equal(n, (ssize_t)sizeof(f));
	assert_int_equal(frame_get_key(p, WIRE_KEY_BYTES, &out, err, sizeof(err)), 0);
	assert_string_equal(out.identity, k.identity);
	assert_memory_equal(out.key, k.key, WIRE_KEY_MAX);
	assert_int_equal(out.key_len, 32);
	assert_int_equal(out.lifetime_ms, 60000);
	/* an identity byte that is not hex */
	p[3] = 'G';
	expect_err(frame_get_key(p, WIRE_KEY_BYTES, &out, err, sizeof(err)), -EBADMSG,
		   "identity byte 3 is not hex");
	p[3] = '3';
	/* no NUL within the field */
	p[31] = 'f';
	expect_err(frame_get_key(p, WIRE_KEY_BYTES, &out, err, sizeof(err)), -EBADMSG,
		   "not NUL-terminated");
	p[31] = 0;
	/* key length and lifetime limits */
	k.key_len = 15;
	n = frame_put_key(f, sizeof(f), &k);
	assert_true(n > 0);
	expect_err(frame_get_key(p, WIRE_KEY_BYTES, &out, err, sizeof(err)), -EBADMSG,
		   "key of 15 bytes");
	k.key_len = 16;
	k.lifetime_ms = WIRE_KEY_MAX_LIFETIME_MS + 1;
	n = frame_put_key(f, sizeof(f), &k);
	assert_true(n > 0);
	expect_err(frame_get_key(p, WIRE_KEY_BYTES, &out, err, sizeof(err)), -EBADMSG, "lifetime");
	/* KEY_ACK */
	n = frame_put_key_ack(f, sizeof(f), &a);
	assert_int_equal(n, WIRE_HDR_BYTES + 4 + WIRE_CRC_BYTES);
	assert_int_equal(frame_get_key_ack(p, 4, &aout, err, sizeof(err)), 0);
	assert_int_equal(aout.port, 49153);
	p[2] = 1;
	expect_err(frame_get_key_ack(p, 4, &aout, err, sizeof(err)), -EBADMSG, "reserved");
	p[2] = 0;
	p[0] = p[1] = 0;
	expect_err(frame_get_key_ack(p, 4, &aout, err, sizeof(err)), -EBADMSG, "port 0");
}

static void test_frame_rejects_length_per_type(void **state)
{
	static const struct {
		uint16_t type;
		uint32_t min, max;
		const char *name;
	} t[] = {
		{ WIRE_F_HELLO, WIRE_HELLO_BYTES, WIRE_HELLO_BYTES, "HELLO" },
		{ WIRE_F_PAGES, 21, WIRE_MAX_PAYLOAD, "PAGES" },
		{ WIRE_F_END_ROUND, 20, 20, "END_ROUND" },
		{ WIRE_F_SWITCHOVER, 8, 8, "SWITCHOVER" },
		{ WIRE_F_STATE, 1, WIRE_MAX_STATE, "STATE" },
		{ WIRE_F_COMPLETE, 45, 45, "COMPLETE" },
		{ WIRE_F_ERROR, 6, 6 + WIRE_MAX_MSG, "ERROR" },
		{ WIRE_F_HELLO_ACK, 8, 8, "HELLO_ACK" },
		{ WIRE_F_ACK, 12, 12, "ACK" },
		{ WIRE_F_RESUMED, 4, 4, "RESUMED" },
		{ WIRE_F_PAGE_REQ, 12, 12, "PAGE_REQ" },
		{ WIRE_F_KEY, WIRE_KEY_BYTES, WIRE_KEY_BYTES, "KEY" },
		{ WIRE_F_KEY_ACK, 4, 4, "KEY_ACK" },
	};
	uint8_t f[8];
	struct frame_hdr h;
	char want[96];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const uint32_t bad[] = { 0, t[i].min - 1, t[i].max + 1, WIRE_MAX_PAYLOAD + 1,
					 UINT32_MAX };

		set_le(f, 2, t[i].type);
		set_le(f + 2, 2, 0);
		/* both limits are accepted */
		set_le(f + 4, 4, t[i].min);
		assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
		assert_int_equal(h.len, t[i].min);
		set_le(f + 4, 4, t[i].max);
		assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			if (bad[k] >= t[i].min && bad[k] <= t[i].max)
				continue;	/* 0 and min-1 coincide for STATE */
			set_le(f + 4, 4, bad[k]);
			if (t[i].min == t[i].max)
				snprintf(want, sizeof(want), "%s frame of %u bytes, must be %u",
					 t[i].name, bad[k], t[i].min);
			else
				snprintf(want, sizeof(want), "%s frame of %u bytes, must be %u..%u",
					 t[i].name, bad[k], t[i].min, t[i].max);
			expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG, want);
		}
	}
}

static void test_frame_rejects_any_flipped_byte(void **state)
{
	struct wire_end_round er = { 3, 1000, 77 };
	uint8_t f[64], g[64];
	ssize_t n;

	(void)state;
	n = frame_put_end_round(f, sizeof(f), &er);
	assert_int_equal(n, 32);
	for (ssize_t i = 0; i < n; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(g, f, (size_t)n);
			g[i] ^= (uint8_t)(1u << bit);
			expect_err(frame_check_crc(g, (size_t)n, err, sizeof(err)), -EBADMSG,
				   "checksum mismatch");
		}
		memcpy(g, f, (size_t)n);
		g[i] ^= 0xff;
		expect_err(frame_check_crc(g, (size_t)n, err, sizeof(err)), -EBADMSG,
			   "checksum mismatch (stored 0x");
	}
	/* the message names the frame type when the header is intact */
	memcpy(g, f, (size_t)n);
	g[10] ^= 1;
	expect_err(frame_check_crc(g, (size_t)n, err, sizeof(err)), -EBADMSG,
		   "END_ROUND frame: checksum mismatch");
	/* the CRC of a larger frame: a state section of 4 KiB */
	{
		uint8_t sec[PAGE], *big = malloc(PAGE + 12);

		assert_non_null(big);
		fill_random(sec, sizeof(sec));
		n = frame_put_state(big, PAGE + 12, sec, sizeof(sec));
		assert_int_equal(n, PAGE + 12);
		for (ssize_t i = 0; i < n; i += 97) {
			big[i] ^= 0x10;
			expect_err(frame_check_crc(big, (size_t)n, err, sizeof(err)), -EBADMSG,
				   "checksum mismatch");
			big[i] ^= 0x10;
		}
		assert_int_equal(frame_check_crc(big, (size_t)n, err, sizeof(err)), 0);
		free(big);
	}
	for (size_t len = 0; len < 12; len++)
		expect_err(frame_check_crc(f, len, err, sizeof(err)), -EBADMSG, "frame truncated");
}

/* ---- HELLO ------------------------------------------------------------------ */

/* A valid HELLO with one payload field (offset, width in bytes) set to v. */
static int hello_with(size_t off, unsigned width, uint64_t v, struct wire_hello *out)
{
	struct wire_hello in;
	struct frame_hdr h;
	uint8_t f[512];
	ssize_t n;

	sample_hello(&in);
	n = frame_put_hello(f, sizeof(f), &in);
	assert_true(n > 0);
	set_le(f + 8 + off, width, v);
	reseal(f, (size_t)n);
	check_frame(f, (size_t)n, WIRE_F_HELLO, &h);
	return frame_get_hello(f + 8, h.len, out, err, sizeof(err));
}

/* HELLO payload offsets */
#define H_MAGIC 0
#define H_VERSION 8
#define H_FLAGS 10
#define H_CAPS 12
#define H_PAGE_SIZE 16
#define H_MEM 20
#define H_VCPUS 28
#define H_CHANNEL 32
#define H_CHANNELS 36
#define H_NAME 48
#define H_GUEST 112
#define H_ARGS 128
#define H_MAC 384

static void test_frame_hello_rejects_bad_magic(void **state)
{
	struct wire_hello out;

	(void)state;
	expect_err(hello_with(H_MAGIC, 8, 0x4b564d49475354ull, &out), -EBADMSG,
		   "HELLO: bad magic 0x004b564d49475354, not a kvmig stream");
	expect_err(hello_with(H_MAGIC, 1, 'k', &out), -EBADMSG, "bad magic");
	expect_err(hello_with(H_MAGIC + 7, 1, 0, &out), -EBADMSG, "not a kvmig stream");
}

static void test_frame_hello_rejects_wrong_version(void **state)
{
	struct wire_hello out;

	(void)state;
	expect_err(hello_with(H_VERSION, 2, 0, &out), -EPROTO,
		   "HELLO: stream version 0, this build speaks 1");
	expect_err(hello_with(H_VERSION, 2, 2, &out), -EPROTO, "stream version 2");
	expect_err(hello_with(H_VERSION, 2, 0xffff, &out), -EPROTO, "stream version 65535");
}

/* A valid HELLO with flags, channel and caps set as given. */
static int hello_flags(unsigned flags, uint32_t channel, uint32_t caps, struct wire_hello *out)
{
	struct wire_hello in;
	struct frame_hdr h;
	uint8_t f[512];
	ssize_t n;

	sample_hello(&in);
	in.flags = (uint16_t)flags;
	in.channel = channel;
	in.caps = caps;
	n = frame_put_hello(f, sizeof(f), &in);
	assert_true(n > 0);
	check_frame(f, (size_t)n, WIRE_F_HELLO, &h);
	return frame_get_hello(f + 8, h.len, out, err, sizeof(err));
}

static void test_frame_hello_flags(void **state)
{
	struct wire_hello out;

	(void)state;
	/* unknown bits, in either byte */
	expect_err(hello_with(H_FLAGS, 2, 0x4, &out), -EBADMSG, "HELLO: unknown flags 0x4");
	expect_err(hello_with(H_FLAGS + 1, 1, 0x80, &out), -EBADMSG, "HELLO: unknown flags 0x8000");
	/* a FAULT or RESUME connection: channel 0, POSTCOPY offered, one of the two */
	assert_int_equal(hello_flags(WIRE_HELLO_FAULT, 0, WIRE_CAP_POSTCOPY, &out), 0);
	assert_int_equal(out.flags, WIRE_HELLO_FAULT);
	assert_int_equal(hello_flags(WIRE_HELLO_RESUME, 0, WIRE_CAP_ALL, &out), 0);
	assert_int_equal(out.flags, WIRE_HELLO_RESUME);
	expect_err(hello_flags(WIRE_HELLO_FAULT | WIRE_HELLO_RESUME, 0, WIRE_CAP_ALL, &out),
		   -EBADMSG, "HELLO: FAULT and RESUME at once");
	expect_err(hello_flags(WIRE_HELLO_FAULT, 1, WIRE_CAP_ALL, &out), -EBADMSG,
		   "HELLO: a FAULT connection on channel 1");
	expect_err(hello_flags(WIRE_HELLO_RESUME, 3, WIRE_CAP_ALL, &out), -EBADMSG,
		   "HELLO: a RESUME connection on channel 3");
	expect_err(hello_flags(WIRE_HELLO_FAULT, 0, WIRE_CAP_ALL & ~WIRE_CAP_POSTCOPY, &out),
		   -EBADMSG, "HELLO: a FAULT connection without the POSTCOPY capability");
	expect_err(hello_flags(WIRE_HELLO_RESUME, 0, 0, &out), -EBADMSG,
		   "a RESUME connection without the POSTCOPY capability");
	/* no flags: any channel, any caps */
	assert_int_equal(hello_flags(0, 3, 0, &out), 0);
	assert_int_equal(out.flags, 0);
}

static void test_frame_hello_rejects_unknown_caps(void **state)
{
	struct wire_hello out;

	(void)state;
	expect_err(hello_with(H_CAPS, 4, WIRE_CAP_ALL + 1, &out), -EBADMSG,
		   "HELLO: unknown capability bits 0x100");
	expect_err(hello_with(H_CAPS, 4, 0x80000001u, &out), -EBADMSG,
		   "unknown capability bits 0x80000000");
	assert_int_equal(hello_with(H_CAPS, 4, 0, &out), 0);
	assert_int_equal(hello_with(H_CAPS, 4, WIRE_CAP_ALL, &out), 0);
}

static void test_frame_hello_rejects_page_size(void **state)
{
	static const uint32_t bad[] = { 0, 1, 512, 2048, 4095, 4097, 8192, 65536, 2u << 20 };
	struct wire_hello out;
	char want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "HELLO: page size %u, only 4096 is supported", bad[i]);
		expect_err(hello_with(H_PAGE_SIZE, 4, bad[i], &out), -EBADMSG, want);
	}
}

static void test_frame_hello_rejects_mem(void **state)
{
	static const uint64_t bad[] = { 0, 1, PAGE - 1, PAGE + 1, (1ull << 40) + PAGE,
					1ull << 41, UINT64_MAX, UINT64_MAX - PAGE + 1 };
	struct wire_hello out;
	char want[80];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "HELLO: guest memory of %llu bytes",
			 (unsigned long long)bad[i]);
		expect_err(hello_with(H_MEM, 8, bad[i], &out), -EBADMSG, want);
	}
	assert_int_equal(hello_with(H_MEM, 8, PAGE, &out), 0);
	assert_int_equal(hello_with(H_MEM, 8, 1ull << 40, &out), 0);
	assert_int_equal(out.mem_bytes, 1ull << 40);
}

static void test_frame_hello_rejects_vcpus(void **state)
{
	struct wire_hello out;

	(void)state;
	expect_err(hello_with(H_VCPUS, 4, 0, &out), -EBADMSG, "HELLO: 0 vCPUs");
	expect_err(hello_with(H_VCPUS, 4, 65, &out), -EBADMSG, "HELLO: 65 vCPUs");
	expect_err(hello_with(H_VCPUS, 4, UINT32_MAX, &out), -EBADMSG, "4294967295 vCPUs");
	assert_int_equal(hello_with(H_VCPUS, 4, 1, &out), 0);
	assert_int_equal(hello_with(H_VCPUS, 4, 64, &out), 0);
}

static void test_frame_hello_rejects_channel(void **state)
{
	struct wire_hello out;

	(void)state;
	/* the sample has channels 4 */
	expect_err(hello_with(H_CHANNEL, 4, 4, &out), -EBADMSG, "HELLO: channel 4 of 4");
	expect_err(hello_with(H_CHANNEL, 4, UINT32_MAX, &out), -EBADMSG, "channel 4294967295 of 4");
	assert_int_equal(hello_with(H_CHANNEL, 4, 3, &out), 0);
	expect_err(hello_with(H_CHANNELS, 4, 0, &out), -EBADMSG, "HELLO: channel 1 of 0");
	expect_err(hello_with(H_CHANNELS, 4, 1, &out), -EBADMSG, "HELLO: channel 1 of 1");
	expect_err(hello_with(H_CHANNELS, 4, 65, &out), -EBADMSG, "HELLO: channel 1 of 65");
	assert_int_equal(hello_with(H_CHANNELS, 4, 64, &out), 0);
}

static void test_frame_hello_rejects_unterminated(void **state)
{
	struct wire_hello in, out;
	struct frame_hdr h;
	uint8_t f[512];
	ssize_t n;
	static const struct {
		size_t off, len;
		const char *what;
	} s[] = {
		{ H_NAME, WIRE_NAME_BYTES, "HELLO: name is not NUL-terminated" },
		{ H_GUEST, WIRE_GUEST_BYTES, "HELLO: guest is not NUL-terminated" },
		{ H_ARGS, WIRE_ARGS_BYTES, "HELLO: guest_args is not NUL-terminated" },
	};

	(void)state;
	sample_hello(&in);
	for (size_t i = 0; i < 3; i++) {
		n = frame_put_hello(f, sizeof(f), &in);
		assert_true(n > 0);
		memset(f + 8 + s[i].off, 'z', s[i].len);
		reseal(f, (size_t)n);
		check_frame(f, (size_t)n, WIRE_F_HELLO, &h);
		expect_err(frame_get_hello(f + 8, h.len, &out, err, sizeof(err)), -EBADMSG,
			   s[i].what);
		/* a NUL in the last byte is enough */
		f[8 + s[i].off + s[i].len - 1] = 0;
		reseal(f, (size_t)n);
		assert_int_equal(frame_get_hello(f + 8, h.len, &out, err, sizeof(err)), 0);
	}
	/* bytes after the NUL are ignored */
	n = frame_put_hello(f, sizeof(f), &in);
	assert_true(n > 0);
	memset(f + 8 + H_NAME + 10, 'q', 20);
	reseal(f, (size_t)n);
	assert_int_equal(frame_get_hello(f + 8, WIRE_HELLO_BYTES, &out, err, sizeof(err)), 0);
	assert_string_equal(out.name, "vm-one");
}

static void test_frame_hello_rejects_length(void **state)
{
	struct wire_hello in, out;
	uint8_t f[512];
	ssize_t n;

	(void)state;
	sample_hello(&in);
	n = frame_put_hello(f, sizeof(f), &in);
	assert_true(n > 0);
	/* a typed reader called with the wrong length (header not checked) */
	expect_err(frame_get_hello(f + 8, WIRE_HELLO_BYTES - 1, &out, err, sizeof(err)), -EBADMSG,
		   "HELLO: payload length mismatch");
	expect_err(frame_get_hello(f + 8, WIRE_HELLO_BYTES + 1, &out, err, sizeof(err)), -EBADMSG,
		   "HELLO: payload length mismatch");
	expect_err(frame_get_hello(f + 8, 0, &out, err, sizeof(err)), -EBADMSG, "bad magic");
}

/* ---- PAGES ------------------------------------------------------------------ */

struct ent {
	uint64_t page;
	uint8_t codec;
	uint32_t len;	/* as written in the entry */
	size_t data;	/* data bytes actually present */
};

static uint8_t pbuf[64 * 1024];

/* A PAGES payload in pbuf: count, round, entries, extra trailing bytes. */
static size_t pages_payload(uint32_t count, const struct ent *e, size_t n, size_t trailing)
{
	struct wbuf w;

	wbuf_init(&w, pbuf, sizeof(pbuf));
	put_le32(&w, count);
	put_le32(&w, 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t *d;

		put_le64(&w, e[i].page);
		put_u8(&w, e[i].codec);
		put_le32(&w, e[i].len);
		d = wbuf_reserve(&w, e[i].data);
		assert_true(d || !e[i].data);
		if (e[i].data)
			memset(d, 0xab, e[i].data);
	}
	for (size_t i = 0; i < trailing; i++)
		put_u8(&w, 0x5a);
	assert_true(wbuf_ok(&w));
	return w.len;
}

/* Iterate a payload to its end; Return: 0 or the first error, *ok = entries read. */
static int iterate(size_t len, uint64_t npages, uint32_t caps, unsigned *ok)
{
	struct page_iter it;
	struct wire_page pg;
	int ret;

	*ok = 0;
	ret = pages_begin(&it, pbuf, len, npages, PAGE, caps, err, sizeof(err));
	if (ret < 0)
		return ret;
	while ((ret = pages_next(&it, &pg, err, sizeof(err))) == 1)
		(*ok)++;
	return ret;
}

static void test_frame_pages_rejects_count(void **state)
{
	static const uint32_t bad[] = { 0, WIRE_MAX_BATCH + 1, 100000, UINT32_MAX };
	struct ent e = { 0, CODEC_ZERO, 0, 0 };
	unsigned ok;
	char want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = pages_payload(bad[i], &e, 1, 0);

		snprintf(want, sizeof(want), "PAGES: batch of %u pages, must be 1..512", bad[i]);
		expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG, want);
	}
	/* a payload too short for count and round */
	for (size_t len = 0; len < 8; len++)
		expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG, "has no header");
}

static void test_frame_pages_rejects_truncated_entry(void **state)
{
	struct ent e[2] = { { 0, CODEC_ZERO, 0, 0 }, { 1, CODEC_ZERO, 0, 0 } };
	unsigned ok;
	size_t len;

	(void)state;
	len = pages_payload(2, e, 2, 0);
	/* cut the second entry anywhere in its 13 header bytes */
	for (size_t cut = 1; cut <= 13; cut++) {
		expect_err(iterate(len - cut, NPAGES, 0, &ok), -EBADMSG,
			   "PAGES: entry 1 of 2 truncated");
		assert_int_equal(ok, 1);
	}
	/* count says 3, two entries present */
	len = pages_payload(3, e, 2, 0);
	expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG, "PAGES: entry 2 of 3 truncated");
	assert_int_equal(ok, 2);
}

static void test_frame_pages_rejects_page_outside_ram(void **state)
{
	static const uint64_t bad[] = { NPAGES, NPAGES + 1, NPAGES + 1000, 1ull << 40,
					UINT64_MAX };
	unsigned ok;
	char want[120];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ent e[2] = { { NPAGES - 1, CODEC_ZERO, 0, 0 },
				    { bad[i], CODEC_ZERO, 0, 0 } };
		size_t len = pages_payload(2, e, 2, 0);

		snprintf(want, sizeof(want),
			 "PAGES: entry 1: page %llu lies outside the %u pages of guest RAM",
			 (unsigned long long)bad[i], NPAGES);
		expect_err(iterate(len, NPAGES, 0, &ok), -ERANGE, want);
		assert_int_equal(ok, 1);	/* the last page of RAM is fine */
	}
	/* no RAM at all: every page is outside */
	{
		struct ent e = { 0, CODEC_ZERO, 0, 0 };
		size_t len = pages_payload(1, &e, 1, 0);

		expect_err(iterate(len, 0, 0, &ok), -ERANGE, "page 0 lies outside the 0 pages");
	}
}

static void test_frame_pages_rejects_unknown_codec(void **state)
{
	unsigned ok;

	(void)state;
	for (unsigned c = CODEC_COUNT; c <= 255; c++) {
		struct ent e = { 0, (uint8_t)c, 1, 1 };
		size_t len = pages_payload(1, &e, 1, 0);
		char want[64];

		snprintf(want, sizeof(want), "PAGES: entry 0: unknown codec %u", c);
		expect_err(iterate(len, NPAGES, ALL_CODECS, &ok), -EBADMSG, want);
	}
}

static void test_frame_pages_rejects_codec_not_negotiated(void **state)
{
	static const struct {
		uint8_t codec;
		uint32_t cap;
		const char *name;
	} c[] = {
		{ CODEC_XBZRLE, WIRE_CAP_XBZRLE, "xbzrle" },
		{ CODEC_ZSTD, WIRE_CAP_ZSTD, "zstd" },
		{ CODEC_LZ4, WIRE_CAP_LZ4, "lz4" },
	};
	unsigned ok;
	char want[80];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct ent e = { 5, c[i].codec, 100, 100 };
		size_t len = pages_payload(1, &e, 1, 0);

		snprintf(want, sizeof(want), "PAGES: entry 0: codec %s was not negotiated",
			 c[i].name);
		expect_err(iterate(len, NPAGES, 0, &ok), -EPROTO, want);
		/* every other capability but this one */
		expect_err(iterate(len, NPAGES, WIRE_CAP_ALL & ~c[i].cap, &ok), -EPROTO, want);
		/* negotiated: fine */
		assert_int_equal(iterate(len, NPAGES, c[i].cap, &ok), 0);
		assert_int_equal(ok, 1);
	}
	/* ZERO and RAW need no capability */
	{
		struct ent e[2] = { { 0, CODEC_ZERO, 0, 0 }, { 1, CODEC_RAW, PAGE, PAGE } };
		size_t len = pages_payload(2, e, 2, 0);

		assert_int_equal(iterate(len, NPAGES, 0, &ok), 0);
		assert_int_equal(ok, 2);
	}
}

static void test_frame_pages_rejects_zero_with_data(void **state)
{
	unsigned ok;

	(void)state;
	for (uint32_t n = 1; n <= PAGE; n *= 4) {
		struct ent e = { 0, CODEC_ZERO, n, n };
		size_t len = pages_payload(1, &e, 1, 0);
		char want[64];

		snprintf(want, sizeof(want), "PAGES: entry 0: zero page with %u bytes", n);
		expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG, want);
	}
}

static void test_frame_pages_rejects_raw_size(void **state)
{
	static const uint32_t bad[] = { 0, 1, PAGE - 1, PAGE + 1, 2 * PAGE };
	unsigned ok;
	char want[80];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ent e = { 0, CODEC_RAW, bad[i], bad[i] };
		size_t len = pages_payload(1, &e, 1, 0);

		snprintf(want, sizeof(want), "PAGES: entry 0: raw page of %u bytes, must be 4096",
			 bad[i]);
		expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG, want);
	}
}

static void test_frame_pages_rejects_compressed_size(void **state)
{
	static const char *const names[] = { "xbzrle", "zstd", "lz4" };
	static const uint32_t bad[] = { 0, PAGE, PAGE + 1 };
	unsigned ok;
	char want[80];

	(void)state;
	for (uint8_t c = CODEC_XBZRLE; c <= CODEC_LZ4; c++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct ent e = { 0, c, bad[i], bad[i] };
			size_t len = pages_payload(1, &e, 1, 0);

			snprintf(want, sizeof(want),
				 "PAGES: entry 0: %s payload of %u bytes, must be 1..4095",
				 names[c - CODEC_XBZRLE], bad[i]);
			expect_err(iterate(len, NPAGES, ALL_CODECS, &ok), -EBADMSG, want);
		}
		/* the limits themselves are fine */
		for (uint32_t n = 1; n < PAGE; n += PAGE - 2) {
			struct ent e = { 0, c, n, n };
			size_t len = pages_payload(1, &e, 1, 0);

			assert_int_equal(iterate(len, NPAGES, ALL_CODECS, &ok), 0);
		}
	}
}

static void test_frame_pages_rejects_data_past_end(void **state)
{
	unsigned ok;

	(void)state;
	/* the entry claims 100 bytes, 50 follow */
	{
		struct ent e = { 0, CODEC_ZSTD, 100, 50 };
		size_t len = pages_payload(1, &e, 1, 0);

		expect_err(iterate(len, NPAGES, ALL_CODECS, &ok), -EBADMSG,
			   "PAGES: entry 0: 100 data bytes but only 50 left in the frame");
	}
	/* a raw page cut by one byte, as the second entry */
	{
		struct ent e[2] = { { 0, CODEC_ZERO, 0, 0 }, { 1, CODEC_RAW, PAGE, PAGE - 1 } };
		size_t len = pages_payload(2, e, 2, 0);

		expect_err(iterate(len, NPAGES, 0, &ok), -EBADMSG,
			   "PAGES: entry 1: 4096 data bytes but only 4095 left");
		assert_int_equal(ok, 1);
	}
	/* nothing after the entry header */
	{
		struct ent e = { 0, CODEC_LZ4, 1, 0 };
		size_t len = pages_payload(1, &e, 1, 0);

		expect_err(iterate(len, NPAGES, ALL_CODECS, &ok), -EBADMSG,
			   "1 data bytes but only 0 left");
	}
}

static void test_frame_pages_rejects_trailing_bytes(void **state)
{
	struct ent e[2] = { { 0, CODEC_ZERO, 0, 0 }, { 1, CODEC_LZ4, 7, 7 } };
	unsigned ok;

	(void)state;
	for (size_t t = 1; t <= 20; t++) {
		size_t len = pages_payload(2, e, 2, t);
		char want[64];

		snprintf(want, sizeof(want), "PAGES: %zu byte(s) after the last of 2 entries", t);
		expect_err(iterate(len, NPAGES, ALL_CODECS, &ok), -EBADMSG, want);
		assert_int_equal(ok, 2);
	}
	/* and the same payload without them is fine */
	assert_int_equal(iterate(pages_payload(2, e, 2, 0), NPAGES, ALL_CODECS, &ok), 0);
}

static void test_frame_pages_errors_name_the_entry(void **state)
{
	struct ent e[4] = { { 0, CODEC_ZERO, 0, 0 },
			    { 1, CODEC_RAW, PAGE, PAGE },
			    { 2, CODEC_ZSTD, 10, 10 },
			    { 3, CODEC_ZERO, 5, 5 } };
	unsigned ok;

	(void)state;
	expect_err(iterate(pages_payload(4, e, 4, 0), NPAGES, ALL_CODECS, &ok), -EBADMSG,
		   "PAGES: entry 3: zero page with 5 bytes");
	assert_int_equal(ok, 3);
}

/* ---- other payload readers -------------------------------------------------- */

static void test_frame_error_rejects_length_mismatch(void **state)
{
	struct wire_error out;
	uint8_t p[16 + WIRE_MAX_MSG];

	(void)state;
	memset(p, 'a', sizeof(p));
	set_le(p, 4, 5);
	/* msg_len 10 in a frame with 5 message bytes */
	set_le(p + 4, 2, 10);
	expect_err(frame_get_error(p, 11, &out, err, sizeof(err)), -EBADMSG,
		   "ERROR: message length 10 in a 11-byte frame");
	/* msg_len 3 with 5 bytes after it */
	set_le(p + 4, 2, 3);
	expect_err(frame_get_error(p, 11, &out, err, sizeof(err)), -EBADMSG,
		   "ERROR: message length 3 in a 11-byte frame");
	/* longer than WIRE_MAX_MSG, even when the frame holds it */
	set_le(p + 4, 2, WIRE_MAX_MSG + 1);
	expect_err(frame_get_error(p, 6 + WIRE_MAX_MSG + 1, &out, err, sizeof(err)), -EBADMSG,
		   "message length 1025");
	set_le(p + 4, 2, 0xffff);
	expect_err(frame_get_error(p, 6, &out, err, sizeof(err)), -EBADMSG,
		   "message length 65535 in a 6-byte frame");
	/* too short for code and msg_len (typed reader without the header check) */
	for (size_t len = 0; len < 6; len++)
		expect_err(frame_get_error(p, len, &out, err, sizeof(err)), -EBADMSG,
			   "ERROR: message length");
	/* exactly WIRE_MAX_MSG is fine */
	set_le(p + 4, 2, WIRE_MAX_MSG);
	assert_int_equal(frame_get_error(p, 6 + WIRE_MAX_MSG, &out, err, sizeof(err)), 0);
	assert_int_equal(strlen(out.msg), WIRE_MAX_MSG);
}

static void test_frame_error_replaces_control_chars(void **state)
{
	static const char raw[] = "bad\n\r\tpage\x01\x1f\x7f end \xc3\xa9";
	struct wire_error out;
	uint8_t p[64];
	size_t n = sizeof(raw) - 1;

	(void)state;
	set_le(p, 4, EBADMSG);
	set_le(p + 4, 2, n);
	memcpy(p + 6, raw, n);
	assert_int_equal(frame_get_error(p, 6 + n, &out, err, sizeof(err)), 0);
	/* control characters and DEL become '?', UTF-8 bytes stay */
	assert_string_equal(out.msg, "bad???page??? end \xc3\xa9");
	/* an embedded NUL is a control character too */
	p[6 + 3] = 0;
	assert_int_equal(frame_get_error(p, 6 + n, &out, err, sizeof(err)), 0);
	assert_int_equal(strlen(out.msg), n);
	assert_int_equal(out.msg[3], '?');
}

static void test_frame_page_req_rejects(void **state)
{
	struct wire_page_req q;
	uint8_t p[12];
	char want[120];
	static const struct {
		uint64_t page;
		uint32_t count;
	} out_of_range[] = {
		{ NPAGES, 1 },		{ NPAGES - 1, 2 },	   { 0, NPAGES + 1 },
		{ UINT64_MAX, 1 },	{ UINT64_MAX - 5, 10 },	   { 1ull << 63, 512 },
		{ NPAGES + 1000, 1 },
	};

	(void)state;
	/* count 0 and > WIRE_MAX_BATCH */
	set_le(p, 8, 0);
	set_le(p + 8, 4, 0);
	expect_err(frame_get_page_req(p, 12, NPAGES, &q, err, sizeof(err)), -EBADMSG,
		   "PAGE_REQ: count 0, must be 1..512");
	set_le(p + 8, 4, WIRE_MAX_BATCH + 1);
	expect_err(frame_get_page_req(p, 12, 1ull << 20, &q, err, sizeof(err)), -EBADMSG,
		   "PAGE_REQ: count 513, must be 1..512");
	/* ranges that leave guest RAM, including ones that wrap around */
	for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
		uint32_t count = out_of_range[i].count;

		if (count > WIRE_MAX_BATCH)
			count = WIRE_MAX_BATCH;
		set_le(p, 8, out_of_range[i].page);
		set_le(p + 8, 4, count);
		snprintf(want, sizeof(want),
			 "PAGE_REQ: pages %llu..+%u lie outside the %u pages of guest RAM",
			 (unsigned long long)out_of_range[i].page, count, NPAGES);
		if (out_of_range[i].page < NPAGES && count <= NPAGES - out_of_range[i].page)
			continue;
		expect_err(frame_get_page_req(p, 12, NPAGES, &q, err, sizeof(err)), -ERANGE, want);
	}
	/* the last page exactly */
	set_le(p, 8, NPAGES - 1);
	set_le(p + 8, 4, 1);
	assert_int_equal(frame_get_page_req(p, 12, NPAGES, &q, err, sizeof(err)), 0);
	/* wrong length */
	expect_err(frame_get_page_req(p, 11, NPAGES, &q, err, sizeof(err)), -EBADMSG,
		   "PAGE_REQ: payload length mismatch");
	expect_err(frame_get_page_req(p, 0, NPAGES, &q, err, sizeof(err)), -EBADMSG,
		   "PAGE_REQ: payload length mismatch");
}

static void test_frame_resumed_rejects(void **state)
{
	struct wire_resumed r;
	uint8_t p[8] = { 0 };

	(void)state;
	for (unsigned v = 2; v <= 255; v++) {
		char want[40];

		p[0] = (uint8_t)v;
		snprintf(want, sizeof(want), "RESUMED: digest_ok %u", v);
		expect_err(frame_get_resumed(p, 4, &r, err, sizeof(err)), -EBADMSG, want);
	}
	p[0] = 1;
	for (int i = 1; i < 4; i++) {
		p[i] = 1;
		expect_err(frame_get_resumed(p, 4, &r, err, sizeof(err)), -EBADMSG,
			   "RESUMED: reserved field not zero");
		p[i] = 0;
	}
	expect_err(frame_get_resumed(p, 5, &r, err, sizeof(err)), -EBADMSG,
		   "RESUMED: payload length mismatch");
	expect_err(frame_get_resumed(p, 3, &r, err, sizeof(err)), -EBADMSG,
		   "RESUMED: payload length mismatch");
}

static void test_frame_complete_rejects(void **state)
{
	struct wire_complete c;
	uint8_t p[64] = { 0 };

	(void)state;
	for (unsigned alg = 3; alg <= 255; alg++) {
		char want[64];

		p[12] = (uint8_t)alg;
		snprintf(want, sizeof(want), "COMPLETE: unknown digest algorithm %u", alg);
		expect_err(frame_get_complete(p, 45, &c, err, sizeof(err)), -EBADMSG, want);
	}
	p[12] = WIRE_DIGEST_PAGES;	/* post-copy's digest */
	assert_int_equal(frame_get_complete(p, 45, &c, err, sizeof(err)), 0);
	assert_int_equal(c.digest_alg, WIRE_DIGEST_PAGES);
	p[12] = WIRE_DIGEST_SHA256;
	assert_int_equal(frame_get_complete(p, 45, &c, err, sizeof(err)), 0);
	expect_err(frame_get_complete(p, 44, &c, err, sizeof(err)), -EBADMSG,
		   "COMPLETE: payload length mismatch");
	expect_err(frame_get_complete(p, 46, &c, err, sizeof(err)), -EBADMSG,
		   "COMPLETE: payload length mismatch");
}

static void test_frame_switchover_rejects(void **state)
{
	uint8_t p[12] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	uint32_t round, flags;

	(void)state;
	/* every flag bit but PAUSED and POSTCOPY is unknown */
	for (int i = 4; i < 8; i++) {
		p[i] = 0x20;
		expect_err(frame_get_switchover(p, 8, &round, &flags, err, sizeof(err)), -EBADMSG,
			   "SWITCHOVER: unknown flags");
		p[i] = 0;
	}
	p[4] = 0x7;
	expect_err(frame_get_switchover(p, 8, &round, &flags, err, sizeof(err)), -EBADMSG,
		   "SWITCHOVER: unknown flags 0x4");
	p[4] = WIRE_SWITCHOVER_PAUSED | WIRE_SWITCHOVER_POSTCOPY;
	assert_int_equal(frame_get_switchover(p, 8, &round, &flags, err, sizeof(err)), 0);
	assert_int_equal(flags, WIRE_SWITCHOVER_PAUSED | WIRE_SWITCHOVER_POSTCOPY);
	p[4] = 0;
	expect_err(frame_get_switchover(p, 9, &round, &flags, err, sizeof(err)), -EBADMSG,
		   "SWITCHOVER: payload length mismatch");
	expect_err(frame_get_switchover(p, 7, &round, &flags, err, sizeof(err)), -EBADMSG,
		   "SWITCHOVER:");
}

static void test_frame_hello_ack_rejects(void **state)
{
	struct wire_hello_ack a;
	uint8_t p[12] = { WIRE_VERSION, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	set_le(p, 2, 2);
	expect_err(frame_get_hello_ack(p, 8, &a, err, sizeof(err)), -EPROTO,
		   "HELLO_ACK: stream version 2, this build speaks 1");
	set_le(p, 2, WIRE_VERSION);
	set_le(p + 2, 2, 1);
	expect_err(frame_get_hello_ack(p, 8, &a, err, sizeof(err)), -EBADMSG,
		   "HELLO_ACK: reserved field not zero");
	set_le(p + 2, 2, 0);
	set_le(p + 4, 4, 0x100);
	expect_err(frame_get_hello_ack(p, 8, &a, err, sizeof(err)), -EBADMSG,
		   "HELLO_ACK: unknown capability bits 0x100");
	set_le(p + 4, 4, WIRE_CAP_ALL);
	assert_int_equal(frame_get_hello_ack(p, 8, &a, err, sizeof(err)), 0);
	expect_err(frame_get_hello_ack(p, 9, &a, err, sizeof(err)), -EBADMSG,
		   "HELLO_ACK: payload length mismatch");
}

static void test_frame_fixed_readers_reject_length(void **state)
{
	uint8_t p[64] = { 0 };
	struct wire_end_round e;
	struct wire_ack a;

	(void)state;
	expect_err(frame_get_end_round(p, 19, &e, err, sizeof(err)), -EBADMSG,
		   "END_ROUND: payload length mismatch");
	expect_err(frame_get_end_round(p, 21, &e, err, sizeof(err)), -EBADMSG,
		   "END_ROUND: payload length mismatch");
	assert_int_equal(frame_get_end_round(p, 20, &e, err, sizeof(err)), 0);
	expect_err(frame_get_ack(p, 11, &a, err, sizeof(err)), -EBADMSG,
		   "ACK: payload length mismatch");
	expect_err(frame_get_ack(p, 13, &a, err, sizeof(err)), -EBADMSG,
		   "ACK: payload length mismatch");
	assert_int_equal(frame_get_ack(p, 12, &a, err, sizeof(err)), 0);
}

/* ---- post-copy frames: NEEDED, WANT, PC_DONE ----------------------------------- */

static void test_frame_want_golden_bytes(void **state)
{
	/* WANT pages 64 and 66 of 64..127, the last of its kind: the example of PROTOCOL.md */
	static const uint8_t want[] = { 0x17, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00,
					0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
					0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x4f, 0xfb, 0x16, 0xf5 };
	uint64_t w = 0x5;
	uint8_t f[64];

	(void)state;
	assert_int_equal(frame_put_bitmap(f, sizeof(f), WIRE_F_WANT, 64, 64, WIRE_WANT_LAST, &w),
			 sizeof(want));
	assert_memory_equal(f, want, sizeof(want));
}

/* A bitmap frame of type, checked and read back against npages. */
static int bitmap_read(uint8_t *f, size_t n, unsigned type, uint64_t npages, struct wire_bitmap *b)
{
	struct frame_hdr h;

	check_frame(f, n, type, &h);
	return frame_get_bitmap(f + 8, h.len, type, npages, b, err, sizeof(err));
}

static void test_frame_bitmap_roundtrip(void **state)
{
	static const unsigned types[] = { WIRE_F_NEEDED, WIRE_F_WANT };
	static const uint32_t counts[] = { 1, 63, 64, 65, 130, NPAGES };
	uint64_t words[NPAGES / 64], big[WIRE_MAX_BITMAP / 64];
	static uint8_t f[WIRE_HDR_BYTES + WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 + WIRE_CRC_BYTES];
	struct wire_bitmap b;

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			uint32_t count = counts[i], nw = (count + 63) / 64;
			uint64_t first = count <= NPAGES - 64 ? 64 : 0;
			uint32_t flags = types[t] == WIRE_F_WANT ? WIRE_WANT_LAST : 0;
			ssize_t n;

			for (uint32_t w = 0; w < NPAGES / 64; w++)
				words[w] = rnd() | 1;	/* bits past count too: the writer drops them */
			n = frame_put_bitmap(f, sizeof(f), types[t], first, count, flags, words);
			assert_int_equal(n, WIRE_HDR_BYTES + WIRE_BITMAP_HDR + 8 * nw + WIRE_CRC_BYTES);
			assert_int_equal(bitmap_read(f, (size_t)n, types[t], NPAGES, &b), 0);
			assert_int_equal(b.first, first);
			assert_int_equal(b.count, count);
			assert_int_equal(b.flags, flags);
			for (uint32_t w = 0; w < nw; w++) {
				uint64_t want = words[w];

				if (w == nw - 1 && count % 64)
					want &= (1ull << (count % 64)) - 1;
				assert_int_equal(wire_bitmap_word(&b, w), want);
			}
		}
	}
	/* the largest slice: 2^18 pages, and the guest must hold them */
	memset(big, 0xff, sizeof(big));
	assert_true(frame_put_bitmap(f, sizeof(f), WIRE_F_NEEDED, 0, WIRE_MAX_BITMAP, 0, big) > 0);
	assert_int_equal(bitmap_read(f, sizeof(f), WIRE_F_NEEDED, WIRE_MAX_BITMAP, &b), 0);
	assert_int_equal(wire_bitmap_word(&b, WIRE_MAX_BITMAP / 64 - 1), ~0ull);
	expect_err(bitmap_read(f, sizeof(f), WIRE_F_NEEDED, WIRE_MAX_BITMAP - 1, &b), -ERANGE,
		   "NEEDED: pages 0..+262144 lie outside the 262143 pages of guest RAM");
	/* only NEEDED and WANT are bitmaps */
	assert_int_equal(frame_put_bitmap(f, sizeof(f), WIRE_F_PAGE_REQ, 0, 1, 0, words), -EINVAL);
	assert_int_equal(frame_put_bitmap(f, 20, WIRE_F_WANT, 0, 64, 0, words), -ENOSPC);
}

/* A NEEDED or WANT payload: first, count, flags and nw words of bits. */
static size_t bitmap_payload(uint8_t *p, uint64_t first, uint32_t count, uint32_t flags,
			     uint32_t nw, uint64_t bits)
{
	set_le(p, 8, first);
	set_le(p + 8, 4, count);
	set_le(p + 12, 4, flags);
	for (uint32_t w = 0; w < nw; w++)
		set_le(p + 16 + 8 * w, 8, w == nw - 1 ? bits : 0);
	return 16 + 8 * (size_t)nw;
}

static void test_frame_bitmap_rejects(void **state)
{
	struct wire_bitmap b;
	uint8_t p[16 + 8 * 8];
	size_t n;

	(void)state;
	n = bitmap_payload(p, 0, 64, 0, 1, ~0ull);
	assert_int_equal(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), 0);
	expect_err(frame_get_bitmap(p, n, WIRE_F_PAGES, NPAGES, &b, err, sizeof(err)), -EINVAL,
		   "PAGES is not a bitmap frame");
	expect_err(frame_get_bitmap(p, 15, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "WANT: payload length mismatch");
	n = bitmap_payload(p, 0, 0, 0, 1, 0);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "NEEDED: count 0, must be 1..262144");
	n = bitmap_payload(p, 0, WIRE_MAX_BITMAP + 1, 0, 1, 0);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "NEEDED: count 262145, must be 1..262144");
	n = bitmap_payload(p, 0, 65, 0, 1, 0);	/* 65 pages need two words */
	expect_err(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "WANT: 8 bitmap bytes for 65 pages, must be 16");
	n = bitmap_payload(p, 0, 64, 0, 2, 0);
	expect_err(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "WANT: 16 bitmap bytes for 64 pages, must be 8");
	n = bitmap_payload(p, 32, 64, 0, 1, 1);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "NEEDED: first page 32 is not a multiple of 64");
	n = bitmap_payload(p, NPAGES, 64, 0, 1, 1);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -ERANGE,
		   "NEEDED: pages 256..+64 lie outside the 256 pages of guest RAM");
	n = bitmap_payload(p, NPAGES - 64, 65, 0, 2, 1);
	expect_err(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -ERANGE,
		   "lie outside the 256 pages");
	n = bitmap_payload(p, (uint64_t)-64, 64, 0, 1, 1);	/* first + count wraps */
	expect_err(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -ERANGE,
		   "lie outside");
	/* flags: WANT_LAST on WANT only */
	n = bitmap_payload(p, 0, 64, WIRE_WANT_LAST, 1, 1);
	assert_int_equal(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), 0);
	assert_int_equal(b.flags, WIRE_WANT_LAST);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "NEEDED: unknown flags 0x1");
	n = bitmap_payload(p, 0, 64, 0x2, 1, 1);
	expect_err(frame_get_bitmap(p, n, WIRE_F_WANT, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "WANT: unknown flags 0x2");
	/* a bit past count */
	n = bitmap_payload(p, 0, 10, 0, 1, 1ull << 10);
	expect_err(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), -EBADMSG,
		   "NEEDED: bits set past the 10 pages it covers");
	n = bitmap_payload(p, 0, 10, 0, 1, (1ull << 10) - 1);
	assert_int_equal(frame_get_bitmap(p, n, WIRE_F_NEEDED, NPAGES, &b, err, sizeof(err)), 0);
}

static void test_frame_bitmap_header_limits(void **state)
{
	uint8_t f[8] = { WIRE_F_NEEDED, 0, 0, 0, 0, 0, 0, 0 };
	struct frame_hdr h;

	(void)state;
	/* at least one word, at most WIRE_MAX_BITMAP bits */
	set_le(f + 4, 4, WIRE_BITMAP_HDR);
	expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG, "NEEDED");
	set_le(f + 4, 4, WIRE_BITMAP_HDR + 8);
	assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
	f[0] = WIRE_F_WANT;
	set_le(f + 4, 4, WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8);
	assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
	set_le(f + 4, 4, WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 + 8);
	expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG, "WANT");
	f[0] = WIRE_F_PC_DONE;
	set_le(f + 4, 4, WIRE_PC_DONE_BYTES);
	assert_int_equal(frame_check_header(f, 8, &h, err, sizeof(err)), 0);
	set_le(f + 4, 4, WIRE_PC_DONE_BYTES - 1);
	expect_err(frame_check_header(f, 8, &h, err, sizeof(err)), -EBADMSG, "PC_DONE");
}

static void test_frame_pc_done(void **state)
{
	const struct wire_pc_done in = { .pages = 0x0102030405060708ull,
					 .requests = 77,
					 .blocked_us = 123456789,
					 .p50_us = 47,
					 .p99_us = 3100,
					 .digest_ok = 1 };
	struct wire_pc_done out;
	struct frame_hdr h;
	uint8_t f[64], *p = f + 8;
	ssize_t n;

	(void)state;
	n = frame_put_pc_done(f, sizeof(f), &in);
	assert_int_equal(n, 8 + WIRE_PC_DONE_BYTES + 4);
	check_frame(f, (size_t)n, WIRE_F_PC_DONE, &h);
	assert_int_equal(frame_get_pc_done(p, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.pages, in.pages);
	assert_int_equal(out.requests, in.requests);
	assert_int_equal(out.blocked_us, in.blocked_us);
	assert_int_equal(out.p50_us, in.p50_us);
	assert_int_equal(out.p99_us, in.p99_us);
	assert_int_equal(out.digest_ok, 1);
	/* field offsets: pages 0, requests 8, blocked_us 16, p50 24, p99 28, digest_ok 32 */
	assert_int_equal(p[0], 0x08);
	assert_int_equal(p[8], 77);
	assert_int_equal(p[24], 47);
	assert_int_equal(p[28] | p[29] << 8, 3100);
	assert_int_equal(p[32], 1);
	p[32] = 2;
	expect_err(frame_get_pc_done(p, h.len, &out, err, sizeof(err)), -EBADMSG,
		   "PC_DONE: digest_ok 2");
	p[32] = 0;
	for (int i = 33; i < 36; i++) {
		p[i] = 0x10;
		expect_err(frame_get_pc_done(p, h.len, &out, err, sizeof(err)), -EBADMSG,
			   "PC_DONE: reserved field not zero");
		p[i] = 0;
	}
	assert_int_equal(frame_get_pc_done(p, h.len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.digest_ok, 0);
	expect_err(frame_get_pc_done(p, h.len - 1, &out, err, sizeof(err)), -EBADMSG,
		   "PC_DONE: payload length mismatch");
	expect_err(frame_get_pc_done(p, h.len + 1, &out, err, sizeof(err)), -EBADMSG,
		   "PC_DONE: payload length mismatch");
}

/* ---- order -------------------------------------------------------------------- */

/*
 * The grammar of wire.h, written again independently of frame.c:
 * HELLO (PAGES | END_ROUND)* SWITCHOVER PAGES* STATE+ COMPLETE, ERROR
 * anywhere after HELLO, nothing after COMPLETE or ERROR; a pages-only
 * channel: HELLO (PAGES | END_ROUND)* COMPLETE with ERROR allowed after
 * HELLO.
 */
static bool ref_next(enum wire_phase ph, bool pages_only, bool setup, unsigned t,
		     enum wire_phase *next)
{
	*next = ph;
	if (t == WIRE_F_CPUID)	/* once, right after HELLO, on channel 0 */
		return ph == WIRE_PH_PRECOPY && setup && !pages_only;
	if (ph == WIRE_PH_DONE)
		return false;
	if (t == WIRE_F_ANNOUNCE)	/* right after HELLO on channel 0 only */
		return ph == WIRE_PH_PRECOPY && setup && !pages_only;
	if (ph == WIRE_PH_START) {
		/* KEY: a key exchange, a stream of its own (channel 0 kind only) */
		*next = t == WIRE_F_KEY ? WIRE_PH_DONE : WIRE_PH_PRECOPY;
		return t == WIRE_F_HELLO || (t == WIRE_F_KEY && !pages_only);
	}
	if (t == WIRE_F_ERROR) {
		*next = WIRE_PH_DONE;
		return true;
	}
	if (pages_only) {
		if (t == WIRE_F_COMPLETE)
			*next = WIRE_PH_DONE;
		return t == WIRE_F_PAGES || t == WIRE_F_END_ROUND || t == WIRE_F_COMPLETE;
	}
	switch (ph) {
	case WIRE_PH_PRECOPY:
		if (t == WIRE_F_SWITCHOVER)
			*next = WIRE_PH_STOPCOPY;
		return t == WIRE_F_PAGES || t == WIRE_F_END_ROUND || t == WIRE_F_SWITCHOVER;
	case WIRE_PH_STOPCOPY:
		if (t == WIRE_F_STATE)
			*next = WIRE_PH_STATE;
		return t == WIRE_F_PAGES || t == WIRE_F_STATE;
	case WIRE_PH_STATE:
		if (t == WIRE_F_COMPLETE)
			*next = WIRE_PH_COMPLETE;
		return t == WIRE_F_STATE || t == WIRE_F_COMPLETE;
	case WIRE_PH_COMPLETE:
		*next = WIRE_PH_DONE;
		return t == WIRE_F_GO;
	case WIRE_PH_POSTCOPY:
		return t == WIRE_F_PAGES;
	case WIRE_PH_START:
	case WIRE_PH_DONE:
		break;
	}
	return false;
}

static void feed(struct wire_order *o, const unsigned *types, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (wire_order_check(o, types[i], err, sizeof(err))) {
			print_error("legal frame %zu (%s) rejected: %s\n", i,
				    frame_type_name(types[i]), err);
			fail();
		}
	}
}

static void test_frame_order_legal_sequences(void **state)
{
	static const unsigned full[] = { WIRE_F_HELLO,	    WIRE_F_PAGES,      WIRE_F_PAGES,
					 WIRE_F_END_ROUND,  WIRE_F_PAGES,      WIRE_F_END_ROUND,
					 WIRE_F_END_ROUND,  WIRE_F_SWITCHOVER, WIRE_F_PAGES,
					 WIRE_F_PAGES,	    WIRE_F_STATE,      WIRE_F_STATE,
					 WIRE_F_STATE,	    WIRE_F_COMPLETE,   WIRE_F_GO };
	static const unsigned minimal[] = { WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE,
					    WIRE_F_COMPLETE };
	static const unsigned secondary[] = { WIRE_F_HELLO, WIRE_F_PAGES,     WIRE_F_END_ROUND,
					      WIRE_F_PAGES, WIRE_F_END_ROUND, WIRE_F_COMPLETE };
	struct wire_order o;

	(void)state;
	wire_order_init(&o, false);
	assert_int_equal(o.phase, WIRE_PH_START);
	feed(&o, full, sizeof(full) / sizeof(full[0]));
	assert_int_equal(o.phase, WIRE_PH_DONE);
	wire_order_init(&o, false);
	feed(&o, minimal, 4);
	assert_int_equal(o.phase, WIRE_PH_COMPLETE);	/* a file ends here */
	assert_int_equal(wire_order_check(&o, WIRE_F_GO, err, sizeof(err)), 0);
	assert_int_equal(o.phase, WIRE_PH_DONE);
	wire_order_init(&o, true);
	feed(&o, secondary, 4);
	assert_int_equal(o.phase, WIRE_PH_PRECOPY);
	feed(&o, secondary + 4, 2);
	assert_int_equal(o.phase, WIRE_PH_DONE);
	/* a secondary has no SWITCHOVER or STATE, and nothing after COMPLETE */
	wire_order_init(&o, true);
	feed(&o, secondary, 2);
	assert_int_equal(wire_order_check(&o, WIRE_F_SWITCHOVER, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "expected PAGES, END_ROUND or COMPLETE"));
	assert_int_equal(wire_order_check(&o, WIRE_F_STATE, err, sizeof(err)), -EPROTO);
	assert_int_equal(wire_order_check(&o, WIRE_F_COMPLETE, err, sizeof(err)), 0);
	assert_int_equal(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO);
	/* ERROR ends a stream in every phase after HELLO */
	for (size_t k = 1; k < sizeof(full) / sizeof(full[0]); k++) {
		wire_order_init(&o, false);
		feed(&o, full, k);
		assert_int_equal(wire_order_check(&o, WIRE_F_ERROR, err, sizeof(err)), 0);
		assert_int_equal(o.phase, WIRE_PH_DONE);
	}
	wire_order_init(&o, true);
	feed(&o, secondary, 2);
	assert_int_equal(wire_order_check(&o, WIRE_F_ERROR, err, sizeof(err)), 0);
	assert_int_equal(o.phase, WIRE_PH_DONE);
}

static void test_frame_order_rejects_named_cases(void **state)
{
	static const unsigned to_switch[] = { WIRE_F_HELLO, WIRE_F_SWITCHOVER };
	static const unsigned to_state[] = { WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE };
	static const unsigned to_done[] = { WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE,
					    WIRE_F_COMPLETE };
	struct wire_order o;

	(void)state;
	wire_order_init(&o, false);
	expect_err(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO,
		   "PAGES frame out of order: expected HELLO");
	expect_err(wire_order_check(&o, WIRE_F_ERROR, err, sizeof(err)), -EPROTO,
		   "ERROR frame out of order: expected HELLO");
	assert_int_equal(o.phase, WIRE_PH_START);	/* a rejected frame changes nothing */

	wire_order_init(&o, false);
	feed(&o, to_switch, 1);
	expect_err(wire_order_check(&o, WIRE_F_STATE, err, sizeof(err)), -EPROTO,
		   "STATE frame out of order: expected PAGES, END_ROUND or SWITCHOVER");
	expect_err(wire_order_check(&o, WIRE_F_HELLO, err, sizeof(err)), -EPROTO,
		   "HELLO frame out of order");
	expect_err(wire_order_check(&o, WIRE_F_COMPLETE, err, sizeof(err)), -EPROTO,
		   "COMPLETE frame out of order");

	wire_order_init(&o, false);
	feed(&o, to_switch, 2);
	expect_err(wire_order_check(&o, WIRE_F_END_ROUND, err, sizeof(err)), -EPROTO,
		   "END_ROUND frame out of order: expected PAGES or STATE");
	expect_err(wire_order_check(&o, WIRE_F_COMPLETE, err, sizeof(err)), -EPROTO,
		   "COMPLETE frame out of order: expected PAGES or STATE");
	expect_err(wire_order_check(&o, WIRE_F_SWITCHOVER, err, sizeof(err)), -EPROTO,
		   "SWITCHOVER frame out of order");

	wire_order_init(&o, false);
	feed(&o, to_state, 3);
	expect_err(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO,
		   "PAGES frame out of order: expected STATE or COMPLETE");

	wire_order_init(&o, false);
	feed(&o, to_done, 4);
	for (unsigned t = WIRE_F_HELLO; t < WIRE_F_ERROR; t++) {
		char want[80];

		snprintf(want, sizeof(want), "%s frame out of order: expected GO",
			 frame_type_name(t));
		expect_err(wire_order_check(&o, t, err, sizeof(err)), -EPROTO, want);
	}
	assert_int_equal(wire_order_check(&o, WIRE_F_GO, err, sizeof(err)), 0);
	for (unsigned t = WIRE_F_HELLO; t <= WIRE_F_GO; t++) {
		char want[80];

		snprintf(want, sizeof(want), "%s frame out of order: expected nothing",
			 frame_type_name(t));
		expect_err(wire_order_check(&o, t, err, sizeof(err)), -EPROTO, want);
	}

	wire_order_init(&o, true);
	feed(&o, to_switch, 1);
	expect_err(wire_order_check(&o, WIRE_F_SWITCHOVER, err, sizeof(err)), -EPROTO,
		   "SWITCHOVER frame out of order: expected PAGES, END_ROUND or COMPLETE");
	expect_err(wire_order_check(&o, WIRE_F_STATE, err, sizeof(err)), -EPROTO,
		   "STATE frame out of order: expected PAGES, END_ROUND or COMPLETE");
	assert_int_equal(o.phase, WIRE_PH_PRECOPY);

	/* return-path frames never belong on the forward stream */
	wire_order_init(&o, false);
	feed(&o, to_switch, 1);
	expect_err(wire_order_check(&o, WIRE_F_ACK, err, sizeof(err)), -EPROTO,
		   "ACK frame out of order");
	expect_err(wire_order_check(&o, 99, err, sizeof(err)), -EPROTO,
		   "unknown frame out of order");
}

static void fill_cpuid(struct wire_cpuid *c)
{
	memset(c, 0, sizeof(*c));
	c->flags = WIRE_CPUID_STRICT_TSC;
	c->tsc_khz = 2596150;
	c->count = 3;
	c->ent[0] = (struct wire_cpuid_entry){ .function = 1, .ecx = 0x81202000, .edx = 0x078bfbff };
	c->ent[1] = (struct wire_cpuid_entry){ .function = 7, .flags = 1, .ebx = 0x01800002 };
	c->ent[2] = (struct wire_cpuid_entry){ .function = 7, .index = 1, .flags = 1, .eax = 5 };
}

static int cpuid_rt(const struct wire_cpuid *in, struct wire_cpuid *out)
{
	static uint8_t f[WIRE_HDR_BYTES + 12 + WIRE_MAX_CPUID * WIRE_CPUID_ENTRY_BYTES +
			 WIRE_CRC_BYTES];
	struct frame_hdr h;
	ssize_t n = frame_put_cpuid(f, sizeof(f), in);

	assert_true(n > 0);
	assert_int_equal(frame_check_header(f, (size_t)n, &h, err, sizeof(err)), 0);
	assert_int_equal(h.type, WIRE_F_CPUID);
	assert_int_equal(frame_check_crc(f, (size_t)n, err, sizeof(err)), 0);
	return frame_get_cpuid(f + WIRE_HDR_BYTES, h.len, out, err, sizeof(err));
}

static void test_frame_cpuid_roundtrip_and_rejects(void **state)
{
	static struct wire_cpuid in, out;
	uint8_t small[64];

	(void)state;
	fill_cpuid(&in);
	assert_int_equal(cpuid_rt(&in, &out), 0);
	assert_int_equal(out.flags, WIRE_CPUID_STRICT_TSC);
	assert_int_equal(out.tsc_khz, 2596150);
	assert_int_equal(out.count, 3);
	assert_memory_equal(out.ent, in.ent, 3 * sizeof(in.ent[0]));
	/* the largest, and the writer's own limits */
	in.count = WIRE_MAX_CPUID;
	for (uint32_t i = 3; i < WIRE_MAX_CPUID; i++)
		in.ent[i] = (struct wire_cpuid_entry){ .function = 0x80000000u + i };
	assert_int_equal(cpuid_rt(&in, &out), 0);
	assert_int_equal(out.ent[WIRE_MAX_CPUID - 1].function, 0x80000000u + WIRE_MAX_CPUID - 1);
	in.count = 0;
	assert_int_equal(frame_put_cpuid(small, sizeof(small), &in), -EINVAL);
	in.count = 3;
	assert_int_equal(frame_put_cpuid(small, sizeof(small), &in), -ENOSPC);
	/* what a reader refuses */
	fill_cpuid(&in);
	in.flags = 2;
	expect_err(cpuid_rt(&in, &out), -EBADMSG, "CPUID: unknown flags 0x2");
	fill_cpuid(&in);
	in.tsc_khz = 0;
	expect_err(cpuid_rt(&in, &out), -EBADMSG, "CPUID: TSC rate of 0 kHz");
	fill_cpuid(&in);
	in.ent[2].flags = 8;
	expect_err(cpuid_rt(&in, &out), -EBADMSG, "CPUID: entry 2: unknown flags 0x8");
	fill_cpuid(&in);
	in.ent[2].index = 0;
	expect_err(cpuid_rt(&in, &out), -EBADMSG, "CPUID: entries 1 and 2 are both leaf 0x7.0");
	fill_cpuid(&in);
	in.ent[2] = (struct wire_cpuid_entry){ .function = 1, .index = 3 }; /* index not significant */
	expect_err(cpuid_rt(&in, &out), -EBADMSG, "CPUID: entries 0 and 2 are both leaf 0x1.3");
}

static void test_frame_cpuid_count_must_match_length(void **state)
{
	static struct wire_cpuid in, out;
	static uint8_t f[WIRE_HDR_BYTES + 12 + 4 * WIRE_CPUID_ENTRY_BYTES + WIRE_CRC_BYTES];
	ssize_t n;

	(void)state;
	fill_cpuid(&in);
	n = frame_put_cpuid(f, sizeof(f), &in);
	assert_true(n > 0);
	set_le(f + WIRE_HDR_BYTES + 8, 4, 2);
	expect_err(frame_get_cpuid(f + WIRE_HDR_BYTES, (size_t)n - WIRE_HDR_BYTES - WIRE_CRC_BYTES,
				   &out, err, sizeof(err)),
		   -EBADMSG, "CPUID: 2 entries in a payload of 96 bytes, must be 68");
	set_le(f + WIRE_HDR_BYTES + 8, 4, 0);
	expect_err(frame_get_cpuid(f + WIRE_HDR_BYTES, 96, &out, err, sizeof(err)), -EBADMSG,
		   "CPUID: 0 entries, must be 1..128");
}

static void test_frame_order_cpuid(void **state)
{
	struct wire_order o;

	(void)state;
	/* HELLO CPUID PAGES ... is legal, once */
	wire_order_init(&o, false);
	assert_int_equal(wire_order_check(&o, WIRE_F_HELLO, err, sizeof(err)), 0);
	assert_int_equal(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), 0);
	expect_err(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), -EPROTO,
		   "CPUID frame out of order");
	wire_order_init(&o, false);
	assert_int_equal(wire_order_check(&o, WIRE_F_HELLO, err, sizeof(err)), 0);
	assert_int_equal(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), 0);
	assert_int_equal(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), 0);
	/* not after a page, not before HELLO, not on a secondary channel */
	expect_err(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), -EPROTO,
		   "CPUID frame out of order");
	wire_order_init(&o, false);
	expect_err(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), -EPROTO,
		   "CPUID frame out of order");
	wire_order_init(&o, true);
	assert_int_equal(wire_order_check(&o, WIRE_F_HELLO, err, sizeof(err)), 0);
	expect_err(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), -EPROTO,
		   "CPUID frame out of order");
}

static void test_frame_order_every_transition(void **state)
{
	/* one prefix per phase, for a full and a pages-only channel */
	static const unsigned prefix[][5] = {
		{ 0 },
		{ WIRE_F_HELLO },
		{ WIRE_F_HELLO, WIRE_F_SWITCHOVER },
		{ WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE },
		{ WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE, WIRE_F_COMPLETE },
		{ WIRE_F_HELLO, WIRE_F_ERROR },
		{ WIRE_F_HELLO, WIRE_F_SWITCHOVER, WIRE_F_STATE, WIRE_F_COMPLETE, WIRE_F_GO },
	};
	static const size_t plen[] = { 0, 1, 2, 3, 4, 2, 5 };
	static const enum wire_phase pphase[] = { WIRE_PH_START,    WIRE_PH_PRECOPY,
						  WIRE_PH_STOPCOPY, WIRE_PH_STATE,
						  WIRE_PH_COMPLETE, WIRE_PH_DONE,
						  WIRE_PH_DONE };
	unsigned checked = 0, illegal = 0;

	(void)state;
	for (int po = 0; po <= 1; po++) {
		for (size_t k = 0; k < sizeof(plen) / sizeof(plen[0]); k++) {
			if (po && (k == 2 || k == 3 || k == 4 || k == 6))
				continue;	/* unreachable on a pages-only channel */
			for (unsigned t = 0; t <= WIRE_F_PC_DONE + 1; t++) {
				struct wire_order o;
				enum wire_phase want_next;
				bool legal;
				int ret;

				wire_order_init(&o, po);
				feed(&o, prefix[k], plen[k]);
				assert_int_equal(o.phase, pphase[k]);
				legal = ref_next(o.phase, po, k == 1, t, &want_next);
				err[0] = '\0';
				ret = wire_order_check(&o, t, err, sizeof(err));
				if (legal) {
					assert_int_equal(ret, 0);
					assert_int_equal(o.phase, want_next);
				} else {
					char want[64];

					snprintf(want, sizeof(want), "%s frame out of order",
						 frame_type_name(t));
					expect_err(ret, -EPROTO, want);
					assert_int_equal(o.phase, pphase[k]);
					illegal++;
				}
				checked++;
			}
		}
	}
	assert_int_equal(checked, (2 * 7 - 4) * (WIRE_F_PC_DONE + 2));
	assert_true(illegal > 100);
}

/* Every type but those listed is rejected in o's phase, which stays as it is. */
static void only_these(const struct wire_order *o, const unsigned *ok, size_t nok)
{
	for (unsigned t = 0; t <= WIRE_F_PC_DONE + 1; t++) {
		struct wire_order c = *o;
		bool legal = false;
		int ret;

		for (size_t i = 0; i < nok; i++)
			legal |= ok[i] == t;
		ret = wire_order_check(&c, t, err, sizeof(err));
		if (legal) {
			assert_int_equal(ret, 0);
			continue;
		}
		assert_int_equal(ret, -EPROTO);
		assert_int_equal(c.phase, o->phase);
	}
}

static void test_frame_order_postcopy(void **state)
{
	static const unsigned pre[] = { WIRE_F_HELLO, WIRE_F_PAGES, WIRE_F_END_ROUND,
					WIRE_F_SWITCHOVER };
	static const unsigned rest[] = { WIRE_F_NEEDED,	  WIRE_F_NEEDED, WIRE_F_STATE,
					 WIRE_F_STATE,	  WIRE_F_COMPLETE, WIRE_F_GO,
					 WIRE_F_PAGES,	  WIRE_F_PAGES };
	static const unsigned stop_ok[] = { WIRE_F_NEEDED, WIRE_F_STATE, WIRE_F_ERROR };
	static const unsigned after_go_ok[] = { WIRE_F_PAGES, WIRE_F_ERROR };
	struct wire_order o;

	(void)state;
	/* SWITCHOVER(POSTCOPY) NEEDED* STATE+ COMPLETE GO PAGES* */
	wire_order_init(&o, false);
	feed(&o, pre, 4);
	wire_order_postcopy(&o);
	assert_int_equal(o.phase, WIRE_PH_STOPCOPY);
	only_these(&o, stop_ok, 3);
	expect_err(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO,
		   "PAGES frame out of order: expected NEEDED or STATE");
	feed(&o, rest, 3);
	expect_err(wire_order_check(&o, WIRE_F_NEEDED, err, sizeof(err)), -EPROTO,
		   "NEEDED frame out of order: expected STATE or COMPLETE");
	feed(&o, rest + 3, 3);
	assert_int_equal(o.phase, WIRE_PH_POSTCOPY);
	only_these(&o, after_go_ok, 2);
	expect_err(wire_order_check(&o, WIRE_F_GO, err, sizeof(err)), -EPROTO,
		   "GO frame out of order: expected PAGES");
	feed(&o, rest + 6, 2);
	assert_int_equal(o.phase, WIRE_PH_POSTCOPY);
	assert_int_equal(wire_order_check(&o, WIRE_F_ERROR, err, sizeof(err)), 0);
	assert_int_equal(o.phase, WIRE_PH_DONE);

	/* no STATE skipped: SWITCHOVER(POSTCOPY) NEEDED COMPLETE is out of order */
	wire_order_init(&o, false);
	feed(&o, pre, 4);
	wire_order_postcopy(&o);
	feed(&o, rest, 1);
	expect_err(wire_order_check(&o, WIRE_F_COMPLETE, err, sizeof(err)), -EPROTO,
		   "COMPLETE frame out of order: expected NEEDED or STATE");

	/* without POSTCOPY, NEEDED is never legal and GO ends the stream */
	wire_order_init(&o, false);
	feed(&o, pre, 4);
	expect_err(wire_order_check(&o, WIRE_F_NEEDED, err, sizeof(err)), -EPROTO,
		   "NEEDED frame out of order: expected PAGES or STATE");
	feed(&o, rest + 2, 4);
	assert_int_equal(o.phase, WIRE_PH_DONE);
	assert_int_equal(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO);

	/* a FAULT or RESUME stream: HELLO, then PAGES only (or ERROR) */
	wire_order_init(&o, false);
	feed(&o, pre, 1);
	wire_order_pages_stream(&o);
	assert_int_equal(o.phase, WIRE_PH_POSTCOPY);
	only_these(&o, after_go_ok, 2);
	expect_err(wire_order_check(&o, WIRE_F_CPUID, err, sizeof(err)), -EPROTO,
		   "CPUID frame out of order");
	feed(&o, rest + 6, 2);
	assert_int_equal(wire_order_check(&o, WIRE_F_ERROR, err, sizeof(err)), 0);
	assert_int_equal(wire_order_check(&o, WIRE_F_PAGES, err, sizeof(err)), -EPROTO);
}

/* ---- seed corpus of fuzz_frame_decode ------------------------------------------- */

static int write_seed(const char *dir, const char *name, uint8_t flags, const uint8_t *data,
		      size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(flags, f) == EOF || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

/* Append one frame (ssize_t from a writer) to a stream buffer. */
static size_t app(size_t at, ssize_t n)
{
	if (n <= 0) {
		fprintf(stderr, "corpus: a writer failed (%zd)\n", n);
		exit(1);
	}
	return at + (size_t)n;
}

/*
 * Fuzz input: byte 0 is flags (see fuzz_frame_decode.c: bit 0 recompute
 * CRCs, bit 1 pages-only order, bits 2-3 npages, bits 4-6 codec caps,
 * bit 7 page size 4096 or 512), then frames back to back.
 */
static int write_corpus(const char *dir)
{
	enum { CAP = 32 * 1024 };
	static uint8_t s[CAP], page[PAGE];
	struct wire_hello hello;
	struct wire_end_round er = { 1, 3, 1000 };
	struct wire_complete done = { 5, 3, WIRE_DIGEST_SHA256, { 1, 2, 3 } };
	struct wire_hello_ack ha = { WIRE_VERSION, WIRE_CAP_ZSTD | WIRE_CAP_LZ4 };
	struct wire_ack ack = { 1, 5 };
	struct wire_resumed res = { 1 };
	struct wire_page_req req = { 3, 4 };
	struct page_batch b;
	struct codecs c;
	size_t n = 0, m;
	int ret = 0;

	codecs_open(&c);
	sample_hello(&hello);
	hello.mem_bytes = 16 * PAGE;	/* npages choice 1 of the fuzzer: 16 pages */
	hello.channel = 0;

	/* a whole forward stream: every forward frame and every codec */
	n = app(n, frame_put_hello(s + n, CAP - n, &hello));
	batch_begin(&b, s + n, CAP - n, 1);
	for (unsigned id = 0; id < CODEC_COUNT; id++) {
		size_t bound = codec_get(id)->bound(PAGE);
		uint8_t *d = batch_reserve(&b, bound);
		ssize_t len;

		if (id == CODEC_ZERO)
			memset(page, 0, PAGE);
		else
			fill_text(page, PAGE);
		if (id == CODEC_XBZRLE) {
			static uint8_t old[PAGE];

			memcpy(old, page, PAGE);
			old[100] ^= 1;
			old[3000] ^= 0x80;
			codec_ctx_set_ref(c.ctx[id], old);
		}
		len = codec_encode(c.ctx[id], page, PAGE, d, bound);
		if (len < 0) {
			fprintf(stderr, "corpus: codec %u: %zd\n", id, len);
			exit(1);
		}
		batch_commit(&b, id, (uint8_t)id, (size_t)len);
	}
	n += batch_finish(&b);
	n = app(n, frame_put_end_round(s + n, CAP - n, &er));
	n = app(n, frame_put_switchover(s + n, CAP - n, 1, 0));
	batch_begin(&b, s + n, CAP - n, 2);
	(void)batch_reserve(&b, 0);
	batch_commit(&b, 15, CODEC_ZERO, 0);
	n += batch_finish(&b);
	fill_random(page, 64);
	n = app(n, frame_put_state(s + n, CAP - n, page, 64));
	n = app(n, frame_put_state(s + n, CAP - n, page, 1));
	n = app(n, frame_put_complete(s + n, CAP - n, &done));
	ret |= write_seed(dir, "forward-stream", 0x74 | 0x04, s, n);	/* all codecs, 16 pages */
	ret |= write_seed(dir, "forward-stream-recrc", 0x75, s, n);
	ret |= write_seed(dir, "forward-stream-nocaps", 0x04, s, n);

	/* the return path */
	m = 0;
	m = app(m, frame_put_hello_ack(s + m, CAP - m, &ha));
	m = app(m, frame_put_ack(s + m, CAP - m, &ack));
	m = app(m, frame_put_page_req(s + m, CAP - m, &req));
	m = app(m, frame_put_resumed(s + m, CAP - m, &res));
	m = app(m, frame_put_error(s + m, CAP - m, EPROTO, "stream broken\n at page 3"));
	ret |= write_seed(dir, "return-path", 0x04, s, m);

	/* a secondary channel */
	hello.channel = 1;
	hello.channels = 2;
	m = 0;
	m = app(m, frame_put_hello(s + m, CAP - m, &hello));
	batch_begin(&b, s + m, CAP - m, 1);
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *d = batch_reserve(&b, 512);

		memset(d, (int)i + 1, 512);
		batch_commit(&b, i, CODEC_RAW, 512);
	}
	m += batch_finish(&b);
	m = app(m, frame_put_error(s + m, CAP - m, ECONNRESET, "cancelled"));
	ret |= write_seed(dir, "secondary-raw512", 0x80 | 0x02 | 0x04, s, m);

	/* a post-copy: SWITCHOVER(POSTCOPY) NEEDED STATE COMPLETE GO PAGES, the return path */
	{
		struct wire_complete pdone = { 0, 1, WIRE_DIGEST_PAGES, { 9, 8, 7 } };
		struct wire_pc_done pc = { 3, 2, 1500, 40, 900, 1 };
		uint64_t needed = 0xa5a5, want = 0x5;

		hello.flags = 0;
		hello.channel = 0;
		hello.channels = 1;
		m = 0;
		m = app(m, frame_put_hello(s + m, CAP - m, &hello));
		m = app(m, frame_put_switchover(s + m, CAP - m, 1, WIRE_SWITCHOVER_POSTCOPY));
		m = app(m, frame_put_bitmap(s + m, CAP - m, WIRE_F_NEEDED, 0, 16, 0, &needed));
		fill_random(page, 32);
		m = app(m, frame_put_state(s + m, CAP - m, page, 32));
		m = app(m, frame_put_complete(s + m, CAP - m, &pdone));
		m = app(m, frame_put_go(s + m, CAP - m));
		batch_begin(&b, s + m, CAP - m, 2);
		memset(batch_reserve(&b, 512), 0x3c, 512);
		batch_commit(&b, 5, CODEC_RAW, 512);
		m += batch_finish(&b);
		ret |= write_seed(dir, "postcopy-forward", 0x80 | 0x04, s, m);
		m = 0;
		m = app(m, frame_put_bitmap(s + m, CAP - m, WIRE_F_WANT, 0, 16, WIRE_WANT_LAST,
					    &want));
		m = app(m, frame_put_page_req(s + m, CAP - m, &req));
		m = app(m, frame_put_pc_done(s + m, CAP - m, &pc));
		ret |= write_seed(dir, "postcopy-return", 0x04, s, m);
		hello.flags = WIRE_HELLO_FAULT;
		m = 0;
		m = app(m, frame_put_hello(s + m, CAP - m, &hello));
		batch_begin(&b, s + m, CAP - m, 0);
		(void)batch_reserve(&b, 0);
		batch_commit(&b, 2, CODEC_ZERO, 0);
		m += batch_finish(&b);
		ret |= write_seed(dir, "postcopy-fault", 0x04, s, m);
		hello.flags = 0;
	}

	/* single frames */
	m = app(0, frame_put_error(s, CAP, 0, ""));
	ret |= write_seed(dir, "error-empty", 0, s, m);
	m = app(0, frame_put_page_req(s, CAP, &req));
	ret |= write_seed(dir, "page-req", 0x08, s, m);
	batch_begin(&b, s, CAP, 7);
	for (unsigned i = 0; i < 4; i++) {
		(void)batch_reserve(&b, 0);
		batch_commit(&b, i * 5, CODEC_ZERO, 0);
	}
	m = batch_finish(&b);
	ret |= write_seed(dir, "pages-zero", 0x04, s, m);
	/* a header only, and a frame cut short */
	m = app(0, frame_put_switchover(s, CAP, 9, 0));
	ret |= write_seed(dir, "header-only", 0, s, 8);
	ret |= write_seed(dir, "cut-frame", 0, s, m - 1);
	codecs_close(&c);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_crc32c_check_value),
		cmocka_unit_test(test_frame_golden_bytes),
		cmocka_unit_test(test_frame_type_names),
		cmocka_unit_test(test_frame_hello_roundtrip),
		cmocka_unit_test(test_frame_hello_long_strings_truncated),
		cmocka_unit_test(test_frame_end_round_roundtrip),
		cmocka_unit_test(test_frame_switchover_roundtrip),
		cmocka_unit_test(test_frame_state_roundtrip),
		cmocka_unit_test(test_frame_complete_roundtrip),
		cmocka_unit_test(test_frame_error_roundtrip),
		cmocka_unit_test(test_frame_hello_ack_roundtrip),
		cmocka_unit_test(test_frame_ack_roundtrip),
		cmocka_unit_test(test_frame_resumed_roundtrip),
		cmocka_unit_test(test_frame_ready_go_roundtrip),
		cmocka_unit_test(test_frame_ready_go_rejects),
		cmocka_unit_test(test_frame_page_req_roundtrip),
		cmocka_unit_test(test_frame_writers_need_space),
		cmocka_unit_test(test_frame_batch_roundtrip_all_codecs),
		cmocka_unit_test(test_frame_batch_full_count),
		cmocka_unit_test(test_frame_batch_max_payload),
		cmocka_unit_test(test_frame_batch_full_space),
		cmocka_unit_test(test_frame_rejects_truncated_header),
		cmocka_unit_test(test_frame_rejects_unknown_type),
		cmocka_unit_test(test_frame_rejects_flags),
		cmocka_unit_test(test_frame_rejects_length_per_type),
		cmocka_unit_test(test_frame_key),
		cmocka_unit_test(test_frame_rejects_any_flipped_byte),
		cmocka_unit_test(test_frame_hello_rejects_bad_magic),
		cmocka_unit_test(test_frame_hello_rejects_wrong_version),
		cmocka_unit_test(test_frame_hello_flags),
		cmocka_unit_test(test_frame_hello_rejects_unknown_caps),
		cmocka_unit_test(test_frame_hello_rejects_page_size),
		cmocka_unit_test(test_frame_hello_rejects_mem),
		cmocka_unit_test(test_frame_hello_rejects_vcpus),
		cmocka_unit_test(test_frame_hello_rejects_channel),
		cmocka_unit_test(test_frame_hello_rejects_unterminated),
		cmocka_unit_test(test_frame_hello_rejects_length),
		cmocka_unit_test(test_frame_pages_rejects_count),
		cmocka_unit_test(test_frame_pages_rejects_truncated_entry),
		cmocka_unit_test(test_frame_pages_rejects_page_outside_ram),
		cmocka_unit_test(test_frame_pages_rejects_unknown_codec),
		cmocka_unit_test(test_frame_pages_rejects_codec_not_negotiated),
		cmocka_unit_test(test_frame_pages_rejects_zero_with_data),
		cmocka_unit_test(test_frame_pages_rejects_raw_size),
		cmocka_unit_test(test_frame_pages_rejects_compressed_size),
		cmocka_unit_test(test_frame_pages_rejects_data_past_end),
		cmocka_unit_test(test_frame_pages_rejects_trailing_bytes),
		cmocka_unit_test(test_frame_pages_errors_name_the_entry),
		cmocka_unit_test(test_frame_error_rejects_length_mismatch),
		cmocka_unit_test(test_frame_error_replaces_control_chars),
		cmocka_unit_test(test_frame_page_req_rejects),
		cmocka_unit_test(test_frame_resumed_rejects),
		cmocka_unit_test(test_frame_complete_rejects),
		cmocka_unit_test(test_frame_switchover_rejects),
		cmocka_unit_test(test_frame_hello_ack_rejects),
		cmocka_unit_test(test_frame_fixed_readers_reject_length),
		cmocka_unit_test(test_frame_order_legal_sequences),
		cmocka_unit_test(test_frame_order_rejects_named_cases),
		cmocka_unit_test(test_frame_order_every_transition),
		cmocka_unit_test(test_frame_order_postcopy),
		cmocka_unit_test(test_frame_want_golden_bytes),
		cmocka_unit_test(test_frame_bitmap_roundtrip),
		cmocka_unit_test(test_frame_bitmap_rejects),
		cmocka_unit_test(test_frame_bitmap_header_limits),
		cmocka_unit_test(test_frame_pc_done),
		cmocka_unit_test(test_frame_order_cpuid),
		cmocka_unit_test(test_frame_cpuid_roundtrip_and_rejects),
		cmocka_unit_test(test_frame_cpuid_count_must_match_length),
	};

	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
