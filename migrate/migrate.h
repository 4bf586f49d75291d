/* SPDX-License-Identifier: MIT */
/*
 * migrate.h - live migration of a running VM to another agent (the source
 * side); the receiving side is migrate/incoming.h.
 *
 * A job runs on its own thread: setup (connect, handshake, start dirty
 * logging), the bulk round (every page that holds data; zero pages and
 * untouched RAM are skipped), iterative rounds of the pages dirtied
 * meanwhile, each followed by the convergence decision (migrate/converge.h),
 * then stop-and-copy: pause, the last dirty pages, vCPU/VM/device state,
 * COMPLETE (with a RAM digest under --verify), and the destination's
 * RESUMED. Until RESUMED arrives the source owns the VM: any failure
 * (peer gone, bad frame, timeout, cancel, no convergence) resumes it where
 * it was and reports why. After success the VM stays paused here; the
 * caller frees it.
 *
 * The controller thread starts, queries (migrate_get_stats, any time,
 * thread-safe), cancels and reaps jobs; only the job thread touches the VM
 * while the job runs.
 */
#ifndef KVMIG_MIGRATE_MIGRATE_H
#define KVMIG_MIGRATE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "dirtylog/dirtylog.h"
#include "migrate/opts.h"	/* struct migrate_opts, its defaults and limits */
#include "vm/vm.h"

/* Job statistics, named as virsh domjobinfo / QEMU query-migrate. */
struct migrate_stats {
	char status[16];		/* setup active device postcopy postcopy-paused
					 * completed failed cancelled */
	char error[512];
	uint64_t total_ms, downtime_ms, setup_ms, expected_downtime_ms;
	uint64_t transferred_bytes, total_bytes, remaining_bytes;
	uint64_t duplicate_pages, normal_pages;
	uint64_t dirty_sync_count, dirty_pages_rate;
	double mbps;
	struct {
		uint64_t cache_size, bytes, pages, cache_miss, overflow;
	} xbzrle;
	struct {
		double ratio, busy;
		uint64_t pages;
		/* extensions */
		char mode[8];		/* --compress: none zstd lz4 auto */
		char codec[8];		/* in use now (last, once done): none zstd lz4 */
		char reason[16];	/* why codec (autocomp.h's reasons), "fixed" without auto */
		unsigned switches;	/* auto changed the codec this often */
	} compression;
	struct {
		uint64_t requests;		/* pages the destination asked for (PAGE_REQ) */
		uint64_t pages_pushed;		/* pages the background stream sent after switchover */
		uint64_t fault_latency_us_p50;	/* request sent to page in place (destination's */
		uint64_t fault_latency_us_p99;	/*   figures, known once it has every page) */
		uint64_t blocked_ms;		/* vCPU time the guest waited on faults (same) */
		uint64_t bytes_after_switchover; /* stream bytes sent after the switchover */
		/* extensions */
		uint64_t pages_missing;		/* pages the destination still lacks */
		unsigned reconnects;		/* the link broke and was resumed this often */
		bool active;			/* the job switched to post-copy */
	} postcopy;
	struct {
		char kind[16];		/* tcp unix tls ssh ssh+tls */
		char cipher[64];	/* "" for plain sockets */
		bool ktls;
	} transport;
	struct {
		uint32_t frames;	/* RARP frames the destination sent (--announce) */
		uint64_t first_us;	/* the first one left this long after the resume */
	} announce;
	/*
	 * The switchover's timeline (extension): start_us is when it began
	 * (the pause was asked for), in us since the job's start; every other
	 * *_us is an offset from that start, 0 for a step not reached (yet).
	 * paused: vm_pause returned; synced: the last dirty sync; pages: the
	 * last pages sent (post-copy: the needed set sent, no pages move);
	 * state: vCPU and device state captured (in stop-and-copy on its own
	 * thread while the pages go: before or after pages_us); sent: state
	 * and COMPLETE sent; ready: the destination's READY (its load is
	 * sent..ready);
	 * resumed: its RESUMED after our GO (the end of downtime_ms).
	 */
	struct {
		uint64_t start_us, paused_us, synced_us, pages_us, state_us, sent_us, ready_us,
			resumed_us;
		uint64_t pages;		/* pages sent while paused */
		uint64_t bytes;		/* bytes on every channel, pause to COMPLETE */
		uint64_t state_bytes;	/* of them, the state sections */
		uint64_t expected_us;	/* the converge estimate at the decision */
		char reason[64];	/* why it switched (converge.h's reasons) */
	} switchover;
	/* extensions */
	unsigned round;
	unsigned throttle_pct;
	uint64_t bandwidth;		/* measured bytes/s */
	uint64_t bandwidth_limit;	/* the cap in effect, bytes/s (0: none): --bandwidth,
					 * or less by migrate_set_bandwidth */
	uint64_t ring_overflows;
	unsigned parallel;
	bool verified;
};

struct migrate_job;

/*
 * Start migrating vm (running or paused) to uri ("tcp://HOST:PORT",
 * "unix:///PATH"); o must pass migrate_opts_check().
 * Return: 0 and *out, or -errno with a message in err (bad options, cannot
 * connect: nothing happened to the VM).
 */
int migrate_start(struct vm *vm, const char *uri, const struct migrate_opts *o,
		  struct migrate_job **out, char *err, size_t errlen) __must_check;

void migrate_get_stats(struct migrate_job *j, struct migrate_stats *st);

/*
 * `kvmig job postcopy`: switch a running pre-copy job to post-copy now.
 * Return: 0 (the job switches at its next chunk), or -errno with a
 * message: -EINVAL (started without --postcopy: the destination was not
 * prepared for it), -EALREADY (it is in post-copy already), -EBUSY (past
 * pre-copy: stop-and-copy, or finished).
 */
int migrate_postcopy(struct migrate_job *j, char *err, size_t errlen) __must_check;

/*
 * `kvmig job resume`: reconnect a post-copy whose link broke
 * (status postcopy-paused), to uri or, when uri is NULL or "", where it
 * went first. Return: 0 (the job reconnects), or -errno with a message:
 * -EINVAL (not paused in post-copy), -EINVAL (a bad uri).
 */
int migrate_resume(struct migrate_job *j, const char *uri, char *err, size_t errlen) __must_check;
/*
 * Cap the job's stream at bytes_per_s from now on (0: no cap), whatever
 * its --bandwidth said: a host-wide budget shared by the running jobs
 * (kvmigd's bandwidth) re-splits it as jobs start and end. Any thread;
 * it never waits: each lane applies the new rate at its next write.
 * Return: 0.
 */
int migrate_set_bandwidth(struct migrate_job *j, uint64_t bytes_per_s);

/* The options the job started with (fixed: any thread may read them). */
const struct migrate_opts *migrate_get_opts(const struct migrate_job *j);

void migrate_cancel(struct migrate_job *j);
bool migrate_finished(struct migrate_job *j);

/* ---- events ------------------------------------------------------------- */

/*
 * What a job did, as a stream that polling cannot miss: the job records
 * an event at each step into a bounded ring of MIGRATE_EVENT_RING, and a
 * reader takes them in order with migrate_next_event(). Nothing is
 * recorded on the per-page path; each event costs one lock.
 *
 *   type             when                                   fields set besides the common ones
 *   started          the handshake is done, pre-copy begins setup_ms, total_bytes
 *   round            a pre-copy round ended and was measured round, transferred_bytes,
 *                                                           remaining_bytes, dirty_pages_rate,
 *                                                           mbps, bandwidth,
 *                                                           expected_downtime_ms, throttle_pct,
 *                                                           codec, codec_reason (the codec at
 *                                                           the round's end, and why)
 *   switchover       the guest is paused for the switch      mode ("stop-and-copy" or "postcopy"),
 *                                                           rounds (pre-copy rounds done),
 *                                                           remaining_bytes (the last dirty set),
 *                                                           reason, expected_downtime_ms,
 *                                                           codec, codec_reason (the paused
 *                                                           pages' codec, and why)
 *   postcopy         the guest runs at the destination       downtime_ms, remaining_bytes (pages
 *                    (post-copy), its pages follow           still to send)
 *   postcopy-paused  the post-copy link broke               error (why), remaining_bytes
 *   resumed          the post-copy link is back              reconnects, remaining_bytes
 *   completed        the destination runs the VM             total_ms, downtime_ms,
 *                                                           transferred_bytes, verified
 *   failed           the job ended in failure               total_ms, error
 *   cancelled        the job was cancelled                  total_ms, error
 *
 * Common to all: seq, time_ms, type, status (the job's status after the
 * event), and the statistics of the moment (every number below is the
 * job's, as migrate_get_stats() would report it then). Every job ends
 * with exactly one of completed, failed or cancelled, recorded before
 * migrate_finished() turns true; a job that migrate_start() refused
 * records nothing.
 */
#define MIGRATE_EVENT_RING 128

struct migrate_event {
	uint64_t seq;			/* 1, 2, 3, ... within the job: consecutive */
	uint64_t time_ms;		/* wall clock (CLOCK_REALTIME), ms since the epoch */
	char type[16];			/* the table above */
	char status[16];		/* as migrate_stats.status */
	char mode[16];			/* switchover: "stop-and-copy" or "postcopy"; else "" */
	unsigned round;
	unsigned rounds;		/* switchover: pre-copy rounds done (0: none) */
	unsigned throttle_pct;
	unsigned reconnects;
	bool verified;
	uint64_t setup_ms, total_ms, downtime_ms, expected_downtime_ms;
	uint64_t transferred_bytes, total_bytes, remaining_bytes;
	uint64_t dirty_pages_rate;	/* pages per second */
	uint64_t bandwidth;		/* measured bytes/s */
	double mbps;
	char error[512];		/* failed, cancelled, postcopy-paused: why */
	char reason[64];		/* switchover: why it switched (converge.h) */
	char codec[8];			/* as migrate_stats.compression.codec */
	char codec_reason[16];		/* as migrate_stats.compression.reason */
};

/*
 * The oldest event of j newer than after_seq (0: from the start). The
 * ring keeps the newest MIGRATE_EVENT_RING events: when the reader fell
 * further behind, *ev is the oldest kept, and ev->seq - after_seq - 1
 * events were lost. Any thread, until migrate_job_free(); after the job
 * ended its events stay readable.
 * Return: 1 and *ev, or 0 when there is nothing newer.
 */
int migrate_next_event(struct migrate_job *j, uint64_t after_seq, struct migrate_event *ev);

/*
 * Call fn(ctx) after each event is recorded, on the job's thread, with no
 * lock of the job held: fn must be quick and thread-safe (wake a loop).
 * NULL stops it. Events recorded before the call are not announced: a
 * reader looks at the ring once after setting it.
 */
void migrate_set_event_notify(struct migrate_job *j, void (*fn)(void *ctx), void *ctx);

/*
 * Wait for the job's end. Return: 0 when the destination runs the VM (the
 * source VM is paused; free it), or -errno (the source VM runs on).
 */
int migrate_wait(struct migrate_job *j) __must_check;

/* Free a finished job (after migrate_wait). Accepts NULL. */
void migrate_job_free(struct migrate_job *j);

#endif
