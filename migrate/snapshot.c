/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "snapshot: "
#include "migrate/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/clock.h"
#include "common/log.h"
#include "migrate/incoming.h"
#include "migrate/mio.h"
#include "migrate/outgoing.h"
#include "migrate/pagesend.h"
#include "protocol/frame.h"
#include "vm/ramwalk.h"
#include "vm/state.h"

#define PAGE WIRE_PAGE_SIZE

/* Every page that holds data: memfd holes are skipped without reading. */
static int send_ram(struct page_sender *ps, int fd, const uint8_t *ram, uint64_t bytes)
{
	uint64_t pos = 0, first, n;
	int ret = 0;

	while (!ret && ramwalk_next(fd, &pos, bytes / PAGE, &first, &n))
		for (uint64_t pg = first; pg < first + n && !ret; pg++)
			ret = page_sender_page(ps, pg, ram + pg * PAGE, true);
	return ret ? ret : page_sender_flush(ps);
}

/* HELLO, RAM, SWITCHOVER, STATE..., COMPLETE for a paused VM. */
static int write_stream(struct vm *vm, bool paused, struct mio *io,
			const struct codec_config *cc, struct snapshot_stats *st, char *err,
			size_t errlen)
{
	struct page_sender *ps = NULL;
	struct page_sender_stats pst;
	struct vm_state *state = calloc(1, sizeof(*state));
	size_t cap = state_section_bound() + WIRE_HDR_BYTES + WIRE_CRC_BYTES + 64;
	uint8_t *buf = malloc(cap);
	struct wire_hello hello;
	struct wire_complete done;
	uint32_t nsec = 0;
	ssize_t n;
	int ret;

	if (!state || !buf) {
		ret = err_set(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	ret = vm_capture(vm, state);
	if (ret < 0) {
		err_set(ret, err, errlen, "cannot capture the VM state: %s", strerror(-ret));
		goto out;
	}
	ret = page_sender_create(cc, 0, io, &ps);
	if (ret < 0) {
		err_set(ret, err, errlen, "cannot set up the page encoder: %s", strerror(-ret));
		goto out;
	}
	outgoing_hello(&hello, &state->config, page_sender_caps(ps) | WIRE_CAP_CPUID);
	n = frame_put_hello(buf, cap, &hello);
	ret = n < 0 ? (int)n : mio_write(io, buf, (size_t)n);
	if (!ret)
		ret = outgoing_cpuid(io, vm, 0);
	if (!ret)
		ret = send_ram(ps, vm_ram_fd(vm), vm_ram(vm), vm_ram_bytes(vm));
	if (!ret) {
		n = frame_put_switchover(buf, cap, 0, paused ? WIRE_SWITCHOVER_PAUSED : 0);
		ret = n < 0 ? (int)n : mio_write(io, buf, (size_t)n);
	}
	if (!ret)
		ret = outgoing_state(io, state, &nsec);
	page_sender_get_stats(ps, &pst);
	if (!ret) {
		memset(&done, 0, sizeof(done));
		done.pages = pst.pages - pst.duplicate_pages;
		done.state_sections = nsec;
		n = frame_put_complete(buf, cap, &done);
		ret = n < 0 ? (int)n : mio_write(io, buf, (size_t)n);
	}
	if (!ret)
		ret = mio_flush(io);
	if (ret < 0)
		err_set(ret, err, errlen, "%s", strerror(-ret));
	st->ram_pages = pst.pages - pst.duplicate_pages;
	st->zero_pages = vm_ram_bytes(vm) / PAGE - st->ram_pages;
out:
	page_sender_destroy(ps);
	free(state);
	free(buf);
	return ret;
}

int snapshot_save_compressed(struct vm *vm, const char *path, const char *compress,
			     struct snapshot_stats *st, char *err, size_t errlen)
{
	struct snapshot_stats local;
	struct codec_config cc = { .ops = NULL };
	struct mio io = { .write = NULL };
	bool was_running = vm_get_run_state(vm) == VM_RUN_RUNNING;
	uint64_t t0 = clock_now_ns(), tp = 0;
	char tmp[PATH_MAX], msg[256];
	int fd = -1, ret;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (compress && codec_by_name(compress, &cc) < 0)
		return err_set(-EINVAL, err, errlen,
			    "unknown compression '%s' (none, zstd[:LEVEL], lz4, lz4hc[:LEVEL])",
			    compress);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return err_set(-ENAMETOOLONG, err, errlen, "path too long: %s", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, err, errlen, "cannot create a file next to %s: %s", path,
			    strerror(errno));
	ret = mio_file_open(&io, fd);
	if (ret < 0) {
		err_set(ret, err, errlen, "out of memory");
		goto out;
	}
	if (was_running) {
		tp = clock_now_ns();
		ret = vm_pause(vm, NULL);
		if (ret < 0) {
			err_set(ret, err, errlen, "cannot pause the VM: %s", strerror(-ret));
			goto out;
		}
	}
	/* a VM that was paused before the save restores paused */
	ret = write_stream(vm, !was_running, &io, &cc, st, msg, sizeof(msg));
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret < 0) {
		err_set(ret, err, errlen, "cannot write %s: %s", path, ret == -ENOSPC ? "no space left on device" : msg);
		goto out_resume;
	}
	if (rename(tmp, path) < 0) {
		ret = err_set(-errno, err, errlen, "cannot rename %s to %s: %s", tmp, path,
			   strerror(errno));
		goto out_resume;
	}
	tmp[0] = '\0';
	st->file_bytes = io.bytes_out;
out_resume:
	if (was_running) {
		int r2 = vm_resume(vm);

		st->pause_ns = clock_now_ns() - tp;
		if (r2 < 0 && ret == 0)
			ret = err_set(r2, err, errlen, "cannot resume the VM: %s", strerror(-r2));
	}
out:
	mio_close(&io);
	close(fd);
	if (tmp[0])
		unlink(tmp);
	st->elapsed_ns = clock_now_ns() - t0;
	return ret;
}

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st, char *err,
		  size_t errlen)
{
	return snapshot_save_compressed(vm, path, NULL, st, err, errlen);
}

int snapshot_restore(const char *path, const char *name, struct vm **out,
		     struct snapshot_stats *st, char *err, size_t errlen)
{
	struct snapshot_stats local;
	struct incoming *inc = NULL;
	struct incoming_stats ist;
	struct mio io = { .write = NULL };
	uint64_t t0 = clock_now_ns();
	char msg[300];
	int fd, ret;

	*out = NULL;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, err, errlen, "cannot open %s: %s", path, strerror(errno));
	ret = mio_file_open(&io, fd);
	if (!ret)
		ret = incoming_create(&io, NULL, name, &inc);
	if (ret < 0) {
		err_set(ret, err, errlen, "out of memory");
		goto out;
	}
	incoming_expect_eof(inc);
	ret = incoming_run(inc, out, msg, sizeof(msg));
	incoming_get_stats(inc, &ist);
	if (ret < 0) {
		if (ret == -ENODATA)
			err_set(ret, err, errlen, "%s is empty, not a kvmig snapshot", path);
		else if (ist.stream_ok)
			err_set(ret, err, errlen, "%s: %s", path, msg);
		else if (ret == -ECONNRESET)
			err_set(ret, err, errlen, "%s is truncated: %s", path, msg);
		else
			err_set(ret, err, errlen, "%s is not a valid snapshot: %s (at byte %llu)", path,
			     msg, (unsigned long long)ist.bytes);
		goto out;
	}
	st->file_bytes = ist.bytes;
	st->paused = ist.paused;
	st->ram_pages = ist.pages;
	st->zero_pages = vm_ram_bytes(*out) / PAGE - ist.pages;
out:
	incoming_destroy(inc);
	mio_close(&io);
	close(fd);
	st->elapsed_ns = clock_now_ns() - t0;
	return ret;
}
