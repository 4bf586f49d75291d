/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame_decode - arbitrary bytes as a stream of frames through every
 * reader of protocol/frame.h, as a destination or a source would read them.
 * Byte 0 is flags: bit 0 recomputes each frame's CRC before it is checked
 * (so the typed readers see mutated payloads, not just CRC failures), bit 1
 * makes the order checker a pages-only channel's, bits 2-3 pick the guest
 * RAM for page numbers (1, 16, 4096 or 2^28 pages), bits 4-6 the negotiated
 * codecs (WIRE_CAP_XBZRLE, _ZSTD, _LZ4), bit 7 the page size the PAGES
 * iterator checks against (4096 or 512). The rest is frames back to back:
 * header check, CRC check, the typed reader of the frame's type, the PAGES
 * iterator to its end, the order checker; the stream stops at the first
 * header that fails or a frame cut short.
 *
 * Every payload is copied into a buffer of exactly its size, so a reader
 * that looks one byte too far trips ASan. Checked: each reader returns 0 or
 * its documented errno with a message; whatever a reader accepts obeys the
 * rules of wire.h (a page inside RAM, a codec that was negotiated, a length
 * allowed for it, a printable ERROR text, ...); a fixed-size frame that was
 * accepted encodes back to the same bytes, and so does a NEEDED or WANT
 * bitmap; nothing follows COMPLETE/ERROR but GO, and nothing follows GO
 * but a post-copy's PAGES. A SWITCHOVER(POSTCOPY) or a HELLO(FAULT/RESUME)
 * that was accepted switches the order checker as the receivers do.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t npages_choice[4] = { 1, 16, 4096, 1ull << 28 };

struct ctx {
	uint64_t npages;
	uint32_t page_size;
	uint32_t caps;
	bool postcopy;		/* the frame read was SWITCHOVER(POSTCOPY) */
	bool pages_stream;	/* the frame read was HELLO(FAULT or RESUME) */
	char err[256];
};

/* A reader failed: a known errno and a message. */
static void check_fail(int ret, const char *err, bool erange_ok)
{
	CHECK(ret == -EBADMSG || ret == -EPROTO || (erange_ok && ret == -ERANGE));
	CHECK(err[0] != '\0');
	CHECK(memchr(err, '\0', 256) != NULL);
}

/* A fixed-size frame that was accepted encodes back to the same payload. */
static void check_same(const uint8_t *frame, ssize_t n, const uint8_t *p, size_t len)
{
	CHECK(n == (ssize_t)(WIRE_HDR_BYTES + len + WIRE_CRC_BYTES));
	CHECK(!memcmp(frame + WIRE_HDR_BYTES, p, len));
}

static void read_pages(struct ctx *c, const uint8_t *p, size_t len)
{
	struct page_iter it;
	struct wire_page pg;
	unsigned n = 0;
	int ret;

	ret = pages_begin(&it, p, len, c->npages, c->page_size, c->caps, c->err, sizeof(c->err));
	if (ret) {
		check_fail(ret, c->err, false);
		return;
	}
	CHECK(it.count >= 1 && it.count <= WIRE_MAX_BATCH);
	while ((ret = pages_next(&it, &pg, c->err, sizeof(c->err))) == 1) {
		CHECK(pg.page < c->npages);
		CHECK(pg.codec < CODEC_COUNT);
		CHECK(pg.data >= p && pg.data + pg.len <= p + len);
		switch (pg.codec) {
		case CODEC_ZERO:
			CHECK(pg.len == 0);
			break;
		case CODEC_RAW:
			CHECK(pg.len == c->page_size);
			break;
		case CODEC_XBZRLE:
			CHECK(c->caps & WIRE_CAP_XBZRLE);
			CHECK(pg.len >= 1 && pg.len < c->page_size);
			break;
		case CODEC_ZSTD:
			CHECK(c->caps & WIRE_CAP_ZSTD);
			CHECK(pg.len >= 1 && pg.len < c->page_size);
			break;
		default:
			CHECK(c->caps & WIRE_CAP_LZ4);
			CHECK(pg.len >= 1 && pg.len < c->page_size);
			break;
		}
		n++;
		CHECK(n <= it.count);
	}
	if (ret == 0)
		CHECK(n == it.count && it.pos == len);
	else
		check_fail(ret, c->err, true);
}

static void read_typed(struct ctx *c, unsigned type, const uint8_t *p, size_t len)
{
	uint8_t out[WIRE_HDR_BYTES + WIRE_HELLO_BYTES + WIRE_CRC_BYTES + WIRE_MAX_MSG];
	int ret = 0;

	c->err[0] = '\0';
	c->postcopy = c->pages_stream = false;
	switch (type) {
	case WIRE_F_HELLO: {
		struct wire_hello h, h2;

		ret = frame_get_hello(p, len, &h, c->err, sizeof(c->err));
		if (ret)
			break;
		CHECK(h.version == WIRE_VERSION && !(h.caps & ~WIRE_CAP_ALL));
		CHECK(h.page_size == WIRE_PAGE_SIZE);
		CHECK(h.mem_bytes && h.mem_bytes % h.page_size == 0 && h.mem_bytes <= (1ull << 40));
		CHECK(h.vcpus >= 1 && h.vcpus <= 64);
		CHECK(h.channel < h.channels && h.channels <= 64);
		CHECK(memchr(h.name, 0, sizeof(h.name)) && memchr(h.guest, 0, sizeof(h.guest)) &&
		      memchr(h.guest_args, 0, sizeof(h.guest_args)));
		/* what was accepted encodes to a HELLO that reads back the same */
		CHECK(frame_put_hello(out, sizeof(out), &h) > 0);
		CHECK(frame_get_hello(out + WIRE_HDR_BYTES, len, &h2, c->err, sizeof(c->err)) == 0);
		CHECK(!(h.flags & ~WIRE_HELLO_ALL) && h.flags != WIRE_HELLO_ALL);
		CHECK(!h.flags || (h.channel == 0 && (h.caps & WIRE_CAP_POSTCOPY)));
		c->pages_stream = h.flags != 0;
		CHECK(h2.caps == h.caps && h2.mem_bytes == h.mem_bytes && h2.session == h.session &&
		      h2.channel == h.channel && !strcmp(h2.name, h.name) &&
		      !strcmp(h2.guest_args, h.guest_args) && !memcmp(h2.mac, h.mac, 6));
		break;
	}
	case WIRE_F_PAGES:
		read_pages(c, p, len);
		return;
	case WIRE_F_END_ROUND: {
		struct wire_end_round e;

		ret = frame_get_end_round(p, len, &e, c->err, sizeof(c->err));
		if (!ret)
			check_same(out, frame_put_end_round(out, sizeof(out), &e), p, len);
		break;
	}
	case WIRE_F_SWITCHOVER: {
		uint32_t round, flags;

		ret = frame_get_switchover(p, len, &round, &flags, c->err, sizeof(c->err));
		if (!ret)
			c->postcopy = flags & WIRE_SWITCHOVER_POSTCOPY;
		if (!ret)
			check_same(out, frame_put_switchover(out, sizeof(out), round, flags), p, len);
		break;
	}
	case WIRE_F_STATE:
		CHECK(len >= 1 && len <= WIRE_MAX_STATE);
		return;
	case WIRE_F_COMPLETE: {
		struct wire_complete cm;

		ret = frame_get_complete(p, len, &cm, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(cm.digest_alg <= WIRE_DIGEST_PAGES);
			check_same(out, frame_put_complete(out, sizeof(out), &cm), p, len);
		}
		break;
	}
	case WIRE_F_ERROR: {
		struct wire_error e;

		ret = frame_get_error(p, len, &e, c->err, sizeof(c->err));
		if (!ret) {
			size_t n = strlen(e.msg);

			CHECK(n == len - 6 && n <= WIRE_MAX_MSG);
			for (size_t i = 0; i < n; i++)
				CHECK((unsigned char)e.msg[i] >= 0x20 && e.msg[i] != 0x7f);
			CHECK(frame_put_error(out, sizeof(out), e.code, e.msg) ==
			      (ssize_t)(WIRE_HDR_BYTES + len + WIRE_CRC_BYTES));
		}
		break;
	}
	case WIRE_F_HELLO_ACK: {
		struct wire_hello_ack a;

		ret = frame_get_hello_ack(p, len, &a, c->err, sizeof(c->err));
		if (!ret)
			check_same(out, frame_put_hello_ack(out, sizeof(out), &a), p, len);
		break;
	}
	case WIRE_F_ACK: {
		struct wire_ack a;

		ret = frame_get_ack(p, len, &a, c->err, sizeof(c->err));
		if (!ret)
			check_same(out, frame_put_ack(out, sizeof(out), &a), p, len);
		break;
	}
	case WIRE_F_RESUMED: {
		struct wire_resumed r;

		ret = frame_get_resumed(p, len, &r, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(r.digest_ok <= 1);
			check_same(out, frame_put_resumed(out, sizeof(out), &r), p, len);
		}
		break;
	}
	case WIRE_F_READY: {
		struct wire_resumed r;

		ret = frame_get_ready(p, len, &r, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(r.digest_ok <= 1);
			check_same(out, frame_put_ready(out, sizeof(out), &r), p, len);
		}
		break;
	}
	case WIRE_F_CPUID: {
		static uint8_t big[WIRE_HDR_BYTES + 12 + WIRE_MAX_CPUID * WIRE_CPUID_ENTRY_BYTES +
				   WIRE_CRC_BYTES];
		static struct wire_cpuid cp;

		ret = frame_get_cpuid(p, len, &cp, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(cp.count >= 1 && cp.count <= WIRE_MAX_CPUID);
			CHECK(!(cp.flags & ~WIRE_CPUID_ALL) && cp.tsc_khz && cp.tsc_khz <= WIRE_MAX_TSC_KHZ);
			CHECK(len == 12 + (size_t)cp.count * WIRE_CPUID_ENTRY_BYTES);
			check_same(big, frame_put_cpuid(big, sizeof(big), &cp), p, len);
		}
		break;
	}
	case WIRE_F_KEY: {
		struct wire_key k;

		ret = frame_get_key(p, len, &k, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(k.key_len >= WIRE_KEY_MIN_LEN && k.key_len <= WIRE_KEY_MAX);
			CHECK(k.lifetime_ms && k.lifetime_ms <= WIRE_KEY_MAX_LIFETIME_MS);
			CHECK(k.identity[0] && memchr(k.identity, 0, WIRE_KEY_ID_BYTES));
			check_same(out, frame_put_key(out, sizeof(out), &k), p, len);
		}
		break;
	}
	case WIRE_F_KEY_ACK: {
		struct wire_key_ack a;

		ret = frame_get_key_ack(p, len, &a, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(a.port != 0);
			check_same(out, frame_put_key_ack(out, sizeof(out), &a), p, len);
		}
		break;
	}
	case WIRE_F_GO:
		ret = frame_get_go(p, len, c->err, sizeof(c->err));
		if (!ret)
			check_same(out, frame_put_go(out, sizeof(out)), p, len);
		break;
	case WIRE_F_PAGE_REQ: {
		struct wire_page_req q;

		ret = frame_get_page_req(p, len, c->npages, &q, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(q.count >= 1 && q.count <= WIRE_MAX_BATCH);
			CHECK(q.page < c->npages && q.count <= c->npages - q.page);
			check_same(out, frame_put_page_req(out, sizeof(out), &q), p, len);
		}
		break;
	}
	case WIRE_F_ANNOUNCE: {
		struct wire_announce a;

		ret = frame_get_announce(p, len, &a, c->err, sizeof(c->err));
		if (!ret)
			CHECK(a.iface[0] && memchr(a.iface, 0, sizeof(a.iface)));
		break;
	}
	case WIRE_F_ANNOUNCED: {
		struct wire_announced a;

		ret = frame_get_announced(p, len, &a, c->err, sizeof(c->err));
		if (!ret)
			check_same(out, frame_put_announced(out, sizeof(out), &a), p, len);
		break;
	}
	case WIRE_F_NEEDED:
	case WIRE_F_WANT: {
		static uint64_t words[WIRE_MAX_BITMAP / 64];
		static uint8_t big[WIRE_HDR_BYTES + WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 +
				   WIRE_CRC_BYTES];
		struct wire_bitmap b;
		uint32_t nw;

		ret = frame_get_bitmap(p, len, type, c->npages, &b, c->err, sizeof(c->err));
		if (ret)
			break;
		CHECK(b.first % 64 == 0 && b.count >= 1 && b.count <= WIRE_MAX_BITMAP);
		CHECK(b.first < c->npages && b.count <= c->npages - b.first);
		CHECK(type == WIRE_F_WANT ? !(b.flags & ~WIRE_WANT_LAST) : !b.flags);
		nw = (b.count + 63) / 64;
		CHECK(b.bits == p + WIRE_BITMAP_HDR && len == WIRE_BITMAP_HDR + 8 * (size_t)nw);
		for (uint32_t w = 0; w < nw; w++)
			words[w] = wire_bitmap_word(&b, w);
		check_same(big, frame_put_bitmap(big, sizeof(big), type, b.first, b.count, b.flags,
						 words), p, len);
		break;
	}
	case WIRE_F_PC_DONE: {
		struct wire_pc_done d;

		ret = frame_get_pc_done(p, len, &d, c->err, sizeof(c->err));
		if (!ret) {
			CHECK(d.digest_ok <= 1);
			check_same(out, frame_put_pc_done(out, sizeof(out), &d), p, len);
		}
		break;
	}
	default:
		/* frame_check_header let an unknown type through */
		CHECK(0);
	}
	if (ret)
		check_fail(ret, c->err, type == WIRE_F_PAGE_REQ || type == WIRE_F_NEEDED ||
				   type == WIRE_F_WANT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c;
	struct wire_order o;
	const uint8_t *p;
	size_t left;
	bool recrc, done = false, completed = false, pages_only;

	if (size < 1)
		return 0;
	recrc = data[0] & 1;
	pages_only = data[0] & 2;
	wire_order_init(&o, pages_only);
	c.npages = npages_choice[(data[0] >> 2) & 3];
	c.caps = (data[0] >> 4) & 7;
	c.page_size = data[0] & 0x80 ? 512 : WIRE_PAGE_SIZE;
	p = data + 1;
	left = size - 1;
	while (left) {
		struct frame_hdr h;
		uint8_t *frame, *payload;
		size_t total;
		int ret;

		c.err[0] = '\0';
		ret = frame_check_header(p, left, &h, c.err, sizeof(c.err));
		if (ret) {
			CHECK(ret == -EBADMSG && c.err[0]);
			break;
		}
		CHECK(h.flags == 0 && h.len <= WIRE_MAX_PAYLOAD);
		CHECK(strcmp(frame_type_name(h.type), "unknown"));
		total = frame_total(&h);
		if (total > left)
			break;
		frame = malloc(total);
		payload = malloc(h.len ? h.len : 1);
		CHECK(frame && payload);
		memcpy(frame, p, total);
		if (recrc) {
			uint32_t crc = crc32c(0, frame, total - WIRE_CRC_BYTES);

			for (int i = 0; i < 4; i++)
				frame[total - WIRE_CRC_BYTES + (size_t)i] =
					(uint8_t)(crc >> (8 * i));
		}
		c.err[0] = '\0';
		ret = frame_check_crc(frame, total, c.err, sizeof(c.err));
		if (recrc)
			CHECK(ret == 0);
		if (ret == 0) {
			memcpy(payload, frame + WIRE_HDR_BYTES, h.len);
			read_typed(&c, h.type, payload, h.len);
			ret = wire_order_check(&o, h.type, c.err, sizeof(c.err));
			CHECK(ret == 0 || (ret == -EPROTO && c.err[0]));
			if (done)
				CHECK(ret == -EPROTO);	/* nothing after GO or ERROR */
			if (completed && h.type != WIRE_F_GO && h.type != WIRE_F_ERROR)
				CHECK(ret == -EPROTO);	/* after COMPLETE: GO only */
			if (!ret && c.postcopy)
				wire_order_postcopy(&o);
			if (!ret && c.pages_stream && o.phase == WIRE_PH_PRECOPY)
				wire_order_pages_stream(&o);
			if (!ret && h.type == WIRE_F_GO && o.phase == WIRE_PH_POSTCOPY)
				completed = false;	/* post-copy: PAGES follow GO */
			else if (!ret && (h.type == WIRE_F_GO || h.type == WIRE_F_ERROR ||
					  (h.type == WIRE_F_COMPLETE && pages_only)))
				done = true;
			else if (!ret && h.type == WIRE_F_COMPLETE)
				completed = true;
		} else {
			CHECK(ret == -EBADMSG && strstr(c.err, "checksum mismatch"));
		}
		free(frame);
		free(payload);
		p += total;
		left -= total;
	}
	return 0;
}
