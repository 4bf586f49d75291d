/* SPDX-License-Identifier: MIT */
/*
 * postcopy.c - the source side of post-copy after the switchover: the
 * fault server, the background push, PC_DONE, and recovery from a broken
 * link. See postcopy.h.
 */
#define LOG_PREFIX "migrate: "
#include "migrate/postcopy.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/handover.h"
#include "migrate/job.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"
#include "migrate/retpath.h"
#include "protocol/frame.h"
#include "vm/vm.h"

#define PAGE WIRE_PAGE_SIZE
#define PUSH_CHECK_PAGES 64	/* the push looks at the return path this often */
#define WAIT_MS 500		/* waits re-check cancel, the deadline, the fault server */
#define RECONNECT_EVERY_MS 1000	/* --postcopy-reconnect: one attempt per second */

/* The fault server: its thread, and what it tells the job thread. */
struct fault_server {
	struct migrate_job *j;
	struct page_sender *ps;		/* raw pages on the fault channel */
	pthread_t thread;
	_Atomic bool stop;
	_Atomic bool failed;		/* the fault channel broke: err says how */
	_Atomic uint64_t hint;		/* the page after the latest request */
	_Atomic uint64_t requests, pages;
	_Atomic uint64_t fbytes;	/* j->fio.bytes_out, as the thread last wrote it */
	_Atomic bool done;		/* PC_DONE came: a PAGE_REQ now is an error */
	uint64_t bytes_before;		/* the job's transferred_bytes at the switchover */
	bool announced;			/* ANNOUNCED came (job thread) */
	char err[400];
};

static bool bit_take(uint64_t *bm, uint64_t p)
{
	uint64_t b = 1ull << (p % 64);

	return __atomic_fetch_and(&bm[p / 64], ~b, __ATOMIC_ACQ_REL) & b;
}

static uint64_t count_bits(const uint64_t *bm, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&bm[w], __ATOMIC_RELAXED));
	return n;
}

static void *fault_thread(void *arg)
{
	struct fault_server *fs = arg;
	struct migrate_job *j = fs->j;
	uint8_t *buf = malloc(MIO_FRAME_BUF), *ram = vm_ram(j->vm);
	char msg[300] = "";
	int ret = buf ? 0 : -ENOMEM;

	while (!ret && !atomic_load(&fs->stop)) {
		struct wire_page_req q;
		struct frame_hdr h;

		ret = mio_wait_readable(&j->fio, WAIT_MS);
		if (ret == 0)
			continue;
		if (ret > 0)
			ret = mio_read_frame(&j->fio, buf, MIO_FRAME_BUF, &h, msg, sizeof(msg));
		if (ret < 0) {
			if (!msg[0])
				snprintf(msg, sizeof(msg), "%s", strerror(-ret));
			break;
		}
		if (h.type != WIRE_F_PAGE_REQ) {
			ret = -EPROTO;
			snprintf(msg, sizeof(msg), "%s frame on the fault channel (only PAGE_REQ "
				 "belongs there)", frame_type_name(h.type));
			break;
		}
		ret = frame_get_page_req(buf + WIRE_HDR_BYTES, h.len, j->npages, &q, msg,
					 sizeof(msg));
		if (ret < 0)
			break;
		if (atomic_load(&fs->done)) {
			ret = -EPROTO;
			snprintf(msg, sizeof(msg),
				 "PAGE_REQ for page %llu after the destination reported every page "
				 "in place (PC_DONE)",
				 (unsigned long long)q.page);
			break;
		}
		for (uint32_t i = 0; i < q.count && !ret; i++) {
			uint64_t p = q.page + i;

			bool fresh = bit_take(j->bitmap, p);	/* the push need not send it again */

			pr_debug("PAGE_REQ %llu (%s)", (unsigned long long)p, fresh ? "not pushed yet" : "pushed already");
			ret = page_sender_page(fs->ps, p, ram + p * PAGE, false);
		}
		if (!ret)
			ret = page_sender_flush(fs->ps);
		if (!ret)
			ret = mio_flush(&j->fio);	/* a vCPU waits: out now */
		if (ret < 0) {
			snprintf(msg, sizeof(msg), "%s", strerror(-ret));
			break;
		}
		atomic_store(&fs->fbytes, j->fio.bytes_out);
		atomic_fetch_add(&fs->requests, 1);
		atomic_fetch_add(&fs->pages, q.count);
		atomic_store(&fs->hint, q.page + q.count);
	}
	if (ret < 0 && !atomic_load(&fs->stop)) {
		snprintf(fs->err, sizeof(fs->err), "the fault channel: %s", msg);
		atomic_store(&fs->failed, true);
		/* wake the push, which may block on channel 0 */
		pthread_mutex_lock(&j->lock);
		mio_shutdown(&j->io);
		pthread_mutex_unlock(&j->lock);
	}
	free(buf);
	return NULL;
}

/* HELLO with flags on io (a new connection), and its HELLO_ACK. Return: 0, -errno; msg. */
static int pc_hello(struct migrate_job *j, struct mio *io, uint16_t flags, char *msg, size_t len)
{
	struct wire_hello h;
	struct wire_hello_ack a;
	struct frame_hdr fh;
	uint8_t buf[WIRE_HDR_BYTES + WIRE_HELLO_BYTES + WIRE_CRC_BYTES];
	ssize_t n;
	int ret;

	/* the caps of channel 0's HELLO; no CPUID or ANNOUNCE frame follows this one */
	outgoing_hello(&h, vm_get_config(j->vm), j->hello_caps & ~(WIRE_CAP_CPUID |
								    WIRE_CAP_ANNOUNCE | WIRE_CAP_MULTI));
	h.flags = flags;
	h.channel = 0;
	h.channels = 1;
	h.session = j->session;
	n = frame_put_hello(buf, sizeof(buf), &h);
	ret = n < 0 ? (int)n : mio_write(io, buf, (size_t)n);
	if (!ret)
		ret = mio_flush(io);
	if (ret < 0) {
		snprintf(msg, len, "cannot send HELLO: %s", strerror(-ret));
		return ret;
	}
	ret = mio_wait_readable(io, JOB_HANDSHAKE_TIMEOUT_MS);
	if (ret == 0)
		ret = -ETIMEDOUT;
	if (ret > 0)
		ret = mio_read_frame(io, j->rbuf, MIO_FRAME_BUF, &fh, msg, len);
	if (ret < 0) {
		if (ret == -ETIMEDOUT || ret == -ENODATA)
			snprintf(msg, len, "no answer to HELLO");
		return ret;
	}
	if (fh.type == WIRE_F_ERROR) {
		struct wire_error e;

		ret = frame_get_error(j->rbuf + WIRE_HDR_BYTES, fh.len, &e, msg, len);
		if (!ret)
			snprintf(msg, len, "the destination refused: %.300s", e.msg);
		return -EREMOTEIO;
	}
	if (fh.type != WIRE_F_HELLO_ACK) {
		snprintf(msg, len, "the destination answered HELLO with %s", frame_type_name(fh.type));
		return -EPROTO;
	}
	ret = frame_get_hello_ack(j->rbuf + WIRE_HDR_BYTES, fh.len, &a, msg, len);
	if (ret < 0)
		return ret;
	if (!(a.caps & WIRE_CAP_POSTCOPY)) {
		snprintf(msg, len, "the destination did not take the post-copy stream");
		return -EPROTO;
	}
	return 0;
}

int postcopy_open_fault(struct migrate_job *j)
{
	char msg[400];
	int ret = mio_connect(&j->fio, j->uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, msg, sizeof(msg));

	if (ret < 0)
		return job_fail(j, ret, "cannot open the post-copy fault channel: %s", msg);
	pthread_mutex_lock(&j->lock);
	j->fio_open = true;
	pthread_mutex_unlock(&j->lock);
	ret = pc_hello(j, &j->fio, WIRE_HELLO_FAULT, msg, sizeof(msg));
	if (ret < 0)
		return job_fail(j, ret, "the post-copy fault channel: %s", msg);
	return 0;
}

void postcopy_kick(struct migrate_job *j)
{
	if (j->fio_open)
		mio_shutdown(&j->fio);
	pthread_cond_broadcast(&j->pc_cond);
}

static void set_stats(struct migrate_job *j, struct fault_server *fs, uint64_t pushed,
		      uint64_t bytes0, uint64_t closed_bytes)
{
	uint64_t missing = count_bits(j->bitmap, j->npages);

	pthread_mutex_lock(&j->lock);
	j->st.postcopy.requests = atomic_load(&fs->requests);
	j->st.postcopy.pages_pushed = pushed;
	j->st.postcopy.bytes_after_switchover =
		closed_bytes + j->io.bytes_out + atomic_load(&fs->fbytes) - bytes0;
	/* every byte on every channel, the fault channel's included */
	j->st.transferred_bytes = fs->bytes_before + j->st.postcopy.bytes_after_switchover;
	j->st.postcopy.pages_missing = missing;
	j->st.remaining_bytes = missing * PAGE;
	j->st.total_ms = (clock_now_ns() - j->t0_ns) / 1000000;
	pthread_mutex_unlock(&j->lock);
}

/*
 * A return-path frame during post-copy. Return: 1 on PC_DONE, 2 on a
 * PC_DONE whose digest did not match, 0, -errno (a malformed or misplaced
 * frame: j->err names it).
 */
static int take_frame(struct migrate_job *j, struct fault_server *fs, const struct frame_hdr *h)
{
	char msg[300];

	if (h->type == WIRE_F_PC_DONE) {
		struct wire_pc_done d;

		if (frame_get_pc_done(j->rbuf + WIRE_HDR_BYTES, h->len, &d, msg, sizeof(msg)) < 0)
			return job_fail(j, -EBADMSG, "bad PC_DONE from the destination: %s", msg);
		atomic_store(&fs->done, true);
		j->pc_done_ns = clock_now_ns();
		pthread_mutex_lock(&j->lock);
		j->st.postcopy.fault_latency_us_p50 = d.p50_us;
		j->st.postcopy.fault_latency_us_p99 = d.p99_us;
		j->st.postcopy.blocked_ms = d.blocked_us / 1000;
		j->st.verified = d.digest_ok;
		pthread_mutex_unlock(&j->lock);
		if (j->o.verify && !d.digest_ok) {
			job_fail(j, -EBADMSG,
				 "RAM digest mismatch after post-copy: the guest runs at the "
				 "destination with memory that differs from what left here");
			return 2;
		}
		return 1;
	}
	if (h->type == WIRE_F_ANNOUNCED) {
		struct wire_announced a;

		if (frame_get_announced(j->rbuf + WIRE_HDR_BYTES, h->len, &a, msg, sizeof(msg)) < 0)
			return job_fail(j, -EBADMSG, "bad ANNOUNCED frame: %s", msg);
		pthread_mutex_lock(&j->lock);
		j->st.announce.frames = a.frames;
		j->st.announce.first_us = a.first_us;
		pthread_mutex_unlock(&j->lock);
		fs->announced = true;
		return 0;
	}
	return job_fail(j, -EPROTO, "%s frame from the destination during post-copy",
			frame_type_name(h->type));
}

/*
 * What the destination sent on channel 0: wait up to timeout_ms for the
 * first frame (0: only what is there), then take every frame already in.
 * Return: 0 (no more), 1 or 2 as take_frame, -errno (a broken link or a
 * bad frame: j->err names a bad frame).
 */
static int take_retpath(struct migrate_job *j, struct fault_server *fs, int timeout_ms)
{
	struct frame_hdr h;
	int ret;

	for (;;) {
		ret = retpath_read(j, timeout_ms, &h);
		if (ret == -ETIMEDOUT)
			return 0;
		if (ret == 0)
			ret = take_frame(j, fs, &h);
		if (ret != 0)
			return ret;
		timeout_ms = 0;
	}
}

/*
 * Push the needed pages and wait for PC_DONE on the current connections.
 * Return: 0 (PC_DONE), -EPIPE (a broken link: j->err says how), or
 * another -errno (give up: cancel, timeout).
 */
static int serve_link(struct migrate_job *j, struct fault_server *fs, struct page_sender *bg,
		      uint64_t *pushed, uint64_t bytes0, uint64_t closed_bytes)
{
	uint8_t *ram = vm_ram(j->vm);
	uint64_t cursor = atomic_load(&fs->hint), hint_seen = cursor, since = 0;
	int ret = 0;

	/* the push: every page still needed, near the latest fault first */
	for (;;) {
		uint64_t p = cursor, left = j->npages;
		bool found = false;

		while (left) {
			uint64_t w = __atomic_load_n(&j->bitmap[p / 64], __ATOMIC_RELAXED) >> (p % 64);

			if (w) {
				p += (uint64_t)__builtin_ctzll(w);
				if (p < j->npages) {
					found = true;
					break;
				}
			}
			left -= MIN(left, 64 - p % 64);
			p = (p | 63) + 1;
			if (p >= j->npages)
				p = 0;
		}
		if (!found)
			break;
		cursor = p + 1 < j->npages ? p + 1 : 0;
		if (bit_take(j->bitmap, p)) {
			ret = page_sender_page(bg, p, ram + p * PAGE, false);
			if (ret < 0)
				goto broken;
			(*pushed)++;
		}
		if (++since < PUSH_CHECK_PAGES)
			continue;
		since = 0;
		if (atomic_load(&fs->failed))
			goto broken;
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
		ret = take_retpath(j, fs, 0);
		if (ret < 0)
			goto broken;
		if (ret > 0)
			return ret == 1 ? 0 : -EBADMSG;
		if (atomic_load(&fs->hint) != hint_seen) {
			hint_seen = atomic_load(&fs->hint);
			cursor = hint_seen < j->npages ? hint_seen : 0;
		}
		set_stats(j, fs, *pushed, bytes0, closed_bytes);
	}
	ret = page_sender_flush(bg);
	if (!ret)
		ret = mio_flush(&j->lanes[0].rl_io);
	if (ret < 0)
		goto broken;
	set_stats(j, fs, *pushed, bytes0, closed_bytes);
	/* everything went out: the destination confirms, or asks again */
	for (;;) {
		if (atomic_load(&fs->failed))
			goto broken;
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
		ret = take_retpath(j, fs, WAIT_MS);
		if (ret < 0)
			goto broken;
		if (ret > 0)
			return ret == 1 ? 0 : -EBADMSG;
		set_stats(j, fs, *pushed, bytes0, closed_bytes);
	}
broken:
	if (ret == -EREMOTEIO)
		return ret;	/* the destination gave up: j->err has its reason */
	if (atomic_load(&fs->failed)) {
		j->err[0] = '\0';
		job_fail(j, -EPIPE, "%s", fs->err);
	} else if (!j->err[0]) {
		job_fail(j, -EPIPE, "channel 0: %s", strerror(-ret));
	}
	if (atomic_load(&j->cancel))
		return -ECANCELED;
	return -EPIPE;
}

static int start_fault_server(struct fault_server *fs)
{
	atomic_store(&fs->fbytes, fs->j->fio.bytes_out);
	atomic_store(&fs->stop, false);
	atomic_store(&fs->failed, false);
	fs->err[0] = '\0';
	return -pthread_create(&fs->thread, NULL, fault_thread, fs);
}

static void stop_fault_server(struct migrate_job *j, struct fault_server *fs)
{
	atomic_store(&fs->stop, true);
	pthread_mutex_lock(&j->lock);
	if (j->fio_open)
		mio_shutdown(&j->fio);
	pthread_mutex_unlock(&j->lock);
	pthread_join(fs->thread, NULL);
}

/* Close both channels (a broken link); their bytes are added to *closed. */
static void close_link(struct migrate_job *j, uint64_t *closed)
{
	pthread_mutex_lock(&j->lock);
	*closed += j->io.bytes_out + (j->fio_open ? j->fio.bytes_out : 0);
	mio_close(&j->io);
	j->io.bytes_out = 0;
	if (j->fio_open)
		mio_close(&j->fio);
	j->fio.bytes_out = 0;
	j->fio_open = false;
	pthread_mutex_unlock(&j->lock);
}

/* A new channel 0 (HELLO RESUME, the WANT frames) and fault channel. Return: 0, -errno, msg. */
static int reconnect(struct migrate_job *j, const char *uri, char *msg, size_t len)
{
	struct mio io;
	bool last = false;
	int ret = mio_connect(&io, uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, msg, len);

	if (ret < 0)
		return ret;
	ret = pc_hello(j, &io, WIRE_HELLO_RESUME, msg, len);
	if (ret == 0)
		memset(j->bitmap, 0, ((j->npages + 63) / 64) * sizeof(uint64_t));
	while (ret == 0 && !last) {
		struct wire_bitmap b;
		struct frame_hdr h;

		ret = mio_wait_readable(&io, JOB_HANDSHAKE_TIMEOUT_MS);
		if (ret == 0) {
			snprintf(msg, len, "no WANT frames after HELLO");
			ret = -ETIMEDOUT;
			break;
		}
		if (ret > 0)
			ret = mio_read_frame(&io, j->rbuf, MIO_FRAME_BUF, &h, msg, len);
		if (ret == 0 && h.type != WIRE_F_WANT) {
			snprintf(msg, len, "%s instead of WANT", frame_type_name(h.type));
			ret = -EPROTO;
		}
		if (ret == 0)
			ret = frame_get_bitmap(j->rbuf + WIRE_HDR_BYTES, h.len, WIRE_F_WANT, j->npages,
					       &b, msg, len);
		if (ret < 0)
			break;
		for (uint32_t w = 0; w < (b.count + 63) / 64; w++)
			j->bitmap[b.first / 64 + w] |= wire_bitmap_word(&b, w);
		last = b.flags & WIRE_WANT_LAST;
	}
	if (ret < 0) {
		mio_close(&io);
		return ret;
	}
	pthread_mutex_lock(&j->lock);
	j->io = io;
	pthread_mutex_unlock(&j->lock);
	ret = mio_connect(&j->fio, uri, &j->co, JOB_HANDSHAKE_TIMEOUT_MS, msg, len);
	if (ret == 0) {
		pthread_mutex_lock(&j->lock);
		j->fio_open = true;
		pthread_mutex_unlock(&j->lock);
		ret = pc_hello(j, &j->fio, WIRE_HELLO_FAULT, msg, len);
	}
	return ret;
}

/*
 * The link is down: wait for migrate_resume, or try by ourselves during
 * --postcopy-reconnect. Return: 0 (reconnected), or -errno (give up).
 */
static int wait_resume(struct migrate_job *j, uint64_t *closed)
{
	uint64_t auto_end = j->o.postcopy_reconnect_ms
				    ? clock_now_ms() + j->o.postcopy_reconnect_ms : 0;
	uint64_t next_try = clock_now_ms() + 200;
	const char *name = vm_get_config(j->vm)->name;
	char reason[sizeof(j->err)];

	snprintf(reason, sizeof(reason), "%s", j->err);
	pr_warn("%s: post-copy link lost (%s) with %llu pages not yet at the destination; %s",
		name, reason, (unsigned long long)count_bits(j->bitmap, j->npages),
		auto_end ? "reconnecting" : "waiting for `kvmig job resume`");
	job_set_status(j, "postcopy-paused");
	{
		struct migrate_event ev;

		job_event_init(j, &ev, "postcopy-paused");
		snprintf(ev.error, sizeof(ev.error), "link lost: %.480s", reason);
		ev.remaining_bytes = count_bits(j->bitmap, j->npages) * PAGE;
		job_event_post(j, &ev);
	}
	for (;;) {
		char uri[sizeof(j->uri)] = "", msg[400];
		struct timespec ts;
		int ret;

		pthread_mutex_lock(&j->lock);
		snprintf(j->st.error, sizeof(j->st.error), "link lost: %.480s", reason);
		while (!atomic_load(&j->cancel) && !j->pc_resume_req &&
		       !(auto_end && clock_now_ms() >= next_try && clock_now_ms() < auto_end) &&
		       !(j->deadline_ns && clock_now_ns() >= j->deadline_ns)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&j->pc_cond, &j->lock, &ts);
		}
		if (j->pc_resume_req) {
			snprintf(uri, sizeof(uri), "%s", j->pc_resume_uri[0] ? j->pc_resume_uri : j->uri);
			j->pc_resume_req = false;
		} else if (!atomic_load(&j->cancel)) {
			snprintf(uri, sizeof(uri), "%s", j->uri);
		}
		pthread_mutex_unlock(&j->lock);
		j->err[0] = '\0';
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
		next_try = clock_now_ms() + RECONNECT_EVERY_MS;
		ret = reconnect(j, uri, msg, sizeof(msg));
		if (ret == 0) {
			if (strcmp(uri, j->uri))
				snprintf(j->uri, sizeof(j->uri), "%s", uri);
			pthread_mutex_lock(&j->lock);
			j->st.postcopy.reconnects++;
			j->st.error[0] = '\0';
			pthread_mutex_unlock(&j->lock);
			job_set_status(j, "postcopy");
			{
				struct migrate_event ev;

				job_event_init(j, &ev, "resumed");
				ev.remaining_bytes = count_bits(j->bitmap, j->npages) * PAGE;
				job_event_post(j, &ev);
			}
			pr_info("%s: post-copy resumed over %s: %llu pages still to send", name, uri,
				(unsigned long long)count_bits(j->bitmap, j->npages));
			return 0;
		}
		close_link(j, closed);
		snprintf(reason, sizeof(reason), "resume over %.200s failed: %.280s", uri, msg);
		pr_warn("%s: %s", name, reason);
	}
}

int postcopy_serve(struct migrate_job *j)
{
	struct fault_server fs = { .j = j };
	struct page_sender *bg = NULL;
	uint64_t pushed = 0, closed = 0, bytes0;
	int ret;

	ret = page_sender_create(&j->cc, 0, &j->lanes[0].rl_io, &bg);
	if (ret == 0)
		ret = page_sender_create(NULL, 0, &j->fio, &fs.ps);
	if (ret < 0) {
		ret = job_fail(j, ret, "cannot start post-copy: %s", strerror(-ret));
		goto out;
	}
	page_sender_set_round(bg, j->round + 1);
	page_sender_set_round(fs.ps, j->round + 1);
	bytes0 = j->io.bytes_out + j->fio.bytes_out;
	pthread_mutex_lock(&j->lock);
	fs.bytes_before = MAX(j->st.transferred_bytes, bytes0);
	pthread_mutex_unlock(&j->lock);
	job_set_status(j, "postcopy");
	for (;;) {
		ret = start_fault_server(&fs);
		if (ret < 0) {
			ret = job_fail(j, ret, "cannot start the fault server: %s", strerror(-ret));
			goto out;
		}
		ret = serve_link(j, &fs, bg, &pushed, bytes0, closed);
		stop_fault_server(j, &fs);
		set_stats(j, &fs, pushed, bytes0, closed);
		if (ret != -EPIPE)
			break;
		close_link(j, &closed);
		ret = wait_resume(j, &closed);
		if (ret < 0)
			break;
		/* the senders start over on the new connections */
		page_sender_destroy(bg);
		page_sender_destroy(fs.ps);
		bg = fs.ps = NULL;
		ret = page_sender_create(&j->cc, 0, &j->lanes[0].rl_io, &bg);
		if (ret == 0)
			ret = page_sender_create(NULL, 0, &j->fio, &fs.ps);
		if (ret < 0) {
			ret = job_fail(j, ret, "cannot go on with post-copy: %s", strerror(-ret));
			break;
		}
	}
	/* the announce may end after the last page: its report comes after PC_DONE */
	if (ret == 0 && j->o.announce[0] && !fs.announced)
		handover_wait_announced(j);
out:
	if (ret < 0 && ret != -EBADMSG) {
		/* the guest runs there without these pages: it is lost */
		uint64_t missing = count_bits(j->bitmap, j->npages);
		char why[sizeof(j->err)];

		snprintf(why, sizeof(why), "%s", j->err);
		snprintf(j->err, sizeof(j->err),
			 "post-copy given up (%.200s): %llu pages (%llu MiB) never reached the "
			 "destination, so the guest there cannot run on, and the paused copy here "
			 "is stale: the guest is lost",
			 why, (unsigned long long)missing,
			 (unsigned long long)((missing * PAGE) >> 20));
	}
	page_sender_destroy(bg);
	page_sender_destroy(fs.ps);
	return ret;
}
