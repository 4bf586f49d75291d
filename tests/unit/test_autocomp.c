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

/* n more pages of codec id that encoded to out_pp bytes each in ns_pp ns each */
static void add(struct autocomp_input *in, enum codec_id id, uint64_t n, uint64_t out_pp,
		uint64_t ns_pp)
{
	in->codec[id].pages += n;
	in->codec[id].in_bytes += n * PAGE;
	in->codec[id].out_bytes += n * out_pp;
	in->codec[id].ns += n * ns_pp;
}

/* the link moved 64 MiB more at rate bytes/s */
static void link_at(struct autocomp_input *in, double rate)
{
	uint64_t b = 64ull << 20;

	in->link_bytes += b;
	in->link_ns += (uint64_t)((double)b * 1e9 / rate);
}

/* text-like pages: lz4 to 1/3 in 3 us, zstd to 1/4 in 10 us */
static void text_pages(struct autocomp_input *in)
{
	add(in, CODEC_LZ4, 100, PAGE / 3, 3000);
	add(in, CODEC_ZSTD, 100, PAGE / 4, 10000);
}

static void test_autocomp_link_bound_picks_best_ratio(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* 1 Gbit/s: none 30k pages/s, lz4 91k, zstd 100k (CPU-bound; its link allows 122k) */
	text_pages(&in);
	link_at(&in, 119 * MiB);
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
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* 400 MiB/s: none 102k, lz4 307k (link) vs 333k (CPU), zstd 100k (CPU) */
	text_pages(&in);
	link_at(&in, 400 * MiB);
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
	/* a second core makes zstd's 200k still lose to lz4's link-bound 307k */
	in.cpus = 2;
	text_pages(&in);
	link_at(&in, 400 * MiB);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
	assert_true(ac.rate[AUTOCOMP_ZSTD] > 150000.0);
}

static void test_autocomp_fast_link_picks_none(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* 2 GiB/s, uncapped: none 524k pages/s beats lz4's CPU-bound 333k */
	text_pages(&in);
	link_at(&in, 2048 * MiB);
	autocomp_init(&ac, AUTOCOMP_ZSTD);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_CPU_BOUND);
	assert_string_equal(autocomp_reason_name(ac.why), "cpu-bound");
	assert_string_equal(autocomp_choice_name(ac.cur), "none");
}

static void test_autocomp_cap_bounds_the_link(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1, .cap_bytes_per_s = 119 * 1048576 };

	(void)unused;
	/* the writes went at 2 GiB/s, but the cap lets 119 MiB/s through */
	text_pages(&in);
	link_at(&in, 2048 * MiB);
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_true(ac.link_bytes_per_s <= 119 * MiB);
	/* the cap is lifted (the guest is paused): the measured 2 GiB/s decides */
	in.cap_bytes_per_s = 0;
	text_pages(&in);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_CPU_BOUND);
	/* a fresh job with a cap and no link figure yet: the cap is the link */
	memset(&in, 0, sizeof(in));
	in.cpus = 1;
	in.cap_bytes_per_s = 4 * 1048576;
	text_pages(&in);
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
}

static void test_autocomp_incompressible_picks_none(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* random pages: neither codec shrinks them by 1.1x (lz4 sends them raw) */
	add(&in, CODEC_LZ4, 64, PAGE, 1000);
	add(&in, CODEC_ZSTD, 64, PAGE - 100, 5000);
	link_at(&in, 10 * MiB);
	autocomp_init(&ac, AUTOCOMP_LZ4);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_NO_GAIN);
	assert_string_equal(autocomp_reason_name(ac.why), "no-gain");
	/* ruled out, so even a slow link is no reason to stay with lz4 */
	assert_true(ac.rate[AUTOCOMP_LZ4] <= 0.0);
}

static void test_autocomp_no_gain_band(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* mostly random pages: zstd shrinks them 1.08x, lz4 1.04x, on a slow link */
	add(&in, CODEC_LZ4, 64, 3938, 1000);
	add(&in, CODEC_ZSTD, 64, 3793, 5000);
	link_at(&in, 10 * MiB);
	/* from none, 1.08x is not worth starting a compressor for */
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_NO_GAIN);
	/* zstd in use (the pages were text a moment ago) stays above 1.05x */
	autocomp_init(&ac, AUTOCOMP_ZSTD);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
	/* lz4 in use at 1.04x is under the band: dropped */
	autocomp_init(&ac, AUTOCOMP_LZ4);
	add(&in, CODEC_LZ4, 64, 3938, 1000);
	add(&in, CODEC_ZSTD, 64, 4096, 5000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_NO_GAIN);
}

static void test_autocomp_hysteresis_holds(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	/* lz4 to 2000 bytes, zstd 5% smaller: zstd would move 5% more pages */
	add(&in, CODEC_LZ4, 100, 2000, 1000);
	add(&in, CODEC_ZSTD, 100, 1905, 2000);
	link_at(&in, 100 * MiB);
	autocomp_init(&ac, AUTOCOMP_LZ4);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_LZ4);
	assert_int_equal(ac.switches, 0);
	assert_true(ac.rate[AUTOCOMP_ZSTD] > ac.rate[AUTOCOMP_LZ4]);
	/* the next window: 20% smaller, clearly better, and the choice moves */
	add(&in, CODEC_ZSTD, 100, 1600, 2000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.switches, 1);
}

static void test_autocomp_probe_until_measured(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	add(&in, CODEC_LZ4, 100, PAGE / 3, 3000);
	add(&in, CODEC_ZSTD, AUTOCOMP_MIN_PAGES - 1, PAGE / 4, 10000);
	link_at(&in, 10 * MiB);
	autocomp_init(&ac, AUTOCOMP_NONE);
	/* zstd has too few pages: nothing is decided */
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_PROBE);
	assert_string_equal(autocomp_reason_name(ac.why), "probe");
	/* one page more: its window grew to enough (small rounds add up) */
	add(&in, CODEC_ZSTD, 1, PAGE / 4, 10000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);

	/* both codecs known but no link rate yet (and no cap): still probing */
	memset(&in, 0, sizeof(in));
	in.cpus = 1;
	text_pages(&in);
	in.link_bytes = AUTOCOMP_MIN_LINK_BYTES - 1;
	in.link_ns = 1000;
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_NONE);
	assert_int_equal(ac.why, AUTOCOMP_PROBE);
	/* the link moved enough: the estimates kept from before decide */
	link_at(&in, 10 * MiB);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	assert_int_equal(ac.why, AUTOCOMP_LINK_BOUND);
}

static void test_autocomp_new_window_replaces_estimates(void **unused)
{
	struct autocomp ac;
	struct autocomp_input in = { .cpus = 1 };

	(void)unused;
	text_pages(&in);
	link_at(&in, 119 * MiB);
	autocomp_init(&ac, AUTOCOMP_NONE);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	/* the guest's pages turned random: a few pages do not undo 100 pages' figures */
	add(&in, CODEC_LZ4, 16, PAGE, 800);
	add(&in, CODEC_ZSTD, 16, PAGE, 4000);
	assert_int_equal(autocomp_decide(&ac, &in, PAGE), AUTOCOMP_ZSTD);
	/* a round of them does */
	add(&in, CODEC_LZ4, 1000, PAGE, 800);
	add(&in, CODEC_ZSTD, 1000, PAGE, 4000);
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
	for (int k = 0; k < AUTOCOMP_CHOICES; k++)
		assert_int_equal(autocomp_codec_id((enum autocomp_choice)k),
				 autocomp_codec((enum autocomp_choice)k).ops->id);
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
		cmocka_unit_test(test_autocomp_cap_bounds_the_link),
		cmocka_unit_test(test_autocomp_incompressible_picks_none),
		cmocka_unit_test(test_autocomp_no_gain_band),
		cmocka_unit_test(test_autocomp_hysteresis_holds),
		cmocka_unit_test(test_autocomp_probe_until_measured),
		cmocka_unit_test(test_autocomp_new_window_replaces_estimates),
		cmocka_unit_test(test_autocomp_codec_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
