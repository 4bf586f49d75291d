/* SPDX-License-Identifier: MIT */
/*
 * streamgen.h - synthetic migration streams for tests that run without
 * /dev/kvm: a syntactically valid stream (HELLO, PAGES, SWITCHOVER, STATE
 * sections of a plausible VM, COMPLETE) with known page contents, and an
 * in-memory struct mio to carry it.
 */
#ifndef KVMIG_TESTS_STREAMGEN_H
#define KVMIG_TESTS_STREAMGEN_H

#include <stddef.h>
#include <stdint.h>

#include "migrate/mio.h"

struct memio {
	struct mio io;
	uint8_t *buf;
	size_t len, cap, pos;
};

void memio_init(struct memio *m);
void memio_fini(struct memio *m);
void memio_rewind(struct memio *m);

struct streamgen_opts {
	const char *name;
	uint64_t mem_bytes;
	unsigned vcpus;
	const char *compress;	/* NULL, "zstd", "lz4" */
	uint64_t pages;		/* data pages to send (page i holds pattern i) */
	int digest;		/* 0 none, 1 correct, 2 wrong */
	int skip_vcpu;		/* -1, or a vCPU whose STATE is left out */
	uint64_t bad_page;	/* 0, or a page number put in the first entry */
	unsigned channels;	/* 1, or a parallel migration's N */
	unsigned channel;	/* which of them to write: 0 the full stream, */
				/* others HELLO PAGES END_ROUND COMPLETE */
	uint64_t session;
	int paused;		/* SWITCHOVER says the guest was paused */
	int bad_sregs;		/* vCPU 0's sregs are ones KVM refuses (long mode without PAE) */
};

void streamgen_defaults(struct streamgen_opts *o);

/*
 * Write a stream into io. Data page i goes to RAM page 512 + i, on channel
 * ((512 + i) / 64) % channels. Return: 0 or -errno.
 */
int streamgen_write(struct mio *io, const struct streamgen_opts *o);

/* The content the generator puts in data page i. */
void streamgen_page(uint64_t i, uint8_t *page);

#endif
