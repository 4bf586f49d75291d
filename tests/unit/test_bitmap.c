/* SPDX-License-Identifier: MIT */
/*
 * test_bitmap.c - common/bitmap.h against a naive one-bit-at-a-time
 * reference: random bitmaps, random ranges, and every range that starts or
 * ends next to a word boundary.
 *
 * Random inputs print their seed; KVMIG_SEED=N (or --seed N) repeats a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/bitmap.h"

#define MAXBITS 700u		/* 11 words, the last one partial */
#define WORDS ((MAXBITS + 63) / 64)

static uint64_t seed;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int setup_rng(void **state)
{
	(void)state;
	rng_state = seed ? seed : 1;
	return 0;
}

/* A random bitmap of nbits bits with a clear tail: sparse, dense or mixed words. */
static void random_bitmap(uint64_t *bm, uint64_t nbits)
{
	unsigned kind = (unsigned)(rnd() % 3);

	memset(bm, 0, WORDS * 8);
	for (uint64_t w = 0; w < bitmap_words(nbits); w++) {
		uint64_t x = rnd();

		if (kind == 0 || (kind == 2 && rnd() % 2))
			x &= rnd() & rnd();	/* sparse */
		else
			x |= rnd() | rnd();	/* dense */
		if (rnd() % 8 == 0)
			x = rnd() % 2 ? 0 : ~0ull;
		bm[w] = x;
	}
	if (nbits % 64)
		bm[nbits / 64] &= (1ull << (nbits % 64)) - 1;
}

/* ---- the reference ---------------------------------------------------------- */

static bool ref_test(const uint64_t *bm, uint64_t b)
{
	return (bm[b / 64] & (1ull << (b % 64))) != 0;
}

static void ref_put(uint64_t *bm, uint64_t b, bool v)
{
	if (v)
		bm[b / 64] |= 1ull << (b % 64);
	else
		bm[b / 64] &= ~(1ull << (b % 64));
}

static uint64_t ref_count(const uint64_t *bm, uint64_t first, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t b = first; b < first + n; b++)
		c += ref_test(bm, b);
	return c;
}

static uint64_t ref_find_next(const uint64_t *bm, uint64_t nbits, uint64_t from)
{
	for (uint64_t b = from; b < nbits; b++)
		if (ref_test(bm, b))
			return b;
	return nbits;
}

/* ---- ranges: random ones plus every boundary case ---------------------------- */

struct range {
	uint64_t first, n;
};

/* Ranges inside [0, nbits): around each word boundary, and random. */
static size_t ranges(uint64_t nbits, struct range *r, size_t cap)
{
	static const int64_t edge[] = { -65, -64, -63, -2, -1, 0, 1, 2, 63, 64, 65 };
	size_t k = 0;

	for (uint64_t w = 0; w <= bitmap_words(nbits); w++) {
		for (size_t a = 0; a < sizeof(edge) / sizeof(edge[0]); a++) {
			for (size_t b = 0; b < sizeof(edge) / sizeof(edge[0]); b++) {
				int64_t f = (int64_t)(w * 64) + edge[a];
				int64_t e = (int64_t)(w * 64) + edge[b] + (int64_t)(rnd() % 3) * 64;

				if (f < 0 || e < f || (uint64_t)e > nbits || k == cap)
					continue;
				r[k++] = (struct range){ (uint64_t)f, (uint64_t)(e - f) };
			}
		}
	}
	for (unsigned i = 0; i < 200 && k < cap; i++) {
		uint64_t f = rnd() % (nbits + 1);

		r[k++] = (struct range){ f, rnd() % (nbits - f + 1) };
	}
	return k;
}

static uint64_t random_nbits(void)
{
	static const uint64_t fixed[] = { 1, 63, 64, 65, 127, 128, 129, MAXBITS };
	unsigned i = (unsigned)(rnd() % (sizeof(fixed) / sizeof(fixed[0]) + 2));

	return i < sizeof(fixed) / sizeof(fixed[0]) ? fixed[i] : 1 + rnd() % MAXBITS;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_bitmap_words(void **unused)
{
	(void)unused;
	assert_int_equal(bitmap_words(0), 0);
	assert_int_equal(bitmap_words(1), 1);
	assert_int_equal(bitmap_words(64), 1);
	assert_int_equal(bitmap_words(65), 2);
	assert_int_equal(bitmap_words(1ull << 36), 1ull << 30);
}

static void test_bitmap_set_test_clear(void **unused)
{
	uint64_t bm[WORDS], ref[WORDS];

	(void)unused;
	for (unsigned it = 0; it < 200; it++) {
		uint64_t nbits = random_nbits();

		random_bitmap(bm, nbits);
		memcpy(ref, bm, sizeof(bm));
		for (unsigned op = 0; op < 500; op++) {
			uint64_t b = rnd() % nbits;
			bool was = ref_test(ref, b);

			assert_int_equal(bitmap_test(bm, b), was);
			switch (rnd() % 3) {
			case 0:
				bitmap_set(bm, b);
				ref_put(ref, b, true);
				break;
			case 1:
				bitmap_clear(bm, b);
				ref_put(ref, b, false);
				break;
			default:
				assert_int_equal(bitmap_test_and_clear(bm, b), was);
				ref_put(ref, b, false);
				break;
			}
			assert_memory_equal(bm, ref, sizeof(bm));
		}
	}
}

static void test_bitmap_count_any(void **unused)
{
	static struct range r[4096];
	uint64_t bm[WORDS];

	(void)unused;
	for (unsigned it = 0; it < 100; it++) {
		uint64_t nbits = random_nbits();
		size_t k;

		random_bitmap(bm, nbits);
		k = ranges(nbits, r, sizeof(r) / sizeof(r[0]));
		for (size_t i = 0; i < k; i++) {
			uint64_t c = ref_count(bm, r[i].first, r[i].n);

			assert_int_equal(bitmap_count(bm, r[i].first, r[i].n), c);
			assert_int_equal(bitmap_any(bm, r[i].first, r[i].n), c != 0);
		}
		assert_int_equal(bitmap_count(bm, 0, nbits), ref_count(bm, 0, nbits));
	}
}

static void test_bitmap_find_next(void **unused)
{
	uint64_t bm[WORDS];

	(void)unused;
	for (unsigned it = 0; it < 300; it++) {
		uint64_t nbits = random_nbits(), seen = 0;

		random_bitmap(bm, nbits);
		/* a bit beyond nbits in the last word is never reported */
		if (nbits % 64)
			bm[nbits / 64] |= 1ull << 63;
		for (uint64_t from = 0; from <= nbits; from++)
			assert_int_equal(bitmap_find_next(bm, nbits, from),
					 ref_find_next(bm, nbits, from));
		/* the walk every caller writes visits exactly the set bits */
		for (uint64_t p = bitmap_find_next(bm, nbits, 0); p < nbits;
		     p = bitmap_find_next(bm, nbits, p + 1)) {
			assert_true(ref_test(bm, p));
			seen++;
		}
		assert_int_equal(seen, ref_count(bm, 0, nbits));
	}
	memset(bm, 0, sizeof(bm));
	assert_int_equal(bitmap_find_next(bm, MAXBITS, 0), MAXBITS);
	bm[WORDS - 1] = 1ull << ((MAXBITS - 1) % 64);
	assert_int_equal(bitmap_find_next(bm, MAXBITS, 0), MAXBITS - 1);
	assert_int_equal(bitmap_find_next(bm, MAXBITS - 1, 0), MAXBITS - 1);
}

static void test_bitmap_or_count(void **unused)
{
	uint64_t src[WORDS], dst[2 * WORDS + 1], ref[2 * WORDS + 1];

	(void)unused;
	for (unsigned it = 0; it < 3000; it++) {
		uint64_t n = rnd() % 4 == 0 ? 0 : random_nbits();
		uint64_t dst_first = rnd() % 2 ? rnd() % 4 * 64 : rnd() % (WORDS * 64);
		uint64_t fresh = 0;

		random_bitmap(src, n ? n : 1);
		/* garbage beyond n in src must not leak into dst */
		if (n % 64)
			src[n / 64] |= ~((1ull << (n % 64)) - 1);
		for (size_t w = 0; w < 2 * WORDS + 1; w++)
			dst[w] = rnd() & rnd();
		memcpy(ref, dst, sizeof(dst));
		for (uint64_t b = 0; b < n; b++) {
			if (ref_test(src, b) && !ref_test(ref, dst_first + b)) {
				ref_put(ref, dst_first + b, true);
				fresh++;
			}
		}
		assert_int_equal(bitmap_or_count(dst, dst_first, src, n), fresh);
		assert_memory_equal(dst, ref, sizeof(dst));
	}
}

static void test_bitmap_fill_zero(void **unused)
{
	uint64_t bm[WORDS + 1];

	(void)unused;
	for (uint64_t nbits = 1; nbits <= MAXBITS; nbits++) {
		memset(bm, 0x5a, sizeof(bm));
		bitmap_fill(bm, nbits);
		assert_int_equal(bitmap_count(bm, 0, bitmap_words(nbits) * 64), nbits);
		assert_int_equal(bitmap_find_next(bm, bitmap_words(nbits) * 64, 0), 0);
		if (nbits % 64)
			assert_int_equal(bm[nbits / 64] >> (nbits % 64), 0);
		/* the word after the bitmap is not touched */
		assert_int_equal(bm[bitmap_words(nbits)], 0x5a5a5a5a5a5a5a5aull);
		bitmap_zero(bm, nbits);
		assert_false(bitmap_any(bm, 0, bitmap_words(nbits) * 64));
		assert_int_equal(bm[bitmap_words(nbits)], 0x5a5a5a5a5a5a5a5aull);
	}
}

int main(int argc, char **argv)
{
	const char *env = getenv("KVMIG_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_words),
		cmocka_unit_test_setup(test_bitmap_set_test_clear, setup_rng),
		cmocka_unit_test_setup(test_bitmap_count_any, setup_rng),
		cmocka_unit_test_setup(test_bitmap_find_next, setup_rng),
		cmocka_unit_test_setup(test_bitmap_or_count, setup_rng),
		cmocka_unit_test(test_bitmap_fill_zero),
	};

	if (argc == 3 && !strcmp(argv[1], "--seed"))
		env = argv[2];
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	printf("test_bitmap: seed %llu (KVMIG_SEED=%llu to repeat)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
