/* SPDX-License-Identifier: MIT */
#include "migrate/mio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xio.h"
#include "protocol/channel.h"

#define FILE_BUF (4u << 20)

struct file_priv {
	int fd;
	uint8_t *buf;
	size_t len;
	int err;
};

static int file_flush(struct mio *io)
{
	struct file_priv *f = io->priv;

	if (!f->err && f->len)
		f->err = write_all(f->fd, f->buf, f->len);
	f->len = 0;
	return f->err;
}

static int file_write(struct mio *io, const void *buf, size_t len)
{
	struct file_priv *f = io->priv;

	if (f->err)
		return f->err;
	if (len >= FILE_BUF) {
		if (file_flush(io) < 0)
			return f->err;
		f->err = write_all(f->fd, buf, len);
		return f->err;
	}
	if (f->len + len > FILE_BUF && file_flush(io) < 0)
		return f->err;
	memcpy(f->buf + f->len, buf, len);
	f->len += len;
	return 0;
}

static int file_read(struct mio *io, void *buf, size_t len)
{
	struct file_priv *f = io->priv;
	int ret = read_all(f->fd, buf, len);

	if (!ret)
		io->bytes_in += len;
	return ret;
}

static void file_close(struct mio *io)
{
	struct file_priv *f = io->priv;

	if (!f)
		return;
	free(f->buf);
	free(f);
	io->priv = NULL;
}

int mio_file_open(struct mio *io, int fd)
{
	struct file_priv *f = calloc(1, sizeof(*f));

	memset(io, 0, sizeof(*io));
	if (!f)
		return -ENOMEM;
	f->buf = malloc(FILE_BUF);
	if (!f->buf) {
		free(f);
		return -ENOMEM;
	}
	f->fd = fd;
	io->write = file_write;
	io->flush = file_flush;
	io->read = file_read;
	io->close = file_close;
	io->priv = f;
	return 0;
}

int mio_read_frame(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h, char *err,
		   size_t errlen)
{
	int ret;

	if (io->read_frame)
		return io->read_frame(io, buf, cap, h, err, errlen);
	ret = io->read(io, buf, WIRE_HDR_BYTES);
	if (ret == -ENODATA) {
		snprintf(err, errlen, "the stream ended");
		return ret;
	}
	if (ret < 0) {
		if (ret == -ECONNRESET)
			snprintf(err, errlen, "the stream ended inside a frame header");
		else
			snprintf(err, errlen, "reading the stream failed: %s", strerror(-ret));
		return ret;
	}
	ret = frame_check_header(buf, WIRE_HDR_BYTES, h, err, errlen);
	if (ret < 0)
		return ret;
	if (frame_total(h) > cap) {
		snprintf(err, errlen, "%s frame of %u bytes exceeds the %zu-byte buffer",
			 frame_type_name(h->type), h->len, cap);
		return -EBADMSG;
	}
	ret = io->read(io, buf + WIRE_HDR_BYTES, h->len + WIRE_CRC_BYTES);
	if (ret < 0) {
		snprintf(err, errlen, "the stream ended inside a %s frame of %u bytes",
			 frame_type_name(h->type), h->len);
		return ret == -ENODATA ? -ECONNRESET : ret;
	}
	return frame_check_crc(buf, frame_total(h), err, errlen);
}

/* ---- channels: sockets and, later, TLS and SSH ---------------------------- */

#define CHANNEL_IO_TIMEOUT_MS 30000

static int ch_write(struct mio *io, const void *buf, size_t len)
{
	char msg[200];

	return channel_write(io->priv, buf, len, msg, sizeof(msg));
}

static int ch_flush(struct mio *io)
{
	char msg[200];

	return channel_flush(io->priv, msg, sizeof(msg));
}

static int ch_read_frame(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h,
			 char *err, size_t errlen)
{
	ssize_t n = channel_read_frame(io->priv, buf, cap, h, err, errlen);

	if (n < 0)
		return (int)n;
	io->bytes_in += (uint64_t)n;
	return 0;
}

static int ch_wait(struct mio *io, int timeout_ms)
{
	return channel_wait(io->priv, timeout_ms);
}

static void ch_close(struct mio *io)
{
	channel_close(io->priv);
	io->priv = NULL;
}

static void ch_shutdown(struct mio *io)
{
	channel_shutdown(io->priv, SHUT_RDWR);
}

void mio_channel_open(struct mio *io, struct channel *ch)
{
	memset(io, 0, sizeof(*io));
	io->write = ch_write;
	io->flush = ch_flush;
	io->read_frame = ch_read_frame;
	io->wait = ch_wait;
	io->close = ch_close;
	io->shutdown = ch_shutdown;
	io->priv = ch;
}

int mio_connect(struct mio *io, const char *uri, const struct channel_opts *co, int timeout_ms,
		char *err, size_t errlen)
{
	struct channel *ch;
	int ret = channel_connect_opts(uri, co, timeout_ms, &ch, err, errlen);

	if (ret < 0)
		return ret;
	channel_set_timeout(ch, CHANNEL_IO_TIMEOUT_MS);
	mio_channel_open(io, ch);
	return 0;
}

void mio_get_info(const struct mio *io, struct channel_info *info)
{
	if (io->read_frame == ch_read_frame) {
		channel_get_info(io->priv, info);
		return;
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->kind, sizeof(info->kind), "file");
}
