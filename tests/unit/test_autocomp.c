/* SPDX-License-Identifier: MIT */
/*
 * test_autocomp.c - the --compress auto decision on made-up measurements:
 * a slow link picks the codec that shrinks most, a fast link (or a slow
 * CPU) picks none, incompressible pages pick none, a small lead does not
 * switch, and nothing is decided until every codec was measured.
 */
#include "migrate/autocomp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define PAGE 4096u
#define MiB (1024.0 * 1024.0)

/* n pages that encoded to out_pp bytes each in ns_pp ns each */
static struct autocomp_sample sample(uint64_t n, uint64_t out_pp, uint64_t ns_pp)
{
	return (struct autocomp_sample){
		.pages = n, .in_bytes = n * PAGE, .out_bytes = n * out_pp, .ns = n * ns_pp,
	};
}

/* text-like pages: lz4 to 1/3 in 3 us, zstd to 1/4 in 10 us */
static struct autocomp_input text_pages(double link, unsigned cpus)
{
	struct autocomp_input in = { .link_bytes_per_s = link, .cpus = cpus };

	in.s[AUTOCOMP_LZ4] = sample(100, PAGE / 3, 3000);
	in.s[AUTOCOMP_ZSTD] = sample(100, PAGE / 4, 10000);
	return in;
}

static void test_autocomp_link_bound_picks_best_ratio(void **unused)
{
	struct autocomp ac;
	/* 1 Gbit/s: none 29k pages/s, lz4 89k, zstd 100k (CPU-bound at 100k, link 119k) */
	struct autocomp_input in = text_pages(119 * MiB, 1);

	(void)unused;
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.cur, AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
	assert_string_equal(autocomp_reason_name(ac.why), "link-bound");
	assert_true(ac.rate[AUTOCOMP_ZSTD] > ac.rate[AUTOCOMP_LZ4]);
	assert_true(ac.rate[AUTOCOMP_LZ4] > ac.rate[AUTOCOMP_NONE]);
	assert_int_equal(ac.switches, 1);
}

static void test_autocomp_cpu_bounds_zstd_picks_lz4(void **unused)
{
	struct autocomp ac;
	/* 400 MiB/s: none 102k, lz4 307k (link) vs 333k (CPU), zstd 100k (CPU) */
	struct autocomp_input in = text_pages(400 * MiB, 1);

	(void)unused;
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
	/* a second core makes zstd's 200k still lose to lz4's link-bound 307k */
	in.cpus = 2;
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
}

static void test_autocomp_fast_link_picks_none(void **unused)
{
	struct autocomp ac;
	/* 2 GiB/s, uncapped: none 524k pages/s beats lz4's CPU-bound 333k */
	struct autocomp_input in = text_pages(2048 * MiB, 1);

	(void)unused;
	autocomp_init(&ac, AUTOCOMP_ZSTD);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_CPU_BOUND);
	assert_string_equal(autocomp_reason_name(ac.why), "cpu-bound");
	assert_string_equal(autocomp_choice_name(ac.cur), "none");
}

static void test_autocomp_incompressible_picks_none(void **unused)
{
	struct autocomp ac;
	/* random pages: neither codec shrinks them (sent raw: PAGE bytes each) */
	struct autocomp_input in = { .link_bytes_per_s = 10 * MiB, .cpus = 1 };

	(void)unused;
	in.s[AUTOCOMP_LZ4] = sample(64, PAGE, 1000);
	in.s[AUTOCOMP_ZSTD] = sample(64, PAGE - 100, 5000);
	autocomp_init(&ac, AUTOCOMP_LZ4);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_NO_GAIN);
	assert_string_equal(autocomp_reason_name(ac.why), "no-gain");
	/* ruled out, so even a slow link is no reason to stay with lz4 */
	assert_true(ac.rate[AUTOCOMP_LZ4] <= 0.0);
}

static void test_autocomp_hysteresis_holds(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .link_bytes_per_s = 100 * MiB, .cpus = 1 };

	(void)unused;
	/* lz4 to 2000 bytes, zstd 5% smaller: zstd would move 5% more pages */
	in.s[AUTOCOMP_LZ4] = sample(100, 2000, 1000);
	in.s[AUTOCOMP_ZSTD] = sample(100, 1905, 2000);
	autocomp_init(&ac, AUTOCOMP_LZ4);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
	assert_int_equal(ac.switches, 0);
	assert_true(ac.rate[AUTOCOMP_ZSTD] > ac.rate[AUTOCOMP_LZ4]);
	/* 20% smaller: now it is clearly better, and the choice moves */
	in.s[AUTOCOMP_ZSTD] = sample(100, 1600, 2000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.switches, 1);
}

static void test_autocomp_probe_until_measured(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = text_pages(10 * MiB, 1);

	(void)unused;
	autocomp_init(&ac, AUTOCOMP_NONE);
	/* zstd has too few pages this window: nothing is decided */
	in.s[AUTOCOMP_ZSTD] = sample(AUTOCOMP_MIN_PAGES - 1, PAGE / 4, 10000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_PROBE);
	assert_string_equal(autocomp_reason_name(ac.why), "probe");
	/* no link rate yet either: still probing, even with both codecs known */
	autocomp_init(&ac, AUTOCOMP_NONE);
	in = text_pages(0.0, 1);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_PROBE);
	/* the link is measured: the estimates kept from before decide */
	memset(&in, 0, sizeof(in));
	in.link_bytes_per_s = 10 * MiB;
	in.cpus = 1;
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
}

static void test_autocomp_new_window_replaces_estimates(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = text_pages(119 * MiB, 1);

	(void)unused;
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	/* the guest's pages turned random: the next window says so */
	in.s[AUTOCOMP_LZ4] = sample(50, PAGE, 800);
	in.s[AUTOCOMP_ZSTD] = sample(50, PAGE, 4000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_NO_GAIN);
	assert_int_equal(ac.switches, 2);
}

static void test_autocomp_codec_configs(void **unused)
{
	struct codec_config c;

	(void)unused;
	c = autocomp_codec(AUTOCOMP_NONE);
	assert_int_equal(c.ops->id, CODEC_RAW);
	c = autocomp_codec(AUTOCOMP_LZ4);
	assert_int_equal(c.ops->id, CODEC_LZ4);
	assert_int_equal(c.level, 1);
	c = autocomp_codec(AUTOCOMP_ZSTD);
	assert_int_equal(c.ops->id, CODEC_ZSTD);
	assert_int_equal(c.level, 1);
	assert_string_equal(autocomp_choice_name(AUTOCOMP_ZSTD), "zstd");
	assert_string_equal(autocomp_choice_name(AUTOCOMP_CHOICES), "?");
	assert_string_equal(autocomp_reason_name(AUTOCOMP_REASONS), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_autocomp_link_bound_picks_best_ratio),
		cmocka_unit_test(test_autocomp_cpu_bounds_zstd_picks_lz4),
		cmocka_unit_test(test_autocomp_fast_link_picks_none),
		cmocka_unit_test(test_autocomp_incompressible_picks_none),
		cmocka_unit_test(test_autocomp_hysteresis_holds),
		cmocka_unit_test(test_autocomp_probe_until_measured),
		cmocka_unit_test(test_autocomp_new_window_replaces_estimates),
		cmocka_unit_test(test_autocomp_codec_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
