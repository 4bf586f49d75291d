/* SPDX-License-Identifier: MIT */
/*
 * test_drain.c - the pure parts of kvmig drain (tools/drain.h) and its
 * inventory (tools/inventory.h): the order of the VMs, where each goes
 * (most room left, never a destination that failed it or does not answer,
 * slots and room taken by running moves mean "later", no room at all means
 * "stays" with a reason naming each destination), the dry-run plan, the
 * report's JSON, and every rule of the inventory file with its FILE:LINE
 * messages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tools/drain.h"
#include "tools/inventory.h"

#define MiB (1ull << 20)

static struct drain d;

static void dest(unsigned i, const char *name, uint64_t free_bytes, unsigned slots)
{
	struct drain_agent *a = &d.dst[i];

	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->control, sizeof(a->control), "/run/%s.sock", name);
	snprintf(a->uri, sizeof(a->uri), "tcp://127.0.0.1:%u", 4000 + i);
	a->up = true;
	a->mem_free = free_bytes;
	a->slots = slots;
	if (i + 1 > d.ndst)
		d.ndst = i + 1;
}

static struct drain_vm *vm(unsigned i, const char *name, uint64_t mem)
{
	struct drain_vm *v = &d.vm[i];

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->mem_bytes = mem;
	v->dest = -1;
	if (i + 1 > d.nvm)
		d.nvm = i + 1;
	return v;
}

static int setup(void **state)
{
	(void)state;
	memset(&d, 0, sizeof(d));
	snprintf(d.src.name, sizeof(d.src.name), "src");
	d.max_parallel = 2;
	return 0;
}

static void test_drain_sort(void **state)
{
	static const char *const smallest[] = { "b", "d", "a", "c", "e" };
	static const char *const largest[] = { "c", "e", "a", "b", "d" };
	static const char *const calm[] = { "e", "a", "d", "c", "b" };

	(void)state;
	/* a 512M, b 64M, c 1G, d 64M (after b: stable), e 1G */
	for (int k = 0; k < 3; k++) {
		vm(0, "a", 512 * MiB)->dirty_rate = 10;
		vm(1, "b", 64 * MiB)->dirty_rate = 900;
		vm(2, "c", 1024 * MiB)->dirty_rate = 300;
		vm(3, "d", 64 * MiB)->dirty_rate = 200;
		vm(4, "e", 1024 * MiB)->dirty_rate = 0;
		drain_sort(d.vm, d.nvm, (enum drain_order)k);
		for (unsigned i = 0; i < 5; i++)
			assert_string_equal(d.vm[i].name,
					    (k == 0 ? smallest : k == 1 ? largest : calm)[i]);
	}
}

static void test_drain_choose_most_room(void **state)
{
	char why[400];
	struct drain_vm *v;

	(void)state;
	dest(0, "d0", 1024 * MiB, 0);
	dest(1, "d1", 4096 * MiB, 0);
	dest(2, "d2", 2048 * MiB, 0);
	v = vm(0, "g", 512 * MiB);
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 1);
	/* what runs to d1 counts against it */
	d.dst[1].planned = 3000 * MiB;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 2);
	/* a destination that does not report its memory counts as roomy */
	d.dst[0].mem_free = DRAIN_UNKNOWN;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 0);
	/* unknown room on both: the one with less planned for it */
	d.dst[2].mem_free = DRAIN_UNKNOWN;
	d.dst[0].planned = 64 * MiB;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 2);
	d.dst[0].planned = 0;
	d.dst[2].mem_free = 2048 * MiB;
	/* equal room: the one with fewer moves running */
	d.dst[0].mem_free = 2048 * MiB;
	d.dst[1].planned = 0;
	d.dst[1].mem_free = 2048 * MiB;
	d.dst[2].running = 1;
	d.dst[0].running = 2;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 1);
}

static void test_drain_choose_later_or_never(void **state)
{
	char why[400];
	struct drain_vm *v;

	(void)state;
	dest(0, "d0", 1024 * MiB, 1);
	dest(1, "d1", 256 * MiB, 0);
	v = vm(0, "big", 512 * MiB);
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), 0);
	/* d0's only slot is taken: later */
	d.dst[0].running = 1;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), -EBUSY);
	/* its room is taken by what runs to it: later too */
	d.dst[0].running = 0;
	d.dst[0].planned = 768 * MiB;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), -EBUSY);
	/* it failed this VM: never again; d1 is too small: stays */
	d.dst[0].planned = 0;
	v->tries[0].dest = 0;
	v->ntries = 1;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "no destination can take its 512 MiB"));
	assert_non_null(strstr(why, "d0 failed it"));
	assert_non_null(strstr(why, "d1 has 256 MiB free"));
	/* one that does not answer is never chosen and says why */
	v->ntries = 0;
	d.dst[0].up = false;
	snprintf(d.dst[0].why_down, sizeof(d.dst[0].why_down), "connection refused");
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "d0 does not answer (connection refused)"));
	/* no destinations at all */
	d.ndst = 0;
	assert_int_equal(drain_choose(&d, v, why, sizeof(why)), -ENOSPC);
}

static void test_drain_plan_and_report(void **state)
{
	json_t *r, *vms;

	(void)state;
	dest(0, "d0", 1024 * MiB, 1);
	dest(1, "d1", 700 * MiB, 1);
	vm(0, "a", 512 * MiB);
	vm(1, "b", 512 * MiB);
	vm(2, "c", 512 * MiB);
	vm(3, "huge", 4096 * MiB);
	vm(4, "mig", 64 * MiB)->state = DRAIN_STAYED;
	snprintf(d.vm[4].reason, sizeof(d.vm[4].reason), "it is migrating");
	drain_plan(&d);
	/* a to d0 (most room), b to d1 (d0 has 512 left: 700 > 512), c to d0, huge stays */
	assert_int_equal(d.vm[0].dest, 0);
	assert_int_equal(d.vm[1].dest, 1);
	assert_int_equal(d.vm[2].dest, 0);
	assert_int_equal(d.vm[3].state, DRAIN_STAYED);
	assert_non_null(strstr(d.vm[3].reason, "4096 MiB"));
	/* slots do not limit a plan, and are kept */
	assert_int_equal(d.dst[0].slots, 1);
	r = drain_report_json(&d, true);
	vms = json_object_get(r, "vms");
	assert_int_equal(json_array_size(vms), 5);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 0), "result")),
			    "planned");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 1), "to")),
			    "d1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 3), "result")),
			    "stays");
	assert_true(json_is_null(json_object_get(json_array_get(vms, 3), "to")));
	assert_true(json_is_true(json_object_get(r, "dry_run")));
	assert_null(json_object_get(r, "drained"));
	json_decref(r);
	/* a run's report: moved with figures, the failed attempts, drained false */
	d.vm[0].state = DRAIN_MOVED;
	d.vm[0].downtime_ms = 12;
	d.vm[0].transferred_bytes = 5 * MiB;
	d.vm[1].state = DRAIN_MOVED;
	d.vm[1].ntries = 1;
	d.vm[1].tries[0].dest = 0;
	snprintf(d.vm[1].tries[0].error, sizeof(d.vm[1].tries[0].error), "connection reset");
	r = drain_report_json(&d, false);
	vms = json_object_get(r, "vms");
	assert_true(json_is_false(json_object_get(r, "drained")));
	assert_int_equal(json_integer_value(json_object_get(r, "moved")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(vms, 0), "downtime_ms")),
			 12);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(json_array_get(vms, 1), "failed_attempts"), 0),
			"to")),
		"d0");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 4), "reason")),
			    "it is migrating");
	json_decref(r);
}

static void test_drain_order_names(void **state)
{
	enum drain_order o;

	(void)state;
	assert_int_equal(drain_order_parse("least-dirty", &o), 0);
	assert_int_equal(o, DRAIN_ORDER_LEAST_DIRTY);
	assert_int_equal(drain_order_parse("largest", &o), 0);
	assert_int_equal(o, DRAIN_ORDER_LARGEST);
	assert_int_equal(drain_order_parse("biggest", &o), -EINVAL);
	assert_string_equal(drain_order_name(DRAIN_ORDER_SMALLEST), "smallest");
}

/* ---- inventory ---- */

static struct inventory inv;

static void inv_bad(const char *text, const char *want)
{
	char err[300] = "";

	assert_int_equal(inventory_parse(&inv, text, strlen(text), "fleet", err, sizeof(err)),
			 -EINVAL);
	if (!strstr(err, want))
		fail_msg("expected '%s' in '%s'", want, err);
}

static void test_inventory(void **state)
{
	static const char good[] =
		"# the fleet\n"
		"\n"
		"host3   /run/kvmig/host3.sock\n"
		"host4\t/run/kvmig/host4.sock   tls://10.0.0.4:4444   # with a URI\r\n"
		"  h.5-x_y /run/h5.sock tcp://[::1]:7";
	char err[300];

	(void)state;
	assert_int_equal(inventory_parse(&inv, good, strlen(good), "fleet", err, sizeof(err)), 0);
	assert_int_equal(inv.n, 3);
	assert_string_equal(inventory_find(&inv, "host3")->control, "/run/kvmig/host3.sock");
	assert_string_equal(inventory_find(&inv, "host3")->uri, "");
	assert_string_equal(inventory_find(&inv, "host4")->uri, "tls://10.0.0.4:4444");
	assert_string_equal(inventory_find(&inv, "h.5-x_y")->uri, "tcp://[::1]:7");
	assert_null(inventory_find(&inv, "host9"));
	inv_bad("a /x\nb\n", "fleet:2: expected NAME CONTROL-SOCKET [MIGRATION-URI], got 1 field");
	inv_bad("a /x tcp://h:1 extra\n", "fleet:1: expected NAME");
	inv_bad("bad/name /x\n", "fleet:1: agent name 'bad/name'");
	inv_bad("a /x\n\na /y\n", "fleet:3: agent 'a' is listed twice");
	inv_bad("a run/x.sock\n", "fleet:1: control socket 'run/x.sock': expected an absolute path");
	inv_bad("a /x ftp://h\n", "fleet:1:");
	assert_int_equal(inventory_parse(&inv, "a /x\0 b\n", 8, "fleet", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fleet:1: a NUL byte"));
	assert_int_equal(inventory_parse(&inv, "", 0, "fleet", err, sizeof(err)), 0);
	assert_int_equal(inv.n, 0);
	assert_int_equal(inventory_load(&inv, "/nonexistent/fleet", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot open the inventory /nonexistent/fleet"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_drain_sort, setup),
		cmocka_unit_test_setup(test_drain_choose_most_room, setup),
		cmocka_unit_test_setup(test_drain_choose_later_or_never, setup),
		cmocka_unit_test_setup(test_drain_plan_and_report, setup),
		cmocka_unit_test_setup(test_drain_order_names, setup),
		cmocka_unit_test(test_inventory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
