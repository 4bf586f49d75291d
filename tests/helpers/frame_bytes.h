/* SPDX-License-Identifier: MIT */
/*
 * frame_bytes.h - what the tests that forge frames share: a little-endian
 * field written into a frame's bytes, and the CRC made right again after
 * such a change (so that the typed reader, not the CRC check, judges it).
 */
#ifndef KVMIG_TESTS_HELPERS_FRAME_BYTES_H
#define KVMIG_TESTS_HELPERS_FRAME_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "common/crc32c.h"
#include "protocol/wire.h"

static inline void set_le(uint8_t *p, unsigned bytes, uint64_t v)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the CRC of a frame of total bytes after a field was changed. */
static inline void reseal(uint8_t *f, size_t total)
{
	set_le(f + total - WIRE_CRC_BYTES, 4, crc32c(0, f, total - WIRE_CRC_BYTES));
}

#endif
