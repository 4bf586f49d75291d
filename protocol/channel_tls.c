/* SPDX-License-Identifier: MIT */
/*
 * channel_tls.c - the TLS transport: tls://HOST:PORT and tls:HOST:PORT,
 * OpenSSL 3 over the TCP pieces of channel_tcp.c.
 *
 * Security: TLS 1.3 preferred, 1.2 the oldest allowed; both ends present
 * a certificate from the credentials directory (design.md's layout) and
 * check the other's against its ca-cert.pem; the server requires a client
 * certificate; the client checks the name it dialled (or tls_hostname)
 * against the server certificate's DNS or IP SANs. No session tickets, no
 * resumption, no renegotiation: a connection is one full handshake, and
 * nothing is written after it that the application did not ask for.
 * PSK mode (tls_psk): TLS 1.3 with an external pre-shared key and (EC)DHE,
 * no certificates; the listener looks identities up in the keys added
 * with channel_listener_add_psk(), each valid until it expires.
 *
 * The handshake ends with one byte, 0x01, from the server: in TLS 1.3 the
 * client's handshake completes before the server has checked the client's
 * certificate, so without it a refused client would only learn why at its
 * first read. With it, connect returns only once the server accepted us,
 * and a refusal comes back from connect, in words, on both sides.
 *
 * Threads: an SSL object is not safe for concurrent SSL_read/SSL_write,
 * and channel.h allows one sending and one receiving thread at once. So
 * the socket is non-blocking, a mutex is held only around each SSL_* call
 * (a write call encrypts at most TLS_WRITE_CHUNK bytes), and poll() runs
 * outside it, on what the call wants (a read can want to write, and the
 * other way round). The handshake runs once (hs_mu), in ops->handshake,
 * connect, or the first send/recv of an accepted channel. Writes go out
 * with send(MSG_NOSIGNAL) through a socket BIO whose write is replaced
 * (kTLS keeps OpenSSL's own write, under a blocked SIGPIPE).
 *
 * Kernel TLS is asked for (SSL_OP_ENABLE_KTLS); OpenSSL uses it when the
 * kernel has it and stays in user space otherwise; info.ktls says which.
 */
#include "protocol/channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/err.h"

#define TLS_WRITE_CHUNK (64u << 10)	/* bytes encrypted per locked SSL_write */
#define TLS_READY 0x01			/* the server's "you are accepted" byte */
#define TLS_PSK_KEY_MAX 48		/* SSL_SESSION_set1_master_key's limit */
#define TLS_PSK_ID_MAX 128
#define MSG 256

/* TLS_AES_128_GCM_SHA256: the suite an external PSK is bound to (SHA-256) */
static const unsigned char psk_suite[2] = { 0x13, 0x01 };
#define PSK_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"

struct tls_psk {
	struct tls_psk *next;
	char identity[TLS_PSK_ID_MAX + 1];
	uint8_t key[TLS_PSK_KEY_MAX];
	size_t len;
	uint64_t expires_ms;		/* clock_now_ms() */
};

/* The listener's state; every accepted connection holds a reference. */
struct tls_listener {
	atomic_int refs;
	SSL_CTX *ctx;
	bool certs;			/* tls_dir given: certificate clients too */
	char dir[PATH_MAX];
	pthread_mutex_t mu;		/* psks */
	struct tls_psk *psks;
};

struct tls_conn {
	SSL *ssl;
	SSL_CTX *ctx;			/* the client's own; NULL for accepted ones */
	BIO_METHOD *biom;
	struct tls_listener *lst;	/* accepted ones */
	int fd;
	bool server;
	bool have_cert;			/* this side presents a certificate */
	bool psk;			/* client: PSK mode */
	char dir[PATH_MAX];
	char name[300];			/* client: the name checked */
	uint8_t psk_key[TLS_PSK_KEY_MAX];
	size_t psk_len;
	char psk_id[TLS_PSK_ID_MAX + 1];

	pthread_mutex_t mu;		/* held around each SSL_* call */
	pthread_mutex_t hs_mu;		/* one handshake */
	atomic_bool hs_done;
	int hs_ret;
	char hs_msg[MSG];
	atomic_bool shut_rd, shut_wr;

	/* the first verification failure, from verify_cb */
	int verr;
	char vsubject[128];
	char vsans[200];
	char vnotafter[40];
	/* server: what the PSK lookup found */
	bool psk_seen;
	char psk_problem[300];

	struct channel_info info;	/* filled when the handshake is done */
	int (*sock_write)(BIO *b, const char *buf, int len);	/* kTLS path */
};

/* ---- helpers --------------------------------------------------------------------- */

static const char *ssl_reason(unsigned long e, char *buf, size_t cap)
{
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r)
		snprintf(buf, cap, "%s", r);
	else if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "no OpenSSL reason");
	return buf;
}

static void cert_cn(X509 *x, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (x && X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
					   (int)cap) < 0)
		buf[0] = '\0';
}

/* "DNS:localhost, IP:127.0.0.1" */
static void cert_sans(X509 *x, char *buf, size_t cap)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[80] = "";
		int n;

		if (g->type == GEN_DNS) {
			snprintf(one, sizeof(one), "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
				 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
			int l = ASN1_STRING_length(g->d.iPAddress);
			char ip[INET6_ADDRSTRLEN] = "?";

			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6, p, ip, sizeof(ip));
			snprintf(one, sizeof(one), "IP:%s", ip);
		}
		if (!one[0])
			continue;
		n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", one);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
	}
	GENERAL_NAMES_free(gens);
	if (!buf[0])
		snprintf(buf, cap, "no subjectAltName");
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	BIO *m;

	if (ok || !c || c->verr)
		return ok;
	c->verr = X509_STORE_CTX_get_error(x);
	cert_cn(leaf, c->vsubject, sizeof(c->vsubject));
	if (leaf)
		cert_sans(leaf, c->vsans, sizeof(c->vsans));
	m = BIO_new(BIO_s_mem());
	if (m && leaf && ASN1_TIME_print(m, X509_get0_notAfter(leaf))) {
		int n = BIO_read(m, c->vnotafter, (int)sizeof(c->vnotafter) - 1);

		c->vnotafter[n > 0 ? n : 0] = '\0';
	}
	BIO_free(m);
	return ok;
}

/* Check that dir/name can be read; path gets the full name. */
static int check_file(const char *dir, const char *name, char *path, size_t cap, char *err,
		      size_t errlen)
{
	int n = snprintf(path, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return err_set(-ENAMETOOLONG, err, errlen, "TLS credentials: %s/%s: name too long",
			       dir, name);
	if (access(path, R_OK) < 0)
		return err_set(-errno, err, errlen, "TLS credentials: cannot read %s: %s", path,
			       strerror(errno));
	return 0;
}

static int load_fail(const char *path, const char *what, char *err, size_t errlen)
{
	char r[160];

	ssl_reason(ERR_peek_last_error(), r, sizeof(r));
	ERR_clear_error();
	return err_set(-EINVAL, err, errlen, "TLS credentials: %s is not %s (%s)", path, what, r);
}

/* The CA and this side's certificate and key (role "server" or "client"). */
static int load_creds(SSL_CTX *ctx, const char *dir, const char *role, bool optional,
		      bool *have_cert, char *err, size_t errlen)
{
	char ca[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32], name[32];
	int ret, rc, rk;

	ret = check_file(dir, "ca-cert.pem", ca, sizeof(ca), err, errlen);
	if (ret < 0)
		return ret;
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		return load_fail(ca, "a PEM CA certificate", err, errlen);
	snprintf(name, sizeof(name), "%s-cert.pem", role);
	rc = check_file(dir, name, cert, sizeof(cert), err, errlen);
	snprintf(name, sizeof(name), "%s-key.pem", role);
	rk = check_file(dir, name, key, sizeof(key), NULL, 0);
	*have_cert = false;
	/* a client without either file connects without a certificate */
	if (optional && rc == -ENOENT && rk == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (rk < 0)
		return check_file(dir, name, key, sizeof(key), err, errlen);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return load_fail(cert, "a PEM certificate", err, errlen);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return load_fail(key, "a PEM private key", err, errlen);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		return err_set(-EINVAL, err, errlen, "TLS credentials: %s is not the key of %s",
			       key, cert);
	}
	*have_cert = true;
	return 0;
}

static SSL_CTX *new_ctx(bool server, const struct channel_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		err_set(-ENOMEM, err, errlen, "TLS: cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_ENABLE_KTLS |
				 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	if (o->tls_ciphers && o->tls_ciphers[0] &&
	    SSL_CTX_set_ciphersuites(ctx, o->tls_ciphers) != 1) {
		ERR_clear_error();
		err_set(-EINVAL, err, errlen, "TLS: no usable TLS 1.3 cipher suite in '%s'",
			o->tls_ciphers);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- a socket BIO that never raises SIGPIPE ---------------------------------------- */

static int nosig_write(BIO *b, const char *buf, int len)
{
	struct tls_conn *c = BIO_get_app_data(b);
	ssize_t n;

	if (BIO_get_ktls_send(b)) {
		/* OpenSSL's own write (control records); SIGPIPE blocked around it */
		sigset_t set, old, pend;
		bool was;
		int r;

		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		sigpending(&pend);
		was = sigismember(&pend, SIGPIPE);
		r = c->sock_write(b, buf, len);
		if (!was) {
			struct timespec zero = { 0, 0 };
			int e = errno;

			sigpending(&pend);
			if (sigismember(&pend, SIGPIPE))
				while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
					;
			errno = e;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return r;
	}
	BIO_clear_retry_flags(b);
	n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && BIO_sock_should_retry((int)n))
		BIO_set_retry_write(b);
	return (int)n;
}

static BIO_METHOD *nosig_method(struct tls_conn *c)
{
	const BIO_METHOD *s = BIO_s_socket();
	BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "kvmig socket");

	if (!m)
		return NULL;
	c->sock_write = BIO_meth_get_write(s);
	BIO_meth_set_write(m, nosig_write);
	BIO_meth_set_read(m, BIO_meth_get_read(s));
	BIO_meth_set_puts(m, BIO_meth_get_puts(s));
	BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(s));
	BIO_meth_set_create(m, BIO_meth_get_create(s));
	BIO_meth_set_destroy(m, BIO_meth_get_destroy(s));
	return m;
}

/* ---- connections --------------------------------------------------------------------- */

static void listener_put(struct tls_listener *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	for (struct tls_psk *p = l->psks, *n; p; p = n) {
		n = p->next;
		OPENSSL_cleanse(p->key, sizeof(p->key));
		free(p);
	}
	pthread_mutex_destroy(&l->mu);
	SSL_CTX_free(l->ctx);
	free(l);
}

static void conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);	/* and its BIO */
	BIO_meth_free(c->biom);
	SSL_CTX_free(c->ctx);
	listener_put(c->lst);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->hs_mu);
	OPENSSL_cleanse(c->psk_key, sizeof(c->psk_key));
	free(c);
}

/* A connection on fd (non-blocking from here on) with an SSL of ctx. */
static struct tls_conn *conn_new(SSL_CTX *ctx, int fd, bool server, char *err, size_t errlen)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *b = NULL;
	int fl = fcntl(fd, F_GETFL);

	if (!c) {
		err_set(-ENOMEM, err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->hs_mu, NULL);
	c->fd = fd;
	c->server = server;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		err_set(-errno, err, errlen, "TLS: fcntl: %s", strerror(errno));
		goto fail;
	}
	c->ssl = SSL_new(ctx);
	c->biom = nosig_method(c);
	if (c->ssl && c->biom)
		b = BIO_new(c->biom);
	if (!b) {
		err_set(-ENOMEM, err, errlen, "TLS: out of memory");
		goto fail;
	}
	BIO_set_fd(b, fd, BIO_NOCLOSE);
	BIO_set_app_data(b, c);
	SSL_set_bio(c->ssl, b, b);
	SSL_set_app_data(c->ssl, c);
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	return c;
fail:
	conn_free(c);
	return NULL;
}

static int wait_fd(int fd, short events, int left_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, left_ms);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* OP_READY: the client's read of the ready byte, a part of the handshake */
enum tls_op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_READY };

/* What a failed SSL call left behind, taken while the lock was held. */
struct tls_fail {
	int ssl_err;
	int sys_errno;
	unsigned long e;
};

static bool is_cert_alert(int a)
{
	return (a >= SSL_AD_BAD_CERTIFICATE && a <= SSL_AD_UNKNOWN_CA) ||
	       a == SSL_AD_ACCESS_DENIED || a == TLS13_AD_CERTIFICATE_REQUIRED;
}

static const char *alert_words(int a)
{
	switch (a) {
	case SSL_AD_CERTIFICATE_EXPIRED:
		return "certificate expired";
	case SSL_AD_UNKNOWN_CA:
		return "unknown CA";
	case TLS13_AD_CERTIFICATE_REQUIRED:
		return "no client certificate";
	default:
		return SSL_alert_desc_string_long(a);
	}
}

static bool not_tls(int reason)
{
	return reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST ||
	       reason == SSL_R_HTTPS_PROXY_REQUEST || reason == SSL_R_UNKNOWN_PROTOCOL ||
	       reason == SSL_R_PACKET_LENGTH_TOO_LONG || reason == SSL_R_RECORD_LENGTH_MISMATCH ||
	       reason == SSL_R_LENGTH_TOO_SHORT || reason == SSL_R_UNEXPECTED_MESSAGE ||
	       reason == SSL_R_RECORD_TOO_SMALL;
}

/* Our check of the peer's certificate failed: say how, in words. */
static int verify_words(struct tls_conn *c, char *err, size_t errlen)
{
	const char *peer = c->server ? "client" : "server";
	const char *ca = c->server ? (c->lst ? c->lst->dir : "") : c->dir;

	switch (c->verr) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return err_set(-EACCES, err, errlen,
			       "certificate expired: the %s's certificate (CN=%s) expired %s", peer,
			       c->vsubject, c->vnotafter);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return err_set(-EACCES, err, errlen,
			       "certificate not yet valid: the %s's certificate (CN=%s)", peer,
			       c->vsubject);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return err_set(-EACCES, err, errlen,
			       "unknown CA: the %s's certificate (CN=%s) is not signed by the CA "
			       "of %s/ca-cert.pem", peer, c->vsubject, ca);
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return err_set(-EACCES, err, errlen,
			       "name mismatch: the server's certificate (CN=%s) is not for '%s'; "
			       "it has %s", c->vsubject, c->name, c->vsans);
	default:
		return err_set(-EACCES, err, errlen, "the %s's certificate (CN=%s) is refused: %s",
			       peer, c->vsubject, X509_verify_cert_error_string(c->verr));
	}
}

/* A failed SSL call in words. handshake: it happened while setting up. */
static int tls_words(struct tls_conn *c, enum tls_op op, const struct tls_fail *f, size_t got,
		     char *err, size_t errlen)
{
	const char *peer = c->server ? "client" : "server";
	bool hs = op == OP_HANDSHAKE || op == OP_READY;
	bool shut = atomic_load(op == OP_WRITE ? &c->shut_wr : &c->shut_rd) ||
		    (hs && atomic_load(&c->shut_wr));
	int reason = f->e && ERR_GET_LIB(f->e) == ERR_LIB_SSL ? ERR_GET_REASON(f->e) : 0;
	char r[160];

	if (shut)
		return err_set(-ECANCELED, err, errlen, "the channel was shut down");
	if (f->ssl_err == SSL_ERROR_ZERO_RETURN) {
		if (hs)
			return err_set(-ECONNRESET, err, errlen,
				       "the peer closed the connection during the TLS handshake");
		return err_set(got ? -ECONNRESET : -ENODATA, err, errlen,
			       "the peer closed the connection");
	}
	if (hs && c->verr)
		return verify_words(c, err, errlen);
	if (hs && c->psk_problem[0])
		return err_set(-EACCES, err, errlen, "%s", c->psk_problem);
	if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		return err_set(-EACCES, err, errlen,
			       "no client certificate: the client sent none, and this listener "
			       "requires one");
	if (reason == SSL_R_BINDER_DOES_NOT_VERIFY)
		return err_set(-EACCES, err, errlen,
			       "wrong pre-shared key for identity '%s' (the binder does not "
			       "verify)", c->psk_id);
	if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
		int a = reason - SSL_AD_REASON_OFFSET;

		if (c->psk)
			return err_set(-EACCES, err, errlen,
				       "the server refused the pre-shared key '%s' (unknown identity, "
				       "wrong or expired key): TLS alert '%s'", c->psk_id,
				       SSL_alert_desc_string_long(a));
		if (a == TLS13_AD_CERTIFICATE_REQUIRED && !c->have_cert)
			return err_set(-EACCES, err, errlen,
				       "no client certificate: the server requires one, and %s has "
				       "no client-cert.pem", c->dir);
		if (is_cert_alert(a))
			return err_set(-EACCES, err, errlen,
				       "the %s refused our certificate (%s/%s-cert.pem): %s (TLS "
				       "alert)%s", peer, c->server ? c->lst->dir : c->dir,
				       c->server ? "server" : "client", alert_words(a),
				       c->server && a == SSL_AD_BAD_CERTIFICATE ?
				       "; a name mismatch? (the name the client dialled is not in "
				       "it)" : "");
		return err_set(-EACCES, err, errlen, "the %s refused the TLS handshake: TLS alert "
			       "'%s'%s", peer, SSL_alert_desc_string_long(a),
			       c->server && a == SSL_AD_HANDSHAKE_FAILURE ?
			       " (our certificate may not name the host the client dialled)" : "");
	}
	if (hs && c->server && c->lst && !c->lst->certs && !c->psk_seen)
		return err_set(-EACCES, err, errlen,
			       "this listener has no --tls-dir and serves only pre-shared-key "
			       "connections: the client offered no key (a certificate client?)");
	if (hs && not_tls(reason))
		return err_set(-EPROTO, err, errlen, "the peer does not speak TLS (%s)",
			       c->server ? "plain TCP to a TLS listener?"
					 : "a tls:// connection to a plain TCP listener?");
	if (f->ssl_err == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		int e = f->sys_errno;

		if (hs)
			return err_set(-ECONNRESET, err, errlen,
				       "the peer closed the connection during the TLS handshake%s%s",
				       e ? ": " : "", e ? strerror(e) : "");
		if (e && e != EPIPE && e != ECONNRESET && e != ENOTCONN)
			return err_set(-e, err, errlen, "TLS %s: %s",
				       op == OP_READ ? "recv" : "send", strerror(e));
		return err_set(-ECONNRESET, err, errlen, "the peer closed the connection%s%s",
			       e ? ": " : " without a TLS close_notify", e ? strerror(e) : "");
	}
	ssl_reason(f->e, r, sizeof(r));
	return err_set(-EPROTO, err, errlen, "TLS %s failed: %s",
		       hs ? "handshake" : op == OP_READ ? "recv" : "send", r);
}

/*
 * One SSL call, retried after poll() until it completes. deadline_ms: an
 * absolute end (the handshake), or 0: each wait is bounded by timeout_ms.
 * Return: 0 (*n bytes for read/write), -errno with a message.
 */
static int tls_call(struct channel *ch, struct tls_conn *c, enum tls_op op, void *buf, size_t len,
		    size_t *n, uint64_t deadline_ms, size_t got, char *err, size_t errlen)
{
	int timeout_ms = channel_timeout(ch);

	for (;;) {
		atomic_bool *shut = op == OP_WRITE ? &c->shut_wr : &c->shut_rd;
		struct tls_fail f = { 0, 0, 0 };
		int r, left = timeout_ms;

		if (atomic_load(shut))
			return err_set(-ECANCELED, err, errlen, "the channel was shut down");
		pthread_mutex_lock(&c->mu);
		ERR_clear_error();
		errno = 0;
		switch (op) {
		case OP_HANDSHAKE:
			r = SSL_do_handshake(c->ssl);
			break;
		case OP_READ:
		case OP_READY:
			r = SSL_read_ex(c->ssl, buf, len, n);
			break;
		case OP_WRITE:
		default:
			r = SSL_write_ex(c->ssl, buf, len, n);
			break;
		}
		if (r <= 0) {
			f.ssl_err = SSL_get_error(c->ssl, r);
			f.sys_errno = errno;
			f.e = ERR_peek_error();
		}
		pthread_mutex_unlock(&c->mu);
		if (r > 0)
			return 0;
		if (f.ssl_err != SSL_ERROR_WANT_READ && f.ssl_err != SSL_ERROR_WANT_WRITE)
			return tls_words(c, op, &f, got, err, errlen);
		if (deadline_ms) {
			uint64_t now = clock_now_ms();

			left = now >= deadline_ms ? 0 : (int)(deadline_ms - now);
		}
		r = wait_fd(c->fd, f.ssl_err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, left);
		if (r == -ETIMEDOUT) {
			if (op == OP_HANDSHAKE || op == OP_READY)
				return err_set(r, err, errlen, "no TLS handshake from the %s within "
					       "%d ms", c->server ? "client" : "server", timeout_ms);
			return err_set(r, err, errlen, op == OP_READ ?
				       "no data from the peer for %d ms" :
				       "the peer accepted no data for %d ms", timeout_ms);
		}
		if (r < 0)
			return err_set(r, err, errlen, "poll: %s", strerror(-r));
	}
}

static void fill_info(struct tls_conn *c)
{
	struct channel_info *i = &c->info;
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	snprintf(i->kind, sizeof(i->kind), "tls");
	snprintf(i->version, sizeof(i->version), "%s", SSL_get_version(c->ssl));
	snprintf(i->cipher, sizeof(i->cipher), "%s", SSL_get_cipher_name(c->ssl));
	i->ktls = BIO_get_ktls_send(SSL_get_wbio(c->ssl)) ||
		  BIO_get_ktls_recv(SSL_get_rbio(c->ssl));
	if (peer)
		cert_cn(peer, i->peer, sizeof(i->peer));
	else if (c->psk || c->psk_seen)
		snprintf(i->peer, sizeof(i->peer), "psk:%.120s", c->psk_id);
}

/* The handshake and the ready byte, once; later calls repeat its result. */
static int do_handshake(struct channel *ch, struct tls_conn *c, char *err, size_t errlen)
{
	int timeout_ms = channel_timeout(ch);
	uint64_t deadline = timeout_ms >= 0 ? clock_now_ms() + (uint64_t)timeout_ms + 1 : 0;
	uint8_t b = TLS_READY;
	size_t n = 0;
	int ret;

	if (atomic_load(&c->hs_done))
		goto done;
	pthread_mutex_lock(&c->hs_mu);
	if (atomic_load(&c->hs_done)) {
		pthread_mutex_unlock(&c->hs_mu);
		goto done;
	}
	ret = tls_call(ch, c, OP_HANDSHAKE, NULL, 0, &n, deadline, 0, c->hs_msg,
		       sizeof(c->hs_msg));
	if (ret == 0 && c->server)
		ret = tls_call(ch, c, OP_WRITE, &b, 1, &n, deadline, 0, c->hs_msg,
			       sizeof(c->hs_msg));
	if (ret == 0 && !c->server) {
		b = 0;
		/* a refusal of our certificate arrives here, as an alert */
		ret = tls_call(ch, c, OP_READY, &b, 1, &n, deadline, 0, c->hs_msg,
			       sizeof(c->hs_msg));
		if (ret == -ETIMEDOUT)
			ret = err_set(ret, c->hs_msg, sizeof(c->hs_msg),
				      "the TLS server did not confirm the handshake within %d ms",
				      timeout_ms);
		if (ret == 0 && b != TLS_READY)
			ret = err_set(-EPROTO, c->hs_msg, sizeof(c->hs_msg),
				      "the TLS server is not a kvmig agent (first byte 0x%02x)", b);
	}
	if (ret == 0) {
		pthread_mutex_lock(&c->mu);
		fill_info(c);
		pthread_mutex_unlock(&c->mu);
	}
	c->hs_ret = ret;
	atomic_store(&c->hs_done, true);
	pthread_mutex_unlock(&c->hs_mu);
done:
	if (c->hs_ret < 0)
		return err_set(c->hs_ret, err, errlen, "%s", c->hs_msg);
	return 0;
}

static int tls_handshake(struct channel *ch, char *err, size_t errlen)
{
	return do_handshake(ch, channel_priv(ch), err, errlen);
}

static int tls_send(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		    size_t errlen)
{
	struct tls_conn *c = channel_priv(ch);
	int ret = do_handshake(ch, c, err, errlen);

	for (int i = 0; ret == 0 && i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left && ret == 0) {
			size_t n = 0;

			ret = tls_call(ch, c, OP_WRITE, (void *)(uintptr_t)p, MIN(left, TLS_WRITE_CHUNK),
				       &n, 0, 0, err, errlen);
			p += n;
			left -= n;
		}
	}
	return ret;
}

static ssize_t tls_recv(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			size_t errlen)
{
	struct tls_conn *c = channel_priv(ch);
	size_t got = 0;
	int ret;

	if (min == 0 || min > max)
		return err_set(-EINVAL, err, errlen, "recv: min %zu, max %zu", min, max);
	ret = do_handshake(ch, c, err, errlen);
	while (ret == 0 && got < min) {
		size_t n = 0;

		ret = tls_call(ch, c, OP_READ, (uint8_t *)buf + got, max - got, &n, 0, got, err,
			       errlen);
		got += n;
	}
	return ret < 0 ? ret : (ssize_t)got;
}

static int tls_shutdown(struct channel *ch, int how)
{
	struct tls_conn *c = channel_priv(ch);

	if (how == SHUT_RD || how == SHUT_RDWR)
		atomic_store(&c->shut_rd, true);
	if (how == SHUT_WR || how == SHUT_RDWR) {
		/* close_notify first, best effort: the socket never blocks here */
		if (atomic_load(&c->hs_done) && c->hs_ret == 0) {
			pthread_mutex_lock(&c->mu);
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
			pthread_mutex_unlock(&c->mu);
		}
		atomic_store(&c->shut_wr, true);
	}
	return shutdown(c->fd, how) < 0 ? -errno : 0;
}

static void tls_close(struct channel *ch)
{
	struct tls_conn *c = channel_priv(ch);
	int fd = channel_fd(ch);

	conn_free(c);
	if (fd >= 0)
		close(fd);
}

/*
 * channel_wait(): a record OpenSSL already decrypted (a recv that asked for
 * less than the record held), or one it already read from the socket, is
 * readable although the socket is quiet: SSL_has_pending() covers both
 * (SSL_pending() only the first, and a reader could then wait forever).
 */
static int tls_wait(struct channel *ch, int timeout_ms)
{
	struct tls_conn *c = channel_priv(ch);
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int pending, n;

	pthread_mutex_lock(&c->mu);
	pending = atomic_load(&c->hs_done) ? SSL_pending(c->ssl) > 0 || SSL_has_pending(c->ssl) : 0;
	pthread_mutex_unlock(&c->mu);
	if (pending > 0)
		return 1;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n > 0;
}

static int tls_get_fd(const struct channel *ch)
{
	const struct tls_conn *c = channel_priv(ch);

	return c ? c->fd : -1;
}

static void tls_info(const struct channel *ch, struct channel_info *info)
{
	struct tls_conn *c = channel_priv(ch);

	if (atomic_load(&c->hs_done) && c->hs_ret == 0)
		*info = c->info;
}

/* ---- PSK ---------------------------------------------------------------------------- */

static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key, size_t len)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
	SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;

	if (s && (!SSL_SESSION_set1_master_key(s, key, len) ||
		  !SSL_SESSION_set_cipher(s, cipher) ||
		  !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))) {
		SSL_SESSION_free(s);
		s = NULL;
	}
	return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		      SSL_SESSION **sess)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);

	*sess = NULL;
	if (!cipher || (md && md != SSL_CIPHER_get_handshake_digest(cipher)))
		return 1;	/* no PSK for this hash */
	*sess = psk_session(ssl, c->psk_key, c->psk_len);
	if (!*sess)
		return 0;
	*id = (const unsigned char *)c->psk_id;
	*idlen = strlen(c->psk_id);
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct tls_listener *l = c->lst;
	uint64_t now = clock_now_ms();
	struct tls_psk *p;

	*sess = NULL;
	c->psk_seen = true;
	snprintf(c->psk_id, sizeof(c->psk_id), "%.*s", (int)MIN(idlen, (size_t)TLS_PSK_ID_MAX),
		 (const char *)id);
	pthread_mutex_lock(&l->mu);
	for (p = l->psks; p; p = p->next)
		if (strlen(p->identity) == idlen && !memcmp(p->identity, id, idlen))
			break;
	if (!p)
		snprintf(c->psk_problem, sizeof(c->psk_problem),
			 "unknown pre-shared key identity '%s'", c->psk_id);
	else if (now >= p->expires_ms)
		snprintf(c->psk_problem, sizeof(c->psk_problem),
			 "the pre-shared key '%s' expired %llu ms ago", c->psk_id,
			 (unsigned long long)(now - p->expires_ms));
	else
		*sess = psk_session(ssl, p->key, p->len);
	pthread_mutex_unlock(&l->mu);
	return *sess != NULL;	/* 0: refuse the connection */
}

int channel_tls_add_psk(void *priv, const char *identity, const uint8_t *key, size_t len,
			uint64_t expires_ms)
{
	struct tls_listener *l = priv;
	struct tls_psk *p, **pp;

	if (!identity || !identity[0] || strlen(identity) > TLS_PSK_ID_MAX || !key || len < 16 ||
	    len > TLS_PSK_KEY_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->identity, sizeof(p->identity), "%s", identity);
	memcpy(p->key, key, len);
	p->len = len;
	p->expires_ms = expires_ms;
	pthread_mutex_lock(&l->mu);
	for (pp = &l->psks; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->identity, identity)) {
			struct tls_psk *old = *pp;

			p->next = old->next;
			*pp = p;
			OPENSSL_cleanse(old->key, sizeof(old->key));
			free(old);
			p = NULL;
			break;
		}
	}
	if (p) {
		p->next = l->psks;
		l->psks = p;
	}
	pthread_mutex_unlock(&l->mu);
	return 0;
}

void channel_tls_remove_psk(void *priv, const char *identity)
{
	struct tls_listener *l = priv;

	pthread_mutex_lock(&l->mu);
	for (struct tls_psk **pp = &l->psks; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->identity, identity)) {
			struct tls_psk *old = *pp;

			*pp = old->next;
			OPENSSL_cleanse(old->key, sizeof(old->key));
			free(old);
			break;
		}
	}
	pthread_mutex_unlock(&l->mu);
}

/* ---- connect, listen, accept ------------------------------------------------------------ */

static bool is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int tls_connect(const struct uri *u, const struct channel_opts *o, int timeout_ms,
		       struct channel **out, char *err, size_t errlen)
{
	uint64_t t0 = clock_now_ms();
	bool psk = o->tls_psk && o->tls_psk_len;
	const char *name = o->tls_hostname && o->tls_hostname[0] ? o->tls_hostname : u->host;
	bool have_cert = false;
	struct tls_conn *c;
	SSL_CTX *ctx;
	int fd, ret;

	*out = NULL;
	if (psk && (!o->tls_psk_identity || !o->tls_psk_identity[0] ||
		    strlen(o->tls_psk_identity) > TLS_PSK_ID_MAX || o->tls_psk_len < 16 ||
		    o->tls_psk_len > TLS_PSK_KEY_MAX))
		return err_set(-EINVAL, err, errlen, "TLS: a pre-shared key needs an identity of "
			       "1..%d bytes and 16..%d key bytes", TLS_PSK_ID_MAX, TLS_PSK_KEY_MAX);
	if (!psk && (!o->tls_dir || !o->tls_dir[0]))
		return err_set(-EINVAL, err, errlen, "tls://%s:%u: no TLS credentials directory "
			       "(--tls-dir with ca-cert.pem, client-cert.pem, client-key.pem)",
			       u->host, u->port);
	ctx = new_ctx(false, o, err, errlen);
	if (!ctx)
		return -EINVAL;
	if (psk) {
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
		/* the key is bound to SHA-256: offer only suites of that hash */
		if (!o->tls_ciphers || !o->tls_ciphers[0])
			SSL_CTX_set_ciphersuites(ctx, PSK_SUITES);
		/* a server that answers with a certificate instead is not trusted */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	} else {
		ret = load_creds(ctx, o->tls_dir, "client", true, &have_cert, err, errlen);
		if (ret < 0) {
			SSL_CTX_free(ctx);
			return ret;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	}
	ret = channel_tcp_dial(u, timeout_ms, &fd, err, errlen);
	if (ret < 0) {
		SSL_CTX_free(ctx);
		return ret;
	}
	c = conn_new(ctx, fd, false, err, errlen);
	if (!c) {
		SSL_CTX_free(ctx);
		close(fd);
		return -ENOMEM;
	}
	c->ctx = ctx;
	c->have_cert = have_cert;
	c->psk = psk;
	snprintf(c->dir, sizeof(c->dir), "%s", psk ? "" : o->tls_dir);
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (psk) {
		memcpy(c->psk_key, o->tls_psk, o->tls_psk_len);
		c->psk_len = o->tls_psk_len;
		snprintf(c->psk_id, sizeof(c->psk_id), "%s", o->tls_psk_identity);
		SSL_set_psk_use_session_callback(c->ssl, psk_use_cb);
	} else {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

		if (is_ip(name)) {
			ret = X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -EINVAL;
		} else {
			X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ret = SSL_set1_host(c->ssl, name) == 1 &&
			      SSL_set_tlsext_host_name(c->ssl, name) == 1 ? 0 : -EINVAL;
		}
		if (ret < 0) {
			ERR_clear_error();
			conn_free(c);
			close(fd);
			return err_set(ret, err, errlen, "TLS: cannot check the name '%s'", name);
		}
	}
	ret = channel_open(&channel_tls_ops, fd, c, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "out of memory");
	/* the handshake within what is left of the timeout */
	if (timeout_ms >= 0) {
		uint64_t used = clock_now_ms() - t0;

		channel_set_timeout(*out, used >= (uint64_t)timeout_ms ? 0 :
				    timeout_ms - (int)used);
	}
	ret = do_handshake(*out, c, err, errlen);
	channel_set_timeout(*out, timeout_ms);
	if (ret < 0) {
		char m[MSG];

		snprintf(m, sizeof(m), "%s", err ? err : "");
		channel_close(*out);
		*out = NULL;
		return err_set(ret, err, errlen, "tls://%s:%u: %s", u->host, u->port, m);
	}
	return 0;
}

static int tls_listen(struct uri *u, const struct channel_opts *o, int *fd, void **priv,
		      char *err, size_t errlen)
{
	struct tls_listener *l;
	bool have = false;
	int ret;

	*priv = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	atomic_init(&l->refs, 1);
	pthread_mutex_init(&l->mu, NULL);
	l->ctx = new_ctx(true, o, err, errlen);
	if (!l->ctx) {
		listener_put(l);
		return -EINVAL;
	}
	l->certs = o->tls_dir && o->tls_dir[0];
	if (l->certs) {
		snprintf(l->dir, sizeof(l->dir), "%s", o->tls_dir);
		ret = load_creds(l->ctx, o->tls_dir, "server", false, &have, err, errlen);
		if (ret < 0) {
			listener_put(l);
			return ret;
		}
		SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_cb);
	}
	SSL_CTX_set_session_id_context(l->ctx, (const unsigned char *)"kvmig", 5);
	SSL_CTX_set_psk_find_session_callback(l->ctx, psk_find_cb);
	ret = channel_tcp_bind(u, fd, err, errlen);
	if (ret < 0) {
		listener_put(l);
		return ret;
	}
	*priv = l;
	return 0;
}

static int tls_accept(int lfd, void *priv, int wait_ms, int timeout_ms, struct channel **out,
		      char *err, size_t errlen)
{
	struct tls_listener *l = priv;
	struct tls_conn *c;
	int fd, ret = channel_sock_accept_setup(lfd, wait_ms, channel_tcp_setup, &fd, err, errlen);

	if (ret < 0)
		return ret;
	c = conn_new(l->ctx, fd, true, err, errlen);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	atomic_fetch_add(&l->refs, 1);
	c->lst = l;
	c->have_cert = l->certs;
	ret = channel_open(&channel_tls_ops, fd, c, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "accept: out of memory");
	return 0;
}

static void tls_unlisten(const struct uri *u, int fd, void *priv)
{
	(void)u;
	if (fd >= 0)
		close(fd);
	listener_put(priv);
}

const struct channel_ops channel_tls_ops = {
	.name = "tls",
	.send = tls_send,
	.recv = tls_recv,
	.wait = tls_wait,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.get_fd = tls_get_fd,
	.handshake = tls_handshake,
	.info = tls_info,
	.connect = tls_connect,
	.listen = tls_listen,
	.accept = tls_accept,
	.unlisten = tls_unlisten,
};
