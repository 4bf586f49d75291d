/* SPDX-License-Identifier: MIT */
/*
 * source.c - the source side of a live migration (see migrate.h).
 *
 * The job thread owns the VM for the whole job. The dirty bitmap it sends
 * from is indexed by RAM page; a round walks it in chunks of CHUNK_PAGES:
 * each chunk is cleared in KVM (write-protected) right before its pages
 * are read, so a write that lands after the read is seen by the next sync.
 * The bulk round starts from an all-ones bitmap but skips the memfd's holes
 * (never touched, hence zero on both sides) without reading them.
 *
 * --parallel N: N lanes, one connection each (protocol/wire.h). Lane 0 is
 * the job thread on the first connection, which also carries the control
 * frames; lanes 1..N-1 are threads with their own page sender (compressor
 * and XBZRLE cache). A chunk is handed to every lane at once and each
 * sends the bitmap words w with w % N == its number, so a page always goes
 * the same way; the job thread waits for all lanes at the end of a chunk
 * (chunks are 16 MiB, so the barrier costs little) and only then touches
 * the dirty log again. Before it sends END_ROUND or the state on channel 0,
 * every other lane has flushed and sent its END_ROUND or COMPLETE.
 */
#define LOG_PREFIX "migrate: "
#include "migrate/migrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "common/log.h"
#include "migrate/converge.h"
#include "migrate/digest.h"
#include "migrate/mio.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"
#include "migrate/ratelimit.h"
#include "protocol/frame.h"
#include "vm/ramwalk.h"
#include "vm/state.h"

#define PAGE WIRE_PAGE_SIZE
#define CHUNK_PAGES 4096u		/* 16 MiB: dirty-log clear and stats granularity */
#define HANDSHAKE_TIMEOUT_MS 10000
#define RESUME_TIMEOUT_MS 60000
#define ACK_TIMEOUT_MS 60000
#define CTRL_BUF 4096

enum lane_task {
	LANE_IDLE,
	LANE_PAGES,		/* send this lane's pages of a chunk */
	LANE_END_ROUND,		/* flush, then END_ROUND (lanes 1..N-1) */
	LANE_COMPLETE,		/* flush, then COMPLETE (lanes 1..N-1) */
	LANE_EXIT,
};

struct lane {
	struct migrate_job *j;
	unsigned idx;
	struct mio *io;			/* its connection (lane 0: the job's) */
	struct mio conn;		/* lanes 1..N-1 */
	bool open;			/* conn is connected (under j->lock) */
	struct mio rl_io;		/* io behind the rate limiter */
	struct page_sender *ps;
	pthread_t thread;
	bool started;
	uint64_t round_pages;
	int ret;			/* the lane's failure */
	uint8_t ctrl[256];
};

struct migrate_job {
	struct vm *vm;
	struct migrate_opts o;
	char uri[256];
	pthread_t thread;
	bool thread_started;
	_Atomic bool cancel;
	_Atomic bool finished;
	int result;

	pthread_mutex_t lock;		/* stats */
	struct migrate_stats st;

	/* job thread only (the lanes: see struct lane) */
	struct mio io;
	struct lane lanes[MIGRATE_MAX_PARALLEL];
	unsigned nlanes;
	pthread_mutex_t rl_lock;
	struct ratelimit rl;
	pthread_mutex_t task_lock;
	pthread_cond_t task_cond, done_cond;
	enum lane_task task;
	uint64_t task_first, task_n;
	bool task_bulk;
	uint64_t task_gen;
	unsigned task_done;
	uint32_t acked;			/* rounds the destination ACKed */
	uint64_t session;
	struct dirtylog *dl;
	struct converge cv;
	uint64_t *bitmap;
	uint64_t npages;
	uint64_t t0_ns, deadline_ns;
	uint8_t *ctrl;			/* control frames */
	uint8_t *rbuf;			/* return-path frames */
	bool paused;			/* the job paused the VM */
	bool was_paused;		/* the VM was paused before the job: it stays so */
	bool committed;			/* GO sent: the guest is the destination's */
	unsigned round;
	unsigned ring_overflow_run;	/* precopy syncs in a row the ring overflowed */
	uint64_t round_pages;
	uint64_t hole_pages;		/* untouched RAM skipped by the bulk round */
	char err[512];
};

PRINTF_FMT(3, 4) static int job_fail(struct migrate_job *j, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!j->err[0]) {
		va_start(ap, fmt);
		vsnprintf(j->err, sizeof(j->err), fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* ---- stats ---------------------------------------------------------------- */

static void set_status(struct migrate_job *j, const char *s)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->st.status, sizeof(j->st.status), "%s", s);
	pthread_mutex_unlock(&j->lock);
}

/* The lanes' senders, added up; and the bytes of every connection. */
static void sender_stats(const struct migrate_job *j, struct page_sender_stats *sum,
			 uint64_t *bytes_out, size_t *cache_bytes)
{
	memset(sum, 0, sizeof(*sum));
	*bytes_out = 0;
	if (cache_bytes)
		*cache_bytes = 0;
	for (unsigned l = 0; l < j->nlanes; l++) {
		const struct lane *ln = &j->lanes[l];
		struct page_sender_stats ps;
		size_t cb;

		*bytes_out += ln->io->bytes_out;
		if (!ln->ps)
			continue;
		page_sender_get_stats(ln->ps, &ps);
		sum->pages += ps.pages;
		sum->entries += ps.entries;
		sum->duplicate_pages += ps.duplicate_pages;
		sum->normal_pages += ps.normal_pages;
		sum->compressed_pages += ps.compressed_pages;
		sum->compressed_in += ps.compressed_in;
		sum->compressed_out += ps.compressed_out;
		sum->compress_ns += ps.compress_ns;
		sum->xbzrle_pages += ps.xbzrle_pages;
		sum->xbzrle_bytes += ps.xbzrle_bytes;
		sum->xbzrle_cache_miss += ps.xbzrle_cache_miss;
		sum->xbzrle_overflow += ps.xbzrle_overflow;
		sum->xbzrle_unchanged += ps.xbzrle_unchanged;
		sum->frames += ps.frames;
		sum->frame_bytes += ps.frame_bytes;
		if (cache_bytes && page_sender_xbzrle(ln->ps, &cb))
			*cache_bytes += cb;
	}
}

/* Pages that carried data (not zero), in all lanes: what bandwidth moves. */
static uint64_t data_pages(const struct migrate_job *j)
{
	struct page_sender_stats ps;
	uint64_t b;

	sender_stats(j, &ps, &b, NULL);
	return ps.normal_pages + ps.compressed_pages + ps.xbzrle_pages;
}

/* Called by the job thread while the lanes are idle. */
static void update_stats(struct migrate_job *j, uint64_t remaining_pages)
{
	struct page_sender_stats ps;
	struct migrate_stats *st = &j->st;
	uint64_t now = clock_now_ns(), out;
	size_t cache_bytes;

	sender_stats(j, &ps, &out, &cache_bytes);
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

/* ---- the stream ------------------------------------------------------------ */

/* The rate limiter, shared by all lanes, sits between senders and channels. */
static int rl_write(struct mio *io, const void *buf, size_t len)
{
	struct lane *ln = io->priv;
	struct migrate_job *j = ln->j;

	if (j->rl.rate) {
		pthread_mutex_lock(&j->rl_lock);
		ratelimit_wait(&j->rl, len);
		pthread_mutex_unlock(&j->rl_lock);
	}
	return mio_write(ln->io, buf, len);
}

static int rl_flush(struct mio *io)
{
	struct lane *ln = io->priv;

	return mio_flush(ln->io);
}

static int send_ctrl(struct migrate_job *j, ssize_t n)
{
	int ret;

	if (n < 0)
		return job_fail(j, (int)n, "cannot build a control frame: %s", strerror((int)-n));
	ret = mio_write(&j->lanes[0].rl_io, j->ctrl, (size_t)n);
	if (!ret)
		ret = mio_flush(&j->lanes[0].rl_io);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	return 0;
}

/*
 * Read one return-path frame, waiting at most timeout_ms.
 * Return: 0 and *h, -ETIMEDOUT, or -errno (with j->err set).
 */
static int read_reply_on(struct migrate_job *j, struct mio *io, int timeout_ms,
			 struct frame_hdr *h)
{
	char msg[300];
	int ret = mio_wait_readable(io, timeout_ms);

	if (ret == 0)
		return -ETIMEDOUT;
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	ret = mio_read_frame(io, j->rbuf, MIO_FRAME_BUF, h, msg, sizeof(msg));
	if (ret == -ENODATA || ret == -ECONNRESET || ret == -EPIPE)
		return job_fail(j, -ECONNRESET, "the destination is gone: it closed the connection (%s)",
				msg);
	if (ret < 0)
		return job_fail(j, ret, "the destination sent garbage: %s", msg);
	if (h->type == WIRE_F_ERROR) {
		struct wire_error e;

		if (frame_get_error(j->rbuf + WIRE_HDR_BYTES, h->len, &e, msg, sizeof(msg)) < 0)
			return job_fail(j, -EBADMSG, "the destination sent a bad ERROR frame: %s",
					msg);
		return job_fail(j, -EREMOTEIO, "the destination refused: %s", e.msg);
	}
	return 0;
}

static int on_ack(struct migrate_job *j, const struct frame_hdr *h)
{
	struct wire_ack a;
	char msg[200];

	if (frame_get_ack(j->rbuf + WIRE_HDR_BYTES, h->len, &a, msg, sizeof(msg)) < 0)
		return job_fail(j, -EBADMSG, "bad ACK from the destination: %s", msg);
	if (a.round > j->round)
		return job_fail(j, -EPROTO, "the destination ACKed round %u in round %u", a.round,
				j->round);
	if (a.round + 1 > j->acked)
		j->acked = a.round + 1;
	return 0;
}

/* A return-path frame in precopy: only an ACK belongs there. */
static int take_ack(struct migrate_job *j, const struct frame_hdr *h)
{
	if (h->type != WIRE_F_ACK)
		return job_fail(j, -EPROTO, "unexpected %s frame from the destination",
				frame_type_name(h->type));
	return on_ack(j, h);
}

static int check_abort(struct migrate_job *j);

static int read_reply(struct migrate_job *j, int timeout_ms, struct frame_hdr *h)
{
	return read_reply_on(j, &j->io, timeout_ms, h);
}

/* Consume whatever the destination said meanwhile (ACKs, or an ERROR). */
static int poll_replies(struct migrate_job *j)
{
	struct frame_hdr h;
	int ret;

	for (;;) {
		ret = read_reply(j, 0, &h);
		if (ret == -ETIMEDOUT)
			return 0;
		if (ret < 0)
			return ret;
		ret = take_ack(j, &h);
		if (ret < 0)
			return ret;
	}
}

/*
 * Wait until the destination ACKed round `round`: every channel's pages of
 * it are in its RAM. Return: 0, or -errno with j->err set.
 */
static int wait_acked(struct migrate_job *j, uint32_t round, int timeout_ms)
{
	uint64_t end = clock_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct frame_hdr h;
	int ret;

	while (j->acked <= round) {
		uint64_t now = clock_now_ns();

		if (now >= end)
			return job_fail(j, -ETIMEDOUT,
					"the destination did not confirm round %u within %d s", round,
					timeout_ms / 1000);
		ret = read_reply(j, (int)((end - now) / 1000000) + 1, &h);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret < 0)
			return ret;
		ret = take_ack(j, &h);
		if (ret < 0)
			return ret;
		ret = check_abort(j);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int check_abort(struct migrate_job *j)
{
	if (atomic_load(&j->cancel))
		return job_fail(j, -ECANCELED, "cancelled by the user");
	if (j->deadline_ns && clock_now_ns() > j->deadline_ns)
		return job_fail(j, -ETIMEDOUT, "the migration ran past its %llu ms timeout",
				(unsigned long long)j->o.timeout_ms);
	return 0;
}

/* HELLO on a lane's connection, and the destination's HELLO_ACK. */
static int handshake(struct migrate_job *j, struct lane *ln)
{
	const struct vm_config *c = vm_get_config(j->vm);
	struct wire_hello h;
	struct wire_hello_ack a;
	struct frame_hdr fh;
	char msg[300];
	uint32_t need;
	ssize_t n;
	int ret;

	outgoing_hello(&h, c,
		       page_sender_caps(ln->ps) | (j->o.verify ? WIRE_CAP_VERIFY : 0) |
			       (j->nlanes > 1 ? WIRE_CAP_MULTI : 0));
	h.channel = ln->idx;
	h.channels = j->nlanes;
	h.session = j->session;
	n = frame_put_hello(j->ctrl, CTRL_BUF, &h);
	if (n < 0)
		return job_fail(j, (int)n, "cannot build HELLO: %s", strerror((int)-n));
	ret = mio_write(ln->io, j->ctrl, (size_t)n);
	if (!ret)
		ret = mio_flush(ln->io);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	ret = read_reply_on(j, ln->io, HANDSHAKE_TIMEOUT_MS, &fh);
	if (ret == -ETIMEDOUT)
		return job_fail(j, ret,
				"the destination did not answer the handshake on channel %u within "
				"%d s",
				ln->idx, HANDSHAKE_TIMEOUT_MS / 1000);
	if (ret < 0)
		return ret;
	if (fh.type != WIRE_F_HELLO_ACK)
		return job_fail(j, -EPROTO, "the destination answered HELLO with %s",
				frame_type_name(fh.type));
	ret = frame_get_hello_ack(j->rbuf + WIRE_HDR_BYTES, fh.len, &a, msg, sizeof(msg));
	if (ret < 0)
		return job_fail(j, ret, "bad handshake from the destination: %s", msg);
	need = h.caps;
	if ((a.caps & need) != need)
		return job_fail(j, -EPROTO,
				"the destination lacks capabilities 0x%x (compression, XBZRLE or "
				"verify)",
				need & ~a.caps);
	return 0;
}

/* ---- lanes ------------------------------------------------------------------ */

/* Lane ln's share of the chunk [first, first + n): words w with w % N == ln. */
static int lane_pages(struct lane *ln, uint64_t first, uint64_t n, bool bulk)
{
	struct migrate_job *j = ln->j;
	const uint8_t *ram = vm_ram(j->vm);
	uint64_t w0 = first / 64, w1 = DIV_ROUND_UP(first + n, 64);
	int ret;

	w0 += (ln->idx + j->nlanes - w0 % j->nlanes) % j->nlanes;
	for (uint64_t w = w0; w < w1; w += j->nlanes) {
		uint64_t end = (w + 1) * 64;

		for (uint64_t p = bitmap_find_next(j->bitmap, end, w * 64); p < end;
		     p = bitmap_find_next(j->bitmap, end, p + 1)) {
			ret = page_sender_page(ln->ps, p, ram + p * PAGE, bulk);
			if (ret < 0)
				return ret;
			bitmap_clear(j->bitmap, p);
			ln->round_pages++;
		}
	}
	return 0;
}

/* Flush, then (lanes 1..N-1) the frame that ends the round or the channel. */
static int lane_end(struct lane *ln, enum lane_task t)
{
	struct page_sender_stats ps;
	ssize_t n = 0;
	int ret = page_sender_flush(ln->ps);

	if (ret < 0 || ln->idx == 0)
		return ret;
	page_sender_get_stats(ln->ps, &ps);
	if (t == LANE_END_ROUND) {
		struct wire_end_round er = { .round = ln->j->round, .pages = ln->round_pages };

		n = frame_put_end_round(ln->ctrl, sizeof(ln->ctrl), &er);
	} else {
		struct wire_complete c = { .pages = ps.entries };

		n = frame_put_complete(ln->ctrl, sizeof(ln->ctrl), &c);
	}
	if (n < 0)
		return (int)n;
	ret = mio_write(&ln->rl_io, ln->ctrl, (size_t)n);
	return ret ? ret : mio_flush(&ln->rl_io);
}

static int lane_run(struct lane *ln, enum lane_task t, uint64_t first, uint64_t n, bool bulk)
{
	switch (t) {
	case LANE_PAGES:
		return lane_pages(ln, first, n, bulk);
	case LANE_END_ROUND:
	case LANE_COMPLETE:
		return lane_end(ln, t);
	case LANE_IDLE:
	case LANE_EXIT:
		break;
	}
	return 0;
}

static void *lane_thread(void *arg)
{
	struct lane *ln = arg;
	struct migrate_job *j = ln->j;
	uint64_t seen = 0;

	pthread_mutex_lock(&j->task_lock);
	for (;;) {
		enum lane_task t;
		uint64_t first, n;
		bool bulk;
		int ret;

		while (j->task_gen == seen)
			pthread_cond_wait(&j->task_cond, &j->task_lock);
		seen = j->task_gen;
		t = j->task;
		if (t == LANE_EXIT)
			break;
		first = j->task_first;
		n = j->task_n;
		bulk = j->task_bulk;
		pthread_mutex_unlock(&j->task_lock);
		ret = ln->ret ? 0 : lane_run(ln, t, first, n, bulk);
		pthread_mutex_lock(&j->task_lock);
		if (ret < 0 && !ln->ret)
			ln->ret = ret;
		j->task_done++;
		pthread_cond_signal(&j->done_cond);
	}
	pthread_mutex_unlock(&j->task_lock);
	return NULL;
}

/*
 * Every lane does task t: lanes 1..N-1 on their threads, lane 0 here.
 * Return when all are done: 0, or -errno with j->err set.
 */
static int lanes_do(struct migrate_job *j, enum lane_task t, uint64_t first, uint64_t n,
		    bool bulk)
{
	int ret;

	if (j->nlanes > 1) {
		pthread_mutex_lock(&j->task_lock);
		j->task = t;
		j->task_first = first;
		j->task_n = n;
		j->task_bulk = bulk;
		j->task_done = 0;
		j->task_gen++;
		pthread_cond_broadcast(&j->task_cond);
		pthread_mutex_unlock(&j->task_lock);
	}
	ret = lane_run(&j->lanes[0], t, first, n, bulk);
	if (ret < 0)
		j->lanes[0].ret = ret;
	if (j->nlanes > 1) {
		pthread_mutex_lock(&j->task_lock);
		while (j->task_done < j->nlanes - 1)
			pthread_cond_wait(&j->done_cond, &j->task_lock);
		pthread_mutex_unlock(&j->task_lock);
	}
	for (unsigned l = 0; l < j->nlanes; l++) {
		ret = j->lanes[l].ret;
		if (ret < 0) {
			/* the destination may have said why on channel 0 */
			if (ret != -ECANCELED && !atomic_load(&j->cancel))
				(void)poll_replies(j);
			if (j->nlanes > 1)
				return job_fail(j, ret, "the destination is gone (channel %u): %s", l,
						strerror(-ret));
			return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
		}
	}
	return 0;
}

/* Connect lanes 1..N-1, shake hands on each and start their threads. */
static int lanes_open(struct migrate_job *j)
{
	char msg[300];
	int ret;

	for (unsigned l = 1; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		ret = mio_connect(&ln->conn, j->uri, HANDSHAKE_TIMEOUT_MS, msg, sizeof(msg));
		if (ret < 0)
			return job_fail(j, ret, "parallel channel %u: %s", l, msg);
		pthread_mutex_lock(&j->lock);
		ln->open = true;
		pthread_mutex_unlock(&j->lock);
		ret = check_abort(j);
		if (ret < 0)
			return ret;
		ret = handshake(j, ln);
		if (ret < 0)
			return ret;
	}
	for (unsigned l = 1; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		ret = -pthread_create(&ln->thread, NULL, lane_thread, ln);
		if (ret < 0)
			return job_fail(j, ret, "cannot start a sender thread: %s", strerror(-ret));
		ln->started = true;
	}
	return 0;
}

static void lanes_stop(struct migrate_job *j)
{
	pthread_mutex_lock(&j->task_lock);
	j->task = LANE_EXIT;
	j->task_gen++;
	pthread_cond_broadcast(&j->task_cond);
	pthread_mutex_unlock(&j->task_lock);
	for (unsigned l = 1; l < j->nlanes; l++) {
		if (j->lanes[l].started)
			pthread_join(j->lanes[l].thread, NULL);
		j->lanes[l].started = false;
	}
}

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
		ret = lanes_do(j, LANE_PAGES, first, n, bulk);
		if (ret < 0)
			return ret;
		dirtylog_poll(j->dl);
		ret = check_abort(j);
		if (!ret)
			ret = poll_replies(j);
		if (ret < 0)
			return ret;
		update_stats(j, bitmap_count(j->bitmap, 0, j->npages));
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
	return j->o.bandwidth ? j->o.bandwidth : 1ull << 30;	/* a guess, checked below */
}

static int precopy(struct migrate_job *j)
{
	uint64_t bw = 0;
	char msg[512];
	int ret;

	bitmap_fill(j->bitmap, j->npages);
	for (j->round = 0;; j->round++) {
		uint64_t t0 = clock_now_ns(), d0 = data_pages(j), data, dt;
		struct wire_end_round er;
		long dirty;
		enum converge_action act;

		for (unsigned l = 0; l < j->nlanes; l++)
			page_sender_set_round(j->lanes[l].ps, j->round);
		ret = send_dirty(j, j->round == 0, true, LANE_END_ROUND);
		if (ret < 0)
			return ret;
		dt = clock_now_ns() - t0;
		data = (data_pages(j) - d0) * PAGE;
		bw = measure_bw(j, bw, data, dt);
		dirty = sync_dirty(j);
		if (dirty < 0)
			return (int)dirty;
		er.round = j->round;
		er.pages = j->round_pages;
		er.dirty_rate = dirtylog_rate(j->dl);
		ret = send_ctrl(j, frame_put_end_round(j->ctrl, CTRL_BUF, &er));
		if (ret < 0)
			return ret;
		act = converge_decide(&j->cv, j->round, (uint64_t)dirty * PAGE, data, bw,
				      dirtylog_rate(j->dl), msg, sizeof(msg));
		if (act == CONVERGE_SWITCHOVER) {
			/*
			 * Switch only once the destination has applied the round:
			 * what it still had to apply would land in the downtime.
			 * A long wait means the data was in flight, not applied:
			 * the link is slower than the send rate said; measure it
			 * end to end and go another round.
			 */
			uint64_t tw = clock_now_ns(), waited;

			ret = wait_acked(j, j->round, ACK_TIMEOUT_MS);
			if (ret < 0)
				return ret;
			waited = clock_now_ns() - tw;
			if (waited * 2 > j->cv.max_downtime_ns &&
			    !(j->o.max_iterations && j->round + 1 >= j->o.max_iterations)) {
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
		pthread_mutex_lock(&j->lock);
		j->st.bandwidth = bw;
		pthread_mutex_unlock(&j->lock);
		update_stats(j, (uint64_t)dirty);
		switch (act) {
		case CONVERGE_SWITCHOVER:
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
		ret = check_abort(j);
		if (ret < 0)
			return ret;
	}
}

static int stop_and_copy(struct migrate_job *j, uint64_t *pause_ns)
{
	struct vm_state *state = NULL;
	struct wire_complete done;
	struct frame_hdr h;
	uint32_t nsec = 0;
	long dirty;
	int ret;

	set_status(j, "device");
	*pause_ns = clock_now_ns();
	ret = vm_pause(j->vm, NULL);
	if (ret < 0)
		return job_fail(j, ret, "cannot pause the guest: %s", strerror(-ret));
	j->paused = !j->was_paused;	/* a failure resumes only what the job paused */
	if (vm_dead_vcpus(j->vm))
		return job_fail(j, -EIO,
				"the guest crashed before the switchover (%u vCPU(s) stopped by KVM); "
				"a dead guest is not migrated",
				vm_dead_vcpus(j->vm));
	pr_debug("stop-and-copy: paused in %llu us",
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	vm_set_throttle(j->vm, 0);
	dirty = sync_dirty(j);
	if (dirty < 0)
		return (int)dirty;
	ret = send_ctrl(j, frame_put_switchover(j->ctrl, CTRL_BUF, j->round + 1,
					       j->was_paused ? WIRE_SWITCHOVER_PAUSED : 0));
	if (ret < 0)
		return ret;
	for (unsigned l = 0; l < j->nlanes; l++)
		page_sender_set_round(j->lanes[l].ps, j->round + 1);
	ret = send_dirty(j, false, false, LANE_COMPLETE);
	if (ret < 0)
		return ret;
	state = calloc(1, sizeof(*state));
	if (!state) {
		ret = job_fail(j, -ENOMEM, "out of memory");
		goto out;
	}
	pr_debug("stop-and-copy: last %llu pages sent at +%llu us", (unsigned long long)dirty,
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	ret = vm_capture(j->vm, state);
	if (ret < 0) {
		job_fail(j, ret, "cannot capture the vCPU and device state: %s", strerror(-ret));
		goto out;
	}
	pr_debug("stop-and-copy: state captured at +%llu us",
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	ret = outgoing_state(&j->lanes[0].rl_io, state, &nsec);
	if (ret < 0) {
		job_fail(j, ret, "cannot send the state: %s", strerror(-ret));
		goto out;
	}
	memset(&done, 0, sizeof(done));
	done.state_sections = nsec;
	{
		struct page_sender_stats ps;
		uint64_t out;

		sender_stats(j, &ps, &out, NULL);
		done.pages = ps.pages;
	}
	if (j->o.verify) {
		ret = ram_digest(vm_ram_fd(j->vm), vm_ram(j->vm), vm_ram_bytes(j->vm), done.digest);
		if (ret < 0) {
			job_fail(j, ret, "cannot compute the RAM digest");
			goto out;
		}
		done.digest_alg = WIRE_DIGEST_SHA256;
	}
	ret = send_ctrl(j, frame_put_complete(j->ctrl, CTRL_BUF, &done));
	if (ret < 0)
		goto out;
	pr_debug("stop-and-copy: COMPLETE sent at +%llu us",
		 (unsigned long long)(clock_now_ns() - *pause_ns) / 1000);
	/*
	 * The destination checks everything and builds the VM, then says
	 * READY. Until we answer GO the guest is ours (any failure resumes
	 * it here); from GO on it is the destination's, and we never run our
	 * copy again, even if RESUMED does not come: one copy may stop, two
	 * must never run.
	 */
	for (;;) {
		struct wire_resumed r;
		char msg[200];

		ret = read_reply(j, RESUME_TIMEOUT_MS, &h);
		if (ret == -ETIMEDOUT)
			ret = job_fail(j, ret, "the destination did not %s within %d s",
				       j->committed ? "confirm the VM runs" : "get the VM ready",
				       RESUME_TIMEOUT_MS / 1000);
		if (ret == -EREMOTEIO)
			j->committed = false;	/* it said it failed: it runs nothing */
		if (ret < 0)
			goto out;
		if (h.type == WIRE_F_ACK)
			continue;
		if (h.type == WIRE_F_READY && !j->committed) {
			ret = frame_get_ready(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
			if (ret < 0) {
				job_fail(j, ret, "bad READY frame: %s", msg);
				goto out;
			}
			if (j->o.verify && !r.digest_ok) {
				ret = job_fail(j, -EBADMSG,
					       "the destination did not verify the RAM digest");
				goto out;
			}
			ret = send_ctrl(j, frame_put_go(j->ctrl, CTRL_BUF));
			if (ret < 0)
				goto out;
			j->committed = true;
			continue;
		}
		if (h.type != WIRE_F_RESUMED || !j->committed) {
			ret = job_fail(j, -EPROTO, "the destination answered %s with %s",
				       j->committed ? "GO" : "COMPLETE", frame_type_name(h.type));
			goto out;
		}
		ret = frame_get_resumed(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
		if (ret < 0) {
			job_fail(j, ret, "bad RESUMED frame: %s", msg);
			goto out;
		}
		pthread_mutex_lock(&j->lock);
		j->st.verified = r.digest_ok;
		pthread_mutex_unlock(&j->lock);
		break;
	}
out:
	free(state);
	return ret;
}

/* ---- the job ---------------------------------------------------------------- */

static void *job_thread(void *arg)
{
	struct migrate_job *j = arg;
	struct codec_config cc = { .ops = NULL };
	uint64_t t_setup, pause_ns = 0;
	char msg[300];
	int ret;

	ret = codec_by_name(j->o.compress, &cc);
	if (ret < 0) {
		job_fail(j, ret, "unknown compression '%s'", j->o.compress);
		goto out;
	}
	for (unsigned l = 0; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		/* pages are split among the lanes, and so is the XBZRLE cache */
		ret = page_sender_create(&cc, j->o.xbzrle_cache_bytes / j->nlanes, &ln->rl_io,
					 &ln->ps);
		if (ret < 0) {
			job_fail(j, ret, "cannot set up the page encoders: %s", strerror(-ret));
			goto out;
		}
	}
	ret = handshake(j, &j->lanes[0]);
	if (ret < 0)
		goto out;
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
	set_status(j, "active");
	ret = precopy(j);
	if (ret < 0)
		goto out;
	ret = stop_and_copy(j, &pause_ns);
out:
	if (ret < 0 && atomic_load(&j->cancel)) {
		/* a cancel shuts the channel down: the I/O error is its echo */
		ret = -ECANCELED;
		snprintf(j->err, sizeof(j->err), "cancelled by the user");
	}
	if (ret < 0 && j->committed) {
		/* after GO: the destination may run the guest; ours stays paused */
		char why[sizeof(j->err)];

		snprintf(why, sizeof(why), "%s", j->err);
		snprintf(j->err, sizeof(j->err),
			 "the destination was told to start the VM, then: %.300s. It may run there: "
			 "the copy here stays paused and is kept; resume it only if the "
			 "destination does not run it",
			 why);
		pr_err("%s: %s", vm_get_config(j->vm)->name, j->err);
	} else if (ret < 0) {
		/* the source still owns the VM: tell the peer, run the guest on */
		ssize_t n = frame_put_error(j->ctrl, CTRL_BUF, (uint32_t)-ret, j->err);

		if (n > 0 && mio_write(&j->io, j->ctrl, (size_t)n) == 0)
			(void)mio_flush(&j->io);
		vm_set_throttle(j->vm, 0);
		if (j->paused && vm_resume(j->vm) < 0)
			pr_err("%s: cannot resume the guest after a failed migration",
			       vm_get_config(j->vm)->name);
		j->paused = false;
	}
	lanes_stop(j);
	dirtylog_stop(j->dl);
	j->dl = NULL;
	update_stats(j, 0);
	pthread_mutex_lock(&j->lock);
	j->st.total_ms = (clock_now_ns() - j->t0_ns) / 1000000;
	if (ret == 0) {
		j->st.downtime_ms = (clock_now_ns() - pause_ns) / 1000000;
		j->st.remaining_bytes = 0;
		snprintf(j->st.status, sizeof(j->st.status), "completed");
	} else {
		snprintf(j->st.status, sizeof(j->st.status), "%s",
			 ret == -ECANCELED ? "cancelled" : "failed");
		snprintf(j->st.error, sizeof(j->st.error), "%s", j->err);
	}
	/* under the lock: migrate_cancel may be shutting them down */
	mio_close(&j->io);
	for (unsigned l = 1; l < j->nlanes; l++) {
		if (j->lanes[l].open)
			mio_close(&j->lanes[l].conn);
		j->lanes[l].open = false;
	}
	pthread_mutex_unlock(&j->lock);
	j->result = ret;
	atomic_store(&j->finished, true);
	return NULL;
}

int migrate_start(struct vm *vm, const char *uri, const struct migrate_opts *o,
		  struct migrate_job **out, char *err, size_t errlen)
{
	struct codec_config cc;
	struct migrate_job *j;
	int ret;

	*out = NULL;
	ret = migrate_opts_check(o, err, errlen);
	if (ret < 0)
		return ret;
	if (codec_by_name(o->compress, &cc) < 0) {
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
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->rl_lock, NULL);
	pthread_mutex_init(&j->task_lock, NULL);
	pthread_cond_init(&j->task_cond, NULL);
	pthread_cond_init(&j->done_cond, NULL);
	j->nlanes = o->parallel;
	for (unsigned l = 0; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		ln->j = j;
		ln->idx = l;
		ln->io = l ? &ln->conn : &j->io;
		ln->rl_io = (struct mio){ .write = rl_write, .flush = rl_flush, .priv = ln };
	}
	if (getrandom(&j->session, sizeof(j->session), 0) != sizeof(j->session))
		j->session = clock_now_ns() ^ (uint64_t)(uintptr_t)j;
	j->npages = vm_ram_bytes(vm) / PAGE;
	j->t0_ns = clock_now_ns();
	if (o->timeout_ms)
		j->deadline_ns = j->t0_ns + o->timeout_ms * 1000000ull;
	converge_init(&j->cv, o->max_downtime_ms * 1000000ull, o->max_iterations,
		      o->auto_converge, VM_MAX_THROTTLE);
	ratelimit_init(&j->rl, o->bandwidth, j->t0_ns);
	j->ctrl = malloc(CTRL_BUF);
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
	ret = mio_connect(&j->io, uri, HANDSHAKE_TIMEOUT_MS, err, errlen);
	if (ret < 0)
		goto fail;
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
	for (unsigned l = 1; precopy && l < j->nlanes; l++)
		if (j->lanes[l].open)
			mio_shutdown(&j->lanes[l].conn);
	pthread_mutex_unlock(&j->lock);
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
	for (unsigned l = 0; l < j->nlanes; l++)
		page_sender_destroy(j->lanes[l].ps);
	pthread_cond_destroy(&j->task_cond);
	pthread_cond_destroy(&j->done_cond);
	pthread_mutex_destroy(&j->task_lock);
	pthread_mutex_destroy(&j->rl_lock);
	free(j->ctrl);
	free(j->rbuf);
	free(j->bitmap);
	pthread_mutex_destroy(&j->lock);
	free(j);
}
