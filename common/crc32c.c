/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC32C three ways: a byte table (portable), the SSE4.2 crc32
 * instruction one word at a time, and the same instruction on three
 * interleaved streams.
 *
 * The crc32 instruction has a latency of 3 cycles but a throughput of one
 * per cycle, so a single dependency chain runs at a third of the speed the
 * CPU can give. Splitting a long buffer into three blocks A|B|C and running
 * three chains at once keeps the unit busy; the three results are then
 * joined with the linearity of CRCs over GF(2) (raw register, no
 * inversion):
 *
 *   crc(init, A|B|C) = shift(crc(init, A), |B|+|C|) ^ shift(crc(0, B), |C|) ^ crc(0, C)
 *
 * where shift(c, n) is c followed by n zero bytes: a fixed linear map of c,
 * applied as four 256-entry tables per shift distance, computed once at
 * start-up by squaring the one-zero-bit operator.
 */
#include "common/crc32c.h"

#include <stdbool.h>
#include <string.h>

#include "common/buf.h"

#define POLY 0x82f63b78u
#define BLOCK 4096u		/* bytes per stream per step */

static uint32_t table[256];
static uint32_t shift_1block[4][256], shift_2blocks[4][256];
static bool have_sse42;

/* Multiply the 32x32 GF(2) matrix mat by vec. */
static uint32_t gf2_apply(const uint32_t mat[32], uint32_t vec)
{
	uint32_t sum = 0;

	for (int i = 0; vec; vec >>= 1, i++)
		if (vec & 1)
			sum ^= mat[i];
	return sum;
}

static void gf2_square(uint32_t dst[32], const uint32_t mat[32])
{
	for (int i = 0; i < 32; i++)
		dst[i] = gf2_apply(mat, mat[i]);
}

/* The operator that appends n zero bytes to a raw CRC register. */
static void zeros_operator(uint32_t op[32], size_t n)
{
	uint32_t cur[32], tmp[32];
	bool have = false;

	/* one zero bit: shift right, fold in the polynomial */
	cur[0] = POLY;
	for (int i = 1; i < 32; i++)
		cur[i] = 1u << (i - 1);
	gf2_square(tmp, cur);	/* 2 bits */
	gf2_square(cur, tmp);	/* 4 bits */
	gf2_square(tmp, cur);	/* 8 bits: one byte */
	memcpy(cur, tmp, sizeof(cur));
	while (n) {
		if (n & 1) {
			if (!have) {
				memcpy(op, cur, sizeof(cur));
				have = true;
			} else {
				for (int i = 0; i < 32; i++)
					tmp[i] = gf2_apply(cur, op[i]);
				memcpy(op, tmp, sizeof(tmp));
			}
		}
		n >>= 1;
		if (n) {
			gf2_square(tmp, cur);
			memcpy(cur, tmp, sizeof(cur));
		}
	}
}

__attribute__((constructor)) static void crc32c_init(void)
{
	uint32_t op1[32], op2[32];

	have_sse42 = __builtin_cpu_supports("sse4.2");
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
	zeros_operator(op1, BLOCK);
	zeros_operator(op2, 2 * BLOCK);
	for (int b = 0; b < 4; b++) {
		for (uint32_t v = 0; v < 256; v++) {
			shift_1block[b][v] = gf2_apply(op1, v << (8 * b));
			shift_2blocks[b][v] = gf2_apply(op2, v << (8 * b));
		}
	}
}

static uint32_t shift(uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 255] ^ t[1][(c >> 8) & 255] ^ t[2][(c >> 16) & 255] ^ t[3][c >> 24];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 3 * BLOCK) {
		uint64_t a = c, b = 0, d = 0;

		for (size_t i = 0; i < BLOCK; i += 8) {
			a = __builtin_ia32_crc32di(a, load_u64(p + i));
			b = __builtin_ia32_crc32di(b, load_u64(p + BLOCK + i));
			d = __builtin_ia32_crc32di(d, load_u64(p + 2 * BLOCK + i));
		}
		c = shift(shift_2blocks, (uint32_t)a) ^ shift(shift_1block, (uint32_t)b) ^ (uint32_t)d;
		p += 3 * BLOCK;
		len -= 3 * BLOCK;
	}
	while (len >= 8) {
		c = __builtin_ia32_crc32di(c, load_u64(p));
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
	crc = have_sse42 ? crc_hw(crc, buf, len) : crc_soft(crc, buf, len);
	return ~crc;
}

uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	return ~crc_soft(~crc, buf, len);
}
