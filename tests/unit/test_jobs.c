/* SPDX-License-Identifier: MIT */
/*
 * test_jobs.c - the agent's job table (tools/jobs.h) without running a
 * migration: the statistics object carries exactly the names of design.md
 * plus the documented extensions (every postcopy key, each from its own
 * field), "error" only for failed and cancelled jobs (not for the post-copy
 * states); --compress values are checked; an empty table answers -ENOENT;
 * an event object (events.subscribe) carries exactly its type's keys,
 * named as job.info names them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tools/jobs.h"

static void expect_keys(json_t *o, const char *const *keys)
{
	const char *key;
	json_t *v;
	size_t n = 0;

	for (size_t i = 0; keys[i]; i++) {
		if (!json_object_get(o, keys[i]))
			fail_msg("key '%s' is missing", keys[i]);
		n++;
	}
	json_object_foreach(o, key, v)
	{
		bool known = false;

		(void)v;
		for (size_t i = 0; keys[i]; i++)
			known |= !strcmp(keys[i], key);
		if (!known)
			fail_msg("unexpected key '%s'", key);
	}
	assert_int_equal(json_object_size(o), n);
}

static void test_jobs_stats_names(void **state)
{
	static const char *const top[] = {
		"name",
		"uri",
		"status",
		"total_ms",
		"downtime_ms",
		"setup_ms",
		"expected_downtime_ms",
		"transferred_bytes",
		"total_bytes",
		"remaining_bytes",
		"duplicate_pages",
		"normal_pages",
		"dirty_sync_count",
		"dirty_pages_rate",
		"mbps",
		"xbzrle",
		"compression",
		"postcopy",
		"transport",
		"announce",
		"switchover",
		"round",
		"throttle_pct",
		"bandwidth",
		"bandwidth_limit",
		"ring_overflows",
		"parallel",
		"verified",
		NULL,
	};
	static const char *const xbzrle[] = {"cache_size", "bytes",    "pages",
					     "cache_miss", "overflow", NULL};
	static const char *const comp[] = {"ratio", "busy", "pages", "mode", "codec", "reason",
					   "switches", NULL};
	static const char *const post[] = {"requests",
					   "pages_pushed",
					   "fault_latency_us_p50",
					   "p99",
					   "fault_latency_us_p99",
					   "blocked_ms",
					   "bytes_after_switchover",
					   "pages_missing",
					   "reconnects",
					   "active",
					   NULL};
	static const char *const transport[] = {"kind", "cipher", "ktls", NULL};
	static const char *const announce[] = {"frames", "first_ms", NULL};
	/* the downtime's timeline: each key with its own field (value = its index + 1) */
	static const char *const sw[] = {"start_us", "paused_us", "synced_us",  "pages_us",
					 "state_us", "sent_us",   "ready_us",   "resumed_us",
					 "pages",    "bytes",     "state_bytes", "expected_us",
					 "reason",   NULL};
	struct migrate_stats st;
	json_t *o;

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(st.status, sizeof(st.status), "active");
	st.transferred_bytes = 123;
	st.mbps = 419.4304;
	st.xbzrle.cache_size = 64 << 20;
	st.postcopy.requests = 11;
	st.postcopy.pages_pushed = 12;
	st.postcopy.fault_latency_us_p50 = 13;
	st.postcopy.fault_latency_us_p99 = 77;
	st.postcopy.blocked_ms = 14;
	st.postcopy.bytes_after_switchover = 15;
	st.postcopy.pages_missing = 16;
	st.postcopy.reconnects = 17;
	st.postcopy.active = true;
	st.verified = true;
	st.announce.frames = 5;
	st.announce.first_us = 1234;
	snprintf(st.transport.kind, sizeof(st.transport.kind), "tls");
	snprintf(st.transport.cipher, sizeof(st.transport.cipher), "TLS_AES_128_GCM_SHA256");
	st.switchover.start_us = 1;
	st.switchover.paused_us = 2;
	st.switchover.synced_us = 3;
	st.switchover.pages_us = 4;
	st.switchover.state_us = 5;
	st.switchover.sent_us = 6;
	st.switchover.ready_us = 7;
	st.switchover.resumed_us = 8;
	st.switchover.pages = 9;
	st.switchover.bytes = 10;
	st.switchover.state_bytes = 11;
	st.switchover.expected_us = 12;
	snprintf(st.switchover.reason, sizeof(st.switchover.reason), "dirty set stopped shrinking");
	snprintf(st.compression.mode, sizeof(st.compression.mode), "auto");
	snprintf(st.compression.codec, sizeof(st.compression.codec), "zstd");
	snprintf(st.compression.reason, sizeof(st.compression.reason), "link-bound");
	st.compression.switches = 3;
	o = jobs_stats_json("web1", "tcp://h:1", &st);
	assert_non_null(o);
	expect_keys(json_object_get(o, "switchover"), sw);
	for (size_t i = 0; sw[i + 1]; i++) {
		json_t *v = json_object_get(json_object_get(o, "switchover"), sw[i]);

		if (!json_is_integer(v) || json_integer_value(v) != (json_int_t)i + 1)
			fail_msg("switchover.%s is not %zu", sw[i], i + 1);
	}
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(o, "switchover"), "reason")),
		"dirty set stopped shrinking");
	expect_keys(o, top);
	expect_keys(json_object_get(o, "xbzrle"), xbzrle);
	expect_keys(json_object_get(o, "compression"), comp);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "compression"),
							      "mode")),
			    "auto");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "compression"),
							      "codec")),
			    "zstd");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "compression"),
							      "reason")),
			    "link-bound");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "compression"),
							    "switches")),
			 3);
	expect_keys(json_object_get(o, "postcopy"), post);
	expect_keys(json_object_get(o, "transport"), transport);
	expect_keys(json_object_get(o, "announce"), announce);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "announce"), "frames")),
			 5);
	assert_true(json_real_value(json_object_get(json_object_get(o, "announce"), "first_ms")) >
			    1.233 &&
		    json_real_value(json_object_get(json_object_get(o, "announce"), "first_ms")) <
			    1.235);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(o, "transport"), "cipher")),
		"TLS_AES_128_GCM_SHA256");
	assert_false(json_is_true(json_object_get(json_object_get(o, "transport"), "ktls")));
	assert_string_equal(json_string_value(json_object_get(o, "status")), "active");
	assert_int_equal(json_integer_value(json_object_get(o, "transferred_bytes")), 123);
	assert_true(json_is_real(json_object_get(o, "mbps")));
	assert_true(json_real_value(json_object_get(o, "mbps")) > 419.42 &&
		    json_real_value(json_object_get(o, "mbps")) < 419.44);
	{
		/* every postcopy key carries its own field */
		static const struct {
			const char *key;
			json_int_t v;
		} pv[] = {
			{"requests", 11},     {"pages_pushed", 12},
			{"fault_latency_us_p50", 13}, {"p99", 77},
			{"fault_latency_us_p99", 77}, {"blocked_ms", 14},
			{"bytes_after_switchover", 15}, {"pages_missing", 16},
			{"reconnects", 17},
		};
		json_t *p = json_object_get(o, "postcopy");

		for (size_t i = 0; i < sizeof(pv) / sizeof(pv[0]); i++) {
			json_t *v = json_object_get(p, pv[i].key);

			if (!json_is_integer(v) || json_integer_value(v) != pv[i].v)
				fail_msg("postcopy.%s is not %lld", pv[i].key,
					 (long long)pv[i].v);
		}
		assert_true(json_is_true(json_object_get(p, "active")));
	}
	assert_true(json_is_true(json_object_get(o, "verified")));
	json_decref(o);

	/* failed: an "error", even an empty one, and never invalid UTF-8 */
	snprintf(st.status, sizeof(st.status), "failed");
	snprintf(st.error, sizeof(st.error), "the destination refused: bad \xff byte");
	o = jobs_stats_json(NULL, NULL, &st);
	assert_null(json_object_get(o, "name"));
	assert_string_equal(json_string_value(json_object_get(o, "error")),
			    "the destination refused: bad ? byte");
	json_decref(o);
	snprintf(st.status, sizeof(st.status), "cancelled");
	st.error[0] = '\0';
	o = jobs_stats_json(NULL, NULL, &st);
	assert_string_equal(json_string_value(json_object_get(o, "error")), "unknown error");
	json_decref(o);
	snprintf(st.status, sizeof(st.status), "completed");
	o = jobs_stats_json(NULL, NULL, &st);
	assert_null(json_object_get(o, "error"));
	json_decref(o);

	/* a post-copy waiting to resume says why; without a reason, no "error" */
	snprintf(st.status, sizeof(st.status), "postcopy-paused");
	snprintf(st.error, sizeof(st.error), "the link broke");
	o = jobs_stats_json(NULL, NULL, &st);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "postcopy-paused");
	assert_string_equal(json_string_value(json_object_get(o, "error")), "the link broke");
	json_decref(o);
	st.error[0] = '\0';
	o = jobs_stats_json(NULL, NULL, &st);
	assert_null(json_object_get(o, "error"));
	json_decref(o);
	snprintf(st.status, sizeof(st.status), "postcopy");
	snprintf(st.error, sizeof(st.error), "stale");
	o = jobs_stats_json(NULL, NULL, &st);
	assert_null(json_object_get(o, "error"));
	json_decref(o);
	st.postcopy.active = false;
	o = jobs_stats_json(NULL, NULL, &st);
	assert_true(json_is_false(json_object_get(json_object_get(o, "postcopy"), "active")));
	json_decref(o);
}

static void test_jobs_set_uri(void **state)
{
	struct jobs *t = jobs_new();

	(void)state;
	assert_non_null(t);
	/* only a running job's destination can change */
	assert_int_equal(jobs_set_uri(t, "x", "tcp://h:2"), -ENOENT);
	jobs_free(t);
}

static void test_jobs_empty_table(void **state)
{
	struct jobs *t = jobs_new();
	struct migrate_stats st;
	bool running = true;

	(void)state;
	assert_non_null(t);
	assert_false(jobs_any_running(t));
	assert_null(jobs_running(t, "x"));
	assert_int_equal(jobs_get(t, "x", &st, NULL, &running), -ENOENT);
	jobs_forget(t, "x");
	jobs_reap(t, NULL, NULL);
	jobs_shutdown(t, NULL, NULL);
	jobs_free(t);
	jobs_free(NULL);
}

/*
 * The event objects: each type carries exactly its documented keys, the
 * statistics among them named as jobs_stats_json() names them and with
 * the event's values; "error" for failed and cancelled even without a
 * message; "lost" only when events were lost.
 */
static void test_jobs_event_json(void **state)
{
	static const char *const round_keys[] = {
		"event", "time_ms", "vm", "to", "status", "round", "transferred_bytes",
		"remaining_bytes", "dirty_pages_rate", "mbps", "bandwidth",
		"expected_downtime_ms", "throttle_pct", "codec", "codec_reason", NULL};
	static const char *const completed_keys[] = {
		"event", "time_ms", "vm", "to", "status", "total_ms", "downtime_ms",
		"transferred_bytes", "verified", NULL};
	static const char *const failed_keys[] = {
		"event", "time_ms", "vm", "to", "status", "total_ms", "transferred_bytes",
		"error", "lost", NULL};
	static const char *const switch_keys[] = {
		"event", "time_ms", "vm", "to", "status", "mode", "rounds", "transferred_bytes",
		"remaining_bytes", "reason", "expected_downtime_ms", "codec", "codec_reason", NULL};
	struct migrate_stats st;
	struct migrate_event ev;
	json_t *o, *stats;

	(void)state;
	memset(&st, 0, sizeof(st));
	stats = jobs_stats_json("g1", "tcp://h:1", &st);
	assert_non_null(stats);

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.type, sizeof(ev.type), "round");
	snprintf(ev.status, sizeof(ev.status), "active");
	ev.time_ms = 1700000000123ull;
	ev.round = 3;
	ev.transferred_bytes = 12345;
	ev.remaining_bytes = 4096;
	ev.dirty_pages_rate = 250;
	ev.mbps = 12.5;
	ev.bandwidth = 8 << 20;
	ev.expected_downtime_ms = 40;
	ev.throttle_pct = 20;
	snprintf(ev.codec, sizeof(ev.codec), "lz4");
	snprintf(ev.codec_reason, sizeof(ev.codec_reason), "link-bound");
	o = jobs_event_json("g1", "tcp://h:1", &ev, 0);
	expect_keys(o, round_keys);
	assert_string_equal(json_string_value(json_object_get(o, "event")), "round");
	assert_string_equal(json_string_value(json_object_get(o, "vm")), "g1");
	assert_string_equal(json_string_value(json_object_get(o, "to")), "tcp://h:1");
	assert_int_equal(json_integer_value(json_object_get(o, "time_ms")), 1700000000123ll);
	assert_int_equal(json_integer_value(json_object_get(o, "round")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "transferred_bytes")), 12345);
	assert_int_equal(json_integer_value(json_object_get(o, "expected_downtime_ms")), 40);
	assert_int_equal(json_integer_value(json_object_get(o, "throttle_pct")), 20);
	assert_true(json_real_value(json_object_get(o, "mbps")) > 12.49);
	assert_string_equal(json_string_value(json_object_get(o, "codec")), "lz4");
	assert_string_equal(json_string_value(json_object_get(o, "codec_reason")), "link-bound");
	/* every statistic has the name job.info gives it (codec*: compression.codec, .reason) */
	for (size_t i = 5; round_keys[i] && strcmp(round_keys[i], "codec"); i++)
		if (!json_object_get(stats, round_keys[i]))
			fail_msg("'%s' is not a job.info name", round_keys[i]);
	assert_non_null(json_object_get(json_object_get(stats, "compression"), "codec"));
	assert_non_null(json_object_get(json_object_get(stats, "compression"), "reason"));
	json_decref(o);

	snprintf(ev.type, sizeof(ev.type), "switchover");
	snprintf(ev.mode, sizeof(ev.mode), "stop-and-copy");
	ev.rounds = 4;
	snprintf(ev.reason, sizeof(ev.reason), "max-iterations");
	o = jobs_event_json("g1", "tcp://h:1", &ev, 0);
	expect_keys(o, switch_keys);
	assert_string_equal(json_string_value(json_object_get(o, "mode")), "stop-and-copy");
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "max-iterations");
	assert_int_equal(json_integer_value(json_object_get(o, "rounds")), 4);
	json_decref(o);

	snprintf(ev.type, sizeof(ev.type), "completed");
	ev.verified = true;
	ev.total_ms = 900;
	ev.downtime_ms = 33;
	o = jobs_event_json("g1", "tcp://h:1", &ev, 0);
	expect_keys(o, completed_keys);
	assert_true(json_is_true(json_object_get(o, "verified")));
	assert_int_equal(json_integer_value(json_object_get(o, "downtime_ms")), 33);
	json_decref(o);

	/* no message recorded: still an error key */
	snprintf(ev.type, sizeof(ev.type), "failed");
	o = jobs_event_json("g1", "tcp://h:1", &ev, 2);
	expect_keys(o, failed_keys);
	assert_string_equal(json_string_value(json_object_get(o, "error")), "unknown error");
	assert_int_equal(json_integer_value(json_object_get(o, "lost")), 2);
	json_decref(o);
	snprintf(ev.type, sizeof(ev.type), "cancelled");
	snprintf(ev.error, sizeof(ev.error), "cancelled by the user");
	o = jobs_event_json("g1", "tcp://h:1", &ev, 0);
	assert_string_equal(json_string_value(json_object_get(o, "error")), "cancelled by the user");
	assert_null(json_object_get(o, "lost"));
	json_decref(o);
	json_decref(stats);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_stats_names),
		cmocka_unit_test(test_jobs_set_uri),
		cmocka_unit_test(test_jobs_empty_table),
		cmocka_unit_test(test_jobs_event_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
