/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/handover.h"

#include <errno.h>
#include <stdio.h>

#include "common/log.h"
#include "migrate/job.h"
#include "migrate/retpath.h"
#include "protocol/frame.h"

#define RESUME_TIMEOUT_MS 60000

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
			ret = frame_get_ready(j->rbuf + WIRE_HDR_BYTES, h.len, &r, msg, sizeof(msg));
			if (ret < 0)
				return job_fail(j, ret, "bad READY frame: %s", msg);
			if (j->o.verify && !r.digest_ok)
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
		return 0;
	}
}

void handover_fail(struct migrate_job *j, int ret)
{
	if (j->committed) {
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
