/* SPDX-License-Identifier: MIT */
/*
 * bench_channel.c - throughput of protocol/channel.h against the bare pump
 * of the same transport, and against raw TCP, in the same run.
 *
 * bare:    the most the transport moves without kvmig: for tcp and unix,
 *          write() of 1 MiB buffers on one thread and read() of 1 MiB on
 *          another; for tls, SSL_write() of 1 MiB buffers and SSL_read()
 *          over a blocking loopback TCP connection with the same
 *          certificates and the same cipher suite. It sends from the same
 *          16 MiB as the channel, so both read equally cold memory.
 * channel: PAGES frames of 512 raw pages (2 MiB each, built once with the
 *          batch builder, 8 different frames in turn) sent with
 *          channel_write() on one thread; channel_read_frame() on another,
 *          which checks every header and CRC, and pages_begin/pages_next
 *          over every entry.
 * --streams N runs N connections at once, each with its own sender and
 * receiver thread (as --parallel N does); MB/s is their sum over the wall
 * time. Each measurement runs --repeat times, alternating, and the median
 * is shown. Columns: the channel, the bare pump, channel/bare (target >=
 * 0.90), and channel over raw TCP's bare pump with the same streams.
 * MB is 10^6 bytes. TLS certificates: --tls-dir DIR (design.md's layout),
 * else made with tests/helpers/mkcerts.sh in a temporary directory.
 * tls-psk: the channel of --ssh-data tls (a TLS 1.3 external pre-shared
 * key, no certificates, a listener without --tls-dir), beside the same
 * certificate-based bare pump as tls: its channel/bare against tls's says
 * what the one-time key costs (nothing after the handshake).
 *
 * Usage: bench_channel [--gib N] [--repeat R] [--transport tcp|unix|tls|tls-psk]
 *                      [--cipher aes128gcm|chacha20] [--streams N] [--tls-dir DIR]
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/xio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PUMP_BYTES (1u << 20)
#define NFRAMES 8
#define MAX_STREAMS 8

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_channel: %s: %s\n", what, msg);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("malloc", "out of memory");
	return p;
}

/* What a run moves and over what. */
struct setup {
	const char *spec;		/* listen spec */
	struct channel_opts o;		/* tls: credentials, cipher (tls-psk: the key) */
	const char *bare_dir;		/* tls: the bare pump's credentials */
	const char *suite;		/* tls: the TLS 1.3 suite name */
	uint64_t bytes;			/* per stream */
	uint8_t *frames[NFRAMES];
	size_t frame_len;
};

struct acceptor {
	struct channel_listener *l;
	struct channel *ch;
	int ret;
	char err[256];
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;

	a->ret = channel_accept(a->l, 10000, &a->ch, a->err, sizeof(a->err));
	if (a->ret == 0)
		a->ret = channel_handshake(a->ch, a->err, sizeof(a->err));
	return NULL;
}

/* A connected pair over spec's transport: *tx connects, *rx accepts (and handshakes). */
static void connect_pair(const char *spec, const struct channel_opts *o, struct channel **tx,
			 struct channel **rx)
{
	struct acceptor a = { 0 };
	char err[256], uri[256];
	pthread_t t;

	if (channel_listen_opts(spec, o, &a.l, err, sizeof(err)))
		die(spec, err);
	/* tls-psk: what --ssh-data tls does, the listener takes the one-time key */
	if (o && o->tls_psk &&
	    channel_listener_add_psk(a.l, o->tls_psk_identity, o->tls_psk, o->tls_psk_len,
				     clock_now_ms() + 60000) < 0)
		die(spec, "cannot add the pre-shared key");
	if (channel_listener_uri(a.l, uri, sizeof(uri)) < 0)
		die(spec, "no URI");
	if (pthread_create(&t, NULL, accept_main, &a))
		die("pthread_create", strerror(errno));
	if (channel_connect_opts(uri, o, 10000, tx, err, sizeof(err)))
		die(uri, err);
	pthread_join(t, NULL);
	if (a.ret)
		die(spec, a.err);
	*rx = a.ch;
	channel_listener_close(a.l);
}

/* ---- bare pumps ------------------------------------------------------------------ */

struct pump {
	int fd;
	SSL *ssl;
	uint64_t bytes;
	int ret;
};

static void *pump_reader(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = xmalloc(PUMP_BYTES);
	uint64_t got = 0;

	while (got < p->bytes) {
		ssize_t n;

		if (p->ssl) {
			size_t k = 0;

			n = SSL_read_ex(p->ssl, buf, PUMP_BYTES, &k) == 1 ? (ssize_t)k : -1;
		} else {
			n = read(p->fd, buf, PUMP_BYTES);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			p->ret = -1;
			break;
		}
		got += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static SSL_CTX *bare_ctx(const struct setup *su, bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char ca[600], cert[600], key[600];
	const char *role = server ? "server" : "client";

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", su->bare_dir);
	snprintf(cert, sizeof(cert), "%s/%s-cert.pem", su->bare_dir, role);
	snprintf(key, sizeof(key), "%s/%s-key.pem", su->bare_dir, role);
	if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, su->suite) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("bare TLS", "cannot set up the context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5);
	return ctx;
}

static void *bare_accept(void *arg)
{
	SSL *ssl = arg;

	return SSL_accept(ssl) == 1 ? ssl : NULL;
}

/* One stream's bare pump, from the shared barrier on. */
struct stream {
	const struct setup *su;
	bool tls, channel;
	pthread_barrier_t *go;
	uint64_t t0, t1, moved;
};

static void run_bare(struct stream *st)
{
	const struct setup *su = st->su;
	struct channel *tx, *rx;
	struct pump p = { 0 };
	SSL_CTX *sctx = NULL, *cctx = NULL;
	SSL *ss = NULL, *cs = NULL;
	uint64_t sent = 0;
	unsigned k = 0;
	pthread_t t;

	/* the bare TLS pump runs over plain TCP channels' sockets */
	connect_pair(st->tls ? "tcp:127.0.0.1:0" : su->spec, NULL, &tx, &rx);
	p.fd = channel_fd(rx);
	p.bytes = su->bytes;
	if (st->tls) {
		void *ok;

		sctx = bare_ctx(su, true);
		cctx = bare_ctx(su, false);
		ss = SSL_new(sctx);
		cs = SSL_new(cctx);
		SSL_set_fd(ss, channel_fd(rx));
		SSL_set_fd(cs, channel_fd(tx));
		if (pthread_create(&t, NULL, bare_accept, ss))
			die("pthread_create", strerror(errno));
		if (SSL_connect(cs) != 1)
			die("bare TLS", "SSL_connect failed");
		pthread_join(t, &ok);
		if (!ok)
			die("bare TLS", "SSL_accept failed");
		p.ssl = ss;
	}
	pthread_barrier_wait(st->go);
	st->t0 = clock_now_ns();
	if (pthread_create(&t, NULL, pump_reader, &p))
		die("pthread_create", strerror(errno));
	for (; sent < su->bytes; sent += PUMP_BYTES, k = (k + 1) % (2 * NFRAMES)) {
		const uint8_t *b = su->frames[k / 2] + (k % 2) * PUMP_BYTES;

		if (cs ? SSL_write(cs, b, PUMP_BYTES) != (int)PUMP_BYTES
		       : write_all(channel_fd(tx), b, PUMP_BYTES) != 0)
			die("bare write", strerror(errno));
	}
	pthread_join(t, NULL);
	st->t1 = clock_now_ns();
	if (p.ret)
		die("bare read", "short");
	st->moved = su->bytes;
	SSL_free(ss);
	SSL_free(cs);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	channel_close(tx);
	channel_close(rx);
}

/* ---- channel ------------------------------------------------------------------------ */

struct sink {
	struct channel *ch;
	uint64_t frames;
	uint64_t pages;
	int ret;
	char err[256];
};

static void *channel_reader(void *arg)
{
	struct sink *s = arg;
	uint8_t *buf = xmalloc(CHANNEL_FRAME_MAX);

	for (uint64_t i = 0; i < s->frames; i++) {
		struct frame_hdr h;
		struct page_iter it;
		struct wire_page pg;
		ssize_t n = channel_read_frame(s->ch, buf, CHANNEL_FRAME_MAX, &h, s->err,
					       sizeof(s->err));
		int r;

		if (n < 0 || h.type != WIRE_F_PAGES) {
			s->ret = -1;
			break;
		}
		r = pages_begin(&it, buf + WIRE_HDR_BYTES, h.len, WIRE_MAX_BATCH, WIRE_PAGE_SIZE, 0,
				s->err, sizeof(s->err));
		if (r == 0)
			while ((r = pages_next(&it, &pg, s->err, sizeof(s->err))) == 1)
				s->pages++;
		if (r < 0) {
			s->ret = -1;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void run_chan(struct stream *st)
{
	const struct setup *su = st->su;
	struct channel *tx, *rx;
	struct sink s = { 0 };
	uint64_t n = (su->bytes + su->frame_len - 1) / su->frame_len;
	char err[256];
	pthread_t t;

	connect_pair(su->spec, &su->o, &tx, &rx);
	s.ch = rx;
	s.frames = n;
	pthread_barrier_wait(st->go);
	st->t0 = clock_now_ns();
	if (pthread_create(&t, NULL, channel_reader, &s))
		die("pthread_create", strerror(errno));
	for (uint64_t i = 0; i < n; i++)
		if (channel_write(tx, su->frames[i % NFRAMES], su->frame_len, err, sizeof(err)))
			die("channel_write", err);
	if (channel_flush(tx, err, sizeof(err)))
		die("channel_flush", err);
	pthread_join(t, NULL);
	st->t1 = clock_now_ns();
	if (s.ret)
		die("channel reader", s.err);
	if (s.pages != n * WIRE_MAX_BATCH)
		die("channel reader", "pages lost");
	st->moved = n * su->frame_len;
	channel_close(tx);
	channel_close(rx);
}

static void *stream_main(void *arg)
{
	struct stream *st = arg;

	if (st->channel)
		run_chan(st);
	else
		run_bare(st);
	return NULL;
}

/* nstreams at once; MB/s of all of them over the wall time. */
static double run(const struct setup *su, bool tls, bool channel, int nstreams)
{
	struct stream st[MAX_STREAMS];
	pthread_t t[MAX_STREAMS];
	pthread_barrier_t go;
	uint64_t t0 = UINT64_MAX, t1 = 0, moved = 0;

	pthread_barrier_init(&go, NULL, (unsigned)nstreams);
	for (int i = 0; i < nstreams; i++) {
		st[i] = (struct stream){ .su = su, .tls = tls, .channel = channel, .go = &go };
		if (pthread_create(&t[i], NULL, stream_main, &st[i]))
			die("pthread_create", strerror(errno));
	}
	for (int i = 0; i < nstreams; i++) {
		pthread_join(t[i], NULL);
		t0 = st[i].t0 < t0 ? st[i].t0 : t0;
		t1 = st[i].t1 > t1 ? st[i].t1 : t1;
		moved += st[i].moved;
	}
	pthread_barrier_destroy(&go);
	return (double)moved / ((double)(t1 - t0) / 1e9) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		const char *spec;	/* NULL: the unix socket in the temporary directory */
	} transports[] = {
		{ "tcp", "tcp:127.0.0.1:0" },
		{ "unix", NULL },
		{ "tls", "tls:127.0.0.1:0" },
		{ "tls-psk", "tls:127.0.0.1:0" },	/* the --ssh-data tls path */
	};
	static const struct {
		const char *name, *suite;
	} ciphers[] = {
		{ "aes128gcm", "TLS_AES_128_GCM_SHA256" },
		{ "chacha20", "TLS_CHACHA20_POLY1305_SHA256" },
	};
	struct setup su;
	double gib = 1;
	int repeat = 5, nstreams = 1, cipher = -1;
	const char *only = NULL, *tls_dir = NULL;
	char unix_spec[128], dir[] = "/tmp/kvmig-bench-XXXXXX", certs[200];

	memset(&su, 0, sizeof(su));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gib") && i + 1 < argc) {
			gib = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
			repeat = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--transport") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--streams") && i + 1 < argc) {
			nstreams = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--tls-dir") && i + 1 < argc) {
			tls_dir = argv[++i];
		} else if (!strcmp(argv[i], "--cipher") && i + 1 < argc) {
			i++;
			for (int c = 0; c < 2; c++)
				if (!strcmp(argv[i], ciphers[c].name))
					cipher = c;
			if (cipher < 0)
				die("--cipher", "aes128gcm or chacha20");
		} else {
			fprintf(stderr,
				"usage: %s [--gib N] [--repeat R] [--transport tcp|unix|tls|tls-psk] "
				"[--cipher aes128gcm|chacha20] [--streams N] [--tls-dir DIR]\n",
				argv[0]);
			return 2;
		}
	}
	if (gib <= 0 || repeat < 1 || repeat > 50 || nstreams < 1 || nstreams > MAX_STREAMS)
		die("arguments", "--gib > 0, --repeat 1..50, --streams 1..8");

	/* the command that made this table */
	printf("$");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");

	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	snprintf(unix_spec, sizeof(unix_spec), "unix:%s/bench.sock", dir);
	if (!tls_dir && (!only || !strncmp(only, "tls", 3))) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "sh tests/helpers/mkcerts.sh %s/certs", dir);
		if (system(cmd) != 0)
			die(cmd, "failed (run from the source tree, or give --tls-dir)");
		snprintf(certs, sizeof(certs), "%s/certs/good", dir);
		tls_dir = certs;
	}

	/* 8 different frames of 512 raw pages, each page with its own bytes */
	for (int f = 0; f < NFRAMES; f++) {
		struct page_batch b;

		su.frames[f] = xmalloc(CHANNEL_FRAME_MAX);
		batch_begin(&b, su.frames[f], CHANNEL_FRAME_MAX, 1);
		for (unsigned i = 0; i < WIRE_MAX_BATCH; i++) {
			uint8_t *d = batch_reserve(&b, WIRE_PAGE_SIZE);

			for (unsigned k = 0; k < WIRE_PAGE_SIZE; k += 8)
				memset(d + k, (int)(f * 31 + i * 7 + k), 8);
			batch_commit(&b, i, CODEC_RAW, WIRE_PAGE_SIZE);
		}
		su.frame_len = batch_finish(&b);
	}
	su.bytes = (uint64_t)(gib * (double)(1ull << 30));
	su.bytes = (su.bytes + PUMP_BYTES - 1) / PUMP_BYTES * PUMP_BYTES;

	printf("(%.3g GiB per stream, median of %d; frames of %zu bytes; MB/s summed over the "
	       "streams)\n", gib, repeat, su.frame_len);
	printf("%-9s %-28s %7s %14s %12s %13s %11s\n", "transport", "cipher", "streams",
	       "MB/s channel", "MB/s bare", "channel/bare", "channel/tcp");
	for (size_t k = 0; k < sizeof(transports) / sizeof(transports[0]); k++) {
		bool psk = !strcmp(transports[k].name, "tls-psk");
		bool tls = psk || !strcmp(transports[k].name, "tls");
		double raw[50], chan[50], bare[50];

		if (only ? strcmp(only, transports[k].name) != 0 : tls && cipher < 0)
			continue;
		if (!transports[k].spec && nstreams > 1) {
			/* the streams would all listen at the same path */
			printf("%-9s (one stream only)\n", transports[k].name);
			continue;
		}
		for (int c = 0; c < (tls ? 2 : 1); c++) {
			if (tls && cipher >= 0 && c != cipher)
				continue;
			su.spec = transports[k].spec ? transports[k].spec : unix_spec;
			su.o = (struct channel_opts){ 0 };
			su.suite = ciphers[c].suite;
			if (tls) {
				static const uint8_t key[32] = "kvmig bench one-time key 0123456";

				su.o.tls_dir = psk ? NULL : tls_dir;
				su.bare_dir = tls_dir;
				su.o.tls_ciphers = ciphers[c].suite;
				if (psk) {
					su.o.tls_psk = key;
					su.o.tls_psk_len = sizeof(key);
					su.o.tls_psk_identity = "bench";
				}
			}
			for (int r = 0; r < repeat; r++) {
				struct setup tcp = su;

				tcp.spec = "tcp:127.0.0.1:0";
				tcp.o = (struct channel_opts){ 0 };
				raw[r] = run(&tcp, false, false, nstreams);
				bare[r] = run(&su, tls, false, nstreams);
				chan[r] = run(&su, tls, true, nstreams);
			}
			{
				double mc = median(chan, repeat), mb = median(bare, repeat);
				double mr = median(raw, repeat);

				printf("%-9s %-28s %7d %14.0f %12.0f %13.2f %11.2f\n",
				       transports[k].name, tls ? ciphers[c].suite : "-", nstreams, mc,
				       mb, mc / mb, mc / mr);
				fflush(stdout);
			}
		}
	}
	for (int f = 0; f < NFRAMES; f++)
		free(su.frames[f]);
	if (tls_dir == certs) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s/certs", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_channel: could not remove %s/certs\n", dir);
	}
	rmdir(dir);
	return 0;
}
