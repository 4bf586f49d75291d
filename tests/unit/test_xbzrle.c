/* SPDX-License-Identifier: MIT */
/*
 * test_xbzrle.c - XBZRLE encoder and decoder: QEMU's edge cases with exact
 * encoded bytes, uleb128 run-length boundaries, overflow, malformed deltas
 * against a guarded page, every SIMD encoder against a byte-at-a-time
 * reference, and seeded random round trips.
 *
 * Random tests print their seed; set KVMIG_SEED=N (or pass --seed N) to
 * repeat a run.
 */
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

#include "protocol/xbzrle.h"

#define PAGE 4096
#define GUARD 64
#define GUARD_BYTE 0xa5

static uint64_t seed;
static struct prng rng;

static uint64_t rnd(void)
{
	return prng_next(&rng);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static int setup_rng(void **state)
{
	(void)state;
	prng_init(&rng, seed);
	return 0;
}

/* ---- reference encoder: the grammar, one byte at a time ----------------- */

static size_t ref_uleb(uint8_t *p, size_t v)
{
	size_t n = 0;

	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

/* Encodes into a big buffer, then applies the fit rule. */
static int ref_encode(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst, size_t dlen)
{
	uint8_t *tmp = malloc(len * 2 + 16);
	size_t i = 0, d = 0;

	assert_non_null(tmp);
	while (i < len) {
		size_t z = i, e;

		while (z < len && old[z] == new[z])
			z++;
		if (z == len)
			break;
		e = z;
		while (e < len && old[e] != new[e])
			e++;
		d += ref_uleb(tmp + d, z - i);
		d += ref_uleb(tmp + d, e - z);
		memcpy(tmp + d, new + z, e - z);
		d += e - z;
		i = e;
	}
	if (d > dlen) {
		free(tmp);
		return -1;
	}
	memcpy(dst, tmp, d);
	free(tmp);
	return (int)d;
}

/* Encode with every supported implementation; all must equal the reference. */
static int encode_all(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst, size_t dlen)
{
	uint8_t *ref = malloc(dlen + 1), *out = malloc(dlen + 1);
	int r, n;

	assert_non_null(ref);
	assert_non_null(out);
	r = ref_encode(old, new, len, ref, dlen);
	for (int impl = 0; impl < XBZRLE_IMPL_COUNT; impl++) {
		if (!xbzrle_impl_supported((enum xbzrle_impl)impl))
			continue;
		n = xbzrle_encode_impl((enum xbzrle_impl)impl, old, new, len, out, dlen);
		if (n != r)
			fail_msg("%s: returned %d, reference %d (len %zu dlen %zu)",
				 xbzrle_impl_name((enum xbzrle_impl)impl), n, r, len, dlen);
		if (r > 0 && memcmp(out, ref, (size_t)r))
			fail_msg("%s: bytes differ from reference (len %zu)",
				 xbzrle_impl_name((enum xbzrle_impl)impl), len);
	}
	n = xbzrle_encode(old, new, len, dst, dlen);
	assert_int_equal(n, r);
	if (r > 0)
		assert_memory_equal(dst, ref, (size_t)r);
	free(ref);
	free(out);
	return r;
}

/* A page with a guard region after it. */
static uint8_t *guarded_page(size_t len)
{
	uint8_t *p = malloc(len + GUARD);

	assert_non_null(p);
	memset(p + len, GUARD_BYTE, GUARD);
	return p;
}

static void check_guard(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < GUARD; i++)
		if (p[len + i] != GUARD_BYTE)
			fail_msg("guard byte %zu after the page was written", i);
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
}

/* Encode old->new, check expected size, decode onto a copy of old. */
static void roundtrip(const uint8_t *old, const uint8_t *new, size_t len, int expect_len)
{
	size_t cap = xbzrle_bound(len);
	uint8_t *dst = malloc(cap + 1);
	uint8_t *page = guarded_page(len);
	int n, covered;

	assert_non_null(dst);
	n = encode_all(old, new, len, dst, cap);
	if (expect_len >= 0)
		assert_int_equal(n, expect_len);
	assert_true(n >= 0);
	memcpy(page, old, len);
	covered = xbzrle_decode(dst, (size_t)n, page, len);
	assert_true(covered >= 0 && (size_t)covered <= len);
	assert_memory_equal(page, new, len);
	check_guard(page, len);
	free(dst);
	free(page);
}

/* ---- tests -------------------------------------------------------------- */

static void test_xbzrle_unchanged_page(void **state)
{
	uint8_t *a = malloc(PAGE), *b = malloc(PAGE), dst[16];

	(void)state;
	fill_random(a, PAGE);
	memcpy(b, a, PAGE);
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 0);
	memset(a, 0, PAGE);
	memset(b, 0, PAGE);
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 0);
	/* equal pages encode to 0 even with no room at all */
	assert_int_equal(xbzrle_encode(a, b, PAGE, dst, 0), 0);
	/* an empty delta decodes to "nothing covered" and leaves the page alone */
	assert_int_equal(xbzrle_decode(dst, 0, a, PAGE), 0);
	assert_memory_equal(a, b, PAGE);
	free(a);
	free(b);
}

static void test_xbzrle_one_byte_first(void **state)
{
	uint8_t *a = calloc(1, PAGE), *b = calloc(1, PAGE), dst[16];
	const uint8_t want[] = { 0x00, 0x01, 0x42 };

	(void)state;
	b[0] = 0x42;
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 3);
	assert_memory_equal(dst, want, sizeof(want));
	assert_int_equal(xbzrle_decode(dst, 3, a, PAGE), 1);
	assert_memory_equal(a, b, PAGE);
	free(a);
	free(b);
}

static void test_xbzrle_one_byte_last(void **state)
{
	uint8_t *a = calloc(1, PAGE), *b = calloc(1, PAGE), dst[16];
	/* QEMU: zrun 4095 is 2 uleb bytes, nzrun 1 one byte, one data byte */
	const uint8_t want[] = { 0xff, 0x1f, 0x01, 0x42 };

	(void)state;
	b[PAGE - 1] = 0x42;
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 4);
	assert_memory_equal(dst, want, sizeof(want));
	assert_int_equal(xbzrle_decode(dst, 4, a, PAGE), PAGE);
	assert_memory_equal(a, b, PAGE);
	free(a);
	free(b);
}

static void test_xbzrle_one_byte_middle(void **state)
{
	uint8_t *a = malloc(PAGE), *b = malloc(PAGE), dst[16];
	const uint8_t want_100[] = { 100, 0x01, 0x99 };
	const uint8_t want_2000[] = { 0xd0, 0x0f, 0x01, 0x99 }; /* 2000 = 0x7d0 */

	(void)state;
	fill_random(a, PAGE);
	memcpy(b, a, PAGE);
	b[100] = 0x99;
	if (a[100] == 0x99)
		a[100] = 0x98;
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 3);
	assert_memory_equal(dst, want_100, sizeof(want_100));
	assert_int_equal(xbzrle_decode(dst, 3, a, PAGE), 101);
	assert_memory_equal(a, b, PAGE);

	b[2000] = 0x99;
	if (a[2000] == 0x99)
		a[2000] = 0x98;
	assert_int_equal(encode_all(a, b, PAGE, dst, sizeof(dst)), 4);
	assert_memory_equal(dst, want_2000, sizeof(want_2000));
	assert_int_equal(xbzrle_decode(dst, 4, a, PAGE), 2001);
	assert_memory_equal(a, b, PAGE);
	free(a);
	free(b);
}

/* zrun and nzrun of exactly 127, 128 and 16383 bytes: uleb widths 1, 2, 2. */
static void test_xbzrle_run_boundaries(void **state)
{
	const size_t len = 16384;
	uint8_t *a = calloc(1, len), *b = calloc(1, len), *dst = malloc(xbzrle_bound(len));
	static const struct {
		size_t zrun, nzrun;
		uint8_t hdr[4];
		size_t hdr_len;
	} c[] = {
		{ 127, 1, { 0x7f, 0x01 }, 2 },
		{ 128, 1, { 0x80, 0x01, 0x01 }, 3 },
		{ 1, 127, { 0x01, 0x7f }, 2 },
		{ 1, 128, { 0x01, 0x80, 0x01 }, 3 },
		{ 16383, 1, { 0xff, 0x7f, 0x01 }, 3 },
		{ 0, 16383, { 0x00, 0xff, 0x7f }, 3 },
		{ 129, 16255, { 0x81, 0x01, 0xff, 0x7e }, 4 },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		int n;

		memset(b, 0, len);
		memset(b + c[k].zrun, 0x11, c[k].nzrun);
		n = encode_all(a, b, len, dst, xbzrle_bound(len));
		assert_int_equal(n, (int)(c[k].hdr_len + c[k].nzrun));
		assert_memory_equal(dst, c[k].hdr, c[k].hdr_len);
		roundtrip(a, b, len, n);
	}
	free(a);
	free(b);
	free(dst);
}

/* Pages above 16 KiB: runs over 16383 take 3-byte uleb128 (not QEMU's range). */
static void test_xbzrle_large_page(void **state)
{
	const size_t len = 2 * 1024 * 1024;
	uint8_t *a = malloc(len), *b = malloc(len), *dst = malloc(xbzrle_bound(len));
	const uint8_t want[] = { 0x80, 0x80, 0x01, 0x01, 0x33 }; /* zrun 16384 */
	int n;

	(void)state;
	fill_random(a, len);
	memcpy(b, a, len);
	b[16384] = (uint8_t)(a[16384] + 1);
	n = encode_all(a, b, len, dst, 64);
	assert_int_equal(n, 5);
	assert_memory_equal(dst, want, 3);
	roundtrip(a, b, len, 5);
	/* a 3-byte run length is malformed for a page below 16 KiB */
	assert_int_equal(xbzrle_decode(dst, 5, a, 16383), -1);
	/* 16 KiB pages allow it (a whole-page run needs it), but 16384 + 1 > 16384 */
	assert_int_equal(xbzrle_decode(dst, 5, a, 16384), -1);
	assert_int_equal(xbzrle_decode(dst, 5, a, 16385), 16385);
	/* sparse and dense changes over the big page */
	for (size_t i = 0; i < len; i += 20000)
		b[i] ^= 0x5a;
	roundtrip(a, b, len, -1);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)~a[i];
	roundtrip(a, b, len, (int)(len + 1 + 4));
	free(a);
	free(b);
	free(dst);
}

static void test_xbzrle_overflow(void **state)
{
	uint8_t *a = calloc(1, PAGE), *b = malloc(PAGE), *dst = malloc(xbzrle_bound(PAGE));
	int n;

	(void)state;
	/* every byte changed: zrun 0, nzrun 4096 (2 bytes), 4096 bytes */
	memset(b, 0xff, PAGE);
	assert_int_equal(encode_all(a, b, PAGE, dst, PAGE), -1);
	assert_int_equal(encode_all(a, b, PAGE, dst, PAGE + 3), PAGE + 3);
	assert_int_equal(encode_all(a, b, PAGE, dst, PAGE + 2), -1);
	/* every other byte changed (QEMU's overflow test) */
	for (size_t i = 0; i < PAGE; i++)
		b[i] = (i & 1) ? 0x01 : 0x00;
	assert_int_equal(encode_all(a, b, PAGE, dst, PAGE), -1);
	n = encode_all(a, b, PAGE, dst, xbzrle_bound(PAGE));
	assert_int_equal(n, 3 * PAGE / 2);
	assert_true((size_t)n <= xbzrle_bound(PAGE));
	/* worst case of the bound: the first byte differs, then alternating */
	for (size_t i = 0; i < PAGE; i++)
		b[i] = (i & 1) ? 0x00 : 0x01;
	n = encode_all(a, b, PAGE, dst, xbzrle_bound(PAGE));
	assert_true(n > 0 && (size_t)n <= xbzrle_bound(PAGE));
	/* the fit is exact: n fits in n, not in n - 1 */
	for (size_t k = 0; k < 50; k++) {
		fill_random(b, PAGE);
		for (size_t i = 0; i < PAGE; i++)
			if (rnd() % 8)
				b[i] = a[i];
		n = encode_all(a, b, PAGE, dst, xbzrle_bound(PAGE));
		assert_true(n > 0);
		assert_int_equal(encode_all(a, b, PAGE, dst, (size_t)n), n);
		assert_int_equal(encode_all(a, b, PAGE, dst, (size_t)n - 1), -1);
	}
	free(a);
	free(b);
	free(dst);
}

struct bad_delta {
	const char *what;
	uint8_t bytes[16];
	size_t len;
};

static void test_xbzrle_decode_malformed(void **state)
{
	static const struct bad_delta bad[] = {
		{ "lone zrun", { 0x05 }, 1 },
		{ "truncated zrun uleb", { 0x80 }, 1 },
		{ "3-byte zrun uleb", { 0x80, 0x80, 0x01, 0x01, 0xaa }, 5 },
		{ "3-byte nzrun uleb", { 0x00, 0x81, 0x80, 0x00, 0xaa }, 5 },
		{ "truncated nzrun uleb", { 0x05, 0x81 }, 2 },
		{ "nzrun without bytes", { 0x05, 0x01 }, 2 },
		{ "zero nzrun", { 0x05, 0x00 }, 2 },
		{ "zero nzrun, 2 bytes", { 0x05, 0x80, 0x00, 0xaa }, 4 },
		{ "zero zrun after the first", { 0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb }, 6 },
		{ "zero zrun (2 bytes) after the first", { 0x00, 0x01, 0xaa, 0x80, 0x00, 0x01, 0xbb },
		  7 },
		{ "zrun past the page", { 0x81, 0x20, 0x01, 0xaa }, 4 },	    /* 4097 */
		{ "run ends past the page", { 0xff, 0x1f, 0x02, 0xaa, 0xbb }, 5 }, /* 4095 + 2 */
		{ "second run past the page", { 0xfe, 0x1f, 0x01, 0xaa, 0x01, 0x01, 0xbb }, 7 },
		{ "truncated bytes", { 0x00, 0x05, 0x01, 0x02, 0x03 }, 5 },
		{ "trailing zrun", { 0x00, 0x01, 0xaa, 0x07 }, 4 },
	};
	uint8_t *page = guarded_page(PAGE), *copy = malloc(PAGE);
	uint8_t big[8];

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		int r;

		fill_random(page, PAGE);
		r = xbzrle_decode(bad[k].bytes, bad[k].len, page, PAGE);
		if (r != -1)
			fail_msg("%s: decode returned %d, want -1", bad[k].what, r);
		check_guard(page, PAGE);
	}
	/* a non-minimal 2-byte uleb is accepted, as QEMU does */
	{
		const uint8_t ok[] = { 0x80, 0x00, 0x81, 0x00, 0xaa };

		fill_random(page, PAGE);
		memcpy(copy, page, PAGE);
		assert_int_equal(xbzrle_decode(ok, sizeof(ok), page, PAGE), 1);
		assert_int_equal(page[0], 0xaa);
		assert_memory_equal(page + 1, copy + 1, PAGE - 1);
	}
	/* a whole-page run decodes into a page of that size only */
	{
		uint8_t *d = malloc(PAGE + 3), *src = malloc(PAGE);

		d[0] = 0x00;
		d[1] = 0x80; /* 4096 = 0x80 0x20 */
		d[2] = 0x20;
		fill_random(src, PAGE);
		memcpy(d + 3, src, PAGE);
		assert_int_equal(xbzrle_decode(d, PAGE + 3, page, PAGE), PAGE);
		assert_memory_equal(page, src, PAGE);
		check_guard(page, PAGE);
		/* the same delta against a smaller page: rejected, guard intact */
		memset(page + 100, GUARD_BYTE, GUARD);
		assert_int_equal(xbzrle_decode(d, PAGE + 3, page, 100), -1);
		check_guard(page, 100);
		assert_int_equal(xbzrle_decode(d, PAGE + 2, page, PAGE), -1); /* truncated */
		free(d);
		free(src);
	}
	/* argument checks */
	memset(big, 0, sizeof(big));
	assert_int_equal(xbzrle_decode(NULL, 3, page, PAGE), -1);
	assert_int_equal(xbzrle_decode(big, 3, NULL, PAGE), -1);
	assert_int_equal(xbzrle_decode(big, 0, page, 0), 0);
	free(page);
	free(copy);
}

/* Runs of every length at every offset around the vector widths. */
static void test_xbzrle_simd_matches_scalar(void **state)
{
	static const size_t lens[] = { 1, 7, 8, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 4096 };
	uint8_t *a = malloc(PAGE), *b = malloc(PAGE), *dst = malloc(xbzrle_bound(PAGE));
	int tested = 0;

	(void)state;
	for (int impl = 0; impl < XBZRLE_IMPL_COUNT; impl++) {
		bool ok = xbzrle_impl_supported((enum xbzrle_impl)impl);

		print_message("  encoder %-8s %s\n", xbzrle_impl_name((enum xbzrle_impl)impl),
			      ok ? "tested" : "not supported by this CPU");
		tested += ok;
	}
	fill_random(a, PAGE);
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t len = lens[li];
		size_t maxrun = len < 140 ? len : 140;

		for (size_t off = 0; off < len && off < 160; off++) {
			for (size_t run = 1; off + run <= len && run <= maxrun; run += (run < 70 ? 1 : 13)) {
				memcpy(b, a, len);
				for (size_t i = off; i < off + run; i++)
					b[i] = (uint8_t)~a[i];
				roundtrip(a, b, len, -1);
			}
		}
	}
	/* one changed byte at every position of a page, and two far apart */
	for (size_t pos = 0; pos < PAGE; pos++) {
		memcpy(b, a, PAGE);
		b[pos] ^= 0x80;
		roundtrip(a, b, PAGE, pos == 0 ? 3 : (pos < 128 ? 3 : 4));
		b[(pos * 7 + 1000) % PAGE] ^= 0x01;
		roundtrip(a, b, PAGE, -1);
	}
	assert_true(tested >= 1);
	free(a);
	free(b);
	free(dst);
}

static void test_xbzrle_random_roundtrip(void **state)
{
	const size_t maxlen = 3 * PAGE;
	uint8_t *a = malloc(maxlen), *b = malloc(maxlen);

	(void)state;
	print_message("  seed %llu (KVMIG_SEED=%llu to repeat)\n", (unsigned long long)seed,
		      (unsigned long long)seed);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = iter % 3 ? PAGE : 1 + rnd_below(maxlen);
		unsigned density = (unsigned)rnd_below(5);

		fill_random(a, len);
		memcpy(b, a, len);
		switch (density) {
		case 0: /* a few bytes */
			for (size_t k = rnd_below(8); k > 0; k--)
				b[rnd_below(len)] ^= (uint8_t)(1 + rnd_below(255));
			break;
		case 1: /* a few runs */
			for (size_t k = rnd_below(16); k > 0; k--) {
				size_t at = rnd_below(len), n = 1 + rnd_below(300);

				for (size_t i = at; i < len && i < at + n; i++)
					b[i] = (uint8_t)rnd();
			}
			break;
		case 2: /* byte by byte, p = 1/2 */
			for (size_t i = 0; i < len; i++)
				if (rnd() & 1)
					b[i] = (uint8_t)rnd();
			break;
		case 3: /* fresh random page */
			fill_random(b, len);
			break;
		default: /* words changed, as a guest counter would */
			for (size_t i = 0; i + 8 <= len; i += 8 * (1 + rnd_below(64)))
				b[i] ^= 1;
			break;
		}
		roundtrip(a, b, len, -1);
		/* and the fit rule at a random dlen */
		{
			size_t dlen = rnd_below(xbzrle_bound(len));
			uint8_t *dst = malloc(dlen + 1);

			(void)encode_all(a, b, len, dst, dlen);
			free(dst);
		}
	}
	free(a);
	free(b);
}

static void test_xbzrle_bad_arguments(void **state)
{
	uint8_t a[8] = { 0 }, b[8] = { 1 }, dst[8];

	(void)state;
	assert_int_equal(xbzrle_encode(NULL, b, 8, dst, 8), -1);
	assert_int_equal(xbzrle_encode(a, NULL, 8, dst, 8), -1);
	assert_int_equal(xbzrle_encode(a, b, 8, NULL, 8), -1);
	assert_int_equal(xbzrle_encode(a, b, 0, dst, 8), 0);
	assert_int_equal(xbzrle_encode(a, b, 8, dst, 0), -1);
	assert_int_equal(xbzrle_encode(a, b, XBZRLE_MAX_PAGE + 1, dst, 8), -1);
	assert_int_equal(xbzrle_decode(dst, 1, a, XBZRLE_MAX_PAGE + 1), -1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_xbzrle_unchanged_page, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_one_byte_first, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_one_byte_last, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_one_byte_middle, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_run_boundaries, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_large_page, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_overflow, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_decode_malformed, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_simd_matches_scalar, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_random_roundtrip, setup_rng),
		cmocka_unit_test_setup(test_xbzrle_bad_arguments, setup_rng),
	};

	seed = prng_seed("test_xbzrle", argc, argv, (uint64_t)time(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
