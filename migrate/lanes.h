/* SPDX-License-Identifier: MIT */
/*
 * lanes.h - the lanes of a migration: the pages of a round, sent on the N
 * connections of --parallel N (N = 1 without it); internal to migrate/.
 *
 * Lane 0 is the job thread on the first connection (j->io), which also
 * carries the control frames; lanes 1..N-1 are threads with their own
 * connection and page sender (compressor and XBZRLE cache; the cache is
 * split among the lanes). Every lane writes through the one rate limiter
 * of the job (j->rl under j->rl_lock), which the paused guest's
 * switchover skips (job.h's rl_bypass).
 *
 * lanes_do() hands a task to every lane at once (the chunk task: the
 * bitmap's pages [first, first + n); or the end of a round or of the
 * channel) and returns when all are done: a barrier. For a chunk each lane
 * sends the bitmap words w with w % N == its number, so a page always goes
 * the same way, and clears the bits it sent; the job thread waits for all
 * lanes at the end of a chunk (chunks are 16 MiB, so the barrier costs
 * little) and only then touches the dirty log and the bitmap again. Before
 * the job thread sends END_ROUND or the state on channel 0, every other lane
 * has flushed and sent its END_ROUND or COMPLETE (LANE_END_ROUND,
 * LANE_COMPLETE), so the destination has a round's pages from every channel
 * once channel 0 ends it.
 *
 * Every function is called by the job thread, unless it says otherwise.
 */
#ifndef KVMIG_MIGRATE_LANES_H
#define KVMIG_MIGRATE_LANES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "migrate/mio.h"
#include "protocol/codec.h"

struct codec_config;
struct migrate_job;
struct page_sender;
struct page_sender_stats;

enum lane_task {
	LANE_IDLE,
	LANE_PAGES,		/* send this lane's pages of a chunk */
	LANE_END_ROUND,		/* flush, then END_ROUND (lanes 1..N-1) */
	LANE_COMPLETE,		/* flush, then COMPLETE (lanes 1..N-1) */
	LANE_EXIT,
};

/*
 * One lane. "Its thread" is the job thread for lane 0 and the lane's own
 * thread for lanes 1..N-1; it uses the lane's connection and sender only
 * inside a task, the job thread only between tasks.
 */
struct lane {
	struct migrate_job *j;		/* fixed (lanes_init) */
	unsigned idx;			/* fixed: its channel number */
	struct mio *io;			/* fixed: its connection (lane 0: &j->io) */
	struct mio conn;		/* lanes 1..N-1: connected and closed by the job
					 * thread, used by its thread; migrate_cancel
					 * shuts it down under j->lock while open */
	bool open;			/* conn is connected (under j->lock) */
	struct mio rl_io;		/* fixed: io behind the rate limiter */
	struct page_sender *ps;		/* created by the job thread before the lanes start */
	pthread_t thread;		/* job thread (lanes_open/lanes_stop) */
	bool started;			/* job thread: the thread runs */
	uint64_t write_ns;		/* its thread: time in its connection's writes (the
					 * link's rate, lanes_link); the job thread reads
					 * it between tasks */
	uint64_t round_pages;		/* its pages this round: its thread in a task,
					 * the job thread reads and resets it between */
	int ret;			/* the lane's failure: its thread writes it (lanes
					 * 1..N-1 under j->task_lock), the job thread reads
					 * it after the barrier */
	uint8_t ctrl[256];		/* its thread: END_ROUND / COMPLETE frames */
};

/* Set up lanes[0..nlanes) of a new job (migrate_start, before the job thread). */
void lanes_init(struct migrate_job *j);

/*
 * One page sender per lane, with codec cc and 1/N of the XBZRLE cache;
 * auto_codec (--compress auto): each holds lz4 and zstd too (autocomp.h).
 * Return: 0, or -errno with j->err set.
 */
int lanes_senders_create(struct migrate_job *j, const struct codec_config *cc,
			 bool auto_codec) __must_check;

/*
 * Every lane's sender sends with codec id from now on and probes the others
 * on 1 page in probe_every (page_sender_set_codec, page_sender_set_probe).
 */
int lanes_set_codec(struct migrate_job *j, enum codec_id id, unsigned probe_every) __must_check;

/*
 * The link so far: bytes written on every connection, and the time the
 * writes took (all lanes added up; rate limiter waits excluded). Between
 * tasks only.
 */
void lanes_link(const struct migrate_job *j, uint64_t *bytes, uint64_t *write_ns);

/*
 * Connect lanes 1..N-1, shake hands on each (retpath.h) and start their
 * threads. Return: 0, or -errno with j->err set.
 */
int lanes_open(struct migrate_job *j) __must_check;

/*
 * Every lane does task t: lanes 1..N-1 on their threads, lane 0 here.
 * first, n, bulk: the chunk, for LANE_PAGES. When a lane failed, reads what
 * the destination said meanwhile on channel 0 (its ERROR names the cause).
 * Return when all are done: 0, or -errno with j->err set.
 */
int lanes_do(struct migrate_job *j, enum lane_task t, uint64_t first, uint64_t n,
	     bool bulk) __must_check;

/* Tell every lane's sender the round its pages belong to. */
void lanes_set_round(struct migrate_job *j, unsigned round);

/*
 * The lanes' senders, added up; and the bytes written on every connection.
 * cache_bytes (may be NULL): the XBZRLE caches' size. Between tasks only.
 */
void lanes_stats(const struct migrate_job *j, struct page_sender_stats *sum,
		 uint64_t *bytes_out, size_t *cache_bytes);

/* Make the lane threads exit and join them; safe when none started. */
void lanes_stop(struct migrate_job *j);

/* Wake lanes 1..N-1 blocked on their connection. Any thread, under j->lock. */
void lanes_shutdown(struct migrate_job *j);

/* Close lanes 1..N-1's connections, after lanes_stop. Under j->lock. */
void lanes_close(struct migrate_job *j);

/* Free the senders (migrate_job_free; the threads are gone). */
void lanes_destroy(struct migrate_job *j);

#endif
