/* SPDX-License-Identifier: MIT */
/*
 * codec_lz4.c - CODEC_LZ4: one raw LZ4 block per page, from the fast
 * encoder ("lz4[:ACCEL]") or the HC encoder ("lz4hc[:LEVEL]").
 *
 * A block has no header, so the page size is the frame's business; the
 * decoder (LZ4_decompress_safe, bounded by dst_cap) must produce exactly
 * dst_cap bytes. Every block is independent. The fast encoder keeps its
 * state buffer per context (LZ4_compress_fast_extState: measured faster on
 * 4 KiB pages than LZ4_resetStream_fast + LZ4_compress_fast_continue, whose
 * dictionary bookkeeping costs more than re-zeroing 16 KiB); the HC encoder
 * keeps a stream and starts each page with LZ4_resetStreamHC_fast, which
 * beats re-initialising its 256 KiB state.
 */
#include "protocol/codec.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <lz4.h>
#include <lz4hc.h>

struct lz4_state {
	void *fast; /* LZ4_sizeofState() bytes */
	LZ4_streamHC_t *hc;
	int level; /* acceleration (fast) or HC level */
};

static void lz4_state_destroy(void *state)
{
	struct lz4_state *st = state;

	if (!st)
		return;
	free(st->fast);
	if (st->hc)
		LZ4_freeStreamHC(st->hc);
	free(st);
}

static int lz4_state_create_common(int level, bool hc, void **state)
{
	struct lz4_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->level = level;
	if (hc)
		st->hc = LZ4_createStreamHC();
	else
		st->fast = malloc((size_t)LZ4_sizeofState());
	if (!st->fast && !st->hc) {
		free(st);
		return -ENOMEM;
	}
	*state = st;
	return 0;
}

static int lz4_state_create(int level, size_t page_size, void **state)
{
	(void)page_size;
	return lz4_state_create_common(level, false, state);
}

static int lz4hc_state_create(int level, size_t page_size, void **state)
{
	(void)page_size;
	return lz4_state_create_common(level, true, state);
}

/* Common checks; the output limit is < len so a block always saves bytes. */
static int lz4_args(const void *src, size_t len, const void *dst, size_t dst_cap, int *cap)
{
	if (!src || !len || len > LZ4_MAX_INPUT_SIZE || (!dst && dst_cap))
		return -EINVAL;
	*cap = (int)MIN(MIN(dst_cap, len - 1), (size_t)INT_MAX);
	return 0;
}

static ssize_t lz4_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
			  size_t dst_cap)
{
	struct lz4_state *st = codec_ctx_state(ctx);
	int cap, n;

	if (!st || !st->fast || lz4_args(src, len, dst, dst_cap, &cap) < 0)
		return -EINVAL;
	n = LZ4_compress_fast_extState(st->fast, src, dst, (int)len, cap, st->level);
	return n > 0 ? n : -ENOSPC;
}

static ssize_t lz4hc_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
			    size_t dst_cap)
{
	struct lz4_state *st = codec_ctx_state(ctx);
	int cap, n;

	if (!st || !st->hc || lz4_args(src, len, dst, dst_cap, &cap) < 0)
		return -EINVAL;
	LZ4_resetStreamHC_fast(st->hc, st->level);
	n = LZ4_compress_HC_continue(st->hc, src, dst, (int)len, cap);
	return n > 0 ? n : -ENOSPC;
}

static ssize_t lz4_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
			  size_t dst_cap)
{
	int n;

	(void)ctx; /* LZ4_decompress_safe keeps no state */
	if (!dst || !dst_cap || dst_cap > INT_MAX)
		return -EINVAL;
	if (!src || !slen || slen > INT_MAX)
		return -EBADMSG;
	n = LZ4_decompress_safe(src, dst, (int)slen, (int)dst_cap);
	if (n < 0 || (size_t)n != dst_cap)
		return -EBADMSG;
	return n;
}

static size_t lz4_bound(size_t len)
{
	if (len > LZ4_MAX_INPUT_SIZE)
		return 0;
	return (size_t)LZ4_compressBound((int)len);
}

const struct codec_ops codec_lz4_ops = {
	.name = "lz4",
	.id = CODEC_LZ4,
	.level_min = 1,
	.level_max = 65537, /* LZ4_ACCELERATION_MAX */
	.level_default = 1,
	.encode = lz4_encode,
	.decode = lz4_decode,
	.bound = lz4_bound,
	.state_create = lz4_state_create,
	.state_destroy = lz4_state_destroy,
};

const struct codec_ops codec_lz4hc_ops = {
	.name = "lz4hc",
	.id = CODEC_LZ4,
	.level_min = 1,
	.level_max = LZ4HC_CLEVEL_MAX,
	.level_default = LZ4HC_CLEVEL_DEFAULT,
	.encode = lz4hc_encode,
	.decode = lz4_decode,
	.bound = lz4_bound,
	.state_create = lz4hc_state_create,
	.state_destroy = lz4_state_destroy,
};
