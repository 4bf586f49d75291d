/* SPDX-License-Identifier: MIT */
/*
 * pagesend.h - stage 3-5 on the source: one guest page in, PAGES frames out.
 *
 * For each page the sender picks the encoding: an all-zero page becomes a
 * ZERO entry (or nothing at all during the bulk round, when the destination
 * RAM is known to be zero); with XBZRLE on, a page whose previous copy is
 * cached goes as a delta (or not at all when unchanged); otherwise the
 * --compress codec, and RAW whenever a codec does not shrink the page.
 * Under --compress auto the sender holds lz4 and zstd both; the job
 * switches between them and none (page_sender_set_codec) between tasks,
 * and the sender measures every codec it holds on this guest's pages, all
 * on the same sample of one page in PAGE_SENDER_PROBE_EVERY (or as set;
 * in runs of PAGE_SENDER_PROBE_RUN pages, so the encoders' caches are warm):
 * the codecs not in use encode it into scratch (probes, never sent), the
 * one in use is timed on its real encode.
 * Pages are encoded straight into the frame being built; a page that may
 * change under us (the guest runs) is snapshotted once before any encoder
 * reads it, so what is sent, what the XBZRLE cache holds and what the
 * destination applies are the same bytes.
 *
 * One sender per channel, used by one thread; nothing on this path
 * allocates or locks.
 */
#ifndef KVMIG_MIGRATE_PAGESEND_H
#define KVMIG_MIGRATE_PAGESEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "migrate/autocomp.h"
#include "migrate/mio.h"
#include "protocol/codec.h"

#define PAGE_SENDER_PROBE_EVERY 128u	/* 1 page in this many probes the other codecs */
#define PAGE_SENDER_PROBE_RUN 32u	/* ... in runs of this many pages in a row */

struct page_sender_stats {
	uint64_t pages;			/* pages handed to the sender */
	uint64_t duplicate_pages;	/* zero pages (sent as ZERO or skipped) */
	uint64_t normal_pages;		/* pages sent whole (raw) */
	uint64_t compressed_pages;	/* pages sent zstd/lz4 */
	uint64_t compressed_in, compressed_out; /* bytes before/after */
	uint64_t compress_ns;		/* time spent in the compressor */
	uint64_t xbzrle_pages, xbzrle_bytes, xbzrle_cache_miss, xbzrle_overflow;
	uint64_t xbzrle_unchanged;
	uint64_t entries;		/* page entries written (a skipped zero page is none) */
	uint64_t frames;
	uint64_t frame_bytes;		/* bytes of PAGES frames written */
	/*
	 * Each codec's figures on the sampled pages, by enum codec_id
	 * (CODEC_RAW: none, CODEC_LZ4, CODEC_ZSTD): what --compress auto
	 * decides on. Zero unless the sender holds two codecs or more.
	 */
	struct autocomp_sample codec[CODEC_COUNT];
};

struct page_sender;

/*
 * compress: codec for pages without a cached copy (NULL or RAW: none).
 * xbzrle_cache_bytes: 0 disables XBZRLE. Return: 0, -ENOMEM, -EINVAL.
 */
int page_sender_create(const struct codec_config *compress, size_t xbzrle_cache_bytes,
		       struct mio *io, struct page_sender **out) __must_check;
void page_sender_destroy(struct page_sender *s);

/*
 * page_sender_add_codec - hold codec cc (zstd or lz4) too, for
 * page_sender_set_codec; its WIRE_CAP_* bit is offered from now on and it
 * is probed on a sample of the pages while another codec is in use.
 * Before the handshake. Return: 0, -EINVAL (not zstd or lz4), -ENOMEM.
 */
int page_sender_add_codec(struct page_sender *s, const struct codec_config *cc) __must_check;

/*
 * page_sender_set_codec - the codec for the pages from now on: CODEC_RAW
 * (none) or one the sender holds. Between pages (the sender's thread, or
 * the job thread between tasks). Return: 0, or -EINVAL (not held).
 */
int page_sender_set_codec(struct page_sender *s, enum codec_id id) __must_check;

/* Probe 1 page in every (0: PAGE_SENDER_PROBE_EVERY) from now on. Like set_codec. */
void page_sender_set_probe(struct page_sender *s, unsigned every);

/* Round number stamped on PAGES frames; also the XBZRLE cache generation. */
void page_sender_set_round(struct page_sender *s, uint32_t round);

/*
 * Send page (RAM offset / page size) whose bytes are at data.
 * skip_zero: the destination page is known to be zero (bulk round, snapshot).
 * Return: 0, or -errno from the stream.
 */
int page_sender_page(struct page_sender *s, uint64_t page, const uint8_t *data,
		     bool skip_zero) __must_check;

/* Write the frame being built. Return: 0 or -errno. */
int page_sender_flush(struct page_sender *s) __must_check;

void page_sender_get_stats(const struct page_sender *s, struct page_sender_stats *st);
bool page_sender_xbzrle(const struct page_sender *s, size_t *cache_bytes);
/* the WIRE_CAP_* bits this sender's codecs need */
uint32_t page_sender_caps(const struct page_sender *s);

#endif
