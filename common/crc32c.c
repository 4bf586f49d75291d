/* SPDX-License-Identifier: MIT */
#include "common/crc32c.h"

#include <stdbool.h>
#include <string.h>

#include "common/buf.h"

static uint32_t table[256];
static bool have_sse42;

__attribute__((constructor)) static void crc32c_init(void)
{
	have_sse42 = __builtin_cpu_supports("sse4.2");
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
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
