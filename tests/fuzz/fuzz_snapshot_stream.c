/* SPDX-License-Identifier: MIT */
/*
 * fuzz_snapshot_stream - a hostile snapshot file through the destination's
 * whole decoder (migrate/incoming.h): the frame order of its state machine,
 * HELLO's checks and the RAM it sizes, PAGES decoded into that RAM (every
 * codec), the STATE sections (vm/state.h: header, version, exact length,
 * CRC, every value's range), COMPLETE's counts and digest, and the end of
 * the file. The decoder runs check-only (no VM is built, so no /dev/kvm),
 * with a HELLO hook that refuses guests above 64 MiB as an agent's limits
 * would.
 *
 * Byte 0 is flags: bit 0 recomputes every frame's CRC32C and bit 1 every
 * STATE frame's inner section CRC before decoding, so mutations reach the
 * typed readers and the section checks instead of stopping at a CRC. The
 * rest is the file. Checked: the decoder returns 0 or a negative errno
 * with a message, never crashes or reads out of bounds (ASan); a stream it
 * accepts was checked whole (stream_ok) and its page counts add up.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "migrate/incoming.h"
#include "migrate/mio.h"
#include "protocol/wire.h"
#include "vm/state.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MEM_BYTES (64ull << 20)

struct bufio {
	struct mio io;
	const uint8_t *buf;
	size_t len, pos;
};

static int buf_read(struct mio *io, void *dst, size_t len)
{
	struct bufio *b = (struct bufio *)io;
	size_t left = b->len - b->pos;

	if (left == 0 && len)
		return -ENODATA;
	if (left < len) {
		b->pos = b->len;
		return -ECONNRESET;
	}
	memcpy(dst, b->buf + b->pos, len);
	b->pos += len;
	io->bytes_in += len;
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Make the CRCs of whole frames (and of STATE sections) right. */
static void fix_crcs(uint8_t *p, size_t len, bool frames, bool sections)
{
	size_t off = 0;

	while (off + WIRE_HDR_BYTES <= len) {
		uint16_t type = (uint16_t)(p[off] | p[off + 1] << 8);
		uint32_t plen = le32(p + off + 4);
		uint8_t *pl = p + off + WIRE_HDR_BYTES;

		if (plen > WIRE_MAX_PAYLOAD || off + WIRE_HDR_BYTES + plen + WIRE_CRC_BYTES > len)
			return;
		if (sections && type == WIRE_F_STATE &&
		    plen >= STATE_SEC_HDR_BYTES + STATE_SEC_CRC_BYTES) {
			uint32_t slen = le32(pl + 4);

			if ((uint64_t)slen + STATE_SEC_HDR_BYTES + STATE_SEC_CRC_BYTES == plen)
				put32(pl + plen - STATE_SEC_CRC_BYTES,
				      crc32c(0, pl, plen - STATE_SEC_CRC_BYTES));
		}
		if (frames)
			put32(pl + plen, crc32c(0, p + off, WIRE_HDR_BYTES + plen));
		off += WIRE_HDR_BYTES + plen + WIRE_CRC_BYTES;
	}
}

static int small_guests_only(void *ctx, const char *name, uint64_t mem_bytes, char *err,
			     size_t errlen)
{
	(void)ctx;
	(void)name;
	if (mem_bytes > MAX_MEM_BYTES) {
		snprintf(err, errlen, "guest of %llu bytes is above this fuzzer's limit",
			 (unsigned long long)mem_bytes);
		return -EFBIG;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct incoming_stats st;
	struct incoming *inc;
	struct bufio b;
	struct vm *vm = NULL;
	uint8_t *copy;
	char err[WIRE_MAX_MSG + 256] = "";
	int ret;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	CHECK(copy);
	memcpy(copy, data + 1, size - 1);
	fix_crcs(copy, size - 1, data[0] & 1, data[0] & 2);

	memset(&b, 0, sizeof(b));
	b.io.read = buf_read;
	b.buf = copy;
	b.len = size - 1;
	CHECK(incoming_create(&b.io, NULL, NULL, &inc) == 0);
	incoming_check_only(inc);
	incoming_expect_eof(inc);
	incoming_set_hello_hook(inc, small_guests_only, NULL);
	ret = incoming_run(inc, &vm, err, sizeof(err));
	incoming_get_stats(inc, &st);
	incoming_destroy(inc);

	CHECK(vm == NULL);
	if (ret == 0) {
		CHECK(st.stream_ok);
		CHECK(st.zero_pages + st.raw_pages + st.xbzrle_pages + st.compressed_pages ==
		      st.pages);
	} else {
		CHECK(ret < 0);
		CHECK(err[0] != '\0');
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	}
	free(copy);
	return 0;
}
