/* SPDX-License-Identifier: MIT */
/*
 * test_registry.c - the agent's registry (tools/registry.h) without KVM:
 * names are checked, an incoming reservation holds its name against
 * duplicates, counts against the limit, is in state "incoming", keeps
 * insertion order, and is dropped by registry_remove without a VM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tools/registry.h"

static void test_registry_names(void **state)
{
	char err[256], longname[VM_NAME_MAX + 1];

	(void)state;
	assert_int_equal(registry_check_name("web-1.a_b", err, sizeof(err)), 0);
	assert_int_equal(registry_check_name("", err, sizeof(err)), -EINVAL);
	assert_int_equal(registry_check_name("-x", err, sizeof(err)), -EINVAL);
	assert_int_equal(registry_check_name(".x", err, sizeof(err)), -EINVAL);
	assert_int_equal(registry_check_name("a/b", err, sizeof(err)), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(registry_check_name(longname, err, sizeof(err)), -EINVAL);
}

static void test_registry_reservations(void **state)
{
	struct registry *r = registry_new();
	struct registry_entry *e;
	char name[16];

	(void)state;
	assert_non_null(r);
	assert_int_equal(registry_reserve(r, "a", 64 << 20, REG_ORIGIN_MIGRATE, "tcp:1.2.3.4:5"),
			 0);
	assert_int_equal(registry_reserve(r, "a", 64 << 20, REG_ORIGIN_MIGRATE, NULL), -EEXIST);
	assert_int_equal(registry_reserve(r, "b", 16 << 20, REG_ORIGIN_MIGRATE, NULL), 0);
	assert_int_equal(registry_count(r), 2);
	e = registry_find(r, "a");
	assert_non_null(e);
	assert_null(e->vm);
	assert_int_equal(e->phase, REG_PHASE_INCOMING);
	assert_int_equal(e->mem_bytes, 64 << 20);
	assert_string_equal(e->source, "tcp:1.2.3.4:5");
	assert_string_equal(registry_state_name(e), "incoming");
	assert_string_equal(registry_at(r, 1)->name, "b");
	assert_null(registry_at(r, 2));

	/* dropping a reservation gives back no VM */
	assert_null(registry_remove(r, "a"));
	assert_null(registry_find(r, "a"));
	assert_int_equal(registry_count(r), 1);
	assert_string_equal(registry_at(r, 0)->name, "b");
	assert_null(registry_remove(r, "a"));

	/* reservations count against the limit */
	for (int i = 1; i < REGISTRY_MAX_VMS; i++) {
		snprintf(name, sizeof(name), "v%d", i);
		assert_int_equal(registry_reserve(r, name, 16 << 20, REG_ORIGIN_MIGRATE, NULL), 0);
	}
	assert_int_equal(registry_count(r), REGISTRY_MAX_VMS);
	assert_int_equal(registry_reserve(r, "one-more", 16 << 20, REG_ORIGIN_MIGRATE, NULL),
			 -ENOSPC);
	registry_free(r); /* frees reservations; no VM to destroy */
	registry_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_names),
		cmocka_unit_test(test_registry_reservations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
