/* SPDX-License-Identifier: MIT */
/*
 * test_codec.c - the codec table and each codec through it: wire ids and
 * names, --compress parsing, the zero-page scan (a single non-zero byte at
 * every position, every SIMD path), ZERO/RAW/XBZRLE through the vtable, and
 * zstd and lz4 round trips, -ENOSPC, wrong sizes and garbage rejected, with
 * a guard region after every decode target.
 *
 * Random inputs print their seed; KVMIG_SEED=N (or --seed N) repeats a run.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/helpers/prng.h"
#include <lz4.h>
#include <zstd.h>

#include "protocol/codec.h"
#include "protocol/xbzrle.h"

#define PAGE 4096
#define GUARD 64
#define GUARD_BYTE 0x5a

static uint64_t seed;
static struct prng rng;

static uint64_t rnd(void)
{
	return prng_next(&rng);
}

static int setup_rng(void **state)
{
	(void)state;
	prng_init(&rng, seed);
	return 0;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
}

/* Compressible page: words from a small vocabulary, like text or tables. */
static void fill_text(uint8_t *p, size_t len)
{
	static const char *const words[] = { "the ", "page ", "guest ", "migration ", "dirty ",
					     "memory ", "of ", "a ", "kvm ", "round\n" };
	size_t i = 0;

	while (i < len) {
		const char *w = words[rnd() % 10];

		for (size_t k = 0; w[k] && i < len; k++)
			p[i++] = (uint8_t)w[k];
	}
}

static uint8_t *guarded(size_t len)
{
	uint8_t *p = malloc(len + GUARD);

	assert_non_null(p);
	memset(p, 0xee, len);
	memset(p + len, GUARD_BYTE, GUARD);
	return p;
}

static void check_guard(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < GUARD; i++)
		if (p[len + i] != GUARD_BYTE)
			fail_msg("guard byte %zu after the output was written", i);
}

static struct codec_ctx *make_ctx(const char *name)
{
	struct codec_config cfg;
	struct codec_ctx *ctx = NULL;

	assert_int_equal(codec_by_name(name, &cfg), 0);
	assert_int_equal(codec_ctx_create(&cfg, PAGE, &ctx), 0);
	assert_non_null(ctx);
	return ctx;
}

/* ---- table and names ----------------------------------------------------- */

static void test_codec_table_ids(void **state)
{
	static const char *const names[CODEC_COUNT] = { "zero", "raw", "xbzrle", "zstd", "lz4" };

	(void)state;
	/* wire values are fixed */
	assert_int_equal(CODEC_ZERO, 0);
	assert_int_equal(CODEC_RAW, 1);
	assert_int_equal(CODEC_XBZRLE, 2);
	assert_int_equal(CODEC_ZSTD, 3);
	assert_int_equal(CODEC_LZ4, 4);
	for (unsigned int id = 0; id < CODEC_COUNT; id++) {
		const struct codec_ops *ops = codec_get(id);

		assert_non_null(ops);
		assert_int_equal(ops->id, id);
		assert_string_equal(ops->name, names[id]);
		assert_non_null(ops->encode);
		assert_non_null(ops->decode);
		assert_non_null(ops->bound);
	}
	assert_null(codec_get(CODEC_COUNT));
	assert_null(codec_get(255));
	assert_null(codec_get(UINT_MAX));
	assert_int_equal(codec_lz4hc_ops.id, CODEC_LZ4);
	assert_ptr_equal(codec_lz4hc_ops.decode, codec_lz4_ops.decode);
}

static void test_codec_by_name(void **state)
{
	static const struct {
		const char *name;
		int ret;
		const struct codec_ops *ops;
		int level;
		const char *canon;
	} c[] = {
		{ "none", 0, &codec_raw_ops, 0, "raw" },
		{ "raw", 0, &codec_raw_ops, 0, "raw" },
		{ "zero", 0, &codec_zero_ops, 0, "zero" },
		{ "xbzrle", 0, &codec_xbzrle_ops, 0, "xbzrle" },
		{ "zstd", 0, &codec_zstd_ops, 1, "zstd:1" },
		{ "zstd:3", 0, &codec_zstd_ops, 3, "zstd:3" },
		{ "zstd:22", 0, &codec_zstd_ops, 22, "zstd:22" },
		{ "lz4", 0, &codec_lz4_ops, 1, "lz4:1" },
		{ "lz4:8", 0, &codec_lz4_ops, 8, "lz4:8" },
		{ "lz4hc", 0, &codec_lz4hc_ops, 9, "lz4hc:9" },
		{ "lz4hc:12", 0, &codec_lz4hc_ops, 12, "lz4hc:12" },
		{ "zstd:0", -EINVAL, NULL, 0, NULL },
		{ "zstd:23", -EINVAL, NULL, 0, NULL },
		{ "zstd:", -EINVAL, NULL, 0, NULL },
		{ "zstd:-1", -EINVAL, NULL, 0, NULL },
		{ "zstd:3x", -EINVAL, NULL, 0, NULL },
		{ "zstd:99999999999999999999", -EINVAL, NULL, 0, NULL },
		{ "lz4:0", -EINVAL, NULL, 0, NULL },
		{ "lz4hc:13", -EINVAL, NULL, 0, NULL },
		{ "none:1", -EINVAL, NULL, 0, NULL },
		{ "ZSTD", -EINVAL, NULL, 0, NULL },
		{ "zst", -EINVAL, NULL, 0, NULL },
		{ "zstdx", -EINVAL, NULL, 0, NULL },
		{ "", -EINVAL, NULL, 0, NULL },
		{ ":3", -EINVAL, NULL, 0, NULL },
	};
	struct codec_config cfg;
	char buf[32];

	(void)state;
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		int r = codec_by_name(c[k].name, &cfg);

		if (r != c[k].ret)
			fail_msg("codec_by_name(\"%s\") = %d, want %d", c[k].name, r, c[k].ret);
		if (r)
			continue;
		assert_ptr_equal(cfg.ops, c[k].ops);
		assert_int_equal(cfg.level, c[k].level);
		assert_int_equal(codec_config_format(&cfg, buf, sizeof(buf)), 0);
		assert_string_equal(buf, c[k].canon);
	}
	assert_int_equal(codec_by_name(NULL, &cfg), -EINVAL);
	assert_int_equal(codec_by_name("zstd", NULL), -EINVAL);
	assert_int_equal(codec_by_name("zstd:19", &cfg), 0);
	assert_int_equal(codec_config_format(&cfg, buf, 7), -ENOSPC);
	assert_int_equal(codec_config_format(&cfg, buf, 8), 0);
}

static void test_codec_ctx_create(void **state)
{
	struct codec_config cfg = { .ops = &codec_zstd_ops, .level = 0 };
	struct codec_ctx *ctx = NULL;

	(void)state;
	assert_int_equal(codec_ctx_create(&cfg, PAGE, &ctx), -EINVAL);
	cfg.level = 23;
	assert_int_equal(codec_ctx_create(&cfg, PAGE, &ctx), -EINVAL);
	cfg.level = 1;
	assert_int_equal(codec_ctx_create(&cfg, 0, &ctx), -EINVAL);
	assert_int_equal(codec_ctx_create(NULL, PAGE, &ctx), -EINVAL);
	cfg.ops = NULL;
	assert_int_equal(codec_ctx_create(&cfg, PAGE, &ctx), -EINVAL);
	assert_null(ctx);
	codec_ctx_destroy(NULL);
	ctx = make_ctx("lz4hc:3");
	assert_ptr_equal(codec_ctx_ops(ctx), &codec_lz4hc_ops);
	codec_ctx_destroy(ctx);
	ctx = make_ctx("raw");
	assert_null(codec_ctx_state(ctx));
	codec_ctx_destroy(ctx);
}

/* ---- zero-page scan ---------------------------------------------------- */

static void test_codec_zero_page_every_position(void **state)
{
	uint8_t *buf = calloc(1, PAGE + 128);
	int tested = 0;

	(void)state;
	assert_non_null(buf);
	for (int s = 0; s < CODEC_SIMD_COUNT; s++) {
		enum codec_simd simd = (enum codec_simd)s;

		if (!codec_simd_supported(simd)) {
			print_message("  zero scan %-7s not supported by this CPU\n", codec_simd_name(simd));
			continue;
		}
		print_message("  zero scan %-7s tested\n", codec_simd_name(simd));
		tested++;
		/* aligned page and misaligned starts */
		for (size_t off = 0; off < 64; off += (off < 8 ? 1 : 9)) {
			uint8_t *p = buf + off;

			assert_true(codec_is_zero_page_simd(simd, p, PAGE));
			for (size_t i = 0; i < PAGE; i++) {
				p[i] = (uint8_t)(1u << (i % 8));
				if (codec_is_zero_page_simd(simd, p, PAGE))
					fail_msg("%s: byte %zu (offset %zu) not seen", codec_simd_name(simd), i,
						 off);
				p[i] = 0;
			}
			/* bytes just outside the page do not count */
			buf[off + PAGE] = 1;
			if (off)
				buf[off - 1] = 1;
			assert_true(codec_is_zero_page_simd(simd, p, PAGE));
			buf[off + PAGE] = 0;
			if (off)
				buf[off - 1] = 0;
		}
		/* every length up to 600 with the last byte set */
		for (size_t len = 1; len <= 600; len++) {
			assert_true(codec_is_zero_page_simd(simd, buf, len));
			buf[len - 1] = 0x80;
			assert_false(codec_is_zero_page_simd(simd, buf, len));
			buf[len - 1] = 0;
		}
		assert_true(codec_is_zero_page_simd(simd, buf, 0));
	}
	assert_true(tested >= 1);
	/* the dispatcher */
	assert_true(codec_is_zero_page(buf, PAGE));
	buf[PAGE - 1] = 1;
	assert_false(codec_is_zero_page(buf, PAGE));
	free(buf);
}

/* ---- ZERO, RAW, XBZRLE through the table ---------------------------------- */

static void test_codec_zero_codec(void **state)
{
	const struct codec_ops *z = codec_get(CODEC_ZERO);
	uint8_t *page = calloc(1, PAGE), *out = guarded(PAGE);

	(void)state;
	assert_int_equal(z->encode(NULL, page, PAGE, NULL, 0), 0);
	page[1234] = 1;
	assert_int_equal(z->encode(NULL, page, PAGE, NULL, 0), -ENOSPC);
	assert_int_equal(z->decode(NULL, NULL, 0, out, PAGE), PAGE);
	assert_true(codec_is_zero_page(out, PAGE));
	check_guard(out, PAGE);
	assert_int_equal(z->decode(NULL, page, 1, out, PAGE), -EBADMSG);
	assert_int_equal(z->bound(PAGE), 0);
	free(page);
	free(out);
}

static void test_codec_raw_codec(void **state)
{
	const struct codec_ops *r = codec_get(CODEC_RAW);
	uint8_t *page = malloc(PAGE), *enc = malloc(PAGE), *out = guarded(PAGE);

	(void)state;
	fill_random(page, PAGE);
	assert_int_equal(r->encode(NULL, page, PAGE, enc, PAGE - 1), -ENOSPC);
	assert_int_equal(r->encode(NULL, page, PAGE, enc, PAGE), PAGE);
	assert_int_equal(r->decode(NULL, enc, PAGE, out, PAGE), PAGE);
	assert_memory_equal(out, page, PAGE);
	check_guard(out, PAGE);
	assert_int_equal(r->decode(NULL, enc, PAGE - 1, out, PAGE), -EBADMSG);
	assert_int_equal(r->decode(NULL, enc, PAGE, out, PAGE - 1), -EBADMSG);
	assert_int_equal(r->bound(PAGE), PAGE);
	free(page);
	free(enc);
	free(out);
}

static void test_codec_xbzrle_codec(void **state)
{
	struct codec_ctx *ctx = make_ctx("xbzrle");
	uint8_t *old = malloc(PAGE), *cur = malloc(PAGE), *enc = malloc(2 * PAGE);
	uint8_t *out = guarded(PAGE);
	ssize_t n;

	(void)state;
	fill_random(old, PAGE);
	memcpy(cur, old, PAGE);
	cur[10] ^= 1;
	cur[4000] ^= 1;
	assert_int_equal(codec_encode(ctx, cur, PAGE, enc, 2 * PAGE), -EINVAL); /* no reference */
	codec_ctx_set_ref(ctx, old);
	n = codec_encode(ctx, cur, PAGE, enc, 2 * PAGE);
	assert_int_equal(n, 3 + 4); /* {10, 1, b} {3989, 1, b} */
	memcpy(out, old, PAGE);
	assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, PAGE), PAGE);
	assert_memory_equal(out, cur, PAGE);
	check_guard(out, PAGE);
	/* unchanged page: empty payload, which decodes to "no change" */
	assert_int_equal(codec_encode(ctx, old, PAGE, enc, 2 * PAGE), 0);
	assert_int_equal(codec_decode(ctx, enc, 0, out, PAGE), PAGE);
	assert_memory_equal(out, cur, PAGE);
	/* a page-sized delta does not pay: -ENOSPC even with room */
	for (size_t i = 0; i < PAGE; i++)
		cur[i] = (uint8_t)~old[i];
	assert_int_equal(codec_encode(ctx, cur, PAGE, enc, 2 * PAGE), -ENOSPC);
	assert_int_equal(codec_encode(ctx, cur, PAGE, enc, 10), -ENOSPC);
	/* malformed delta */
	enc[0] = 0x05;
	enc[1] = 0x00;
	assert_int_equal(codec_decode(ctx, enc, 2, out, PAGE), -EBADMSG);
	assert_int_equal(codec_xbzrle_ops.decode(NULL, enc, 2, out, PAGE), -EBADMSG);
	assert_true(codec_xbzrle_ops.bound(PAGE) >= PAGE + PAGE / 2);
	codec_ctx_destroy(ctx);
	free(old);
	free(cur);
	free(enc);
	free(out);
}

/* ---- zstd and lz4 ---------------------------------------------------------- */

static const char *const compressors[] = { "zstd", "zstd:3", "zstd:19", "lz4", "lz4:8", "lz4hc",
					   "lz4hc:12" };

static void roundtrip_page(struct codec_ctx *ctx, const uint8_t *page, size_t len, bool must_shrink)
{
	const struct codec_ops *ops = codec_ctx_ops(ctx);
	size_t cap = ops->bound(len);
	uint8_t *enc = malloc(cap), *out = guarded(len);
	ssize_t n;

	n = codec_encode(ctx, page, len, enc, cap);
	if (must_shrink && n < 0)
		fail_msg("%s: encode returned %zd", ops->name, n);
	if (n == -ENOSPC)
		goto out;
	assert_true(n > 0 && (size_t)n < len);
	assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, len), (ssize_t)len);
	assert_memory_equal(out, page, len);
	check_guard(out, len);
	/* the id table's decoder for this wire id reads it too */
	memset(out, 0, len);
	assert_int_equal(codec_get(ops->id)->decode(ctx, enc, (size_t)n, out, len), (ssize_t)len);
	assert_memory_equal(out, page, len);
out:
	free(enc);
	free(out);
}

static void test_codec_compress_roundtrip(void **state)
{
	uint8_t *page = malloc(PAGE);

	(void)state;
	print_message("  seed %llu (KVMIG_SEED=%llu to repeat)\n", (unsigned long long)seed,
		      (unsigned long long)seed);
	for (size_t c = 0; c < sizeof(compressors) / sizeof(compressors[0]); c++) {
		struct codec_ctx *ctx = make_ctx(compressors[c]);

		/* one context, many pages: state must not leak between pages */
		for (int k = 0; k < 40; k++) {
			fill_text(page, PAGE);
			roundtrip_page(ctx, page, PAGE, true);
			memset(page, 0, PAGE);
			page[k * 97] = (uint8_t)k;
			roundtrip_page(ctx, page, PAGE, true);
			fill_random(page, PAGE);
			for (size_t i = 0; i < PAGE / 2; i++)
				page[i] = 0;
			roundtrip_page(ctx, page, PAGE, true);
		}
		/* other page sizes */
		fill_text(page, PAGE);
		roundtrip_page(ctx, page, 1024, true);
		roundtrip_page(ctx, page, 3000, true);
		codec_ctx_destroy(ctx);
	}
	free(page);
}

static void test_codec_compress_enospc(void **state)
{
	uint8_t *page = malloc(PAGE), *enc = malloc(2 * PAGE);

	(void)state;
	for (size_t c = 0; c < sizeof(compressors) / sizeof(compressors[0]); c++) {
		struct codec_ctx *ctx = make_ctx(compressors[c]);
		ssize_t n;

		/* random data does not shrink: -ENOSPC however big dst is */
		fill_random(page, PAGE);
		assert_int_equal(codec_encode(ctx, page, PAGE, enc, 2 * PAGE), -ENOSPC);
		/* compressible data into a dst too small */
		fill_text(page, PAGE);
		n = codec_encode(ctx, page, PAGE, enc, 2 * PAGE);
		assert_true(n > 0);
		assert_int_equal(codec_encode(ctx, page, PAGE, enc, (size_t)n - 1), -ENOSPC);
		assert_int_equal(codec_encode(ctx, page, PAGE, enc, 0), -ENOSPC);
		/* zstd's bit streams want a few bytes of slack past the payload */
		assert_int_equal(codec_encode(ctx, page, PAGE, enc, (size_t)n + 16), n);
		/* bad arguments */
		assert_int_equal(codec_encode(ctx, NULL, PAGE, enc, 2 * PAGE), -EINVAL);
		assert_int_equal(codec_encode(ctx, page, 0, enc, 2 * PAGE), -EINVAL);
		assert_int_equal(codec_encode(ctx, page, PAGE, NULL, 2 * PAGE), -EINVAL);
		codec_ctx_destroy(ctx);
	}
	free(page);
	free(enc);
}

/* A payload of one page size must not decode into another. */
static void test_codec_compress_wrong_size(void **state)
{
	uint8_t *page = malloc(PAGE), *enc = malloc(2 * PAGE), *out = guarded(2 * PAGE);

	(void)state;
	fill_text(page, PAGE);
	for (size_t c = 0; c < sizeof(compressors) / sizeof(compressors[0]); c++) {
		struct codec_ctx *ctx = make_ctx(compressors[c]);
		ssize_t n = codec_encode(ctx, page, PAGE, enc, 2 * PAGE);

		assert_true(n > 0);
		assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, 2 * PAGE), -EBADMSG);
		check_guard(out, 2 * PAGE);
		memset(out + PAGE / 2, GUARD_BYTE, GUARD);
		assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, PAGE / 2), -EBADMSG);
		check_guard(out, PAGE / 2);
		memset(out + PAGE - 1, GUARD_BYTE, GUARD);
		assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, PAGE - 1), -EBADMSG);
		check_guard(out, PAGE - 1);
		memset(out + 2 * PAGE, GUARD_BYTE, GUARD);
		/* truncated and extended payloads */
		assert_int_equal(codec_decode(ctx, enc, (size_t)n - 1, out, PAGE), -EBADMSG);
		assert_int_equal(codec_decode(ctx, enc, 1, out, PAGE), -EBADMSG);
		assert_int_equal(codec_decode(ctx, enc, 0, out, PAGE), -EBADMSG);
		enc[n] = 0;
		assert_int_equal(codec_decode(ctx, enc, (size_t)n + 1, out, PAGE), -EBADMSG);
		/* still fine at the right size */
		assert_int_equal(codec_decode(ctx, enc, (size_t)n, out, PAGE), PAGE);
		assert_memory_equal(out, page, PAGE);
		codec_ctx_destroy(ctx);
	}
	free(page);
	free(enc);
	free(out);
}

/* zstd frames that are valid zstd but not a page payload. */
static void test_codec_zstd_foreign_frames(void **state)
{
	struct codec_ctx *ctx = make_ctx("zstd");
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint8_t *page = malloc(PAGE), *enc = malloc(3 * PAGE), *out = guarded(PAGE);
	size_t n;

	(void)state;
	fill_text(page, PAGE);
	/* no content size in the header */
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
	n = ZSTD_compress2(cctx, enc, 3 * PAGE, page, PAGE);
	assert_false(ZSTD_isError(n));
	assert_true(ZSTD_getFrameContentSize(enc, n) == ZSTD_CONTENTSIZE_UNKNOWN);
	assert_int_equal(codec_decode(ctx, enc, n, out, PAGE), -EBADMSG);
	/* a plain frame from the library is a valid payload */
	n = ZSTD_compress(enc, 3 * PAGE, page, PAGE, 1);
	assert_false(ZSTD_isError(n));
	assert_int_equal(codec_decode(ctx, enc, n, out, PAGE), PAGE);
	assert_memory_equal(out, page, PAGE);
	/* two frames back to back */
	assert_false(ZSTD_isError(ZSTD_compress(enc + n, 3 * PAGE - n, page, PAGE, 1)));
	assert_int_equal(codec_decode(ctx, enc, 2 * n, out, PAGE), -EBADMSG);
	/* a skippable frame, alone and after a good frame */
	{
		const uint8_t skip[] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };

		assert_int_equal(codec_decode(ctx, skip, sizeof(skip), out, PAGE), -EBADMSG);
		memcpy(enc + n, skip, sizeof(skip));
		assert_int_equal(codec_decode(ctx, enc, n + sizeof(skip), out, PAGE), -EBADMSG);
	}
	/* the decoder needs its context */
	assert_int_equal(codec_zstd_ops.decode(NULL, enc, n, out, PAGE), -EINVAL);
	check_guard(out, PAGE);
	ZSTD_freeCCtx(cctx);
	codec_ctx_destroy(ctx);
	free(page);
	free(enc);
	free(out);
}

static void test_codec_compress_garbage(void **state)
{
	uint8_t *junk = malloc(2 * PAGE), *out = guarded(PAGE);

	(void)state;
	for (size_t c = 0; c < sizeof(compressors) / sizeof(compressors[0]); c++) {
		struct codec_ctx *ctx = make_ctx(compressors[c]);

		for (int k = 0; k < 300; k++) {
			size_t n = 1 + (size_t)(rnd() % (2 * PAGE));
			ssize_t r;

			fill_random(junk, n);
			if (k & 1) { /* a valid zstd magic in front, to get past the first check */
				junk[0] = 0x28;
				junk[1] = 0xb5;
				junk[2] = 0x2f;
				junk[3] = 0xfd;
			}
			r = codec_decode(ctx, junk, n, out, PAGE);
			assert_true(r == -EBADMSG || r == PAGE);
			check_guard(out, PAGE);
		}
		codec_ctx_destroy(ctx);
	}
	free(junk);
	free(out);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_codec_table_ids, setup_rng),
		cmocka_unit_test_setup(test_codec_by_name, setup_rng),
		cmocka_unit_test_setup(test_codec_ctx_create, setup_rng),
		cmocka_unit_test_setup(test_codec_zero_page_every_position, setup_rng),
		cmocka_unit_test_setup(test_codec_zero_codec, setup_rng),
		cmocka_unit_test_setup(test_codec_raw_codec, setup_rng),
		cmocka_unit_test_setup(test_codec_xbzrle_codec, setup_rng),
		cmocka_unit_test_setup(test_codec_compress_roundtrip, setup_rng),
		cmocka_unit_test_setup(test_codec_compress_enospc, setup_rng),
		cmocka_unit_test_setup(test_codec_compress_wrong_size, setup_rng),
		cmocka_unit_test_setup(test_codec_zstd_foreign_frames, setup_rng),
		cmocka_unit_test_setup(test_codec_compress_garbage, setup_rng),
	};

	seed = prng_seed("test_codec", argc, argv, (uint64_t)time(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
