/* SPDX-License-Identifier: MIT */
/*
 * pagecache.c - 2-way set-associative page cache with generation ages.
 *
 * All page buffers come from one allocation at create: one per slot plus a
 * spare, the snapshot buffer of pagecache_encode(). Slots hold a pointer to
 * their buffer, so after encoding a snapshot the cache swaps the snapshot
 * into the slot instead of copying it: a page costs one copy in (the
 * snapshot the guest cannot change under us) and none out.
 */
#include "protocol/pagecache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/xbzrle.h"

#define WAYS 2

struct pagecache_slot {
	uint64_t gfn;
	uint64_t epoch; /* valid only while equal to pagecache.epoch */
	uint64_t gen;	/* generation of the last insert or hit */
	uint8_t *data;
};

struct pagecache {
	size_t page_size;
	size_t set_mask; /* sets - 1, sets a power of two */
	size_t ways;
	uint64_t epoch;
	struct pagecache_slot *slots; /* sets * ways, a set's ways adjacent */
	uint8_t *scratch;	      /* the spare buffer */
	void *mem;
	struct pagecache_stats st;
};

int pagecache_create(size_t cache_bytes, size_t page_size, struct pagecache **out)
{
	struct pagecache *pc = NULL;
	size_t nslots, align;
	int ret = -ENOMEM;

	if (!out || !page_size || page_size > XBZRLE_MAX_PAGE || cache_bytes / page_size < 1)
		return -EINVAL;
	nslots = cache_bytes / page_size;
	while (nslots & (nslots - 1))
		nslots &= nslots - 1; /* round down to a power of two */
	if (nslots > SIZE_MAX / page_size - 1)
		return -ENOMEM;
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		goto err;
	pc->page_size = page_size;
	pc->ways = nslots >= WAYS ? WAYS : 1;
	pc->set_mask = nslots / pc->ways - 1;
	pc->epoch = 1;
	pc->slots = calloc(nslots, sizeof(*pc->slots));
	if (!pc->slots)
		goto err;
	align = page_size % 4096 ? 64 : 4096;
	if (posix_memalign(&pc->mem, align, (nslots + 1) * page_size))
		goto err;
	for (size_t i = 0; i < nslots; i++)
		pc->slots[i].data = (uint8_t *)pc->mem + i * page_size;
	pc->scratch = (uint8_t *)pc->mem + nslots * page_size;
	pc->st.slots = nslots;
	pc->st.cache_bytes = nslots * page_size;
	*out = pc;
	return 0;
err:
	pagecache_destroy(pc);
	return ret;
}

void pagecache_destroy(struct pagecache *pc)
{
	if (!pc)
		return;
	free(pc->mem);
	free(pc->slots);
	free(pc);
}

size_t pagecache_page_size(const struct pagecache *pc)
{
	return pc->page_size;
}

static struct pagecache_slot *set_of(const struct pagecache *pc, uint64_t gfn)
{
	return &pc->slots[(size_t)(gfn & pc->set_mask) * pc->ways];
}

static bool slot_valid(const struct pagecache *pc, const struct pagecache_slot *s)
{
	return s->epoch == pc->epoch;
}

static struct pagecache_slot *find(const struct pagecache *pc, uint64_t gfn)
{
	struct pagecache_slot *set = set_of(pc, gfn);

	for (size_t w = 0; w < pc->ways; w++)
		if (slot_valid(pc, &set[w]) && set[w].gfn == gfn)
			return &set[w];
	return NULL;
}

/* A slot of gfn's set that gfn (not cached) may take, or NULL if all are fresh. */
static struct pagecache_slot *victim(struct pagecache *pc, uint64_t gfn, uint64_t generation)
{
	struct pagecache_slot *set = set_of(pc, gfn), *v = &set[0];

	for (size_t w = 0; w < pc->ways; w++) {
		if (!slot_valid(pc, &set[w]))
			return &set[w];
		if (set[w].gen < v->gen)
			v = &set[w];
	}
	/* the oldest entry, if old enough; a generation that went back counts as old */
	if (v->gen <= generation && generation - v->gen < PAGECACHE_LIFETIME)
		return NULL;
	return v;
}

/* Give slot s to gfn (its data is filled by the caller). */
static void claim(struct pagecache *pc, struct pagecache_slot *s, uint64_t gfn, uint64_t generation)
{
	pc->st.inserts++;
	if (slot_valid(pc, s))
		pc->st.evictions++;
	s->gfn = gfn;
	s->epoch = pc->epoch;
	s->gen = generation;
}

static void swap_scratch(struct pagecache *pc, struct pagecache_slot *s)
{
	uint8_t *t = s->data;

	s->data = pc->scratch;
	pc->scratch = t;
}

const void *pagecache_lookup(struct pagecache *pc, uint64_t gfn, uint64_t generation)
{
	struct pagecache_slot *s = find(pc, gfn);

	if (!s) {
		pc->st.misses++;
		return NULL;
	}
	pc->st.hits++;
	s->gen = generation;
	return s->data;
}

int pagecache_insert(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation)
{
	struct pagecache_slot *s = find(pc, gfn);

	if (s) {
		s->gen = generation;
	} else {
		s = victim(pc, gfn, generation);
		if (!s) {
			pc->st.busy++;
			return -EBUSY;
		}
		claim(pc, s, gfn, generation);
	}
	memcpy(s->data, page, pc->page_size);
	return 0;
}

bool pagecache_update(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation)
{
	struct pagecache_slot *s = find(pc, gfn);

	if (!s)
		return false;
	s->gen = generation;
	if (page)
		memcpy(s->data, page, pc->page_size);
	else
		memset(s->data, 0, pc->page_size);
	return true;
}

void pagecache_invalidate(struct pagecache *pc, uint64_t gfn)
{
	struct pagecache_slot *s = find(pc, gfn);

	if (s)
		s->epoch = 0;
}

void pagecache_clear(struct pagecache *pc)
{
	pc->epoch++;
}

ssize_t pagecache_encode(struct pagecache *pc, uint64_t gfn, const void *page, uint64_t generation,
			 void *dst, size_t dst_cap, const void **whole)
{
	struct pagecache_slot *s;
	int n;

	if (!pc || !page || !whole || (!dst && dst_cap))
		return -EINVAL;
	*whole = NULL;
	/* one read of guest memory: everything below uses the snapshot */
	if (page != pc->scratch) /* a *whole handed back earlier is fine too */
		memcpy(pc->scratch, page, pc->page_size);
	s = find(pc, gfn);
	if (!s) {
		pc->st.misses++;
		s = victim(pc, gfn, generation);
		if (!s) {
			pc->st.busy++;
			*whole = pc->scratch;
			return -ENOENT;
		}
		claim(pc, s, gfn, generation);
		swap_scratch(pc, s);
		*whole = s->data;
		return -ENOENT;
	}
	pc->st.hits++;
	s->gen = generation;
	n = xbzrle_encode(s->data, pc->scratch, pc->page_size, dst, MIN(dst_cap, pc->page_size - 1));
	if (n == 0) {
		pc->st.unchanged++;
		return 0;
	}
	swap_scratch(pc, s); /* the entry is now what the destination will have */
	if (n < 0) {
		pc->st.overflow++;
		*whole = s->data;
		return -ENOSPC;
	}
	pc->st.encoded_pages++;
	pc->st.encoded_bytes += (uint64_t)n;
	return n;
}

void pagecache_count_overflow(struct pagecache *pc)
{
	pc->st.overflow++;
}

void pagecache_get_stats(const struct pagecache *pc, struct pagecache_stats *st)
{
	*st = pc->st;
}
