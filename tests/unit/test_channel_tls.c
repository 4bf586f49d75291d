/* SPDX-License-Identifier: MIT */
/*
 * test_channel_tls.c - the TLS transport (protocol/channel_tls.c) over
 * loopback with certificates made by tests/helpers/mkcerts.sh: frames
 * both ways at once from two threads per side; what channel_get_info()
 * says; every refusal with its words, on each side that can know them
 * (expired, unknown CA, name mismatch, no client certificate, plain TCP
 * to a TLS listener and TLS to a plain one); missing credential files; a
 * stalled handshake timing out; shutdown waking a blocked read; EOF; and
 * PSK mode (right key, wrong key, unknown identity, expired key, a
 * certificate client at a PSK-only listener).
 * Skips when the openssl CLI is missing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

static char certs[128];	/* mkcerts.sh's DIR */
static char dirs[6][200];
enum { GOOD, OTHERCA, EXPIRED, WRONGNAME, NOCLIENT, NONE };

static const char *dir(int which)
{
	return which == NONE ? NULL : dirs[which];
}

static void expect_in(const char *what, const char *msg, const char *substr, const char *file,
		      int line)
{
	if (!strstr(msg, substr)) {
		print_error("%s: \"%s\" lacks \"%s\"\n", what, msg, substr);
		_fail(file, line);
	}
}

#define expect_msg(what, msg, substr) expect_in((what), (msg), (substr), __FILE__, __LINE__)

/* ---- a server: accept one connection and handshake it, in a thread ------------------ */

struct server {
	struct channel_listener *l;
	char uri[200];
	pthread_t t;
	struct channel *ch;
	int ret;
	char err[512];
};

static void *server_main(void *arg)
{
	struct server *s = arg;

	s->ret = channel_accept(s->l, 5000, &s->ch, s->err, sizeof(s->err));
	if (s->ret == 0)
		s->ret = channel_handshake(s->ch, s->err, sizeof(s->err));
	return NULL;
}

static void server_start(struct server *s, const char *spec, const struct channel_opts *o)
{
	char err[512];

	memset(s, 0, sizeof(*s));
	if (channel_listen_opts(spec, o, &s->l, err, sizeof(err))) {
		print_error("listen %s: %s\n", spec, err);
		fail();
	}
	assert_true(channel_listener_uri(s->l, s->uri, sizeof(s->uri)) > 0);
	assert_int_equal(pthread_create(&s->t, NULL, server_main, s), 0);
}

static void server_tls(struct server *s, int which)
{
	struct channel_opts o = { .tls_dir = dir(which) };

	server_start(s, "tls:127.0.0.1:0", &o);
}

static void server_join(struct server *s)
{
	pthread_join(s->t, NULL);
}

static void server_end(struct server *s)
{
	channel_close(s->ch);
	channel_listener_close(s->l);
}

/* Connect with the client credentials of which (and hostname) to s. */
static int client(struct server *s, int which, const char *hostname, const char *uri,
		  struct channel **ch, char *err, size_t errlen)
{
	struct channel_opts o = { .tls_dir = dir(which), .tls_hostname = hostname };

	return channel_connect_opts(uri ? uri : s->uri, &o, 5000, ch, err, errlen);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	static const char *names[] = { "good", "otherca", "expired", "wrongname", "noclient" };
	const char *src = getenv("KVMIG_SRC");
	char cmd[512];

	(void)state;
	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIPPED: the openssl CLI is not installed (tests/helpers/mkcerts.sh)\n");
		exit(77);
	}
	snprintf(certs, sizeof(certs), "/tmp/kvmig-tls-XXXXXX");
	assert_non_null(mkdtemp(certs));
	snprintf(cmd, sizeof(cmd), "sh %s/tests/helpers/mkcerts.sh %s", src ? src : ".", certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed\n", cmd);
		return -1;
	}
	for (int i = 0; i < 5; i++)
		snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", certs, names[i]);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", certs);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- frames both ways ------------------------------------------------------------------------- */

#define NFRAMES 60
#define BIG (1000u << 10)	/* > CHANNEL_COPY_MAX: sent without a copy */

static size_t frame_payload(int i)
{
	return i % 3 == 2 ? BIG + (size_t)i : 1 + (size_t)i * 97;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(seed * 131 + k * 7 + (k >> 12));
}

struct flow {
	struct channel *ch;
	uint32_t seed;
	uint64_t bytes;		/* payload bytes moved */
	int ret;
	char err[256];
};

static void *writer(void *arg)
{
	struct flow *f = arg;
	uint8_t *buf = malloc(CHANNEL_FRAME_MAX), *body = malloc(BIG + NFRAMES);

	for (int i = 0; i < NFRAMES && !f->ret; i++) {
		size_t len = frame_payload(i);
		ssize_t n;

		fill(body, len, f->seed + (uint32_t)i);
		n = frame_put_state(buf, CHANNEL_FRAME_MAX, body, len);
		f->ret = n < 0 ? (int)n : channel_write(f->ch, buf, (size_t)n, f->err, sizeof(f->err));
		f->bytes += len;
	}
	if (!f->ret)
		f->ret = channel_flush(f->ch, f->err, sizeof(f->err));
	free(buf);
	free(body);
	return NULL;
}

static void *reader(void *arg)
{
	struct flow *f = arg;
	uint8_t *buf = malloc(CHANNEL_FRAME_MAX), *want = malloc(BIG + NFRAMES);

	for (int i = 0; i < NFRAMES && !f->ret; i++) {
		struct frame_hdr h;
		ssize_t n = channel_read_frame(f->ch, buf, CHANNEL_FRAME_MAX, &h, f->err,
					       sizeof(f->err));
		size_t len = frame_payload(i);

		if (n < 0) {
			f->ret = (int)n;
			break;
		}
		fill(want, len, f->seed + (uint32_t)i);
		if (h.type != WIRE_F_STATE || h.len != len ||
		    memcmp(buf + WIRE_HDR_BYTES, want, len)) {
			snprintf(f->err, sizeof(f->err), "frame %d differs", i);
			f->ret = -EBADMSG;
		}
		f->bytes += len;
	}
	free(buf);
	free(want);
	return NULL;
}

static void test_tls_frames_both_ways(void **state)
{
	struct flow fw[4] = { { .seed = 1 }, { .seed = 2 }, { .seed = 2 }, { .seed = 1 } };
	struct channel_stats a, b;
	struct server s;
	struct channel *c;
	pthread_t t[4];
	char err[512];

	(void)state;
	server_tls(&s, GOOD);
	if (client(&s, GOOD, NULL, NULL, &c, err, sizeof(err))) {
		print_error("connect: %s\n", err);
		fail();
	}
	server_join(&s);
	assert_int_equal(s.ret, 0);
	/* client writes seed 1 and reads seed 2; the server the other way round */
	fw[0].ch = c;
	fw[1].ch = c;
	fw[2].ch = s.ch;
	fw[3].ch = s.ch;
	assert_int_equal(pthread_create(&t[0], NULL, writer, &fw[0]), 0);
	assert_int_equal(pthread_create(&t[1], NULL, reader, &fw[1]), 0);
	assert_int_equal(pthread_create(&t[2], NULL, writer, &fw[2]), 0);
	assert_int_equal(pthread_create(&t[3], NULL, reader, &fw[3]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		if (fw[i].ret)
			print_error("flow %d: %d %s\n", i, fw[i].ret, fw[i].err);
		assert_int_equal(fw[i].ret, 0);
	}
	assert_int_equal(fw[0].bytes, fw[3].bytes);
	assert_int_equal(fw[2].bytes, fw[1].bytes);
	assert_true(fw[0].bytes > 19 * (uint64_t)BIG);
	channel_get_stats(c, &a);
	channel_get_stats(s.ch, &b);
	assert_int_equal(a.bytes_sent, b.bytes_received);
	assert_int_equal(b.bytes_sent, a.bytes_received);
	assert_int_equal(a.frames_sent, NFRAMES);
	assert_int_equal(b.frames_received, NFRAMES);

	/* a clean end: SHUT_WR sends close_notify, the peer reads -ENODATA */
	assert_int_equal(channel_shutdown(c, SHUT_WR), 0);
	{
		uint8_t buf[64];
		struct frame_hdr h;

		assert_int_equal(channel_read_frame(s.ch, buf, sizeof(buf), &h, err, sizeof(err)),
				 -ENODATA);
	}
	channel_close(c);
	server_end(&s);
}

static void test_tls_info(void **state)
{
	struct channel_info ci, si;
	struct server s;
	struct channel *c;
	char err[512];

	(void)state;
	server_tls(&s, GOOD);
	assert_int_equal(client(&s, GOOD, NULL, NULL, &c, err, sizeof(err)), 0);
	server_join(&s);
	assert_int_equal(s.ret, 0);
	channel_get_info(c, &ci);
	channel_get_info(s.ch, &si);
	assert_string_equal(ci.kind, "tls");
	assert_string_equal(ci.version, "TLSv1.3");
	assert_string_equal(si.version, "TLSv1.3");
	assert_true(ci.cipher[0] != '\0');
	assert_string_equal(ci.cipher, si.cipher);
	assert_string_equal(ci.peer, "server");
	assert_string_equal(si.peer, "client");
	assert_true(ci.ktls == si.ktls);
	/* this machine's kernel has no TLS (shared/test-recipes.md) */
	if (access("/proc/net/tls_stat", F_OK) != 0)
		assert_false(ci.ktls);
	assert_string_equal(channel_transport(c), "tls");
	channel_close(c);
	server_end(&s);

	/* tls_ciphers picks the suite */
	{
		struct channel_opts so = { .tls_dir = dir(GOOD),
					   .tls_ciphers = "TLS_CHACHA20_POLY1305_SHA256" };
		struct channel_opts co = { .tls_dir = dir(GOOD) };

		server_start(&s, "tls:127.0.0.1:0", &so);
		assert_int_equal(channel_connect_opts(s.uri, &co, 5000, &c, err, sizeof(err)), 0);
		server_join(&s);
		channel_get_info(c, &ci);
		assert_string_equal(ci.cipher, "TLS_CHACHA20_POLY1305_SHA256");
		channel_close(c);
		server_end(&s);
	}
}

/* ---- refusals ------------------------------------------------------------------------------------ */

/* Connect and expect both sides to refuse, with these words. */
static void refused(int srv, int cli, const char *hostname, int cret, const char *cwords,
		    const char *swords)
{
	struct server s;
	struct channel *c = NULL;
	char err[512] = "";
	int ret;

	server_tls(&s, srv);
	ret = client(&s, cli, hostname, NULL, &c, err, sizeof(err));
	server_join(&s);
	if (ret != cret || !strstr(err, cwords) || s.ret >= 0 || !strstr(s.err, swords)) {
		print_error("client %d \"%s\" (want %d \"%s\"); server %d \"%s\" (want \"%s\")\n",
			    ret, err, cret, cwords, s.ret, s.err, swords);
		fail();
	}
	assert_null(c);
	server_end(&s);
}

static void test_tls_refusals(void **state)
{
	(void)state;
	/* the client's CA did not sign the server's certificate, and the other way round */
	refused(GOOD, OTHERCA, NULL, -EACCES, "unknown CA: the server's certificate (CN=server)",
		"the client refused our certificate");
	refused(GOOD, OTHERCA, NULL, -EACCES, "otherca/ca-cert.pem", "unknown CA");
	refused(OTHERCA, GOOD, NULL, -EACCES, "unknown CA", "unknown CA");
	/* expired: the server's, then the client's */
	refused(EXPIRED, GOOD, NULL, -EACCES,
		"certificate expired: the server's certificate (CN=server) expired Jan  2",
		"the client refused our certificate");
	refused(EXPIRED, GOOD, NULL, -EACCES, "certificate expired", "certificate expired");
	refused(GOOD, EXPIRED, NULL, -EACCES,
		"the server refused our certificate", "certificate expired: the client's");
	refused(GOOD, EXPIRED, NULL, -EACCES, "certificate expired (TLS alert)",
		"certificate expired");
	/* the name dialled is not in the certificate */
	refused(WRONGNAME, GOOD, NULL, -EACCES,
		"name mismatch: the server's certificate (CN=server) is not for '127.0.0.1'; "
		"it has DNS:wrong.example", "the client refused our certificate");
	refused(GOOD, GOOD, "other.example", -EACCES,
		"name mismatch: the server's certificate (CN=server) is not for 'other.example'; "
		"it has DNS:localhost, IP:127.0.0.1, IP:10.77.0.1, IP:10.77.0.2",
		"the client refused");
	/* no client certificate */
	refused(GOOD, NOCLIENT, NULL, -EACCES,
		"no client certificate: the server requires one",
		"no client certificate: the client sent none");
}

static void test_tls_names_that_match(void **state)
{
	struct server s;
	struct channel *c;
	char err[512], uri[200];

	(void)state;
	/* tls_hostname localhost against DNS:localhost; the URI's host by name too */
	server_tls(&s, GOOD);
	assert_int_equal(client(&s, GOOD, "localhost", NULL, &c, err, sizeof(err)), 0);
	server_join(&s);
	assert_int_equal(s.ret, 0);
	channel_close(c);
	snprintf(uri, sizeof(uri), "tls://localhost:%u", channel_listener_port(s.l));
	server_end(&s);

	server_tls(&s, GOOD);
	snprintf(uri, sizeof(uri), "tls://localhost:%u", channel_listener_port(s.l));
	if (client(&s, GOOD, NULL, uri, &c, err, sizeof(err))) {
		print_error("%s: %s\n", uri, err);
		fail();
	}
	server_join(&s);
	channel_close(c);
	server_end(&s);
}

static void test_tls_missing_files(void **state)
{
	struct channel_listener *l = NULL;
	struct channel *c = NULL;
	struct channel_opts o = { .tls_dir = dir(NOCLIENT) };
	char err[512], path[300];
	int ret;

	(void)state;
	/* a server without server-cert.pem: said at listen time */
	ret = channel_listen_opts("tls:127.0.0.1:0", &o, &l, err, sizeof(err));
	assert_int_equal(ret, -ENOENT);
	snprintf(path, sizeof(path), "cannot read %s/server-cert.pem", dir(NOCLIENT));
	expect_msg("listen", err, path);
	assert_null(l);

	/* no directory at all */
	o.tls_dir = "/nonexistent-kvmig";
	ret = channel_connect_opts("tls://127.0.0.1:1", &o, 2000, &c, err, sizeof(err));
	assert_int_equal(ret, -ENOENT);
	expect_msg("connect", err, "cannot read /nonexistent-kvmig/ca-cert.pem");
	o.tls_dir = NULL;
	ret = channel_connect_opts("tls://127.0.0.1:1", &o, 2000, &c, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	expect_msg("connect", err, "no TLS credentials directory");
	assert_null(c);

	/* a key without its certificate */
	{
		char d[300], cmd[1200];

		snprintf(d, sizeof(d), "%s/halfclient", certs);
		snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s/ca-cert.pem %s/client-key.pem %s/",
			 d, dir(GOOD), dir(GOOD), d);
		assert_int_equal(system(cmd), 0);
		o.tls_dir = d;
		ret = channel_connect_opts("tls://127.0.0.1:1", &o, 2000, &c, err, sizeof(err));
		assert_int_equal(ret, -ENOENT);
		expect_msg("connect", err, "client-cert.pem");
	}
}

/* A plain TCP server: read the first bytes, answer with an ERROR frame, close. */
struct plain {
	struct channel_listener *l;
	ssize_t got;
};

static void *plain_main(void *arg)
{
	struct plain *p = arg;
	struct channel *ch;
	uint8_t buf[512], f[256];
	char err[256];
	ssize_t n;

	if (channel_accept(p->l, 5000, &ch, err, sizeof(err)))
		return NULL;
	p->got = read(channel_fd(ch), buf, sizeof(buf));
	n = frame_put_error(f, sizeof(f), 1, "bad frame");
	if (n > 0 && write(channel_fd(ch), f, (size_t)n) != n)
		p->got = -1;
	channel_close(ch);
	return NULL;
}

static void test_tls_plain_peers(void **state)
{
	struct server s;
	struct channel *c = NULL;
	char err[512], uri[200];
	int ret;

	(void)state;
	/* plain TCP to a TLS listener: the listener says so */
	server_tls(&s, GOOD);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", channel_listener_port(s.l));
	assert_int_equal(channel_connect(uri, 5000, &c, err, sizeof(err)), 0);
	{
		uint8_t f[64];
		ssize_t n = frame_put_go(f, sizeof(f));

		assert_true(n > 0);
		assert_int_equal(channel_write(c, f, (size_t)n, err, sizeof(err)), 0);
		assert_int_equal(channel_flush(c, err, sizeof(err)), 0);
	}
	server_join(&s);
	assert_int_equal(s.ret, -EPROTO);
	expect_msg("server", s.err, "the peer does not speak TLS (plain TCP to a TLS listener?)");
	channel_close(c);
	server_end(&s);

	/* TLS to a plain TCP listener that answers with a frame (an agent's ERROR) */
	{
		struct plain p = { 0 };
		struct channel_opts o = { .tls_dir = dir(GOOD) };
		pthread_t t;

		assert_int_equal(channel_listen("tcp:127.0.0.1:0", &p.l, err, sizeof(err)), 0);
		snprintf(uri, sizeof(uri), "tls://127.0.0.1:%u", channel_listener_port(p.l));
		assert_int_equal(pthread_create(&t, NULL, plain_main, &p), 0);
		ret = channel_connect_opts(uri, &o, 5000, &c, err, sizeof(err));
		pthread_join(t, NULL);
		assert_int_equal(ret, -EPROTO);
		expect_msg("client", err,
			   "the peer does not speak TLS (a tls:// connection to a plain TCP listener?)");
		assert_true(p.got > 0);
		channel_listener_close(p.l);
	}
}

static void test_tls_stalled_handshake(void **state)
{
	struct channel_listener *l;
	struct channel *ch, *c;
	struct channel_opts o = { .tls_dir = dir(GOOD) };
	char err[512], uri[200];
	uint64_t t0, ms;

	(void)state;
	assert_int_equal(channel_listen_opts("tls:127.0.0.1:0", &o, &l, err, sizeof(err)), 0);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", channel_listener_port(l));
	assert_int_equal(channel_connect(uri, 5000, &c, err, sizeof(err)), 0);
	/* accept never handshakes: it returns at once */
	t0 = clock_now_ms();
	assert_int_equal(channel_accept(l, 5000, &ch, err, sizeof(err)), 0);
	assert_true(clock_now_ms() - t0 < 1000);
	channel_set_timeout(ch, 300);
	t0 = clock_now_ms();
	assert_int_equal(channel_handshake(ch, err, sizeof(err)), -ETIMEDOUT);
	ms = clock_now_ms() - t0;
	expect_msg("handshake", err, "no TLS handshake from the client within 300 ms");
	assert_true(ms >= 290 && ms < 2000);
	/* later calls repeat it */
	assert_int_equal(channel_handshake(ch, err, sizeof(err)), -ETIMEDOUT);
	channel_close(ch);
	channel_close(c);

	/* a client whose server never answers: connect times out within its timeout */
	{
		struct channel_listener *tl;

		assert_int_equal(channel_listen("tcp:127.0.0.1:0", &tl, err, sizeof(err)), 0);
		snprintf(uri, sizeof(uri), "tls://127.0.0.1:%u", channel_listener_port(tl));
		t0 = clock_now_ms();
		assert_int_equal(channel_connect_opts(uri, &o, 400, &c, err, sizeof(err)),
				 -ETIMEDOUT);
		ms = clock_now_ms() - t0;
		expect_msg("connect", err, "no TLS handshake from the server within");
		assert_true(ms >= 390 && ms < 2000);
		channel_listener_close(tl);
	}
	channel_listener_close(l);
}

struct blocked {
	struct channel *ch;
	int ret;
	char err[256];
};

static void *blocked_read(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[64];
	struct frame_hdr h;

	b->ret = (int)channel_read_frame(b->ch, buf, sizeof(buf), &h, b->err, sizeof(b->err));
	return NULL;
}

static void test_tls_shutdown_wakes_reader(void **state)
{
	struct blocked b = { 0 };
	struct server s;
	struct channel *c;
	char err[512];
	pthread_t t;

	(void)state;
	server_tls(&s, GOOD);
	assert_int_equal(client(&s, GOOD, NULL, NULL, &c, err, sizeof(err)), 0);
	server_join(&s);
	b.ch = c;
	channel_set_timeout(c, CHANNEL_NO_TIMEOUT);
	assert_int_equal(pthread_create(&t, NULL, blocked_read, &b), 0);
	/* the reader is blocked in poll (no timeout): only shutdown ends it */
	assert_int_equal(channel_wait(c, 100), 0);
	assert_int_equal(channel_shutdown(c, SHUT_RDWR), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	expect_msg("read", b.err, "shut down");
	channel_close(c);

	/* the shutdown sent close_notify: the server sees a clean end */
	{
		uint8_t buf[64];
		struct frame_hdr h;

		assert_int_equal(channel_read_frame(s.ch, buf, sizeof(buf), &h, err, sizeof(err)),
				 -ENODATA);
	}
	server_end(&s);
}

static void test_tls_read_timeout(void **state)
{
	struct server s;
	struct channel *c;
	char err[512];
	uint8_t buf[64];
	struct frame_hdr h;

	(void)state;
	server_tls(&s, GOOD);
	assert_int_equal(client(&s, GOOD, NULL, NULL, &c, err, sizeof(err)), 0);
	server_join(&s);
	channel_set_timeout(s.ch, 200);
	assert_int_equal(channel_read_frame(s.ch, buf, sizeof(buf), &h, err, sizeof(err)),
			 -ETIMEDOUT);
	/* and it may read again: a frame that comes later arrives */
	{
		uint8_t f[64];
		ssize_t n = frame_put_go(f, sizeof(f));

		assert_int_equal(channel_write(c, f, (size_t)n, err, sizeof(err)), 0);
		assert_int_equal(channel_flush(c, err, sizeof(err)), 0);
		assert_int_equal(channel_read_frame(s.ch, buf, sizeof(buf), &h, err, sizeof(err)), n);
		assert_int_equal(h.type, WIRE_F_GO);
	}
	channel_close(c);
	server_end(&s);
}

/* ---- PSK ------------------------------------------------------------------------------------------ */

static const uint8_t key1[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static int psk_client(struct server *s, const char *id, const uint8_t *key, struct channel **c,
		      char *err, size_t errlen)
{
	struct channel_opts o = { .tls_psk = key, .tls_psk_len = 32, .tls_psk_identity = id };

	return channel_connect_opts(s->uri, &o, 5000, c, err, errlen);
}

static void psk_server(struct server *s, int which)
{
	struct channel_opts o = { .tls_dir = dir(which) };
	char err[256];

	memset(s, 0, sizeof(*s));
	assert_int_equal(channel_listen_opts("tls:127.0.0.1:0", &o, &s->l, err, sizeof(err)), 0);
	assert_true(channel_listener_uri(s->l, s->uri, sizeof(s->uri)) > 0);
	assert_int_equal(channel_listener_add_psk(s->l, "job-1", key1, sizeof(key1),
						  clock_now_ms() + 60000), 0);
	assert_int_equal(channel_listener_add_psk(s->l, "old", key1, sizeof(key1),
						  clock_now_ms() - 1), 0);
}

static void psk_refused(int which, const char *id, const uint8_t *key, const char *cwords,
			const char *swords)
{
	struct server s;
	struct channel *c = NULL;
	char err[512] = "";
	int ret;

	psk_server(&s, which);
	assert_int_equal(pthread_create(&s.t, NULL, server_main, &s), 0);
	ret = psk_client(&s, id, key, &c, err, sizeof(err));
	server_join(&s);
	if (ret >= 0 || !strstr(err, cwords) || s.ret >= 0 || !strstr(s.err, swords)) {
		print_error("client %d \"%s\" (want \"%s\"); server %d \"%s\" (want \"%s\")\n", ret,
			    err, cwords, s.ret, s.err, swords);
		fail();
	}
	server_end(&s);
}

static void test_tls_psk(void **state)
{
	uint8_t wrong[32];
	struct channel_info ci, si;
	struct server s;
	struct channel *c;
	char err[512];

	(void)state;
	/* the right key, at a listener without certificates and at one with them */
	for (int which = NONE; which >= GOOD; which -= NONE) {
		psk_server(&s, which);
		assert_int_equal(pthread_create(&s.t, NULL, server_main, &s), 0);
		if (psk_client(&s, "job-1", key1, &c, err, sizeof(err))) {
			print_error("psk connect: %s; server: %s\n", err, s.err);
			fail();
		}
		server_join(&s);
		assert_int_equal(s.ret, 0);
		channel_get_info(c, &ci);
		channel_get_info(s.ch, &si);
		assert_string_equal(ci.version, "TLSv1.3");
		assert_string_equal(ci.peer, "psk:job-1");
		assert_string_equal(si.peer, "psk:job-1");
		{
			uint8_t f[64], buf[64];
			struct frame_hdr h;
			ssize_t n = frame_put_go(f, sizeof(f));

			assert_int_equal(channel_write(c, f, (size_t)n, err, sizeof(err)), 0);
			assert_int_equal(channel_flush(c, err, sizeof(err)), 0);
			assert_int_equal(channel_read_frame(s.ch, buf, sizeof(buf), &h, err,
							    sizeof(err)), n);
		}
		channel_close(c);
		server_end(&s);
	}

	memcpy(wrong, key1, sizeof(wrong));
	wrong[5] ^= 1;
	psk_refused(NONE, "job-1", wrong, "the server refused the pre-shared key 'job-1'",
		    "wrong pre-shared key for identity 'job-1'");
	psk_refused(NONE, "nobody", key1, "the server refused the pre-shared key 'nobody'",
		    "unknown pre-shared key identity 'nobody'");
	psk_refused(GOOD, "nobody", key1, "refused the pre-shared key",
		    "unknown pre-shared key identity 'nobody'");
	psk_refused(NONE, "old", key1, "the server refused the pre-shared key 'old'",
		    "the pre-shared key 'old' expired");

	/* a removed key opens nothing */
	psk_server(&s, NONE);
	channel_listener_remove_psk(s.l, "job-1");
	assert_int_equal(pthread_create(&s.t, NULL, server_main, &s), 0);
	assert_true(psk_client(&s, "job-1", key1, &c, err, sizeof(err)) < 0);
	server_join(&s);
	expect_msg("server", s.err, "unknown pre-shared key identity 'job-1'");
	server_end(&s);

	/* a certificate client at a PSK-only listener */
	psk_server(&s, NONE);
	assert_int_equal(pthread_create(&s.t, NULL, server_main, &s), 0);
	assert_true(client(&s, GOOD, NULL, NULL, &c, err, sizeof(err)) < 0);
	server_join(&s);
	expect_msg("server", s.err, "serves only pre-shared-key connections");
	server_end(&s);

	/* bad arguments */
	psk_server(&s, NONE);
	assert_int_equal(channel_listener_add_psk(s.l, "short", key1, 8, 0), -EINVAL);
	assert_int_equal(channel_listener_add_psk(s.l, "", key1, 32, 0), -EINVAL);
	channel_listener_close(s.l);
	{
		struct channel_listener *l;

		assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
		assert_int_equal(channel_listener_add_psk(l, "x", key1, 32, 0), -EOPNOTSUPP);
		channel_listener_close(l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_frames_both_ways),
		cmocka_unit_test(test_tls_info),
		cmocka_unit_test(test_tls_refusals),
		cmocka_unit_test(test_tls_names_that_match),
		cmocka_unit_test(test_tls_missing_files),
		cmocka_unit_test(test_tls_plain_peers),
		cmocka_unit_test(test_tls_stalled_handshake),
		cmocka_unit_test(test_tls_shutdown_wakes_reader),
		cmocka_unit_test(test_tls_read_timeout),
		cmocka_unit_test(test_tls_psk),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
