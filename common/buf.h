/* SPDX-License-Identifier: MIT */
/*
 * buf.h - bounded byte cursors for serializing state and wire frames.
 *
 * Writers and readers move through a caller-owned buffer field by field,
 * little-endian, never by casting structs. A cursor that runs past its end
 * latches an error flag instead of touching memory: check wbuf_ok()/rbuf_ok()
 * once after a run of puts or gets. Unaligned access goes through memcpy.
 */
#ifndef KVMIG_COMMON_BUF_H
#define KVMIG_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool overflow;
};

struct rbuf {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool underflow;
};

static inline void wbuf_init(struct wbuf *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

static inline bool wbuf_ok(const struct wbuf *w)
{
	return !w->overflow;
}

/* Reserve n bytes and return a pointer to them, or NULL (and latch) if full. */
static inline uint8_t *wbuf_reserve(struct wbuf *w, size_t n)
{
	uint8_t *r;

	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return NULL;
	}
	r = w->p + w->len;
	w->len += n;
	return r;
}

static inline void put_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *d = wbuf_reserve(w, n);

	if (d && n)
		memcpy(d, src, n);
}

static inline void put_u8(struct wbuf *w, uint8_t v)
{
	put_bytes(w, &v, 1);
}

static inline void put_le16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	put_bytes(w, b, 2);
}

static inline void put_le32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 4);
}

static inline void put_le64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 8);
}

static inline void rbuf_init(struct rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->underflow = false;
}

static inline bool rbuf_ok(const struct rbuf *r)
{
	return !r->underflow;
}

static inline size_t rbuf_left(const struct rbuf *r)
{
	return r->len - r->pos;
}

/* Consume n bytes and return a pointer to them, or NULL (and latch). */
static inline const uint8_t *rbuf_take(struct rbuf *r, size_t n)
{
	const uint8_t *s;

	if (r->underflow || n > r->len - r->pos) {
		r->underflow = true;
		return NULL;
	}
	s = r->p + r->pos;
	r->pos += n;
	return s;
}

static inline void get_bytes(struct rbuf *r, void *dst, size_t n)
{
	const uint8_t *s = rbuf_take(r, n);

	if (s)
		memcpy(dst, s, n);
	else
		memset(dst, 0, n);
}

static inline uint8_t get_u8(struct rbuf *r)
{
	const uint8_t *s = rbuf_take(r, 1);

	return s ? s[0] : 0;
}

static inline uint16_t get_le16(struct rbuf *r)
{
	const uint8_t *s = rbuf_take(r, 2);

	if (!s)
		return 0;
	return (uint16_t)(s[0] | (s[1] << 8));
}

static inline uint32_t get_le32(struct rbuf *r)
{
	const uint8_t *s = rbuf_take(r, 4);
	uint32_t v = 0;

	if (!s)
		return 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | s[i];
	return v;
}

static inline uint64_t get_le64(struct rbuf *r)
{
	const uint8_t *s = rbuf_take(r, 8);
	uint64_t v = 0;

	if (!s)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | s[i];
	return v;
}

/* Unaligned native loads and stores (zstd's MEM_read idea). */
static inline uint64_t load_u64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store_u64(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

#endif
