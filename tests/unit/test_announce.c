/* SPDX-License-Identifier: MIT */
/*
 * test_announce.c - the RARP announce: every byte of the 60-byte frame
 * against QEMU's layout (design.md, anchors B), the schedule's send
 * offsets (QEMU's defaults give 0/50/200/450/800 ms; the max caps the
 * gap), refused MACs and schedules, and the interface check's messages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/announce.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static void test_frame_every_byte(void **unused)
{
	static const uint8_t want[ANNOUNCE_FRAME_BYTES] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* destination: broadcast */
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56,	/* source: the guest */
		0x80, 0x35,				/* RARP */
		0x00, 0x01,				/* Ethernet */
		0x08, 0x00,				/* IPv4 */
		0x06, 0x04,				/* lengths */
		0x00, 0x03,				/* reverse request */
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56,	/* sender hardware address */
		0x00, 0x00, 0x00, 0x00,			/* sender protocol address */
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56,	/* target hardware address */
		0x00, 0x00, 0x00, 0x00,			/* target protocol address */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* padding */
	};
	uint8_t f[ANNOUNCE_FRAME_BYTES];

	(void)unused;
	memset(f, 0xaa, sizeof(f));
	assert_int_equal(announce_frame(mac, f), 0);
	assert_memory_equal(f, want, sizeof(want));
}

static void test_frame_bad_mac(void **unused)
{
	static const uint8_t zero[6], bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	uint8_t f[ANNOUNCE_FRAME_BYTES], before[ANNOUNCE_FRAME_BYTES];

	(void)unused;
	memset(f, 0xaa, sizeof(f));
	memcpy(before, f, sizeof(f));
	assert_int_equal(announce_frame(zero, f), -EINVAL);
	assert_int_equal(announce_frame(bcast, f), -EINVAL);
	assert_int_equal(announce_frame(mcast, f), -EINVAL);
	assert_memory_equal(f, before, sizeof(f));	/* untouched */
	/* a locally administered unicast MAC is fine */
	assert_int_equal(announce_frame((const uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, f), 0);
}

static void test_offsets_qemu_defaults(void **unused)
{
	struct announce_sched s;
	uint64_t off[8];

	(void)unused;
	announce_sched_defaults(&s);
	assert_int_equal(s.rounds, 5);
	assert_int_equal(s.initial_ms, 50);
	assert_int_equal(s.step_ms, 100);
	assert_int_equal(s.max_ms, 550);
	memset(off, 0xee, sizeof(off));
	assert_int_equal(announce_offsets(&s, off, 8), 5);
	assert_int_equal(off[0], 0);
	assert_int_equal(off[1], 50);
	assert_int_equal(off[2], 200);
	assert_int_equal(off[3], 450);
	assert_int_equal(off[4], 800);
	assert_int_equal(off[5], 0xeeeeeeeeeeeeeeeeull);	/* only rounds entries */
}

static void test_offsets_max_caps_the_gap(void **unused)
{
	struct announce_sched s = { .rounds = 8, .initial_ms = 50, .step_ms = 100, .max_ms = 550 };
	uint64_t off[8];

	(void)unused;
	/* gaps 50 150 250 350 450 550 550 */
	assert_int_equal(announce_offsets(&s, off, 8), 8);
	assert_int_equal(off[4], 800);
	assert_int_equal(off[5], 1250);
	assert_int_equal(off[6], 1800);
	assert_int_equal(off[7], 2350);
	/* a max below the second gap: 50 then 120 every time */
	s = (struct announce_sched){ .rounds = 4, .initial_ms = 50, .step_ms = 100, .max_ms = 120 };
	assert_int_equal(announce_offsets(&s, off, 8), 4);
	assert_int_equal(off[1], 50);
	assert_int_equal(off[2], 170);
	assert_int_equal(off[3], 290);
	/* step 0: a fixed period */
	s = (struct announce_sched){ .rounds = 3, .initial_ms = 30, .step_ms = 0, .max_ms = 30 };
	assert_int_equal(announce_offsets(&s, off, 8), 3);
	assert_int_equal(off[2], 60);
	/* one round: just the frame at 0; n smaller than rounds fills n */
	s.rounds = 1;
	assert_int_equal(announce_offsets(&s, off, 8), 1);
	assert_int_equal(off[0], 0);
	announce_sched_defaults(&s);
	off[2] = 7;
	assert_int_equal(announce_offsets(&s, off, 2), 5);
	assert_int_equal(off[1], 50);
	assert_int_equal(off[2], 7);
}

static void test_sched_bad(void **unused)
{
	struct announce_sched s;
	uint64_t off[4];
	char msg[200];

	(void)unused;
	announce_sched_defaults(&s);
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), 0);
	s.rounds = 0;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "announce_rounds"));
	assert_int_equal(announce_offsets(&s, off, 4), -EINVAL);
	s.rounds = ANNOUNCE_MAX_ROUNDS + 1;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
	announce_sched_defaults(&s);
	s.initial_ms = 0;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "announce_initial_ms"));
	announce_sched_defaults(&s);
	s.step_ms = ANNOUNCE_MAX_MS + 1;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "announce_step_ms"));
	announce_sched_defaults(&s);
	s.max_ms = 40;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "shorter than announce_initial_ms"));
	s.max_ms = ANNOUNCE_MAX_MS + 1;
	assert_int_equal(announce_sched_check(&s, msg, sizeof(msg)), -EINVAL);
}

static void test_iface_check_names(void **unused)
{
	struct announce_sched s;
	struct announcer *a = (struct announcer *)1;
	char msg[200] = "";

	(void)unused;
	assert_int_equal(announce_iface_check("kvmig-no-such", msg, sizeof(msg)), -ENODEV);
	assert_string_equal(msg, "no interface 'kvmig-no-such' on this host");
	assert_int_equal(announce_iface_check("", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(announce_iface_check("a-name-much-too-long", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(announce_iface_check("a/b", msg, sizeof(msg)), -EINVAL);
	announce_sched_defaults(&s);
	assert_int_equal(announce_start("kvmig-no-such", &s, mac, 0, &a, msg, sizeof(msg)), -ENODEV);
	assert_null(a);
	s.rounds = 0;
	assert_int_equal(announce_start("lo", &s, mac, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_null(a);
	announce_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_every_byte),
		cmocka_unit_test(test_frame_bad_mac),
		cmocka_unit_test(test_offsets_qemu_defaults),
		cmocka_unit_test(test_offsets_max_caps_the_gap),
		cmocka_unit_test(test_sched_bad),
		cmocka_unit_test(test_iface_check_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
