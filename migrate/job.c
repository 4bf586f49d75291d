/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"

int job_fail(struct migrate_job *j, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!j->err[0]) {
		va_start(ap, fmt);
		vsnprintf(j->err, sizeof(j->err), fmt, ap);
		va_end(ap);
	}
	return ret;
}

int job_check_abort(struct migrate_job *j)
{
	if (atomic_load(&j->cancel))
		return job_fail(j, -ECANCELED, "cancelled by the user");
	if (j->deadline_ns && clock_now_ns() > j->deadline_ns)
		return job_fail(j, -ETIMEDOUT, "the migration ran past its %llu ms timeout",
				(unsigned long long)j->o.timeout_ms);
	return 0;
}

int job_send_ctrl(struct migrate_job *j, ssize_t n)
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

void job_set_status(struct migrate_job *j, const char *s)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->st.status, sizeof(j->st.status), "%s", s);
	pthread_mutex_unlock(&j->lock);
}
