/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - VM snapshot files.
 *
 * Layout (all little-endian):
 *
 *   "KVMIGSNP" | u32 format version (1) | u32 flags (0)
 *   CONFIG section, VCPU sections (index order), IRQCHIP, PIT, CLOCK,
 *   UART, EVENTS, NIC sections (vm/state.h framing, each with a CRC32C)
 *   RAM sections: u64 first page | u32 page count | count x 4096 bytes
 *   END section (empty payload)
 *
 * Only pages that hold data are written: the memfd's holes are skipped with
 * SEEK_DATA/SEEK_HOLE and all-zero pages inside data are skipped too, so a
 * 4 GiB guest with 16 MiB touched makes a file of about 16 MiB.
 */
#define LOG_PREFIX "snapshot: "
#include "vm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/xio.h"
#include "vm/state.h"

#define SNAP_MAGIC "KVMIGSNP"
#define SNAP_VERSION 1u
#define SNAP_HDR_BYTES 16
#define RAM_RUN_PAGES 256u
#define RAM_HDR_BYTES 12
#define IOBUF_BYTES (4u << 20)

PRINTF_FMT(4, 5) static int fail(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static bool page_is_zero(const uint8_t *p)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < VM_PAGE_SIZE; i += 64) {
		for (size_t j = 0; j < 64; j += 8)
			acc |= load_u64(p + i + j);
		if (acc)
			return false;
	}
	return true;
}

/* A buffered writer that remembers the first error. */
struct writer {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t total;
	int err;
};

static void w_flush(struct writer *w)
{
	if (!w->err && w->len)
		w->err = write_all(w->fd, w->buf, w->len);
	w->total += w->len;
	w->len = 0;
}

static uint8_t *w_reserve(struct writer *w, size_t n)
{
	if (w->len + n > IOBUF_BYTES)
		w_flush(w);
	w->len += n;
	return w->buf + w->len - n;
}

static void write_ram_run(struct writer *w, const uint8_t *ram, uint64_t first, uint32_t n)
{
	size_t payload = RAM_HDR_BYTES + (size_t)n * VM_PAGE_SIZE;
	uint8_t *p = w_reserve(w, STATE_SEC_HDR_BYTES + payload + STATE_SEC_CRC_BYTES);
	struct wbuf b;

	wbuf_init(&b, p, STATE_SEC_HDR_BYTES + payload + STATE_SEC_CRC_BYTES);
	put_le16(&b, STATE_SEC_RAM);
	put_le16(&b, state_section_version(STATE_SEC_RAM));
	put_le32(&b, (uint32_t)payload);
	put_le64(&b, first);
	put_le32(&b, n);
	put_bytes(&b, ram + first * VM_PAGE_SIZE, (size_t)n * VM_PAGE_SIZE);
	put_le32(&b, crc32c(0, p, b.len));
}

static void write_ram(struct writer *w, int fd, const uint8_t *ram, uint64_t bytes,
		      struct snapshot_stats *st)
{
	uint64_t npages = bytes / VM_PAGE_SIZE;
	off_t data = 0;

	while ((uint64_t)data < bytes && !w->err) {
		off_t hole;
		uint64_t pg, end, run_start = 0;
		uint32_t run = 0;

		data = lseek(fd, data, SEEK_DATA);
		if (data < 0)
			break;		/* ENXIO: no more data */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)bytes;
		pg = (uint64_t)data / VM_PAGE_SIZE;
		end = MIN(DIV_ROUND_UP((uint64_t)hole, VM_PAGE_SIZE), npages);
		for (; pg < end; pg++) {
			if (page_is_zero(ram + pg * VM_PAGE_SIZE)) {
				st->zero_pages++;
				if (run) {
					write_ram_run(w, ram, run_start, run);
					run = 0;
				}
				continue;
			}
			if (!run)
				run_start = pg;
			run++;
			st->ram_pages++;
			if (run == RAM_RUN_PAGES) {
				write_ram_run(w, ram, run_start, run);
				run = 0;
			}
		}
		if (run)
			write_ram_run(w, ram, run_start, run);
		data = (off_t)(end * VM_PAGE_SIZE);
	}
	st->zero_pages = npages - st->ram_pages;
}

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st, char *err,
		  size_t errlen)
{
	struct snapshot_stats local;
	struct writer w = { .fd = -1 };
	struct vm_state *state = NULL;
	char tmp[PATH_MAX];
	bool was_running = vm_get_run_state(vm) == VM_RUN_RUNNING;
	uint64_t t0 = clock_now_ns(), tp = 0;
	ssize_t n;
	int ret;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return fail(-ENAMETOOLONG, err, errlen, "path too long: %s", path);
	state = calloc(1, sizeof(*state));
	w.buf = malloc(IOBUF_BYTES);
	if (!state || !w.buf) {
		ret = fail(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	w.fd = mkostemp(tmp, O_CLOEXEC);
	if (w.fd < 0) {
		ret = fail(-errno, err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (was_running) {
		tp = clock_now_ns();
		ret = vm_pause(vm, NULL);
		if (ret < 0) {
			fail(ret, err, errlen, "cannot pause the VM: %s", strerror(-ret));
			goto out;
		}
	}
	ret = vm_capture(vm, state);
	if (ret < 0) {
		fail(ret, err, errlen, "cannot capture the VM state: %s", strerror(-ret));
		goto out_resume;
	}
	memcpy(w_reserve(&w, 8), SNAP_MAGIC, 8);
	{
		struct wbuf b;

		wbuf_init(&b, w_reserve(&w, 8), 8);
		put_le32(&b, SNAP_VERSION);
		put_le32(&b, 0);
	}
	n = state_write_all(state, w.buf + w.len, IOBUF_BYTES - w.len);
	if (n < 0) {
		ret = fail((int)n, err, errlen, "cannot serialize the VM state");
		goto out_resume;
	}
	w.len += (size_t)n;
	write_ram(&w, vm_ram_fd(vm), vm_ram(vm), vm_ram_bytes(vm), st);
	n = state_write_section(state, STATE_SEC_END, 0, w_reserve(&w, 64), 64);
	w.len -= 64 - (size_t)(n > 0 ? n : 0);
	w_flush(&w);
	if (!w.err && fsync(w.fd) < 0)
		w.err = -errno;
	if (w.err) {
		ret = fail(w.err, err, errlen, "cannot write %s: %s", path, strerror(-w.err));
		goto out_resume;
	}
	if (rename(tmp, path) < 0) {
		ret = fail(-errno, err, errlen, "cannot rename %s to %s: %s", tmp, path,
			   strerror(errno));
		goto out_resume;
	}
	tmp[0] = '\0';
	st->file_bytes = w.total;
	ret = 0;
out_resume:
	if (was_running) {
		int r2 = vm_resume(vm);

		st->pause_ns = clock_now_ns() - tp;
		if (r2 < 0 && ret == 0)
			ret = fail(r2, err, errlen, "cannot resume the VM: %s", strerror(-r2));
	}
out:
	if (w.fd >= 0) {
		close(w.fd);
		if (tmp[0])
			unlink(tmp);
	}
	free(w.buf);
	free(state);
	st->elapsed_ns = clock_now_ns() - t0;
	return ret;
}

/* ---- restore ------------------------------------------------------------ */

struct reader {
	int fd;
	uint64_t off;		/* file offset of the next byte */
};

/* Read exactly n bytes; -ECONNRESET on a short file. */
static int r_read(struct reader *r, void *buf, size_t n)
{
	int ret = read_all(r->fd, buf, n);

	if (ret == -ENODATA && n)
		ret = -ECONNRESET;
	if (ret == 0)
		r->off += n;
	return ret;
}

static int restore_ram(struct vm_ram *ram, const uint8_t *payload, uint32_t plen,
		       struct snapshot_stats *st, uint64_t at, char *err, size_t errlen)
{
	struct rbuf b;
	uint64_t first, npages = ram->bytes / VM_PAGE_SIZE;
	uint32_t n;

	rbuf_init(&b, payload, plen);
	first = get_le64(&b);
	n = get_le32(&b);
	if (n == 0 || n > RAM_RUN_PAGES || plen != RAM_HDR_BYTES + (uint64_t)n * VM_PAGE_SIZE)
		return fail(-EBADMSG, err, errlen,
			    "RAM record at offset %llu: %u pages in %u bytes is inconsistent",
			    (unsigned long long)at, n, plen);
	if (first >= npages || n > npages - first)
		return fail(-EBADMSG, err, errlen,
			    "RAM record at offset %llu: pages %llu..%llu lie outside the %llu "
			    "pages of guest RAM",
			    (unsigned long long)at, (unsigned long long)first,
			    (unsigned long long)(first + n - 1), (unsigned long long)npages);
	memcpy(ram->alias + first * VM_PAGE_SIZE, rbuf_take(&b, (size_t)n * VM_PAGE_SIZE),
	       (size_t)n * VM_PAGE_SIZE);
	st->ram_pages += n;
	return 0;
}

int snapshot_restore(const char *path, const char *name, struct vm **out,
		     struct snapshot_stats *st, char *err, size_t errlen)
{
	struct snapshot_stats local;
	struct reader r = { .fd = -1 };
	struct vm_state *state = NULL;
	struct vm_ram ram = { .fd = -1, .slot_view = NULL, .alias = NULL };
	bool have_ram = false, done = false;
	uint32_t seen = 0, vcpus_seen = 0;
	uint8_t hdr[SNAP_HDR_BYTES];
	uint8_t *sec = NULL;
	uint64_t t0 = clock_now_ns();
	char msg[200];
	int ret;

	*out = NULL;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0)
		return fail(-errno, err, errlen, "cannot open %s: %s", path, strerror(errno));
	state = calloc(1, sizeof(*state));
	sec = malloc(STATE_SEC_HDR_BYTES + STATE_SEC_MAX_PAYLOAD + STATE_SEC_CRC_BYTES);
	if (!state || !sec) {
		ret = fail(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	ret = r_read(&r, hdr, sizeof(hdr));
	if (ret == -ENODATA) {
		fail(ret, err, errlen, "%s is empty, not a kvmig snapshot", path);
		goto out;
	}
	if (ret < 0 || memcmp(hdr, SNAP_MAGIC, 8)) {
		ret = fail(-EBADMSG, err, errlen, "%s is not a kvmig snapshot (bad magic)", path);
		goto out;
	}
	{
		struct rbuf b;
		uint32_t ver;

		rbuf_init(&b, hdr + 8, 8);
		ver = get_le32(&b);
		if (ver != SNAP_VERSION) {
			ret = fail(-EPROTO, err, errlen,
				   "%s is snapshot format version %u; this build reads version %u",
				   path, ver, SNAP_VERSION);
			goto out;
		}
		if (get_le32(&b) != 0) {
			ret = fail(-EPROTO, err, errlen, "%s uses snapshot flags this build lacks",
				   path);
			goto out;
		}
	}
	while (!done) {
		uint64_t at = r.off;
		unsigned type;
		uint32_t plen;
		size_t used;

		ret = r_read(&r, sec, STATE_SEC_HDR_BYTES);
		if (ret < 0) {
			fail(ret, err, errlen,
			     "%s is truncated at offset %llu: the end-of-snapshot record is missing",
			     path, (unsigned long long)at);
			goto out;
		}
		ret = state_check_header(sec, STATE_SEC_HDR_BYTES, &type, &plen, msg, sizeof(msg));
		if (ret < 0) {
			fail(ret, err, errlen, "%s, offset %llu: %s", path, (unsigned long long)at,
			     msg);
			goto out;
		}
		ret = r_read(&r, sec + STATE_SEC_HDR_BYTES, plen + STATE_SEC_CRC_BYTES);
		if (ret < 0) {
			fail(ret, err, errlen, "%s is truncated inside the %s record at offset %llu",
			     path, state_section_name(type), (unsigned long long)at);
			goto out;
		}
		if (!(seen & (1u << STATE_SEC_CONFIG)) && type != STATE_SEC_CONFIG) {
			ret = fail(-EBADMSG, err, errlen,
				   "%s, offset %llu: %s record before the config record", path,
				   (unsigned long long)at, state_section_name(type));
			goto out;
		}
		ret = state_read_section(state, sec, STATE_SEC_HDR_BYTES + plen + STATE_SEC_CRC_BYTES,
					 &used, &type, msg, sizeof(msg));
		if (ret < 0) {
			fail(ret, err, errlen, "%s, offset %llu: %s", path, (unsigned long long)at,
			     msg);
			goto out;
		}
		if (type != STATE_SEC_RAM && type != STATE_SEC_VCPU && (seen & (1u << type))) {
			ret = fail(-EBADMSG, err, errlen, "%s, offset %llu: a second %s record", path,
				   (unsigned long long)at, state_section_name(type));
			goto out;
		}
		seen |= 1u << type;
		switch (type) {
		case STATE_SEC_CONFIG:
			ret = vm_ram_create(&ram, state->config.mem_bytes, err, errlen);
			if (ret < 0)
				goto out;
			have_ram = true;
			break;
		case STATE_SEC_VCPU:
			vcpus_seen |= 1u << (sec[8] & 7);
			break;
		case STATE_SEC_RAM:
			ret = restore_ram(&ram, sec + STATE_SEC_HDR_BYTES, plen, st, at, err,
					  errlen);
			if (ret < 0)
				goto out;
			break;
		case STATE_SEC_END:
			done = true;
			break;
		default:
			break;
		}
	}
	ret = state_check_complete(state, seen, vcpus_seen, msg, sizeof(msg));
	if (ret < 0) {
		fail(ret, err, errlen, "%s: %s", path, msg);
		goto out;
	}
	{
		uint8_t extra;

		if (read(r.fd, &extra, 1) == 1) {
			ret = fail(-EBADMSG, err, errlen, "%s: data after the end-of-snapshot record",
				   path);
			goto out;
		}
	}
	st->file_bytes = r.off;
	st->zero_pages = ram.bytes / VM_PAGE_SIZE - st->ram_pages;
	ret = vm_create_from_state(state, &ram, name, out, err, errlen);
	have_ram = false;	/* the VM owns it now, or freed it */
out:
	if (have_ram)
		vm_ram_destroy(&ram);
	if (r.fd >= 0)
		close(r.fd);
	free(sec);
	free(state);
	st->elapsed_ns = clock_now_ns() - t0;
	return ret;
}
