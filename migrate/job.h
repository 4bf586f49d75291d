/* SPDX-License-Identifier: MIT */
/*
 * job.h - the state of one outgoing migration, shared by the parts of the
 * source side; internal to migrate/ (the public contract is migrate.h).
 *
 * The parts: source.c runs the job (migrate_start..migrate_job_free, the
 * rounds: precopy, stop-and-copy); lanes.h sends the pages of a round on
 * the N connections of --parallel N; retpath.h reads what the destination
 * says (HELLO_ACK, ACK, ERROR); handover.h is the READY/GO hand-over and
 * its commit rule. job.c holds the few helpers they all use.
 *
 * Threads: the controller (migrate_start, _get_stats, _cancel, _wait,
 * _job_free), the job thread (everything else, and lane 0), and the lane
 * threads 1..N-1 (lanes.h). Each field below says who owns it and which
 * lock, if any, guards it. "Fixed" means written by migrate_start before
 * the job thread starts and only read after.
 */
#ifndef KVMIG_MIGRATE_JOB_H
#define KVMIG_MIGRATE_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"
#include "migrate/autocomp.h"
#include "migrate/converge.h"
#include "migrate/lanes.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "migrate/ratelimit.h"
#include "migrate/sshtls.h"
#include "protocol/codec.h"
#include "protocol/channel.h"

#define JOB_HANDSHAKE_TIMEOUT_MS 10000	/* connect, and HELLO to HELLO_ACK */
#define JOB_CTRL_BUF 4096		/* bytes of j->ctrl */

/*
 * The bounded event ring (migrate.h's events): the job thread posts, any
 * thread reads, each under lock. ring[(seq - 1) % MIGRATE_EVENT_RING]
 * holds event seq, for the newest MIGRATE_EVENT_RING seqs up to last.
 */
struct job_events {
	pthread_mutex_t lock;
	struct migrate_event ring[MIGRATE_EVENT_RING];	/* under lock */
	uint64_t last;			/* under lock: the newest seq (0: none yet) */
	void (*notify)(void *ctx);	/* under lock: migrate_set_event_notify */
	void *notify_ctx;
};

/* Set up an empty ring. */
void job_events_init(struct job_events *e);
void job_events_destroy(struct job_events *e);

/*
 * Append *ev (its seq is assigned, the oldest event dropped when the
 * ring is full), then call the notify function, outside the lock.
 * Return: the seq given to it.
 */
uint64_t job_events_post(struct job_events *e, struct migrate_event *ev);

/* migrate_next_event() on a ring. Return: 1 and *ev, or 0. */
int job_events_next(struct job_events *e, uint64_t after_seq, struct migrate_event *ev);

struct migrate_job {
	struct vm *vm;			/* fixed; only the job thread acts on it */
	struct migrate_opts o;		/* fixed */
	char uri[256];			/* fixed: where every lane connects */
	struct channel_opts co;		/* fixed: how (migrate_opts_channel of o) */
	struct sshtls sshtls;		/* fixed: --ssh-data tls's key (co points into it) */
	pthread_t thread;		/* controller: started in _start, joined in _wait/_free */
	bool thread_started;		/* controller */
	_Atomic bool cancel;		/* set by migrate_cancel (any thread), read by the job */
	_Atomic bool finished;		/* set by the job thread as its last act */
	int result;			/* job thread, before finished; read after the join */

	pthread_mutex_t lock;		/* guards st, each lane's open, and the closing of
					 * the connections against migrate_cancel's shutdown */
	struct migrate_stats st;	/* under lock */

	/*
	 * Channel 0: written and read by the job thread (lane 0); closed
	 * under lock, shut down under lock by migrate_cancel.
	 */
	struct mio io;
	struct lane lanes[MIGRATE_MAX_PARALLEL]; /* see struct lane for each field */
	unsigned nlanes;		/* fixed: o.parallel */
	pthread_mutex_t rl_lock;	/* guards rl: every lane's writes go through it */
	struct ratelimit rl;		/* under rl_lock */
	/*
	 * The cap in bytes/s (0: none): --bandwidth, then what
	 * migrate_set_bandwidth (any thread) asks for. A lane's next write
	 * applies it to rl under rl_lock, so the setter never waits for a
	 * lane that sleeps in the limiter.
	 */
	_Atomic uint64_t rl_rate;
	/*
	 * The guest is paused for the switchover: every lane's writes skip
	 * the rate limiter (QEMU's ram_save_complete does the same). The cap
	 * protects the running guest and the link's other users during
	 * pre-copy; once the guest is paused every ms of throttle is
	 * downtime. Set by the job thread right after the pause; post-copy
	 * clears it again once the guest runs at the destination (see
	 * source.c's postcopy_switchover). Read by every lane's write.
	 */
	_Atomic bool rl_bypass;

	/*
	 * The lanes' task (lanes.h), all under task_lock: the job thread
	 * posts task and its arguments and bumps task_gen (task_cond); each
	 * lane thread takes it, runs it unlocked and counts task_done
	 * (done_cond). Between two tasks no lane touches the job's state.
	 */
	pthread_mutex_t task_lock;
	pthread_cond_t task_cond, done_cond;
	enum lane_task task;
	uint64_t task_first, task_n;	/* the chunk: pages [first, first + n) */
	bool task_bulk;			/* the bulk round (page_sender_page's bulk) */
	uint64_t task_gen;		/* bumped for each task */
	unsigned task_done;		/* lanes 1..N-1 that finished the current task */

	/* job thread only, from here on */
	uint32_t acked;			/* rounds the destination ACKed (retpath.h) */
	uint64_t session;		/* fixed: ties the lanes' HELLOs together */
	struct dirtylog *dl;		/* the dirty log, while the job runs */
	struct converge cv;		/* the convergence decision's state */
	/*
	 * The dirty set, bit = RAM page. The job thread's, except during a
	 * LANE_PAGES task: then each lane reads and clears its own words
	 * (lanes.h) and the job thread waits at the barrier.
	 */
	uint64_t *bitmap;
	uint64_t npages;		/* fixed: RAM pages */
	uint64_t t0_ns, deadline_ns;	/* fixed: the start, and the --timeout (0: none) */
	uint8_t *ctrl;			/* control frames on channel 0, JOB_CTRL_BUF bytes */
	uint8_t *rbuf;			/* return-path frames, MIO_FRAME_BUF bytes */
	bool paused;			/* the job paused the VM */
	bool was_paused;		/* fixed: the VM was paused before the job: it stays so */
	bool committed;			/* GO sent: the guest is the destination's (handover.h) */
	uint64_t resumed_ns;		/* RESUMED arrived (0: not yet); the ends of total_ms
					 * and downtime_ms, which the announce report follows */
	/*
	 * The switchover's timeline, clock_now_ns() of each step (0: not
	 * reached): published as st.switchover (migrate.h) by source.c.
	 * ready_ns is handover.c's (READY arrived).
	 */
	struct {
		uint64_t start_ns, paused_ns, synced_ns, pages_ns, state_ns, sent_ns, ready_ns;
		uint64_t bytes0;	/* bytes out on every lane at the pause */
		uint64_t pages0;	/* pages sent by then */
		uint64_t bytes, state_bytes; /* pause to COMPLETE; the state's */
		uint64_t pages;		/* pages sent while paused */
		uint64_t expected_ns;	/* the converge estimate at the decision */
		char reason[64];	/* why it switched */
	} sw;
	unsigned round;			/* the current round; lanes read it during a task */
	unsigned rounds_done;		/* pre-copy rounds that ended (their "round" event) */
	unsigned ring_overflow_run;	/* precopy syncs in a row the ring overflowed */
	uint64_t round_pages;		/* pages the last round sent, all lanes */
	uint64_t hole_pages;		/* untouched RAM skipped by the bulk round */
	char err[512];			/* the first failure's message (job_fail) */

	/*
	 * Post-copy (migrate/postcopy.h). fio is the fault channel: opened by
	 * the job thread after the handshake, read by the fault server
	 * thread after the switchover; closed (and replaced on a resume) by
	 * the job thread under lock; migrate_cancel shuts it down under lock.
	 */
	/*
	 * --compress: the codec (set by migrate_start); under auto (cauto,
	 * fixed) none at first, then what the last decision chose: post-copy's
	 * background push sends with it. Job thread.
	 */
	struct codec_config cc;
	bool cauto;
	struct autocomp ac;		/* job thread: auto's decision (autocomp.h) */
	uint32_t hello_caps;		/* job thread: what channel 0's HELLO offered */
	bool pc_enabled;		/* job thread: the destination chose POSTCOPY */
	_Atomic bool pc_request;	/* migrate_postcopy asked for the switch */
	_Atomic bool pc_switched;	/* the switchover to post-copy began */
	struct mio fio;			/* the fault channel */
	bool fio_open;			/* under lock */
	pthread_cond_t pc_cond;		/* with lock: a resume request, a cancel */
	bool pc_resume_req;		/* under lock: migrate_resume asked */
	char pc_resume_uri[256];	/* under lock: where to ("": j->uri) */
	uint64_t pc_done_ns;		/* PC_DONE arrived: the end of total_ms */

	struct job_events events;	/* its own lock: the job thread posts (job_event) */
};

/*
 * Record why the job fails, unless a reason is already recorded: the first
 * failure is the one reported. Job thread. Return: ret, to pass on.
 */
int job_fail(struct migrate_job *j, int ret, const char *fmt, ...) PRINTF_FMT(3, 4);

/* Return: -ECANCELED or -ETIMEDOUT (with j->err) when the job must stop, else 0. */
int job_check_abort(struct migrate_job *j) __must_check;

/*
 * Send the control frame of n bytes built in j->ctrl on channel 0 (behind
 * the rate limiter); n < 0 is the frame builder's error. Job thread.
 * Return: 0, or -errno with j->err set.
 */
int job_send_ctrl(struct migrate_job *j, ssize_t n) __must_check;

/* Set st.status (under lock). */
void job_set_status(struct migrate_job *j, const char *s);

/*
 * An event of type with the job's statistics of the moment (under lock)
 * in *ev; the caller adds what is particular to it (mode, downtime_ms,
 * error), then posts it with job_event_post(). Job thread.
 */
void job_event_init(struct migrate_job *j, struct migrate_event *ev, const char *type);
void job_event_post(struct migrate_job *j, struct migrate_event *ev);

/* job_event_init() and job_event_post() for an event with nothing particular. */
void job_event(struct migrate_job *j, const char *type);

#endif
