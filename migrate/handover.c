/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/handover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/announce.h"
#include "migrate/job.h"
#include "migrate/retpath.h"
#include "protocol/frame.h"

#define RESUME_TIMEOUT_MS 60000
#define ANNOUNCED_SLACK_MS 10000	/* beyond the schedule's own length */

/*
 * After RESUMED, with --announce: the destination reports its RARP rounds
 * (ANNOUNCED) once they are over. The migration has succeeded whatever
 * happens here: a missing report only leaves announce.frames at 0.
 */
void handover_wait_announced(struct migrate_job *j)
{
	struct announce_sched s = {
		.rounds = j->o.announce_rounds, .initial_ms = j->o.announce_initial_ms,
		.step_ms = j->o.announce_step_ms, .max_ms = j->o.announce_max_ms,
	};
	uint64_t off[ANNOUNCE_MAX_ROUNDS], deadline;
	const char *name = vm_get_config(j->vm)->name;
	int n = announce_offsets(&s, off, ANNOUNCE_MAX_ROUNDS);

	deadline = clock_now_ms() + (n > 0 ? off[n - 1] : 0) + ANNOUNCED_SLACK_MS;
	for (;;) {
		struct wire_announced a;
		struct frame_hdr h;
		uint64_t now = clock_now_ms();
		char msg[200];
		int ret = now < deadline ? retpath_read(j, (int)(deadline - now), &h) : -ETIMEDOUT;

		if (ret == 0 && h.type == WIRE_F_ACK)
			continue;
		if (ret == 0 && h.type != WIRE_F_ANNOUNCED)
			ret = job_fail(j, -EPROTO, "%s instead of ANNOUNCED", frame_type_name(h.type));
		if (ret == 0 &&
		    frame_get_announced(j->rbuf + WIRE_HDR_BYTES, h.len, &a, msg, sizeof(msg)) < 0)
			ret = job_fail(j, -EBADMSG, "bad ANNOUNCED frame: %s", msg);
		if (ret < 0) {
			pr_warn("%s: the destination runs the guest, but did not report its RARP "
				"announce: %s",
				name, ret == -ETIMEDOUT ? "no ANNOUNCED in time" : j->err);
			j->err[0] = '\0';	/* the job itself succeeded */
			return;
		}
		pthread_mutex_lock(&j->lock);
		j->st.announce.frames = a.frames;
		j->st.announce.first_us = a.first_us;
		pthread_mutex_unlock(&j->lock);
		if (a.error)
			pr_warn("%s: the destination's RARP announce on %s stopped after %u frame(s): %s",
				name, j->o.announce, a.frames, strerror((int)a.error));
		return;
	}
}

int handover_run(struct migrate_job *j)
{
	struct frame_hdr h;
	int ret;

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

		ret = retpath_read(j, RESUME_TIMEOUT_MS, &h);
		if (ret == -ETIMEDOUT)
			ret = job_fail(j, ret, "the destination did not %s within %d s",
				       j->committed ? "confirm the VM runs" : "get the VM ready",
				       RESUME_TIMEOUT_MS / 1000);
		if (ret == -EREMOTEIO)
			j->committed = false;	/* it said it failed: it runs nothing */
		if (ret < 0)
			return ret;
		if (h.type == WIRE_F_ACK)
			continue;
		if (h.type == WIRE_F_READY && !j->committed) {
			j->sw.ready_ns = clock_now_ns();
			ret = frame_get_ready(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
			if (ret < 0)
				return job_fail(j, ret, "bad READY frame: %s", msg);
			/* post-copy: the digest is checked once every page is there */
			if (j->o.verify && !r.digest_ok && !atomic_load(&j->pc_switched))
				return job_fail(j, -EBADMSG,
						"the destination did not verify the RAM digest");
			ret = job_send_ctrl(j, frame_put_go(j->ctrl, JOB_CTRL_BUF));
			if (ret < 0)
				return ret;
			j->committed = true;
			continue;
		}
		if (h.type != WIRE_F_RESUMED || !j->committed)
			return job_fail(j, -EPROTO, "the destination answered %s with %s",
					j->committed ? "GO" : "COMPLETE", frame_type_name(h.type));
		ret = frame_get_resumed(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
		if (ret < 0)
			return job_fail(j, ret, "bad RESUMED frame: %s", msg);
		pthread_mutex_lock(&j->lock);
		j->st.verified = r.digest_ok;
		pthread_mutex_unlock(&j->lock);
		j->resumed_ns = clock_now_ns();
		/* post-copy: ANNOUNCED comes with the pages (postcopy.h) */
		if (j->o.announce[0] && !atomic_load(&j->pc_switched))
			handover_wait_announced(j);
		return 0;
	}
}

void handover_fail(struct migrate_job *j, int ret)
{
	if (j->committed && atomic_load(&j->pc_switched)) {
		/* post-copy: j->err says what is lost; ours stays paused */
		pr_err("%s: %s", vm_get_config(j->vm)->name, j->err);
	} else if (j->committed) {
		/* after GO: the destination may run the guest; ours stays paused */
		char why[sizeof(j->err)];

		snprintf(why, sizeof(why), "%s", j->err);
		snprintf(j->err, sizeof(j->err),
			 "the destination was told to start the VM, then: %.300s. It may run there: "
			 "the copy here stays paused and is kept; resume it only if the "
			 "destination does not run it",
			 why);
		pr_err("%s: %s", vm_get_config(j->vm)->name, j->err);
	} else {
		/* the source still owns the VM: tell the peer, run the guest on */
		ssize_t n = frame_put_error(j->ctrl, JOB_CTRL_BUF, (uint32_t)-ret, j->err);

		if (n > 0 && mio_write(&j->io, j->ctrl, (size_t)n) == 0)
			(void)mio_flush(&j->io);
		vm_set_throttle(j->vm, 0);
		if (j->paused && vm_resume(j->vm) < 0)
			pr_err("%s: cannot resume the guest after a failed migration",
			       vm_get_config(j->vm)->name);
		j->paused = false;
	}
}
