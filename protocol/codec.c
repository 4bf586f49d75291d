/* SPDX-License-Identifier: MIT */
/*
 * codec.c - the codec table, contexts, name parsing, the ZERO, RAW and
 * XBZRLE codecs and the zero-page scan.
 *
 * The zero scan ORs 256 bytes at a time (four 64-byte or eight 32-byte
 * vectors, or 32 words) and tests the accumulator once per block, so a page
 * that is not zero is rejected after its first block, a zero page costs one
 * load per vector. The AVX paths are compiled through target attributes and
 * chosen with __builtin_cpu_supports, like xbzrle.c.
 */
#include "protocol/codec.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/parse.h"
#include "protocol/xbzrle.h"

#if defined(__x86_64__) || defined(__i386__)
#define CODEC_X86 1
#include <immintrin.h>
#else
#define CODEC_X86 0
#endif

struct codec_ctx {
	const struct codec_ops *ops;
	int level;
	size_t page_size;
	const uint8_t *ref; /* XBZRLE: the old page for the next encode */
	void *state;	    /* backend state from ops->state_create */
};

/* ---- zero-page scan ------------------------------------------------------ */

static bool zero_tail(const uint8_t *p, size_t len)
{
	uint64_t acc = 0;
	size_t i = 0;

	for (; len - i >= 8; i += 8)
		acc |= load_u64(p + i);
	for (; i < len; i++)
		acc |= p[i];
	return !acc;
}

static bool zero_scalar(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; len - i >= 256; i += 256) {
		uint64_t acc = 0;

		for (size_t k = 0; k < 256; k += 32)
			acc |= load_u64(p + i + k) | load_u64(p + i + k + 8) |
			       load_u64(p + i + k + 16) | load_u64(p + i + k + 24);
		if (acc)
			return false;
	}
	return zero_tail(p + i, len - i);
}

#if CODEC_X86
__attribute__((target("avx2"))) static bool zero_avx2(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; len - i >= 256; i += 256) {
		__m256i a = _mm256_loadu_si256((const void *)(p + i));
		__m256i b = _mm256_loadu_si256((const void *)(p + i + 32));
		__m256i c = _mm256_loadu_si256((const void *)(p + i + 64));
		__m256i d = _mm256_loadu_si256((const void *)(p + i + 96));

		a = _mm256_or_si256(a, _mm256_loadu_si256((const void *)(p + i + 128)));
		b = _mm256_or_si256(b, _mm256_loadu_si256((const void *)(p + i + 160)));
		c = _mm256_or_si256(c, _mm256_loadu_si256((const void *)(p + i + 192)));
		d = _mm256_or_si256(d, _mm256_loadu_si256((const void *)(p + i + 224)));
		a = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
		if (!_mm256_testz_si256(a, a))
			return false;
	}
	return zero_tail(p + i, len - i);
}

__attribute__((target("avx512f"))) static bool zero_avx512(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; len - i >= 256; i += 256) {
		__m512i a = _mm512_loadu_si512((const void *)(p + i));
		__m512i b = _mm512_loadu_si512((const void *)(p + i + 64));
		__m512i c = _mm512_loadu_si512((const void *)(p + i + 128));
		__m512i d = _mm512_loadu_si512((const void *)(p + i + 192));

		/* 0xfe: a | b | c | d */
		a = _mm512_ternarylogic_epi64(a, b, c, 0xfe);
		a = _mm512_or_si512(a, d);
		if (_mm512_test_epi64_mask(a, a))
			return false;
	}
	return zero_tail(p + i, len - i);
}
#endif

bool codec_simd_supported(enum codec_simd simd)
{
	switch (simd) {
	case CODEC_SIMD_SCALAR:
		return true;
	case CODEC_SIMD_AVX2:
#if CODEC_X86
		return __builtin_cpu_supports("avx2");
#else
		return false;
#endif
	case CODEC_SIMD_AVX512:
#if CODEC_X86
		return __builtin_cpu_supports("avx512f");
#else
		return false;
#endif
	case CODEC_SIMD_COUNT:
		break;
	}
	return false;
}

const char *codec_simd_name(enum codec_simd simd)
{
	switch (simd) {
	case CODEC_SIMD_SCALAR:
		return "scalar";
	case CODEC_SIMD_AVX2:
		return "avx2";
	case CODEC_SIMD_AVX512:
		return "avx512";
	case CODEC_SIMD_COUNT:
		break;
	}
	return "?";
}

bool codec_is_zero_page_simd(enum codec_simd simd, const void *page, size_t len)
{
	if (!codec_simd_supported(simd))
		simd = CODEC_SIMD_SCALAR;
	switch (simd) {
#if CODEC_X86
	case CODEC_SIMD_AVX512:
		return zero_avx512(page, len);
	case CODEC_SIMD_AVX2:
		return zero_avx2(page, len);
#else
	case CODEC_SIMD_AVX512:
	case CODEC_SIMD_AVX2:
#endif
	case CODEC_SIMD_SCALAR:
	case CODEC_SIMD_COUNT:
		break;
	}
	return zero_scalar(page, len);
}

bool codec_is_zero_page(const void *page, size_t len)
{
#if CODEC_X86
	if (__builtin_cpu_supports("avx512f"))
		return zero_avx512(page, len);
	if (__builtin_cpu_supports("avx2"))
		return zero_avx2(page, len);
#endif
	return zero_scalar(page, len);
}

/* ---- ZERO, RAW and XBZRLE ------------------------------------------------ */

static ssize_t zero_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
			   size_t dst_cap)
{
	(void)ctx;
	(void)dst;
	(void)dst_cap;
	if (!src || !len)
		return -EINVAL;
	return codec_is_zero_page(src, len) ? 0 : -ENOSPC;
}

static ssize_t zero_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
			   size_t dst_cap)
{
	(void)ctx;
	(void)src;
	if (!dst || !dst_cap || dst_cap > SSIZE_MAX)
		return -EINVAL;
	if (slen)
		return -EBADMSG;
	memset(dst, 0, dst_cap);
	return (ssize_t)dst_cap;
}

static size_t zero_bound(size_t len)
{
	(void)len;
	return 0;
}

static ssize_t raw_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
			  size_t dst_cap)
{
	(void)ctx;
	if (!src || !dst || !len || len > SSIZE_MAX)
		return -EINVAL;
	if (dst_cap < len)
		return -ENOSPC;
	memcpy(dst, src, len);
	return (ssize_t)len;
}

static ssize_t raw_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
			  size_t dst_cap)
{
	(void)ctx;
	if (!dst || !dst_cap || dst_cap > SSIZE_MAX)
		return -EINVAL;
	if (slen != dst_cap || !src)
		return -EBADMSG;
	memcpy(dst, src, dst_cap);
	return (ssize_t)dst_cap;
}

static size_t raw_bound(size_t len)
{
	return len;
}

static ssize_t xbzrle_codec_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
				   size_t dst_cap)
{
	int n;

	if (!ctx || !ctx->ref || !src || !len || len > XBZRLE_MAX_PAGE || (!dst && dst_cap))
		return -EINVAL;
	/* a delta as big as the page is worse than the page */
	n = xbzrle_encode(ctx->ref, src, len, dst, MIN(dst_cap, len - 1));
	return n < 0 ? -ENOSPC : n;
}

static ssize_t xbzrle_codec_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
				   size_t dst_cap)
{
	(void)ctx;
	if (!dst || !dst_cap || dst_cap > XBZRLE_MAX_PAGE)
		return -EINVAL;
	if (xbzrle_decode(src, slen, dst, dst_cap) < 0)
		return -EBADMSG;
	return (ssize_t)dst_cap;
}

static size_t xbzrle_codec_bound(size_t len)
{
	return xbzrle_bound(len);
}

const struct codec_ops codec_zero_ops = {
	.name = "zero",
	.id = CODEC_ZERO,
	.encode = zero_encode,
	.decode = zero_decode,
	.bound = zero_bound,
};

const struct codec_ops codec_raw_ops = {
	.name = "raw",
	.id = CODEC_RAW,
	.encode = raw_encode,
	.decode = raw_decode,
	.bound = raw_bound,
};

const struct codec_ops codec_xbzrle_ops = {
	.name = "xbzrle",
	.id = CODEC_XBZRLE,
	.encode = xbzrle_codec_encode,
	.decode = xbzrle_codec_decode,
	.bound = xbzrle_codec_bound,
};

/* Indexed by wire id. */
static const struct codec_ops *const codec_table[] = {
	[CODEC_ZERO] = &codec_zero_ops,
	[CODEC_RAW] = &codec_raw_ops,
	[CODEC_XBZRLE] = &codec_xbzrle_ops,
	[CODEC_ZSTD] = &codec_zstd_ops,
	[CODEC_LZ4] = &codec_lz4_ops,
};

_Static_assert(ARRAY_SIZE(codec_table) == CODEC_COUNT, "codec_table must cover every codec id");

const struct codec_ops *codec_get(unsigned int id)
{
	return id < ARRAY_SIZE(codec_table) ? codec_table[id] : NULL;
}

/* ---- names and contexts -------------------------------------------------- */

static const struct codec_ops *lookup_name(const char *name, size_t n)
{
	static const struct codec_ops *const extra[] = { &codec_lz4hc_ops };

	if (n == 4 && !memcmp(name, "none", 4))
		return &codec_raw_ops;
	for (size_t i = 0; i < ARRAY_SIZE(codec_table); i++)
		if (strlen(codec_table[i]->name) == n && !memcmp(codec_table[i]->name, name, n))
			return codec_table[i];
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++)
		if (strlen(extra[i]->name) == n && !memcmp(extra[i]->name, name, n))
			return extra[i];
	return NULL;
}

int codec_by_name(const char *name, struct codec_config *cfg)
{
	const struct codec_ops *ops;
	const char *colon;
	uint64_t level;

	if (!name || !cfg)
		return -EINVAL;
	colon = strchr(name, ':');
	ops = lookup_name(name, colon ? (size_t)(colon - name) : strlen(name));
	if (!ops)
		return -EINVAL;
	cfg->ops = ops;
	cfg->level = ops->level_default;
	if (!colon)
		return 0;
	if (!ops->level_max || parse_u64(colon + 1, &level) < 0 ||
	    level < (uint64_t)ops->level_min || level > (uint64_t)ops->level_max)
		return -EINVAL;
	cfg->level = (int)level;
	return 0;
}

int codec_config_format(const struct codec_config *cfg, char *buf, size_t cap)
{
	int n;

	if (!cfg || !cfg->ops || !buf)
		return -EINVAL;
	if (cfg->ops->level_max)
		n = snprintf(buf, cap, "%s:%d", cfg->ops->name, cfg->level);
	else
		n = snprintf(buf, cap, "%s", cfg->ops->name);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int codec_ctx_create(const struct codec_config *cfg, size_t page_size, struct codec_ctx **out)
{
	struct codec_ctx *ctx;
	int level, ret;

	if (!cfg || !cfg->ops || !out || !page_size)
		return -EINVAL;
	level = cfg->level;
	if (!cfg->ops->level_max)
		level = 0;
	else if (level < cfg->ops->level_min || level > cfg->ops->level_max)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->ops = cfg->ops;
	ctx->level = level;
	ctx->page_size = page_size;
	if (cfg->ops->state_create) {
		ret = cfg->ops->state_create(level, page_size, &ctx->state);
		if (ret < 0) {
			free(ctx);
			return ret;
		}
	}
	*out = ctx;
	return 0;
}

void codec_ctx_destroy(struct codec_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->ops->state_destroy)
		ctx->ops->state_destroy(ctx->state);
	free(ctx);
}

const struct codec_ops *codec_ctx_ops(const struct codec_ctx *ctx)
{
	return ctx ? ctx->ops : NULL;
}

void codec_ctx_set_ref(struct codec_ctx *ctx, const void *old_page)
{
	if (ctx)
		ctx->ref = old_page;
}

void *codec_ctx_state(const struct codec_ctx *ctx)
{
	return ctx ? ctx->state : NULL;
}

ssize_t codec_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst, size_t dst_cap)
{
	if (!ctx)
		return -EINVAL;
	return ctx->ops->encode(ctx, src, len, dst, dst_cap);
}

ssize_t codec_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst, size_t dst_cap)
{
	if (!ctx)
		return -EINVAL;
	return ctx->ops->decode(ctx, src, slen, dst, dst_cap);
}
