/* SPDX-License-Identifier: MIT */
/*
 * bitmap.h - page bitmaps: bit i of word i / 64 is page i (the layout of
 * KVM_GET_DIRTY_LOG, the dirty ring's harvest and the migration's dirty set).
 *
 * A header alone: every function is static inline (they sit in the per-page
 * and per-chunk loops of vm/, dirtylog/ and migrate/). No allocation and no
 * locking: the caller owns the words and says which thread may touch them;
 * bitmap_words() sizes an allocation. Ranges are [first, first + n) in bits
 * and never reach past the caller's nbits. Functions that take nbits leave
 * the bits of the last word beyond it alone when they read (they are masked
 * out) and clear them when they write a whole bitmap (bitmap_fill), so a
 * bitmap's tail stays zero and whole-word loops elsewhere may rely on it.
 */
#ifndef KVMIG_COMMON_BITMAP_H
#define KVMIG_COMMON_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Words of a bitmap of nbits bits. */
static inline size_t bitmap_words(uint64_t nbits)
{
	return (size_t)((nbits + 63) / 64);
}

static inline void bitmap_set(uint64_t *bm, uint64_t bit)
{
	bm[bit / 64] |= 1ull << (bit % 64);
}

static inline void bitmap_clear(uint64_t *bm, uint64_t bit)
{
	bm[bit / 64] &= ~(1ull << (bit % 64));
}

static inline bool bitmap_test(const uint64_t *bm, uint64_t bit)
{
	return (bm[bit / 64] >> (bit % 64)) & 1;
}

/* Clear bit; Return: whether it was set. */
static inline bool bitmap_test_and_clear(uint64_t *bm, uint64_t bit)
{
	bool was = bitmap_test(bm, bit);

	bitmap_clear(bm, bit);
	return was;
}

/* Bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static inline uint64_t bitmap_word_mask(unsigned lo, unsigned hi)
{
	uint64_t m = hi == 64 ? ~0ull : (1ull << hi) - 1;

	return m & ~((1ull << lo) - 1);
}

/* Set bits in [first, first + n). */
static inline uint64_t bitmap_count(const uint64_t *bm, uint64_t first, uint64_t n)
{
	uint64_t end = first + n, c = 0;

	while (first < end) {
		uint64_t w = first / 64;
		unsigned lo = (unsigned)(first % 64);
		unsigned hi = end - w * 64 >= 64 ? 64 : (unsigned)(end - w * 64);

		c += (uint64_t)__builtin_popcountll(bm[w] & bitmap_word_mask(lo, hi));
		first = w * 64 + hi;
	}
	return c;
}

/* Whether any bit in [first, first + n) is set. */
static inline bool bitmap_any(const uint64_t *bm, uint64_t first, uint64_t n)
{
	uint64_t end = first + n;

	while (first < end) {
		uint64_t w = first / 64;
		unsigned lo = (unsigned)(first % 64);
		unsigned hi = end - w * 64 >= 64 ? 64 : (unsigned)(end - w * 64);

		if (bm[w] & bitmap_word_mask(lo, hi))
			return true;
		first = w * 64 + hi;
	}
	return false;
}

/* The first set bit at or after from, below nbits. Return: it, or nbits if none. */
static inline uint64_t bitmap_find_next(const uint64_t *bm, uint64_t nbits, uint64_t from)
{
	while (from < nbits) {
		uint64_t w = from / 64;
		uint64_t bits = bm[w] & ~((1ull << (from % 64)) - 1);

		if (bits) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

			return p < nbits ? p : nbits;
		}
		from = (w + 1) * 64;
	}
	return nbits;
}

/*
 * OR bits [0, n) of src into dst at bit dst_first (bit i of src lands on
 * dst_first + i). Only dst bits in [dst_first, dst_first + n) change.
 * Return: how many of them were clear before (newly set).
 */
static inline uint64_t bitmap_or_count(uint64_t *dst, uint64_t dst_first, const uint64_t *src,
				       uint64_t n)
{
	unsigned sh = (unsigned)(dst_first % 64);
	uint64_t *d = dst + dst_first / 64, fresh = 0;

	for (size_t i = 0; i < bitmap_words(n); i++) {
		uint64_t s = src[i];

		if (n - i * 64 < 64)
			s &= (1ull << (n - i * 64)) - 1;
		if (!s)
			continue;
		fresh += (uint64_t)__builtin_popcountll((s << sh) & ~d[i]);
		d[i] |= s << sh;
		if (sh && s >> (64 - sh)) {
			/* the high part lands in the next word (within the range) */
			fresh += (uint64_t)__builtin_popcountll((s >> (64 - sh)) & ~d[i + 1]);
			d[i + 1] |= s >> (64 - sh);
		}
	}
	return fresh;
}

/* Set bits [0, nbits); the last word's bits beyond nbits are cleared. */
static inline void bitmap_fill(uint64_t *bm, uint64_t nbits)
{
	memset(bm, 0xff, bitmap_words(nbits) * 8);
	if (nbits % 64)
		bm[nbits / 64] = (1ull << (nbits % 64)) - 1;
}

/* Clear every word of a bitmap of nbits bits. */
static inline void bitmap_zero(uint64_t *bm, uint64_t nbits)
{
	memset(bm, 0, bitmap_words(nbits) * 8);
}

#endif
