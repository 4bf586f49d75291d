/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - save a VM to a file and restore it, possibly in another
 * process or on another host.
 *
 * A snapshot is a sequence of self-describing state sections (vm/state.h)
 * followed by the RAM pages that are not zero; every section carries a
 * CRC32C, so a truncated file, a flipped byte or a foreign version is found
 * before anything is built. Restore reads and checks the whole file into
 * fresh memory first and only then creates the KVM VM, so a bad file never
 * leaves a VM behind.
 */
#ifndef KVMIG_VM_SNAPSHOT_H
#define KVMIG_VM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "vm/vm.h"

struct snapshot_stats {
	uint64_t file_bytes;	/* bytes written or read */
	uint64_t ram_pages;	/* non-zero pages written or read */
	uint64_t zero_pages;	/* pages skipped as zero */
	uint64_t pause_ns;	/* save: time the guest was paused */
	uint64_t elapsed_ns;	/* whole operation */
};

/*
 * Pause vm, write its state and RAM to path (created 0600, replaced
 * atomically through a temporary file), then resume it if it was running.
 * Return: 0 or -errno with a message in err; on error no file is left.
 */
int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st, char *err,
		  size_t errlen) __must_check;

/*
 * Build a VM from the snapshot at path, named name (or the saved name when
 * name is NULL), paused in the state it was saved in; start it with
 * vm_start(). Return: 0 and *out, or -errno with a message in err that
 * names the problem (-EBADMSG corrupt, -EPROTO wrong version/format,
 * -ENODATA empty, -ECONNRESET truncated).
 */
int snapshot_restore(const char *path, const char *name, struct vm **out,
		     struct snapshot_stats *st, char *err, size_t errlen) __must_check;

#endif
