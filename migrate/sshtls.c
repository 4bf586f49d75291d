/* SPDX-License-Identifier: MIT */
#include "migrate/sshtls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/err.h"
#include "migrate/mio.h"
#include "protocol/frame.h"
#include "protocol/uri.h"

#define ID_BYTES 16	/* random bytes of the identity: 32 hex digits, less one for the NUL */

static int random_bytes(void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom((uint8_t *)buf + got, n - got, 0);

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			got += (size_t)r;
	}
	return 0;
}

int sshtls_exchange(const char *ssh_uri, const struct channel_opts *co, int timeout_ms,
		    struct sshtls *out, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	struct wire_key k = {.key_len = WIRE_KEY_MAX, .lifetime_ms = SSHTLS_KEY_LIFETIME_MS};
	uint8_t id[ID_BYTES], f[WIRE_HDR_BYTES + WIRE_KEY_BYTES + WIRE_CRC_BYTES];
	struct wire_key_ack ack;
	struct frame_hdr h;
	struct mio io;
	struct uri u, t;
	uint8_t *buf;
	char msg[300];
	ssize_t n;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = uri_parse(ssh_uri, &u, err, errlen);
	if (ret < 0)
		return ret;
	if (u.scheme != URI_SSH)
		return err_set(-EINVAL, err, errlen, "--ssh-data tls needs an ssh:// destination, not %s",
			       ssh_uri);
	/* the identity is ID_BYTES random bytes in hex: 31 of them fit the field */
	if (random_bytes(id, sizeof(id)) < 0 || random_bytes(out->key, sizeof(out->key)) < 0)
		return err_set(-EIO, err, errlen, "no random bytes for the one-time key");
	for (size_t i = 0; i < sizeof(id) && 2 * i + 1 < WIRE_KEY_ID_BYTES - 1; i++) {
		out->identity[2 * i] = hex[id[i] >> 4];
		out->identity[2 * i + 1] = hex[id[i] & 15];
	}
	memcpy(k.identity, out->identity, sizeof(k.identity));
	memcpy(k.key, out->key, sizeof(k.key));
	n = frame_put_key(f, sizeof(f), &k);
	explicit_bzero(&k, sizeof(k));
	if (n < 0)
		return err_set((int)n, err, errlen, "cannot build the KEY frame");

	buf = malloc(MIO_FRAME_BUF);
	if (!buf)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	ret = mio_connect(&io, ssh_uri, co, timeout_ms, err, errlen);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	ret = mio_write(&io, f, (size_t)n);
	explicit_bzero(f, sizeof(f));
	if (ret == 0)
		ret = mio_flush(&io);
	if (ret < 0) {
		err_set(ret, err, errlen, "the destination is gone: %s", strerror(-ret));
		goto out;
	}
	ret = mio_wait_readable(&io, timeout_ms);
	if (ret == 0)
		ret = err_set(-ETIMEDOUT, err, errlen,
			      "the destination did not answer the key exchange within %d s",
			      timeout_ms / 1000);
	if (ret < 0)
		goto out;
	ret = mio_read_frame(&io, buf, MIO_FRAME_BUF, &h, msg, sizeof(msg));
	if (ret < 0) {
		err_set(ret, err, errlen, "the destination closed the key exchange: %s",
			ret == -ENODATA ? "no answer" : msg);
		goto out;
	}
	if (h.type == WIRE_F_ERROR) {
		struct wire_error e;

		ret = frame_get_error(buf + WIRE_HDR_BYTES, h.len, &e, msg, sizeof(msg));
		if (ret == 0)
			ret = err_set(-(int)e.code, err, errlen, "the destination refused: %s", e.msg);
		goto out;
	}
	if (h.type != WIRE_F_KEY_ACK) {
		ret = err_set(-EPROTO, err, errlen, "the destination answered KEY with %s",
			      frame_type_name(h.type));
		goto out;
	}
	ret = frame_get_key_ack(buf + WIRE_HDR_BYTES, h.len, &ack, msg, sizeof(msg));
	if (ret < 0) {
		err_set(ret, err, errlen, "bad key exchange from the destination: %s", msg);
		goto out;
	}
	t = u;
	t.scheme = URI_TLS;
	t.user[0] = '\0';
	t.port = ack.port;
	if (uri_format(&t, out->tls_uri, sizeof(out->tls_uri)) < 0)
		ret = err_set(-ENAMETOOLONG, err, errlen, "the TLS address of %s is too long", u.host);
out:
	mio_close(&io);
	free(buf);
	if (ret < 0)
		explicit_bzero(out, sizeof(*out));
	return ret < 0 ? ret : 0;
}

void sshtls_channel_opts(const struct sshtls *s, struct channel_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->tls_psk = s->key;
	co->tls_psk_len = sizeof(s->key);
	co->tls_psk_identity = s->identity;
}
