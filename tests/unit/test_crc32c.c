/* SPDX-License-Identifier: MIT */
/* test_crc32c.c - the fast CRC32C equals the table one for every length and split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"

static void test_crc32c_known_vector(void **unused)
{
	(void)unused;
	/* the CRC32C check value of "123456789" */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c_portable(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_crc32c_matches_portable(void **unused)
{
	size_t max = 3 * 4096 * 3 + 77;
	uint8_t *buf = malloc(max);
	uint64_t x = 88172645463325252ull;

	(void)unused;
	for (size_t i = 0; i < max; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (size_t len = 0; len < max; len += (len < 64 ? 1 : 4093)) {
		for (size_t off = 0; off < 9; off += 4)
			if (off + len <= max)
				assert_int_equal(crc32c(0, buf + off, len),
						 crc32c_portable(0, buf + off, len));
	}
	/* continuing a CRC across a split equals one pass */
	for (size_t cut = 0; cut < max; cut += 1237)
		assert_int_equal(crc32c(crc32c(0, buf, cut), buf + cut, max - cut),
				 crc32c_portable(0, buf, max));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known_vector),
		cmocka_unit_test(test_crc32c_matches_portable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
