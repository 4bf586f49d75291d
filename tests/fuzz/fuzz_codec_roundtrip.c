/* SPDX-License-Identifier: MIT */
/*
 * fuzz_codec_roundtrip - zstd and lz4 (fast and HC) on one page. Byte 0
 * picks how the page is built: from the input as is, or the input repeated
 * up to 4 KiB (compressible); the page goes through every compressor
 * context, created once and reused across inputs as a migration does. An
 * encode must return -ENOSPC or a payload smaller than the page in a dst of
 * exactly bound() bytes; that payload must decode, into a buffer of exactly
 * the page size, back to the page, and must be rejected for a page one byte
 * larger or smaller.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = { "zstd:1", "zstd:5", "lz4", "lz4:20", "lz4hc:4" };
static struct codec_ctx *ctxs[sizeof(names) / sizeof(names[0])];

static void setup(void)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct codec_config cfg;

		if (ctxs[i])
			continue;
		if (codec_by_name(names[i], &cfg) || codec_ctx_create(&cfg, 4096, &ctxs[i]))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *page, *enc, *out;
	size_t len;

	if (size < 2)
		return 0;
	setup();
	data++;
	size--;
	if (data[-1] & 1) {
		len = 4096;
		page = malloc(len);
		if (!page)
			abort();
		for (size_t i = 0; i < len; i++)
			page[i] = data[i % size];
	} else {
		len = size;
		page = malloc(len);
		if (!page)
			abort();
		memcpy(page, data, len);
	}
	for (size_t c = 0; c < sizeof(names) / sizeof(names[0]); c++) {
		const struct codec_ops *ops = codec_ctx_ops(ctxs[c]);
		size_t cap = ops->bound(len);
		ssize_t n;

		enc = malloc(cap);
		out = malloc(len + 1);
		if (!enc || !out)
			abort();
		n = codec_encode(ctxs[c], page, len, enc, cap);
		if (n == -ENOSPC)
			goto next;
		if (n <= 0 || (size_t)n >= len)
			abort();
		if (codec_decode(ctxs[c], enc, (size_t)n, out, len) != (ssize_t)len ||
		    memcmp(out, page, len))
			abort();
		if (codec_decode(ctxs[c], enc, (size_t)n, out, len + 1) != -EBADMSG)
			abort();
		if (len > 1 && codec_decode(ctxs[c], enc, (size_t)n, out, len - 1) != -EBADMSG)
			abort();
next:
		free(enc);
		free(out);
	}
	free(page);
	return 0;
}
