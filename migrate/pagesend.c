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
	struct codec_ctx *ctx[CODEC_COUNT]; /* the codecs held, by id (ZSTD, LZ4), or NULL */
	struct codec_ctx *cctx;		/* the one in use (one of ctx), or NULL: none */
	unsigned nctx;			/* codecs held */
	unsigned probe_tick;		/* pages into the current probe period */
	unsigned probe_every;		/* probe 1 page in this many (in runs) */
	struct pagecache *cache;	/* XBZRLE, or NULL */
	size_t cache_bytes;
	uint32_t round;
	struct page_batch batch;
	uint8_t *buf;
	uint8_t snap[PAGE];		/* page snapshot when not cached */
	uint8_t scratch[PAGE];		/* a probe's output, never sent */
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
	s->probe_every = PAGE_SENDER_PROBE_EVERY;
	s->buf = malloc(BATCH_BUF);
	if (!s->buf)
		goto fail;
	if (compress && compress->ops && compress->ops->id != CODEC_RAW &&
	    compress->ops->id != CODEC_ZERO) {
		ret = page_sender_add_codec(s, compress);
		if (ret < 0)
			goto fail;
		s->cctx = s->ctx[compress->ops->id];
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
	for (unsigned i = 0; i < CODEC_COUNT; i++)
		codec_ctx_destroy(s->ctx[i]);
	pagecache_destroy(s->cache);
	free(s->buf);
	free(s);
}

int page_sender_add_codec(struct page_sender *s, const struct codec_config *cc)
{
	unsigned id;
	int ret;

	if (!cc->ops || (cc->ops->id != CODEC_ZSTD && cc->ops->id != CODEC_LZ4))
		return -EINVAL;
	id = cc->ops->id;
	if (s->ctx[id])
		return -EINVAL;
	ret = codec_ctx_create(cc, PAGE, &s->ctx[id]);
	if (ret < 0)
		return ret;
	s->nctx++;
	return 0;
}

int page_sender_set_codec(struct page_sender *s, enum codec_id id)
{
	if (id == CODEC_RAW) {
		s->cctx = NULL;
		return 0;
	}
	if ((unsigned)id >= CODEC_COUNT || !s->ctx[id])
		return -EINVAL;
	s->cctx = s->ctx[id];
	return 0;
}

void page_sender_set_probe(struct page_sender *s, unsigned every)
{
	s->probe_every = every ? every : PAGE_SENDER_PROBE_EVERY;
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

/*
 * A sample that took longer than this was interrupted (a softirq, a fault),
 * not slow: level-1 lz4 and zstd encode a page in tens of us at worst.
 */
#define PROBE_MAX_NS 200000u

/* One codec's figures for a page of PAGE bytes that took out bytes on the wire. */
static void count_codec(struct page_sender *s, enum codec_id id, uint64_t out, uint64_t ns)
{
	struct autocomp_sample *c = &s->st.codec[id];

	if (ns > PROBE_MAX_NS)
		return;
	c->pages++;
	c->in_bytes += PAGE;
	c->out_bytes += out;
	c->ns += ns;
}

/*
 * --compress auto: the sampled pages, measured with every codec held: here,
 * into scratch, those not in use; the one in use by the caller, on its real
 * encode. So the codecs are compared on the same pages (a sample's mix of
 * text and random pages varies; their ranking should not). Samples come in
 * runs of PAGE_SENDER_PROBE_RUN pages in a row, one run per probe_every
 * runs' worth of pages: the first page of a run only warms the encoders up
 * (a zstd context left cold for a hundred pages encodes at half its speed),
 * and is not counted. Samples are timed in thread CPU time, so a
 * preemption in the middle of one does not make a codec look slow.
 * Return: whether src is a counted sample.
 */
static bool probe(struct page_sender *s, const uint8_t *src)
{
	unsigned pos;

	if (s->nctx < 1 + (s->cctx != NULL))
		return false;
	pos = s->probe_tick++;
	if (s->probe_tick >= s->probe_every * PAGE_SENDER_PROBE_RUN)
		s->probe_tick = 0;
	if (pos >= PAGE_SENDER_PROBE_RUN)
		return false;
	for (unsigned id = 0; id < CODEC_COUNT; id++) {
		uint64_t t0;
		ssize_t n;

		if (!s->ctx[id] || s->ctx[id] == s->cctx)
			continue;
		t0 = clock_thread_ns();
		n = codec_encode(s->ctx[id], src, PAGE, s->scratch, PAGE - 1);
		if (pos)
			count_codec(s, (enum codec_id)id, n > 0 ? (uint64_t)n : PAGE,
				    clock_thread_ns() - t0);
	}
	return pos != 0;
}

/* Send src (a stable copy of the page, or the live page without a codec) compressed or raw. */
static int send_whole(struct page_sender *s, uint64_t page, const uint8_t *src)
{
	uint8_t *dst;
	int ret = reserve(s, PAGE, &dst);
	bool sample;

	if (ret < 0)
		return ret;
	sample = probe(s, src);
	if (s->cctx) {
		enum codec_id id = codec_ctx_ops(s->cctx)->id;
		uint64_t c0 = sample ? clock_thread_ns() : 0, t0 = clock_now_ns();
		ssize_t n = codec_encode(s->cctx, src, PAGE, dst, PAGE - 1);

		s->st.compress_ns += clock_now_ns() - t0;
		if (sample)
			count_codec(s, id, n > 0 ? (uint64_t)n : PAGE, clock_thread_ns() - c0);
		if (n > 0) {
			s->st.entries++;
			batch_commit(&s->batch, page, (uint8_t)id, (size_t)n);
			s->st.compressed_pages++;
			s->st.compressed_in += PAGE;
			s->st.compressed_out += (uint64_t)n;
			return 0;
		}
	} else if (sample) {
		count_codec(s, CODEC_RAW, PAGE, 0);
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
	if (s->ctx[CODEC_ZSTD])
		caps |= WIRE_CAP_ZSTD;
	if (s->ctx[CODEC_LZ4])
		caps |= WIRE_CAP_LZ4;
	return caps;
}
