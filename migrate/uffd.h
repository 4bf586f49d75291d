/* SPDX-License-Identifier: MIT */
/*
 * uffd.h - userfaultfd for post-copy (issue 10): the destination's guest
 * RAM is registered in missing-page mode before its vCPUs start; a vCPU
 * (or KVM on its behalf) touching a page that has not arrived blocks in
 * the kernel, and this module hands the fault's address to a fault thread,
 * which fetches the page from the source and places it atomically
 * (UFFDIO_COPY; UFFDIO_ZEROPAGE for a zero page), waking the waiter.
 *
 * Guest RAM is a memfd (shmem), so the kernel must offer
 * UFFD_FEATURE_MISSING_SHMEM; uffd_open() checks it and says so when it is
 * missing (or when userfaultfd is not allowed: vm.unprivileged_userfaultfd
 * and CAP_SYS_PTRACE). A page that is already there (the background stream
 * placed it first) is not an error: uffd_copy() reports it with
 * UFFD_ALREADY, so the fetch and the push may race freely.
 *
 * Threads: one thread reads faults (uffd_next_fault); any thread may place
 * pages. Nothing here allocates after uffd_open().
 */
#ifndef KVMIG_MIGRATE_UFFD_H
#define KVMIG_MIGRATE_UFFD_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

struct uffd {
	int fd;
	uint64_t features;	/* what UFFDIO_API granted */
};

#define UFFD_ALREADY 1	/* uffd_copy/uffd_zero: the page was there already */

/* Return: 0, or -errno with the reason in err (no userfaultfd, no shmem support). */
int uffd_open(struct uffd *u, char *err, size_t errlen) __must_check;
void uffd_close(struct uffd *u);

/*
 * Register [addr, addr + len) (page-aligned, a shared memfd mapping) in
 * missing mode. Return: 0, or -errno with a message.
 */
int uffd_register(struct uffd *u, void *addr, size_t len, char *err, size_t errlen) __must_check;
int uffd_unregister(struct uffd *u, void *addr, size_t len);

/*
 * Wake every thread waiting on a fault in [addr, addr + len), registered or
 * not any more: after uffd_unregister, a fault that raced it may still
 * sleep on this userfaultfd (seen on 6.18). Return: 0, -errno.
 */
int uffd_wake(struct uffd *u, void *addr, size_t len);

/*
 * Wait up to timeout_ms (-1: forever) for the next missing-page fault.
 * Return: 1 and *addr (the faulting address, page-aligned), 0 on timeout,
 * -errno.
 */
int uffd_next_fault(struct uffd *u, int timeout_ms, uint64_t *addr) __must_check;

/*
 * Place len bytes (whole pages) at dst from src, waking the threads that
 * wait on them. Return: 0, UFFD_ALREADY (a page of the range was there
 * already: it is not overwritten, the pages before it were placed and the
 * ones after it not; waiters on the range are woken), -errno.
 */
int uffd_copy(struct uffd *u, void *dst, const void *src, size_t len) __must_check;

/* uffd_copy() of zero pages, without a source buffer. */
int uffd_zero(struct uffd *u, void *dst, size_t len) __must_check;

#endif
