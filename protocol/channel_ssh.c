/* SPDX-License-Identifier: MIT */
/*
 * channel_ssh.c - the SSH transport: ssh://[USER@]HOST[:PORT] (libssh2).
 *
 * Connect only: SSH needs no listener. The source dials the remote sshd
 * (channel_tcp_dial, port 22 by default), checks its host key against
 * known_hosts, authenticates, then opens one SSH channel that carries the
 * stream: a direct-tcpip channel to 127.0.0.1:ssh_agent_port on the remote
 * host (the destination agent's listener), or with ssh_exec a session
 * channel running that command (its stdin/stdout are the stream, its
 * stderr is kept for the error message when it fails). Every --parallel
 * lane connects on its own, so each lane is its own SSH connection.
 *
 * Host keys, as OpenSSH does it: the known_hosts name is HOST for port 22
 * and [HOST]:PORT otherwise, plain or hashed (|1|...). Each line is parsed
 * on its own (libssh2_knownhost_readline) so that a changed key names its
 * line; a line libssh2 cannot parse (markers, unknown key types) is
 * skipped. An unknown key is refused unless ssh_accept_new, which appends
 * it (creating the directory 0700 and the file 0600); a changed key (same
 * name and key type, other key) is always refused.
 *
 * Authentication: the ssh-agent (SSH_AUTH_SOCK), then ssh_identity or the
 * default ~/.ssh/id_ed25519, id_ecdsa, id_rsa (unencrypted; an encrypted
 * file is reported as such). Ciphers: the fastest both ends offer, GCM
 * first where this libssh2 has it (1.10 has only CTR/CBC), reported in
 * channel_info.cipher as "CIPHER MAC".
 *
 * Non-blocking: the socket and the session are non-blocking; a call that
 * gives LIBSSH2_ERROR_EAGAIN is repeated with the same arguments after
 * poll() on libssh2_session_block_directions(), bounded by the channel's
 * timeout (libssh2_session_set_timeout is set too, for libssh2's own
 * blocking helpers).
 *
 * Threads: channel.h allows one sending and one receiving thread at once;
 * a libssh2 session is not thread-safe, so each libssh2 call runs under
 * one mutex, and the waits (poll) run outside it. One thread's call may
 * read the packets the other waits for (channel data, a window adjust)
 * off the socket, after which the socket no longer wakes the other: so a
 * waiter also polls an eventfd of its direction, which a call made by the
 * other thread signals when it left something the waiter wants (data or
 * EOF for the receiver, send window for the sender). channel_wait() is the
 * same problem (data in libssh2's buffers, none on the socket): the wait
 * hook reads ahead into a small buffer the next recv takes first.
 * shutdown(SHUT_RDWR) marks the channel cancelled, shuts the socket down
 * and signals both eventfds: blocked calls return -ECANCELED.
 * shutdown(SHUT_WR) sends the SSH EOF. close sends EOF (if not yet) and
 * waits a little for the remote's before closing, unless the channel broke.
 * SIGPIPE: libssh2 sends with MSG_NOSIGNAL (LIBSSH2_FLAG_SIGPIPE is not set).
 */
#include "protocol/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"

#define RX 0
#define TX 1
#define LOOKAHEAD_BYTES (32u << 10)
#define STDERR_TAIL 512		/* last bytes of an exec command's stderr kept */
#define CLOSE_WAIT_MS 3000	/* at most this for the remote's EOF and close */
#define EXEC_WINDOW (8u << 20)	/* receive window of an exec session channel */
#define EXEC_PACKET 32768u

/* Fastest first; libssh2_session_method_pref drops what this libssh2 lacks. */
static const char CIPHERS[] = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,"
			      "aes192-ctr,aes256-ctr,chacha20-poly1305@openssh.com,aes128-cbc,"
			      "aes256-cbc";
static const char MACS[] = "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
			   "hmac-sha2-256,hmac-sha2-512,hmac-sha1";
static const char HOSTKEYS[] = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
			       "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

struct ssh {
	LIBSSH2_SESSION *s;
	LIBSSH2_CHANNEL *c;
	int fd;
	pthread_mutex_t lock;		/* around every libssh2 call */
	int wake[2];			/* eventfds: RX, TX */
	atomic_bool waiting[2];
	atomic_bool cancel[2];		/* shut down: -ECANCELED */
	atomic_bool broken;		/* a call failed: close does not linger */
	atomic_bool eof_sent;
	bool exec;
	char cmd[256];
	char host[300];			/* for messages: the known_hosts name */
	char cipher[64];
	char peer[128];

	/* the receiving thread's */
	uint8_t la[LOOKAHEAD_BYTES];	/* read ahead by channel_wait */
	size_t la_pos, la_len;
	char tail[STDERR_TAIL];		/* exec: the end of the command's stderr */
	size_t tail_len;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void ssh_global_init(void)
{
	init_rc = libssh2_init(0);
}

/* ---- waiting -------------------------------------------------------------------- */

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : clock_now_ms() + (uint64_t)timeout_ms;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* a full counter still wakes the waiter: the result does not matter */
	(void)!write(fd, &one, sizeof(one));
}

/*
 * With the lock held, after a call of side `side`: wake the other side's
 * waiter when the call may have left what it waits for.
 */
static void wake_other(struct ssh *p, int side)
{
	int other = !side;
	bool want;

	if (!p->c || !atomic_load(&p->waiting[other]))
		return;
	if (other == RX)
		want = libssh2_poll_channel_read(p->c, 0) || libssh2_channel_eof(p->c) ||
		       (p->exec && libssh2_poll_channel_read(p->c, 1));
	else
		want = libssh2_channel_window_write_ex(p->c, NULL) > 0;
	if (want)
		signal_fd(p->wake[other]);
}

/*
 * Wait until the socket is ready in the directions libssh2 blocked on, or
 * the other side signals, or the deadline. Return: 0, -ETIMEDOUT,
 * -ECANCELED, -errno.
 */
static int ssh_wait(struct ssh *p, int side, int dirs, uint64_t deadline)
{
	struct pollfd pf[2] = {
		{ .fd = p->fd, .events = 0 },
		{ .fd = p->wake[side], .events = POLLIN },
	};

	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pf[0].events |= POLLOUT;
	if ((dirs & LIBSSH2_SESSION_BLOCK_INBOUND) || !pf[0].events)
		pf[0].events |= POLLIN;
	for (;;) {
		int left = -1, n;

		if (atomic_load(&p->cancel[side]))
			return -ECANCELED;
		if (deadline != UINT64_MAX) {
			uint64_t now = clock_now_ms();

			if (now >= deadline)
				return -ETIMEDOUT;
			left = (int)MIN(deadline - now, (uint64_t)INT_MAX);
		}
		n = poll(pf, 2, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;	/* the deadline check above decides */
		if (pf[1].revents) {
			uint64_t v;

			(void)!read(p->wake[side], &v, sizeof(v));
		}
		return atomic_load(&p->cancel[side]) ? -ECANCELED : 0;
	}
}

/*
 * The end of every locked call: when it would block, wait and say to call
 * again (true); else wake the other side and say done (false). Called with
 * the lock held; returns with it released. *werr gets the wait's error.
 */
static bool ssh_again(struct ssh *p, int side, bool again, uint64_t deadline, int *werr)
{
	int dirs, ret;

	wake_other(p, side);
	if (!again) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	dirs = libssh2_session_block_directions(p->s);
	atomic_store(&p->waiting[side], true);
	pthread_mutex_unlock(&p->lock);
	ret = ssh_wait(p, side, dirs, deadline);
	atomic_store(&p->waiting[side], false);
	if (ret < 0) {
		*werr = ret;
		return false;
	}
	return true;
}

/*
 * Run CALL (statements) under the lock until AGAIN (an expression, under
 * the lock) is false or the wait fails (werr set, 0 before).
 */
#define SSH_LOOP(p, side, deadline, werr, again, ...)                                    \
	do {                                                                             \
		pthread_mutex_lock(&(p)->lock);                                          \
		__VA_ARGS__;                                                             \
	} while (ssh_again((p), (side), (again), (deadline), &(werr)))

static const char *last_error(struct ssh *p, char *buf, size_t cap)
{
	char *msg = NULL;

	pthread_mutex_lock(&p->lock);
	libssh2_session_last_error(p->s, &msg, NULL, 0);
	snprintf(buf, cap, "%s", msg && *msg ? msg : "unknown error");
	pthread_mutex_unlock(&p->lock);
	return buf;
}

/* ---- exec: the command's stderr and exit status --------------------------------- */

/* With the lock held: move what the command wrote to stderr into the tail. */
static void drain_stderr(struct ssh *p)
{
	char buf[1024];
	ssize_t n;

	if (!p->exec || !p->c)
		return;
	while ((n = libssh2_channel_read_stderr(p->c, buf, sizeof(buf))) > 0) {
		size_t k = (size_t)n;

		if (k >= sizeof(p->tail)) {
			memcpy(p->tail, buf + k - sizeof(p->tail), sizeof(p->tail));
			p->tail_len = sizeof(p->tail);
			continue;
		}
		if (p->tail_len + k > sizeof(p->tail)) {
			size_t drop = p->tail_len + k - sizeof(p->tail);

			memmove(p->tail, p->tail + drop, p->tail_len - drop);
			p->tail_len -= drop;
		}
		memcpy(p->tail + p->tail_len, buf, k);
		p->tail_len += k;
	}
}

/*
 * After the remote command's stream ended: wait a little for its exit
 * status, then describe it with the last lines of its stderr.
 */
static void describe_exec_end(struct ssh *p, int side, char *buf, size_t cap)
{
	uint64_t deadline = clock_now_ms() + CLOSE_WAIT_MS;
	char tail[STDERR_TAIL + 1], *t;
	int werr = 0, rc, status = -1;
	char *sig = NULL;
	size_t len;

	SSH_LOOP(p, side, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN, {
		drain_stderr(p);
		rc = libssh2_channel_eof(p->c) ? libssh2_channel_wait_closed(p->c) : 0;
		drain_stderr(p);
	});
	pthread_mutex_lock(&p->lock);
	if (rc == 0 && !werr) {
		status = libssh2_channel_get_exit_status(p->c);
		libssh2_channel_get_exit_signal(p->c, &sig, NULL, NULL, NULL, NULL, NULL);
	}
	memcpy(tail, p->tail, p->tail_len);
	tail[p->tail_len] = '\0';
	pthread_mutex_unlock(&p->lock);
	/* the last two lines, as one line of text */
	len = strlen(tail);
	while (len && (tail[len - 1] == '\n' || tail[len - 1] == '\r'))
		tail[--len] = '\0';
	t = tail + len;
	for (int lines = 0; t > tail; t--)
		if (t[-1] == '\n' && ++lines == 2)
			break;
	for (char *q = t; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	if (sig)
		snprintf(buf, cap, "the remote command '%s' was killed by SIG%s%s%s", p->cmd, sig,
			 *t ? ": " : "", t);
	else if (status >= 0)
		snprintf(buf, cap, "the remote command '%s' exited with status %d%s%s", p->cmd,
			 status, *t ? ": " : "", t);
	else
		snprintf(buf, cap, "the remote command '%s' ended%s%s", p->cmd, *t ? ": " : "", t);
	if (sig)
		libssh2_free(p->s, sig);
}

/* ---- connection ops -------------------------------------------------------------- */

static struct ssh *priv_of(const struct channel *ch)
{
	return channel_priv(ch);
}

/* A libssh2 error on an open channel, as -errno and words. */
static int io_error(struct ssh *p, int side, int rc, const char *what, char *err, size_t errlen)
{
	char msg[200], why[400];

	atomic_store(&p->broken, true);
	if (atomic_load(&p->cancel[side]))
		return err_set(-ECANCELED, err, errlen, "the channel was shut down");
	last_error(p, msg, sizeof(msg));
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
		if (p->exec) {
			describe_exec_end(p, side, why, sizeof(why));
			return err_set(-ECONNRESET, err, errlen, "SSH %s: %s (%s)", what, why, msg);
		}
		return err_set(-ECONNRESET, err, errlen,
			       "the SSH connection to %s broke (%s: %s)", p->host, what, msg);
	default:
		return err_set(-EIO, err, errlen, "SSH %s to %s: %s (libssh2 error %d)", what,
			       p->host, msg, rc);
	}
}

/* What an SSH_LOOP wait that ended in werr means: "IDLE for N ms", shut down, poll failed. */
static int wait_error(struct channel *ch, int werr, const char *idle, char *err, size_t errlen)
{
	if (werr == -ETIMEDOUT)
		return err_set(werr, err, errlen, "%s for %d ms", idle, channel_timeout(ch));
	if (werr == -ECANCELED)
		return err_set(werr, err, errlen, "the channel was shut down");
	return err_set(werr, err, errlen, "poll: %s", strerror(-werr));
}

static int ssh_send(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		    size_t errlen)
{
	struct ssh *p = priv_of(ch);

	if (iovcnt < 0 || iovcnt > CHANNEL_IOV_MAX)
		return err_set(-EINVAL, err, errlen, "send: %d iovecs", iovcnt);
	for (int i = 0; i < iovcnt; i++) {
		const char *base = iov[i].iov_base;
		size_t off = 0;

		while (off < iov[i].iov_len) {
			uint64_t deadline = deadline_of(channel_timeout(ch));
			int werr = 0;
			ssize_t n;

			SSH_LOOP(p, TX, deadline, werr, n == LIBSSH2_ERROR_EAGAIN || n == 0,
				 n = libssh2_channel_write(p->c, base + off, iov[i].iov_len - off));
			if (werr)
				return wait_error(ch, werr, "the peer accepted no data", err, errlen);
			if (n < 0)
				return io_error(p, TX, (int)n, "send", err, errlen);
			off += (size_t)n;
		}
	}
	return 0;
}

static int at_eof(struct ssh *p, size_t got, char *err, size_t errlen)
{
	char why[400];

	if (atomic_load(&p->cancel[RX]))
		return err_set(-ECANCELED, err, errlen, "the channel was shut down");
	if (p->exec)
		describe_exec_end(p, RX, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "the peer closed the connection");
	return err_set(got ? -ECONNRESET : -ENODATA, err, errlen, "%s", why);
}

static ssize_t ssh_recv(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			size_t errlen)
{
	struct ssh *p = priv_of(ch);
	uint8_t *out = buf;
	size_t got = 0;

	if (min == 0 || min > max)
		return err_set(-EINVAL, err, errlen, "recv: min %zu, max %zu", min, max);
	if (p->la_pos < p->la_len) {
		got = MIN(p->la_len - p->la_pos, max);
		memcpy(out, p->la + p->la_pos, got);
		p->la_pos += got;
	}
	while (got < min) {
		uint64_t deadline = deadline_of(channel_timeout(ch));
		bool eof = false;
		int werr = 0;
		ssize_t n;

		SSH_LOOP(p, RX, deadline, werr,
			 n == LIBSSH2_ERROR_EAGAIN || (n == 0 && !eof), {
				 /* stderr first: its reads may take stdout's packets and
				  * the EOF off the socket, which this read then sees */
				 drain_stderr(p);
				 n = libssh2_channel_read(p->c, (char *)out + got, max - got);
				 eof = n == 0 && libssh2_channel_eof(p->c);
			 });
		if (werr)
			return wait_error(ch, werr, "no data from the peer", err, errlen);
		if (n < 0)
			return io_error(p, RX, (int)n, "recv", err, errlen);
		if (eof)
			return at_eof(p, got, err, errlen);
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* channel_wait: something to read (data, EOF, an error) within timeout_ms? */
static int ssh_wait_readable(struct channel *ch, int timeout_ms)
{
	struct ssh *p = priv_of(ch);
	uint64_t deadline = deadline_of(timeout_ms);
	bool eof = false;
	int werr = 0;
	ssize_t n;

	if (p->la_pos < p->la_len)
		return 1;
	SSH_LOOP(p, RX, deadline, werr,
		 timeout_ms != 0 && (n == LIBSSH2_ERROR_EAGAIN || (n == 0 && !eof)), {
			 drain_stderr(p);
			 n = libssh2_channel_read(p->c, (char *)p->la, sizeof(p->la));
			 eof = n == 0 && libssh2_channel_eof(p->c);
		 });
	if (werr == -ETIMEDOUT)
		return 0;
	if (werr)
		return werr == -ECANCELED ? 1 : werr;
	if (n > 0) {
		p->la_pos = 0;
		p->la_len = (size_t)n;
		return 1;
	}
	/* EOF or an error: the next read reports it */
	return n == LIBSSH2_ERROR_EAGAIN || (n == 0 && !eof) ? 0 : 1;
}

static int send_eof(struct ssh *p, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int werr = 0, rc;

	if (atomic_exchange(&p->eof_sent, true))
		return 0;
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_channel_send_eof(p->c));
	return werr ? werr : rc < 0 ? -ECONNRESET : 0;
}

static int ssh_shutdown(struct channel *ch, int how)
{
	struct ssh *p = priv_of(ch);

	if (how == SHUT_WR)
		return send_eof(p, channel_timeout(ch));
	atomic_store(&p->cancel[RX], true);
	if (how == SHUT_RDWR) {
		atomic_store(&p->cancel[TX], true);
		atomic_store(&p->broken, true);
		/* wakes a poll on the socket; libssh2's next call fails at once */
		(void)shutdown(p->fd, SHUT_RDWR);
		signal_fd(p->wake[TX]);
	}
	signal_fd(p->wake[RX]);
	return 0;
}

static void ssh_free(struct ssh *p)
{
	if (!p)
		return;
	if (p->s) {
		/* blocking, bounded: what is left to say goes out or fails fast */
		libssh2_session_set_timeout(p->s, 1000);
		libssh2_session_set_blocking(p->s, 1);
		if (p->c)
			libssh2_channel_free(p->c);
		if (!atomic_load(&p->broken))
			libssh2_session_disconnect(p->s, "kvmig: done");
		libssh2_session_free(p->s);
	}
	if (p->fd >= 0)
		close(p->fd);
	for (int i = 0; i < 2; i++)
		if (p->wake[i] >= 0)
			close(p->wake[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The end of a session that worked: EOF both ways, close, disconnect; bounded. */
static void ssh_goodbye(struct ssh *p)
{
	uint64_t deadline = clock_now_ms() + CLOSE_WAIT_MS;
	char scratch[4096];
	int werr = 0, rc;

	if (send_eof(p, CLOSE_WAIT_MS) < 0)
		return;
	/* the remote's EOF: what it still sends is dropped */
	SSH_LOOP(p, RX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN || rc > 0, {
		drain_stderr(p);
		rc = (int)libssh2_channel_read(p->c, scratch, sizeof(scratch));
		if (rc == 0 && !libssh2_channel_eof(p->c))
			rc = LIBSSH2_ERROR_EAGAIN;
	});
	if (werr || rc < 0)
		return;
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_channel_close(p->c));
	if (werr || rc < 0)
		return;
	SSH_LOOP(p, RX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_channel_wait_closed(p->c));
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_channel_free(p->c));
	if (rc == 0)
		p->c = NULL;
}

static void ssh_close(struct channel *ch)
{
	struct ssh *p = priv_of(ch);

	if (!p)
		return;
	if (p->c && !atomic_load(&p->broken))
		ssh_goodbye(p);
	ssh_free(p);
}

static int ssh_get_fd(const struct channel *ch)
{
	return priv_of(ch)->fd;
}

static void ssh_info(const struct channel *ch, struct channel_info *info)
{
	const struct ssh *p = priv_of(ch);

	snprintf(info->version, sizeof(info->version), "SSH-2.0");
	snprintf(info->cipher, sizeof(info->cipher), "%s", p->cipher);
	snprintf(info->peer, sizeof(info->peer), "%s", p->peer);
}

/* ---- connect: host key ------------------------------------------------------------ */

static void base64(const uint8_t *in, size_t n, char *out, size_t cap, bool pad)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tab[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (i + 2 < n)
			out[o++] = tab[v & 63];
		else if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(geteuid());
	return pw ? pw->pw_dir : "/";
}

/* PATH with the home directory shown as ~ (for messages). */
static void tilde(const char *path, char *buf, size_t cap)
{
	const char *h = home_dir();
	size_t n = strlen(h);

	if (n > 1 && !strncmp(path, h, n) && path[n] == '/')
		snprintf(buf, cap, "~%s", path + n);
	else
		snprintf(buf, cap, "%s", path);
}

struct keytype {
	int hostkey;		/* LIBSSH2_HOSTKEY_TYPE_ */
	int mask;		/* LIBSSH2_KNOWNHOST_KEY_ */
	const char *name;
};

static const struct keytype KEYTYPES[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa" },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss" },
};

/* mkdir -p of path's directory, new levels 0700. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *q = dir + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	return mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int record_key(struct ssh *p, const char *file, const char *key, size_t len, int mask,
		      char *err, size_t errlen)
{
	struct libssh2_knownhost *node = NULL;
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(p->s);
	char line[4096];
	size_t outlen = 0;
	struct stat st;
	int fd, ret;

	if (!kh)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	ret = libssh2_knownhost_addc(kh, p->host, NULL, key, len, NULL, 0,
				     LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | mask,
				     &node);
	if (ret == 0)
		ret = libssh2_knownhost_writeline(kh, node, line, sizeof(line), &outlen,
						  LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	libssh2_knownhost_free(kh);
	if (ret < 0)
		return err_set(-EIO, err, errlen, "cannot format the host key of %s (libssh2 error %d)",
			       p->host, ret);
	ret = make_parent(file);
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot create the directory of %s: %s", file,
			       strerror(-ret));
	fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(-errno, err, errlen, "cannot record the host key in %s: %s", file,
			       strerror(errno));
	ret = 0;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		char last;

		/* the file's last line may lack its newline */
		if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' && write(fd, "\n", 1) != 1)
			ret = -errno;
	}
	if (ret == 0 && write(fd, line, outlen) != (ssize_t)outlen)
		ret = errno ? -errno : -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot record the host key in %s: %s", file,
			       strerror(-ret));
	return 0;
}

static int check_host_key(struct ssh *p, const struct channel_opts *o, char *err, size_t errlen)
{
	const struct keytype *kt = NULL;
	char file[PATH_MAX], shown[PATH_MAX], fp[64], *line = NULL;
	size_t len = 0, cap = 0;
	unsigned lineno = 0, bad_line = 0;
	const char *key, *hash;
	bool match = false;
	int type = 0, ret;
	FILE *f;

	key = libssh2_session_hostkey(p->s, &len, &type);
	if (!key)
		return err_set(-EPROTO, err, errlen, "the SSH server at %s sent no host key",
			       p->host);
	for (size_t i = 0; i < ARRAY_SIZE(KEYTYPES); i++)
		if (KEYTYPES[i].hostkey == type)
			kt = &KEYTYPES[i];
	if (!kt)
		return err_set(-EPROTO, err, errlen,
			       "the SSH server at %s has a host key of a type unknown here (%d)",
			       p->host, type);
	hash = libssh2_hostkey_hash(p->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!hash)
		return err_set(-EPROTO, err, errlen, "cannot hash the host key of %s", p->host);
	base64((const uint8_t *)hash, 32, fp, sizeof(fp), false);
	snprintf(p->peer, sizeof(p->peer), "%s SHA256:%s", kt->name, fp);

	if (o->ssh_known_hosts && *o->ssh_known_hosts)
		snprintf(file, sizeof(file), "%s", o->ssh_known_hosts);
	else
		snprintf(file, sizeof(file), "%s/.ssh/known_hosts", home_dir());
	f = fopen(file, "re");
	if (!f && errno != ENOENT)
		return err_set(-errno, err, errlen, "cannot read %s: %s", file, strerror(errno));
	while (f && !match) {
		LIBSSH2_KNOWNHOSTS *kh;
		ssize_t n = getline(&line, &cap, f);
		char *s;

		if (n < 0)
			break;
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (!*s || *s == '#')
			continue;
		kh = libssh2_knownhost_init(p->s);
		if (!kh)
			break;
		/* one line at a time: a changed key names its line */
		if (libssh2_knownhost_readline(kh, s, strlen(s), LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0) {
			ret = libssh2_knownhost_checkp(kh, p->host, -1, key, len,
						       LIBSSH2_KNOWNHOST_TYPE_PLAIN |
							       LIBSSH2_KNOWNHOST_KEYENC_RAW | kt->mask,
						       NULL);
			if (ret == LIBSSH2_KNOWNHOST_CHECK_MATCH)
				match = true;
			else if (ret == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && !bad_line)
				bad_line = lineno;
		}
		libssh2_knownhost_free(kh);
	}
	free(line);
	if (f)
		fclose(f);
	if (match)
		return 0;
	tilde(file, shown, sizeof(shown));
	if (bad_line)
		return err_set(-EKEYREJECTED, err, errlen,
			       "the SSH host key of %s has CHANGED (now %s); refusing: someone may "
			       "be intercepting the connection, or the host was reinstalled; remove "
			       "the old key from %s line %u if that is expected",
			       p->host, p->peer, shown, bad_line);
	if (!o->ssh_accept_new)
		return err_set(-EKEYREJECTED, err, errlen,
			       "unknown SSH host key for %s (%s); connect once with ssh, or pass "
			       "--ssh-accept-new",
			       p->host, p->peer);
	return record_key(p, file, key, len, kt->mask, err, errlen);
}

/* ---- connect: authentication ------------------------------------------------------- */

/* Is this private key file encrypted (PEM headers or the OpenSSH format's cipher)? */
static bool key_encrypted(const char *path)
{
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	char buf[8192], b64[128];
	size_t n, k = 0;
	FILE *f = fopen(path, "re");
	const char *body;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (strstr(buf, "ENCRYPTED"))
		return true;
	body = strstr(buf, begin);
	if (!body)
		return false;
	/* "openssh-key-v1\0" then a string: the cipher name, "none" when plain */
	for (body += sizeof(begin) - 1; *body && k < sizeof(b64) - 1; body++)
		if (*body != '\n' && *body != '\r')
			b64[k++] = *body;
	b64[k] = '\0';
	/* base64 of "openssh-key-v1\0" + 00 00 00 04 "none" starts like this */
	return strncmp(b64, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", 31) != 0;
}

static void add_item(char *list, size_t cap, const char *item)
{
	size_t n = strlen(list);

	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", item);
}

/* What was offered (tried) and why something was not (notes), for the message. */
struct auth_log {
	char tried[1024];
	char notes[1024];
	unsigned files;		/* key files looked at */
};

static int try_agent(struct ssh *p, const char *user, uint64_t deadline, struct auth_log *al,
		     bool *ok)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	const char *sock = getenv("SSH_AUTH_SOCK");
	LIBSSH2_AGENT *agent;
	unsigned count = 0;
	char item[PATH_MAX + 40];
	int werr = 0, rc;

	if (!sock || !*sock) {
		add_item(al->notes, sizeof(al->notes), "no ssh-agent (SSH_AUTH_SOCK is not set)");
		return 0;
	}
	agent = libssh2_agent_init(p->s);
	if (!agent)
		return -ENOMEM;
	if (libssh2_agent_connect(agent) < 0) {
		snprintf(item, sizeof(item), "no ssh-agent answers at %s", sock);
		add_item(al->notes, sizeof(al->notes), item);
		libssh2_agent_free(agent);
		return 0;
	}
	if (libssh2_agent_list_identities(agent) == 0) {
		while (!*ok && libssh2_agent_get_identity(agent, &id, prev) == 0) {
			count++;
			SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
				 rc = libssh2_agent_userauth(agent, user, id));
			if (werr)
				break;
			if (rc == 0)
				*ok = true;
			prev = id;
		}
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	if (werr)
		return werr;
	snprintf(item, sizeof(item), "agent keys (%u)", count);
	add_item(al->tried, sizeof(al->tried), item);
	return 0;
}

static int try_key_file(struct ssh *p, const char *user, const char *path, bool must_exist,
			uint64_t deadline, struct auth_log *al, bool *ok)
{
	char pub[PATH_MAX + 8], shown[PATH_MAX], item[PATH_MAX + 100];
	int werr = 0, rc;

	tilde(path, shown, sizeof(shown));
	if (access(path, R_OK) < 0) {
		if (must_exist) {
			snprintf(item, sizeof(item), "cannot read %s: %s", shown, strerror(errno));
			add_item(al->notes, sizeof(al->notes), item);
			al->files++;
		}
		return 0;
	}
	al->files++;
	if (key_encrypted(path)) {
		snprintf(item, sizeof(item),
			 "%s is encrypted (kvmig asks no passphrase: add it to your ssh-agent)",
			 shown);
		add_item(al->notes, sizeof(al->notes), item);
		return 0;
	}
	snprintf(pub, sizeof(pub), "%s.pub", path);
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_userauth_publickey_fromfile_ex(p->s, user, (unsigned)strlen(user),
							     access(pub, R_OK) == 0 ? pub : NULL,
							     path, NULL));
	if (werr)
		return werr;
	if (rc == 0) {
		*ok = true;
		return 0;
	}
	if (rc == LIBSSH2_ERROR_FILE) {
		snprintf(item, sizeof(item), "%s is not a key libssh2 can read", shown);
		add_item(al->notes, sizeof(al->notes), item);
		return 0;
	}
	add_item(al->tried, sizeof(al->tried), shown);
	return 0;
}

static int authenticate(struct ssh *p, const struct uri *u, const struct channel_opts *o,
			uint64_t deadline, char *err, size_t errlen)
{
	static const char *const defaults[] = { "id_ed25519", "id_ecdsa", "id_rsa" };
	bool ident = o->ssh_identity && *o->ssh_identity, ok = false;
	char user[URI_USER_MAX + 1], path[PATH_MAX], msg[300];
	struct auth_log *al;
	struct passwd *pw;
	char *methods = NULL;
	int werr = 0, ret = 0;

	if (u->user[0]) {
		snprintf(user, sizeof(user), "%s", u->user);
	} else {
		pw = getpwuid(geteuid());
		if (!pw)
			return err_set(-ENOENT, err, errlen,
				       "no user name for uid %u: put one in the URI (ssh://USER@HOST)",
				       (unsigned)geteuid());
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	}
	SSH_LOOP(p, TX, deadline, werr,
		 !methods && libssh2_session_last_errno(p->s) == LIBSSH2_ERROR_EAGAIN,
		 methods = libssh2_userauth_list(p->s, user, (unsigned)strlen(user)));
	if (werr)
		goto wait_failed;
	if (!methods) {
		if (libssh2_userauth_authenticated(p->s))
			return 0;
		return err_set(-EPROTO, err, errlen, "SSH authentication as %s@%s failed: %s",
			       user, p->host, last_error(p, msg, sizeof(msg)));
	}
	if (!strstr(methods, "publickey"))
		return err_set(-EACCES, err, errlen,
			       "SSH authentication as %s@%s failed: the server offers only %s, "
			       "and kvmig authenticates with keys (ssh-agent or key files)",
			       user, p->host, methods);
	al = calloc(1, sizeof(*al));
	if (!al)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	ret = try_agent(p, user, deadline, al, &ok);
	if (ret == 0 && !ok && ident)
		ret = try_key_file(p, user, o->ssh_identity, true, deadline, al, &ok);
	for (size_t i = 0; ret == 0 && !ok && !ident && i < ARRAY_SIZE(defaults); i++) {
		snprintf(path, sizeof(path), "%s/.ssh/%s", home_dir(), defaults[i]);
		ret = try_key_file(p, user, path, false, deadline, al, &ok);
	}
	if (ret == 0 && !ok) {
		if (!al->files)
			add_item(al->notes, sizeof(al->notes),
				 "no key file (~/.ssh/id_ed25519, id_ecdsa, id_rsa)");
		if (al->tried[0])
			ret = err_set(-EACCES, err, errlen,
				      "SSH authentication as %s@%s failed: the server accepted "
				      "none of: %s%s%s", user, p->host, al->tried,
				      al->notes[0] ? "; " : "", al->notes);
		else
			ret = err_set(-EACCES, err, errlen,
				      "SSH authentication as %s@%s failed: no key to offer: %s",
				      user, p->host, al->notes);
	}
	free(al);
	if (ret >= 0 || ret == -EACCES)
		return ret;
	werr = ret;
wait_failed:
	if (werr == -ETIMEDOUT)
		return err_set(werr, err, errlen,
			       "SSH authentication as %s@%s: no answer from the server in time",
			       user, p->host);
	return err_set(werr, err, errlen, "SSH authentication as %s@%s: %s", user, p->host,
		       strerror(-werr));
}

/* ---- connect --------------------------------------------------------------------- */

/*
 * Our preference list for one method type, cut to what this libssh2 has:
 * libssh2_session_method_pref() drops unknown names itself, but with an
 * overlapping memcpy (ASan stops on it), so it only ever sees known ones.
 */
static void set_pref(struct ssh *p, int type, const char *want)
{
	const char **algs = NULL;
	char list[512] = "";
	size_t w = 0;
	int n = libssh2_session_supported_algs(p->s, type, &algs);

	for (const char *s = want; n > 0 && *s;) {
		size_t len = strcspn(s, ",");

		for (int i = 0; i < n; i++) {
			if (strlen(algs[i]) == len && !memcmp(algs[i], s, len) &&
			    w + len + 2 < sizeof(list)) {
				w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%.*s",
						      w ? "," : "", (int)len, s);
				break;
			}
		}
		s += len + (s[len] == ',');
	}
	if (algs)
		libssh2_free(p->s, algs);
	/* best effort: libssh2 keeps its defaults when it has none of these */
	if (list[0])
		(void)libssh2_session_method_pref(p->s, type, list);
}

static void set_prefs(struct ssh *p)
{
	set_pref(p, LIBSSH2_METHOD_CRYPT_CS, CIPHERS);
	set_pref(p, LIBSSH2_METHOD_CRYPT_SC, CIPHERS);
	set_pref(p, LIBSSH2_METHOD_MAC_CS, MACS);
	set_pref(p, LIBSSH2_METHOD_MAC_SC, MACS);
	set_pref(p, LIBSSH2_METHOD_HOSTKEY, HOSTKEYS);
}

static void note_cipher(struct ssh *p)
{
	const char *c = libssh2_session_methods(p->s, LIBSSH2_METHOD_CRYPT_CS);
	const char *m = libssh2_session_methods(p->s, LIBSSH2_METHOD_MAC_CS);
	bool aead = c && (strstr(c, "gcm") || strstr(c, "poly1305"));

	snprintf(p->cipher, sizeof(p->cipher), "%s%s%s", c ? c : "?", aead || !m ? "" : " ",
		 aead || !m ? "" : m);
}

static int open_channel(struct ssh *p, const struct channel_opts *o, uint64_t deadline,
			char *err, size_t errlen)
{
	unsigned port = o->ssh_agent_port ? o->ssh_agent_port : CHANNEL_AGENT_PORT;
	LIBSSH2_CHANNEL *c = NULL;
	char msg[300];
	int werr = 0, rc;

	if (!o->ssh_exec) {
		SSH_LOOP(p, TX, deadline, werr,
			 !c && libssh2_session_last_errno(p->s) == LIBSSH2_ERROR_EAGAIN,
			 c = libssh2_channel_direct_tcpip_ex(p->s, "127.0.0.1", (int)port,
							     "127.0.0.1", 0));
		if (werr == -ETIMEDOUT)
			return err_set(werr, err, errlen,
				       "the SSH server at %s did not open a channel to 127.0.0.1:%u "
				       "in time", p->host, port);
		if (werr)
			return err_set(werr, err, errlen, "SSH channel: %s", strerror(-werr));
		if (!c) {
			last_error(p, msg, sizeof(msg));
			if (strstr(msg, "prohibited"))
				return err_set(-ECONNREFUSED, err, errlen,
					       "the SSH server at %s refused to forward to "
					       "127.0.0.1:%u (%s): TCP forwarding is off there "
					       "(AllowTcpForwarding)", p->host, port, msg);
			return err_set(-ECONNREFUSED, err, errlen,
				       "the SSH server at %s could not connect to 127.0.0.1:%u "
				       "there (%s): no destination agent listens on port %u "
				       "(--ssh-agent-port)", p->host, port, msg, port);
		}
		p->c = c;
		return 0;
	}
	snprintf(p->cmd, sizeof(p->cmd), "%s", o->ssh_exec);
	p->exec = true;
	SSH_LOOP(p, TX, deadline, werr,
		 !c && libssh2_session_last_errno(p->s) == LIBSSH2_ERROR_EAGAIN,
		 c = libssh2_channel_open_ex(p->s, "session", sizeof("session") - 1, EXEC_WINDOW,
					     EXEC_PACKET, NULL, 0));
	if (werr)
		return err_set(werr, err, errlen, "SSH session channel to %s: %s", p->host,
			       strerror(-werr));
	if (!c)
		return err_set(-ECONNREFUSED, err, errlen,
			       "the SSH server at %s refused a session channel: %s", p->host,
			       last_error(p, msg, sizeof(msg)));
	p->c = c;
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_channel_process_startup(c, "exec", sizeof("exec") - 1, p->cmd,
						      (unsigned)strlen(p->cmd)));
	if (werr)
		return err_set(werr, err, errlen, "SSH exec of '%s' on %s: %s", p->cmd, p->host,
			       strerror(-werr));
	if (rc < 0)
		return err_set(-ECONNREFUSED, err, errlen,
			       "the SSH server at %s refused to run '%s': %s", p->host, p->cmd,
			       last_error(p, msg, sizeof(msg)));
	return 0;
}

static int ssh_connect(const struct uri *u, const struct channel_opts *o, int timeout_ms,
		       struct channel **out, char *err, size_t errlen)
{
	uint64_t deadline = deadline_of(timeout_ms);
	struct ssh *p;
	char msg[300];
	int werr = 0, rc, ret, fl;

	*out = NULL;
	pthread_once(&init_once, ssh_global_init);
	if (init_rc)
		return err_set(-EIO, err, errlen, "libssh2_init failed (%d)", init_rc);
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	p->fd = p->wake[0] = p->wake[1] = -1;
	pthread_mutex_init(&p->lock, NULL);
	if (u->port == 22)
		snprintf(p->host, sizeof(p->host), "%s", u->host);
	else
		snprintf(p->host, sizeof(p->host), "[%s]:%u", u->host, u->port);
	for (int i = 0; i < 2; i++) {
		p->wake[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->wake[i] < 0) {
			ret = err_set(-errno, err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	ret = channel_tcp_dial(u, timeout_ms, &p->fd, msg, sizeof(msg));
	if (ret == -ECONNREFUSED) {
		ret = err_set(ret, err, errlen,
			      "no SSH server at %s port %u: connection refused (is sshd running "
			      "there?)", u->host, u->port);
		goto fail;
	}
	if (ret < 0) {
		ret = err_set(ret, err, errlen, "%s", msg);
		goto fail;
	}
	fl = fcntl(p->fd, F_GETFL);
	if (fl < 0 || fcntl(p->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = err_set(-errno, err, errlen, "fcntl: %s", strerror(errno));
		goto fail;
	}
	p->s = libssh2_session_init();
	if (!p->s) {
		ret = err_set(-ENOMEM, err, errlen, "libssh2_session_init failed");
		goto fail;
	}
	libssh2_session_set_blocking(p->s, 0);
	libssh2_session_set_timeout(p->s, timeout_ms > 0 ? timeout_ms : 0);
	set_prefs(p);
	SSH_LOOP(p, TX, deadline, werr, rc == LIBSSH2_ERROR_EAGAIN,
		 rc = libssh2_session_handshake(p->s, p->fd));
	if (werr == -ETIMEDOUT) {
		ret = err_set(werr, err, errlen, "no SSH handshake with %s within %d ms", p->host,
			      timeout_ms);
		goto fail;
	}
	if (werr || rc < 0) {
		ret = err_set(werr ? werr : -EPROTO, err, errlen,
			      "SSH handshake with %s failed: %s", p->host,
			      werr ? strerror(-werr) : last_error(p, msg, sizeof(msg)));
		goto fail;
	}
	note_cipher(p);
	ret = check_host_key(p, o, err, errlen);
	if (ret < 0)
		goto fail;
	ret = authenticate(p, u, o, deadline, err, errlen);
	if (ret < 0)
		goto fail;
	ret = open_channel(p, o, deadline, err, errlen);
	if (ret < 0)
		goto fail;
	ret = channel_open(&channel_ssh_ops, p->fd, p, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "out of memory");
	return 0;
fail:
	ssh_free(p);
	return ret;
}

const struct channel_ops channel_ssh_ops = {
	.name = "ssh",
	.send = ssh_send,
	.recv = ssh_recv,
	.shutdown = ssh_shutdown,
	.close = ssh_close,
	.get_fd = ssh_get_fd,
	.info = ssh_info,
	.wait = ssh_wait_readable,
	.connect = ssh_connect,
};
