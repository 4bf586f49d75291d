/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "announce: "
#include "migrate/announce.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

void announce_sched_defaults(struct announce_sched *s)
{
	s->rounds = ANNOUNCE_DEF_ROUNDS;
	s->initial_ms = ANNOUNCE_DEF_INITIAL_MS;
	s->step_ms = ANNOUNCE_DEF_STEP_MS;
	s->max_ms = ANNOUNCE_DEF_MAX_MS;
}

int announce_sched_check(const struct announce_sched *s, char *err, size_t errlen)
{
	if (s->rounds < 1 || s->rounds > ANNOUNCE_MAX_ROUNDS)
		return err_set(-EINVAL, err, errlen, "announce_rounds must be between 1 and %u, not %u",
			       ANNOUNCE_MAX_ROUNDS, s->rounds);
	if (s->initial_ms < 1 || s->initial_ms > ANNOUNCE_MAX_MS)
		return err_set(-EINVAL, err, errlen,
			       "announce_initial_ms must be between 1 and %u ms, not %u", ANNOUNCE_MAX_MS,
			       s->initial_ms);
	if (s->step_ms > ANNOUNCE_MAX_MS)
		return err_set(-EINVAL, err, errlen,
			       "announce_step_ms must be between 0 and %u ms, not %u", ANNOUNCE_MAX_MS,
			       s->step_ms);
	if (s->max_ms < 1 || s->max_ms > ANNOUNCE_MAX_MS)
		return err_set(-EINVAL, err, errlen, "announce_max_ms must be between 1 and %u ms, not %u",
			       ANNOUNCE_MAX_MS, s->max_ms);
	if (s->max_ms < s->initial_ms)
		return err_set(-EINVAL, err, errlen,
			       "announce_max_ms (%u) is shorter than announce_initial_ms (%u)",
			       s->max_ms, s->initial_ms);
	return 0;
}

int announce_offsets(const struct announce_sched *s, uint64_t *off_ms, size_t n)
{
	uint64_t t = 0;

	if (announce_sched_check(s, NULL, 0) < 0)
		return -EINVAL;
	for (uint32_t k = 0; k < s->rounds && k < n; k++) {
		if (k > 0) {
			/* the gap before round k is the one after round k-1 */
			uint64_t gap = (uint64_t)s->initial_ms + (uint64_t)(k - 1) * s->step_ms;

			t += gap < s->max_ms ? gap : s->max_ms;
		}
		off_ms[k] = t;
	}
	return (int)s->rounds;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int announce_frame(const uint8_t mac[6], uint8_t out[ANNOUNCE_FRAME_BYTES])
{
	static const uint8_t zero[6];

	if (!memcmp(mac, zero, 6) || (mac[0] & 1))
		return -EINVAL;
	memset(out, 0, ANNOUNCE_FRAME_BYTES);	/* addresses 0.0.0.0 and the padding */
	memset(out, 0xff, 6);			/* broadcast */
	memcpy(out + 6, mac, 6);		/* source: the guest */
	put_be16(out + 12, ANNOUNCE_ETHERTYPE);
	put_be16(out + 14, 1);			/* hardware type: Ethernet */
	put_be16(out + 16, 0x0800);		/* protocol: IPv4 */
	out[18] = 6;
	out[19] = 4;
	put_be16(out + 20, 3);			/* reverse request */
	memcpy(out + 22, mac, 6);		/* sender hardware address */
	memcpy(out + 32, mac, 6);		/* target hardware address */
	return 0;
}

/* The packet socket bound to iface, or -errno with the message. */
static int open_iface(const char *iface, unsigned *ifindex, char *err, size_t errlen)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	size_t n = iface ? strnlen(iface, ANNOUNCE_IFACE_MAX) : 0;
	int fd;

	if (n == 0 || n >= ANNOUNCE_IFACE_MAX || strchr(iface, '/') || strchr(iface, ' '))
		return err_set(-EINVAL, err, errlen, "'%.*s' is not an interface name",
			       (int)(iface ? n : 0), iface ? iface : "");
	*ifindex = if_nametoindex(iface);
	if (!*ifindex)
		return err_set(-ENODEV, err, errlen, "no interface '%s' on this host", iface);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);	/* send only: protocol 0 */
	if (fd < 0) {
		int e = errno;

		if (e == EPERM || e == EACCES)
			return err_set(-e, err, errlen,
				       "cannot announce on '%s': a packet socket needs CAP_NET_RAW "
				       "(run the agent as root)",
				       iface);
		return err_set(-e, err, errlen, "cannot open a packet socket for '%s': %s", iface,
			       strerror(e));
	}
	sll.sll_ifindex = (int)*ifindex;
	sll.sll_protocol = htons(ANNOUNCE_ETHERTYPE);
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int e = errno;

		close(fd);
		return err_set(-e, err, errlen, "cannot bind a packet socket to '%s': %s", iface,
			       strerror(e));
	}
	return fd;
}

int announce_iface_check(const char *iface, char *err, size_t errlen)
{
	unsigned idx;
	int fd = open_iface(iface, &idx, err, errlen);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

struct announcer {
	int fd;
	unsigned ifindex;
	char iface[ANNOUNCE_IFACE_MAX];
	uint8_t frame[ANNOUNCE_FRAME_BYTES];
	uint8_t mac[6];
	struct announce_sched s;
	uint64_t resume_ns;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool cancel;			/* under lock */
	bool joined;
	struct announce_stats st;	/* the sender's until the join */
};

static int send_frame(struct announcer *a)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = (int)a->ifindex,
		.sll_halen = 6,
		.sll_protocol = htons(ANNOUNCE_ETHERTYPE),
	};
	ssize_t n;

	memset(sll.sll_addr, 0xff, 6);
	do
		n = sendto(a->fd, a->frame, sizeof(a->frame), 0, (struct sockaddr *)&sll,
			   sizeof(sll));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(a->frame) ? 0 : -EIO;
}

/* Wait until deadline (clock_now_ns) or a cancel. Return: true when cancelled. */
static bool wait_until(struct announcer *a, uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000ull),
		.tv_nsec = (long)(deadline % 1000000000ull),
	};
	bool cancel;

	pthread_mutex_lock(&a->lock);
	while (!a->cancel && clock_now_ns() < deadline)
		(void)pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	cancel = a->cancel;
	pthread_mutex_unlock(&a->lock);
	return cancel;
}

static void *sender(void *arg)
{
	struct announcer *a = arg;
	uint64_t off[ANNOUNCE_MAX_ROUNDS], t0 = 0;

	if (announce_offsets(&a->s, off, ANNOUNCE_MAX_ROUNDS) < 0) {
		a->st.error = -EINVAL;
		return NULL;
	}
	for (uint32_t k = 0; k < a->s.rounds; k++) {
		int ret;

		/* against the first frame's time: a late round does not delay the next */
		if (k > 0 && wait_until(a, t0 + off[k] * 1000000ull))
			break;
		ret = send_frame(a);
		if (ret < 0) {
			a->st.error = ret;
			pr_warn("round %u of %u on %s: %s", k + 1, a->s.rounds, a->iface,
				strerror(-ret));
			break;
		}
		if (k == 0) {
			t0 = clock_now_ns();
			a->st.first_us = t0 > a->resume_ns ? (t0 - a->resume_ns) / 1000 : 0;
		}
		a->st.frames++;
	}
	return NULL;
}

int announce_start(const char *iface, const struct announce_sched *s, const uint8_t mac[6],
		   uint64_t resume_ns, struct announcer **out, char *err, size_t errlen)
{
	struct announcer *a;
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	ret = announce_sched_check(s, err, errlen);
	if (ret < 0)
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	if (announce_frame(mac, a->frame) < 0) {
		free(a);
		return err_set(-EINVAL, err, errlen,
			       "%02x:%02x:%02x:%02x:%02x:%02x is not a NIC's MAC address", mac[0],
			       mac[1], mac[2], mac[3], mac[4], mac[5]);
	}
	a->fd = open_iface(iface, &a->ifindex, err, errlen);
	if (a->fd < 0) {
		ret = a->fd;
		free(a);
		return ret;
	}
	snprintf(a->iface, sizeof(a->iface), "%s", iface);
	memcpy(a->mac, mac, 6);
	a->s = *s;
	a->resume_ns = resume_ns;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&a->thread, NULL, sender, a);
	if (ret) {
		close(a->fd);
		pthread_cond_destroy(&a->cond);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return err_set(-ret, err, errlen, "cannot start the announce thread: %s",
			       strerror(ret));
	}
	*out = a;
	return 0;
}

void announce_cancel(struct announcer *a)
{
	pthread_mutex_lock(&a->lock);
	a->cancel = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void announce_wait(struct announcer *a, struct announce_stats *st)
{
	if (!a->joined) {
		pthread_join(a->thread, NULL);
		a->joined = true;
	}
	if (st)
		*st = a->st;
}

void announce_free(struct announcer *a)
{
	if (!a)
		return;
	if (!a->joined) {
		announce_cancel(a);
		announce_wait(a, NULL);
	}
	close(a->fd);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
