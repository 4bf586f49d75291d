/* SPDX-License-Identifier: MIT */
/*
 * frame.h - building and checking the frames of protocol/wire.h.
 *
 * Stage 5 of the data flow: no I/O here, only bytes in caller buffers.
 * Writers build a whole frame (header, payload, CRC) in dst and return its
 * size or -ENOSPC. Readers trust nothing: frame_check_header() validates
 * type, flags and length before the caller reads the payload, then
 * frame_check_crc() the CRC, then a typed reader every field. Each rule
 * broken is its own message (what and where) and errno:
 *   -EBADMSG  malformed (length, CRC, field value, truncated payload)
 *   -ERANGE   a page outside guest RAM
 *   -EPROTO   version, capability not negotiated, frame out of order
 * A PAGES frame is written with a batch builder that reserves room for
 * each page so the codec encodes straight into the frame (no copy), and
 * read with an iterator that checks each page entry as it goes.
 */
#ifndef KVMIG_PROTOCOL_FRAME_H
#define KVMIG_PROTOCOL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"
#include "protocol/wire.h"

struct frame_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t len;		/* payload bytes */
};

struct wire_hello {
	uint16_t version;
	uint16_t flags;		/* WIRE_HELLO_* (0 on a migration's first connections) */
	uint32_t caps;
	uint32_t page_size;
	uint64_t mem_bytes;
	uint32_t vcpus;
	uint32_t channel, channels;
	uint64_t session;
	char name[WIRE_NAME_BYTES];
	char guest[WIRE_GUEST_BYTES];
	char guest_args[WIRE_ARGS_BYTES];
	uint8_t mac[6];
};

struct wire_page {
	uint64_t page;
	uint8_t codec;
	uint32_t len;
	const uint8_t *data;	/* points into the frame */
};

struct wire_end_round {
	uint32_t round;
	uint64_t pages;
	uint64_t dirty_rate;
};

struct wire_complete {
	uint64_t pages;
	uint32_t state_sections;
	uint8_t digest_alg;
	uint8_t digest[WIRE_DIGEST_BYTES];
};

struct wire_cpuid_entry {
	uint32_t function, index, flags;
	uint32_t eax, ebx, ecx, edx;
};

/* CPUID: the guest's CPUID and TSC rate (wire.h). */
struct wire_cpuid {
	uint32_t flags;		/* WIRE_CPUID_* */
	uint32_t tsc_khz;
	uint32_t count;
	struct wire_cpuid_entry ent[WIRE_MAX_CPUID];
};

struct wire_error {
	uint32_t code;
	char msg[WIRE_MAX_MSG + 1];
};

struct wire_hello_ack {
	uint16_t version;
	uint32_t caps;
};

struct wire_ack {
	uint32_t round;
	uint64_t pages;
};

struct wire_resumed {
	uint8_t digest_ok;
};

struct wire_announce {
	char iface[WIRE_IFACE_BYTES];	/* NUL-terminated, 1..15 bytes */
	uint32_t rounds, initial_ms, step_ms, max_ms;
};

struct wire_announced {
	uint32_t frames;
	uint32_t error;			/* positive errno, 0 */
	uint64_t first_us;
};

struct wire_key {
	char identity[WIRE_KEY_ID_BYTES];	/* NUL-terminated hex */
	uint8_t key[WIRE_KEY_MAX];
	uint32_t key_len, lifetime_ms;
};

struct wire_key_ack {
	uint16_t port;
};

struct wire_page_req {
	uint64_t page;
	uint32_t count;
};

/* NEEDED and WANT: a slice of a page bitmap. */
struct wire_bitmap {
	uint64_t first;		/* a multiple of 64 */
	uint32_t count;		/* pages, 1..WIRE_MAX_BITMAP */
	uint32_t flags;		/* WANT: WIRE_WANT_LAST; NEEDED: 0 */
	const uint8_t *bits;	/* points into the frame: ceil(count / 64) LE u64 words */
};

/* Word w (0 .. ceil(count / 64) - 1) of a bitmap slice, in host order. */
uint64_t wire_bitmap_word(const struct wire_bitmap *b, uint32_t w);

struct wire_pc_done {
	uint64_t pages;		/* placed from the streams after the switchover */
	uint64_t requests;	/* PAGE_REQ sent */
	uint64_t blocked_us;	/* vCPU time spent waiting on faults */
	uint32_t p50_us, p99_us; /* fault latency: request sent to page in place */
	uint8_t digest_ok;	/* 1: COMPLETE's digest matched the RAM as it arrived */
};

const char *frame_type_name(unsigned type);

/* ---- writers: whole frames into dst; Return: bytes or -ENOSPC ---------- */

ssize_t frame_put_hello(uint8_t *dst, size_t cap, const struct wire_hello *h) __must_check;
/* CPUID: -EINVAL for a count outside 1..WIRE_MAX_CPUID */
ssize_t frame_put_cpuid(uint8_t *dst, size_t cap, const struct wire_cpuid *c) __must_check;
ssize_t frame_put_end_round(uint8_t *dst, size_t cap, const struct wire_end_round *e) __must_check;
/* SWITCHOVER: flags are WIRE_SWITCHOVER_* */
ssize_t frame_put_switchover(uint8_t *dst, size_t cap, uint32_t round,
			     uint32_t flags) __must_check;
/* STATE: payload is an opaque state section of 1..WIRE_MAX_STATE bytes */
ssize_t frame_put_state(uint8_t *dst, size_t cap, const void *section, size_t len) __must_check;
ssize_t frame_put_complete(uint8_t *dst, size_t cap, const struct wire_complete *c) __must_check;
ssize_t frame_put_error(uint8_t *dst, size_t cap, uint32_t code, const char *msg) __must_check;
ssize_t frame_put_hello_ack(uint8_t *dst, size_t cap, const struct wire_hello_ack *a) __must_check;
ssize_t frame_put_ack(uint8_t *dst, size_t cap, const struct wire_ack *a) __must_check;
ssize_t frame_put_resumed(uint8_t *dst, size_t cap, const struct wire_resumed *r) __must_check;
ssize_t frame_put_ready(uint8_t *dst, size_t cap, const struct wire_resumed *r) __must_check;
ssize_t frame_put_go(uint8_t *dst, size_t cap) __must_check;
ssize_t frame_put_page_req(uint8_t *dst, size_t cap, const struct wire_page_req *r) __must_check;
ssize_t frame_put_announce(uint8_t *dst, size_t cap, const struct wire_announce *a) __must_check;
ssize_t frame_put_key(uint8_t *dst, size_t cap, const struct wire_key *k) __must_check;
ssize_t frame_put_key_ack(uint8_t *dst, size_t cap, const struct wire_key_ack *a) __must_check;
ssize_t frame_put_announced(uint8_t *dst, size_t cap, const struct wire_announced *a) __must_check;
/*
 * NEEDED or WANT (type): pages [first, first + count) of the bitmap words
 * (host-order u64, bit = page; words[0] holds pages first..first+63;
 * first a multiple of 64, count 1..WIRE_MAX_BITMAP; bits past count are
 * written as zero whatever words holds).
 */
ssize_t frame_put_bitmap(uint8_t *dst, size_t cap, unsigned type, uint64_t first, uint32_t count,
			 uint32_t flags, const uint64_t *words) __must_check;
ssize_t frame_put_pc_done(uint8_t *dst, size_t cap, const struct wire_pc_done *d) __must_check;

/*
 * PAGES batch builder. batch_begin() starts a frame in buf (cap bytes, at
 * least WIRE_HDR_BYTES + 8 + WIRE_CRC_BYTES); batch_reserve() returns where
 * the next page's encoded data goes (room for max_len bytes) or NULL when
 * the batch is full (count or space): finish it and start another.
 * batch_commit() records the page with its actual length. batch_finish()
 * seals the frame and returns its size (0 for an empty batch).
 */
struct page_batch {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t count;
	uint32_t round;
	uint8_t *pending;	/* entry header of the reserved page */
};

void batch_begin(struct page_batch *b, uint8_t *buf, size_t cap, uint32_t round);
uint8_t *batch_reserve(struct page_batch *b, size_t max_len);
void batch_commit(struct page_batch *b, uint64_t page, uint8_t codec, size_t len);
size_t batch_finish(struct page_batch *b);

/* ---- readers ------------------------------------------------------------ */

/*
 * Check the 8 header bytes at src: a known type, flags 0, a length within
 * that type's limits. Return: 0, -EBADMSG.
 */
int frame_check_header(const uint8_t *src, size_t len, struct frame_hdr *h, char *err,
		       size_t errlen) __must_check;

/* Check the CRC of a whole frame (header, payload, CRC). Return: 0, -EBADMSG. */
int frame_check_crc(const uint8_t *frame, size_t total, char *err, size_t errlen) __must_check;

/* Full frame size for a checked header. */
static inline size_t frame_total(const struct frame_hdr *h)
{
	return WIRE_HDR_BYTES + (size_t)h->len + WIRE_CRC_BYTES;
}

/* Typed payload readers: payload points after the header, len = h->len. */
int frame_get_hello(const uint8_t *p, size_t len, struct wire_hello *h, char *err,
		    size_t errlen) __must_check;
/* CPUID: the length matches count, flags and every entry are checked. */
int frame_get_cpuid(const uint8_t *p, size_t len, struct wire_cpuid *c, char *err,
		    size_t errlen) __must_check;
int frame_get_end_round(const uint8_t *p, size_t len, struct wire_end_round *e, char *err,
			size_t errlen) __must_check;
int frame_get_switchover(const uint8_t *p, size_t len, uint32_t *round, uint32_t *flags,
			 char *err, size_t errlen) __must_check;
int frame_get_complete(const uint8_t *p, size_t len, struct wire_complete *c, char *err,
		       size_t errlen) __must_check;
int frame_get_error(const uint8_t *p, size_t len, struct wire_error *e, char *err,
		    size_t errlen) __must_check;
int frame_get_hello_ack(const uint8_t *p, size_t len, struct wire_hello_ack *a, char *err,
			size_t errlen) __must_check;
int frame_get_ack(const uint8_t *p, size_t len, struct wire_ack *a, char *err,
		  size_t errlen) __must_check;
int frame_get_ready(const uint8_t *p, size_t len, struct wire_resumed *r, char *err,
		    size_t errlen) __must_check;
int frame_get_go(const uint8_t *p, size_t len, char *err, size_t errlen) __must_check;
int frame_get_resumed(const uint8_t *p, size_t len, struct wire_resumed *r, char *err,
		      size_t errlen) __must_check;
/* ANNOUNCE: the name terminated and not empty; the schedule is the caller's to check */
int frame_get_key(const uint8_t *p, size_t len, struct wire_key *k, char *err,
		  size_t errlen) __must_check;
int frame_get_key_ack(const uint8_t *p, size_t len, struct wire_key_ack *a, char *err,
		      size_t errlen) __must_check;
int frame_get_announce(const uint8_t *p, size_t len, struct wire_announce *a, char *err,
		       size_t errlen) __must_check;
int frame_get_announced(const uint8_t *p, size_t len, struct wire_announced *a, char *err,
			size_t errlen) __must_check;
int frame_get_page_req(const uint8_t *p, size_t len, uint64_t npages, struct wire_page_req *r,
		       char *err, size_t errlen) __must_check;
/*
 * NEEDED or WANT (type): first a multiple of 64, count 1..WIRE_MAX_BITMAP,
 * the length exactly WIRE_BITMAP_HDR + 8 x ceil(count / 64), the range
 * inside npages (-ERANGE), flags (NEEDED: 0; WANT: WIRE_WANT_LAST only),
 * bits past count zero.
 */
int frame_get_bitmap(const uint8_t *p, size_t len, unsigned type, uint64_t npages,
		     struct wire_bitmap *b, char *err, size_t errlen) __must_check;
int frame_get_pc_done(const uint8_t *p, size_t len, struct wire_pc_done *d, char *err,
		      size_t errlen) __must_check;

/*
 * PAGES iterator. npages bounds page numbers; caps says which codecs were
 * negotiated. pages_next() returns 1 and the next entry, 0 at the end of a
 * well-formed batch, or -errno with a message (entry index and field).
 */
struct page_iter {
	const uint8_t *p;
	size_t len, pos;
	uint32_t count, index, round;
	uint64_t npages;
	uint32_t page_size;
	uint32_t caps;
};

int pages_begin(struct page_iter *it, const uint8_t *payload, size_t len, uint64_t npages,
		uint32_t page_size, uint32_t caps, char *err, size_t errlen) __must_check;
int pages_next(struct page_iter *it, struct wire_page *pg, char *err, size_t errlen) __must_check;

/*
 * Forward-stream order (see wire.h). Feed every frame type in arrival
 * order; Return: 0, or -EPROTO with a message naming the frame and what
 * was expected.
 */
enum wire_phase {
	WIRE_PH_START,		/* nothing yet: HELLO expected */
	WIRE_PH_PRECOPY,	/* PAGES, END_ROUND, SWITCHOVER */
	WIRE_PH_STOPCOPY,	/* PAGES, STATE */
	WIRE_PH_STATE,		/* STATE, COMPLETE */
	WIRE_PH_COMPLETE,	/* COMPLETE seen: GO (live migrations) */
	WIRE_PH_DONE,		/* GO, a secondary's COMPLETE or ERROR seen: nothing more */
	WIRE_PH_POSTCOPY,	/* post-copy pages: after GO, or on a FAULT/RESUME stream */
};

struct wire_order {
	enum wire_phase phase;
	bool pages_only;	/* a secondary channel: HELLO (PAGES | END_ROUND)* COMPLETE */
	bool setup;		/* after HELLO, before the first PAGES, END_ROUND or SWITCHOVER */
	bool cpuid_seen;	/* a CPUID frame came (at most one, in setup) */
	bool announce_seen;	/* an ANNOUNCE frame came (at most one, in setup) */
	bool postcopy;		/* SWITCHOVER said POSTCOPY: NEEDED, no PAGES, until GO */
};

void wire_order_init(struct wire_order *o, bool pages_only);
/*
 * The receiver read a SWITCHOVER with WIRE_SWITCHOVER_POSTCOPY (call right
 * after it): NEEDED frames may come before the state, PAGES may not, and
 * GO opens WIRE_PH_POSTCOPY (PAGES until the stream ends).
 */
void wire_order_postcopy(struct wire_order *o);
/* A FAULT or RESUME HELLO was read: the stream carries PAGES only from now on. */
void wire_order_pages_stream(struct wire_order *o);
int wire_order_check(struct wire_order *o, unsigned type, char *err, size_t errlen) __must_check;

#endif
