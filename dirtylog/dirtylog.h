/* SPDX-License-Identifier: MIT */
/*
 * dirtylog.h - which guest pages changed since they were last sent.
 *
 * Stage 2 of the data flow. Two backends behind one interface:
 *
 *  - bitmap: KVM_GET_DIRTY_LOG with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and
 *    INITIALLY_SET. Starting marks every page dirty. dirtylog_sync() reads
 *    the bitmaps (without clearing); the sender then calls
 *    dirtylog_clear() on each chunk just before sending it, which clears
 *    and write-protects exactly those pages, so a page is protected as late
 *    as possible and a write after the clear shows up in the next sync.
 *    Without manual protect, sync uses the classic clear-on-read log.
 *  - ring: the per-vCPU dirty rings (the VM must be created with
 *    cfg.dirty_ring). Harvest often (dirtylog_poll() from the sender's
 *    loop), deduplicate into the bitmap, reset. When a ring overflowed the
 *    dirty set is unknown: sync reports it (-EOVERFLOW) and the caller
 *    resends everything rather than lose a page.
 *
 * Bitmaps are indexed by RAM page number (RAM offset / 4096), 64 pages per
 * uint64_t. The dirty rate (pages/s) is measured at every sync. Used by the
 * migration thread only.
 */
#ifndef KVMIG_DIRTYLOG_DIRTYLOG_H
#define KVMIG_DIRTYLOG_DIRTYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bitmap.h"
#include "common/compiler.h"
#include "vm/vm.h"

enum dirtylog_backend {
	DIRTYLOG_BITMAP,
	DIRTYLOG_RING,
};

struct dirtylog;

/* "bitmap" or "ring" to a backend. Return: 0 or -EINVAL. */
int dirtylog_backend_by_name(const char *name, enum dirtylog_backend *b) __must_check;
const char *dirtylog_backend_name(enum dirtylog_backend b);

/*
 * Start tracking vm. Every page counts as dirty at the start.
 * Return: 0 and *out, or -errno with a message (-EOPNOTSUPP: the VM has no
 * dirty ring, or KVM lacks a capability).
 */
int dirtylog_start(struct vm *vm, enum dirtylog_backend b, struct dirtylog **out, char *err,
		   size_t errlen) __must_check;

/* Stop tracking and free. Accepts NULL. */
void dirtylog_stop(struct dirtylog *d);

/*
 * OR the pages dirtied since the last sync into bitmap (vm_ram_bytes/4096
 * bits) and return how many bits it set that were clear, or -EOVERFLOW
 * (ring: the dirty set is unknown, every bit was set), or -errno.
 */
long dirtylog_sync(struct dirtylog *d, uint64_t *bitmap) __must_check;

/*
 * Bitmap backend with manual protect: clear and write-protect the pages of
 * [first, first + n) whose bits are set in bitmap (NULL: all of them),
 * just before they are sent. first and n multiples of 64 (n may end at the last page). A no-op
 * for the ring and for the classic log. Return: 0 or -errno.
 */
int dirtylog_clear(struct dirtylog *d, const uint64_t *bitmap, uint64_t first,
		   uint64_t n) __must_check;

/* Ring: harvest now (cheap; call often while sending). No-op for bitmaps. */
void dirtylog_poll(struct dirtylog *d);

/* Pages per second dirtied, measured over the last sync interval. */
uint64_t dirtylog_rate(const struct dirtylog *d);
/* Ring overflows seen so far. */
uint64_t dirtylog_overflows(const struct dirtylog *d);
enum dirtylog_backend dirtylog_get_backend(const struct dirtylog *d);

/* Bitmaps: common/bitmap.h (bitmap_words() sizes one). */

#endif
