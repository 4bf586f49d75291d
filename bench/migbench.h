/* SPDX-License-Identifier: MIT */
/*
 * migbench.h - one live migration on real KVM, measured end to end, in
 * one process: a source VM running seqdirty, and a destination thread
 * that accepts the stream on TCP (or TLS) loopback, builds the VM, starts
 * it and confirms (as tests/kvm/test_migrate.c does). The measurement
 * behind `bench/bench_migrate run` (bench/e2e.sh runs it once per
 * scenario, next to the same scenario under QEMU, and builds the table)
 * and `kvmig bench migrate`.
 *
 * The run: start the guest, let it dirty until its progress reaches
 * --warm pages (default two passes over the working set, so every page of
 * it holds data), measure its pace for 0.5 s (pages_per_s), migrate, and
 * report one JSON object:
 *  - total_ms, downtime_ms, transferred_bytes, dirty_sync_count, status,
 *    error: the engine's job statistics (migrate_stats);
 *  - guest_downtime_ms: the longest interval in which the guest made no
 *    progress, as the VMM sees it. A watcher thread samples
 *    vm_get_stats().progress of the source and (once it runs) of the
 *    destination every MIGBENCH_WATCH_PERIOD_US, from ARM_LEAD_US before
 *    migrate_start until the destination has run on for a while; the
 *    guest's progress is the larger of the two (the destination's counter
 *    starts at the source's final value, carried in the state).
 *    guest_gap_at_ms says where that interval began, from migrate_start;
 *    watch_max_sample_us is the largest spacing of the samples (the
 *    resolution actually achieved);
 *  - max_throttle_pct: the highest auto-converge throttle the watcher saw
 *    (it looks every THROTTLE_SAMPLE_EVERY samples);
 *  - mig_pages_per_s: the source guest's pace while it migrates (progress
 *    from migrate_start to its pause, or to the end of a failed job);
 *  - dst_*_at_ms: when the destination accepted, built the VM, started it
 *    and sent RESUMED, from migrate_start;
 *  - lo_bytes: the loopback interface's tx_bytes over the migration;
 *  - bulk_bytes_per_s: the bandwidth the engine measured for round 0 (its
 *    bytes over its time): the first non-zero migrate_stats.bandwidth,
 *    which the source sets after round 0 and only averages from round 1 on.
 *    The watcher samples it at the same period; a round 1 is far longer.
 *    0 when round 0 sent too little to be measured (the engine then
 *    assumes 1 GiB/s; with zstd a 16 MiB round 0 is well under 1 MiB).
 *  - settings: the engine options the job ran with (migrate_opts after
 *    the defaults and the command line), so the table can show them next to
 *    QEMU's query-migrate-parameters.
 *  - postcopy: with --postcopy, the job's post-copy figures (the "postcopy"
 *    object of the job stats: requests, pages_pushed, fault latency p50/p99,
 *    blocked_ms, bytes_after_switchover, ...), when the switch was asked
 *    for (switch_asked_at_ms) and when the job was first seen past pre-copy
 *    (switch_at_ms: status device or postcopy, polled every
 *    SWITCH_POLL_US: the source guest pauses there), and the destination
 *    receiver's own count (dst_faults, dst_pages_placed, dst_done_at_ms).
 *  - switchover: the downtime's timeline, the job stats' "switchover"
 *    object (start_us from the job's start; paused, synced, pages, state,
 *    sent, ready, resumed in us from it; pages, bytes, state_bytes,
 *    expected_us, reason); the table prints it on one line;
 *  - command: the command line, when the caller names one.
 * A destination guest that made no progress after a completed migration
 * makes the status say so, with both sides' counters and the console's
 * tail.
 *
 * Post-copy: the destination thread serves it as the agent does
 * (tools/agent_incoming.c): channel 0's decoder gets a post-copy table,
 * a second thread takes the fault channel (the connection the source
 * opens right after channel 0's handshake) and serves it inside
 * incoming_run(); after RESUMED, incoming_run_postcopy() takes the pages
 * still missing, and the receiver is released once every one is in place.
 * --postcopy manual with --postcopy-after MS calls migrate_postcopy() MS
 * after migrate_start (the QEMU side sends migrate-start-postcopy as long
 * after `migrate`): a timed step of the benchmark, not a synchronisation.
 * With post-copy, mig_pages_per_s counts up to switch_at_ms (the guest
 * pauses there), and --parallel must be 1 (the fault channel and the
 * parallel ones would race for the same accept here).
 * The guest's progress counts pages written, reported every 256 pages.
 * --bandwidth takes bytes/s (K/M/G suffixes are binary), 0 = unlimited.
 *
 * Output: with json the object on one line; else a short table of the
 * main figures under "$ COMMAND" (the object's own members).
 * Threads: the caller's, the watcher, the destination (and its fault
 * channel and parallel channels); one run at a time per process.
 */
#ifndef KVMIG_BENCH_MIGBENCH_H
#define KVMIG_BENCH_MIGBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/compiler.h"
#include "migrate/opts.h"

#define MIGBENCH_WATCH_PERIOD_US 200	/* the watchers' sampling period */

struct migbench_opts {
	uint64_t mem;			/* --mem: guest RAM (default 1 GiB) */
	uint64_t workset;		/* --workset: what seqdirty writes (16 MiB) */
	uint64_t warm;			/* --warm PAGES of progress first (0: 2 passes) */
	unsigned vcpus;			/* --vcpus (1) */
	uint64_t postcopy_after_ms;	/* --postcopy-after (manual), 0 = none */
	uint32_t dirty_ring;		/* --dirty-ring ENTRIES: the VM's ring, tracked with it
					 * (--dirty-track ring); 0 = the bitmap */
	bool paused;			/* --paused: paused after the warm-up, migrated so,
					 * resumed at the destination once there */
	struct migrate_opts mo;		/* the engine's options (max downtime 300 ms) */
};

#define MIGBENCH_SYNOPSIS                                                                         \
	"[--mem SIZE] [--workset SIZE] [--vcpus N] [--xbzrle SIZE]\n"                             \
	"                         [--compress none|zstd[:L]|lz4|auto] [--parallel N]\n"           \
	"                         [--auto-converge] [--verify] [--max-downtime MS]\n"             \
	"                         [--bandwidth BYTES_PER_S] [--max-iterations N]\n"               \
	"                         [--warm PAGES] [--timeout MS] [--tls-dir DIR]\n"                \
	"                         [--postcopy off|auto|now|manual] [--postcopy-after MS]\n"   \
	"                         [--dirty-ring ENTRIES] [--paused]"

void migbench_defaults(struct migbench_opts *o);

/*
 * Parse argv[0..argc) (options only) into o, over its defaults, and check
 * the engine options (migrate_opts_check) and how they go together.
 * Return: 0, or -EINVAL with the message in err.
 */
int migbench_parse(int argc, char **argv, struct migbench_opts *o, char *err,
		   size_t errlen) __must_check;

/*
 * Run the migration and print its object (json) or table to out; cmdline,
 * when not NULL, goes in as "command" (and heads the table).
 * Return: 0 when it completed and the guest ran on at the destination; 1
 * when the migration itself failed or the guest stalled there (the report
 * says so, err too); -ENODEV without a usable /dev/kvm (err says why);
 * -ETIMEDOUT when the guest did not warm up; -errno for a VM that could
 * not be built.
 * Other set-up failures are fatal (bench/benchutil.h).
 */
int migbench_run(const struct migbench_opts *o, const char *cmdline, bool json, FILE *out,
		 char *err, size_t errlen) __must_check;

/*
 * The longest interval without guest progress, from samples of a counter
 * that only grows: the time between two samples that saw it grow (or from
 * the last growth to the end). Its error is one sample spacing. Also the
 * watcher of bench_migrate's `watch` (QEMU's guests).
 */
struct migbench_gaps {
	uint64_t samples, prev_ns, max_sample_ns;
	uint64_t last_p, last_inc_ns;
	uint64_t gap_ns, gap_start_ns;
};

void migbench_gaps_sample(struct migbench_gaps *g, uint64_t p, uint64_t now);
/*
 * Put the calling sampler thread on SCHED_FIFO (priority 1), so that the
 * engine's threads do not keep it from sampling on a busy 2-core host: a
 * sampler that waits for a CPU reports its own wait as the guest's. Both
 * engines' samplers call it. Return: "fifo", or "other" where the host
 * refuses (not root): then watch_max_sample_us bounds what a gap means.
 */
const char *migbench_sampler_sched(void);
void migbench_gaps_end(struct migbench_gaps *g, uint64_t now);

#endif /* KVMIG_BENCH_MIGBENCH_H */
