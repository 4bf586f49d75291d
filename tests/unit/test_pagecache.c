/* SPDX-License-Identifier: MIT */
/*
 * test_pagecache.c - the XBZRLE page cache: sizing, hit/miss, 2-way sets
 * and generation-based eviction, epochs, counters, and a sender/receiver
 * simulation that checks the lock-step rule over many rounds (a receiver
 * that applies what pagecache_encode says to send always ends up with the
 * sender's snapshot, including when the guest page changes after encode).
 *
 * KVMIG_SEED=N (or --seed N) repeats the random simulation.
 */
#include <errno.h>
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

#include "protocol/codec.h"
#include "protocol/pagecache.h"
#include "protocol/xbzrle.h"

#define PAGE 4096

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

static void fill(uint8_t *p, uint8_t v)
{
	memset(p, v, PAGE);
}

static struct pagecache *make(size_t bytes)
{
	struct pagecache *pc = NULL;

	assert_int_equal(pagecache_create(bytes, PAGE, &pc), 0);
	assert_non_null(pc);
	return pc;
}

static struct pagecache_stats stats(const struct pagecache *pc)
{
	struct pagecache_stats st;

	pagecache_get_stats(pc, &st);
	return st;
}

static void test_pagecache_create_sizes(void **state)
{
	struct pagecache *pc = NULL;

	(void)state;
	assert_int_equal(pagecache_create(PAGE - 1, PAGE, &pc), -EINVAL);
	assert_int_equal(pagecache_create(PAGE, 0, &pc), -EINVAL);
	assert_int_equal(pagecache_create(PAGE, XBZRLE_MAX_PAGE + 1, &pc), -EINVAL);
	assert_int_equal(pagecache_create(PAGE, PAGE, NULL), -EINVAL);
	assert_null(pc);
	pc = make(10 * PAGE + 100); /* rounds down to 8 slots */
	assert_int_equal(stats(pc).slots, 8);
	assert_int_equal(stats(pc).cache_bytes, 8 * PAGE);
	assert_int_equal(pagecache_page_size(pc), PAGE);
	pagecache_destroy(pc);
	pc = make(PAGE); /* a single slot works, direct-mapped */
	assert_int_equal(stats(pc).slots, 1);
	pagecache_destroy(pc);
	pc = make(64 << 20);
	assert_int_equal(stats(pc).slots, 16384);
	pagecache_destroy(pc);
	pagecache_destroy(NULL);
}

static void test_pagecache_hit_miss(void **state)
{
	struct pagecache *pc = make(8 * PAGE);
	uint8_t page[PAGE];
	const uint8_t *c;

	(void)state;
	assert_null(pagecache_lookup(pc, 5, 0));
	fill(page, 0x11);
	assert_int_equal(pagecache_insert(pc, 5, page, 0), 0);
	c = pagecache_lookup(pc, 5, 0);
	assert_non_null(c);
	assert_memory_equal(c, page, PAGE);
	/* same set, different gfn: never served another gfn's slot */
	assert_null(pagecache_lookup(pc, 5 + 4, 0));
	assert_null(pagecache_lookup(pc, 5 + (1ull << 40), 0));
	/* refresh in place */
	fill(page, 0x22);
	assert_int_equal(pagecache_insert(pc, 5, page, 0), 0);
	assert_memory_equal(pagecache_lookup(pc, 5, 0), page, PAGE);
	assert_int_equal(stats(pc).hits, 2);
	assert_int_equal(stats(pc).misses, 3);
	assert_int_equal(stats(pc).inserts, 1);
	/* update only touches cached pages; NULL means zeros */
	assert_false(pagecache_update(pc, 6, page, 0));
	assert_null(pagecache_lookup(pc, 6, 0));
	assert_true(pagecache_update(pc, 5, NULL, 0));
	assert_true(codec_is_zero_page(pagecache_lookup(pc, 5, 0), PAGE));
	/* invalidate */
	pagecache_invalidate(pc, 5);
	assert_null(pagecache_lookup(pc, 5, 0));
	pagecache_invalidate(pc, 77); /* not cached: no-op */
	pagecache_destroy(pc);
}

/* 8 slots = 4 sets of 2 ways; gfns 1, 5, 9, 13 share set 1. */
static void test_pagecache_eviction_by_age(void **state)
{
	struct pagecache *pc = make(8 * PAGE);
	uint8_t page[PAGE];

	(void)state;
	fill(page, 1);
	assert_int_equal(pagecache_insert(pc, 1, page, 0), 0);
	fill(page, 5);
	assert_int_equal(pagecache_insert(pc, 5, page, 1), 0);
	/* both ways fresh: a third gfn is not cached, the others stay */
	fill(page, 9);
	assert_int_equal(pagecache_insert(pc, 9, page, 1), -EBUSY);
	assert_int_equal(stats(pc).busy, 1);
	assert_null(pagecache_lookup(pc, 9, 1));
	/* a hit at generation 2 keeps gfn 1 young */
	assert_non_null(pagecache_lookup(pc, 1, 2));
	assert_int_equal(pagecache_insert(pc, 9, page, 2), -EBUSY); /* gfn 5 is 1 old */
	/* generation 3: gfn 5 (stamped 1) is PAGECACHE_LIFETIME old, gfn 1 is not */
	assert_int_equal(pagecache_insert(pc, 9, page, 3), 0);
	assert_null(pagecache_lookup(pc, 5, 3));
	assert_non_null(pagecache_lookup(pc, 1, 3));
	assert_int_equal(((const uint8_t *)pagecache_lookup(pc, 9, 3))[0], 9);
	assert_int_equal(stats(pc).evictions, 1);
	assert_int_equal(stats(pc).inserts, 3);
	/* other sets are independent */
	fill(page, 2);
	assert_int_equal(pagecache_insert(pc, 2, page, 3), 0);
	assert_int_equal(pagecache_insert(pc, 6, page, 3), 0);
	/* a generation that went back (a new migration) makes entries old */
	assert_int_equal(pagecache_insert(pc, 10, page, 0), 0);
	pagecache_destroy(pc);
}

static void test_pagecache_clear_epoch(void **state)
{
	struct pagecache *pc = make(16 * PAGE);
	uint8_t page[PAGE];

	(void)state;
	fill(page, 3);
	for (uint64_t g = 0; g < 16; g++)
		assert_int_equal(pagecache_insert(pc, g, page, 0), 0);
	pagecache_clear(pc);
	for (uint64_t g = 0; g < 16; g++)
		assert_null(pagecache_lookup(pc, g, 0));
	/* slots are free again, whatever their age */
	for (uint64_t g = 100; g < 116; g++)
		assert_int_equal(pagecache_insert(pc, g, page, 0), 0);
	assert_int_equal(stats(pc).evictions, 0);
	pagecache_destroy(pc);
}

static void test_pagecache_encode_counters(void **state)
{
	struct pagecache *pc = make(8 * PAGE);
	uint8_t page[PAGE], dst[PAGE];
	const void *whole;
	struct pagecache_stats st;

	(void)state;
	for (size_t i = 0; i < PAGE; i++)
		page[i] = (uint8_t)(i * 31);
	/* miss: cached, the snapshot is what to send */
	assert_int_equal(pagecache_encode(pc, 3, page, 0, dst, sizeof(dst), &whole), -ENOENT);
	assert_non_null(whole);
	assert_memory_equal(whole, page, PAGE);
	/* unchanged */
	assert_int_equal(pagecache_encode(pc, 3, page, 0, dst, sizeof(dst), &whole), 0);
	assert_null(whole);
	/* one byte: QEMU's 4-byte delta */
	page[PAGE - 1] ^= 1;
	assert_int_equal(pagecache_encode(pc, 3, page, 1, dst, sizeof(dst), &whole), 4);
	/* dense change: overflow, the entry is refreshed anyway */
	for (size_t i = 0; i < PAGE; i++)
		page[i] = (uint8_t)~page[i];
	assert_int_equal(pagecache_encode(pc, 3, page, 1, dst, sizeof(dst), &whole), -ENOSPC);
	assert_memory_equal(whole, page, PAGE);
	assert_memory_equal(pagecache_lookup(pc, 3, 1), page, PAGE);
	assert_int_equal(pagecache_encode(pc, 3, page, 1, dst, sizeof(dst), &whole), 0);
	/* a small dst_cap overflows too */
	page[0] ^= 1;
	page[100] ^= 1;
	assert_int_equal(pagecache_encode(pc, 3, page, 1, dst, 5, &whole), -ENOSPC);
	pagecache_count_overflow(pc);
	st = stats(pc);
	assert_int_equal(st.hits, 5 + 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.unchanged, 2);
	assert_int_equal(st.overflow, 3);
	assert_int_equal(st.encoded_pages, 1);
	assert_int_equal(st.encoded_bytes, 4);
	/* a busy set: not cached, the snapshot still comes back */
	assert_int_equal(pagecache_encode(pc, 7, page, 1, dst, sizeof(dst), &whole), -ENOENT);
	assert_int_equal(pagecache_encode(pc, 11, page, 1, dst, sizeof(dst), &whole), -ENOENT);
	assert_memory_equal(whole, page, PAGE);
	assert_int_equal(stats(pc).busy, 1);
	assert_int_equal(pagecache_encode(NULL, 3, page, 1, dst, sizeof(dst), &whole), -EINVAL);
	assert_int_equal(pagecache_encode(pc, 3, NULL, 1, dst, sizeof(dst), &whole), -EINVAL);
	assert_int_equal(pagecache_encode(pc, 3, page, 1, dst, sizeof(dst), NULL), -EINVAL);
	pagecache_destroy(pc);
}

/*
 * The guest writes the page after pagecache_encode took its snapshot and
 * before the page went out: sending the snapshot keeps the receiver and the
 * cache equal, so the next delta is right.
 */
static void test_pagecache_whole_is_snapshot(void **state)
{
	struct pagecache *pc = make(8 * PAGE);
	uint8_t guest[PAGE], recv[PAGE], dst[PAGE];
	const void *whole;
	ssize_t n;

	(void)state;
	fill(guest, 0x10);
	assert_int_equal(pagecache_encode(pc, 1, guest, 0, dst, sizeof(dst), &whole), -ENOENT);
	guest[7] = 0x77; /* racing guest write */
	memcpy(recv, whole, PAGE);
	n = pagecache_encode(pc, 1, guest, 1, dst, sizeof(dst), &whole);
	assert_int_equal(n, 3);
	assert_true(xbzrle_decode(dst, (size_t)n, recv, PAGE) >= 0);
	assert_memory_equal(recv, guest, PAGE);
	pagecache_destroy(pc);
}

/* Many rounds of a skewed dirtying guest; the receiver must track the sender. */
static void test_pagecache_lockstep_simulation(void **state)
{
	const size_t npages = 96;
	uint8_t *guest = malloc(npages * PAGE), *recv = malloc(npages * PAGE);
	uint8_t *dst = malloc(PAGE);
	struct pagecache *pc = make(32 * PAGE);
	struct pagecache_stats st;

	(void)state;
	print_message("  seed %llu (KVMIG_SEED=%llu to repeat)\n", (unsigned long long)seed,
		      (unsigned long long)seed);
	for (size_t i = 0; i < npages * PAGE; i++)
		guest[i] = (uint8_t)rnd();
	memset(recv, 0xcc, npages * PAGE);
	for (uint64_t gen = 0; gen < 60; gen++) {
		bool all = gen == 0 || gen % 17 == 0;

		if (gen == 40)
			pagecache_clear(pc);
		for (uint64_t gfn = 0; gfn < npages; gfn++) {
			uint8_t *g = guest + gfn * PAGE, *r = recv + gfn * PAGE;
			bool hot = gfn < 24;
			const void *whole;
			ssize_t n;

			/* dirty: hot pages often, cold pages rarely */
			if (!all && rnd() % 100 >= (hot ? 70u : 5u))
				continue;
			switch (rnd() % 6) {
			case 0:
				memset(g, 0, PAGE);
				break;
			case 1:
				for (size_t i = 0; i < PAGE; i++)
					g[i] = (uint8_t)rnd();
				break;
			default:
				for (size_t k = rnd() % 40; k > 0; k--)
					g[rnd() % PAGE] = (uint8_t)rnd();
				break;
			}
			/* the sender: zero pages first, as the engine does */
			if (codec_is_zero_page(g, PAGE)) {
				pagecache_update(pc, gfn, NULL, gen);
				memset(r, 0, PAGE);
				continue;
			}
			n = pagecache_encode(pc, gfn, g, gen, dst, PAGE, &whole);
			if (n > 0) {
				int c = xbzrle_decode(dst, (size_t)n, r, PAGE);

				assert_true(c > 0);
			} else if (n == -ENOENT || n == -ENOSPC) {
				assert_non_null(whole);
				memcpy(r, whole, PAGE);
			} else {
				assert_int_equal(n, 0);
			}
			if (memcmp(r, g, PAGE))
				fail_msg("gen %llu gfn %llu: receiver differs from sender",
					 (unsigned long long)gen, (unsigned long long)gfn);
		}
	}
	st = stats(pc);
	print_message("  hits %llu misses %llu overflow %llu unchanged %llu evictions %llu busy %llu\n",
		      (unsigned long long)st.hits, (unsigned long long)st.misses,
		      (unsigned long long)st.overflow, (unsigned long long)st.unchanged,
		      (unsigned long long)st.evictions, (unsigned long long)st.busy);
	assert_true(st.hits > 0 && st.misses > 0 && st.overflow > 0 && st.encoded_pages > 0);
	pagecache_destroy(pc);
	free(guest);
	free(recv);
	free(dst);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pagecache_create_sizes, setup_rng),
		cmocka_unit_test_setup(test_pagecache_hit_miss, setup_rng),
		cmocka_unit_test_setup(test_pagecache_eviction_by_age, setup_rng),
		cmocka_unit_test_setup(test_pagecache_clear_epoch, setup_rng),
		cmocka_unit_test_setup(test_pagecache_encode_counters, setup_rng),
		cmocka_unit_test_setup(test_pagecache_whole_is_snapshot, setup_rng),
		cmocka_unit_test_setup(test_pagecache_lockstep_simulation, setup_rng),
	};

	seed = prng_seed("test_pagecache", argc, argv, (uint64_t)time(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
