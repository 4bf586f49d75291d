/* SPDX-License-Identifier: MIT */
/*
 * xbzrle.c - XBZRLE encoder (scalar, AVX2, AVX-512BW) and decoder.
 *
 * The encoder is one loop (encode_mask_body) over 64-bit "bytes that
 * differ" masks of 64-byte blocks; runs are bit scans in the masks. Each
 * implementation only supplies the block mask and a skip over unchanged
 * blocks (64-bit words, AVX2 or AVX-512BW compares, built through function
 * target attributes, so no file needs -mavx2) and gets its own copy of the
 * loop through an always_inline body. The output cannot depend on the path:
 * runs are maximal whatever found them. Loads are unaligned (memcpy or
 * loadu); the AVX-512 tail uses masked loads, which never touch bytes
 * outside the mask.
 */
#include "protocol/xbzrle.h"

#include <limits.h>
#include <string.h>

#include "common/buf.h"

#if defined(__x86_64__) || defined(__i386__)
#define XBZRLE_X86 1
#include <immintrin.h>
#else
#define XBZRLE_X86 0
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* 0x80 in exactly the bytes of x that are zero (no false positives). */
static inline uint64_t zero_byte_mask(uint64_t x)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;

	return ~(((x & lo7) + lo7) | x | lo7);
}

static inline size_t uleb_size(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline size_t uleb_put(uint8_t *p, size_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * Read a uleb128 of at most maxw bytes from p[0, avail) into *v.
 * Return: its length in bytes, 0 when truncated or longer than maxw.
 */
static inline size_t uleb_get(const uint8_t *p, size_t avail, size_t maxw, size_t *v)
{
	size_t r = 0;

	if (avail && p[0] < 0x80) {
		*v = p[0];
		return 1;
	}
	for (size_t k = 0; k < maxw && k < avail; k++) {
		r |= (size_t)(p[k] & 0x7f) << (7 * k);
		if (!(p[k] & 0x80)) {
			*v = r;
			return k + 1;
		}
	}
	return 0;
}

/* Longest uleb128 accepted for a len-byte page: QEMU's 2, or what len needs. */
static inline size_t uleb_max_bytes(size_t len)
{
	size_t w = uleb_size(len);

	return w < 2 ? 2 : w;
}

/* Copy n bytes without a library call for short runs; writes d[0, n) only. */
static ALWAYS_INLINE void copy_run(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t h = load_u64(s), t = load_u64(s + n - 8);

		store_u64(d, h);
		store_u64(d + n - 8, t);
	} else if (n >= 4) {
		uint32_t h, t;

		memcpy(&h, s, 4);
		memcpy(&t, s + n - 4, 4);
		memcpy(d, &h, 4);
		memcpy(d + n - 4, &t, 4);
	} else if (n >= 2) {
		uint8_t h0 = s[0], h1 = s[1], t = s[n - 1];

		d[0] = h0;
		d[1] = h1;
		d[n - 1] = t;
	} else if (n) {
		d[0] = s[0];
	}
}

/* ---- the encoder loop, instantiated once per implementation ------------- */

/*
 * Append zrun, nzrun and new[z, z + nzrun) at dst + *d if they fit in dlen.
 * A short run is stored as 16 bytes when both buffers have them: bytes past
 * the run land in dst's free space and are overwritten or never returned.
 */
static ALWAYS_INLINE bool emit_run(uint8_t *dst, size_t *d, size_t dlen, const uint8_t *new,
				   size_t len, size_t zrun, size_t z, size_t nzrun)
{
	size_t o = *d;

	if (zrun < 0x80 && nzrun < 0x80) {
		if (nzrun + 2 > dlen - o)
			return false;
		dst[o] = (uint8_t)zrun;
		dst[o + 1] = (uint8_t)nzrun;
		o += 2;
	} else {
		if (uleb_size(zrun) + uleb_size(nzrun) + nzrun > dlen - o)
			return false;
		o += uleb_put(dst + o, zrun);
		o += uleb_put(dst + o, nzrun);
	}
	if (nzrun <= 16 && len - z >= 16 && dlen - o >= 16) {
		store_u64(dst + o, load_u64(new + z));
		store_u64(dst + o + 8, load_u64(new + z + 8));
	} else {
		copy_run(dst + o, new + z, nzrun);
	}
	*d = o + nzrun;
	return true;
}

/*
 * The loop works on 64-byte blocks: mask() gives one bit per byte of block
 * j, set where old and new differ (bits past len clear), and runs are found
 * with bit scans inside the mask, so a busy page costs one compare per block
 * rather than one per run; skip() moves over blocks without a change.
 */
typedef uint64_t (*mask_fn)(const uint8_t *a, const uint8_t *b, size_t j, size_t len);
typedef size_t (*skip_fn)(const uint8_t *a, const uint8_t *b, size_t j, size_t len);

static ALWAYS_INLINE int encode_mask_body(const uint8_t *old, const uint8_t *new, size_t len,
					  uint8_t *dst, size_t dlen, mask_fn mask, skip_fn skip)
{
	size_t i = 0, d = 0, j = 0, z, e;
	uint64_t m, t;

	if (!len)
		return 0;
	m = mask(old, new, 0, len);
	for (;;) {
		/* next differing byte at or after i: z */
		t = m & (~0ull << (i - j));
		while (!t) {
			j = skip(old, new, j + 64, len); /* over blocks with no change */
			if (j >= len)
				return (int)d; /* trailing equal run is not written */
			m = mask(old, new, j, len);
			t = m;
		}
		z = j + (size_t)__builtin_ctzll(t);
		/* next equal byte after z: e (bits past len count as equal) */
		t = ~m & (~0ull << (z - j));
		while (!t) {
			j += 64;
			if (j >= len) {
				t = 0;
				break;
			}
			m = mask(old, new, j, len);
			t = ~m;
		}
		e = j >= len ? len : j + (size_t)__builtin_ctzll(t);
		if (!emit_run(dst, &d, dlen, new, len, z - i, z, e - z))
			return -1;
		i = e; /* < j + 64: a run that fills its block moved j on */
		if (i == len)
			return (int)d;
	}
}

/* Differing-byte mask of block j from 64-bit words: 8 bits gathered per word. */
static uint64_t block_mask_scalar(const uint8_t *a, const uint8_t *b, size_t j, size_t len)
{
	const uint64_t hi = 0x8080808080808080ull;
	uint64_t m = 0;

	if (len - j >= 64) {
		for (size_t w = 0; w < 8; w++) {
			uint64_t nz = ~zero_byte_mask(load_u64(a + j + 8 * w) ^ load_u64(b + j + 8 * w)) & hi;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			m |= ((nz >> 7) * 0x0102040810204080ull >> 56) << (8 * w);
#else
			m |= (uint64_t)__builtin_bswap64(nz >> 7) * 0x0102040810204080ull >> 56 << (8 * w);
#endif
		}
		return m;
	}
	for (size_t k = 0; k < len - j; k++)
		m |= (uint64_t)(a[j + k] != b[j + k]) << k;
	return m;
}

static size_t skip_equal_scalar(const uint8_t *a, const uint8_t *b, size_t j, size_t len)
{
	while (j < len && len - j >= 64) {
		uint64_t x = 0;

		for (size_t w = 0; w < 64; w += 8)
			x |= load_u64(a + j + w) ^ load_u64(b + j + w);
		if (x)
			break;
		j += 64;
	}
	return j < len ? j : len;
}

static int encode_scalar(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst,
			 size_t dlen)
{
	return encode_mask_body(old, new, len, dst, dlen, block_mask_scalar, skip_equal_scalar);
}

#if XBZRLE_X86
/* ---- AVX2: 32-byte compares ---------------------------------------------- */

#define TARGET_AVX2 __attribute__((target("avx2")))

static TARGET_AVX2 ALWAYS_INLINE uint32_t eq_mask32(const uint8_t *a, const uint8_t *b)
{
	__m256i va = _mm256_loadu_si256((const void *)a);
	__m256i vb = _mm256_loadu_si256((const void *)b);

	return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(va, vb));
}

/* Differing-byte mask of block j; the tail block is built a byte at a time. */
static TARGET_AVX2 uint64_t block_mask_avx2(const uint8_t *a, const uint8_t *b, size_t j,
					    size_t len)
{
	uint64_t m = 0;

	if (len - j >= 64)
		return ~(((uint64_t)eq_mask32(a + j + 32, b + j + 32) << 32) | eq_mask32(a + j, b + j));
	for (size_t k = 0; k < len - j; k++)
		m |= (uint64_t)(a[j + k] != b[j + k]) << k;
	return m;
}

/* The first block at or after j (a multiple of 64) with a change, or len. */
static TARGET_AVX2 size_t skip_equal_avx2(const uint8_t *a, const uint8_t *b, size_t j, size_t len)
{
	if (j >= len)
		return len;
	while (len - j >= 64 && (eq_mask32(a + j, b + j) & eq_mask32(a + j + 32, b + j + 32)) ==
					UINT32_MAX)
		j += 64;
	return j < len ? j : len;
}

static TARGET_AVX2 int encode_avx2(const uint8_t *old, const uint8_t *new, size_t len,
				   uint8_t *dst, size_t dlen)
{
	return encode_mask_body(old, new, len, dst, dlen, block_mask_avx2, skip_equal_avx2);
}

/* ---- AVX-512BW: 64-byte compares into mask registers --------------------- */

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw")))

static TARGET_AVX512 ALWAYS_INLINE uint64_t ne_mask64(const uint8_t *a, const uint8_t *b)
{
	__m512i va = _mm512_loadu_si512((const void *)a);
	__m512i vb = _mm512_loadu_si512((const void *)b);

	return (uint64_t)_mm512_cmpneq_epi8_mask(va, vb);
}

/* Compare the last n < 64 bytes with masked loads (no access past a + n). */
static TARGET_AVX512 ALWAYS_INLINE uint64_t ne_mask_tail(const uint8_t *a, const uint8_t *b,
							 size_t n)
{
	__mmask64 k = (__mmask64)((1ull << n) - 1);
	__m512i va = _mm512_maskz_loadu_epi8(k, (const void *)a);
	__m512i vb = _mm512_maskz_loadu_epi8(k, (const void *)b);

	return (uint64_t)_mm512_mask_cmpneq_epi8_mask(k, va, vb);
}

static TARGET_AVX512 uint64_t block_mask_avx512(const uint8_t *a, const uint8_t *b, size_t j,
					      size_t len)
{
	return len - j >= 64 ? ne_mask64(a + j, b + j) : ne_mask_tail(a + j, b + j, len - j);
}

static TARGET_AVX512 size_t skip_equal_avx512(const uint8_t *a, const uint8_t *b, size_t j,
					      size_t len)
{
	if (j >= len)
		return len;
	while (len - j >= 64 && !ne_mask64(a + j, b + j))
		j += 64;
	return j < len ? j : len;
}

/*
 * Deliberately not an AVX-512 function itself: with avx512bw enabled gcc
 * moves the 64-bit run arithmetic into k registers, and the k<->GPR moves
 * in the dependency chain halve the speed. Only the block helpers are
 * AVX-512 code, called once per block.
 */
static int encode_avx512(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst,
			 size_t dlen)
{
	return encode_mask_body(old, new, len, dst, dlen, block_mask_avx512, skip_equal_avx512);
}
#endif /* XBZRLE_X86 */

/* ---- public entry points ------------------------------------------------- */

bool xbzrle_impl_supported(enum xbzrle_impl impl)
{
	switch (impl) {
	case XBZRLE_IMPL_SCALAR:
		return true;
	case XBZRLE_IMPL_AVX2:
#if XBZRLE_X86
		return __builtin_cpu_supports("avx2");
#else
		return false;
#endif
	case XBZRLE_IMPL_AVX512:
#if XBZRLE_X86
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
		return false;
#endif
	case XBZRLE_IMPL_COUNT:
		break;
	}
	return false;
}

const char *xbzrle_impl_name(enum xbzrle_impl impl)
{
	switch (impl) {
	case XBZRLE_IMPL_SCALAR:
		return "scalar";
	case XBZRLE_IMPL_AVX2:
		return "avx2";
	case XBZRLE_IMPL_AVX512:
		return "avx512bw";
	case XBZRLE_IMPL_COUNT:
		break;
	}
	return "?";
}

int xbzrle_encode_impl(enum xbzrle_impl impl, const uint8_t *old, const uint8_t *new, size_t len,
		       uint8_t *dst, size_t dlen)
{
	if (len > XBZRLE_MAX_PAGE || (len && (!old || !new)) || (dlen && !dst))
		return -1;
	if (dlen > INT_MAX)
		dlen = INT_MAX;
	if (!xbzrle_impl_supported(impl))
		impl = XBZRLE_IMPL_SCALAR;
	switch (impl) {
#if XBZRLE_X86
	case XBZRLE_IMPL_AVX512:
		return encode_avx512(old, new, len, dst, dlen);
	case XBZRLE_IMPL_AVX2:
		return encode_avx2(old, new, len, dst, dlen);
#else
	case XBZRLE_IMPL_AVX512:
	case XBZRLE_IMPL_AVX2:
#endif
	case XBZRLE_IMPL_SCALAR:
	case XBZRLE_IMPL_COUNT:
		break;
	}
	return encode_scalar(old, new, len, dst, dlen);
}

int xbzrle_encode(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst, size_t dlen)
{
	enum xbzrle_impl impl = XBZRLE_IMPL_SCALAR;

#if XBZRLE_X86
	if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f"))
		impl = XBZRLE_IMPL_AVX512;
	else if (__builtin_cpu_supports("avx2"))
		impl = XBZRLE_IMPL_AVX2;
#endif
	return xbzrle_encode_impl(impl, old, new, len, dst, dlen);
}

int xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len)
{
	size_t i = 0, d = 0, maxw;

	if (len > XBZRLE_MAX_PAGE || (slen && !src) || (len && !page))
		return -1;
	maxw = uleb_max_bytes(len);
	while (i < slen) {
		size_t zrun, nzrun, n;

		n = uleb_get(src + i, slen - i, maxw, &zrun);
		if (!n || (i && !zrun))
			return -1; /* only the first zrun may be empty */
		i += n;
		if (zrun > len - d)
			return -1;
		d += zrun;

		n = uleb_get(src + i, slen - i, maxw, &nzrun);
		if (!n || !nzrun)
			return -1;
		i += n;
		if (nzrun > len - d || nzrun > slen - i)
			return -1;
		copy_run(page + d, src + i, nzrun);
		d += nzrun;
		i += nzrun;
	}
	return (int)d;
}
