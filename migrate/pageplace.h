/* SPDX-License-Identifier: MIT */
/*
 * pageplace.h - stage 6 at the destination: the entries of one PAGES frame
 * into guest RAM, during pre-copy and restore (post-copy places its pages
 * with UFFDIO_COPY, in migrate/pcdest.c).
 *
 * RAM is a memfd shared by the guest's slot view and our alias mapping. A
 * store through a mapping into a page the file does not hold yet faults,
 * allocates the page and has the kernel clear it, and only then copies: at
 * a fresh destination, which is where a bulk round lands, the clearing and
 * the fault were two thirds of the receiver's time (bench_pagepath, profiled
 * with perf: clear_page_erms under shmem_fault). A write(2) of a whole page
 * into the file needs neither: the page cache takes the bytes as they are.
 * So in the bulk round (round 0 of a migration, the whole of a snapshot),
 * where every page is new to the destination, whole pages (RAW, and
 * zstd/lz4 decoded into a scratch buffer first) are gathered into runs of
 * consecutive pages and written with one pwritev() per run. Later rounds
 * store through the alias, zstd/lz4 decoding straight into it; a page the
 * alias does not map yet costs a fault there (no clear: the page is in the
 * file), which inside the downtime adds up: 4097 last pages placed 7-10 ms
 * after the source sent them, against 0.3-0.6 ms into mapped pages
 * (bench_migrate 1G/16M at 100 MiB/s). page_place_map() maps what the
 * bulk round wrote, off the receiver's path (migrate/incoming.c runs it
 * on its preparing thread once round 0 is in). Pages that must read what
 * is there (an XBZRLE delta) and ZERO entries go through the alias in
 * every round; in the bulk round the run so far is written first, so the
 * entries land in the order of the frame.
 *
 * The bytes of a frame are checked (CRC, bounds, codec) before this sees
 * them. A payload that does not decode fails the frame with a message; the
 * pages placed before it stay placed, which costs nothing: a destination
 * that fails is thrown away whole.
 *
 * One placer per receiving channel, used by one thread; channels of one
 * migration share the RAM file, each writing its own pages.
 */
#ifndef KVMIG_MIGRATE_PAGEPLACE_H
#define KVMIG_MIGRATE_PAGEPLACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/compiler.h"
#include "protocol/codec.h"

#define PLACE_RUN_MAX 64		/* pages per pwritev() */

struct page_place_counts {
	uint64_t pages;			/* entries placed */
	uint64_t zero_pages, raw_pages, xbzrle_pages, compressed_pages;
	uint64_t writes;		/* pwritev() calls */
};

struct page_placer {
	uint8_t *ram;			/* the alias mapping */
	int fd;				/* the RAM file; offset 0 is ram[0] */
	uint64_t npages;
	struct codec_ctx *zstd, *lz4;	/* borrowed decoders, or NULL */
	uint8_t *scratch;		/* PLACE_RUN_MAX decoded pages */
	unsigned nscratch;
	struct iovec iov[PLACE_RUN_MAX];
	unsigned niov;
	uint64_t run_first;		/* page of iov[0] */
};

/*
 * ram/fd: the same RAM, mapped and as a file, ram_bytes long. zstd, lz4:
 * the decoders of the codecs negotiated (NULL: not negotiated). Return: 0
 * or -ENOMEM.
 */
int page_placer_init(struct page_placer *pp, uint8_t *ram, int fd, uint64_t ram_bytes,
		     struct codec_ctx *zstd, struct codec_ctx *lz4) __must_check;
void page_placer_fini(struct page_placer *pp);

/*
 * Place the entries of the PAGES payload p (len bytes, after the frame
 * header), whose codecs caps allows; add what was placed to *cnt.
 * Return: 0, or -errno with a message in err: pages_begin/pages_next's
 * for a malformed frame (-EBADMSG; -ERANGE for a page outside RAM, -EPROTO
 * for a codec caps does not allow), -EBADMSG for a payload that does not
 * decode, the pwritev() error otherwise.
 */
int page_place(struct page_placer *pp, const uint8_t *p, size_t len, uint32_t caps,
	       struct page_place_counts *cnt, char *err, size_t errlen) __must_check;

/*
 * Map into ram (the alias of the RAM file fd, ram_bytes long) every page
 * the file holds, for writing, so that stores into them take no fault:
 * the file's data extents (SEEK_DATA/SEEK_HOLE: holes stay holes, nothing
 * is allocated), MADV_POPULATE_WRITE in steps of PLACE_MAP_STEP bytes,
 * looking at *stop between steps. Safe beside page_place() on the same
 * RAM. *pages: the pages mapped. Return: 0 (done, or stopped), or -errno
 * (-EINVAL: a kernel without MADV_POPULATE_WRITE, before 5.14; the stores
 * then fault as they come).
 */
#define PLACE_MAP_STEP (2u << 20)
int page_place_map(uint8_t *ram, int fd, uint64_t ram_bytes, const atomic_bool *stop,
		   uint64_t *pages);

#endif
