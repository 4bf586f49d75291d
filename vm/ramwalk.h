/* SPDX-License-Identifier: MIT */
/*
 * ramwalk.h - the runs of guest RAM that hold data.
 *
 * Guest RAM is a sparse memfd (vm/vm.h): pages the guest never touched are
 * holes, cost no memory, read as zero, and must not be read (that would
 * allocate them). Every pass over RAM that can skip holes - the bulk round
 * of a migration, a snapshot, the RAM digest - walks it with this one
 * iterator: lseek(SEEK_DATA/SEEK_HOLE) on the memfd, in whole pages. A run
 * covers every page that holds any data (a partial page counts as data),
 * so the pages between two runs are whole holes. Pure, stateless between
 * calls; any thread.
 */
#ifndef KVMIG_VM_RAMWALK_H
#define KVMIG_VM_RAMWALK_H

#include <stdbool.h>
#include <stdint.h>

#define RAMWALK_PAGE 4096u

/*
 * The next run of data pages at or after page *pos and before page end,
 * in the memfd fd. On true, [*first, *first + *n) is the run (n >= 1) and
 * *pos moves past it; false when no data is left (*pos is then end). When
 * the holes cannot be known (fd < 0, or lseek fails other than with
 * ENXIO) everything left is one run: a page may be read needlessly, never
 * skipped.
 */
bool ramwalk_next(int fd, uint64_t *pos, uint64_t end, uint64_t *first, uint64_t *n);

#endif
