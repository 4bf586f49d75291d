/* SPDX-License-Identifier: MIT */
/*
 * pcdest.c - the destination side of post-copy (see pcdest.h): the needed
 * bitmap, the fault thread, placing pages, the streams that come and go.
 */
#define LOG_PREFIX "postcopy: "
#include "migrate/pcdest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "migrate/digest.h"
#include "migrate/mio.h"
#include "migrate/uffd.h"
#include "protocol/codec.h"
#include "protocol/frame.h"

#define PAGE WIRE_PAGE_SIZE
#define PC_TABLE_MAX 16		/* post-copies arriving at once */
#define MAX_WAITERS 64		/* faults waiting at once (vCPUs, and their repeats) */
#define WAIT_POLL_MS 1000	/* streams re-check the receiver's state this often */
#define LINGER_MS 5000		/* after PC_DONE: wait this long for the source to close */
#define PC_DONE_WAIT_MS 120000	/* every page here, PC_DONE not sent: wait for a resume */
#define HIST_US 2048		/* latency histogram: 1 us buckets up to here, */
#define HIST_MS 10000		/* then 1 ms buckets up to 10 s */

struct pc_table {
	pthread_mutex_t lock;
	struct pcdest *e[PC_TABLE_MAX];
};

struct pc_wait {
	uint64_t page;
	uint64_t t_ns;		/* the fault was read */
};

struct pc_req {
	uint64_t page;
	uint64_t t_ns;		/* PAGE_REQ sent (0: not yet) */
	unsigned gen;		/* the fault channel it went on */
};

struct pcdest {
	struct pc_table *t;
	uint64_t session;
	uint32_t caps;
	int fd;
	uint8_t *slot, *alias;
	uint64_t bytes, npages;
	uint64_t *needed;		/* bit = a page still to come; atomic bit ops */
	_Atomic uint64_t remaining;
	_Atomic uint64_t placed;
	struct uffd u;
	bool registered;
	int evfd;			/* wakes the fault thread */
	pthread_t fthread;
	bool fthread_started;
	_Atomic bool stop;

	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;
	struct mio *ch0_in, *ch0_ret;	/* channel 0 while a thread serves it */
	bool ch0_busy;
	struct mio *f_in, *f_ret;	/* the fault channel while a thread serves it */
	bool f_busy;
	bool f_writing;			/* the fault thread writes on f_ret (unlocked) */
	unsigned fgen;			/* bumped for each fault channel */
	unsigned users;			/* threads in pc_table_serve */
	bool done, done_sent, cancelled, abandoned;
	char why[WIRE_MAX_MSG + 1];
	struct pc_wait wait[MAX_WAITERS];
	unsigned nwait;
	_Atomic unsigned nwait_a;	/* nwait, read without the lock by placers */
	struct pc_req req[MAX_WAITERS];
	unsigned nreq;
	uint64_t faults, requests, blocked_ns, nlat;
	uint32_t hist_us[HIST_US], hist_ms[HIST_MS];
	uint64_t link_down_ns;		/* when channel 0 was lost (0: up or never up) */
	unsigned reconnects;
	uint8_t digest_alg;
	uint8_t digest_want[RAM_DIGEST_BYTES], digest_acc[RAM_DIGEST_BYTES];
};

/* ---- the table ------------------------------------------------------------- */

int pc_table_create(struct pc_table **out)
{
	struct pc_table *t = calloc(1, sizeof(*t));

	*out = t;
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void pc_table_destroy(struct pc_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void pc_table_shutdown(struct pc_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < PC_TABLE_MAX; i++)
		if (t->e[i])
			pcdest_abandon(t->e[i]);
	pthread_mutex_unlock(&t->lock);
}

/* ---- bits and figures ------------------------------------------------------- */

static bool needed(const struct pcdest *pd, uint64_t p)
{
	return __atomic_load_n(&pd->needed[p / 64], __ATOMIC_ACQUIRE) >> (p % 64) & 1;
}

static void hist_add(struct pcdest *pd, uint64_t us)
{
	if (us < HIST_US)
		pd->hist_us[us]++;
	else
		pd->hist_ms[MIN(us / 1000, (uint64_t)HIST_MS - 1)]++;
	pd->nlat++;
}

/* The q-th fraction's latency in us, from the histogram (lock held). */
static uint32_t hist_pct(const struct pcdest *pd, double q)
{
	uint64_t want = (uint64_t)((double)pd->nlat * q), seen = 0;

	if (!pd->nlat)
		return 0;
	if (want >= pd->nlat)
		want = pd->nlat - 1;
	for (unsigned i = 0; i < HIST_US; i++) {
		seen += pd->hist_us[i];
		if (seen > want)
			return i;
	}
	for (unsigned i = 0; i < HIST_MS; i++) {
		seen += pd->hist_ms[i];
		if (seen > want)
			return i * 1000;
	}
	return HIST_MS * 1000;
}

static void wake_fault_thread(struct pcdest *pd)
{
	uint64_t one = 1;

	if (write(pd->evfd, &one, sizeof(one)) < 0)
		pr_debug("waking the fault thread: %s", strerror(errno));
}

/* ---- the end ---------------------------------------------------------------- */

static int send_pc_done_locked(struct pcdest *pd)
{
	struct wire_pc_done d = {
		.pages = atomic_load(&pd->placed), .requests = pd->requests,
		.blocked_us = pd->blocked_ns / 1000, .p50_us = hist_pct(pd, 0.5),
		.p99_us = hist_pct(pd, 0.99),
		.digest_ok = pd->digest_alg == WIRE_DIGEST_PAGES &&
			     !memcmp(pd->digest_acc, pd->digest_want, RAM_DIGEST_BYTES),
	};
	uint8_t buf[64];
	ssize_t n = frame_put_pc_done(buf, sizeof(buf), &d);
	int ret;

	if (n < 0)
		return (int)n;
	ret = mio_write(pd->ch0_ret, buf, (size_t)n);
	if (!ret)
		ret = mio_flush(pd->ch0_ret);
	if (!ret) {
		pd->done_sent = true;
		pr_info("session %016llx: every page is in place (%llu placed, %llu requests, "
			"p50 %u us, p99 %u us, vCPUs blocked %llu ms)%s",
			(unsigned long long)pd->session, (unsigned long long)d.pages,
			(unsigned long long)d.requests, d.p50_us, d.p99_us,
			(unsigned long long)d.blocked_us / 1000,
			pd->digest_alg == WIRE_DIGEST_PAGES
				? (d.digest_ok ? ", RAM digest verified" : ", RAM DIGEST MISMATCH")
				: "");
	}
	return ret;
}

/* The last needed page is in place (any thread). */
static void finish(struct pcdest *pd)
{
	pthread_mutex_lock(&pd->lock);
	if (!pd->done) {
		pd->done = true;
		if (pd->ch0_ret && send_pc_done_locked(pd) < 0)
			pr_warn("session %016llx: every page is here, but PC_DONE did not go out; "
				"it goes on the resumed link",
				(unsigned long long)pd->session);
		pthread_cond_broadcast(&pd->cond);
	}
	pthread_mutex_unlock(&pd->lock);
	wake_fault_thread(pd);
}

/* Page p is in place: the faults that waited on it and the request for it are over. */
static void settle(struct pcdest *pd, uint64_t p)
{
	uint64_t now = clock_now_ns();

	pthread_mutex_lock(&pd->lock);
	for (unsigned i = 0; i < pd->nwait;) {
		if (pd->wait[i].page != p) {
			i++;
			continue;
		}
		pd->blocked_ns += now - pd->wait[i].t_ns;
		pd->wait[i] = pd->wait[--pd->nwait];
	}
	for (unsigned i = 0; i < pd->nreq;) {
		if (pd->req[i].page != p) {
			i++;
			continue;
		}
		if (pd->req[i].t_ns)
			hist_add(pd, (now - pd->req[i].t_ns) / 1000);
		pd->req[i] = pd->req[--pd->nreq];
	}
	atomic_store(&pd->nwait_a, pd->nwait + pd->nreq);
	pthread_mutex_unlock(&pd->lock);
}

/*
 * Place page p (data NULL: a zero page) unless it is in place already.
 * verify: add it to the digest. Return: 0, -errno.
 */
static int place(struct pcdest *pd, uint64_t p, const uint8_t *data, bool verify)
{
	uint64_t bit = 1ull << (p % 64), old;
	int ret;

	if (!needed(pd, p))
		return 0;	/* here already: never overwritten */
	ret = data ? uffd_copy(&pd->u, pd->slot + p * PAGE, data, PAGE)
		   : uffd_zero(&pd->u, pd->slot + p * PAGE, PAGE);
	if (ret < 0)
		return ret;
	if (ret == UFFD_ALREADY) {
		if (needed(pd, p))
			pr_debug("page %llu: already there, yet needed", (unsigned long long)p);
		return 0;	/* another stream placed it first */
	}
	old = __atomic_fetch_and(&pd->needed[p / 64], ~bit, __ATOMIC_ACQ_REL);
	if (!(old & bit))
		return 0;
	atomic_fetch_add(&pd->placed, 1);
	if (data && verify) {
		uint8_t md[RAM_DIGEST_BYTES] = { 0 };

		if (ram_digest_page_xor(p, data, md) < 0)
			return -ENOMEM;
		/* folded in before the last page's finish() takes the verdict */
		pthread_mutex_lock(&pd->lock);
		for (unsigned i = 0; i < RAM_DIGEST_BYTES; i++)
			pd->digest_acc[i] ^= md[i];
		pthread_mutex_unlock(&pd->lock);
	}
	if (atomic_load(&pd->nwait_a))
		settle(pd, p);
	if (atomic_fetch_sub(&pd->remaining, 1) == 1)
		finish(pd);
	return 0;
}

/* ---- the fault thread ------------------------------------------------------- */

/* Send the requests not yet sent on the current fault channel. */
static void send_requests(struct pcdest *pd)
{
	struct wire_page_req q[MAX_WAITERS];
	struct mio *out;
	unsigned n = 0, gen;
	uint8_t buf[32];

	pthread_mutex_lock(&pd->lock);
	out = pd->f_ret;
	gen = pd->fgen;
	if (out) {
		for (unsigned i = 0; i < pd->nreq; i++) {
			if (pd->req[i].gen == gen && pd->req[i].t_ns)
				continue;
			pd->req[i].gen = gen;
			pd->req[i].t_ns = clock_now_ns();
			q[n].page = pd->req[i].page;
			q[n++].count = 1;
		}
		pd->requests += n;
		pd->f_writing = n > 0;
	}
	pthread_mutex_unlock(&pd->lock);
	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		ssize_t len = frame_put_page_req(buf, sizeof(buf), &q[i]);

		if (len < 0 || mio_write(out, buf, (size_t)len) < 0)
			break;
	}
	(void)mio_flush(out);
	pthread_mutex_lock(&pd->lock);
	pd->f_writing = false;
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
}

static void on_fault(struct pcdest *pd, uint64_t addr)
{
	uint64_t p, t = clock_now_ns();
	bool known = false;

	if (addr < (uintptr_t)pd->slot || addr >= (uintptr_t)pd->slot + pd->bytes)
		return;
	p = (addr - (uintptr_t)pd->slot) / PAGE;
	if (!needed(pd, p)) {
		/* never needed: a hole, zero on both sides (or placed meanwhile) */
		int ret = uffd_zero(&pd->u, pd->slot + p * PAGE, PAGE);

		if (ret < 0)
			pr_err("session %016llx: cannot place zero page %llu: %s",
			       (unsigned long long)pd->session, (unsigned long long)p, strerror(-ret));
		return;
	}
	pthread_mutex_lock(&pd->lock);
	pd->faults++;
	if (pd->nwait < MAX_WAITERS)
		pd->wait[pd->nwait++] = (struct pc_wait){ .page = p, .t_ns = t };
	for (unsigned i = 0; i < pd->nreq; i++)
		known |= pd->req[i].page == p;
	if (!known && pd->nreq < MAX_WAITERS)
		pd->req[pd->nreq++] = (struct pc_req){ .page = p };
	pr_debug("fault on page %llu%s", (unsigned long long)p, known ? " (asked already)" : "");
	atomic_store(&pd->nwait_a, pd->nwait + pd->nreq);
	pthread_mutex_unlock(&pd->lock);
	/* placed between the test and the record: nobody else settles it */
	if (!needed(pd, p))
		settle(pd, p);
	else
		send_requests(pd);
}

static void *fault_thread(void *arg)
{
	struct pcdest *pd = arg;

	while (!atomic_load(&pd->stop)) {
		struct pollfd p[2] = {
			{ .fd = pd->u.fd, .events = POLLIN }, { .fd = pd->evfd, .events = POLLIN },
		};
		uint64_t addr, v;
		int ret;
		bool done;

		pthread_mutex_lock(&pd->lock);
		done = pd->done;
		pthread_mutex_unlock(&pd->lock);
		if (done)
			break;
		ret = poll(p, 2, WAIT_POLL_MS);
		if (ret < 0 && errno != EINTR) {
			pr_err("session %016llx: fault thread: poll: %s",
			       (unsigned long long)pd->session, strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN) {
			if (read(pd->evfd, &v, sizeof(v)) < 0)
				v = 0;
			send_requests(pd);	/* a new fault channel: what is outstanding */
		}
		while ((ret = uffd_next_fault(&pd->u, 0, &addr)) > 0)
			on_fault(pd, addr);
		if (ret < 0) {
			pr_err("session %016llx: reading faults: %s",
			       (unsigned long long)pd->session, strerror(-ret));
			break;
		}
	}
	/* every page is here (or we stop): faults on holes are ordinary again */
	if (pd->registered) {
		(void)uffd_unregister(&pd->u, pd->slot, pd->bytes);
		/* a fault that raced the unregister still sleeps on us: wake it */
		(void)uffd_wake(&pd->u, pd->slot, pd->bytes);
		pd->registered = false;
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------- */

int pcdest_probe(char *err, size_t errlen)
{
	struct uffd u;
	int ret = uffd_open(&u, err, errlen);

	uffd_close(&u);
	return ret;
}

int pcdest_create(struct pc_table *t, uint64_t session, uint32_t caps, int ram_fd,
		  uint8_t *slot_view, uint8_t *alias, uint64_t ram_bytes, struct pcdest **out,
		  char *err, size_t errlen)
{
	struct pcdest *pd = calloc(1, sizeof(*pd));
	unsigned slot = PC_TABLE_MAX;
	int ret;

	*out = NULL;
	if (!pd)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	pd->t = t;
	pd->session = session;
	pd->caps = caps;
	pd->fd = ram_fd;
	pd->slot = slot_view;
	pd->alias = alias;
	pd->bytes = ram_bytes;
	pd->npages = ram_bytes / PAGE;
	pd->u.fd = -1;
	pd->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pd->needed = calloc((pd->npages + 63) / 64, sizeof(uint64_t));
	pthread_mutex_init(&pd->lock, NULL);
	pthread_cond_init(&pd->cond, NULL);
	if (!pd->needed || pd->evfd < 0) {
		ret = err_set(-ENOMEM, err, errlen, "out of memory");
		goto fail;
	}
	ret = uffd_open(&pd->u, err, errlen);
	if (ret < 0)
		goto fail;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < PC_TABLE_MAX; i++) {
		if (t->e[i] && t->e[i]->session == session) {
			slot = PC_TABLE_MAX + 1;
			break;
		}
		if (!t->e[i] && slot == PC_TABLE_MAX)
			slot = i;
	}
	if (slot < PC_TABLE_MAX)
		t->e[slot] = pd;
	pthread_mutex_unlock(&t->lock);
	if (slot >= PC_TABLE_MAX) {
		ret = err_set(-EBUSY, err, errlen,
			      slot == PC_TABLE_MAX ? "too many post-copy migrations arriving at once"
						   : "post-copy session %016llx is already here",
			      (unsigned long long)session);
		pd->t = NULL;
		goto fail;
	}
	*out = pd;
	return 0;
fail:
	pd->t = NULL;
	pcdest_destroy(pd);
	return ret;
}

void pcdest_abandon(struct pcdest *pd)
{
	pthread_mutex_lock(&pd->lock);
	pd->abandoned = true;
	if (pd->ch0_in)
		mio_shutdown(pd->ch0_in);
	if (pd->f_in)
		mio_shutdown(pd->f_in);
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
}

void pcdest_destroy(struct pcdest *pd)
{
	if (!pd)
		return;
	if (pd->t) {
		pthread_mutex_lock(&pd->t->lock);
		for (unsigned i = 0; i < PC_TABLE_MAX; i++)
			if (pd->t->e[i] == pd)
				pd->t->e[i] = NULL;
		pthread_mutex_unlock(&pd->t->lock);
	}
	pcdest_abandon(pd);
	pthread_mutex_lock(&pd->lock);
	while (pd->users || pd->ch0_busy || pd->f_busy)
		pthread_cond_wait(&pd->cond, &pd->lock);
	pthread_mutex_unlock(&pd->lock);
	atomic_store(&pd->stop, true);
	if (pd->fthread_started) {
		wake_fault_thread(pd);
		pthread_join(pd->fthread, NULL);
	}
	if (pd->registered)
		(void)uffd_unregister(&pd->u, pd->slot, pd->bytes);
	uffd_close(&pd->u);
	if (pd->evfd >= 0)
		close(pd->evfd);
	pthread_cond_destroy(&pd->cond);
	pthread_mutex_destroy(&pd->lock);
	free(pd->needed);
	free(pd);
}

int pcdest_needed(struct pcdest *pd, const struct wire_bitmap *b)
{
	uint32_t nw = (b->count + 63) / 64;

	for (uint32_t w = 0; w < nw; w++)
		pd->needed[b->first / 64 + w] |= wire_bitmap_word(b, w);
	return 0;
}

int pcdest_arm(struct pcdest *pd, uint8_t digest_alg, const uint8_t *digest, char *err,
	       size_t errlen)
{
	uint64_t count = 0;
	int ret;

	/* the stale copies go: a needed page must fault until its copy arrives */
	for (uint64_t p = 0; p < pd->npages;) {
		uint64_t run;

		if (!(pd->needed[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		for (run = p; run < pd->npages && (pd->needed[run / 64] >> (run % 64) & 1); run++)
			;
		count += run - p;
		if (fallocate(pd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(p * PAGE),
			      (off_t)((run - p) * PAGE)) < 0)
			return err_set(-errno, err, errlen, "cannot drop the stale pages: %s",
				       strerror(errno));
		p = run;
	}
	atomic_store(&pd->remaining, count);
	if (digest_alg == WIRE_DIGEST_PAGES) {
		uint8_t acc[RAM_DIGEST_BYTES];

		ret = ram_digest_pages(pd->fd, pd->alias, pd->bytes, pd->needed, acc);
		if (ret < 0)
			return err_set(ret, err, errlen, "cannot compute the RAM digest");
		pthread_mutex_lock(&pd->lock);
		pd->digest_alg = digest_alg;
		memcpy(pd->digest_want, digest, RAM_DIGEST_BYTES);
		memcpy(pd->digest_acc, acc, RAM_DIGEST_BYTES);
		pthread_mutex_unlock(&pd->lock);
	} else if (digest_alg != WIRE_DIGEST_NONE) {
		return err_set(-EBADMSG, err, errlen,
			       "COMPLETE: a post-copy digest must be the PAGES algorithm, not %u",
			       digest_alg);
	}
	ret = uffd_register(&pd->u, pd->slot, pd->bytes, err, errlen);
	if (ret < 0)
		return ret;
	pd->registered = true;
	ret = -pthread_create(&pd->fthread, NULL, fault_thread, pd);
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot start the fault thread: %s", strerror(-ret));
	pd->fthread_started = true;
	pr_debug("session %016llx armed: %llu pages to come", (unsigned long long)pd->session,
		 (unsigned long long)count);
	if (!count) {
		pthread_mutex_lock(&pd->lock);
		pd->done = true;
		pthread_mutex_unlock(&pd->lock);
	}
	return 0;
}

/* ---- the streams -------------------------------------------------------------- */

/*
 * A stream's end by the source's ERROR frame. Not -ECANCELED: that is what
 * a read returns when another thread shuts the stream down (a newer
 * stream replacing a dead one, pcdest_abandon), which only detaches it.
 */
#define SOURCE_GAVE_UP (-EREMOTEIO)

/* Why the receiver stops waiting (lock held): 0 to go on. */
static int over_locked(const struct pcdest *pd)
{
	if (pd->done)
		return 1;
	if (pd->cancelled)
		return -ECANCELED;
	if (pd->abandoned)
		return -ESHUTDOWN;
	return 0;
}

/*
 * Receive PAGES on in until it ends. Return: 0 when the stream ended after
 * the last page (or the receiver stopped), SOURCE_GAVE_UP (the source sent
 * ERROR: its message in err), -errno (broken: err says how).
 */
static int serve_pages(struct pcdest *pd, struct mio *in, const char *what, char *err,
		       size_t errlen)
{
	struct codec_ctx *zstd = NULL, *lz4 = NULL;
	uint8_t *buf = malloc(MIO_FRAME_BUF), *page = malloc(PAGE);
	bool verify = false;
	uint64_t linger_end = 0;
	int ret = 0;

	if (!buf || !page) {
		ret = err_set(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	if (pd->caps & WIRE_CAP_ZSTD) {
		struct codec_config c = { .ops = &codec_zstd_ops, .level = 1 };

		if (codec_ctx_create(&c, PAGE, &zstd) < 0)
			ret = err_set(-ENOMEM, err, errlen, "out of memory for zstd");
	}
	if (!ret && (pd->caps & WIRE_CAP_LZ4)) {
		struct codec_config c = { .ops = &codec_lz4_ops, .level = 1 };

		if (codec_ctx_create(&c, PAGE, &lz4) < 0)
			ret = err_set(-ENOMEM, err, errlen, "out of memory for lz4");
	}
	while (!ret) {
		struct frame_hdr h;
		struct page_iter it;
		struct wire_page pg;
		int r;

		pthread_mutex_lock(&pd->lock);
		r = over_locked(pd);
		pthread_mutex_unlock(&pd->lock);
		if (r < 0)
			break;
		if (r > 0 && !linger_end)
			linger_end = clock_now_ms() + LINGER_MS;
		if (linger_end && clock_now_ms() >= linger_end)
			break;
		r = mio_wait_readable(in, WAIT_POLL_MS);
		if (r == 0)
			continue;
		if (r > 0)
			r = mio_read_frame(in, buf, MIO_FRAME_BUF, &h, err, errlen);
		if (r == -ENODATA || (r < 0 && linger_end)) {
			/* the source closed: after the last page, the normal end */
			ret = linger_end ? 0 : err_set(-ECONNRESET, err, errlen, "%s closed", what);
			break;
		}
		if (r < 0) {
			ret = r;
			break;
		}
		if (h.type == WIRE_F_ERROR) {
			struct wire_error e;

			ret = frame_get_error(buf + WIRE_HDR_BYTES, h.len, &e, err, errlen);
			if (!ret)
				ret = err_set(SOURCE_GAVE_UP, err, errlen, "the source gave up: %s",
					      e.msg);
			break;
		}
		if (h.type != WIRE_F_PAGES) {
			ret = err_set(-EPROTO, err, errlen, "%s frame on %s during post-copy",
				      frame_type_name(h.type), what);
			break;
		}
		/* set at arm, maybe after this stream began to wait */
		pthread_mutex_lock(&pd->lock);
		verify = pd->digest_alg == WIRE_DIGEST_PAGES;
		pthread_mutex_unlock(&pd->lock);
		ret = pages_begin(&it, buf + WIRE_HDR_BYTES, h.len, pd->npages, PAGE, pd->caps, err,
				  errlen);
		while (!ret && (r = pages_next(&it, &pg, err, errlen)) > 0) {
			const uint8_t *data = page;
			ssize_t n = PAGE;

			switch (pg.codec) {
			case CODEC_ZERO:
				data = NULL;
				break;
			case CODEC_RAW:
				data = pg.data;	/* straight from the frame */
				break;
			case CODEC_ZSTD:
				n = codec_decode(zstd, pg.data, pg.len, page, PAGE);
				break;
			case CODEC_LZ4:
				n = codec_decode(lz4, pg.data, pg.len, page, PAGE);
				break;
			default:
				ret = err_set(-EPROTO, err, errlen,
					      "PAGES: page %llu as %s after the switchover (the "
					      "destination dropped the copy a delta applies to)",
					      (unsigned long long)pg.page,
					      codec_get(pg.codec) ? codec_get(pg.codec)->name : "?");
				continue;
			}
			if (n != PAGE) {
				ret = err_set(-EBADMSG, err, errlen, "PAGES: page %llu: bad %s payload",
					      (unsigned long long)pg.page, codec_get(pg.codec)->name);
				continue;
			}
			r = place(pd, pg.page, data, verify);
			if (r < 0)
				ret = err_set(r, err, errlen, "cannot place page %llu: %s",
					      (unsigned long long)pg.page, strerror(-r));
		}
		if (!ret && r < 0)
			ret = r;
	}
out:
	codec_ctx_destroy(zstd);
	codec_ctx_destroy(lz4);
	free(buf);
	free(page);
	return ret;
}

static void attach_ch0(struct pcdest *pd, struct mio *in, struct mio *ret)
{
	pd->ch0_in = in;
	pd->ch0_ret = ret;
	pd->ch0_busy = true;
	pd->link_down_ns = 0;
	if (pd->done && !pd->done_sent && send_pc_done_locked(pd) < 0)
		pr_warn("session %016llx: PC_DONE did not go out", (unsigned long long)pd->session);
}

static void detach_ch0(struct pcdest *pd, int ret, const char *err)
{
	pthread_mutex_lock(&pd->lock);
	pd->ch0_in = pd->ch0_ret = NULL;
	pd->ch0_busy = false;
	if (ret == SOURCE_GAVE_UP) {
		pd->cancelled = true;
		snprintf(pd->why, sizeof(pd->why), "%s", err);
	}
	if (!pd->done && !pd->cancelled && !pd->abandoned) {
		pd->link_down_ns = clock_now_ns();
		pr_warn("session %016llx: the link to the source is lost (%s) with %llu pages "
			"missing; the guest waits for them until the source resumes",
			(unsigned long long)pd->session, err,
			(unsigned long long)atomic_load(&pd->remaining));
	}
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
}

int pcdest_run(struct pcdest *pd, struct mio *in, struct mio *ret, char *err, size_t errlen)
{
	char why[WIRE_MAX_MSG] = "";
	uint64_t done_by = 0;
	int r;

	pthread_mutex_lock(&pd->lock);
	attach_ch0(pd, in, ret);
	pthread_mutex_unlock(&pd->lock);
	r = serve_pages(pd, in, "channel 0", why, sizeof(why));
	/* a broken or bad stream: hang up, so that the source sees it now */
	if (r < 0)
		mio_shutdown(in);
	detach_ch0(pd, r, why);
	pthread_mutex_lock(&pd->lock);
	for (;;) {
		struct timespec ts;

		r = over_locked(pd);
		if (r < 0 || (r > 0 && pd->done_sent))
			break;
		/*
		 * Every page is here but PC_DONE did not go out (the link was down
		 * when the last one came): wait for the source to resume and hear
		 * it, for a while; the guest runs on meanwhile.
		 */
		if (r > 0 && !done_by)
			done_by = clock_now_ms() + PC_DONE_WAIT_MS;
		if (r > 0 && clock_now_ms() >= done_by) {
			pr_warn("session %016llx: every page is here, but the source never "
				"resumed to hear it: it may report the migration as failed",
				(unsigned long long)pd->session);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&pd->cond, &pd->lock, &ts);
	}
	if (r < 0)
		err_set(r, err, errlen, "%s; %llu pages never arrived: the guest cannot run on here",
			r == -ECANCELED ? pd->why : "post-copy abandoned here",
			(unsigned long long)atomic_load(&pd->remaining));
	pthread_mutex_unlock(&pd->lock);
	return r < 0 ? r : 0;
}

void pcdest_get_stats(struct pcdest *pd, struct pcdest_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!pd)
		return;
	pthread_mutex_lock(&pd->lock);
	st->pages_missing = atomic_load(&pd->remaining);
	st->pages_placed = atomic_load(&pd->placed);
	st->requests = pd->requests;
	st->faults = pd->faults;
	st->blocked_us = pd->blocked_ns / 1000;
	st->p50_us = hist_pct(pd, 0.5);
	st->p99_us = hist_pct(pd, 0.99);
	st->link_up = pd->ch0_busy;
	st->link_down_ms = pd->link_down_ns ? (clock_now_ns() - pd->link_down_ns) / 1000000 : 0;
	st->reconnects = pd->reconnects;
	st->done = pd->done;
	st->nwaiting = pd->nwait;
	for (unsigned i = 0; i < pd->nwait && i < 4; i++)
		st->waiting[i] = pd->wait[i].page;
	st->first_missing = UINT64_MAX;
	for (uint64_t w = 0; w < (pd->npages + 63) / 64; w++) {
		uint64_t v = __atomic_load_n(&pd->needed[w], __ATOMIC_ACQUIRE);

		if (v) {
			st->first_missing = w * 64 + (uint64_t)__builtin_ctzll(v);
			break;
		}
	}
	pthread_mutex_unlock(&pd->lock);
}

/* WANT: the pages still missing, in slices; the last one says so. */
static int send_want(struct pcdest *pd, struct mio *out)
{
	uint8_t *buf = malloc(WIRE_HDR_BYTES + WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 + WIRE_CRC_BYTES);
	uint64_t *words = malloc(WIRE_MAX_BITMAP / 8);
	int ret = buf && words ? 0 : -ENOMEM;

	for (uint64_t first = 0; !ret && first < pd->npages; first += WIRE_MAX_BITMAP) {
		uint32_t n = (uint32_t)MIN((uint64_t)WIRE_MAX_BITMAP, pd->npages - first);
		bool last = first + n >= pd->npages;
		ssize_t len;

		for (uint32_t w = 0; w < (n + 63) / 64; w++)
			words[w] = __atomic_load_n(&pd->needed[first / 64 + w], __ATOMIC_ACQUIRE);
		len = frame_put_bitmap(buf, WIRE_HDR_BYTES + WIRE_BITMAP_HDR + WIRE_MAX_BITMAP / 8 +
						    WIRE_CRC_BYTES,
				       WIRE_F_WANT, first, n, last ? WIRE_WANT_LAST : 0, words);
		ret = len < 0 ? (int)len : mio_write(out, buf, (size_t)len);
	}
	if (!ret)
		ret = mio_flush(out);
	free(buf);
	free(words);
	return ret;
}

static int serve_fault(struct pcdest *pd, struct mio *in, struct mio *out, char *err,
		       size_t errlen)
{
	int ret;

	pthread_mutex_lock(&pd->lock);
	/* a fault channel still attached is a dead one the source left: kick it out */
	while (pd->f_busy) {
		if (pd->f_in)
			mio_shutdown(pd->f_in);
		pthread_cond_wait(&pd->cond, &pd->lock);
	}
	pd->f_busy = true;
	pd->f_in = in;
	pd->f_ret = out;
	pd->fgen++;
	pthread_mutex_unlock(&pd->lock);
	wake_fault_thread(pd);	/* the requests still outstanding go on this one */
	ret = serve_pages(pd, in, "the fault channel", err, errlen);
	pthread_mutex_lock(&pd->lock);
	pd->f_ret = NULL;
	while (pd->f_writing)
		pthread_cond_wait(&pd->cond, &pd->lock);
	pd->f_in = NULL;
	pd->f_busy = false;
	if (ret == SOURCE_GAVE_UP) {
		pd->cancelled = true;
		snprintf(pd->why, sizeof(pd->why), "%s", err);
	}
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
	return ret;
}

static int serve_resume(struct pcdest *pd, struct mio *in, struct mio *out, char *err,
			size_t errlen)
{
	int ret;

	pthread_mutex_lock(&pd->lock);
	while (pd->ch0_busy) {
		if (pd->ch0_in)
			mio_shutdown(pd->ch0_in);
		pthread_cond_wait(&pd->cond, &pd->lock);
	}
	pd->ch0_busy = true;	/* ours; the WANT frames go out before PC_DONE can */
	pthread_mutex_unlock(&pd->lock);
	ret = send_want(pd, out);
	pthread_mutex_lock(&pd->lock);
	if (ret < 0) {
		pd->ch0_busy = false;
		pthread_cond_broadcast(&pd->cond);
		pthread_mutex_unlock(&pd->lock);
		return err_set(ret, err, errlen, "cannot send WANT: %s", strerror(-ret));
	}
	pd->reconnects++;
	pr_info("session %016llx resumed: %llu pages still missing",
		(unsigned long long)pd->session, (unsigned long long)atomic_load(&pd->remaining));
	attach_ch0(pd, in, out);
	pthread_mutex_unlock(&pd->lock);
	ret = serve_pages(pd, in, "the resumed channel 0", err, errlen);
	detach_ch0(pd, ret, err);
	return ret;
}

int pc_table_serve(struct pc_table *t, const struct wire_hello *h, struct mio *in,
		   struct mio *ret, char *err, size_t errlen)
{
	struct wire_hello_ack ack = { .version = WIRE_VERSION };
	struct pcdest *pd = NULL;
	uint8_t buf[32];
	ssize_t n;
	int r;

	if (t) {
		pthread_mutex_lock(&t->lock);
		for (unsigned i = 0; i < PC_TABLE_MAX; i++) {
			if (t->e[i] && t->e[i]->session == h->session) {
				pd = t->e[i];
				pthread_mutex_lock(&pd->lock);
				pd->users++;
				pthread_mutex_unlock(&pd->lock);
				break;
			}
		}
		pthread_mutex_unlock(&t->lock);
	}
	if (!pd)
		return err_set(-ENOENT, err, errlen,
			       "HELLO: a %s stream for post-copy session %016llx, which is not here",
			       h->flags & WIRE_HELLO_FAULT ? "FAULT" : "RESUME",
			       (unsigned long long)h->session);
	ack.caps = pd->caps;
	n = frame_put_hello_ack(buf, sizeof(buf), &ack);
	r = n < 0 ? (int)n : mio_write(ret, buf, (size_t)n);
	if (!r)
		r = mio_flush(ret);
	if (r < 0)
		err_set(r, err, errlen, "cannot answer HELLO: %s", strerror(-r));
	else if (h->flags & WIRE_HELLO_FAULT)
		r = serve_fault(pd, in, ret, err, errlen);
	else
		r = serve_resume(pd, in, ret, err, errlen);
	if (r < 0 && r != SOURCE_GAVE_UP)
		pr_debug("session %016llx: %s stream ended: %s", (unsigned long long)h->session,
			 h->flags & WIRE_HELLO_FAULT ? "fault" : "resumed", err);
	pthread_mutex_lock(&pd->lock);
	pd->users--;
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
	return 0;
}
