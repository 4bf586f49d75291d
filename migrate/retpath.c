/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/retpath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "migrate/job.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"

int retpath_read_on(struct migrate_job *j, struct mio *io, int timeout_ms, struct frame_hdr *h)
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

int retpath_read(struct migrate_job *j, int timeout_ms, struct frame_hdr *h)
{
	return retpath_read_on(j, &j->io, timeout_ms, h);
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

int retpath_poll(struct migrate_job *j)
{
	struct frame_hdr h;
	int ret;

	for (;;) {
		ret = retpath_read(j, 0, &h);
		if (ret == -ETIMEDOUT)
			return 0;
		if (ret < 0)
			return ret;
		ret = take_ack(j, &h);
		if (ret < 0)
			return ret;
	}
}

int retpath_wait_acked(struct migrate_job *j, uint32_t round, int timeout_ms)
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
		ret = retpath_read(j, (int)((end - now) / 1000000) + 1, &h);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret < 0)
			return ret;
		ret = take_ack(j, &h);
		if (ret < 0)
			return ret;
		ret = job_check_abort(j);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int retpath_handshake(struct migrate_job *j, struct lane *ln)
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
			       (j->nlanes > 1 ? WIRE_CAP_MULTI : 0) |
			       (j->o.announce[0] ? WIRE_CAP_ANNOUNCE : 0) |
			       (ln->idx == 0 ? WIRE_CAP_CPUID : 0) |
			       (ln->idx == 0 && j->o.postcopy != MIGRATE_POSTCOPY_OFF ? WIRE_CAP_POSTCOPY
										      : 0));
	h.channel = ln->idx;
	h.channels = j->nlanes;
	h.session = j->session;
	n = frame_put_hello(j->ctrl, JOB_CTRL_BUF, &h);
	if (n < 0)
		return job_fail(j, (int)n, "cannot build HELLO: %s", strerror((int)-n));
	ret = mio_write(ln->io, j->ctrl, (size_t)n);
	/* channel 0: the guest's CPU, which the destination checks before it answers */
	if (!ret && (h.caps & WIRE_CAP_CPUID)) {
		ret = outgoing_cpuid(ln->io, j->vm, j->o.strict_cpu ? WIRE_CPUID_STRICT_TSC : 0);
		if (ret == -ENOMEM || ret == -E2BIG)
			return job_fail(j, ret, "cannot describe the guest's CPU: %s", strerror(-ret));
	}
	if (!ret && j->o.announce[0] && ln->idx == 0) {
		/* where to announce the guest (after CPUID): checked before HELLO_ACK */
		struct wire_announce an = {
			.rounds = j->o.announce_rounds, .initial_ms = j->o.announce_initial_ms,
			.step_ms = j->o.announce_step_ms, .max_ms = j->o.announce_max_ms,
		};

		snprintf(an.iface, sizeof(an.iface), "%s", j->o.announce);
		n = frame_put_announce(j->ctrl, JOB_CTRL_BUF, &an);
		if (n < 0)
			return job_fail(j, (int)n, "cannot build ANNOUNCE: %s", strerror((int)-n));
		ret = mio_write(ln->io, j->ctrl, (size_t)n);
	}
	if (!ret)
		ret = mio_flush(ln->io);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	ret = retpath_read_on(j, ln->io, JOB_HANDSHAKE_TIMEOUT_MS, &fh);
	if (ret == -ETIMEDOUT)
		return job_fail(j, ret,
				"the destination did not answer the handshake on channel %u within "
				"%d s",
				ln->idx, JOB_HANDSHAKE_TIMEOUT_MS / 1000);
	if (ret < 0)
		return ret;
	if (fh.type != WIRE_F_HELLO_ACK)
		return job_fail(j, -EPROTO, "the destination answered HELLO with %s",
				frame_type_name(fh.type));
	ret = frame_get_hello_ack(j->rbuf + WIRE_HDR_BYTES, fh.len, &a, msg, sizeof(msg));
	if (ret < 0)
		return job_fail(j, ret, "bad handshake from the destination: %s", msg);
	/* post-copy is checked by the caller, which names it */
	need = h.caps & ~WIRE_CAP_POSTCOPY;
	if (ln->idx == 0) {
		j->hello_caps = h.caps;
		j->pc_enabled = a.caps & WIRE_CAP_POSTCOPY;
	}
	if (a.caps & ~h.caps)
		return job_fail(j, -EPROTO,
				"the destination chose capabilities 0x%x that were not offered",
				a.caps & ~h.caps);
	if ((a.caps & need) != need)
		return job_fail(j, -EPROTO,
				"the destination lacks capabilities 0x%x (compression, XBZRLE, "
				"verify or announce)",
				need & ~a.caps);
	return 0;
}
