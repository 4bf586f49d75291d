/* SPDX-License-Identifier: MIT */
/*
 * test_channel_ssh.c - the SSH transport (protocol/channel_ssh.c) through a
 * real sshd on 127.0.0.1 started by tests/helpers/sshd.sh (own host key,
 * own authorized key, no PAM), with HOME a temp dir so ~/.ssh is the
 * test's own:
 *  - direct-tcpip to a plain tcp:127.0.0.1:0 listener: frames both ways at
 *    once (two threads on the SSH side), small and 1 MiB frames, contents
 *    and counts checked, channel_wait() seeing data libssh2 buffered;
 *  - exec mode against `cat` (echo back, EOF after SHUT_WR), and a command
 *    that does not exist (its exit status and stderr in the error);
 *  - info (kind, version, cipher, the host key fingerprint as ssh-keygen
 *    prints it), timeout, shutdown cancelling a blocked reader;
 *  - refusals with their words: unknown host key (and --ssh-accept-new
 *    recording it, 0600, a second connection without the flag), changed
 *    host key (naming the known_hosts line), a key the server does not
 *    accept, an encrypted key, no sshd there, nothing at the agent port.
 * Exits 77 (SKIPPED) when sshd is missing or cannot run here.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/helpers/expect_err.h"

#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

static char err[512];
static char dir[64];		/* sshd's directory; HOME is dir/home */
static char known[160];		/* dir/home/.ssh/known_hosts */
static unsigned sshd_port;
static char ssh_uri[96];	/* ssh://root@127.0.0.1:PORT */
static char fingerprint[300];	/* "ssh-ed25519 SHA256:..." of the host key */


static void run(const char *fmt, ...) PRINTF_FMT(1, 2);
static void run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* ---- frames: STATE frames whose bytes derive from (seed, seq) ----------------- */

static size_t frame_len_of(unsigned seq)
{
	static const size_t sizes[] = { 1, 100, 4096, 70000, WIRE_MAX_STATE, 300, 65536 };

	return sizes[seq % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void fill(uint8_t *p, size_t n, uint32_t seed, unsigned seq)
{
	uint32_t x = seed * 2654435761u + seq * 40503u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static size_t make_frame(uint8_t *f, uint32_t seed, unsigned seq)
{
	static __thread uint8_t sec[WIRE_MAX_STATE];
	size_t n = frame_len_of(seq);
	ssize_t len;

	fill(sec, n, seed, seq);
	len = frame_put_state(f, CHANNEL_FRAME_MAX, sec, n);
	assert_true(len > 0);
	return (size_t)len;
}

static void check_frame(const uint8_t *buf, ssize_t total, const struct frame_hdr *h,
			uint32_t seed, unsigned seq)
{
	static __thread uint8_t want[WIRE_MAX_STATE];
	size_t n = frame_len_of(seq);

	assert_true(total > 0);
	assert_int_equal(h->type, WIRE_F_STATE);
	assert_int_equal(h->len, n);
	fill(want, n, seed, seq);
	assert_memory_equal(buf + WIRE_HDR_BYTES, want, n);
}

struct pump {
	struct channel *ch;
	uint32_t seed;
	unsigned frames;
	bool use_wait;		/* read after channel_wait() */
	bool shut_wr;		/* send: SHUT_WR after the last frame */
	int ret;
	char msg[256];
	unsigned done;
};

static void *send_thread(void *arg)
{
	struct pump *p = arg;
	uint8_t *f = malloc(CHANNEL_FRAME_MAX);

	p->ret = 0;
	for (unsigned i = 0; i < p->frames && p->ret == 0; i++) {
		size_t n = make_frame(f, p->seed, i);

		p->ret = channel_write(p->ch, f, n, p->msg, sizeof(p->msg));
		if (p->ret == 0)
			p->done++;
	}
	if (p->ret == 0)
		p->ret = channel_flush(p->ch, p->msg, sizeof(p->msg));
	if (p->ret == 0 && p->shut_wr)
		p->ret = channel_shutdown(p->ch, SHUT_WR);
	free(f);
	return NULL;
}

static void *recv_thread(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = malloc(CHANNEL_FRAME_MAX);
	struct frame_hdr h;

	p->ret = 0;
	for (unsigned i = 0; i < p->frames; i++) {
		ssize_t n;

		if (p->use_wait) {
			int w = channel_wait(p->ch, 20000);

			if (w != 1) {
				p->ret = w < 0 ? w : -ETIMEDOUT;
				snprintf(p->msg, sizeof(p->msg), "channel_wait gave %d", w);
				break;
			}
		}
		n = channel_read_frame(p->ch, buf, CHANNEL_FRAME_MAX, &h, p->msg, sizeof(p->msg));
		if (n < 0) {
			p->ret = (int)n;
			break;
		}
		check_frame(buf, n, &h, p->seed, i);
		p->done++;
	}
	free(buf);
	return NULL;
}

/* ---- setup ------------------------------------------------------------------------ */

static void opts_default(struct channel_opts *o, uint16_t agent_port)
{
	memset(o, 0, sizeof(*o));
	o->ssh_agent_port = agent_port;
}

static int group_setup(void **state)
{
	char cmd[256], line[256];
	FILE *f;
	int st;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kvmig-test-ssh-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "tests/helpers/sshd.sh start %s 2>%s/start.err", dir, dir);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	st = pclose(f);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		snprintf(cmd, sizeof(cmd), "cat %s/start.err; rm -rf %s", dir, dir);
		printf("SKIPPED: test_channel_ssh: ");
		fflush(stdout);
		(void)!system(cmd);
		exit(77);
	}
	if (st != 0 || sscanf(line, "%u", &sshd_port) != 1) {
		snprintf(cmd, sizeof(cmd), "cat %s/start.err >&2", dir);
		(void)!system(cmd);
		return -1;
	}
	snprintf(line, sizeof(line), "%s/home", dir);
	setenv("HOME", line, 1);
	unsetenv("SSH_AUTH_SOCK");
	snprintf(known, sizeof(known), "%s/home/.ssh/known_hosts", dir);
	snprintf(ssh_uri, sizeof(ssh_uri), "ssh://root@127.0.0.1:%u", sshd_port);
	/* the fingerprint as OpenSSH prints it */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -lf %s/host_ed25519.pub | awk '{print $2}'", dir);
	f = popen(cmd, "r");
	if (!f || !fgets(line, sizeof(line), f))
		return -1;
	pclose(f);
	line[strcspn(line, "\n")] = '\0';
	snprintf(fingerprint, sizeof(fingerprint), "ssh-ed25519 %s", line);
	/* an encrypted key, for the refusal that names it */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t ed25519 -N secret -f %s/enc_ed25519", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "tests/helpers/sshd.sh stop %s; rm -rf %s", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A listener standing in for the destination agent. */
static struct channel_listener *agent_listener(uint16_t *port)
{
	struct channel_listener *l;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
	*port = channel_listener_port(l);
	return l;
}

/* Connect with the host key already recorded. */
static struct channel *connect_ok(const struct channel_opts *o)
{
	struct channel_opts oo = *o;
	struct channel *ch;

	oo.ssh_accept_new = true;
	if (channel_connect_opts(ssh_uri, &oo, 10000, &ch, err, sizeof(err)) != 0)
		fail_msg("connect %s: %s", ssh_uri, err);
	return ch;
}

/* A port nobody listens on. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s);
	return ntohs(a.sin_port);
}

/* ---- tests ------------------------------------------------------------------------ */

/* First: the unknown key, then --ssh-accept-new records it; later tests rely on it. */
static void test_ssh_host_key_unknown_then_accepted(void **state)
{
	struct channel_listener *l;
	struct channel_opts o;
	struct channel_info info;
	struct channel *ch, *peer;
	char want[700], line[512];
	struct stat st;
	uint16_t port;
	FILE *f;

	(void)state;
	l = agent_listener(&port);
	opts_default(&o, port);
	snprintf(want, sizeof(want), "unknown SSH host key for [127.0.0.1]:%u (%s); connect once "
		 "with ssh, or pass --ssh-accept-new", sshd_port, fingerprint);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -EKEYREJECTED,
		   want);
	assert_null(ch);
	assert_int_equal(stat(known, &st), -1);

	o.ssh_accept_new = true;
	assert_int_equal(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), 0);
	assert_int_equal(channel_accept(l, 10000, &peer, err, sizeof(err)), 0);
	assert_int_equal(stat(known, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(known, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	snprintf(want, sizeof(want), "[127.0.0.1]:%u ssh-ed25519 AAAA", sshd_port);
	assert_memory_equal(line, want, strlen(want));

	channel_get_info(ch, &info);
	assert_string_equal(info.kind, "ssh");
	assert_string_equal(info.version, "SSH-2.0");
	assert_string_equal(info.peer, fingerprint);
	assert_true(strlen(info.cipher) > 0);
	printf("   negotiated cipher: %s\n", info.cipher);
	channel_close(ch);
	channel_close(peer);

	/* recorded: the flag is no longer needed */
	o.ssh_accept_new = false;
	assert_int_equal(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), 0);
	channel_close(ch);
	channel_listener_close(l);
}

static void test_ssh_frames_both_ways(void **state)
{
	struct pump out = { .seed = 1, .frames = 40 }, in = { .seed = 2, .frames = 40 };
	struct pump pout = { .seed = 2, .frames = 40 }, pin = { .seed = 1, .frames = 40 };
	pthread_t t[4];
	struct channel_listener *l;
	struct channel_stats st;
	struct channel_opts o;
	struct channel *ch, *peer;
	uint16_t port;

	(void)state;
	l = agent_listener(&port);
	opts_default(&o, port);
	ch = connect_ok(&o);
	assert_int_equal(channel_accept(l, 10000, &peer, err, sizeof(err)), 0);
	out.ch = in.ch = ch;
	pout.ch = pin.ch = peer;
	in.use_wait = true;	/* data libssh2 buffered while sending must show */
	pthread_create(&t[0], NULL, send_thread, &out);
	pthread_create(&t[1], NULL, recv_thread, &in);
	pthread_create(&t[2], NULL, send_thread, &pout);
	pthread_create(&t[3], NULL, recv_thread, &pin);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (out.ret || in.ret || pout.ret || pin.ret)
		fail_msg("ssh send %d (%s), ssh recv %d (%s), tcp send %d (%s), tcp recv %d (%s)",
			 out.ret, out.msg, in.ret, in.msg, pout.ret, pout.msg, pin.ret, pin.msg);
	assert_int_equal(out.done, 40);
	assert_int_equal(in.done, 40);
	assert_int_equal(pin.done, 40);
	channel_get_stats(ch, &st);
	assert_int_equal(st.frames_sent, 40);
	assert_int_equal(st.frames_received, 40);

	/* the end: EOF from the SSH side reads as a clean end at the peer */
	assert_int_equal(channel_shutdown(ch, SHUT_WR), 0);
	{
		uint8_t buf[64];
		struct frame_hdr h;

		expect_err(channel_read_frame(peer, buf, sizeof(buf), &h, err, sizeof(err)),
			   -ENODATA, "closed");
	}
	channel_close(peer);
	channel_close(ch);
	channel_listener_close(l);
}

static void test_ssh_exec_cat(void **state)
{
	struct pump out = { .seed = 5, .frames = 24, .shut_wr = true };
	struct pump in = { .seed = 5, .frames = 24 };
	struct channel_opts o;
	struct channel_info info;
	struct channel *ch;
	struct frame_hdr h;
	uint8_t buf[64];
	pthread_t t[2];

	(void)state;
	opts_default(&o, 0);
	o.ssh_exec = "cat";
	ch = connect_ok(&o);
	channel_get_info(ch, &info);
	assert_string_equal(info.kind, "ssh");
	out.ch = in.ch = ch;
	pthread_create(&t[0], NULL, send_thread, &out);
	pthread_create(&t[1], NULL, recv_thread, &in);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	if (out.ret || in.ret)
		fail_msg("send %d (%s), recv %d (%s)", out.ret, out.msg, in.ret, in.msg);
	assert_int_equal(in.done, 24);
	/* cat saw our EOF and ended: the stream ends cleanly */
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
		   "the remote command 'cat' exited with status 0");
	channel_close(ch);
}

static void test_ssh_exec_missing_command(void **state)
{
	struct channel_opts o;
	struct channel *ch;
	struct frame_hdr h;
	uint8_t buf[64];

	(void)state;
	opts_default(&o, 0);
	o.ssh_exec = "kvmigd-not-installed --incoming stdio";
	ch = connect_ok(&o);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
		   "the remote command 'kvmigd-not-installed --incoming stdio' exited with "
		   "status 127");
	assert_non_null(strstr(err, "not found"));
	channel_close(ch);
}

struct blocked {
	struct channel *ch;
	int ret;
};

static void *blocked_reader(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[64];
	struct frame_hdr h;
	char msg[200];

	b->ret = (int)channel_read_frame(b->ch, buf, sizeof(buf), &h, msg, sizeof(msg));
	return NULL;
}

static void test_ssh_timeout_and_shutdown(void **state)
{
	struct channel_listener *l;
	struct channel_opts o;
	struct channel *ch, *peer;
	struct blocked b = { .ret = 1 };
	struct frame_hdr h;
	uint8_t buf[64];
	pthread_t t;
	uint16_t port;

	(void)state;
	l = agent_listener(&port);
	opts_default(&o, port);
	ch = connect_ok(&o);
	assert_int_equal(channel_accept(l, 10000, &peer, err, sizeof(err)), 0);
	channel_set_timeout(ch, 300);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "no frame from the peer for 300 ms");
	assert_int_equal(channel_wait(ch, 0), 0);
	assert_int_equal(channel_wait(ch, 100), 0);

	channel_set_timeout(ch, 60000);
	b.ch = ch;
	pthread_create(&t, NULL, blocked_reader, &b);
	usleep(200 * 1000);	/* let it block; the result holds either way */
	assert_int_equal(channel_shutdown(ch, SHUT_RDWR), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	channel_close(ch);
	channel_close(peer);
	channel_listener_close(l);
}

static void test_ssh_changed_host_key(void **state)
{
	struct channel_opts o;
	struct channel *ch;
	char kh[128], want[700];

	(void)state;
	snprintf(kh, sizeof(kh), "%s/changed_known_hosts", dir);
	/* line 1 a comment, line 2 another host, line 3 the same name with another key */
	run("{ echo '# test'; echo \"10.9.9.9 $(cut -d' ' -f1,2 %s/host_ed25519.pub)\"; "
	    "echo \"[127.0.0.1]:%u $(cut -d' ' -f1,2 %s/host2_ed25519.pub)\"; } > %s",
	    dir, sshd_port, dir, kh);
	opts_default(&o, 1);
	o.ssh_known_hosts = kh;
	o.ssh_accept_new = true;	/* never for a changed key */
	snprintf(want, sizeof(want), "the SSH host key of [127.0.0.1]:%u has CHANGED (now %s); "
		 "refusing: someone may be intercepting the connection, or the host was "
		 "reinstalled; remove the old key from %s line 3 if that is expected",
		 sshd_port, fingerprint, kh);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -EKEYREJECTED,
		   want);
	assert_null(ch);

	/* a hashed entry with the right key is a match (as ssh-keygen -H writes it) */
	run("echo \"[127.0.0.1]:%u $(cut -d' ' -f1,2 %s/host_ed25519.pub)\" > %s && "
	    "ssh-keygen -q -H -f %s >/dev/null 2>&1 && ! grep -q 127.0.0.1 %s", sshd_port, dir, kh,
	    kh, kh);
	o.ssh_accept_new = false;
	o.ssh_exec = "true";
	assert_int_equal(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), 0);
	channel_close(ch);
}

static void test_ssh_wrong_user_key(void **state)
{
	struct channel_opts o;
	struct channel *ch;
	char key[128], want[300];

	(void)state;
	snprintf(key, sizeof(key), "%s/other_ed25519", dir);
	opts_default(&o, 1);
	o.ssh_identity = key;
	snprintf(want, sizeof(want), "SSH authentication as root@[127.0.0.1]:%u failed: the server "
		 "accepted none of: %s; no ssh-agent (SSH_AUTH_SOCK is not set)", sshd_port, key);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -EACCES, want);
	assert_null(ch);

	snprintf(key, sizeof(key), "%s/enc_ed25519", dir);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -EACCES,
		   "enc_ed25519 is encrypted (kvmig asks no passphrase: add it to your ssh-agent)");

	snprintf(key, sizeof(key), "%s/no-such-key", dir);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -EACCES,
		   "no-such-key: No such file or directory");
}

static void test_ssh_no_sshd(void **state)
{
	struct channel_opts o;
	struct channel *ch;
	char uri[96], want[200];
	uint16_t port = free_port();

	(void)state;
	opts_default(&o, 1);
	snprintf(uri, sizeof(uri), "ssh://root@127.0.0.1:%u", port);
	snprintf(want, sizeof(want), "no SSH server at 127.0.0.1 port %u: connection refused", port);
	expect_err(channel_connect_opts(uri, &o, 10000, &ch, err, sizeof(err)), -ECONNREFUSED,
		   want);
	assert_null(ch);
}

static void test_ssh_nothing_at_agent_port(void **state)
{
	struct channel_opts o;
	struct channel *ch;
	char want[200];
	uint16_t port = free_port();

	(void)state;
	opts_default(&o, port);
	snprintf(want, sizeof(want), "could not connect to 127.0.0.1:%u there", port);
	expect_err(channel_connect_opts(ssh_uri, &o, 10000, &ch, err, sizeof(err)), -ECONNREFUSED,
		   want);
	assert_non_null(strstr(err, "no destination agent listens on port"));
	assert_null(ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ssh_host_key_unknown_then_accepted),
		cmocka_unit_test(test_ssh_frames_both_ways),
		cmocka_unit_test(test_ssh_exec_cat),
		cmocka_unit_test(test_ssh_exec_missing_command),
		cmocka_unit_test(test_ssh_timeout_and_shutdown),
		cmocka_unit_test(test_ssh_changed_host_key),
		cmocka_unit_test(test_ssh_wrong_user_key),
		cmocka_unit_test(test_ssh_no_sshd),
		cmocka_unit_test(test_ssh_nothing_at_agent_port),
	};

	signal(SIGPIPE, SIG_DFL);	/* a SIGPIPE would kill the test: none may come */
	alarm(240);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
