/* SPDX-License-Identifier: MIT */
#include "migrate/pagesend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "protocol/pagecache.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define BATCH_BUF (WIRE_HDR_BYTES + 8 + 256 * (WIRE_PAGE_ENTRY_HDR + PAGE) + WIRE_CRC_BYTES)

struct page_sender {
	struct mio *io;
	struct codec_ctx *cctx;		/* --compress, or NULL */
	struct pagecache *cache;	/* XBZRLE, or NULL */
	size_t cache_bytes;
	uint32_t round;
	struct page_batch batch;
	uint8_t *buf;
	uint8_t snap[PAGE];		/* page snapshot when not cached */
	struct page_sender_stats st;
};

int page_sender_create(const struct codec_config *compress, size_t xbzrle_cache_bytes,
		       struct mio *io, struct page_sender **out)
{
	struct page_sender *s = calloc(1, sizeof(*s));
	int ret = -ENOMEM;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->io = io;
	s->buf = malloc(BATCH_BUF);
	if (!s->buf)
		goto fail;
	if (compress && compress->ops && compress->ops->id != CODEC_RAW &&
	    compress->ops->id != CODEC_ZERO) {
		ret = codec_ctx_create(compress, PAGE, &s->cctx);
		if (ret < 0)
			goto fail;
	}
	if (xbzrle_cache_bytes) {
		ret = pagecache_create(xbzrle_cache_bytes, PAGE, &s->cache);
		if (ret < 0)
			goto fail;
		s->cache_bytes = xbzrle_cache_bytes;
	}
	batch_begin(&s->batch, s->buf, BATCH_BUF, 0);
	*out = s;
	return 0;
fail:
	page_sender_destroy(s);
	return ret;
}

void page_sender_destroy(struct page_sender *s)
{
	if (!s)
		return;
	codec_ctx_destroy(s->cctx);
	pagecache_destroy(s->cache);
	free(s->buf);
	free(s);
}

void page_sender_set_round(struct page_sender *s, uint32_t round)
{
	s->round = round;
	s->batch.round = round;
}

int page_sender_flush(struct page_sender *s)
{
	size_t n = batch_finish(&s->batch);
	int ret;

	if (!n)
		return 0;
	s->st.frames++;
	s->st.frame_bytes += n;
	ret = mio_write(s->io, s->buf, n);
	batch_begin(&s->batch, s->buf, BATCH_BUF, s->round);
	return ret;
}

/* Reserve room for a page entry, flushing a full batch first. */
static int reserve(struct page_sender *s, size_t max_len, uint8_t **dst)
{
	int ret;

	*dst = batch_reserve(&s->batch, max_len);
	if (*dst)
		return 0;
	ret = page_sender_flush(s);
	if (ret < 0)
		return ret;
	*dst = batch_reserve(&s->batch, max_len);
	return *dst ? 0 : -ENOSPC;
}

/* Send src (a stable copy of the page) compressed or raw. */
static int send_whole(struct page_sender *s, uint64_t page, const uint8_t *src)
{
	uint8_t *dst;
	int ret = reserve(s, PAGE, &dst);

	if (ret < 0)
		return ret;
	if (s->cctx) {
		uint64_t t0 = clock_now_ns();
		ssize_t n = codec_encode(s->cctx, src, PAGE, dst, PAGE - 1);

		s->st.compress_ns += clock_now_ns() - t0;
		if (n > 0) {
			s->st.entries++;
			batch_commit(&s->batch, page, (uint8_t)codec_ctx_ops(s->cctx)->id, (size_t)n);
			s->st.compressed_pages++;
			s->st.compressed_in += PAGE;
			s->st.compressed_out += (uint64_t)n;
			return 0;
		}
	}
	memcpy(dst, src, PAGE);
	s->st.entries++;
	batch_commit(&s->batch, page, CODEC_RAW, PAGE);
	s->st.normal_pages++;
	return 0;
}

static int send_zero(struct page_sender *s, uint64_t page)
{
	uint8_t *dst;
	int ret = reserve(s, 0, &dst);

	if (ret < 0)
		return ret;
	s->st.entries++;
	batch_commit(&s->batch, page, CODEC_ZERO, 0);
	return 0;
}

int page_sender_page(struct page_sender *s, uint64_t page, const uint8_t *data, bool skip_zero)
{
	const void *whole = NULL;
	uint8_t *dst;
	ssize_t n;
	int ret;

	s->st.pages++;
	if (codec_is_zero_page(data, PAGE)) {
		s->st.duplicate_pages++;
		if (s->cache)
			pagecache_update(s->cache, page, NULL, s->round);
		return skip_zero ? 0 : send_zero(s, page);
	}
	if (!s->cache) {
		/* one read of the live page; compressors read the snapshot */
		if (!s->cctx)
			return send_whole(s, page, data);
		memcpy(s->snap, data, PAGE);
		return send_whole(s, page, s->snap);
	}
	ret = reserve(s, PAGE - 1, &dst);
	if (ret < 0)
		return ret;
	n = pagecache_encode(s->cache, page, data, s->round, dst, PAGE - 1, &whole);
	if (n > 0) {
		s->st.entries++;
		batch_commit(&s->batch, page, CODEC_XBZRLE, (size_t)n);
		s->st.xbzrle_pages++;
		s->st.xbzrle_bytes += (uint64_t)n;
		return 0;
	}
	if (n == 0) {
		s->st.xbzrle_unchanged++;
		return 0;
	}
	if (n == -ENOENT)
		s->st.xbzrle_cache_miss++;
	else if (n == -ENOSPC)
		s->st.xbzrle_overflow++;
	else
		return (int)n;
	if (!whole) {
		memcpy(s->snap, data, PAGE);
		whole = s->snap;
	}
	if (codec_is_zero_page(whole, PAGE)) {
		s->st.duplicate_pages++;
		return send_zero(s, page);
	}
	return send_whole(s, page, whole);
}

void page_sender_get_stats(const struct page_sender *s, struct page_sender_stats *st)
{
	*st = s->st;
}

bool page_sender_xbzrle(const struct page_sender *s, size_t *cache_bytes)
{
	if (cache_bytes)
		*cache_bytes = s->cache_bytes;
	return s->cache != NULL;
}

uint32_t page_sender_caps(const struct page_sender *s)
{
	uint32_t caps = 0;

	if (s->cache)
		caps |= WIRE_CAP_XBZRLE;
	if (s->cctx)
		caps |= codec_ctx_ops(s->cctx)->id == CODEC_ZSTD ? WIRE_CAP_ZSTD : WIRE_CAP_LZ4;
	return caps;
}
