/* SPDX-License-Identifier: MIT */
/*
 * fuzz_xbzrle_decode - hostile XBZRLE deltas. The first input byte picks a
 * page size (mostly 4 KiB, also tiny, odd and above-16 KiB sizes); the rest
 * is decoded onto a pseudo-random page that sits between guard regions.
 * xbzrle_decode must return -1 or a length <= the page size, never touch
 * the guards, and agree with a byte-at-a-time reference decoder written
 * from QEMU's rules (same accept/reject, same resulting page). When the
 * delta is accepted, encoding old -> new again must give a delta that
 * decodes to the same page.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/xbzrle.h"

#define GUARD 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t page_sizes[8] = { 4096, 4096, 4096, 4096, 1, 100, 16384, 65536 };

static void fill(uint8_t *p, size_t len)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		/* about a third zero bytes, as real pages have */
		p[i] = (x % 3) ? (uint8_t)x : 0;
	}
}

static size_t max_uleb(size_t len)
{
	size_t w = 1;

	while (len >= 0x80) {
		len >>= 7;
		w++;
	}
	return w < 2 ? 2 : w;
}

/* QEMU's decoder, generalized to max_uleb(len) bytes per length. */
static int ref_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len)
{
	size_t i = 0, d = 0, maxw = max_uleb(len);

	while (i < slen) {
		size_t v[2];

		for (int k = 0; k < 2; k++) {
			size_t w = 0, shift = 0;

			v[k] = 0;
			for (;;) {
				if (i >= slen || w == maxw)
					return -1;
				v[k] |= (size_t)(src[i] & 0x7f) << shift;
				shift += 7;
				w++;
				if (!(src[i++] & 0x80))
					break;
			}
			if (k == 0 && !v[0] && i != w)
				return -1; /* zero zrun that is not the first */
		}
		if (!v[1] || v[0] > len - d)
			return -1;
		d += v[0];
		if (v[1] > len - d || v[1] > slen - i)
			return -1;
		memcpy(page + d, src + i, v[1]);
		d += v[1];
		i += v[1];
	}
	return (int)d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, slen;
	const uint8_t *src;
	uint8_t *buf, *page, *ref, *old;
	int r, rr;

	if (size < 1)
		return 0;
	len = page_sizes[data[0] & 7];
	src = data + 1;
	slen = size - 1;
	buf = malloc(len + 2 * GUARD);
	ref = malloc(len);
	old = malloc(len);
	if (!buf || !ref || !old)
		abort();
	page = buf + GUARD;
	memset(buf, 0xa5, GUARD);
	memset(page + len, 0xa5, GUARD);
	fill(page, len);
	memcpy(old, page, len);
	memcpy(ref, page, len);

	r = xbzrle_decode(src, slen, page, len);
	rr = ref_decode(src, slen, ref, len);
	if (r < -1 || r > (int)len)
		abort();
	for (size_t i = 0; i < GUARD; i++)
		if (buf[i] != 0xa5 || page[len + i] != 0xa5)
			abort();
	if ((r < 0) != (rr < 0))
		abort();
	if (r >= 0) {
		uint8_t *enc, *again;
		int n;

		if (r != rr || memcmp(page, ref, len))
			abort();
		/* the delta we would have sent for the same change */
		enc = malloc(xbzrle_bound(len));
		again = malloc(len);
		if (!enc || !again)
			abort();
		n = xbzrle_encode(old, page, len, enc, xbzrle_bound(len));
		if (n < 0)
			abort();
		memcpy(again, old, len);
		if (xbzrle_decode(enc, (size_t)n, again, len) < 0 || memcmp(again, page, len))
			abort();
		free(enc);
		free(again);
	}
	free(buf);
	free(ref);
	free(old);
	return 0;
}
