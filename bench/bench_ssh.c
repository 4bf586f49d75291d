/* SPDX-License-Identifier: MIT */
/*
 * bench_ssh.c - throughput of the SSH channel (protocol/channel_ssh.c)
 * against a bare libssh2 direct-tcpip pump, through the same sshd, in the
 * same run. A mode bench_channel can fold in later.
 *
 * The sshd is tests/helpers/sshd.sh's (own keys, 127.0.0.1, a free port),
 * started here and stopped at the end; HOME is its temp home, so the host
 * key is recorded there (--ssh-accept-new), never in the real ~/.ssh.
 *
 * bare:    one blocking libssh2 session (the same cipher preference),
 *          libssh2_channel_write() of 1 MiB buffers in a loop to a
 *          direct-tcpip channel; read() of the TCP connection the sshd
 *          opened to our listener on another thread.
 * channel: STATE frames of 1 MiB sent with channel_write() on one thread;
 *          the accepted TCP channel reads them with channel_read_frame()
 *          (header and CRC checked) on another.
 * Each pair runs --repeat times, alternating; the median is shown, and the
 * ratio channel/bare (target >= 90%). MB is 10^6 bytes.
 *
 * Usage: bench_ssh [--mib N] [--repeat R]   (from the repository root)
 */
#include <errno.h>
#include <libssh2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/uri.h"
#include "protocol/wire.h"

#define BUF (1u << 20)

static char dir[64];
static unsigned sshd_port;

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_ssh: %s: %s\n", what, msg);
	if (dir[0]) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "tests/helpers/sshd.sh stop %s; rm -rf %s", dir, dir);
		(void)!system(cmd);
	}
	exit(1);
}

struct sink {
	struct channel *ch;
	bool frames;
	uint64_t bytes;
};

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	uint8_t *buf = malloc(CHANNEL_FRAME_MAX);
	char err[256];

	if (!buf)
		die("malloc", "out of memory");
	for (;;) {
		if (s->frames) {
			struct frame_hdr h;
			ssize_t n = channel_read_frame(s->ch, buf, CHANNEL_FRAME_MAX, &h, err,
						       sizeof(err));

			if (n == -ENODATA)
				break;
			if (n < 0)
				die("channel_read_frame", err);
			s->bytes += (uint64_t)n;
		} else {
			ssize_t n = read(channel_fd(s->ch), buf, BUF);

			if (n == 0)
				break;
			if (n < 0)
				die("read", strerror(errno));
			s->bytes += (uint64_t)n;
		}
	}
	free(buf);
	return NULL;
}

/* The kvmig SSH channel: MB/s. */
static double run_channel(struct channel_listener *l, uint16_t port, uint64_t bytes,
			  const uint8_t *frame, size_t flen, char *cipher, size_t cap)
{
	struct channel_opts o = { .ssh_accept_new = true, .ssh_agent_port = port };
	struct sink s = { .frames = true };
	struct channel_info info;
	struct channel *tx;
	char uri[80], err[512];
	uint64_t t0, sent = 0;
	pthread_t t;

	snprintf(uri, sizeof(uri), "ssh://root@127.0.0.1:%u", sshd_port);
	if (channel_connect_opts(uri, &o, 20000, &tx, err, sizeof(err)))
		die("connect", err);
	if (channel_accept(l, 20000, &s.ch, err, sizeof(err)))
		die("accept", err);
	channel_get_info(tx, &info);
	snprintf(cipher, cap, "%s", info.cipher);
	pthread_create(&t, NULL, sink_thread, &s);
	t0 = clock_now_ns();
	for (; sent < bytes; sent += flen)
		if (channel_write(tx, frame, flen, err, sizeof(err)))
			die("channel_write", err);
	if (channel_flush(tx, err, sizeof(err)) || channel_shutdown(tx, SHUT_WR))
		die("flush", err);
	pthread_join(t, NULL);
	t0 = clock_now_ns() - t0;
	channel_close(tx);
	channel_close(s.ch);
	return (double)s.bytes / ((double)t0 / 1e9) / 1e6;
}

/* A bare blocking libssh2 pump through the same sshd: MB/s. */
static double run_bare(struct channel_listener *l, uint16_t port, uint64_t bytes,
		       const uint8_t *buf)
{
	struct channel_opts none = { 0 };
	struct sink s = { .frames = false };
	LIBSSH2_SESSION *ss;
	LIBSSH2_CHANNEL *c;
	char key[128], pub[136], err[256];
	struct uri u;
	uint64_t t0, sent = 0;
	pthread_t t;
	int fd;

	(void)none;
	if (uri_parse("ssh://root@127.0.0.1:1", &u, err, sizeof(err)))
		die("uri", err);
	u.port = (uint16_t)sshd_port;
	if (channel_tcp_dial(&u, 20000, &fd, err, sizeof(err)))
		die("dial", err);
	ss = libssh2_session_init();
	libssh2_session_set_timeout(ss, 20000);
	libssh2_session_method_pref(ss, LIBSSH2_METHOD_CRYPT_CS,
				    "aes128-gcm@openssh.com,aes128-ctr,aes256-ctr");
	libssh2_session_method_pref(ss, LIBSSH2_METHOD_MAC_CS,
				    "hmac-sha2-256-etm@openssh.com,hmac-sha2-256");
	if (libssh2_session_handshake(ss, fd))
		die("handshake", "bare session");
	snprintf(key, sizeof(key), "%s/home/.ssh/id_ed25519", dir);
	snprintf(pub, sizeof(pub), "%s.pub", key);
	if (libssh2_userauth_publickey_fromfile(ss, "root", pub, key, NULL))
		die("auth", "bare session");
	c = libssh2_channel_direct_tcpip_ex(ss, "127.0.0.1", port, "127.0.0.1", 0);
	if (!c)
		die("direct-tcpip", "bare session");
	if (channel_accept(l, 20000, &s.ch, err, sizeof(err)))
		die("accept", err);
	pthread_create(&t, NULL, sink_thread, &s);
	t0 = clock_now_ns();
	while (sent < bytes) {
		size_t off = 0;

		while (off < BUF) {
			ssize_t n = libssh2_channel_write(c, (const char *)buf + off, BUF - off);

			if (n < 0)
				die("libssh2_channel_write", "bare session");
			off += (size_t)n;
		}
		sent += BUF;
	}
	libssh2_channel_send_eof(c);
	pthread_join(t, NULL);
	t0 = clock_now_ns() - t0;
	libssh2_channel_free(c);
	libssh2_session_disconnect(ss, "done");
	libssh2_session_free(ss);
	close(fd);
	channel_close(s.ch);
	return (double)s.bytes / ((double)t0 / 1e9) / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned mib = 512, repeat = 3;
	double ch[16], bare[16];
	char cmd[256], line[128], cipher[64] = "";
	struct channel_listener *l;
	uint8_t *frame, *buf;
	uint16_t port;
	size_t flen;
	char err[256];
	FILE *f;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mib"))
			mib = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--repeat"))
			repeat = (unsigned)atoi(argv[i + 1]);
	}
	if (repeat < 1 || repeat > 16 || mib < 1)
		die("usage", "bench_ssh [--mib N] [--repeat 1..16]");
	snprintf(dir, sizeof(dir), "/tmp/kvmig-bench-ssh-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	snprintf(cmd, sizeof(cmd), "tests/helpers/sshd.sh start %s", dir);
	f = popen(cmd, "r");
	if (!f || !fgets(line, sizeof(line), f) || pclose(f) != 0 ||
	    sscanf(line, "%u", &sshd_port) != 1)
		die("sshd", "tests/helpers/sshd.sh start failed (run from the repository root)");
	snprintf(line, sizeof(line), "%s/home", dir);
	setenv("HOME", line, 1);
	unsetenv("SSH_AUTH_SOCK");
	libssh2_init(0);

	frame = malloc(CHANNEL_FRAME_MAX);
	buf = malloc(BUF);
	if (!frame || !buf)
		die("malloc", "out of memory");
	for (size_t i = 0; i < BUF; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	flen = (size_t)frame_put_state(frame, CHANNEL_FRAME_MAX, buf, WIRE_MAX_STATE);
	if (channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)))
		die("listen", err);
	port = channel_listener_port(l);
	for (unsigned r = 0; r < repeat; r++) {
		bare[r] = run_bare(l, port, (uint64_t)mib << 20, buf);
		ch[r] = run_channel(l, port, (uint64_t)mib << 20, frame, flen, cipher,
				    sizeof(cipher));
		printf("  run %u: bare libssh2 %.0f MB/s, kvmig ssh channel %.0f MB/s\n", r + 1,
		       bare[r], ch[r]);
	}
	qsort(bare, repeat, sizeof(double), cmp);
	qsort(ch, repeat, sizeof(double), cmp);
	printf("ssh (%s), one stream, %u MiB, median of %u:\n", cipher, mib, repeat);
	printf("  bare libssh2 direct-tcpip  %8.0f MB/s\n", bare[repeat / 2]);
	printf("  kvmig ssh channel          %8.0f MB/s  (%.0f%% of bare)\n", ch[repeat / 2],
	       100.0 * ch[repeat / 2] / bare[repeat / 2]);
	channel_listener_close(l);
	snprintf(cmd, sizeof(cmd), "tests/helpers/sshd.sh stop %s; rm -rf %s", dir, dir);
	(void)!system(cmd);
	free(frame);
	free(buf);
	return 0;
}
