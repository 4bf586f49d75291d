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
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/converge.h"
#include "migrate/digest.h"
#include "migrate/mio.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"
#include "migrate/ratelimit.h"
#include "protocol/frame.h"
#include "vm/state.h"

#define PAGE WIRE_PAGE_SIZE
#define CHUNK_PAGES 16384u		/* 64 MiB: dirty-log clear granularity */
#define HANDSHAKE_TIMEOUT_MS 10000
#define RESUME_TIMEOUT_MS 60000
#define CTRL_BUF 4096

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

	/* job thread only */
	struct mio io;
	struct mio rl_io;		/* io behind the rate limiter */
	struct ratelimit rl;
	struct page_sender *ps;
	struct dirtylog *dl;
	struct converge cv;
	uint64_t *bitmap;
	uint64_t npages;
	uint64_t t0_ns, deadline_ns;
	uint8_t *ctrl;			/* control frames */
	uint8_t *rbuf;			/* return-path frames */
	bool paused;			/* the job paused the VM */
	unsigned round;
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

void migrate_opts_defaults(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_downtime_ms = 300;
	strcpy(o->compress, "none");
	o->parallel = 1;
	o->max_iterations = 30;
	o->dirty_track = DIRTYLOG_BITMAP;
}

/* ---- stats ---------------------------------------------------------------- */

static void set_status(struct migrate_job *j, const char *s)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->st.status, sizeof(j->st.status), "%s", s);
	pthread_mutex_unlock(&j->lock);
}

static uint64_t count_bits(const uint64_t *bm, uint64_t npages)
{
	uint64_t n = 0;

	for (size_t i = 0; i < dirtylog_bitmap_words(npages); i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

static void update_stats(struct migrate_job *j, uint64_t remaining_pages)
{
	struct page_sender_stats ps;
	struct migrate_stats *st = &j->st;
	uint64_t now = clock_now_ns();

	page_sender_get_stats(j->ps, &ps);
	pthread_mutex_lock(&j->lock);
	st->total_ms = (now - j->t0_ns) / 1000000;
	st->transferred_bytes = j->io.bytes_out;
	st->total_bytes = j->npages * PAGE;
	st->remaining_bytes = remaining_pages * PAGE;
	st->duplicate_pages = ps.duplicate_pages + j->hole_pages;
	st->normal_pages = ps.normal_pages;
	st->mbps = st->total_ms ? (double)st->transferred_bytes * 8.0 / 1e6 /
					  ((double)st->total_ms / 1000.0)
				: 0.0;
	page_sender_xbzrle(j->ps, &st->xbzrle.cache_size);
	st->xbzrle.bytes = ps.xbzrle_bytes;
	st->xbzrle.pages = ps.xbzrle_pages;
	st->xbzrle.cache_miss = ps.xbzrle_cache_miss;
	st->xbzrle.overflow = ps.xbzrle_overflow;
	st->compression.pages = ps.compressed_pages;
	st->compression.ratio =
		ps.compressed_out ? (double)ps.compressed_in / (double)ps.compressed_out : 0.0;
	st->compression.busy = now > j->t0_ns ? (double)ps.compress_ns / (double)(now - j->t0_ns)
					      : 0.0;
	st->round = j->round;
	st->throttle_pct = vm_get_throttle(j->vm);
	st->ring_overflows = j->dl ? dirtylog_overflows(j->dl) : 0;
	st->dirty_pages_rate = j->dl ? dirtylog_rate(j->dl) : 0;
	st->expected_downtime_ms = j->cv.expected_downtime_ns / 1000000;
	pthread_mutex_unlock(&j->lock);
}

/* ---- the stream ------------------------------------------------------------ */

/* The rate limiter sits between the sender and the channel. */
static int rl_write(struct mio *io, const void *buf, size_t len)
{
	struct migrate_job *j = io->priv;

	ratelimit_wait(&j->rl, len);
	return mio_write(&j->io, buf, len);
}

static int rl_flush(struct mio *io)
{
	struct migrate_job *j = io->priv;

	return mio_flush(&j->io);
}

static int send_ctrl(struct migrate_job *j, ssize_t n)
{
	int ret;

	if (n < 0)
		return job_fail(j, (int)n, "cannot build a control frame: %s", strerror((int)-n));
	ret = mio_write(&j->rl_io, j->ctrl, (size_t)n);
	if (!ret)
		ret = mio_flush(&j->rl_io);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	return 0;
}

/*
 * Read one return-path frame, waiting at most timeout_ms.
 * Return: 0 and *h, -ETIMEDOUT, or -errno (with j->err set).
 */
static int read_reply(struct migrate_job *j, int timeout_ms, struct frame_hdr *h)
{
	char msg[300];
	int ret = mio_wait_readable(&j->io, timeout_ms);

	if (ret == 0)
		return -ETIMEDOUT;
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	ret = mio_read_frame(&j->io, j->rbuf, MIO_FRAME_BUF, h, msg, sizeof(msg));
	if (ret < 0)
		return job_fail(j, ret == -ENODATA ? -ECONNRESET : ret,
				"the destination closed the connection or sent garbage: %s", msg);
	if (h->type == WIRE_F_ERROR) {
		struct wire_error e;

		if (frame_get_error(j->rbuf + WIRE_HDR_BYTES, h->len, &e, msg, sizeof(msg)) < 0)
			return job_fail(j, -EBADMSG, "the destination sent a bad ERROR frame: %s",
					msg);
		return job_fail(j, -EREMOTEIO, "the destination refused: %s", e.msg);
	}
	return 0;
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
		if (h.type != WIRE_F_ACK)
			return job_fail(j, -EPROTO, "unexpected %s frame from the destination",
					frame_type_name(h.type));
	}
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

static int handshake(struct migrate_job *j)
{
	const struct vm_config *c = vm_get_config(j->vm);
	struct wire_hello h;
	struct wire_hello_ack a;
	struct frame_hdr fh;
	char msg[300];
	uint32_t need;
	int ret;

	outgoing_hello(&h, c, page_sender_caps(j->ps) | (j->o.verify ? WIRE_CAP_VERIFY : 0));
	ret = send_ctrl(j, frame_put_hello(j->ctrl, CTRL_BUF, &h));
	if (ret < 0)
		return ret;
	ret = read_reply(j, HANDSHAKE_TIMEOUT_MS, &fh);
	if (ret == -ETIMEDOUT)
		return job_fail(j, ret, "the destination did not answer the handshake within %d s",
				HANDSHAKE_TIMEOUT_MS / 1000);
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
	int fd = vm_ram_fd(j->vm);
	uint64_t end = (first + n) * PAGE;
	off_t pos = (off_t)(first * PAGE);

	while ((uint64_t)pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0 || (uint64_t)data > end)
			data = (off_t)end;
		/* [pos, data) is a hole: whole pages inside it are clean */
		for (uint64_t p = DIV_ROUND_UP((uint64_t)pos, PAGE); p < (uint64_t)data / PAGE; p++) {
			if (j->bitmap[p / 64] & (1ull << (p % 64))) {
				j->bitmap[p / 64] &= ~(1ull << (p % 64));
				j->hole_pages++;
			}
		}
		if ((uint64_t)data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		pos = hole < 0 ? (off_t)end : hole;
	}
}

/*
 * Send every page set in the bitmap, clearing bits as it goes.
 * clear_log: re-protect each chunk in KVM before reading it (precopy).
 */
static int send_dirty(struct migrate_job *j, bool bulk, bool clear_log)
{
	const uint8_t *ram = vm_ram(j->vm);
	uint64_t chunks = DIV_ROUND_UP(j->npages, CHUNK_PAGES);
	int ret;

	j->round_pages = 0;
	for (uint64_t c = 0; c < chunks; c++) {
		uint64_t first = c * CHUNK_PAGES, n = MIN(CHUNK_PAGES, j->npages - first);
		bool any = false;

		for (uint64_t w = first / 64; w < DIV_ROUND_UP(first + n, 64); w++)
			any |= j->bitmap[w] != 0;
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
		for (uint64_t w = first / 64; w < DIV_ROUND_UP(first + n, 64); w++) {
			uint64_t bits = j->bitmap[w];

			while (bits) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				ret = page_sender_page(j->ps, p, ram + p * PAGE, bulk);
				if (ret < 0)
					return job_fail(j, ret, "the destination is gone: %s",
							strerror(-ret));
				j->round_pages++;
			}
			j->bitmap[w] = 0;
		}
		dirtylog_poll(j->dl);
		ret = check_abort(j);
		if (!ret)
			ret = poll_replies(j);
		if (ret < 0)
			return ret;
		update_stats(j, count_bits(j->bitmap, j->npages));
	}
	ret = page_sender_flush(j->ps);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	return 0;
}

static long sync_dirty(struct migrate_job *j)
{
	long n = dirtylog_sync(j->dl, j->bitmap);

	pthread_mutex_lock(&j->lock);
	j->st.dirty_sync_count++;
	pthread_mutex_unlock(&j->lock);
	if (n == -EOVERFLOW) {
		/* the ring lost entries: the dirty set is unknown, resend all */
		memset(j->bitmap, 0xff, dirtylog_bitmap_words(j->npages) * 8);
		if (j->npages % 64)
			j->bitmap[j->npages / 64] = (1ull << (j->npages % 64)) - 1;
		pr_warn("%s: dirty ring overflowed: resending every page",
			vm_get_config(j->vm)->name);
		return (long)j->npages;
	}
	if (n < 0)
		return job_fail(j, (int)n, "reading the dirty log failed: %s", strerror((int)-n));
	return (long)count_bits(j->bitmap, j->npages);
}

static int precopy(struct migrate_job *j)
{
	uint64_t bw = 0;
	char msg[512];
	int ret;

	memset(j->bitmap, 0xff, dirtylog_bitmap_words(j->npages) * 8);
	if (j->npages % 64)
		j->bitmap[j->npages / 64] = (1ull << (j->npages % 64)) - 1;
	for (j->round = 0;; j->round++) {
		uint64_t t0 = clock_now_ns(), b0 = j->io.bytes_out, sent, dt;
		struct wire_end_round er;
		long dirty;
		enum converge_action act;

		page_sender_set_round(j->ps, j->round);
		ret = send_dirty(j, j->round == 0, true);
		if (ret < 0)
			return ret;
		dt = clock_now_ns() - t0;
		sent = j->io.bytes_out - b0;
		/* bandwidth: what the link carried while we were sending */
		if (dt > 1000000 && sent > (1u << 20))
			bw = bw ? (bw + sent * 1000000000ull / dt) / 2 : sent * 1000000000ull / dt;
		else if (!bw)
			bw = j->o.bandwidth ? j->o.bandwidth : 1ull << 30;
		if (j->o.bandwidth && bw > j->o.bandwidth)
			bw = j->o.bandwidth;
		dirty = sync_dirty(j);
		if (dirty < 0)
			return (int)dirty;
		er.round = j->round;
		er.pages = j->round_pages;
		er.dirty_rate = dirtylog_rate(j->dl);
		ret = send_ctrl(j, frame_put_end_round(j->ctrl, CTRL_BUF, &er));
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&j->lock);
		j->st.bandwidth = bw;
		pthread_mutex_unlock(&j->lock);
		act = converge_decide(&j->cv, j->round, (uint64_t)dirty * PAGE, sent, bw,
				      dirtylog_rate(j->dl), msg, sizeof(msg));
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
	j->paused = true;
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
	ret = send_ctrl(j, frame_put_switchover(j->ctrl, CTRL_BUF, j->round + 1));
	if (ret < 0)
		return ret;
	page_sender_set_round(j->ps, j->round + 1);
	ret = send_dirty(j, false, false);
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
	ret = outgoing_state(&j->rl_io, state, &nsec);
	if (ret < 0) {
		job_fail(j, ret, "cannot send the state: %s", strerror(-ret));
		goto out;
	}
	memset(&done, 0, sizeof(done));
	done.state_sections = nsec;
	{
		struct page_sender_stats ps;

		page_sender_get_stats(j->ps, &ps);
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
	/* the destination now checks, builds and starts the VM */
	for (;;) {
		ret = read_reply(j, RESUME_TIMEOUT_MS, &h);
		if (ret == -ETIMEDOUT) {
			job_fail(j, ret, "the destination did not confirm the VM runs within %d s",
				 RESUME_TIMEOUT_MS / 1000);
			goto out;
		}
		if (ret < 0)
			goto out;
		if (h.type == WIRE_F_ACK)
			continue;
		if (h.type != WIRE_F_RESUMED) {
			ret = job_fail(j, -EPROTO, "the destination answered COMPLETE with %s",
				       frame_type_name(h.type));
			goto out;
		}
		break;
	}
	{
		struct wire_resumed r;
		char msg[200];

		ret = frame_get_resumed(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
		if (ret < 0) {
			job_fail(j, ret, "bad RESUMED frame: %s", msg);
			goto out;
		}
		pthread_mutex_lock(&j->lock);
		j->st.verified = r.digest_ok;
		pthread_mutex_unlock(&j->lock);
		if (j->o.verify && !r.digest_ok) {
			ret = job_fail(j, -EBADMSG, "the destination did not verify the RAM digest");
			goto out;
		}
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
	ret = page_sender_create(&cc, j->o.xbzrle_cache_bytes, &j->rl_io, &j->ps);
	if (ret < 0) {
		job_fail(j, ret, "cannot set up the page encoders: %s", strerror(-ret));
		goto out;
	}
	ret = handshake(j);
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
	if (ret < 0) {
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
	dirtylog_stop(j->dl);
	j->dl = NULL;
	if (j->ps)
		update_stats(j, ret < 0 ? 0 : 0);
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
	mio_close(&j->io);	/* under the lock: migrate_cancel may be shutting it down */
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
	if (codec_by_name(o->compress, &cc) < 0) {
		snprintf(err, errlen, "unknown compression '%s' (none, zstd[:LEVEL], lz4)",
			 o->compress);
		return -EINVAL;
	}
	if (o->parallel != 1) {
		snprintf(err, errlen, "--parallel %u: only 1 channel is implemented so far",
			 o->parallel);
		return -EOPNOTSUPP;
	}
	if (vm_get_run_state(vm) != VM_RUN_RUNNING || vm_dead_vcpus(vm)) {
		snprintf(err, errlen, "VM %s is not running%s", vm_get_config(vm)->name,
			 vm_dead_vcpus(vm) ? " (a vCPU was stopped by KVM)" : "");
		return -EINVAL;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	j->vm = vm;
	j->o = *o;
	snprintf(j->uri, sizeof(j->uri), "%s", uri);
	pthread_mutex_init(&j->lock, NULL);
	j->npages = vm_ram_bytes(vm) / PAGE;
	j->t0_ns = clock_now_ns();
	if (o->timeout_ms)
		j->deadline_ns = j->t0_ns + o->timeout_ms * 1000000ull;
	converge_init(&j->cv, o->max_downtime_ms * 1000000ull, o->max_iterations,
		      o->auto_converge, VM_MAX_THROTTLE);
	ratelimit_init(&j->rl, o->bandwidth, j->t0_ns);
	j->ctrl = malloc(CTRL_BUF);
	j->rbuf = malloc(MIO_FRAME_BUF);
	j->bitmap = calloc(dirtylog_bitmap_words(j->npages), 8);
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
	j->rl_io = (struct mio){ .write = rl_write, .flush = rl_flush, .priv = j };
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
	page_sender_destroy(j->ps);
	free(j->ctrl);
	free(j->rbuf);
	free(j->bitmap);
	pthread_mutex_destroy(&j->lock);
	free(j);
}
