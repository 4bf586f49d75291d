/* SPDX-License-Identifier: MIT */
/*
 * pagecache.h - the XBZRLE page cache: the last copy of each guest page the
 * source sent, keyed by guest frame number, to delta the next copy against.
 *
 * Source side only: the destination's reference copy is its guest RAM. One
 * cache per migration, owned by the thread that encodes pages (not
 * thread-safe). Its size is fixed at create: cache_bytes rounded down to a
 * power-of-two number of page slots, arranged in 2-way sets indexed by the
 * low bits of the gfn (1 way when there is a single slot). Nothing after
 * create allocates.
 *
 * Lock-step rule. For every gfn the cache holds, the cached bytes must equal
 * the destination's copy of that page. So each time gfn is sent, in any
 * form (XBZRLE, raw, zstd, lz4 or zero), its cache entry must end up holding
 * exactly the bytes the destination now has, before gfn is encoded again:
 *  - pagecache_encode() keeps the rule itself: it snapshots the guest page
 *    once, encodes the snapshot, refreshes (or inserts) the entry with it,
 *    and when the page must go whole it hands back that snapshot to send.
 *    Send those bytes, not the guest page, which the guest may have changed
 *    since (QEMU's "send the data from the cache" fix).
 *  - a page sent as a zero page: pagecache_update(pc, gfn, NULL, gen).
 *  - a page sent whole by any other path: pagecache_update() with the bytes
 *    sent, or pagecache_invalidate().
 * A gfn that is not cached needs nothing: a miss only costs a whole page.
 *
 * Ages. The caller passes the current generation (the dirty-sync count) to
 * every call. An entry is stamped with it on insert and on every hit. A
 * slot holding one gfn is only given to another gfn when it is at least
 * PAGECACHE_LIFETIME generations old (as QEMU's page_cache.c), so the pages
 * dirtied every round stay cached while a pass over cold pages streams by.
 * Each slot also records its gfn and the cache epoch it was filled in; a
 * lookup matches both, so a slot is never used for a different gfn, and
 * pagecache_clear() drops every entry at once by moving to a new epoch.
 */
#ifndef KVMIG_PROTOCOL_PAGECACHE_H
#define KVMIG_PROTOCOL_PAGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"

#define PAGECACHE_LIFETIME 2

struct pagecache;

struct pagecache_stats {
	size_t cache_bytes;	/* slots * page_size, the memory actually used */
	size_t slots;
	uint64_t hits;		/* lookups that found the gfn */
	uint64_t misses;	/* lookups that did not (QEMU's cache_miss) */
	uint64_t overflow;	/* hits whose delta did not fit: sent whole */
	uint64_t unchanged;	/* hits whose page had not changed: nothing sent */
	uint64_t encoded_pages; /* pages sent as XBZRLE (QEMU's pages) */
	uint64_t encoded_bytes; /* their delta bytes (QEMU's bytes) */
	uint64_t inserts;	/* new gfns placed in a slot */
	uint64_t evictions;	/* of which replaced another gfn */
	uint64_t busy;		/* new gfns not cached: their set was all fresh */
};

/*
 * pagecache_create - a cache of at most cache_bytes of page_size pages.
 * Return: 0 and *out; -EINVAL when cache_bytes holds no page or page_size is
 * 0 or larger than XBZRLE_MAX_PAGE; -ENOMEM.
 */
int pagecache_create(size_t cache_bytes, size_t page_size, struct pagecache **out) __must_check;

/* Free the cache; NULL is fine. */
void pagecache_destroy(struct pagecache *pc);

size_t pagecache_page_size(const struct pagecache *pc);

/*
 * pagecache_lookup - the cached copy of gfn, or NULL. Counts a hit or a miss
 * and stamps a hit with generation. The pointer is valid until the next call
 * that changes the cache.
 */
const void *pagecache_lookup(struct pagecache *pc, uint64_t gfn, uint64_t generation);

/*
 * pagecache_insert - cache page (page_size bytes) as gfn's copy: refresh the
 * entry if gfn is cached, else take a free or old enough slot of its set.
 * Return: 0 when gfn is now cached with page; -EBUSY when its set only holds
 * fresh pages of other gfns (gfn stays uncached, which is always safe).
 */
int pagecache_insert(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation);

/*
 * pagecache_update - refresh gfn's entry with page, or with zeros when page
 * is NULL, only if gfn is cached. Return: whether it was.
 */
bool pagecache_update(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation);

/* Drop gfn's entry, if any. */
void pagecache_invalidate(struct pagecache *pc, uint64_t gfn);

/* Drop every entry (O(1): a new epoch). Counters are kept. */
void pagecache_clear(struct pagecache *pc);

/*
 * pagecache_encode - XBZRLE-encode guest page gfn against its cached copy
 * and keep the cache in lock-step (see the rule above).
 * @page: the guest page (page_size bytes); read once, into a snapshot.
 * @dst, @dst_cap: the delta; deltas of page_size bytes or more overflow.
 * @whole: set when the page must be sent whole: the snapshot to send (raw,
 * compressed, or as a zero page if it is zero), valid until the next call
 * that changes the cache.
 * Return: > 0, the delta size in dst (send as CODEC_XBZRLE); 0 when the page
 * equals its cached copy (send nothing); -ENOENT on a miss (the snapshot is
 * cached if a slot was free); -ENOSPC when the delta overflowed (the entry
 * now holds the snapshot); -EINVAL for bad arguments.
 */
ssize_t pagecache_encode(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation,
			 void *dst, size_t dst_cap, const void **whole) __must_check;

/* Count an overflow seen by a caller that runs xbzrle_encode itself. */
void pagecache_count_overflow(struct pagecache *pc);

void pagecache_get_stats(const struct pagecache *pc, struct pagecache_stats *st);

#endif
