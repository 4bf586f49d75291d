/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/lanes.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "migrate/autocomp.h"
#include "migrate/job.h"
#include "migrate/pagesend.h"
#include "migrate/retpath.h"
#include "protocol/frame.h"

#define PAGE WIRE_PAGE_SIZE

/* The rate limiter, shared by all lanes, sits between senders and channels. */
static int rl_write(struct mio *io, const void *buf, size_t len)
{
	struct lane *ln = io->priv;
	struct migrate_job *j = ln->j;
	uint64_t rate = atomic_load(&j->rl_rate), t0;
	int ret;

	/* the guest is paused: the cap would only add downtime (job.h) */
	if (rate && !atomic_load_explicit(&j->rl_bypass, memory_order_relaxed)) {
		pthread_mutex_lock(&j->rl_lock);
		if (j->rl.rate != rate)	/* migrate_set_bandwidth changed it */
			ratelimit_set_rate(&j->rl, rate, clock_now_ns());
		ratelimit_wait(&j->rl, len);
		pthread_mutex_unlock(&j->rl_lock);
	}
	t0 = clock_now_ns();
	ret = mio_write(ln->io, buf, len);
	ln->write_ns += clock_now_ns() - t0;
	return ret;
}

static int rl_flush(struct mio *io)
{
	struct lane *ln = io->priv;

	return mio_flush(ln->io);
}

void lanes_init(struct migrate_job *j)
{
	for (unsigned l = 0; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		ln->j = j;
		ln->idx = l;
		ln->io = l ? &ln->conn : &j->io;
		ln->rl_io = (struct mio){ .write = rl_write, .flush = rl_flush, .priv = ln };
	}
}

int lanes_senders_create(struct migrate_job *j, const struct codec_config *cc, bool auto_codec)
{
	int ret;

	for (unsigned l = 0; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		/* pages are split among the lanes, and so is the XBZRLE cache */
		ret = page_sender_create(cc, j->o.xbzrle_cache_bytes / j->nlanes, &ln->rl_io,
					 &ln->ps);
		for (int c = AUTOCOMP_NONE + 1; auto_codec && !ret && c < AUTOCOMP_CHOICES; c++) {
			struct codec_config k = autocomp_codec((enum autocomp_choice)c);

			ret = page_sender_add_codec(ln->ps, &k);
		}
		if (ret < 0)
			return job_fail(j, ret, "cannot set up the page encoders: %s", strerror(-ret));
	}
	return 0;
}

int lanes_set_codec(struct migrate_job *j, enum codec_id id, unsigned probe_every)
{
	for (unsigned l = 0; l < j->nlanes; l++) {
		int ret = page_sender_set_codec(j->lanes[l].ps, id);

		if (ret < 0)
			return ret;
		page_sender_set_probe(j->lanes[l].ps, probe_every);
	}
	return 0;
}

void lanes_link(const struct migrate_job *j, uint64_t *bytes, uint64_t *write_ns)
{
	*bytes = 0;
	*write_ns = 0;
	for (unsigned l = 0; l < j->nlanes; l++) {
		*bytes += j->lanes[l].io->bytes_out;
		*write_ns += j->lanes[l].write_ns;
	}
}

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

/* Lanes 1..N-1: take each task as task_gen moves, run it, count it done. */
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

int lanes_do(struct migrate_job *j, enum lane_task t, uint64_t first, uint64_t n, bool bulk)
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
				(void)retpath_poll(j);
			if (j->nlanes > 1)
				return job_fail(j, ret, "the destination is gone (channel %u): %s", l,
						strerror(-ret));
			return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
		}
	}
	return 0;
}

int lanes_open(struct migrate_job *j)
{
	char msg[300];
	int ret;

	for (unsigned l = 1; l < j->nlanes; l++) {
		struct lane *ln = &j->lanes[l];

		ret = mio_connect(&ln->conn, j->uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, msg,
				  sizeof(msg));
		if (ret < 0)
			return job_fail(j, ret, "parallel channel %u: %s", l, msg);
		pthread_mutex_lock(&j->lock);
		ln->open = true;
		pthread_mutex_unlock(&j->lock);
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
		ret = retpath_handshake(j, ln);
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

void lanes_set_round(struct migrate_job *j, unsigned round)
{
	for (unsigned l = 0; l < j->nlanes; l++)
		page_sender_set_round(j->lanes[l].ps, round);
}

void lanes_stats(const struct migrate_job *j, struct page_sender_stats *sum, uint64_t *bytes_out,
		 size_t *cache_bytes)
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
		for (unsigned c = 0; c < CODEC_COUNT; c++) {
			sum->codec[c].pages += ps.codec[c].pages;
			sum->codec[c].in_bytes += ps.codec[c].in_bytes;
			sum->codec[c].out_bytes += ps.codec[c].out_bytes;
			sum->codec[c].ns += ps.codec[c].ns;
		}
		if (cache_bytes && page_sender_xbzrle(ln->ps, &cb))
			*cache_bytes += cb;
	}
}

void lanes_stop(struct migrate_job *j)
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

void lanes_shutdown(struct migrate_job *j)
{
	for (unsigned l = 1; l < j->nlanes; l++)
		if (j->lanes[l].open)
			mio_shutdown(&j->lanes[l].conn);
}

void lanes_close(struct migrate_job *j)
{
	for (unsigned l = 1; l < j->nlanes; l++) {
		if (j->lanes[l].open)
			mio_close(&j->lanes[l].conn);
		j->lanes[l].open = false;
	}
}

void lanes_destroy(struct migrate_job *j)
{
	for (unsigned l = 0; l < j->nlanes; l++)
		page_sender_destroy(j->lanes[l].ps);
}
