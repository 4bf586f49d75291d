/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - save a VM to a file and restore it, possibly in another
 * process or on another host.
 *
 * A snapshot file is a migration stream (protocol/wire.h) written to a
 * file: HELLO, PAGES frames with every page that is not zero (zero pages
 * cost nothing: the restored RAM starts zeroed), SWITCHOVER, one STATE frame
 * per state section, COMPLETE. Every frame carries a CRC32C, so a truncated
 * file, a flipped byte or a foreign version is found before anything is
 * built: restore runs the same decoder as a live migration
 * (migrate/incoming.h) into fresh memory and only then creates the KVM VM,
 * so a bad file never leaves a VM behind.
 */
#ifndef KVMIG_MIGRATE_SNAPSHOT_H
#define KVMIG_MIGRATE_SNAPSHOT_H

#include <stdbool.h>
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
	bool paused;		/* restore: the VM was paused when it was saved */
};

/*
 * Pause vm, write its state and RAM to path (created 0600, replaced
 * atomically through a temporary file), then resume it if it was running.
 * Return: 0 or -errno with a message in err; on error no file is left.
 */
int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st, char *err,
		  size_t errlen) __must_check;

/*
 * snapshot_save() with page compression: compress is a --compress value
 * ("none", "zstd[:LEVEL]", "lz4", "lz4hc[:LEVEL]") or NULL for none.
 */
int snapshot_save_compressed(struct vm *vm, const char *path, const char *compress,
			     struct snapshot_stats *st, char *err, size_t errlen) __must_check;

/*
 * Build a VM from the snapshot at path, named name (or the saved name when
 * name is NULL), paused in the state it was saved in; start it with
 * vm_start() unless st->paused says the VM was paused when it was saved
 * (then it is kept paused until the user resumes it). Return: 0 and *out, or -errno with a message in err that
 * names the problem (-EBADMSG corrupt, -EPROTO wrong version/format,
 * -ENODATA empty, -ECONNRESET truncated).
 */
int snapshot_restore(const char *path, const char *name, struct vm **out,
		     struct snapshot_stats *st, char *err, size_t errlen) __must_check;

#endif
