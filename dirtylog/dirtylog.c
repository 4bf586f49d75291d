/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "dirtylog: "
#include "dirtylog/dirtylog.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/bitmap.h"
#include "common/err.h"
#include "common/clock.h"
#include "common/log.h"

struct dirtylog {
	struct vm *vm;
	enum dirtylog_backend backend;
	struct vm_slot slots[2];
	unsigned nslots;
	uint64_t npages;
	uint64_t *slot_bm;	/* one slot's bitmap from KVM_GET_DIRTY_LOG */
	uint64_t *ring_bm;	/* ring: pages harvested since the last sync */
	uint64_t *ones;		/* all ones, the size of the RAM bitmap */
	bool manual;
	bool first_sync;	/* nothing synced yet: everything is dirty */
	uint64_t last_sync_ns;
	uint64_t rate;
	uint64_t overflows;
	bool overflowed;	/* ring overflowed since the last sync */
};

int dirtylog_backend_by_name(const char *name, enum dirtylog_backend *b)
{
	if (!strcmp(name, "bitmap"))
		*b = DIRTYLOG_BITMAP;
	else if (!strcmp(name, "ring"))
		*b = DIRTYLOG_RING;
	else
		return -EINVAL;
	return 0;
}

const char *dirtylog_backend_name(enum dirtylog_backend b)
{
	return b == DIRTYLOG_RING ? "ring" : "bitmap";
}

int dirtylog_start(struct vm *vm, enum dirtylog_backend b, struct dirtylog **out, char *err,
		   size_t errlen)
{
	struct dirtylog *d;
	uint64_t max_slot = 0;
	int ret;

	*out = NULL;
	if (b == DIRTYLOG_RING && !vm_get_config(vm)->dirty_ring)
		return err_set(-EOPNOTSUPP, err, errlen,
			    "VM %s has no dirty ring: start it with --dirty-ring ENTRIES",
			    vm_get_config(vm)->name);
	d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	d->vm = vm;
	d->backend = b;
	d->nslots = vm_get_slots(vm, d->slots);
	d->npages = vm_ram_bytes(vm) / VM_PAGE_SIZE;
	for (unsigned i = 0; i < d->nslots; i++)
		max_slot = MAX(max_slot, d->slots[i].bytes / VM_PAGE_SIZE);
	d->slot_bm = calloc(bitmap_words(max_slot), 8);
	d->ring_bm = calloc(bitmap_words(d->npages), 8);
	d->ones = malloc(bitmap_words(d->npages) * 8);
	if (!d->slot_bm || !d->ring_bm || !d->ones) {
		dirtylog_stop(d);
		return err_set(-ENOMEM, err, errlen, "out of memory for dirty bitmaps");
	}
	memset(d->ones, 0xff, bitmap_words(d->npages) * 8);
	d->manual = b == DIRTYLOG_BITMAP && vm_manual_protect(vm);
	d->first_sync = true;
	ret = vm_set_dirty_logging(vm, true);
	if (ret < 0) {
		dirtylog_stop(d);
		return err_set(ret, err, errlen, "cannot enable dirty logging: %s", strerror(-ret));
	}
	d->last_sync_ns = clock_now_ns();
	*out = d;
	return 0;
}

void dirtylog_stop(struct dirtylog *d)
{
	if (!d)
		return;
	if (vm_set_dirty_logging(d->vm, false) < 0)
		pr_warn("cannot turn dirty logging off");
	free(d->slot_bm);
	free(d->ring_bm);
	free(d->ones);
	free(d);
}

static long sync_bitmap(struct dirtylog *d, uint64_t *bitmap)
{
	long total = 0;

	for (unsigned i = 0; i < d->nslots; i++) {
		struct kvm_dirty_log log = { .slot = d->slots[i].slot, .dirty_bitmap = d->slot_bm };
		uint64_t pages = d->slots[i].bytes / VM_PAGE_SIZE;

		bitmap_zero(d->slot_bm, pages);
		if (ioctl(vm_get_fd(d->vm), KVM_GET_DIRTY_LOG, &log) < 0) {
			int e = errno;

			pr_err("KVM_GET_DIRTY_LOG slot %u: %s", d->slots[i].slot, strerror(e));
			return -e;
		}
		/* the slot's pages, at their RAM page offset; count the new ones */
		total += (long)bitmap_or_count(bitmap, d->slots[i].ram_off / VM_PAGE_SIZE, d->slot_bm,
					       pages);
	}
	return total;
}

void dirtylog_poll(struct dirtylog *d)
{
	bool any = false;

	if (d->backend != DIRTYLOG_RING)
		return;
	for (unsigned i = 0; i < vm_vcpu_count(d->vm); i++) {
		long n = vm_dirty_ring_harvest(d->vm, i, d->ring_bm);

		if (n == -EOVERFLOW) {
			d->overflowed = true;
			d->overflows++;
			any = true;
		} else if (n > 0) {
			any = true;
		}
	}
	if (any && vm_dirty_ring_reset(d->vm) < 0)
		pr_warn("KVM_RESET_DIRTY_RINGS failed");
}

long dirtylog_sync(struct dirtylog *d, uint64_t *bitmap)
{
	uint64_t now = clock_now_ns(), dt = now - d->last_sync_ns;
	long n;

	if (d->backend == DIRTYLOG_RING) {
		dirtylog_poll(d);
		if (d->overflowed)
			bitmap_fill(d->ring_bm, d->npages);
		n = (long)bitmap_or_count(bitmap, 0, d->ring_bm, d->npages);
		bitmap_zero(d->ring_bm, d->npages);
		if (d->overflowed) {
			d->overflowed = false;
			d->last_sync_ns = now;
			return -EOVERFLOW;
		}
	} else {
		n = sync_bitmap(d, bitmap);
		if (n < 0)
			return n;
	}
	if (!d->first_sync && dt)
		d->rate = (uint64_t)n * 1000000000ull / dt;
	d->first_sync = false;
	d->last_sync_ns = now;
	return n;
}

int dirtylog_clear(struct dirtylog *d, const uint64_t *bitmap, uint64_t first, uint64_t n)
{
	if (!d->manual || !n)
		return 0;
	if (!bitmap)
		bitmap = d->ones;
	for (unsigned i = 0; i < d->nslots; i++) {
		uint64_t s0 = d->slots[i].ram_off / VM_PAGE_SIZE;
		uint64_t s1 = s0 + d->slots[i].bytes / VM_PAGE_SIZE;
		uint64_t a = MAX(first, s0), b = MIN(first + n, s1);
		struct kvm_clear_dirty_log c;

		if (a >= b)
			continue;
		/* slot-relative range; the slot starts on a 64-page boundary */
		memset(&c, 0, sizeof(c));
		c.slot = d->slots[i].slot;
		c.first_page = a - s0;
		c.num_pages = (uint32_t)(b - a);
		if (c.num_pages % 64 && b != s1)
			return -EINVAL;
		c.dirty_bitmap = (void *)(uintptr_t)(bitmap + a / 64);
		if (ioctl(vm_get_fd(d->vm), KVM_CLEAR_DIRTY_LOG, &c) < 0) {
			int e = errno;

			pr_err("KVM_CLEAR_DIRTY_LOG slot %u pages %llu+%u: %s", c.slot,
			       (unsigned long long)c.first_page, c.num_pages, strerror(e));
			return -e;
		}
	}
	return 0;
}

uint64_t dirtylog_rate(const struct dirtylog *d)
{
	return d->rate;
}

uint64_t dirtylog_overflows(const struct dirtylog *d)
{
	return d->overflows;
}

enum dirtylog_backend dirtylog_get_backend(const struct dirtylog *d)
{
	return d->backend;
}
