/* SPDX-License-Identifier: MIT */
/*
 * test_opts.c - a migration's options and their one table of limits: the
 * defaults pass, every limit's edges are in and one past them is out
 * (with a message naming the field, its range and the value), 0 is "off"
 * only where the table says so, --compress names are checked with a
 * reason, and the post-copy modes and --postcopy-reconnect's limit are
 * what the CLI and the API name.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/opts.h"

static void test_opts_defaults_pass(void **unused)
{
	struct migrate_opts o;
	char err[256] = "";

	(void)unused;
	migrate_opts_defaults(&o);
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), 0);
	assert_int_equal(o.max_downtime_ms, 300);
	assert_int_equal(o.parallel, 1);
	assert_int_equal(o.max_iterations, 30);
	assert_string_equal(o.compress, "none");
	strcpy(o.compress, "auto");
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), 0);
	strcpy(o.compress, "auto:2");
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
}

static void test_opts_limit_edges(void **unused)
{
	(void)unused;
	for (int i = 0; i < MIGRATE_OPT_COUNT; i++) {
		const struct migrate_limit *l = migrate_limit(i);

		assert_non_null(l->field);
		assert_true(l->flag && !strncmp(l->flag, "--", 2));
		assert_true(l->min <= l->max);
		assert_true(migrate_opt_ok(i, l->min));
		assert_true(migrate_opt_ok(i, l->max));
		if (l->max < UINT64_MAX)
			assert_false(migrate_opt_ok(i, l->max + 1));
		if (l->min > 0)
			assert_int_equal(migrate_opt_ok(i, 0), l->zero_off);
		if (l->min > 1)
			assert_false(migrate_opt_ok(i, l->min - 1));
	}
	assert_true(migrate_opt_ok(MIGRATE_OPT_PARALLEL, MIGRATE_MAX_PARALLEL));
	assert_false(migrate_opt_ok(MIGRATE_OPT_PARALLEL, MIGRATE_MAX_PARALLEL + 1));
	assert_true(migrate_opt_ok(MIGRATE_OPT_XBZRLE_CACHE, 0));	/* off */
	assert_false(migrate_opt_ok(MIGRATE_OPT_XBZRLE_CACHE, 4095));	/* less than a page */
	assert_false(migrate_opt_ok(MIGRATE_OPT_MAX_DOWNTIME, 0));
}

static void test_opts_check_names_the_field(void **unused)
{
	struct migrate_opts o;
	char err[256];

	(void)unused;
	migrate_opts_defaults(&o);
	o.parallel = 0;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "field 'parallel' must be between 1 and 8, not 0");
	migrate_opts_defaults(&o);
	o.xbzrle_cache_bytes = 100;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "field 'xbzrle_cache_bytes' must be 0 (off) or between 4096"));
	migrate_opts_defaults(&o);
	o.max_downtime_ms = 3600001;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "max_downtime_ms"));
	migrate_opts_defaults(&o);
	strcpy(o.compress, "zstd:99");
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1 to 22"));
	migrate_opts_defaults(&o);
	o.dirty_track = (enum dirtylog_backend)7;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "dirty tracking"));
}

static void test_opts_postcopy(void **unused)
{
	static const struct {
		const char *name;
		enum migrate_postcopy m;
	} modes[] = {
		{"off", MIGRATE_POSTCOPY_OFF},
		{"auto", MIGRATE_POSTCOPY_AUTO},
		{"now", MIGRATE_POSTCOPY_NOW},
		{"manual", MIGRATE_POSTCOPY_MANUAL},
	};
	static const char *const bad[] = {"", "sideways", "Auto", "on", "true", "now ", "1", NULL};
	const struct migrate_limit *l = migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT);
	enum migrate_postcopy m;
	struct migrate_opts o;
	char err[256];

	(void)unused;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		m = (enum migrate_postcopy)99;
		assert_int_equal(migrate_postcopy_parse(modes[i].name, &m), 0);
		assert_int_equal(m, modes[i].m);
		assert_string_equal(migrate_postcopy_name(modes[i].m), modes[i].name);
	}
	for (size_t i = 0; bad[i]; i++) {
		m = MIGRATE_POSTCOPY_NOW;
		if (migrate_postcopy_parse(bad[i], &m) != -EINVAL)
			fail_msg("post-copy mode '%s' accepted", bad[i]);
		assert_int_equal(m, MIGRATE_POSTCOPY_NOW); /* untouched */
	}
	assert_string_equal(migrate_postcopy_name((enum migrate_postcopy)9), "?");

	/* off by default; the reconnect window: 0 (wait for job resume) to a day, in ms */
	migrate_opts_defaults(&o);
	assert_int_equal(o.postcopy, MIGRATE_POSTCOPY_OFF);
	assert_int_equal(o.postcopy_reconnect_ms, 0);
	assert_string_equal(l->field, "postcopy_reconnect_ms");
	assert_string_equal(l->flag, "--postcopy-reconnect");
	assert_int_equal(l->min, 0);
	assert_int_equal(l->max, 86400000);
	assert_true(migrate_opt_ok(MIGRATE_OPT_POSTCOPY_RECONNECT, 0));
	assert_true(migrate_opt_ok(MIGRATE_OPT_POSTCOPY_RECONNECT, 86400000));
	assert_false(migrate_opt_ok(MIGRATE_OPT_POSTCOPY_RECONNECT, 86400001));
	o.postcopy = MIGRATE_POSTCOPY_MANUAL;
	o.postcopy_reconnect_ms = 30000;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), 0);
	o.postcopy_reconnect_ms = 86400001;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "field 'postcopy_reconnect_ms' must be between 0 and 86400000, "
				 "not 86400001");
	migrate_opts_defaults(&o);
	o.postcopy = (enum migrate_postcopy)4;
	assert_int_equal(migrate_opts_check(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "post-copy mode"));
}

static void test_opts_compress(void **unused)
{
	static const char *const good[] = {"none", "zstd",  "zstd:1", "zstd:22",
					   "lz4",  "lz4:2", "auto",   NULL};
	static const char *const bad[] = {"",	    "foo", "zstd:0", "zstd:23", "zstd:", "zstd:x",
					  "none:1", "raw", "xbzrle", "lz4hc",	"auto:1", "Auto",
					  NULL};
	char err[256];

	(void)unused;
	for (size_t i = 0; good[i]; i++)
		if (migrate_check_compress(good[i], err, sizeof(err)) < 0)
			fail_msg("'%s' refused: %s", good[i], err);
	for (size_t i = 0; bad[i]; i++)
		if (migrate_check_compress(bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(migrate_check_compress("foo", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown compression 'foo' (none, zstd[:LEVEL], lz4, auto)");
	assert_int_equal(migrate_check_compress("zstd:99", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1 to 22"));
	assert_int_equal(migrate_check_compress("auto:3", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "auto takes no level"));
	/* auto is told apart from the fixed codecs, and only the exact name */
	assert_true(migrate_compress_auto("auto"));
	assert_false(migrate_compress_auto("zstd"));
	assert_false(migrate_compress_auto("auto:1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_defaults_pass),
		cmocka_unit_test(test_opts_limit_edges),
		cmocka_unit_test(test_opts_check_names_the_field),
		cmocka_unit_test(test_opts_postcopy),
		cmocka_unit_test(test_opts_compress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
