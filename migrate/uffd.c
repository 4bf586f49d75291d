/* SPDX-License-Identifier: MIT */
#include "migrate/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"

int uffd_open(struct uffd *u, char *err, size_t errlen)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM};
	long fd;

	u->fd = -1;
	u->features = 0;
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_set(-errno, err, errlen,
			       "userfaultfd: %s (post-copy needs it: root, or "
			       "vm.unprivileged_userfaultfd=1)",
			       strerror(errno));
	if (ioctl((int)fd, UFFDIO_API, &api) < 0) {
		int e = errno;

		close((int)fd);
		return err_set(-e, err, errlen,
			       e == EINVAL ? "userfaultfd: this kernel cannot serve faults on shared "
					     "memory (UFFD_FEATURE_MISSING_SHMEM)"
					   : "userfaultfd: UFFDIO_API: %s",
			       strerror(e));
	}
	u->fd = (int)fd;
	u->features = api.features;
	return 0;
}

void uffd_close(struct uffd *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

int uffd_register(struct uffd *u, void *addr, size_t len, char *err, size_t errlen)
{
	struct uffdio_register r = {
		.range = {.start = (uint64_t)(uintptr_t)addr, .len = len},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	const uint64_t need = (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE) |
			      (1ull << _UFFDIO_WAKE);

	if (ioctl(u->fd, UFFDIO_REGISTER, &r) < 0)
		return err_set(-errno, err, errlen, "userfaultfd: register %zu bytes at %p: %s", len,
			       addr, strerror(errno));
	if ((r.ioctls & need) != need) {
		(void)uffd_unregister(u, addr, len);
		return err_set(-EOPNOTSUPP, err, errlen,
			       "userfaultfd: this memory takes no UFFDIO_COPY/ZEROPAGE");
	}
	return 0;
}

int uffd_unregister(struct uffd *u, void *addr, size_t len)
{
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)addr, .len = len};

	return ioctl(u->fd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int uffd_wake(struct uffd *u, void *addr, size_t len)
{
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)addr, .len = len};

	return ioctl(u->fd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

int uffd_next_fault(struct uffd *u, int timeout_ms, uint64_t *addr)
{
	for (;;) {
		struct pollfd p = {.fd = u->fd, .events = POLLIN};
		struct uffd_msg m;
		ssize_t n;
		int r = poll(&p, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		n = read(u->fd, &m, sizeof(m));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;	/* another reader took it, or a spurious wake */
		if (n < 0)
			return -errno;
		if (n != (ssize_t)sizeof(m))
			return -EIO;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;	/* no other events were asked for */
		*addr = m.arg.pagefault.address & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
		return 1;
	}
}

/* EEXIST: the page is there; the waiters still need a wake for the range. */
static int settle(struct uffd *u, void *dst, size_t len, int e)
{
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)dst, .len = len};

	if (e != EEXIST)
		return -e;
	(void)ioctl(u->fd, UFFDIO_WAKE, &r);
	return UFFD_ALREADY;
}

int uffd_copy(struct uffd *u, void *dst, const void *src, size_t len)
{
	struct uffdio_copy c = {
		.dst = (uint64_t)(uintptr_t)dst, .src = (uint64_t)(uintptr_t)src, .len = len,
	};

	while (ioctl(u->fd, UFFDIO_COPY, &c) < 0) {
		if (errno != EAGAIN)
			return settle(u, dst, len, errno);
		/* a partial copy (c.copy bytes done): go on with the rest */
		if (c.copy > 0) {
			c.dst += (uint64_t)c.copy;
			c.src += (uint64_t)c.copy;
			c.len -= (uint64_t)c.copy;
		}
		c.copy = 0;
	}
	return 0;
}

int uffd_zero(struct uffd *u, void *dst, size_t len)
{
	struct uffdio_zeropage z = {.range = {.start = (uint64_t)(uintptr_t)dst, .len = len}};

	while (ioctl(u->fd, UFFDIO_ZEROPAGE, &z) < 0) {
		if (errno != EAGAIN)
			return settle(u, dst, len, errno);
		if (z.zeropage > 0) {
			z.range.start += (uint64_t)z.zeropage;
			z.range.len -= (uint64_t)z.zeropage;
		}
		z.zeropage = 0;
	}
	return 0;
}
