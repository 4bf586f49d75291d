/* SPDX-License-Identifier: MIT */
/* test_parse.c - sizes with K/M/G suffixes, strict integers, guest arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/parse.h"
#include "vm/guest.h"
#include "vm/guest_abi.h"

static void test_parse_size_suffixes(void **unused)
{
	uint64_t v;

	(void)unused;
	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("64M", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(parse_size("4g", &v), 0);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(parse_size("16KiB", &v), 0);
	assert_int_equal(v, 16ull << 10);
	assert_int_equal(parse_size("2GB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(parse_size("1T", &v), 0);
	assert_int_equal(v, 1ull << 40);
}

static void test_parse_size_rejects(void **unused)
{
	uint64_t v;

	(void)unused;
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("-1M", &v), -EINVAL);
	assert_int_equal(parse_size("12Q", &v), -EINVAL);
	assert_int_equal(parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(parse_size("64M junk", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", &v), -ERANGE);
}

static void test_parse_u64(void **unused)
{
	uint64_t v;

	(void)unused;
	assert_int_equal(parse_u64("0x1f", &v), 0);
	assert_int_equal(v, 31);
	assert_int_equal(parse_u64("18446744073709551615", &v), 0);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_u64("0x", &v), -EINVAL);
	assert_int_equal(parse_u64("12a", &v), -EINVAL);
}

static void test_parse_guest_args(void **unused)
{
	struct guest_params gp;
	char err[200];

	(void)unused;
	assert_int_equal(guest_parse("randdirty", "workset=8M,rate=1000,seed=7,hot=50", 64ull << 20,
				     2, &gp, err, sizeof(err)),
			 0);
	assert_int_equal(gp.kind, GUEST_KIND_RANDDIRTY);
	assert_int_equal(gp.ws_bytes, 8ull << 20);
	assert_int_equal(gp.share_pages, (8ull << 20) / 4096 / 2);
	assert_int_equal(gp.rate, 1000);
	assert_int_equal(gp.seed, 7);
	assert_int_equal(gp.hot_pct, 50);
	/* default working set: 16 MiB, or RAM - 4 MiB on small guests */
	assert_int_equal(guest_parse("memcheck", "", 16ull << 20, 1, &gp, err, sizeof(err)), 0);
	assert_int_equal(gp.ws_bytes, 12ull << 20);
	/* memcheck's stride is coprime to the share, so a sweep sees every page */
	for (unsigned n = 1; n < 600; n++) {
		char args[64];
		uint64_t a, b;

		snprintf(args, sizeof(args), "workset=%uK", n * 4);
		assert_int_equal(guest_parse("memcheck", args, 64ull << 20, 1, &gp, err, sizeof(err)),
				 0);
		assert_int_equal(gp.share_pages, n);
		assert_true(gp.stride >= 1 && (gp.stride < n || n == 1));
		for (a = gp.stride, b = n; b;) {
			uint64_t t = a % b;

			a = b;
			b = t;
		}
		assert_int_equal(a, 1);
	}
	assert_int_equal(guest_parse("doom", "", 64ull << 20, 1, &gp, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown guest"));
	assert_int_equal(guest_parse("seqdirty", "workset=1G", 64ull << 20, 1, &gp, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "exceeds"));
	assert_int_equal(guest_parse("seqdirty", "speed=3", 64ull << 20, 1, &gp, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(guest_parse("seqdirty", "rate", 64ull << 20, 1, &gp, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(guest_parse("idle", "hz=5", 64ull << 20, 1, &gp, err, sizeof(err)), -EINVAL);
	assert_int_equal(guest_parse("memcheck", "workset=4K", 64ull << 20, 2, &gp, err, sizeof(err)),
			 -EINVAL);
}

static void test_parse_gpa_layout(void **unused)
{
	(void)unused;
	assert_int_equal(guest_ram_off_to_gpa(0), 0);
	assert_int_equal(guest_ram_off_to_gpa((3ull << 30) - 4096), (3ull << 30) - 4096);
	assert_int_equal(guest_ram_off_to_gpa(3ull << 30), 4ull << 30);
	assert_int_equal(guest_low_ram_bytes(4ull << 30), 3ull << 30);
	assert_int_equal(guest_low_ram_bytes(64ull << 20), 64ull << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_suffixes), cmocka_unit_test(test_parse_size_rejects),
		cmocka_unit_test(test_parse_u64),	    cmocka_unit_test(test_parse_guest_args),
		cmocka_unit_test(test_parse_gpa_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
