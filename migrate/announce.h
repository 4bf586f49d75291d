/* SPDX-License-Identifier: MIT */
/*
 * announce.h - the RARP announce after a migration: tell the network
 * where the guest's MAC went.
 *
 * The last stage of the data flow, on the destination: once the guest runs
 * there, send QEMU's announce frame (design.md; anchors "B. RARP announce
 * frame") for the guest's MAC on one host interface, in rounds with a
 * growing gap: round k+1 leaves min(initial + k x step, max) ms after
 * round k, so QEMU's defaults (5 rounds, 50, +100, at most 550 ms) send at
 * 0, 50, 200, 450 and 800 ms. The switches on the way learn the MAC on the
 * port the frames came in by, and steer the guest's traffic there.
 *
 * Three parts: announce_frame() and announce_offsets() are pure (any
 * thread, unit-tested byte by byte); announce_iface_check() is what a
 * destination asks before it accepts a migration (the interface exists);
 * a struct announcer is one sender thread, started right after the guest
 * resumes, whose first frame leaves at once. The thread that started it
 * waits for it (announce_wait) and frees it; any thread may cancel it.
 * The sender copies the MAC and never touches the VM, so the VM may go
 * away while it runs.
 */
#ifndef KVMIG_MIGRATE_ANNOUNCE_H
#define KVMIG_MIGRATE_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define ANNOUNCE_FRAME_BYTES	60
#define ANNOUNCE_ETHERTYPE	0x8035		/* RARP */
#define ANNOUNCE_IFACE_MAX	16		/* IFNAMSIZ: 15 bytes and the NUL */

/* QEMU's defaults (announce-rounds, -initial, -step, -max) */
#define ANNOUNCE_DEF_ROUNDS	5
#define ANNOUNCE_DEF_INITIAL_MS	50
#define ANNOUNCE_DEF_STEP_MS	100
#define ANNOUNCE_DEF_MAX_MS	550

/* the limits (QEMU's, which takes the same ranges) */
#define ANNOUNCE_MAX_ROUNDS	1000u
#define ANNOUNCE_MAX_MS		100000u

struct announce_sched {
	uint32_t rounds;	/* frames to send, 1..ANNOUNCE_MAX_ROUNDS */
	uint32_t initial_ms;	/* the first gap, 1..ANNOUNCE_MAX_MS */
	uint32_t step_ms;	/* each gap grows by this, 0..ANNOUNCE_MAX_MS */
	uint32_t max_ms;	/* no gap is longer, initial_ms..ANNOUNCE_MAX_MS */
};

struct announce_stats {
	uint32_t frames;	/* frames sent */
	uint64_t first_us;	/* the first frame left this long after the resume */
	int error;		/* 0, or the -errno that stopped the rounds */
};

void announce_sched_defaults(struct announce_sched *s);

/*
 * Every field of s within its range. Return: 0, or -EINVAL with a message
 * naming the migrate.start field ("announce_max_ms (40) is shorter than
 * announce_initial_ms (50)").
 */
int announce_sched_check(const struct announce_sched *s, char *err, size_t errlen) __must_check;

/*
 * When each round leaves, in ms after the first: off_ms[0] = 0, then
 * off_ms[k+1] = off_ms[k] + min(initial + k x step, max). Fills
 * min(rounds, n) entries. Return: s->rounds, or -EINVAL for a schedule
 * that fails announce_sched_check.
 */
int announce_offsets(const struct announce_sched *s, uint64_t *off_ms, size_t n) __must_check;

/*
 * The 60-byte frame for mac into out: broadcast destination, mac as the
 * source, RARP, Ethernet/IPv4, lengths 6/4, opcode 3 (reverse request),
 * sender and target hardware address mac, protocol addresses zero, zero
 * padding. Return: 0, or -EINVAL for a MAC no NIC has (all zero, or
 * multicast/broadcast), out untouched.
 */
int announce_frame(const uint8_t mac[6], uint8_t out[ANNOUNCE_FRAME_BYTES]) __must_check;

/*
 * Whether frames can go out on iface here: the name is valid and the
 * interface exists ("no interface 'eth9' on this host": -ENODEV), and a
 * packet socket can be opened (-EPERM/-EACCES: "... needs CAP_NET_RAW").
 * Return: 0 or -errno with the message.
 */
int announce_iface_check(const char *iface, char *err, size_t errlen) __must_check;

struct announcer;

/*
 * Open the packet socket on iface and start the sender thread; its first
 * frame leaves at once, the others on schedule s. resume_ns
 * (common/clock.h) is when the guest resumed: first_us counts from it.
 * Return: 0 and *out, or -errno with a message (nothing was sent).
 */
int announce_start(const char *iface, const struct announce_sched *s, const uint8_t mac[6],
		   uint64_t resume_ns, struct announcer **out, char *err,
		   size_t errlen) __must_check;

/* Stop the rounds early (any thread; the sender leaves its current wait at once). */
void announce_cancel(struct announcer *a);

/* Wait for the sender thread to end and take its stats. */
void announce_wait(struct announcer *a, struct announce_stats *st);

/* After announce_wait (or instead of it: it cancels and joins). Accepts NULL. */
void announce_free(struct announcer *a);

#endif
