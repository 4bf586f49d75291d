/* SPDX-License-Identifier: MIT */
/*
 * fuzz_codec_decode - hostile payloads for every decoder in the codec table.
 * Byte 0 picks the wire id (ZERO, RAW, XBZRLE, ZSTD, LZ4) and a page size
 * (4 KiB, 1 KiB, 1, 64 KiB); the rest is the payload, decoded into a
 * buffer of exactly the page size followed by guard bytes. A decoder must
 * return the page size or -EBADMSG, nothing else, never write past the page,
 * and decoding the same payload twice must give the same page (no state
 * leaks between pages in the reused zstd context).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

#define GUARD 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t page_sizes[4] = { 4096, 1024, 1, 65536 };
static struct codec_ctx *ctxs[CODEC_COUNT];

static void setup(void)
{
	static const char *const names[CODEC_COUNT] = { "zero", "raw", "xbzrle", "zstd", "lz4" };

	for (int i = 0; i < CODEC_COUNT; i++) {
		struct codec_config cfg;

		if (ctxs[i])
			continue;
		if (codec_by_name(names[i], &cfg) || codec_ctx_create(&cfg, 4096, &ctxs[i]))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int id;
	size_t len;
	uint8_t *out, *first;
	ssize_t r;

	if (size < 1)
		return 0;
	setup();
	id = (unsigned int)(data[0] & 7) % CODEC_COUNT;
	len = page_sizes[(data[0] >> 3) & 3];
	out = malloc(len + GUARD);
	first = malloc(len);
	if (!out || !first)
		abort();
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < len; i++)
			out[i] = (uint8_t)(i * 7);
		memset(out + len, 0xa5, GUARD);
		r = codec_get(id)->decode(ctxs[id], data + 1, size - 1, out, len);
		if (r != (ssize_t)len && r != -EBADMSG)
			abort();
		for (size_t i = 0; i < GUARD; i++)
			if (out[len + i] != 0xa5)
				abort();
		if (r < 0)
			break;
		if (pass == 0)
			memcpy(first, out, len);
		else if (memcmp(first, out, len))
			abort();
	}
	free(out);
	free(first);
	return 0;
}
