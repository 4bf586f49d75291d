/* SPDX-License-Identifier: MIT */
#include "protocol/frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "protocol/codec.h"

const char *frame_type_name(unsigned type)
{
	switch (type) {
	case WIRE_F_HELLO:
		return "HELLO";
	case WIRE_F_PAGES:
		return "PAGES";
	case WIRE_F_END_ROUND:
		return "END_ROUND";
	case WIRE_F_SWITCHOVER:
		return "SWITCHOVER";
	case WIRE_F_STATE:
		return "STATE";
	case WIRE_F_COMPLETE:
		return "COMPLETE";
	case WIRE_F_ERROR:
		return "ERROR";
	case WIRE_F_GO:
		return "GO";
	case WIRE_F_CPUID:
		return "CPUID";
	case WIRE_F_READY:
		return "READY";
	case WIRE_F_HELLO_ACK:
		return "HELLO_ACK";
	case WIRE_F_ACK:
		return "ACK";
	case WIRE_F_RESUMED:
		return "RESUMED";
	case WIRE_F_PAGE_REQ:
		return "PAGE_REQ";
	case WIRE_F_NEEDED:
		return "NEEDED";
	case WIRE_F_WANT:
		return "WANT";
	case WIRE_F_PC_DONE:
		return "PC_DONE";
	case WIRE_F_ANNOUNCE:
		return "ANNOUNCE";
	case WIRE_F_ANNOUNCED:
		return "ANNOUNCED";
	case WIRE_F_KEY:
		return "KEY";
	case WIRE_F_KEY_ACK:
		return "KEY_ACK";
	default:
		return "unknown";
	}
}

/* Payload length limits per type: exact for fixed frames. */
static int len_limits(unsigned type, uint32_t *min, uint32_t *max)
{
	switch (type) {
	case WIRE_F_HELLO:
		*min = *max = WIRE_HELLO_BYTES;
		return 0;
	case WIRE_F_PAGES:
		*min = 8 + WIRE_PAGE_ENTRY_HDR;
		*max = WIRE_MAX_PAYLOAD;
		return 0;
	case WIRE_F_END_ROUND:
		*min = *max = 20;
		return 0;
	case WIRE_F_CPUID:
		*min = 12 + WIRE_CPUID_ENTRY_BYTES;
		*max = 12 + WIRE_MAX_CPUID * WIRE_CPUID_ENTRY_BYTES;
		return 0;
	case WIRE_F_SWITCHOVER:
		*min = *max = 8;
		return 0;
	case WIRE_F_STATE:
		*min = 1;
		*max = WIRE_MAX_STATE;
		return 0;
	case WIRE_F_COMPLETE:
		*min = *max = 8 + 4 + 1 + WIRE_DIGEST_BYTES;
		return 0;
	case WIRE_F_ERROR:
		*min = 6;
		*max = 6 + WIRE_MAX_MSG;
		return 0;
	case WIRE_F_HELLO_ACK:
		*min = *max = 8;
		return 0;
	case WIRE_F_ACK:
		*min = *max = 12;
		return 0;
	case WIRE_F_RESUMED:
	case WIRE_F_READY:
	case WIRE_F_GO:
		*min = *max = 4;
		return 0;
	case WIRE_F_PAGE_REQ:
		*min = *max = 12;
		return 0;
	case WIRE_F_ANNOUNCE:
		*min = *max = WIRE_ANNOUNCE_BYTES;
		return 0;
	case WIRE_F_ANNOUNCED:
		*min = *max = WIRE_ANNOUNCED_BYTES;
		return 0;
	case WIRE_F_KEY:
		*min = *max = WIRE_KEY_BYTES;
		return 0;
	case WIRE_F_KEY_ACK:
		*min = *max = 4;
		return 0;
	case WIRE_F_NEEDED:
	case WIRE_F_WANT:
		*min = WIRE_BITMAP_HDR + 8;
		*max = WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8;
		return 0;
	case WIRE_F_PC_DONE:
		*min = *max = WIRE_PC_DONE_BYTES;
		return 0;
	default:
		return -EBADMSG;
	}
}

/* ---- writers -------------------------------------------------------------- */

static void frame_start(struct wbuf *w, uint8_t *dst, size_t cap, unsigned type)
{
	wbuf_init(w, dst, cap);
	put_le16(w, (uint16_t)type);
	put_le16(w, 0);
	put_le32(w, 0);
}

static ssize_t frame_seal(struct wbuf *w)
{
	uint32_t len;

	if (!wbuf_ok(w) || w->len < WIRE_HDR_BYTES)
		return -ENOSPC;
	len = (uint32_t)(w->len - WIRE_HDR_BYTES);
	for (int i = 0; i < 4; i++)
		w->p[4 + i] = (uint8_t)(len >> (8 * i));
	put_le32(w, crc32c(0, w->p, w->len));
	return wbuf_ok(w) ? (ssize_t)w->len : -ENOSPC;
}

static void put_str(struct wbuf *w, const char *s, size_t n)
{
	uint8_t *d = wbuf_reserve(w, n);

	if (!d)
		return;
	memset(d, 0, n);
	memcpy(d, s, strnlen(s, n - 1));
}

ssize_t frame_put_hello(uint8_t *dst, size_t cap, const struct wire_hello *h)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_HELLO);
	put_le64(&w, WIRE_MAGIC);
	put_le16(&w, h->version);
	put_le16(&w, h->flags);
	put_le32(&w, h->caps);
	put_le32(&w, h->page_size);
	put_le64(&w, h->mem_bytes);
	put_le32(&w, h->vcpus);
	put_le32(&w, h->channel);
	put_le32(&w, h->channels);
	put_le64(&w, h->session);
	put_str(&w, h->name, WIRE_NAME_BYTES);
	put_str(&w, h->guest, WIRE_GUEST_BYTES);
	put_str(&w, h->guest_args, WIRE_ARGS_BYTES);
	put_bytes(&w, h->mac, 6);
	return frame_seal(&w);
}

ssize_t frame_put_cpuid(uint8_t *dst, size_t cap, const struct wire_cpuid *c)
{
	struct wbuf w;

	if (c->count == 0 || c->count > WIRE_MAX_CPUID)
		return -EINVAL;
	frame_start(&w, dst, cap, WIRE_F_CPUID);
	put_le32(&w, c->flags);
	put_le32(&w, c->tsc_khz);
	put_le32(&w, c->count);
	for (uint32_t i = 0; i < c->count; i++) {
		const struct wire_cpuid_entry *e = &c->ent[i];

		put_le32(&w, e->function);
		put_le32(&w, e->index);
		put_le32(&w, e->flags);
		put_le32(&w, e->eax);
		put_le32(&w, e->ebx);
		put_le32(&w, e->ecx);
		put_le32(&w, e->edx);
	}
	return frame_seal(&w);
}

ssize_t frame_put_end_round(uint8_t *dst, size_t cap, const struct wire_end_round *e)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_END_ROUND);
	put_le32(&w, e->round);
	put_le64(&w, e->pages);
	put_le64(&w, e->dirty_rate);
	return frame_seal(&w);
}

ssize_t frame_put_switchover(uint8_t *dst, size_t cap, uint32_t round, uint32_t flags)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_SWITCHOVER);
	put_le32(&w, round);
	put_le32(&w, flags);
	return frame_seal(&w);
}

ssize_t frame_put_state(uint8_t *dst, size_t cap, const void *section, size_t len)
{
	struct wbuf w;

	if (len == 0 || len > WIRE_MAX_STATE)
		return -EINVAL;
	frame_start(&w, dst, cap, WIRE_F_STATE);
	put_bytes(&w, section, len);
	return frame_seal(&w);
}

ssize_t frame_put_complete(uint8_t *dst, size_t cap, const struct wire_complete *c)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_COMPLETE);
	put_le64(&w, c->pages);
	put_le32(&w, c->state_sections);
	put_u8(&w, c->digest_alg);
	put_bytes(&w, c->digest, WIRE_DIGEST_BYTES);
	return frame_seal(&w);
}

ssize_t frame_put_error(uint8_t *dst, size_t cap, uint32_t code, const char *msg)
{
	size_t n = strnlen(msg, WIRE_MAX_MSG);
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_ERROR);
	put_le32(&w, code);
	put_le16(&w, (uint16_t)n);
	put_bytes(&w, msg, n);
	return frame_seal(&w);
}

ssize_t frame_put_hello_ack(uint8_t *dst, size_t cap, const struct wire_hello_ack *a)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_HELLO_ACK);
	put_le16(&w, a->version);
	put_le16(&w, 0);
	put_le32(&w, a->caps);
	return frame_seal(&w);
}

ssize_t frame_put_ack(uint8_t *dst, size_t cap, const struct wire_ack *a)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_ACK);
	put_le32(&w, a->round);
	put_le64(&w, a->pages);
	return frame_seal(&w);
}

static ssize_t put_digest_flag(uint8_t *dst, size_t cap, unsigned type,
			       const struct wire_resumed *r)
{
	struct wbuf w;

	frame_start(&w, dst, cap, type);
	put_u8(&w, r->digest_ok);
	put_u8(&w, 0);
	put_le16(&w, 0);
	return frame_seal(&w);
}

ssize_t frame_put_resumed(uint8_t *dst, size_t cap, const struct wire_resumed *r)
{
	return put_digest_flag(dst, cap, WIRE_F_RESUMED, r);
}

ssize_t frame_put_ready(uint8_t *dst, size_t cap, const struct wire_resumed *r)
{
	return put_digest_flag(dst, cap, WIRE_F_READY, r);
}

ssize_t frame_put_go(uint8_t *dst, size_t cap)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_GO);
	put_le32(&w, 0);
	return frame_seal(&w);
}

ssize_t frame_put_announce(uint8_t *dst, size_t cap, const struct wire_announce *a)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_ANNOUNCE);
	put_str(&w, a->iface, WIRE_IFACE_BYTES);
	put_le32(&w, a->rounds);
	put_le32(&w, a->initial_ms);
	put_le32(&w, a->step_ms);
	put_le32(&w, a->max_ms);
	return frame_seal(&w);
}

ssize_t frame_put_key(uint8_t *dst, size_t cap, const struct wire_key *k)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_KEY);
	put_str(&w, k->identity, WIRE_KEY_ID_BYTES);
	put_bytes(&w, k->key, WIRE_KEY_MAX);
	put_le32(&w, k->key_len);
	put_le32(&w, k->lifetime_ms);
	return frame_seal(&w);
}

ssize_t frame_put_key_ack(uint8_t *dst, size_t cap, const struct wire_key_ack *a)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_KEY_ACK);
	put_le16(&w, a->port);
	put_le16(&w, 0);
	return frame_seal(&w);
}

ssize_t frame_put_announced(uint8_t *dst, size_t cap, const struct wire_announced *a)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_ANNOUNCED);
	put_le32(&w, a->frames);
	put_le32(&w, a->error);
	put_le64(&w, a->first_us);
	return frame_seal(&w);
}

ssize_t frame_put_page_req(uint8_t *dst, size_t cap, const struct wire_page_req *r)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_PAGE_REQ);
	put_le64(&w, r->page);
	put_le32(&w, r->count);
	return frame_seal(&w);
}

ssize_t frame_put_bitmap(uint8_t *dst, size_t cap, unsigned type, uint64_t first, uint32_t count,
			 uint32_t flags, const uint64_t *words)
{
	uint32_t nw = (count + 63) / 64;
	struct wbuf w;

	if (type != WIRE_F_NEEDED && type != WIRE_F_WANT)
		return -EINVAL;
	frame_start(&w, dst, cap, type);
	put_le64(&w, first);
	put_le32(&w, count);
	put_le32(&w, flags);
	for (uint32_t i = 0; i < nw; i++) {
		uint64_t v = words[i];

		if (i == nw - 1 && count % 64)
			v &= (1ull << (count % 64)) - 1;
		put_le64(&w, v);
	}
	return frame_seal(&w);
}

ssize_t frame_put_pc_done(uint8_t *dst, size_t cap, const struct wire_pc_done *d)
{
	struct wbuf w;

	frame_start(&w, dst, cap, WIRE_F_PC_DONE);
	put_le64(&w, d->pages);
	put_le64(&w, d->requests);
	put_le64(&w, d->blocked_us);
	put_le32(&w, d->p50_us);
	put_le32(&w, d->p99_us);
	put_u8(&w, d->digest_ok);
	put_u8(&w, 0);
	put_le16(&w, 0);
	return frame_seal(&w);
}

/* ---- PAGES batch builder ------------------------------------------------- */

void batch_begin(struct page_batch *b, uint8_t *buf, size_t cap, uint32_t round)
{
	b->buf = buf;
	b->cap = cap;
	b->len = WIRE_HDR_BYTES + 8;
	b->count = 0;
	b->round = round;
	b->pending = NULL;
}

uint8_t *batch_reserve(struct page_batch *b, size_t max_len)
{
	if (b->count >= WIRE_MAX_BATCH ||
	    b->len + WIRE_PAGE_ENTRY_HDR + max_len + WIRE_CRC_BYTES > b->cap)
		return NULL;
	b->pending = b->buf + b->len;
	return b->pending + WIRE_PAGE_ENTRY_HDR;
}

void batch_commit(struct page_batch *b, uint64_t page, uint8_t codec, size_t len)
{
	struct wbuf w;

	wbuf_init(&w, b->pending, WIRE_PAGE_ENTRY_HDR);
	put_le64(&w, page);
	put_u8(&w, codec);
	put_le32(&w, (uint32_t)len);
	b->len += WIRE_PAGE_ENTRY_HDR + len;
	b->count++;
	b->pending = NULL;
}

size_t batch_finish(struct page_batch *b)
{
	struct wbuf w;
	size_t total;

	if (!b->count)
		return 0;
	wbuf_init(&w, b->buf, WIRE_HDR_BYTES + 8);
	put_le16(&w, WIRE_F_PAGES);
	put_le16(&w, 0);
	put_le32(&w, (uint32_t)(b->len - WIRE_HDR_BYTES));
	put_le32(&w, b->count);
	put_le32(&w, b->round);
	wbuf_init(&w, b->buf + b->len, WIRE_CRC_BYTES);
	put_le32(&w, crc32c(0, b->buf, b->len));
	total = b->len + WIRE_CRC_BYTES;
	b->count = 0;
	b->len = WIRE_HDR_BYTES + 8;
	return total;
}

/* ---- readers -------------------------------------------------------------- */

int frame_check_header(const uint8_t *src, size_t len, struct frame_hdr *h, char *err,
		       size_t errlen)
{
	struct rbuf r;
	uint32_t min, max;

	if (len < WIRE_HDR_BYTES)
		return err_set(-EBADMSG, err, errlen, "frame header truncated: %zu of 8 bytes", len);
	rbuf_init(&r, src, len);
	h->type = get_le16(&r);
	h->flags = get_le16(&r);
	h->len = get_le32(&r);
	if (len_limits(h->type, &min, &max) < 0)
		return err_set(-EBADMSG, err, errlen, "unknown frame type %u", h->type);
	if (h->flags)
		return err_set(-EBADMSG, err, errlen, "%s frame with unknown flags 0x%x",
			    frame_type_name(h->type), h->flags);
	if (h->len < min || h->len > max) {
		if (min == max)
			return err_set(-EBADMSG, err, errlen, "%s frame of %u bytes, must be %u",
				    frame_type_name(h->type), h->len, min);
		return err_set(-EBADMSG, err, errlen, "%s frame of %u bytes, must be %u..%u",
			    frame_type_name(h->type), h->len, min, max);
	}
	return 0;
}

int frame_check_crc(const uint8_t *frame, size_t total, char *err, size_t errlen)
{
	struct rbuf r;
	uint32_t want, got;

	if (total < WIRE_HDR_BYTES + WIRE_CRC_BYTES)
		return err_set(-EBADMSG, err, errlen, "frame truncated");
	rbuf_init(&r, frame + total - WIRE_CRC_BYTES, WIRE_CRC_BYTES);
	got = get_le32(&r);
	want = crc32c(0, frame, total - WIRE_CRC_BYTES);
	if (got != want)
		return err_set(-EBADMSG, err, errlen,
			    "%s frame: checksum mismatch (stored 0x%08x, computed 0x%08x)",
			    frame_type_name((unsigned)(frame[0] | frame[1] << 8)), got, want);
	return 0;
}

static int get_str(struct rbuf *r, char *dst, size_t n, const char *what, char *err,
		   size_t errlen)
{
	get_bytes(r, dst, n);
	if (!memchr(dst, 0, n))
		return err_set(-EBADMSG, err, errlen, "HELLO: %s is not NUL-terminated", what);
	return 0;
}

int frame_get_hello(const uint8_t *p, size_t len, struct wire_hello *h, char *err, size_t errlen)
{
	struct rbuf r;
	uint64_t magic;
	int ret;

	rbuf_init(&r, p, len);
	magic = get_le64(&r);
	if (magic != WIRE_MAGIC)
		return err_set(-EBADMSG, err, errlen, "HELLO: bad magic 0x%016llx, not a kvmig stream",
			    (unsigned long long)magic);
	h->version = get_le16(&r);
	if (h->version != WIRE_VERSION)
		return err_set(-EPROTO, err, errlen, "HELLO: stream version %u, this build speaks %u",
			    h->version, WIRE_VERSION);
	h->flags = get_le16(&r);
	h->caps = get_le32(&r);
	h->page_size = get_le32(&r);
	h->mem_bytes = get_le64(&r);
	h->vcpus = get_le32(&r);
	h->channel = get_le32(&r);
	h->channels = get_le32(&r);
	h->session = get_le64(&r);
	ret = get_str(&r, h->name, WIRE_NAME_BYTES, "name", err, errlen);
	if (!ret)
		ret = get_str(&r, h->guest, WIRE_GUEST_BYTES, "guest", err, errlen);
	if (!ret)
		ret = get_str(&r, h->guest_args, WIRE_ARGS_BYTES, "guest_args", err, errlen);
	if (ret)
		return ret;
	get_bytes(&r, h->mac, 6);
	if (!rbuf_ok(&r) || rbuf_left(&r))
		return err_set(-EBADMSG, err, errlen, "HELLO: payload length mismatch");
	if (h->caps & ~WIRE_CAP_ALL)
		return err_set(-EBADMSG, err, errlen, "HELLO: unknown capability bits 0x%x",
			    h->caps & ~WIRE_CAP_ALL);
	if (h->page_size != WIRE_PAGE_SIZE)
		return err_set(-EBADMSG, err, errlen, "HELLO: page size %u, only %u is supported",
			    h->page_size, WIRE_PAGE_SIZE);
	if (h->mem_bytes == 0 || h->mem_bytes % h->page_size || h->mem_bytes > (1ull << 40))
		return err_set(-EBADMSG, err, errlen, "HELLO: guest memory of %llu bytes",
			    (unsigned long long)h->mem_bytes);
	if (h->vcpus == 0 || h->vcpus > 64)
		return err_set(-EBADMSG, err, errlen, "HELLO: %u vCPUs", h->vcpus);
	if (h->channels == 0 || h->channels > 64 || h->channel >= h->channels)
		return err_set(-EBADMSG, err, errlen, "HELLO: channel %u of %u", h->channel,
			    h->channels);
	if (h->flags & ~WIRE_HELLO_ALL)
		return err_set(-EBADMSG, err, errlen, "HELLO: unknown flags 0x%x",
			       h->flags & ~WIRE_HELLO_ALL);
	if (h->flags == (WIRE_HELLO_FAULT | WIRE_HELLO_RESUME))
		return err_set(-EBADMSG, err, errlen, "HELLO: FAULT and RESUME at once");
	if (h->flags && !(h->caps & WIRE_CAP_POSTCOPY))
		return err_set(-EBADMSG, err, errlen,
			       "HELLO: a %s connection without the POSTCOPY capability",
			       h->flags & WIRE_HELLO_FAULT ? "FAULT" : "RESUME");
	if (h->flags && h->channel != 0)
		return err_set(-EBADMSG, err, errlen, "HELLO: a %s connection on channel %u",
			       h->flags & WIRE_HELLO_FAULT ? "FAULT" : "RESUME", h->channel);
	return 0;
}

#define FIXED_READER_END(name)                                                           \
	do {                                                                             \
		if (!rbuf_ok(&r) || rbuf_left(&r))                                       \
			return err_set(-EBADMSG, err, errlen, name ": payload length mismatch"); \
	} while (0)

int frame_get_cpuid(const uint8_t *p, size_t len, struct wire_cpuid *c, char *err,
		    size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	c->flags = get_le32(&r);
	c->tsc_khz = get_le32(&r);
	c->count = get_le32(&r);
	if (!rbuf_ok(&r))
		return err_set(-EBADMSG, err, errlen, "CPUID: payload of %zu bytes has no header", len);
	if (c->flags & ~WIRE_CPUID_ALL)
		return err_set(-EBADMSG, err, errlen, "CPUID: unknown flags 0x%x",
			       c->flags & ~WIRE_CPUID_ALL);
	if (c->tsc_khz == 0 || c->tsc_khz > WIRE_MAX_TSC_KHZ)
		return err_set(-EBADMSG, err, errlen, "CPUID: TSC rate of %u kHz", c->tsc_khz);
	if (c->count == 0 || c->count > WIRE_MAX_CPUID)
		return err_set(-EBADMSG, err, errlen, "CPUID: %u entries, must be 1..%u", c->count,
			       WIRE_MAX_CPUID);
	if (len != 12 + (size_t)c->count * WIRE_CPUID_ENTRY_BYTES)
		return err_set(-EBADMSG, err, errlen,
			       "CPUID: %u entries in a payload of %zu bytes, must be %zu", c->count,
			       len, 12 + (size_t)c->count * WIRE_CPUID_ENTRY_BYTES);
	for (uint32_t i = 0; i < c->count; i++) {
		struct wire_cpuid_entry *e = &c->ent[i];

		e->function = get_le32(&r);
		e->index = get_le32(&r);
		e->flags = get_le32(&r);
		e->eax = get_le32(&r);
		e->ebx = get_le32(&r);
		e->ecx = get_le32(&r);
		e->edx = get_le32(&r);
		if (e->flags & ~7u)
			return err_set(-EBADMSG, err, errlen, "CPUID: entry %u: unknown flags 0x%x", i,
				       e->flags);
		for (uint32_t j = 0; j < i; j++)
			if (c->ent[j].function == e->function &&
			    (c->ent[j].index == e->index || !(e->flags & 1u) ||
			     !(c->ent[j].flags & 1u)))
				return err_set(-EBADMSG, err, errlen,
					       "CPUID: entries %u and %u are both leaf 0x%x.%u", j, i,
					       e->function, e->index);
	}
	FIXED_READER_END("CPUID");
	return 0;
}

int frame_get_end_round(const uint8_t *p, size_t len, struct wire_end_round *e, char *err,
			size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	e->round = get_le32(&r);
	e->pages = get_le64(&r);
	e->dirty_rate = get_le64(&r);
	FIXED_READER_END("END_ROUND");
	return 0;
}

int frame_get_switchover(const uint8_t *p, size_t len, uint32_t *round, uint32_t *flags,
			 char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	*round = get_le32(&r);
	*flags = get_le32(&r);
	if (*flags & ~WIRE_SWITCHOVER_ALL)
		return err_set(-EBADMSG, err, errlen, "SWITCHOVER: unknown flags 0x%x",
			       *flags & ~WIRE_SWITCHOVER_ALL);
	FIXED_READER_END("SWITCHOVER");
	return 0;
}

int frame_get_complete(const uint8_t *p, size_t len, struct wire_complete *c, char *err,
		       size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	c->pages = get_le64(&r);
	c->state_sections = get_le32(&r);
	c->digest_alg = get_u8(&r);
	get_bytes(&r, c->digest, WIRE_DIGEST_BYTES);
	FIXED_READER_END("COMPLETE");
	if (c->digest_alg > WIRE_DIGEST_PAGES)
		return err_set(-EBADMSG, err, errlen, "COMPLETE: unknown digest algorithm %u",
			    c->digest_alg);
	return 0;
}

int frame_get_error(const uint8_t *p, size_t len, struct wire_error *e, char *err, size_t errlen)
{
	struct rbuf r;
	uint16_t n;

	rbuf_init(&r, p, len);
	e->code = get_le32(&r);
	n = get_le16(&r);
	if (!rbuf_ok(&r) || n > WIRE_MAX_MSG || n != rbuf_left(&r))
		return err_set(-EBADMSG, err, errlen, "ERROR: message length %u in a %zu-byte frame",
			    n, len);
	get_bytes(&r, e->msg, n);
	e->msg[n] = '\0';
	/* the peer's text is shown to users: keep it printable */
	for (uint16_t i = 0; i < n; i++)
		if ((unsigned char)e->msg[i] < 0x20 || (unsigned char)e->msg[i] == 0x7f)
			e->msg[i] = '?';
	return 0;
}

int frame_get_hello_ack(const uint8_t *p, size_t len, struct wire_hello_ack *a, char *err,
			size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	a->version = get_le16(&r);
	if (get_le16(&r))
		return err_set(-EBADMSG, err, errlen, "HELLO_ACK: reserved field not zero");
	a->caps = get_le32(&r);
	FIXED_READER_END("HELLO_ACK");
	if (a->version != WIRE_VERSION)
		return err_set(-EPROTO, err, errlen, "HELLO_ACK: stream version %u, this build speaks %u",
			    a->version, WIRE_VERSION);
	if (a->caps & ~WIRE_CAP_ALL)
		return err_set(-EBADMSG, err, errlen, "HELLO_ACK: unknown capability bits 0x%x",
			    a->caps & ~WIRE_CAP_ALL);
	return 0;
}

int frame_get_ack(const uint8_t *p, size_t len, struct wire_ack *a, char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	a->round = get_le32(&r);
	a->pages = get_le64(&r);
	FIXED_READER_END("ACK");
	return 0;
}

/* RESUMED and READY: digest_ok u8 | reserved u8[3]. */
static int get_digest_flag(const uint8_t *p, size_t len, const char *name,
			   struct wire_resumed *res, char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	res->digest_ok = get_u8(&r);
	if (get_u8(&r) || get_le16(&r))
		return err_set(-EBADMSG, err, errlen, "%s: reserved field not zero", name);
	if (!rbuf_ok(&r) || rbuf_left(&r))
		return err_set(-EBADMSG, err, errlen, "%s: payload length mismatch", name);
	if (res->digest_ok > 1)
		return err_set(-EBADMSG, err, errlen, "%s: digest_ok %u", name, res->digest_ok);
	return 0;
}

int frame_get_resumed(const uint8_t *p, size_t len, struct wire_resumed *res, char *err,
		      size_t errlen)
{
	return get_digest_flag(p, len, "RESUMED", res, err, errlen);
}

int frame_get_ready(const uint8_t *p, size_t len, struct wire_resumed *res, char *err,
		    size_t errlen)
{
	return get_digest_flag(p, len, "READY", res, err, errlen);
}

int frame_get_announce(const uint8_t *p, size_t len, struct wire_announce *a, char *err,
		       size_t errlen)
{
	struct rbuf r;
	const uint8_t *name;

	rbuf_init(&r, p, len);
	name = rbuf_take(&r, WIRE_IFACE_BYTES);
	a->rounds = get_le32(&r);
	a->initial_ms = get_le32(&r);
	a->step_ms = get_le32(&r);
	a->max_ms = get_le32(&r);
	FIXED_READER_END("ANNOUNCE");
	if (!memchr(name, 0, WIRE_IFACE_BYTES))
		return err_set(-EBADMSG, err, errlen, "ANNOUNCE: iface is not NUL-terminated");
	if (!name[0])
		return err_set(-EBADMSG, err, errlen, "ANNOUNCE: empty interface name");
	memcpy(a->iface, name, WIRE_IFACE_BYTES);
	return 0;
}

int frame_get_key(const uint8_t *p, size_t len, struct wire_key *k, char *err, size_t errlen)
{
	struct rbuf r;
	const uint8_t *id, *key;
	size_t n;

	rbuf_init(&r, p, len);
	id = rbuf_take(&r, WIRE_KEY_ID_BYTES);
	key = rbuf_take(&r, WIRE_KEY_MAX);
	k->key_len = get_le32(&r);
	k->lifetime_ms = get_le32(&r);
	FIXED_READER_END("KEY");
	n = strnlen((const char *)id, WIRE_KEY_ID_BYTES);
	if (n == 0 || n == WIRE_KEY_ID_BYTES)
		return err_set(-EBADMSG, err, errlen, "KEY: identity empty or not NUL-terminated");
	for (size_t i = 0; i < WIRE_KEY_ID_BYTES; i++) {
		bool hex = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');

		if (i < n ? !hex : id[i] != 0)
			return err_set(-EBADMSG, err, errlen,
				       "KEY: identity byte %zu is not hex or padding", i);
	}
	if (k->key_len < WIRE_KEY_MIN_LEN || k->key_len > WIRE_KEY_MAX)
		return err_set(-EBADMSG, err, errlen, "KEY: key of %u bytes, must be %u..%u",
			       k->key_len, WIRE_KEY_MIN_LEN, WIRE_KEY_MAX);
	if (k->lifetime_ms == 0 || k->lifetime_ms > WIRE_KEY_MAX_LIFETIME_MS)
		return err_set(-EBADMSG, err, errlen, "KEY: lifetime %u ms, must be 1..%u",
			       k->lifetime_ms, WIRE_KEY_MAX_LIFETIME_MS);
	memcpy(k->identity, id, WIRE_KEY_ID_BYTES);
	memcpy(k->key, key, WIRE_KEY_MAX);
	return 0;
}

int frame_get_key_ack(const uint8_t *p, size_t len, struct wire_key_ack *a, char *err,
		      size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	a->port = get_le16(&r);
	if (get_le16(&r))
		return err_set(-EBADMSG, err, errlen, "KEY_ACK: reserved field not zero");
	FIXED_READER_END("KEY_ACK");
	if (a->port == 0)
		return err_set(-EBADMSG, err, errlen, "KEY_ACK: port 0");
	return 0;
}

int frame_get_announced(const uint8_t *p, size_t len, struct wire_announced *a, char *err,
			size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	a->frames = get_le32(&r);
	a->error = get_le32(&r);
	a->first_us = get_le64(&r);
	FIXED_READER_END("ANNOUNCED");
	return 0;
}

int frame_get_go(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	if (get_le32(&r))
		return err_set(-EBADMSG, err, errlen, "GO: reserved field not zero");
	FIXED_READER_END("GO");
	return 0;
}

int frame_get_page_req(const uint8_t *p, size_t len, uint64_t npages, struct wire_page_req *q,
		       char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	q->page = get_le64(&r);
	q->count = get_le32(&r);
	FIXED_READER_END("PAGE_REQ");
	if (q->count == 0 || q->count > WIRE_MAX_BATCH)
		return err_set(-EBADMSG, err, errlen, "PAGE_REQ: count %u, must be 1..%u", q->count,
			    WIRE_MAX_BATCH);
	if (q->page >= npages || q->count > npages - q->page)
		return err_set(-ERANGE, err, errlen,
			    "PAGE_REQ: pages %llu..+%u lie outside the %llu pages of guest RAM",
			    (unsigned long long)q->page, q->count, (unsigned long long)npages);
	return 0;
}

uint64_t wire_bitmap_word(const struct wire_bitmap *b, uint32_t w)
{
	const uint8_t *q = b->bits + 8 * (size_t)w;
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | q[i];
	return v;
}

int frame_get_bitmap(const uint8_t *p, size_t len, unsigned type, uint64_t npages,
		     struct wire_bitmap *b, char *err, size_t errlen)
{
	const char *name = frame_type_name(type);
	uint32_t nw;
	struct rbuf r;

	if (type != WIRE_F_NEEDED && type != WIRE_F_WANT)
		return err_set(-EINVAL, err, errlen, "%s is not a bitmap frame", name);
	rbuf_init(&r, p, len);
	b->first = get_le64(&r);
	b->count = get_le32(&r);
	b->flags = get_le32(&r);
	if (!rbuf_ok(&r))
		return err_set(-EBADMSG, err, errlen, "%s: payload length mismatch", name);
	if (b->count == 0 || b->count > WIRE_MAX_BITMAP)
		return err_set(-EBADMSG, err, errlen, "%s: count %u, must be 1..%u", name, b->count,
			       WIRE_MAX_BITMAP);
	nw = (b->count + 63) / 64;
	if (rbuf_left(&r) != 8 * (size_t)nw)
		return err_set(-EBADMSG, err, errlen, "%s: %zu bitmap bytes for %u pages, must be %u",
			       name, rbuf_left(&r), b->count, 8 * nw);
	if (b->first % 64)
		return err_set(-EBADMSG, err, errlen, "%s: first page %llu is not a multiple of 64",
			       name, (unsigned long long)b->first);
	if (b->first >= npages || b->count > npages - b->first)
		return err_set(-ERANGE, err, errlen,
			       "%s: pages %llu..+%u lie outside the %llu pages of guest RAM", name,
			       (unsigned long long)b->first, b->count, (unsigned long long)npages);
	if (b->flags & ~(type == WIRE_F_WANT ? WIRE_WANT_LAST : 0u))
		return err_set(-EBADMSG, err, errlen, "%s: unknown flags 0x%x", name, b->flags);
	b->bits = p + WIRE_BITMAP_HDR;
	if (b->count % 64 && wire_bitmap_word(b, nw - 1) >> (b->count % 64))
		return err_set(-EBADMSG, err, errlen, "%s: bits set past the %u pages it covers",
			       name, b->count);
	return 0;
}

int frame_get_pc_done(const uint8_t *p, size_t len, struct wire_pc_done *d, char *err,
		      size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, p, len);
	d->pages = get_le64(&r);
	d->requests = get_le64(&r);
	d->blocked_us = get_le64(&r);
	d->p50_us = get_le32(&r);
	d->p99_us = get_le32(&r);
	d->digest_ok = get_u8(&r);
	if (get_u8(&r) || get_le16(&r))
		return err_set(-EBADMSG, err, errlen, "PC_DONE: reserved field not zero");
	FIXED_READER_END("PC_DONE");
	if (d->digest_ok > 1)
		return err_set(-EBADMSG, err, errlen, "PC_DONE: digest_ok %u", d->digest_ok);
	return 0;
}

/* ---- PAGES iterator ---------------------------------------------------- */

int pages_begin(struct page_iter *it, const uint8_t *payload, size_t len, uint64_t npages,
		uint32_t page_size, uint32_t caps, char *err, size_t errlen)
{
	struct rbuf r;

	rbuf_init(&r, payload, len);
	it->count = get_le32(&r);
	it->round = get_le32(&r);
	if (!rbuf_ok(&r))
		return err_set(-EBADMSG, err, errlen, "PAGES: payload of %zu bytes has no header", len);
	if (it->count == 0 || it->count > WIRE_MAX_BATCH)
		return err_set(-EBADMSG, err, errlen, "PAGES: batch of %u pages, must be 1..%u",
			    it->count, WIRE_MAX_BATCH);
	it->p = payload;
	it->len = len;
	it->pos = 8;
	it->index = 0;
	it->npages = npages;
	it->page_size = page_size;
	it->caps = caps;
	return 0;
}

static bool codec_allowed(uint8_t codec, uint32_t caps)
{
	switch (codec) {
	case CODEC_ZERO:
	case CODEC_RAW:
		return true;
	case CODEC_XBZRLE:
		return caps & WIRE_CAP_XBZRLE;
	case CODEC_ZSTD:
		return caps & WIRE_CAP_ZSTD;
	case CODEC_LZ4:
		return caps & WIRE_CAP_LZ4;
	default:
		return false;
	}
}

int pages_next(struct page_iter *it, struct wire_page *pg, char *err, size_t errlen)
{
	struct rbuf r;

	if (it->index == it->count) {
		if (it->pos != it->len)
			return err_set(-EBADMSG, err, errlen,
				    "PAGES: %zu byte(s) after the last of %u entries",
				    it->len - it->pos, it->count);
		return 0;
	}
	rbuf_init(&r, it->p + it->pos, it->len - it->pos);
	pg->page = get_le64(&r);
	pg->codec = get_u8(&r);
	pg->len = get_le32(&r);
	if (!rbuf_ok(&r))
		return err_set(-EBADMSG, err, errlen, "PAGES: entry %u of %u truncated", it->index,
			    it->count);
	if (pg->page >= it->npages)
		return err_set(-ERANGE, err, errlen,
			    "PAGES: entry %u: page %llu lies outside the %llu pages of guest RAM",
			    it->index, (unsigned long long)pg->page, (unsigned long long)it->npages);
	if (pg->codec >= CODEC_COUNT)
		return err_set(-EBADMSG, err, errlen, "PAGES: entry %u: unknown codec %u", it->index,
			    pg->codec);
	if (!codec_allowed(pg->codec, it->caps))
		return err_set(-EPROTO, err, errlen, "PAGES: entry %u: codec %s was not negotiated",
			    it->index, codec_get(pg->codec)->name);
	switch (pg->codec) {
	case CODEC_ZERO:
		if (pg->len)
			return err_set(-EBADMSG, err, errlen, "PAGES: entry %u: zero page with %u bytes",
				    it->index, pg->len);
		break;
	case CODEC_RAW:
		if (pg->len != it->page_size)
			return err_set(-EBADMSG, err, errlen,
				    "PAGES: entry %u: raw page of %u bytes, must be %u", it->index,
				    pg->len, it->page_size);
		break;
	default:
		if (pg->len == 0 || pg->len >= it->page_size)
			return err_set(-EBADMSG, err, errlen,
				    "PAGES: entry %u: %s payload of %u bytes, must be 1..%u",
				    it->index, codec_get(pg->codec)->name, pg->len,
				    it->page_size - 1);
		break;
	}
	pg->data = rbuf_take(&r, pg->len);
	if (!pg->data)
		return err_set(-EBADMSG, err, errlen,
			    "PAGES: entry %u: %u data bytes but only %zu left in the frame",
			    it->index, pg->len, it->len - it->pos - WIRE_PAGE_ENTRY_HDR);
	it->pos += r.pos;
	it->index++;
	return 1;
}

/* ---- order ------------------------------------------------------------------ */

void wire_order_init(struct wire_order *o, bool pages_only)
{
	o->phase = WIRE_PH_START;
	o->pages_only = pages_only;
	o->setup = false;
	o->cpuid_seen = false;
	o->announce_seen = false;
	o->postcopy = false;
}

void wire_order_postcopy(struct wire_order *o)
{
	o->postcopy = true;
}

void wire_order_pages_stream(struct wire_order *o)
{
	o->phase = WIRE_PH_POSTCOPY;
	o->setup = false;
}

int wire_order_check(struct wire_order *o, unsigned type, char *err, size_t errlen)
{
	static const char *const expect[] = {
		[WIRE_PH_START] = "HELLO",
		[WIRE_PH_PRECOPY] = "PAGES, END_ROUND or SWITCHOVER",
		[WIRE_PH_STOPCOPY] = "PAGES or STATE",
		[WIRE_PH_STATE] = "STATE or COMPLETE",
		[WIRE_PH_COMPLETE] = "GO",
		[WIRE_PH_DONE] = "nothing",
		[WIRE_PH_POSTCOPY] = "PAGES",
	};
	enum wire_phase next = o->phase;
	bool ok = false;

	if (o->phase != WIRE_PH_START && o->phase != WIRE_PH_DONE && type == WIRE_F_ERROR) {
		o->phase = WIRE_PH_DONE;
		return 0;
	}
	/* CPUID then ANNOUNCE: each once, on channel 0, between HELLO and the first page */
	if (type == WIRE_F_CPUID || type == WIRE_F_ANNOUNCE) {
		bool *seen = type == WIRE_F_CPUID ? &o->cpuid_seen : &o->announce_seen;

		/* CPUID before ANNOUNCE: the destination answers once both are checked */
		if (o->phase != WIRE_PH_PRECOPY || !o->setup || *seen || o->pages_only ||
		    (type == WIRE_F_CPUID && o->announce_seen))
			return err_set(-EPROTO, err, errlen,
				       "%s frame out of order: it comes once, right after HELLO, "
				       "before any page",
				       type == WIRE_F_CPUID ? "CPUID" : "ANNOUNCE");
		*seen = true;
		return 0;
	}
	switch (o->phase) {
	case WIRE_PH_START:
		/* a key exchange (KEY) is a stream of its own: nothing follows */
		ok = type == WIRE_F_HELLO || (type == WIRE_F_KEY && !o->pages_only);
		next = type == WIRE_F_KEY ? WIRE_PH_DONE : WIRE_PH_PRECOPY;
		o->setup = type == WIRE_F_HELLO;
		break;
	case WIRE_PH_PRECOPY:
		o->setup = false;
		ok = type == WIRE_F_PAGES || type == WIRE_F_END_ROUND ||
		     (o->pages_only ? type == WIRE_F_COMPLETE : type == WIRE_F_SWITCHOVER);
		if (type == WIRE_F_SWITCHOVER)
			next = WIRE_PH_STOPCOPY;
		if (type == WIRE_F_COMPLETE)
			next = WIRE_PH_DONE;
		break;
	case WIRE_PH_STOPCOPY:
		/* post-copy: the pages come after GO; NEEDED says which */
		ok = (o->postcopy ? type == WIRE_F_NEEDED : type == WIRE_F_PAGES) ||
		     type == WIRE_F_STATE;
		if (type == WIRE_F_STATE)
			next = WIRE_PH_STATE;
		break;
	case WIRE_PH_STATE:
		ok = type == WIRE_F_STATE || type == WIRE_F_COMPLETE;
		if (type == WIRE_F_COMPLETE)
			next = WIRE_PH_COMPLETE;
		break;
	case WIRE_PH_COMPLETE:
		ok = type == WIRE_F_GO;
		next = o->postcopy ? WIRE_PH_POSTCOPY : WIRE_PH_DONE;
		break;
	case WIRE_PH_POSTCOPY:
		ok = type == WIRE_F_PAGES;
		break;
	case WIRE_PH_DONE:
		ok = false;
		break;
	}
	if (!ok)
		return err_set(-EPROTO, err, errlen, "%s frame out of order: expected %s",
			    frame_type_name(type),
			    o->pages_only && o->phase == WIRE_PH_PRECOPY ? "PAGES, END_ROUND or COMPLETE"
			    : o->postcopy && o->phase == WIRE_PH_STOPCOPY ? "NEEDED or STATE"
									   : expect[o->phase]);
	o->phase = next;
	return 0;
}
