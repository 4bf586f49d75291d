/* SPDX-License-Identifier: MIT */
/*
 * codec_zstd.c - CODEC_ZSTD: one zstd frame per page.
 *
 * One ZSTD_CCtx and one ZSTD_DCtx per codec context, made at create time
 * and reused for every page of the migration (the level is set once). The
 * frame carries its content size, so the decoder checks it against the page
 * size before touching the output, then checks that the payload is exactly
 * one frame and decodes to exactly the page. zstd's error space
 * (ZSTD_isError, ZSTD_getErrorName) is translated here and nowhere else:
 * dstSize_tooSmall is -ENOSPC, allocation failure -ENOMEM, everything a
 * decoder can hit is -EBADMSG.
 */
#include "protocol/codec.h"

#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h> /* ZSTD_getErrorCode, ZSTD_error_* */

#define LOG_PREFIX "codec_zstd: "
#include "common/log.h"

struct zstd_state {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

/* Map a zstd error to -errno (default_err for anything unexpected). */
static int zstd_errno(size_t r, const char *op, int default_err)
{
	ZSTD_ErrorCode code = ZSTD_getErrorCode(r);

	pr_debug("%s: %s\n", op, ZSTD_getErrorName(r));
	if (code == ZSTD_error_dstSize_tooSmall)
		return -ENOSPC;
	if (code == ZSTD_error_memory_allocation)
		return -ENOMEM;
	return default_err;
}

static void zstd_state_destroy(void *state)
{
	struct zstd_state *st = state;

	if (!st)
		return;
	ZSTD_freeCCtx(st->cctx);
	ZSTD_freeDCtx(st->dctx);
	free(st);
}

static int zstd_state_create(int level, size_t page_size, void **state)
{
	struct zstd_state *st;
	size_t r;

	(void)page_size; /* ZSTD_compress2 sizes its tables from each input */
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->cctx = ZSTD_createCCtx();
	st->dctx = ZSTD_createDCtx();
	if (!st->cctx || !st->dctx) {
		zstd_state_destroy(st);
		return -ENOMEM;
	}
	r = ZSTD_CCtx_setParameter(st->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(st->cctx, ZSTD_c_contentSizeFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(st->cctx, ZSTD_c_checksumFlag, 0);
	if (ZSTD_isError(r)) {
		pr_err("level %d: %s\n", level, ZSTD_getErrorName(r));
		zstd_state_destroy(st);
		return -EINVAL;
	}
	*state = st;
	return 0;
}

static ssize_t zstd_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
			   size_t dst_cap)
{
	struct zstd_state *st = codec_ctx_state(ctx);
	size_t r;

	if (!st || !src || !len || len > SSIZE_MAX || (!dst && dst_cap))
		return -EINVAL;
	/* no gain, no frame: the caller sends the page raw */
	r = ZSTD_compress2(st->cctx, dst, MIN(dst_cap, len - 1), src, len);
	if (ZSTD_isError(r))
		return zstd_errno(r, "compress", -EIO);
	return (ssize_t)r;
}

static ssize_t zstd_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
			   size_t dst_cap)
{
	struct zstd_state *st = codec_ctx_state(ctx);
	unsigned long long content;
	size_t r;

	if (!st || !dst || !dst_cap || dst_cap > SSIZE_MAX)
		return -EINVAL;
	if (!src || !slen)
		return -EBADMSG;
	/* also rejects ZSTD_CONTENTSIZE_UNKNOWN and _ERROR, and skippable frames (0) */
	content = ZSTD_getFrameContentSize(src, slen);
	if (content != dst_cap) {
		pr_debug("decompress: content size %llu, expected %zu\n", content, dst_cap);
		return -EBADMSG;
	}
	r = ZSTD_findFrameCompressedSize(src, slen);
	if (ZSTD_isError(r))
		return zstd_errno(r, "frame size", -EBADMSG);
	if (r != slen) {
		pr_debug("decompress: %zu bytes after the frame\n", slen - r);
		return -EBADMSG;
	}
	r = ZSTD_decompressDCtx(st->dctx, dst, dst_cap, src, slen);
	if (ZSTD_isError(r)) {
		int err = zstd_errno(r, "decompress", -EBADMSG);

		return err == -ENOMEM ? err : -EBADMSG;
	}
	if (r != dst_cap)
		return -EBADMSG;
	return (ssize_t)r;
}

static size_t zstd_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

const struct codec_ops codec_zstd_ops = {
	.name = "zstd",
	.id = CODEC_ZSTD,
	.level_min = 1,
	.level_max = 22,
	.level_default = 1,
	.encode = zstd_encode,
	.decode = zstd_decode,
	.bound = zstd_bound,
	.state_create = zstd_state_create,
	.state_destroy = zstd_state_destroy,
};
