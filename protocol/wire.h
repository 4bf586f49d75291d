/* SPDX-License-Identifier: MIT */
/*
 * wire.h - the kvmig migration stream, byte by byte. protocol/PROTOCOL.md
 * is the long form of this comment; the constants below are the only place
 * on-wire numbers live.
 *
 * Everything is little-endian and written field by field through a
 * bounds-checked cursor. A stream is a sequence of frames:
 *
 *   offset  size  field
 *   0       2     type      (WIRE_F_*)
 *   2       2     flags     (0; any other value is rejected)
 *   4       4     length    payload bytes, <= WIRE_MAX_PAYLOAD
 *   8       len   payload
 *   8+len   4     crc32c    over the 8 header bytes and the payload
 *
 * Source to destination (the forward stream):
 *
 *   HELLO      magic u64 "KVMIGSTR" | version u16 | flags u16 (WIRE_HELLO_*) |
 *              caps u32 (WIRE_CAP_* offered) | page_size u32 (4096) |
 *              mem_bytes u64 | vcpus u32 | channel u32 | channels u32 |
 *              session u64 | name[64] | guest[16] | guest_args[256] |
 *              mac[6]     (strings NUL-padded, NUL-terminated)
 *              flags (post-copy, only with WIRE_CAP_POSTCOPY offered, channel
 *              0, at most one bit): FAULT, this connection is the fault
 *              channel of `session` (PAGE_REQ back, the PAGES that answer
 *              them forward); RESUME, it takes over channel 0 of
 *              `session`'s post-copy after the link broke (the destination
 *              answers HELLO_ACK and WANT frames: the pages it still lacks).
 *   CPUID      flags u32 (WIRE_CPUID_*; other bits are rejected) |
 *              tsc_khz u32 (the guest's TSC rate, 1..WIRE_MAX_TSC_KHZ) |
 *              count u32 (1..WIRE_MAX_CPUID) |
 *              count x { function u32 | index u32 | flags u32 (KVM's
 *              KVM_CPUID_FLAG_*, only bits 0..2) | eax u32 | ebx u32 |
 *              ecx u32 | edx u32 }   (no two entries the same leaf)
 *              The CPUID the guest's vCPUs were given (vCPU 0's) and their
 *              TSC rate, sent with WIRE_CAP_CPUID on channel 0 only, after
 *              HELLO and before any PAGES, END_ROUND or SWITCHOVER. The
 *              destination checks it (vm/cpucheck.h) before it answers
 *              HELLO: HELLO_ACK when its KVM can run the guest, ERROR
 *              naming the missing features otherwise, so no page moves.
 *              STRICT_TSC: a TSC rate difference refuses too.
 *   PAGES      count u32 (1..WIRE_MAX_BATCH) | round u32 |
 *              count x { page u64 | codec u8 | len u32 | data[len] }
 *              page: RAM offset / page_size, < mem_bytes / page_size.
 *              codec (protocol/codec.h ids) and len: ZERO len 0, RAW len
 *              page_size, XBZRLE/ZSTD/LZ4 1..page_size-1; XBZRLE, ZSTD and
 *              LZ4 only when negotiated.
 *   END_ROUND  round u32 | pages u64 (pages sent in the round) |
 *              dirty_rate u64 (pages/s seen by the source)
 *   SWITCHOVER round u32 | flags u32 (WIRE_SWITCHOVER_*; other bits are
 *              rejected): the source guest is paused; the last PAGES
 *              frames and the state follow. PAUSED: the guest was paused
 *              before the migration (or save) began, and arrives paused.
 *              POSTCOPY (only with WIRE_CAP_POSTCOPY chosen): no page
 *              follows before the state; NEEDED frames name the pages the
 *              destination must drop and fetch, and the pages come after
 *              GO, pushed on channel 0 and asked for on the fault channel.
 *   NEEDED     first u64 (a multiple of 64) | count u32 (1..WIRE_MAX_BITMAP)
 *              | flags u32 (0) | ceil(count / 64) x u64 bitmap words: bit i
 *              of word w is page first + 64 w + i, bits past count zero;
 *              [first, first + count) inside RAM. Post-copy, between
 *              SWITCHOVER and the first STATE: these pages are stale or
 *              missing at the destination.
 *   STATE      one vm/state.h section, opaque here (1..WIRE_MAX_STATE bytes)
 *   COMPLETE   pages u64 (pages sent in all) | state_sections u32 |
 *              digest_alg u8 (0 none, 1 SHA-256, 2 PAGES) | digest[32]
 *              PAGES (post-copy): the XOR over every non-zero page of
 *              SHA-256(page number u64 | the page's bytes): it does not
 *              depend on the order in which pages arrive.
 *   ERROR      code u32 (an errno) | msg_len u16 (<= WIRE_MAX_MSG) | msg
 *   GO         reserved u32 (0): the destination may start the VM (sent
 *              only after READY; the source no longer resumes its copy)
 *   ANNOUNCE   iface[16] | rounds u32 | initial_ms u32 | step_ms u32 |
 *              max_ms u32: after the guest resumes, the destination sends
 *              the RARP announce (migrate/announce.h) on its interface
 *              iface on this schedule. Only with WIRE_CAP_ANNOUNCE offered,
 *              then right after HELLO on channel 0 (after a CPUID frame if
 *              one is there); the destination answers HELLO_ACK only after
 *              it checked the interface, or ERROR (nothing has moved yet).
 *
 * Destination to source (the return path, same framing):
 *
 *   HELLO_ACK  version u16 | reserved u16 (0) | caps u32 (chosen, a subset
 *              of those offered)
 *   ACK        round u32 | pages u64 (pages applied so far)
 *   READY      digest_ok u8 | reserved u8[3] (0): everything checked, the
 *              VM is built and waits for GO
 *   RESUMED    digest_ok u8 (1 when a digest was sent and matched) |
 *              reserved u8[3] (0): the destination VM runs; the source may
 *              now stop its copy
 *   PAGE_REQ   page u64 | count u32 (1..WIRE_MAX_BATCH): post-copy, on the
 *              fault channel: a vCPU waits for these pages
 *   WANT       as NEEDED; flags bit 0 LAST: the answer to a RESUME HELLO,
 *              the pages the destination still lacks (every WANT frame
 *              but the last has flags 0)
 *   PC_DONE    pages u64 (placed after the switchover) | requests u64
 *              (PAGE_REQ sent) | blocked_us u64 (vCPU time waiting on
 *              faults) | p50_us u32 | p99_us u32 (fault latency: request
 *              sent to page in place) | digest_ok u8 | reserved u8[3] (0):
 *              post-copy, on channel 0: every page is in place; the source
 *              may drop its copy
 *   ANNOUNCED  frames u32 | error u32 (a positive errno, 0) | first_us u64:
 *              the announce rounds are over: frames sent, and when the
 *              first left after the resume. Only when HELLO_ACK chose
 *              WIRE_CAP_ANNOUNCE, once, after RESUMED; a source that does
 *              not get it still has a completed migration.
 *   ERROR      as above
 *
 * A key exchange (--ssh-data tls) is a stream of its own, one frame each
 * way, on a connection the source opened through SSH:
 *
 *   KEY        identity[32] (1..31 bytes of [0-9a-f], NUL-padded) |
 *              key[32] | key_len u32 (16..32: the first key_len bytes of
 *              key count) | lifetime_ms u32 (1..600000): the destination
 *              lets its tls: listener accept TLS 1.3 connections that hold
 *              this pre-shared key, for lifetime_ms (and until the
 *              migration they carry ends), then the source connects there
 *   KEY_ACK    port u16 (the tls: listener's) | reserved u16 (0)
 *
 * or ERROR instead of KEY_ACK (no tls: listener there). Nothing else
 * follows on that connection.
 *
 * Legal order on the forward stream (wire_order_check enforces it):
 *
 *   HELLO [CPUID] [ANNOUNCE] (PAGES | END_ROUND)* SWITCHOVER PAGES* STATE+ COMPLETE [GO]
 *   HELLO [CPUID] [ANNOUNCE] (PAGES | END_ROUND)* SWITCHOVER(POSTCOPY) NEEDED* STATE+
 *         COMPLETE GO PAGES*                            (post-copy)
 *   HELLO(FAULT) PAGES*   HELLO(RESUME) PAGES*          (post-copy's other streams)
 *
 * with ERROR allowed anywhere after HELLO, and nothing after GO or ERROR.
 * CPUID and ANNOUNCE come at most once each, in this order, before
 * the first PAGES, END_ROUND or SWITCHOVER; when HELLO offers
 * WIRE_CAP_CPUID (WIRE_CAP_ANNOUNCE) the frame must come (the destination
 * waits for it before HELLO_ACK), and without the capability it must not.
 * A file ends at COMPLETE; a live migration ends with the exchange
 * COMPLETE -> READY -> GO -> RESUMED, so that a link lost before GO
 * leaves the VM running at the source only, and one lost after GO at the
 * destination only (the source then keeps its copy paused, never runs it). A parallel migration (--parallel N) sends HELLO with the same
 * random session and channels = N on every connection, channel = 0..N-1.
 * Channel 0 carries everything above plus its share of the pages; the
 * others carry
 *
 *   HELLO (PAGES | END_ROUND)* COMPLETE
 *
 * where END_ROUND r ends their part of round r (sent before channel 0's),
 * and COMPLETE (pages = page entries on that channel, state_sections 0, no
 * digest) ends the channel before channel 0's STATE. A page always travels
 * on the same channel: channel = (page / 64) % N. Only HELLO_ACK and ERROR
 * come back on the other channels; channel 0's ACK of round r means every
 * channel's pages of round r are applied.
 */
#ifndef KVMIG_PROTOCOL_WIRE_H
#define KVMIG_PROTOCOL_WIRE_H

#include <stdint.h>

#define WIRE_MAGIC		0x52545347494d564bull	/* "KVMIGSTR" */
#define WIRE_VERSION		1
#define WIRE_HDR_BYTES		8
#define WIRE_CRC_BYTES		4
#define WIRE_MAX_BATCH		512u
#define WIRE_PAGE_SIZE		4096u
#define WIRE_PAGE_ENTRY_HDR	13u		/* page u64, codec u8, len u32 */
#define WIRE_MAX_PAYLOAD	(8u + WIRE_MAX_BATCH * (WIRE_PAGE_ENTRY_HDR + WIRE_PAGE_SIZE))
#define WIRE_MAX_STATE		(1u << 20)
#define WIRE_MAX_MSG		1024u
#define WIRE_NAME_BYTES		64u
#define WIRE_GUEST_BYTES	16u
#define WIRE_ARGS_BYTES		256u
#define WIRE_HELLO_BYTES	(8 + 2 + 2 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + WIRE_NAME_BYTES + \
				 WIRE_GUEST_BYTES + WIRE_ARGS_BYTES + 6)
#define WIRE_DIGEST_BYTES	32u
#define WIRE_IFACE_BYTES	16u		/* IFNAMSIZ */
#define WIRE_ANNOUNCE_BYTES	(WIRE_IFACE_BYTES + 4 * 4)
#define WIRE_ANNOUNCED_BYTES	16u
#define WIRE_KEY_ID_BYTES	32u		/* identity, NUL-padded */
#define WIRE_KEY_MAX		32u
#define WIRE_KEY_BYTES		(WIRE_KEY_ID_BYTES + WIRE_KEY_MAX + 4 + 4)
#define WIRE_KEY_MIN_LEN	16u
#define WIRE_KEY_MAX_LIFETIME_MS 600000u
#define WIRE_MAX_BITMAP		(1u << 18)	/* pages per NEEDED/WANT frame (1 GiB) */
#define WIRE_BITMAP_HDR		16u		/* first u64, count u32, flags u32 */
#define WIRE_PC_DONE_BYTES	36u
#define WIRE_MAX_CPUID		128u
#define WIRE_CPUID_ENTRY_BYTES	28u
#define WIRE_MAX_TSC_KHZ	100000000u	/* 100 GHz */

/* Frame types: on-wire values, never renumber. */
enum wire_type {
	WIRE_F_HELLO = 1,
	WIRE_F_PAGES = 2,
	WIRE_F_END_ROUND = 3,
	WIRE_F_SWITCHOVER = 4,
	WIRE_F_STATE = 5,
	WIRE_F_COMPLETE = 6,
	WIRE_F_ERROR = 7,
	WIRE_F_GO = 8,
	WIRE_F_CPUID = 9,
	WIRE_F_ANNOUNCE = 10,
	WIRE_F_KEY = 11,
	WIRE_F_NEEDED = 12,
	WIRE_F_HELLO_ACK = 16,
	WIRE_F_ACK = 17,
	WIRE_F_RESUMED = 18,
	WIRE_F_PAGE_REQ = 19,
	WIRE_F_READY = 20,
	WIRE_F_ANNOUNCED = 21,
	WIRE_F_KEY_ACK = 22,
	WIRE_F_WANT = 23,
	WIRE_F_PC_DONE = 24,
};

/* HELLO flags (post-copy's other connections; WIRE_CAP_POSTCOPY only). */
#define WIRE_HELLO_FAULT	(1u << 0)	/* the fault channel of the session */
#define WIRE_HELLO_RESUME	(1u << 1)	/* channel 0 again, after a broken link */
#define WIRE_HELLO_ALL		0x3u

/* WANT flags. */
#define WIRE_WANT_LAST		(1u << 0)

/* Capabilities (HELLO offers, HELLO_ACK chooses). */
#define WIRE_CAP_XBZRLE		(1u << 0)
#define WIRE_CAP_ZSTD		(1u << 1)
#define WIRE_CAP_LZ4		(1u << 2)
#define WIRE_CAP_POSTCOPY	(1u << 3)
#define WIRE_CAP_VERIFY		(1u << 4)
#define WIRE_CAP_MULTI		(1u << 5)
#define WIRE_CAP_CPUID		(1u << 6)	/* a CPUID frame follows HELLO */
#define WIRE_CAP_ANNOUNCE	(1u << 7)	/* ANNOUNCE after HELLO, ANNOUNCED after RESUMED */
#define WIRE_CAP_ALL		0xffu

/* SWITCHOVER flags. */
#define WIRE_SWITCHOVER_PAUSED	(1u << 0)	/* keep the guest paused at the destination */
#define WIRE_SWITCHOVER_POSTCOPY (1u << 1)	/* the pages follow after GO (post-copy) */
#define WIRE_SWITCHOVER_ALL	0x3u

/* CPUID flags. */
#define WIRE_CPUID_STRICT_TSC	(1u << 0)	/* refuse a TSC rate difference (--strict-cpu) */
#define WIRE_CPUID_ALL		0x1u

#define WIRE_DIGEST_NONE	0
#define WIRE_DIGEST_SHA256	1
#define WIRE_DIGEST_PAGES	2	/* XOR of SHA-256(page u64 | page), non-zero pages */

#endif
