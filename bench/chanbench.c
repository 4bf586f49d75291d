/* SPDX-License-Identifier: MIT */
/*
 * chanbench.c - channel throughput (bench/chanbench.h): the loopback
 * comparison with the bare pumps, and the sink and the sender of a
 * measurement between two hosts.
 */
#include "bench/chanbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "bench/benchutil.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/parse.h"
#include "common/xio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/uri.h"
#include "protocol/wire.h"

#define PUMP_BYTES (1u << 20)
#define NFRAMES 8
#define MAX_STREAMS CHANBENCH_MAX_STREAMS
#define CONNECT_MS 10000	/* a sender's connect, handshake included */
#define IO_MS 30000		/* any wait for the peer once connected */
#define HELLO_MS 10000		/* a sink's wait for a hello, and for the session's other streams */
#define LINE_MAX_BYTES 256	/* a session's text lines */
#define MAGIC "kvmig-bench-channel 1"

static void die(const char *what, const char *msg)
{
	bench_fatal("%s: %s", what, msg);
}

#define xmalloc bench_alloc

/* The TLS 1.3 suites --cipher names. */
static const struct {
	const char *name, *suite;
} ciphers[] = {
	{ "aes128gcm", "TLS_AES_128_GCM_SHA256" },
	{ "chacha20", "TLS_CHACHA20_POLY1305_SHA256" },
};

/* What a run moves and over what (loopback), and the frames a sender sends. */
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

void chanbench_pair(const char *spec, const struct channel_opts *o, struct channel **tx,
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
	chanbench_pair(st->tls ? "tcp:127.0.0.1:0" : su->spec, NULL, &tx, &rx);
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

/* The receiving end of a channel: loopback's reader thread, a sink's streams. */
struct receiver {
	struct channel *ch;
	uint64_t frames;	/* to read */
	uint64_t pages;		/* entries seen */
	uint64_t bytes;		/* frame bytes read */
	int ret;
	char err[256];
};

/*
 * Read r->frames PAGES frames (header and CRC checked by the channel),
 * walking every entry. Return: 0, or -1 with the reason in r->err.
 */
static int read_pages(struct receiver *r)
{
	uint8_t *buf = xmalloc(CHANNEL_FRAME_MAX);

	for (uint64_t i = 0; i < r->frames; i++) {
		struct frame_hdr h;
		struct page_iter it;
		struct wire_page pg;
		ssize_t n = channel_read_frame(r->ch, buf, CHANNEL_FRAME_MAX, &h, r->err,
					       sizeof(r->err));
		int k;

		if (n >= 0 && h.type != WIRE_F_PAGES)
			snprintf(r->err, sizeof(r->err), "frame %llu is %s, not PAGES",
				 (unsigned long long)i, frame_type_name(h.type));
		if (n < 0 || h.type != WIRE_F_PAGES) {
			r->ret = -1;
			break;
		}
		r->bytes += (uint64_t)n;
		k = pages_begin(&it, buf + WIRE_HDR_BYTES, h.len, WIRE_MAX_BATCH, WIRE_PAGE_SIZE, 0,
				r->err, sizeof(r->err));
		if (k == 0)
			while ((k = pages_next(&it, &pg, r->err, sizeof(r->err))) == 1)
				r->pages++;
		if (k < 0) {
			r->ret = -1;
			break;
		}
	}
	free(buf);
	return r->ret;
}

static void *channel_reader(void *arg)
{
	read_pages(arg);
	return NULL;
}

static void run_chan(struct stream *st)
{
	const struct setup *su = st->su;
	struct channel *tx, *rx;
	struct receiver s = { 0 };
	uint64_t n = (su->bytes + su->frame_len - 1) / su->frame_len;
	char err[256];
	pthread_t t;

	chanbench_pair(su->spec, &su->o, &tx, &rx);
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

/* 8 different frames of 512 raw pages, each page with its own bytes. */
static void build_frames(struct setup *su)
{
	for (int f = 0; f < NFRAMES; f++) {
		struct page_batch b;

		su->frames[f] = xmalloc(CHANNEL_FRAME_MAX);
		batch_begin(&b, su->frames[f], CHANNEL_FRAME_MAX, 1);
		for (unsigned i = 0; i < WIRE_MAX_BATCH; i++) {
			uint8_t *d = batch_reserve(&b, WIRE_PAGE_SIZE);

			for (unsigned k = 0; k < WIRE_PAGE_SIZE; k += 8)
				memset(d + k, (int)(f * 31 + i * 7 + k), 8);
			batch_commit(&b, i, CODEC_RAW, WIRE_PAGE_SIZE);
		}
		su->frame_len = batch_finish(&b);
	}
}

static void free_frames(struct setup *su)
{
	for (int f = 0; f < NFRAMES; f++)
		free(su->frames[f]);
}

static json_t *jobj(void)
{
	json_t *o = json_object();

	if (!o)
		bench_fatal("out of memory (JSON)");
	return o;
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* ---- loopback -------------------------------------------------------------------- */

static int run_loopback(const struct chanbench_opts *opt, const char *cmdline, bool json,
			FILE *f, char *err, size_t errlen)
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
	const char *only = opt->transport, *tls_dir = opt->tls_dir;
	int repeat = opt->repeat, nstreams = opt->streams, cipher = opt->cipher;
	char unix_spec[128], dir[] = "/tmp/kvmig-bench-XXXXXX", certs[200];
	bool need_tls = only ? !strncmp(only, "tls", 3) : cipher >= 0;
	json_t *j = jobj(), *results = json_array();
	struct setup su;
	int ret = 0;

	memset(&su, 0, sizeof(su));
	if (!mkdtemp(dir)) {
		ret = -errno;
		snprintf(err, errlen, "mkdtemp %s: %s", dir, strerror(-ret));
		json_decref(j);
		json_decref(results);
		return ret;
	}
	snprintf(unix_spec, sizeof(unix_spec), "unix:%s/bench.sock", dir);
	if (!tls_dir && need_tls) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "sh tests/helpers/mkcerts.sh %s/certs >/dev/null 2>&1",
			 dir);
		if (system(cmd) != 0) {
			snprintf(err, errlen,
				 "loopback TLS needs certificates: give --tls-dir DIR, or run "
				 "from the source tree (tests/helpers/mkcerts.sh makes them)");
			rmdir(dir);
			json_decref(j);
			json_decref(results);
			return -ENOENT;
		}
		snprintf(certs, sizeof(certs), "%s/certs/good", dir);
		tls_dir = certs;
	}

	if (!json) {
		/* the command that made this table */
		fprintf(f, "$ %s\n", cmdline);
		fflush(f);
	}
	build_frames(&su);
	su.bytes = (uint64_t)(opt->gib * (double)(1ull << 30));
	su.bytes = (su.bytes + PUMP_BYTES - 1) / PUMP_BYTES * PUMP_BYTES;

	bench_json_set(j, "bench", json_string("channel"));
	bench_json_set(j, "mode", json_string("loopback"));
	bench_json_set(j, "command", json_string(cmdline));
	bench_json_set(j, "settings",
		       json_pack("{s:o,s:i,s:i,s:o,s:o,s:I}", "gib", bench_json_real(opt->gib, 3),
				 "repeat", repeat, "streams", nstreams, "transport",
				 jstr_or_null(only), "cipher",
				 jstr_or_null(cipher >= 0 ? ciphers[cipher].name : NULL),
				 "frame_bytes", (json_int_t)su.frame_len));
	bench_json_set(j, "results", results);
	if (!json) {
		fprintf(f,
			"(%.3g GiB per stream, median of %d; frames of %zu bytes; MB/s summed over "
			"the streams)\n",
			opt->gib, repeat, su.frame_len);
		fprintf(f, "%-9s %-28s %7s %14s %12s %13s %11s\n", "transport", "cipher", "streams",
			"MB/s channel", "MB/s bare", "channel/bare", "channel/tcp");
		fflush(f);
	}
	for (size_t k = 0; k < ARRAY_SIZE(transports); k++) {
		bool psk = !strcmp(transports[k].name, "tls-psk");
		bool tls = psk || !strcmp(transports[k].name, "tls");
		double raw[50], chan[50], bare[50];

		if (only ? strcmp(only, transports[k].name) != 0 : tls && cipher < 0)
			continue;
		if (!transports[k].spec && nstreams > 1) {
			/* the streams would all listen at the same path */
			if (!json)
				fprintf(f, "%-9s (one stream only)\n", transports[k].name);
			if (json_array_append_new(results,
						  json_pack("{s:s,s:s}", "transport",
							    transports[k].name, "skipped",
							    "one stream only")) < 0)
				bench_fatal("out of memory (JSON)");
			continue;
		}
		for (int c = 0; c < (tls ? 2 : 1); c++) {
			double mc, mb, mr;

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
			mc = bench_median(chan, repeat);
			mb = bench_median(bare, repeat);
			mr = bench_median(raw, repeat);
			if (!json) {
				fprintf(f, "%-9s %-28s %7d %14.0f %12.0f %13.2f %11.2f\n",
					transports[k].name, tls ? ciphers[c].suite : "-", nstreams,
					mc, mb, mc / mb, mc / mr);
				fflush(f);
			}
			if (json_array_append_new(
				    results,
				    json_pack("{s:s,s:o,s:i,s:o,s:o,s:o,s:o}", "transport",
					      transports[k].name, "cipher",
					      jstr_or_null(tls ? ciphers[c].suite : NULL),
					      "streams", nstreams, "channel_mb_per_s",
					      bench_json_real(mc, 0), "bare_mb_per_s",
					      bench_json_real(mb, 0), "channel_over_bare",
					      bench_json_real(mc / mb, 2), "channel_over_tcp",
					      bench_json_real(mc / mr, 2))) < 0)
				bench_fatal("out of memory (JSON)");
		}
	}
	free_frames(&su);
	if (tls_dir == certs) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s/certs", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "%s: could not remove %s/certs\n", bench_prog(), dir);
	}
	rmdir(dir);
	if (json)
		bench_json_print(f, j);
	else
		json_decref(j);
	return ret;
}

double chanbench_tcp_pump(uint64_t bytes)
{
	struct setup su;
	pthread_barrier_t go;
	struct stream st;

	memset(&su, 0, sizeof(su));
	build_frames(&su);
	su.spec = "tcp:127.0.0.1:0";
	su.bytes = (bytes + PUMP_BYTES - 1) / PUMP_BYTES * PUMP_BYTES;
	pthread_barrier_init(&go, NULL, 1);
	st = (struct stream){ .su = &su, .go = &go };
	run_bare(&st);
	pthread_barrier_destroy(&go);
	free_frames(&su);
	return (double)(st.t1 - st.t0) / 1e9;
}

/* ---- a session's lines ----------------------------------------------------------- */

/* Send one STATE line (MAGIC first) and flush. Return: 0, -errno with err. */
PRINTF_FMT(4, 5) static int send_line(struct channel *ch, char *err, size_t errlen,
				       const char *fmt, ...)
{
	uint8_t frame[WIRE_HDR_BYTES + LINE_MAX_BYTES + WIRE_CRC_BYTES];
	char line[LINE_MAX_BYTES];
	va_list ap;
	ssize_t n;
	int ret;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = frame_put_state(frame, sizeof(frame), line, strlen(line));
	if (n < 0) {
		snprintf(err, errlen, "cannot build a frame for '%s'", line);
		return (int)n;
	}
	ret = channel_write(ch, frame, (size_t)n, err, errlen);
	return ret ? ret : channel_flush(ch, err, errlen);
}

/* Refuse with an ERROR frame (best effort: the peer may be gone). */
static void send_refusal(struct channel *ch, const char *why)
{
	uint8_t frame[WIRE_HDR_BYTES + LINE_MAX_BYTES + WIRE_CRC_BYTES];
	char e[128];
	ssize_t n = frame_put_error(frame, sizeof(frame), 1, why);

	if (n > 0 && !channel_write(ch, frame, (size_t)n, e, sizeof(e)))
		(void)!channel_flush(ch, e, sizeof(e));
}

/*
 * Read the next line of a session: a STATE frame starting with MAGIC and
 * word (the rest, after one space, into line). An ERROR frame is the
 * peer's refusal; anything else is not a bench peer.
 * Return: 0, -EPROTO (what came instead, in err), or the channel's -errno.
 */
static int read_line(struct channel *ch, const char *word, char *line, size_t cap, char *err,
		     size_t errlen)
{
	uint8_t buf[WIRE_HDR_BYTES + WIRE_MAX_MSG + 64 + WIRE_CRC_BYTES];
	char text[LINE_MAX_BYTES], e[160];
	size_t mlen = strlen(MAGIC), wlen = strlen(word);
	struct frame_hdr h;
	ssize_t n = channel_read_frame(ch, buf, sizeof(buf), &h, e, sizeof(e));

	if (n == -ENOSPC || (n >= 0 && h.type != WIRE_F_STATE && h.type != WIRE_F_ERROR)) {
		snprintf(err, errlen,
			 "not a kvmig bench channel peer: it sent %s where a '%s' line was due",
			 n >= 0 ? frame_type_name(h.type) : "a large frame", word);
		return -EPROTO;
	}
	if (n < 0) {
		snprintf(err, errlen, "waiting for '%s': %s", word, e);
		return (int)n;
	}
	if (h.type == WIRE_F_ERROR) {
		struct wire_error we;

		if (frame_get_error(buf + WIRE_HDR_BYTES, h.len, &we, e, sizeof(e)) < 0)
			snprintf(we.msg, sizeof(we.msg), "(unreadable: %s)", e);
		snprintf(err, errlen, "the peer refused: %.200s", we.msg);
		return -EPROTO;
	}
	if (h.len >= sizeof(text)) {
		snprintf(err, errlen, "a %u-byte line where '%s' was due", h.len, word);
		return -EPROTO;
	}
	memcpy(text, buf + WIRE_HDR_BYTES, h.len);
	text[h.len] = 0;
	if (strncmp(text, MAGIC " ", mlen + 1) || strncmp(text + mlen + 1, word, wlen) ||
	    (text[mlen + 1 + wlen] && text[mlen + 1 + wlen] != ' ')) {
		snprintf(err, errlen, "not a kvmig bench channel peer: '%.80s' where '%s' was due",
			 text, word);
		return -EPROTO;
	}
	snprintf(line, cap, "%s", text[mlen + 1 + wlen] ? text + mlen + 2 + wlen : "");
	return 0;
}

/* "HOST:PORT" of the peer, or the transport's name for a unix socket. */
static void peer_name(struct channel *ch, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	snprintf(buf, cap, "%s", channel_transport(ch));
	if (getpeername(channel_fd(ch), (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, ntohs(a->sin6_port));
	}
}

static json_t *info_json(const struct channel_info *ci)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:s}", "kind", ci->kind, "version", ci->version,
			 "cipher", ci->cipher, "ktls", ci->ktls, "peer", ci->peer);
}

/* "tcp", "tls TLSv1.3 TLS_AES_256_GCM_SHA384, kTLS off" */
static void info_text(const struct channel_info *ci, char *buf, size_t cap)
{
	if (ci->cipher[0])
		snprintf(buf, cap, "%s %s %s, kTLS %s", ci->kind, ci->version, ci->cipher,
			 ci->ktls ? "on" : "off");
	else
		snprintf(buf, cap, "%s", ci->kind);
}

/* ---- the sink -------------------------------------------------------------------- */

struct hello {
	uint64_t session;
	unsigned stream, streams;
	uint64_t frames;
	size_t frame_bytes;
};

static int read_hello(struct channel *ch, struct hello *hl, char *err, size_t errlen)
{
	char line[LINE_MAX_BYTES];
	unsigned long long s, fr;
	unsigned st, n;
	size_t fb;
	int end = 0, ret = read_line(ch, "hello", line, sizeof(line), err, errlen);

	if (ret < 0)
		return ret;
	if (sscanf(line, "session=%llx stream=%u streams=%u frames=%llu frame_bytes=%zu%n", &s,
		   &st, &n, &fr, &fb, &end) != 5 || line[end] || n < 1 || n > MAX_STREAMS ||
	    st >= n || fr < 1 || fb < WIRE_HDR_BYTES || fb > CHANNEL_FRAME_MAX) {
		snprintf(err, errlen, "a malformed hello: '%.120s'", line);
		return -EPROTO;
	}
	*hl = (struct hello){ s, st, n, fr, fb };
	return 0;
}

/* One stream of a session at the sink. */
struct sink_stream {
	struct receiver r;
	uint64_t t0, t1;	/* clock at ready, at the last frame */
};

static void *sink_stream_main(void *arg)
{
	struct sink_stream *s = arg;
	char e[256];
	uint8_t buf[256];
	struct frame_hdr h;

	if (send_line(s->r.ch, s->r.err, sizeof(s->r.err), MAGIC " ready")) {
		s->r.ret = -1;
		return NULL;
	}
	s->t0 = clock_now_ns();
	if (read_pages(&s->r) < 0)
		return NULL;
	s->t1 = clock_now_ns();
	if (send_line(s->r.ch, s->r.err, sizeof(s->r.err),
		      MAGIC " result frames=%llu bytes=%llu pages=%llu ns=%llu",
		      (unsigned long long)s->r.frames, (unsigned long long)s->r.bytes,
		      (unsigned long long)s->r.pages, (unsigned long long)(s->t1 - s->t0))) {
		s->r.ret = -1;
		return NULL;
	}
	/* the sender closes once it has the result: wait for that, bounded by IO_MS */
	if (channel_read_frame(s->r.ch, buf, sizeof(buf), &h, e, sizeof(e)) >= 0) {
		snprintf(s->r.err, sizeof(s->r.err), "a %s frame after the result",
			 frame_type_name(h.type));
		s->r.ret = -1;
	}
	return NULL;
}

/* What a sink saw of one session. */
struct session {
	struct hello hl;
	char peer[160];
	struct channel_info info;
	struct channel *ch[MAX_STREAMS];
	struct sink_stream st[MAX_STREAMS];
};

/*
 * The other streams of the session first's hello opened: accept until all
 * are here, within HELLO_MS of each other. A connection of another session
 * is refused. Return: 0, -errno with err.
 */
static int gather_streams(struct channel_listener *l, struct session *ss, char *err,
			  size_t errlen)
{
	unsigned have = 1;

	while (have < ss->hl.streams) {
		struct channel *ch;
		struct hello hl;
		char e[256];
		int ret = channel_accept(l, HELLO_MS, &ch, e, sizeof(e));

		if (ret < 0) {
			snprintf(err, errlen, "%u of the session's %u streams connected: %.200s",
				 have, ss->hl.streams, e);
			return ret;
		}
		channel_set_timeout(ch, HELLO_MS);
		ret = channel_handshake(ch, e, sizeof(e));
		if (!ret)
			ret = read_hello(ch, &hl, e, sizeof(e));
		if (!ret && (hl.session != ss->hl.session || ss->ch[hl.stream])) {
			send_refusal(ch, hl.session != ss->hl.session
						 ? "busy: this sink serves another session"
						 : "a stream of this session connected twice");
			ret = -EBUSY;
		}
		if (ret < 0) {
			/* not one of ours: it does not end the session */
			channel_close(ch);
			continue;
		}
		if (hl.frames != ss->hl.frames || hl.frame_bytes != ss->hl.frame_bytes ||
		    hl.streams != ss->hl.streams) {
			send_refusal(ch, "the streams of the session disagree");
			channel_close(ch);
			snprintf(err, errlen, "stream %u's hello disagrees with stream %u's",
				 hl.stream, ss->hl.stream);
			return -EPROTO;
		}
		channel_set_timeout(ch, IO_MS);
		ss->ch[hl.stream] = ch;
		have++;
	}
	return 0;
}

/* Print one session's line (or JSON line); ret < 0: it failed with err. */
static void sink_report(const struct session *ss, int ret, const char *err, bool json, FILE *f)
{
	uint64_t frames = 0, bytes = 0, pages = 0, t0 = UINT64_MAX, t1 = 0;
	double secs;
	char info[160];

	if (ret < 0) {
		if (json) {
			json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "bench", "channel",
					      "mode", "listen", "event", "failed", "peer", ss->peer,
					      "error", err);

			if (!j)
				bench_fatal("out of memory (JSON)");
			bench_json_print(f, j);
		} else {
			fprintf(f, "from %s: failed: %s\n", ss->peer, err);
			fflush(f);
		}
		return;
	}
	for (unsigned i = 0; i < ss->hl.streams; i++) {
		frames += ss->st[i].r.frames;
		bytes += ss->st[i].r.bytes;
		pages += ss->st[i].r.pages;
		t0 = MIN(t0, ss->st[i].t0);
		t1 = MAX(t1, ss->st[i].t1);
	}
	secs = (double)(t1 - t0) / 1e9;
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:I,s:I,s:I,s:o,s:o}", "bench",
				      "channel", "mode", "listen", "event", "received", "peer",
				      ss->peer, "transport", info_json(&ss->info), "streams",
				      (int)ss->hl.streams, "frames", (json_int_t)frames,
				      "bytes_received", (json_int_t)bytes, "pages",
				      (json_int_t)pages, "seconds", bench_json_real(secs, 4),
				      "mb_per_s", bench_json_real((double)bytes / secs / 1e6, 0));

		if (!j)
			bench_fatal("out of memory (JSON)");
		bench_json_print(f, j);
		return;
	}
	info_text(&ss->info, info, sizeof(info));
	fprintf(f, "from %s (%s): %u stream%s, %llu bytes in %llu frames, %.3f s: %.0f MB/s\n",
		ss->peer, info, ss->hl.streams, ss->hl.streams > 1 ? "s" : "",
		(unsigned long long)bytes, (unsigned long long)frames, secs,
		(double)bytes / secs / 1e6);
	fflush(f);
}

/*
 * One session, from its first connection on (handshake not yet done):
 * its hello, its other streams, the frames, the results.
 * Return: 0, -errno with err.
 */
static int sink_session(struct channel_listener *l, struct channel *first, struct session *ss,
			char *err, size_t errlen)
{
	pthread_t t[MAX_STREAMS];
	unsigned started = 0;
	int ret;

	channel_set_timeout(first, HELLO_MS);
	peer_name(first, ss->peer, sizeof(ss->peer));
	ret = channel_handshake(first, err, errlen);
	if (ret < 0) {
		channel_close(first);
		return ret;
	}
	channel_get_info(first, &ss->info);
	ret = read_hello(first, &ss->hl, err, errlen);
	if (ret < 0) {
		if (ret == -EPROTO)
			send_refusal(first, err);
		channel_close(first);
		return ret;
	}
	channel_set_timeout(first, IO_MS);
	ss->ch[ss->hl.stream] = first;
	ret = gather_streams(l, ss, err, errlen);
	for (unsigned i = 0; !ret && i < ss->hl.streams; i++) {
		ss->st[i].r = (struct receiver){ .ch = ss->ch[i], .frames = ss->hl.frames };
		if (pthread_create(&t[i], NULL, sink_stream_main, &ss->st[i]))
			bench_fatal("pthread_create: %s", strerror(errno));
		started++;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		if (ss->st[i].r.ret && !ret) {
			snprintf(err, errlen, "stream %u: %s", i, ss->st[i].r.err);
			ret = -EIO;
		}
	}
	for (unsigned i = 0; i < MAX_STREAMS; i++) {
		if (ss->ch[i] && ret < 0 && !started)
			send_refusal(ss->ch[i], err);
		channel_close(ss->ch[i]);
	}
	return ret;
}

static int run_sink(const struct chanbench_opts *o, const char *cmdline, bool json, FILE *f,
		    char *err, size_t errlen)
{
	struct channel_opts co = {
		.tls_dir = o->tls_dir,
		.tls_ciphers = o->cipher >= 0 ? ciphers[o->cipher].suite : NULL,
	};
	struct channel_listener *l;
	char addr[300], uri[300];
	int ret = channel_listen_opts(o->listen, &co, &l, err, errlen);

	if (ret < 0)
		return ret;
	if (channel_listener_addr(l, addr, sizeof(addr)) < 0)
		snprintf(addr, sizeof(addr), "%s", o->listen);
	if (channel_listener_uri(l, uri, sizeof(uri)) < 0)
		uri[0] = 0;
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "bench", "channel", "mode",
				      "listen", "event", "listening", "command", cmdline, "listen",
				      addr, "uri", uri);

		if (!j)
			bench_fatal("out of memory (JSON)");
		bench_json_print(f, j);
	} else {
		fprintf(f, "$ %s\nlistening on %s (senders: --to %s)\n", cmdline, addr, uri);
		fflush(f);
	}
	for (;;) {
		struct session *ss = calloc(1, sizeof(*ss));
		struct channel *ch;
		char e[300];

		if (!ss)
			bench_fatal("out of memory");
		ret = channel_accept(l, CHANNEL_NO_TIMEOUT, &ch, err, errlen);
		if (ret < 0) {
			free(ss);
			break;
		}
		ret = sink_session(l, ch, ss, e, sizeof(e));
		sink_report(ss, ret, e, json, f);
		free(ss);
		if (o->once) {
			if (ret < 0)
				snprintf(err, errlen, "%s", e);
			break;
		}
	}
	channel_listener_close(l);
	return ret;
}

/* ---- the sender ------------------------------------------------------------------ */

struct send_stream {
	struct channel *ch;
	const struct setup *su;
	uint64_t frames;
	pthread_barrier_t *go;
	atomic_bool *failed;
	uint64_t t0, t1;	/* clock after the barrier, at the result */
	unsigned long long r_frames, r_bytes, r_pages, r_ns;	/* the sink's result */
	int ret;
	char err[300];
};

static void *send_stream_main(void *arg)
{
	struct send_stream *s = arg;
	char line[LINE_MAX_BYTES];
	int end = 0;

	s->ret = read_line(s->ch, "ready", line, sizeof(line), s->err, sizeof(s->err));
	if (s->ret < 0)
		atomic_store(s->failed, true);
	pthread_barrier_wait(s->go);
	if (s->ret < 0 || atomic_load(s->failed))
		return NULL;
	s->t0 = clock_now_ns();
	for (uint64_t i = 0; i < s->frames && !s->ret; i++)
		s->ret = channel_write(s->ch, s->su->frames[i % NFRAMES], s->su->frame_len, s->err,
				       sizeof(s->err));
	if (!s->ret)
		s->ret = channel_flush(s->ch, s->err, sizeof(s->err));
	if (!s->ret)
		s->ret = read_line(s->ch, "result", line, sizeof(line), s->err, sizeof(s->err));
	s->t1 = clock_now_ns();
	if (!s->ret && (sscanf(line, "frames=%llu bytes=%llu pages=%llu ns=%llu%n", &s->r_frames,
			       &s->r_bytes, &s->r_pages, &s->r_ns, &end) != 4 ||
			line[end])) {
		snprintf(s->err, sizeof(s->err), "a malformed result: '%.120s'", line);
		s->ret = -EPROTO;
	}
	return NULL;
}

static int run_sender(const struct chanbench_opts *o, const char *cmdline, bool json, FILE *f,
		      char *err, size_t errlen)
{
	struct channel_opts co = {
		.tls_dir = o->tls_dir,
		.tls_ciphers = o->cipher >= 0 ? ciphers[o->cipher].suite : NULL,
		.ssh_accept_new = o->ssh_accept_new,
		.ssh_agent_port = (uint16_t)o->ssh_agent_port,
	};
	struct send_stream st[MAX_STREAMS];
	unsigned n = (unsigned)o->streams;
	unsigned long long sent = 0, got = 0, gpages = 0, gns = 0;
	uint64_t session, frames, t0 = UINT64_MAX, t1 = 0;
	struct channel_info info;
	pthread_t t[MAX_STREAMS];
	pthread_barrier_t go;
	atomic_bool failed;
	struct setup su;
	double secs;
	int ret = 0;

	memset(&su, 0, sizeof(su));
	memset(st, 0, sizeof(st));
	build_frames(&su);
	frames = (uint64_t)(o->gib * (double)(1ull << 30) + (double)su.frame_len - 1) /
		 su.frame_len;
	if (!frames)
		frames = 1;
	if (RAND_bytes((unsigned char *)&session, sizeof(session)) != 1)
		session = clock_now_ns() ^ (uint64_t)getpid();
	for (unsigned i = 0; i < n && !ret; i++) {
		ret = channel_connect_opts(o->to, &co, CONNECT_MS, &st[i].ch, err, errlen);
		if (ret < 0)
			break;
		channel_set_timeout(st[i].ch, IO_MS);
		ret = send_line(st[i].ch, err, errlen,
				MAGIC " hello session=%016" PRIx64 " stream=%u streams=%u "
				      "frames=%" PRIu64 " frame_bytes=%zu",
				session, i, n, frames, su.frame_len);
	}
	if (ret < 0) {
		for (unsigned i = 0; i < n; i++)
			channel_close(st[i].ch);
		free_frames(&su);
		return ret;
	}
	channel_get_info(st[0].ch, &info);
	atomic_init(&failed, false);
	pthread_barrier_init(&go, NULL, n);
	for (unsigned i = 0; i < n; i++) {
		st[i].su = &su;
		st[i].frames = frames;
		st[i].go = &go;
		st[i].failed = &failed;
		if (pthread_create(&t[i], NULL, send_stream_main, &st[i]))
			bench_fatal("pthread_create: %s", strerror(errno));
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (st[i].ret < 0 && !ret) {
			ret = st[i].ret;
			snprintf(err, errlen, "%s: stream %u: %s", o->to, i, st[i].err);
		}
		t0 = MIN(t0, st[i].t0);
		t1 = MAX(t1, st[i].t1);
		sent += frames * su.frame_len;
		got += st[i].r_bytes;
		gpages += st[i].r_pages;
		gns = MAX(gns, st[i].r_ns);
		channel_close(st[i].ch);
	}
	pthread_barrier_destroy(&go);
	free_frames(&su);
	if (!ret && (got != sent || gpages != (unsigned long long)n * frames * WIRE_MAX_BATCH)) {
		snprintf(err, errlen, "the sink received %llu of %llu bytes (%llu pages)", got,
			 sent, gpages);
		ret = -EIO;
	}
	if (ret < 0)
		return ret;
	secs = (double)(t1 - t0) / 1e9;
	if (json) {
		json_t *j = jobj();

		bench_json_set(j, "bench", json_string("channel"));
		bench_json_set(j, "mode", json_string("to"));
		bench_json_set(j, "command", json_string(cmdline));
		bench_json_set(j, "settings",
			       json_pack("{s:s,s:o,s:i,s:o,s:o}", "to", o->to, "gib",
					 bench_json_real(o->gib, 3), "streams", o->streams,
					 "cipher",
					 jstr_or_null(o->cipher >= 0 ? ciphers[o->cipher].name
								     : NULL),
					 "tls_dir", jstr_or_null(o->tls_dir)));
		bench_json_set(j, "transport", info_json(&info));
		bench_json_set(j, "streams", json_integer(n));
		bench_json_set(j, "frame_bytes", json_integer((json_int_t)su.frame_len));
		bench_json_set(j, "frames", json_integer((json_int_t)(n * frames)));
		bench_json_set(j, "bytes_sent", json_integer((json_int_t)sent));
		bench_json_set(j, "bytes_received", json_integer((json_int_t)got));
		bench_json_set(j, "pages_received", json_integer((json_int_t)gpages));
		bench_json_set(j, "seconds", bench_json_real(secs, 4));
		bench_json_set(j, "mb_per_s", bench_json_real((double)sent / secs / 1e6, 0));
		bench_json_set(j, "sink_seconds", bench_json_real((double)gns / 1e9, 4));
		bench_json_set(j, "sink_mb_per_s",
			       bench_json_real((double)got / ((double)gns / 1e9) / 1e6, 0));
		bench_json_print(f, j);
		return 0;
	}
	fprintf(f, "$ %s\n", cmdline);
	fprintf(f, "(%.3g GiB per stream to %s; frames of %zu bytes; MB/s summed over the "
		   "streams)\n", o->gib, o->to, su.frame_len);
	fprintf(f, "%-9s %-8s %-28s %-4s %7s %10s %14s %14s %9s %10s\n", "transport", "version",
		"cipher", "ktls", "streams", "MB/s", "bytes sent", "bytes received", "seconds",
		"sink MB/s");
	fprintf(f, "%-9s %-8s %-28s %-4s %7u %10.0f %14llu %14llu %9.3f %10.0f\n", info.kind,
		info.version[0] ? info.version : "-", info.cipher[0] ? info.cipher : "-",
		!strcmp(info.kind, "tls") ? (info.ktls ? "yes" : "no") : "-", n,
		(double)sent / secs / 1e6, sent, got, secs,
		(double)got / ((double)gns / 1e9) / 1e6);
	if (info.peer[0])
		fprintf(f, "(peer: %s)\n", info.peer);
	fflush(f);
	return 0;
}

/* ---- options --------------------------------------------------------------------- */

void chanbench_defaults(struct chanbench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->gib = 1;
	o->repeat = 5;
	o->cipher = -1;
	o->streams = 1;
}

/* The options that go together, once all are read. */
static int check_opts(const struct chanbench_opts *o, bool gib, bool streams, bool repeat,
		      bool ssh, char *err, size_t errlen)
{
	struct uri u;
	char e[256];

	if (o->listen && o->to)
		return err_set(-EINVAL, err, errlen,
			   "--listen (the sink) and --to (the sender) exclude each other");
	if ((o->listen || o->to) && (o->transport || repeat))
		return err_set(-EINVAL, err, errlen,
			   "--transport and --repeat are for loopback; with %s the address names "
			   "the transport",
			   o->listen ? "--listen" : "--to");
	if (o->once && !o->listen)
		return err_set(-EINVAL, err, errlen, "--once is the sink's (--listen)");
	if (o->listen && (gib || streams))
		return err_set(-EINVAL, err, errlen, "--gib and --streams are the sender's (--to): the sink "
					"takes what comes");
	if (!o->listen && !o->to) {
		if (ssh)
			return err_set(-EINVAL, err, errlen,
				   "--ssh-agent-port and --ssh-accept-new need --to ssh://");
		return 0;
	}
	if (o->listen) {
		if (uri_parse_listen(o->listen, &u, e, sizeof(e)) < 0)
			return err_set(-EINVAL, err, errlen, "bad --listen: %s", e);
		if (ssh)
			return err_set(-EINVAL, err, errlen, "--ssh-agent-port and --ssh-accept-new are the "
						"sender's (--to ssh://)");
	} else {
		if (uri_parse(o->to, &u, e, sizeof(e)) < 0)
			return err_set(-EINVAL, err, errlen, "bad --to: %s", e);
		if (ssh && u.scheme != URI_SSH)
			return err_set(-EINVAL, err, errlen,
				   "--ssh-agent-port and --ssh-accept-new need --to ssh://");
	}
	if (u.scheme == URI_TLS && !o->tls_dir)
		return err_set(-EINVAL, err, errlen, "%s %s needs --tls-dir DIR (ca-cert.pem, %s-cert.pem, "
					"%s-key.pem)", o->listen ? "--listen" : "--to",
			   o->listen ? o->listen : o->to, o->listen ? "server" : "client",
			   o->listen ? "server" : "client");
	if (o->cipher >= 0 && u.scheme != URI_TLS)
		return err_set(-EINVAL, err, errlen, "--cipher chooses a TLS suite: it needs a tls address");
	return 0;
}

int chanbench_parse(int argc, char **argv, struct chanbench_opts *o, char *err, size_t errlen)
{
	bool gib = false, streams = false, repeat = false, ssh = false;

	for (int i = 0; i < argc; i++) {
		const char *v;
		uint64_t n;
		int r;

		if (!strcmp(argv[i], "--once")) {
			o->once = true;
			continue;
		}
		if (!strcmp(argv[i], "--ssh-accept-new")) {
			o->ssh_accept_new = ssh = true;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--gib", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (bench_parse_double(v, &o->gib) < 0 || o->gib <= 0 || o->gib > 1 << 20)
				return err_set(-EINVAL, err, errlen, "bad --gib '%s': GiB per stream, above 0",
					   v);
			gib = true;
		} else if ((r = bench_take_opt(argc, argv, &i, "--repeat", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (parse_u64(v, &n) < 0 || n < 1 || n > 50)
				return err_set(-EINVAL, err, errlen, "bad --repeat '%s': 1 to 50", v);
			o->repeat = (int)n;
			repeat = true;
		} else if ((r = bench_take_opt(argc, argv, &i, "--streams", &v, err, errlen)) !=
			   0) {
			if (r < 0)
				return r;
			if (parse_u64(v, &n) < 0 || n < 1 || n > MAX_STREAMS)
				return err_set(-EINVAL, err, errlen, "bad --streams '%s': 1 to %d", v,
					   MAX_STREAMS);
			o->streams = (int)n;
			streams = true;
		} else if ((r = bench_take_opt(argc, argv, &i, "--transport", &v, err, errlen)) !=
			   0) {
			if (r < 0)
				return r;
			if (strcmp(v, "tcp") && strcmp(v, "unix") && strcmp(v, "tls") &&
			    strcmp(v, "tls-psk"))
				return err_set(-EINVAL, err, errlen,
					   "unknown --transport '%s' (tcp, unix, tls or tls-psk)",
					   v);
			o->transport = v;
		} else if ((r = bench_take_opt(argc, argv, &i, "--cipher", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			o->cipher = -1;
			for (int c = 0; c < (int)ARRAY_SIZE(ciphers); c++)
				if (!strcmp(v, ciphers[c].name))
					o->cipher = c;
			if (o->cipher < 0)
				return err_set(-EINVAL, err, errlen,
					   "unknown --cipher '%s' (aes128gcm or chacha20)", v);
		} else if ((r = bench_take_opt(argc, argv, &i, "--tls-dir", &v, err, errlen)) !=
			   0) {
			if (r < 0)
				return r;
			o->tls_dir = v;
		} else if ((r = bench_take_opt(argc, argv, &i, "--listen", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			o->listen = v;
		} else if ((r = bench_take_opt(argc, argv, &i, "--to", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			o->to = v;
		} else if ((r = bench_take_opt(argc, argv, &i, "--ssh-agent-port", &v, err,
					       errlen)) != 0) {
			if (r < 0)
				return r;
			if (parse_u64(v, &n) < 0 || n < 1 || n > 65535)
				return err_set(-EINVAL, err, errlen, "bad --ssh-agent-port '%s': 1 to 65535", v);
			o->ssh_agent_port = (unsigned)n;
			ssh = true;
		} else {
			return err_set(-EINVAL, err, errlen, "unknown option '%s'", argv[i]);
		}
	}
	return check_opts(o, gib, streams, repeat, ssh, err, errlen);
}

int chanbench_run(const struct chanbench_opts *o, const char *cmdline, bool json, FILE *out,
		  char *err, size_t errlen)
{
	if (o->listen)
		return run_sink(o, cmdline, json, out, err, errlen);
	if (o->to)
		return run_sender(o, cmdline, json, out, err, errlen);
	return run_loopback(o, cmdline, json, out, err, errlen);
}
