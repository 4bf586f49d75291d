/* SPDX-License-Identifier: MIT */
/*
 * fuzz_xbzrle_roundtrip - encode then decode. Byte 0 picks the mode: even,
 * the rest of the input is split into an old and a new page of equal size;
 * odd, a pseudo-random page of a size chosen by byte 0 is the old page and
 * the rest of the input is a list of (offset, value) patches making the new
 * one, which reaches sparse deltas. Every encoder implementation must give
 * the same result as the scalar one, byte for byte, both with a worst-case
 * dst and with a dst of a size taken from the input (exact-size buffers, so
 * a write past dlen trips ASan: QEMU's AVX-512 lesson); and the delta must
 * decode onto the old page to exactly the new page.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/xbzrle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t page_sizes[4] = { 4096, 4096, 1000, 16384 };

static void check(const uint8_t *old, const uint8_t *new, size_t len, size_t dlen)
{
	uint8_t *ref = malloc(dlen ? dlen : 1), *out = malloc(dlen ? dlen : 1);
	int n;

	if (!ref || !out)
		abort();
	n = xbzrle_encode_impl(XBZRLE_IMPL_SCALAR, old, new, len, ref, dlen);
	if (n < -1 || (size_t)(n < 0 ? 0 : n) > dlen)
		abort();
	for (int impl = 1; impl < XBZRLE_IMPL_COUNT; impl++) {
		int m;

		if (!xbzrle_impl_supported((enum xbzrle_impl)impl))
			continue;
		m = xbzrle_encode_impl((enum xbzrle_impl)impl, old, new, len, out, dlen);
		if (m != n || (n > 0 && memcmp(out, ref, (size_t)n)))
			abort();
	}
	if (n >= 0) {
		uint8_t *page = malloc(len ? len : 1);

		if (!page)
			abort();
		memcpy(page, old, len);
		if (xbzrle_decode(ref, (size_t)n, page, len) < 0 || memcmp(page, new, len))
			abort();
		if (n == 0 && memcmp(old, new, len))
			abort();
		free(page);
	}
	free(ref);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *old, *new;
	size_t len, dlen;

	if (size < 3)
		return 0;
	if (!(data[0] & 1)) {
		len = (size - 3) / 2;
		old = malloc(len ? len : 1);
		new = malloc(len ? len : 1);
		if (!old || !new)
			abort();
		memcpy(old, data + 3, len);
		memcpy(new, data + 3 + len, len);
	} else {
		uint32_t x = 0x9e3779b9u ^ data[1];

		len = page_sizes[(data[0] >> 1) & 3];
		old = malloc(len);
		new = malloc(len);
		if (!old || !new)
			abort();
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			old[i] = (uint8_t)x;
		}
		memcpy(new, old, len);
		for (size_t i = 3; i + 3 <= size; i += 3) {
			size_t at = ((size_t)data[i] | (size_t)data[i + 1] << 8) % len;

			new[at] = data[i + 2];
		}
	}
	check(old, new, len, xbzrle_bound(len));
	/* a tight dst: a fraction of the page picked by byte 2 */
	dlen = len * data[2] / 256;
	check(old, new, len, dlen);
	free(old);
	free(new);
	return 0;
}
