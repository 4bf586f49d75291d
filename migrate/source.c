/* SPDX-License-Identifier: MIT */
/*
 * source.c - the source side of a live migration (see migrate.h): the job
 * and its rounds. The lanes that send a round's pages are lanes.h, what the
 * destination says back retpath.h, the READY/GO hand-over handover.h; the
 * state they share is job.h.
 *
 * The job thread owns the VM for the whole job. The dirty bitmap it sends
 * from is indexed by RAM page; a round walks it in chunks of CHUNK_PAGES:
 * each chunk is cleared in KVM (write-protected) right before its pages
 * are read, so a write that lands after the read is seen by the next sync.
 * The bulk round starts from an all-ones bitmap but skips the memfd's holes
 * (never touched, hence zero on both sides) without reading them.
 */
#define LOG_PREFIX "migrate: "
#include "migrate/migrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "common/log.h"
#include "migrate/autocomp.h"
#include "migrate/converge.h"
#include "migrate/digest.h"
#include "migrate/handover.h"
#include "migrate/job.h"
#include "migrate/lanes.h"
#include "migrate/mio.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"
#include "migrate/postcopy.h"
#include "migrate/ratelimit.h"
#include "migrate/retpath.h"
#include "protocol/frame.h"
#include "vm/ramwalk.h"
#include "vm/state.h"

#define PAGE WIRE_PAGE_SIZE
#define CHUNK_PAGES 4096u		/* 16 MiB: dirty-log clear and stats granularity */
#define PC_SLICE_PAGES 512u		/* 2 MiB: how often a --postcopy job looks for the switch */
#define ACK_TIMEOUT_MS 60000
/*
 * --compress auto before its first decision: decide after every slice of
 * this many pages, probing 1 page in AUTO_PROBE_EVERY, so the bulk round
 * is not sent with a guess (a few hundred pages, not a 16 MiB chunk).
 */
#define AUTO_PROBE_SLICE_PAGES 256u
#define AUTO_PROBE_EVERY 8u

/* ---- stats ---------------------------------------------------------------- */

/* Pages that carried data (not zero), in all lanes: what bandwidth moves. */
static uint64_t data_pages(const struct migrate_job *j)
{
	struct page_sender_stats ps;
	uint64_t b;

	lanes_stats(j, &ps, &b, NULL);
	return ps.normal_pages + ps.compressed_pages + ps.xbzrle_pages;
}

/*
 * st.compression's mode, codec and reason (with --compress auto, what
 * the last decision said), and auto's switches. Under j->lock.
 */
static void compression_names(const struct migrate_job *j, struct migrate_stats *st)
{
	const char *name = "auto";

	if (!j->cauto)
		name = j->cc.ops->id == CODEC_ZSTD ? "zstd"
		       : j->cc.ops->id == CODEC_LZ4 ? "lz4"
						     : "none";
	snprintf(st->compression.mode, sizeof(st->compression.mode), "%s", name);
	snprintf(st->compression.codec, sizeof(st->compression.codec), "%s",
		 j->cauto ? autocomp_choice_name(j->ac.cur) : name);
	snprintf(st->compression.reason, sizeof(st->compression.reason), "%s",
		 j->cauto ? autocomp_reason_name(j->ac.why) : "fixed");
	st->compression.switches = j->ac.switches;
}

/* Called by the job thread while the lanes are idle. */
static void update_stats(struct migrate_job *j, uint64_t remaining_pages)
{
	struct page_sender_stats ps;
	struct migrate_stats *st = &j->st;
	uint64_t now = clock_now_ns(), out;
	size_t cache_bytes;

	lanes_stats(j, &ps, &out, &cache_bytes);
	pthread_mutex_lock(&j->lock);
	st->total_ms = (now - j->t0_ns) / 1000000;
	st->transferred_bytes = out;
	st->total_bytes = j->npages * PAGE;
	st->remaining_bytes = remaining_pages * PAGE;
	st->duplicate_pages = ps.duplicate_pages + j->hole_pages;
	st->normal_pages = ps.normal_pages;
	st->mbps = st->total_ms ? (double)st->transferred_bytes * 8.0 / 1e6 /
					  ((double)st->total_ms / 1000.0)
				: 0.0;
	st->xbzrle.cache_size = cache_bytes;
	st->xbzrle.bytes = ps.xbzrle_bytes;
	st->xbzrle.pages = ps.xbzrle_pages;
	st->xbzrle.cache_miss = ps.xbzrle_cache_miss;
	st->xbzrle.overflow = ps.xbzrle_overflow;
	st->compression.pages = ps.compressed_pages;
	st->compression.ratio =
		ps.compressed_out ? (double)ps.compressed_in / (double)ps.compressed_out : 0.0;
	/* busy: the compressors' share of the job's time, per lane */
	st->compression.busy = now > j->t0_ns ? (double)ps.compress_ns / (double)(now - j->t0_ns) /
							(double)j->nlanes
					      : 0.0;
	compression_names(j, st);
	st->round = j->round;
	st->throttle_pct = vm_get_throttle(j->vm);
	/* once the log is off, the last figures stay */
	if (j->dl) {
		st->ring_overflows = dirtylog_overflows(j->dl);
		st->dirty_pages_rate = dirtylog_rate(j->dl);
	}
	st->expected_downtime_ms = j->cv.expected_downtime_ns / 1000000;
	pthread_mutex_unlock(&j->lock);
}

/* us from a to b, 0 when b was not reached */
static uint64_t sw_us(uint64_t a, uint64_t b)
{
	return b > a ? (b - a) / 1000 : 0;
}

/* Publish the switchover's timeline (j->sw) as st.switchover. Job thread. */
static void publish_switch(struct migrate_job *j)
{
	uint64_t a = j->sw.start_ns;

	if (!a)
		return;
	pthread_mutex_lock(&j->lock);
	j->st.switchover.start_us = sw_us(j->t0_ns, a);
	j->st.switchover.paused_us = sw_us(a, j->sw.paused_ns);
	j->st.switchover.synced_us = sw_us(a, j->sw.synced_ns);
	j->st.switchover.pages_us = sw_us(a, j->sw.pages_ns);
	j->st.switchover.state_us = sw_us(a, j->sw.state_ns);
	j->st.switchover.sent_us = sw_us(a, j->sw.sent_ns);
	j->st.switchover.ready_us = sw_us(a, j->sw.ready_ns);
	j->st.switchover.resumed_us = sw_us(a, j->resumed_ns);
	j->st.switchover.pages = j->sw.pages;
	j->st.switchover.bytes = j->sw.bytes;
	j->st.switchover.state_bytes = j->sw.state_bytes;
	j->st.switchover.expected_us = j->sw.expected_ns / 1000;
	snprintf(j->st.switchover.reason, sizeof(j->st.switchover.reason), "%s", j->sw.reason);
	pthread_mutex_unlock(&j->lock);
}

/* The pages and bytes sent on every lane so far. Between tasks only. */
static void sent_so_far(const struct migrate_job *j, uint64_t *pages, uint64_t *bytes)
{
	struct page_sender_stats ps;

	lanes_stats(j, &ps, bytes, NULL);
	*pages = ps.pages;
}


/* ---- --compress auto -------------------------------------------------------- */

/*
 * --compress auto: decide (autocomp.h) from the lanes' totals so far:
 * every codec's figures on the sampled pages; the link's bytes over the time its
 * writes took; the cap while it applies (not once the guest is paused:
 * rl_bypass). Then every lane sends with the choice. Job thread, between
 * tasks: at each round's start, after each chunk (each slice while
 * nothing is measured yet), and before the paused guest's last pages.
 */
static int auto_pick(struct migrate_job *j)
{
	struct page_sender_stats ps;
	struct autocomp_input in = { .cpus = j->nlanes };
	enum autocomp_choice was = j->ac.cur, c;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned probe_every;
	uint64_t out;
	int ret;

	if (!j->cauto)
		return 0;
	if (cores > 0 && (unsigned long)cores < in.cpus)
		in.cpus = (unsigned)cores;
	lanes_stats(j, &ps, &out, NULL);
	memcpy(in.codec, ps.codec, sizeof(in.codec));
	lanes_link(j, &in.link_bytes, &in.link_ns);
	in.link_ns /= j->nlanes;	/* the lanes write side by side */
	if (!atomic_load(&j->rl_bypass))
		in.cap_bytes_per_s = atomic_load(&j->rl_rate);
	c = autocomp_decide(&j->ac, &in, PAGE);
	probe_every = j->ac.why == AUTOCOMP_PROBE ? AUTO_PROBE_EVERY : PAGE_SENDER_PROBE_EVERY;
	ret = lanes_set_codec(j, autocomp_codec_id(c), probe_every);
	if (ret < 0)
		return job_fail(j, ret, "cannot switch the page codec: %s", strerror(-ret));
	j->cc = autocomp_codec(c);
	if (c != was)
		pr_debug("round %u: compression %s -> %s (%s; link %.0f MiB/s; pages/s: none %.0f, "
			 "lz4 %.0f, zstd %.0f)",
			 j->round, autocomp_choice_name(was), autocomp_choice_name(c),
			 autocomp_reason_name(j->ac.why), j->ac.link_bytes_per_s / 1048576.0,
			 j->ac.rate[AUTOCOMP_NONE], j->ac.rate[AUTOCOMP_LZ4],
			 j->ac.rate[AUTOCOMP_ZSTD]);
	pthread_mutex_lock(&j->lock);
	compression_names(j, &j->st);
	pthread_mutex_unlock(&j->lock);
	return 0;
}

/* ---- the rounds ------------------------------------------------------------ */

/*
 * Bulk round: mark the memfd's holes in pages [first, first + n) clean, so
 * RAM the guest never touched is neither read (which would allocate it)
 * nor sent. Called after the chunk was cleared in KVM: a page that turns
 * into data after the clear is in the next sync, one that did before is
 * seen here as data. (Looking for holes before the clear would lose a
 * first write that lands between the two.)
 */
static void drop_holes(struct migrate_job *j, uint64_t first, uint64_t n)
{
	uint64_t pos = first, end = first + n, hole = first, run, len;

	/* the pages between two data runs are whole holes: clean */
	for (;;) {
		bool more = ramwalk_next(vm_ram_fd(j->vm), &pos, end, &run, &len);
		uint64_t stop = more ? run : end;

		for (uint64_t p = hole; p < stop; p++)
			j->hole_pages += bitmap_test_and_clear(j->bitmap, p);
		if (!more)
			break;
		hole = run + len;
	}
}

/*
 * Send every page set in the bitmap, clearing bits as it goes, on every
 * lane; then end the round on every lane (end: LANE_END_ROUND or
 * LANE_COMPLETE; lane 0's frame is the caller's to send).
 * clear_log: re-protect each chunk in KVM before reading it (precopy).
 */
static int send_dirty(struct migrate_job *j, bool bulk, bool clear_log, enum lane_task end)
{
	uint64_t chunks = DIV_ROUND_UP(j->npages, CHUNK_PAGES);
	uint64_t slice = j->o.postcopy != MIGRATE_POSTCOPY_OFF ? PC_SLICE_PAGES : CHUNK_PAGES;
	int ret;

	for (unsigned l = 0; l < j->nlanes; l++)
		j->lanes[l].round_pages = 0;
	for (uint64_t c = 0; c < chunks; c++) {
		uint64_t first = c * CHUNK_PAGES, n = MIN(CHUNK_PAGES, j->npages - first);
		bool any = bitmap_any(j->bitmap, first, n);

		/*
		 * The bulk round clears every chunk, holes included: KVM starts
		 * with every bit set, and a bit left set would send the page again.
		 */
		if (!any && !bulk)
			continue;
		if (clear_log) {
			ret = dirtylog_clear(j->dl, bulk ? NULL : j->bitmap, first, n);
			if (ret < 0)
				return job_fail(j, ret, "KVM_CLEAR_DIRTY_LOG failed: %s",
						strerror(-ret));
		}
		if (bulk)
			drop_holes(j, first, n);
		/*
		 * A job that may switch by hand sends the chunk in slices, so that
		 * `kvmig job postcopy` is heard within a slice (2 MiB), not a chunk.
		 */
		for (uint64_t s = 0, len; s < n; s += len) {
			bool probing = j->cauto && j->ac.why == AUTOCOMP_PROBE;

			len = MIN(probing ? AUTO_PROBE_SLICE_PAGES : slice, n - s);
			ret = lanes_do(j, LANE_PAGES, first + s, len, bulk);
			if (ret < 0)
				return ret;
			if (probing && (ret = auto_pick(j)) < 0)
				return ret;
			if (clear_log && atomic_load(&j->pc_request))
				break;
		}
		dirtylog_poll(j->dl);
		ret = job_check_abort(j);
		if (!ret)
			ret = retpath_poll(j);
		if (ret < 0)
			return ret;
		ret = auto_pick(j);
		if (ret < 0)
			return ret;
		update_stats(j, bitmap_count(j->bitmap, 0, j->npages));
		/* `kvmig job postcopy`: the rest of the round goes after the switch */
		if (clear_log && atomic_load(&j->pc_request))
			return 1;
	}
	j->round_pages = 0;
	for (unsigned l = 0; l < j->nlanes; l++)
		j->round_pages += j->lanes[l].round_pages;
	return lanes_do(j, end, 0, 0, false);
}

/*
 * An overflowing sync resends every page; one that overflows round after
 * round would never converge, so the job ends (before the switchover: the
 * guest runs on here) after this many in a row.
 */
#define RING_OVERFLOW_ROUNDS 5

static long sync_dirty(struct migrate_job *j)
{
	long n = dirtylog_sync(j->dl, j->bitmap);

	pthread_mutex_lock(&j->lock);
	j->st.dirty_sync_count++;
	pthread_mutex_unlock(&j->lock);
	if (n == -EOVERFLOW && !j->paused && ++j->ring_overflow_run >= RING_OVERFLOW_ROUNDS)
		return job_fail(j, -ENOBUFS,
				"the dirty ring (%u entries per vCPU) overflowed in %u rounds in a "
				"row: this host's KVM fills it faster than it can be harvested; "
				"the guest keeps running here (use --dirty-track bitmap, or a "
				"VM with a larger --dirty-ring)",
				vm_get_config(j->vm)->dirty_ring, j->ring_overflow_run);
	if (n != -EOVERFLOW)
		j->ring_overflow_run = 0;
	if (n == -EOVERFLOW) {
		/* the ring lost entries: the dirty set is unknown, resend all */
		bitmap_fill(j->bitmap, j->npages);
		pr_warn("%s: dirty ring overflowed: resending every page",
			vm_get_config(j->vm)->name);
		return (long)j->npages;
	}
	if (n < 0)
		return job_fail(j, (int)n, "reading the dirty log failed: %s", strerror((int)-n));
	return (long)bitmap_count(j->bitmap, 0, j->npages);
}

/*
 * The bandwidth the convergence estimate divides by is in page bytes per
 * second (pages that carried data, whole or as a delta), the unit of the
 * dirty set it is compared with: compression and XBZRLE show up as a
 * faster link, not as a mismatch of units.
 */
static uint64_t measure_bw(const struct migrate_job *j, uint64_t bw, uint64_t data_bytes,
			   uint64_t dt)
{
	uint64_t now;

	if (dt > 1000000 && data_bytes >= (1u << 20)) {
		now = (uint64_t)((double)data_bytes * 1e9 / (double)dt);
		return bw ? (bw + now) / 2 : now;
	}
	if (bw)
		return bw;
	now = atomic_load(&j->rl_rate);	/* the cap, when there is one */
	return now ? now : 1ull << 30;	/* a guess, checked below */
}

/* Why the switchover comes: st.switchover.reason, and the event's. */
static void set_reason(struct migrate_job *j, const char *why)
{
	snprintf(j->sw.reason, sizeof(j->sw.reason), "%s", why);
}

/* A round ended and was measured: its statistics, and its event. */
static void round_end(struct migrate_job *j, uint64_t dirty, uint64_t bw)
{
	pthread_mutex_lock(&j->lock);
	j->st.bandwidth = bw;
	pthread_mutex_unlock(&j->lock);
	update_stats(j, dirty);
	j->rounds_done++;
	job_event(j, "round");
}

static int precopy(struct migrate_job *j)
{
	uint64_t bw = 0;
	char msg[512];
	int ret;

	bitmap_fill(j->bitmap, j->npages);
	if (j->o.postcopy == MIGRATE_POSTCOPY_NOW) {
		set_reason(j, "post-copy now");
		return 1;	/* no pre-copy at all */
	}
	for (j->round = 0;; j->round++) {
		uint64_t t0 = clock_now_ns(), d0 = data_pages(j), data, dt;
		struct wire_end_round er;
		long dirty;
		enum converge_action act;

		lanes_set_round(j, j->round);
		ret = auto_pick(j);
		if (ret < 0)
			return ret;
		ret = send_dirty(j, j->round == 0, true, LANE_END_ROUND);
		if (ret == 1)
			set_reason(j, "post-copy asked for");
		if (ret != 0)
			return ret;	/* an error, or 1: switch to post-copy now */
		dt = clock_now_ns() - t0;
		data = (data_pages(j) - d0) * PAGE;
		bw = measure_bw(j, bw, data, dt);
		dirty = sync_dirty(j);
		if (dirty < 0)
			return (int)dirty;
		er.round = j->round;
		er.pages = j->round_pages;
		er.dirty_rate = dirtylog_rate(j->dl);
		ret = job_send_ctrl(j, frame_put_end_round(j->ctrl, JOB_CTRL_BUF, &er));
		if (ret < 0)
			return ret;
		j->cv.round_ns = dt;
		j->cv.left_ns = 0;
		if (j->deadline_ns) {
			uint64_t now = clock_now_ns();

			j->cv.left_ns = j->deadline_ns > now ? j->deadline_ns - now : 1;
		}
		act = converge_decide(&j->cv, j->round, (uint64_t)dirty * PAGE, data, bw,
				      dirtylog_rate(j->dl), msg, sizeof(msg));
		/*
		 * --postcopy: after the first full round, unless it converges
		 * (the estimate is under --max-downtime: a short stop-and-copy
		 * beats post-copy then, and pre-copy goes on while its rounds
		 * shrink the dirty set); earlier if the estimate gives up.
		 */
		if (act != CONVERGE_SWITCHOVER && !j->cv.fits &&
		    j->o.postcopy == MIGRATE_POSTCOPY_AUTO) {
			pr_info("%s: round %u: switching to post-copy (%s)", vm_get_config(j->vm)->name,
				j->round, act == CONVERGE_GIVE_UP ? msg : "after the first full round");
			set_reason(j, act == CONVERGE_GIVE_UP ? "post-copy: pre-copy gave up"
							      : "post-copy after the first full round");
			round_end(j, (uint64_t)dirty, bw);
			return 1;
		}
		if (atomic_load(&j->pc_request)) {
			set_reason(j, "post-copy asked for");
			round_end(j, (uint64_t)dirty, bw);
			return 1;
		}
		if (act == CONVERGE_SWITCHOVER) {
			/*
			 * Switch only once the destination has applied the round:
			 * what it still had to apply would land in the downtime.
			 * A long wait means the data was in flight, not applied:
			 * the link is slower than the send rate said; measure it
			 * end to end and go another round. Meanwhile the guest
			 * dirties more: from now on the estimate counts that lag,
			 * and when it no longer fits, another round goes first
			 * (--max-downtime is a ceiling).
			 */
			uint64_t tw = clock_now_ns(), waited, est;
			bool last = j->o.max_iterations && j->round + 1 >= j->o.max_iterations;

			ret = retpath_wait_acked(j, j->round, ACK_TIMEOUT_MS);
			if (ret < 0)
				return ret;
			waited = clock_now_ns() - tw;
			j->cv.lag_ns = waited;
			est = converge_estimate(&j->cv, (uint64_t)dirty * PAGE, bw,
						dirtylog_rate(j->dl));
			if (!last && waited * 2 <= j->cv.max_downtime_ns &&
			    est > j->cv.max_downtime_ns) {
				pr_debug("round %u: the guest dirtied on for %llu us while the "
					 "destination applied the round: %llu us expected, over "
					 "the ceiling; another round",
					 j->round, (unsigned long long)waited / 1000,
					 (unsigned long long)est / 1000);
				act = CONVERGE_CONTINUE;
			}
			if (waited * 2 > j->cv.max_downtime_ns && !last) {
				uint64_t e2e = (uint64_t)((double)data * 1e9 /
							  (double)(clock_now_ns() - t0));

				pr_debug("round %u: the destination applied it %llu ms after the "
					 "send: %llu MiB/s end to end",
					 j->round, (unsigned long long)waited / 1000000,
					 (unsigned long long)e2e >> 20);
				if (e2e && e2e < bw)
					bw = e2e;
				act = CONVERGE_CONTINUE;
			}
		}
		round_end(j, (uint64_t)dirty, bw);
		switch (act) {
		case CONVERGE_SWITCHOVER:
			set_reason(j, j->cv.reason);
			pr_debug("round %u: switchover: %s (expected downtime %llu us)", j->round,
				 j->cv.reason, (unsigned long long)j->cv.expected_downtime_ns / 1000);
			return 0;
		case CONVERGE_GIVE_UP:
			return job_fail(j, -ETIME, "%s", msg);
		case CONVERGE_THROTTLE:
			vm_set_throttle(j->vm, j->cv.throttle);
			pr_info("%s: dirtying outruns the link: vCPUs throttled to %u%%",
				vm_get_config(j->vm)->name, j->cv.throttle);
			break;
		case CONVERGE_CONTINUE:
			break;
		}
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
	}
}

/*
 * The switchover's first step, both kinds: pause the guest (a failure
 * later resumes only what the job paused), refuse a dead one, stop the
 * throttle, and take the last dirty set. Return: its pages, or -errno.
 */
static long pause_for_switch(struct migrate_job *j, uint64_t *pause_ns)
{
	int ret;

	long n;

	job_set_status(j, "device");
	*pause_ns = clock_now_ns();
	j->sw.start_ns = *pause_ns;
	j->sw.expected_ns = j->cv.expected_downtime_ns;
	sent_so_far(j, &j->sw.pages0, &j->sw.bytes0);
	ret = vm_pause(j->vm, NULL);
	if (ret < 0)
		return job_fail(j, ret, "cannot pause the guest: %s", strerror(-ret));
	j->paused = !j->was_paused;
	j->sw.paused_ns = clock_now_ns();
	/* from here every ms of throttle would be downtime (job.h) */
	atomic_store(&j->rl_bypass, true);
	if (vm_dead_vcpus(j->vm))
		return job_fail(j, -EIO,
				"the guest crashed before the switchover (%u vCPU(s) stopped by KVM); "
				"a dead guest is not migrated",
				vm_dead_vcpus(j->vm));
	pr_debug("switchover: paused in %llu us",
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	vm_set_throttle(j->vm, 0);
	n = sync_dirty(j);
	j->sw.synced_ns = clock_now_ns();
	return n;
}

/* The guest is paused for the switch and dirty pages are left: the event. */
static void switchover_event(struct migrate_job *j, const char *mode, long dirty)
{
	struct migrate_event ev;

	job_event_init(j, &ev, "switchover");
	snprintf(ev.mode, sizeof(ev.mode), "%s", mode);
	snprintf(ev.reason, sizeof(ev.reason), "%s", j->sw.reason);
	ev.rounds = j->rounds_done;
	ev.remaining_bytes = (uint64_t)dirty * PAGE;
	job_event_post(j, &ev);
}

/*
 * The state and COMPLETE (with the RAM digest under --verify: SHA-256 in
 * page order, or post-copy's order-free one), then the hand-over.
 * captured: the state, captured already (send_state frees it), or NULL to
 * capture it here.
 */
static int send_state(struct migrate_job *j, uint64_t pause_ns, bool postcopy,
		      struct vm_state *captured)
{
	struct vm_state *state = captured ? captured : calloc(1, sizeof(*state));
	struct page_sender_stats ps;
	struct wire_complete done;
	uint32_t nsec = 0;
	uint64_t out, b0;
	int ret;

	if (!state)
		return job_fail(j, -ENOMEM, "out of memory");
	if (!captured) {
		ret = vm_capture(j->vm, state);
		if (ret < 0) {
			job_fail(j, ret, "cannot capture the vCPU and device state: %s",
				 strerror(-ret));
			goto out;
		}
		j->sw.state_ns = clock_now_ns();
	}
	pr_debug("switchover: state captured at +%llu us",
		 (unsigned long long)(j->sw.state_ns - pause_ns) / 1000);
	b0 = j->io.bytes_out;
	ret = outgoing_state(&j->lanes[0].rl_io, state, &nsec);
	if (ret < 0) {
		job_fail(j, ret, "cannot send the state: %s", strerror(-ret));
		goto out;
	}
	j->sw.state_bytes = j->io.bytes_out - b0;
	memset(&done, 0, sizeof(done));
	done.state_sections = nsec;
	lanes_stats(j, &ps, &out, NULL);
	done.pages = ps.pages;
	if (j->o.verify) {
		ret = postcopy ? ram_digest_pages(vm_ram_fd(j->vm), vm_ram(j->vm),
						  vm_ram_bytes(j->vm), NULL, done.digest)
			       : ram_digest(vm_ram_fd(j->vm), vm_ram(j->vm), vm_ram_bytes(j->vm),
					    done.digest);
		if (ret < 0) {
			job_fail(j, ret, "cannot compute the RAM digest");
			goto out;
		}
		done.digest_alg = postcopy ? WIRE_DIGEST_PAGES : WIRE_DIGEST_SHA256;
	}
	ret = job_send_ctrl(j, frame_put_complete(j->ctrl, JOB_CTRL_BUF, &done));
	if (ret < 0)
		goto out;
	j->sw.sent_ns = clock_now_ns();
	lanes_stats(j, &ps, &out, NULL);
	j->sw.bytes = out - j->sw.bytes0;
	pr_debug("switchover: COMPLETE sent at +%llu us",
		 (unsigned long long)(j->sw.sent_ns - pause_ns) / 1000);
	publish_switch(j);
	ret = handover_run(j);
	publish_switch(j);
out:
	free(state);
	return ret;
}

/*
 * The last pages of a paused guest: nothing re-dirties them and no chunk
 * needs a dirty-log clear, so every lane takes its share of the whole
 * bitmap as one task (no barrier per chunk), then ends its channel.
 */
static int send_paused(struct migrate_job *j)
{
	int ret;

	for (unsigned l = 0; l < j->nlanes; l++)
		j->lanes[l].round_pages = 0;
	ret = lanes_do(j, LANE_PAGES, 0, j->npages, false);
	if (ret < 0)
		return ret;
	j->round_pages = 0;
	for (unsigned l = 0; l < j->nlanes; l++)
		j->round_pages += j->lanes[l].round_pages;
	return lanes_do(j, LANE_COMPLETE, 0, 0, false);
}

/*
 * The state capture of the paused guest, on its own thread while the
 * last pages go: the vCPU's core is free once it is paused. The thread
 * only reads KVM's state (VM and vCPU ioctls, the devices under their
 * locks); the job thread meanwhile only reads RAM and writes the lanes.
 */
struct capture {
	struct vm *vm;
	struct vm_state *state;
	int ret;
	uint64_t done_ns;
};

static void *capture_thread(void *arg)
{
	struct capture *c = arg;

	c->ret = vm_capture(c->vm, c->state);
	c->done_ns = clock_now_ns();
	return NULL;
}

static int stop_and_copy(struct migrate_job *j, uint64_t *pause_ns)
{
	long dirty = pause_for_switch(j, pause_ns);
	struct capture cap = { .vm = j->vm };
	pthread_t th;
	bool threaded;
	int ret;

	if (dirty < 0)
		return (int)dirty;
	/* the paused guest's pages go uncapped, on a link measured so far */
	ret = auto_pick(j);
	if (ret < 0)
		return ret;
	switchover_event(j, "stop-and-copy", dirty);
	cap.state = calloc(1, sizeof(*cap.state));
	if (!cap.state)
		return job_fail(j, -ENOMEM, "out of memory");
	/* without a thread, the capture runs here after the pages */
	threaded = pthread_create(&th, NULL, capture_thread, &cap) == 0;
	ret = job_send_ctrl(j, frame_put_switchover(j->ctrl, JOB_CTRL_BUF, j->round + 1,
					       j->was_paused ? WIRE_SWITCHOVER_PAUSED : 0));
	if (ret == 0) {
		lanes_set_round(j, j->round + 1);
		ret = send_paused(j);
	}
	j->sw.pages_ns = clock_now_ns();
	if (threaded)
		pthread_join(th, NULL);
	else
		capture_thread(&cap);
	if (ret == 0 && cap.ret < 0)
		ret = job_fail(j, cap.ret, "cannot capture the vCPU and device state: %s",
			       strerror(-cap.ret));
	if (ret < 0) {
		free(cap.state);
		return ret;
	}
	j->sw.state_ns = cap.done_ns;
	{
		uint64_t pages, bytes;

		sent_so_far(j, &pages, &bytes);
		j->sw.pages = pages - j->sw.pages0;
	}
	pr_debug("stop-and-copy: last %llu pages sent at +%llu us", (unsigned long long)dirty,
		 (unsigned long long)(j->sw.pages_ns - *pause_ns) / 1000);
	return send_state(j, *pause_ns, false, cap.state);
}

/*
 * Post-copy's switchover: pause, the last sync, SWITCHOVER(POSTCOPY), the
 * needed set (NEEDED), the state, COMPLETE, the hand-over; then the pages
 * follow on demand (postcopy.h). Before GO any failure resumes the guest
 * here, as in stop-and-copy.
 */
static int postcopy_switchover(struct migrate_job *j, uint64_t *pause_ns)
{
	size_t cap = WIRE_HDR_BYTES + WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 + WIRE_CRC_BYTES;
	uint8_t *buf;
	long dirty;
	int ret;

	atomic_store(&j->pc_switched, true);
	dirty = pause_for_switch(j, pause_ns);
	if (dirty < 0)
		return (int)dirty;
	/* untouched RAM is zero on both sides: never needed */
	drop_holes(j, 0, j->npages);
	switchover_event(j, "postcopy", (long)bitmap_count(j->bitmap, 0, j->npages));
	/* every lane's pages so far are out, and the other channels end */
	ret = lanes_do(j, LANE_COMPLETE, 0, 0, false);
	if (ret < 0)
		return ret;
	ret = job_send_ctrl(j, frame_put_switchover(j->ctrl, JOB_CTRL_BUF, j->round + 1,
					       WIRE_SWITCHOVER_POSTCOPY |
						       (j->was_paused ? WIRE_SWITCHOVER_PAUSED : 0)));
	if (ret < 0)
		return ret;
	buf = malloc(cap);
	if (!buf)
		return job_fail(j, -ENOMEM, "out of memory");
	for (uint64_t first = 0; first < j->npages; first += WIRE_MAX_BITMAP) {
		uint32_t n = (uint32_t)MIN((uint64_t)WIRE_MAX_BITMAP, j->npages - first);
		ssize_t len;

		if (!bitmap_any(j->bitmap, first, n))
			continue;
		len = frame_put_bitmap(buf, cap, WIRE_F_NEEDED, first, n, 0, j->bitmap + first / 64);
		ret = len < 0 ? (int)len : mio_write(&j->lanes[0].rl_io, buf, (size_t)len);
		if (ret < 0) {
			free(buf);
			return job_fail(j, ret, "cannot send the needed pages: %s", strerror(-ret));
		}
	}
	free(buf);
	j->sw.pages_ns = clock_now_ns();	/* no pages move while paused: the needed set did */
	pr_debug("post-copy switchover: %llu pages needed, paused %llu us ago",
		 (unsigned long long)bitmap_count(j->bitmap, 0, j->npages),
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	ret = send_state(j, *pause_ns, true, NULL);
	if (ret < 0)
		return ret;
	/*
	 * The guest runs at the destination: the cap applies again. The pages
	 * it faults on go on the fault channel, never behind the limiter
	 * (postcopy.h); what remains is the background push, which may last
	 * as long as a pre-copy would, and the link's other users need the
	 * cap then as they did before. Only the paused window, a few ms of
	 * state and the needed set, went uncapped.
	 */
	atomic_store(&j->rl_bypass, false);
	pthread_mutex_lock(&j->lock);
	j->st.postcopy.active = true;
	pthread_mutex_unlock(&j->lock);
	{
		struct migrate_event ev;

		job_event_init(j, &ev, "postcopy");
		snprintf(ev.status, sizeof(ev.status), "postcopy");
		ev.downtime_ms = (j->resumed_ns - *pause_ns) / 1000000;
		ev.remaining_bytes = bitmap_count(j->bitmap, 0, j->npages) * PAGE;
		job_event_post(j, &ev);
	}
	pr_info("%s: post-copy: the guest runs at the destination after %llu ms of downtime; "
		"%llu pages follow on demand",
		vm_get_config(j->vm)->name,
		(unsigned long long)(j->resumed_ns - *pause_ns) / 1000000,
		(unsigned long long)bitmap_count(j->bitmap, 0, j->npages));
	return postcopy_serve(j);
}

/* ---- the job ---------------------------------------------------------------- */

static void *job_thread(void *arg)
{
	struct migrate_job *j = arg;
	uint64_t t_setup, pause_ns = 0;
	char msg[300];
	int ret;

	ret = lanes_senders_create(j, &j->cc, j->cauto);
	if (ret < 0)
		goto out;
	ret = retpath_handshake(j, &j->lanes[0]);
	if (ret < 0)
		goto out;
	if (j->o.postcopy != MIGRATE_POSTCOPY_OFF) {
		if (!j->pc_enabled) {
			ret = job_fail(j, -EOPNOTSUPP,
				       "the destination cannot do post-copy (no userfaultfd for "
				       "shared memory there, or an older kvmig: its log says "
				       "which); the guest stays here");
			goto out;
		}
		ret = postcopy_open_fault(j);
		if (ret < 0)
			goto out;
	}
	ret = lanes_open(j);
	if (ret < 0)
		goto out;
	ret = dirtylog_start(j->vm, j->o.dirty_track, &j->dl, msg, sizeof(msg));
	if (ret < 0) {
		job_fail(j, ret, "%s", msg);
		goto out;
	}
	t_setup = clock_now_ns();
	pthread_mutex_lock(&j->lock);
	j->st.setup_ms = (t_setup - j->t0_ns) / 1000000;
	pthread_mutex_unlock(&j->lock);
	job_set_status(j, "active");
	job_event(j, "started");
	ret = precopy(j);
	if (ret < 0)
		goto out;
	ret = ret == 1 ? postcopy_switchover(j, &pause_ns) : stop_and_copy(j, &pause_ns);
out:
	if (ret < 0 && atomic_load(&j->cancel) && !j->committed) {
		/* a cancel shuts the channel down: the I/O error is its echo */
		ret = -ECANCELED;
		snprintf(j->err, sizeof(j->err), "cancelled by the user");
	}
	if (ret < 0)
		handover_fail(j, ret);
	lanes_stop(j);
	dirtylog_stop(j->dl);
	j->dl = NULL;
	update_stats(j, 0);
	pthread_mutex_lock(&j->lock);
	{
		uint64_t end = j->pc_done_ns ? j->pc_done_ns
					     : j->resumed_ns ? j->resumed_ns : clock_now_ns();

		j->st.total_ms = (end - j->t0_ns) / 1000000;
		if (ret == 0)
			j->st.downtime_ms = (j->resumed_ns - pause_ns) / 1000000;
	}
	if (ret == 0) {
		j->st.remaining_bytes = 0;
		snprintf(j->st.status, sizeof(j->st.status), "completed");
	} else {
		snprintf(j->st.status, sizeof(j->st.status), "%s",
			 ret == -ECANCELED ? "cancelled" : "failed");
		snprintf(j->st.error, sizeof(j->st.error), "%s", j->err);
	}
	/* under the lock: migrate_cancel may be shutting them down */
	mio_close(&j->io);
	if (j->fio_open)
		mio_close(&j->fio);
	j->fio_open = false;
	lanes_close(j);
	pthread_mutex_unlock(&j->lock);
	{
		struct migrate_event ev;

		job_event_init(j, &ev, ret == 0 ? "completed"
					  : ret == -ECANCELED ? "cancelled" : "failed");
		ev.total_ms = j->st.total_ms;
		if (ret < 0)
			snprintf(ev.error, sizeof(ev.error), "%s", j->st.error);
		job_event_post(j, &ev);
	}
	j->result = ret;
	atomic_store(&j->finished, true);
	return NULL;
}

int migrate_start(struct vm *vm, const char *uri, const struct migrate_opts *o,
		  struct migrate_job **out, char *err, size_t errlen)
{
	struct channel_info info;
	struct codec_config cc;
	struct migrate_job *j;
	int ret;

	*out = NULL;
	ret = migrate_opts_check(o, err, errlen);
	if (ret < 0)
		return ret;
	/* auto starts with none (autocomp.h) */
	if (codec_by_name(migrate_compress_auto(o->compress) ? "none" : o->compress, &cc) < 0) {
		snprintf(err, errlen, "unknown compression '%s'", o->compress);
		return -EINVAL;
	}
	/* a paused VM moves too (as with virsh and QEMU), and arrives paused */
	if (vm_get_run_state(vm) == VM_RUN_STOPPED || vm_dead_vcpus(vm)) {
		snprintf(err, errlen, "VM %s %s", vm_get_config(vm)->name,
			 vm_dead_vcpus(vm) ? "has a vCPU that KVM stopped (a dead guest is not "
					     "migrated)"
					   : "has stopped for good");
		return -EINVAL;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	j->vm = vm;
	j->was_paused = vm_get_run_state(vm) != VM_RUN_RUNNING;
	j->o = *o;
	snprintf(j->uri, sizeof(j->uri), "%s", uri);
	migrate_opts_channel(&j->o, &j->co);
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->rl_lock, NULL);
	j->cc = cc;
	j->cauto = migrate_compress_auto(o->compress);
	autocomp_init(&j->ac, AUTOCOMP_NONE);
	compression_names(j, &j->st);	/* no other thread yet */
	pthread_mutex_init(&j->task_lock, NULL);
	pthread_cond_init(&j->task_cond, NULL);
	pthread_cond_init(&j->done_cond, NULL);
	pthread_cond_init(&j->pc_cond, NULL);
	job_events_init(&j->events);
	j->nlanes = o->parallel;
	lanes_init(j);
	if (getrandom(&j->session, sizeof(j->session), 0) != sizeof(j->session))
		j->session = clock_now_ns() ^ (uint64_t)(uintptr_t)j;
	j->npages = vm_ram_bytes(vm) / PAGE;
	j->t0_ns = clock_now_ns();
	if (o->timeout_ms)
		j->deadline_ns = j->t0_ns + o->timeout_ms * 1000000ull;
	converge_init(&j->cv, o->max_downtime_ms * 1000000ull, o->max_iterations,
		      o->auto_converge, VM_MAX_THROTTLE);
	ratelimit_init(&j->rl, o->bandwidth, j->t0_ns);
	atomic_store(&j->rl_rate, o->bandwidth);
	j->st.bandwidth_limit = o->bandwidth;
	j->ctrl = malloc(JOB_CTRL_BUF);
	j->rbuf = malloc(MIO_FRAME_BUF);
	j->bitmap = calloc(bitmap_words(j->npages), 8);
	snprintf(j->st.status, sizeof(j->st.status), "setup");
	j->st.total_bytes = j->npages * PAGE;
	j->st.parallel = o->parallel;
	if (!j->ctrl || !j->rbuf || !j->bitmap) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	if (o->ssh_data_tls) {
		/* SSH proves who both ends are and hands over a key; TLS carries the pages */
		ret = sshtls_exchange(uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, &j->sshtls, err, errlen);
		if (ret < 0)
			goto fail;
		snprintf(j->uri, sizeof(j->uri), "%s", j->sshtls.tls_uri);
		sshtls_channel_opts(&j->sshtls, &j->co);
	}
	ret = mio_connect(&j->io, j->uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, err, errlen);
	if (ret < 0)
		goto fail;
	mio_get_info(&j->io, &info);
	snprintf(j->st.transport.kind, sizeof(j->st.transport.kind), "%s",
		 o->ssh_data_tls ? "ssh+tls" : info.kind);
	snprintf(j->st.transport.cipher, sizeof(j->st.transport.cipher), "%s", info.cipher);
	j->st.transport.ktls = info.ktls;
	ret = -pthread_create(&j->thread, NULL, job_thread, j);
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-ret));
		mio_close(&j->io);
		goto fail;
	}
	j->thread_started = true;
	*out = j;
	return 0;
fail:
	j->result = ret;
	migrate_job_free(j);
	return ret;
}

void migrate_get_stats(struct migrate_job *j, struct migrate_stats *st)
{
	pthread_mutex_lock(&j->lock);
	*st = j->st;
	if (!atomic_load(&j->finished))
		st->total_ms = (clock_now_ns() - j->t0_ns) / 1000000;
	pthread_mutex_unlock(&j->lock);
}

int migrate_set_bandwidth(struct migrate_job *j, uint64_t bytes_per_s)
{
	atomic_store(&j->rl_rate, bytes_per_s);
	pthread_mutex_lock(&j->lock);
	j->st.bandwidth_limit = bytes_per_s;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

const struct migrate_opts *migrate_get_opts(const struct migrate_job *j)
{
	return &j->o;
}

void migrate_cancel(struct migrate_job *j)
{
	bool precopy;

	atomic_store(&j->cancel, true);
	/*
	 * Before stop-and-copy, wake a send blocked on a slow peer. Once the
	 * guest is paused and its state is on the way, the destination may
	 * already run it: the job then finishes its handshake instead.
	 */
	pthread_mutex_lock(&j->lock);
	precopy = !strcmp(j->st.status, "setup") || !strcmp(j->st.status, "active");
	if (precopy && j->io.priv)
		mio_shutdown(&j->io);
	if (precopy)
		lanes_shutdown(j);
	/* post-copy: wake the push, the fault server, a wait for resume */
	if (atomic_load(&j->pc_switched) && !precopy) {
		if (j->io.priv)
			mio_shutdown(&j->io);
		postcopy_kick(j);
	}
	pthread_mutex_unlock(&j->lock);
}

int migrate_postcopy(struct migrate_job *j, char *err, size_t errlen)
{
	int ret = 0;

	if (j->o.postcopy == MIGRATE_POSTCOPY_OFF) {
		snprintf(err, errlen,
			 "the job was started without --postcopy, so the destination was not "
			 "prepared for post-copy (use --postcopy=manual to switch by hand)");
		return -EINVAL;
	}
	pthread_mutex_lock(&j->lock);
	if (atomic_load(&j->pc_switched) || atomic_load(&j->pc_request)) {
		snprintf(err, errlen, "the job is switching or has switched to post-copy already");
		ret = -EALREADY;
	} else if (strcmp(j->st.status, "setup") && strcmp(j->st.status, "active")) {
		snprintf(err, errlen, "the job is past pre-copy (status %s)", j->st.status);
		ret = -EBUSY;
	} else {
		atomic_store(&j->pc_request, true);
	}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int migrate_resume(struct migrate_job *j, const char *uri, char *err, size_t errlen)
{
	int ret = 0;

	if (uri && strlen(uri) >= sizeof(j->pc_resume_uri)) {
		snprintf(err, errlen, "the URI is too long");
		return -EINVAL;
	}
	pthread_mutex_lock(&j->lock);
	if (strcmp(j->st.status, "postcopy-paused")) {
		snprintf(err, errlen,
			 "the job is not waiting to resume a broken post-copy (status %s)",
			 j->st.status);
		ret = -EINVAL;
	} else {
		snprintf(j->pc_resume_uri, sizeof(j->pc_resume_uri), "%s", uri ? uri : "");
		j->pc_resume_req = true;
		pthread_cond_broadcast(&j->pc_cond);
	}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int migrate_next_event(struct migrate_job *j, uint64_t after_seq, struct migrate_event *ev)
{
	return job_events_next(&j->events, after_seq, ev);
}

void migrate_set_event_notify(struct migrate_job *j, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&j->events.lock);
	j->events.notify = fn;
	j->events.notify_ctx = ctx;
	pthread_mutex_unlock(&j->events.lock);
}

bool migrate_finished(struct migrate_job *j)
{
	return atomic_load(&j->finished);
}

int migrate_wait(struct migrate_job *j)
{
	if (j->thread_started) {
		pthread_join(j->thread, NULL);
		j->thread_started = false;
	}
	return j->result;
}

void migrate_job_free(struct migrate_job *j)
{
	if (!j)
		return;
	if (j->thread_started) {
		pthread_join(j->thread, NULL);
		j->thread_started = false;
	}
	lanes_destroy(j);
	pthread_cond_destroy(&j->task_cond);
	pthread_cond_destroy(&j->done_cond);
	pthread_cond_destroy(&j->pc_cond);
	pthread_mutex_destroy(&j->task_lock);
	pthread_mutex_destroy(&j->rl_lock);
	free(j->ctrl);
	free(j->rbuf);
	free(j->bitmap);
	pthread_mutex_destroy(&j->lock);
	job_events_destroy(&j->events);
	explicit_bzero(&j->sshtls, sizeof(j->sshtls));
	free(j);
}
