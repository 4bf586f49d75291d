/* SPDX-License-Identifier: MIT */
/*
 * mio.h - where a migration stream goes and comes from.
 *
 * The engine writes and reads whole frames through a struct mio: a sink
 * and a source of bytes with all-or-error semantics. One implementation is
 * a file (snapshots), another a protocol/channel (sockets, TLS, SSH later);
 * the frame logic above does not know which. mio_read_frame() hands out
 * only frames whose header, length and CRC were checked.
 *
 * Owned and used by one thread at a time.
 */
#ifndef KVMIG_MIGRATE_MIO_H
#define KVMIG_MIGRATE_MIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "protocol/frame.h"

struct mio {
	/* all len bytes or -errno */
	int (*write)(struct mio *io, const void *buf, size_t len);
	int (*flush)(struct mio *io);
	/* exactly len bytes; -ENODATA at EOF before the first byte,
	 * -ECONNRESET at EOF after it */
	int (*read)(struct mio *io, void *buf, size_t len);
	void (*close)(struct mio *io);
	/* 1 when a read would not block, 0 after timeout_ms, -errno */
	int (*wait)(struct mio *io, int timeout_ms);
	/* optional: a transport that reads and checks whole frames itself */
	int (*read_frame)(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h,
			  char *err, size_t errlen);
	/* optional: wake a blocked reader or writer from another thread */
	void (*shutdown)(struct mio *io);
	uint64_t bytes_out, bytes_in;
	void *priv;
};

/* A buffered file: fd is borrowed. Return: 0, -ENOMEM. */
int mio_file_open(struct mio *io, int fd) __must_check;

/*
 * Read one frame into buf (cap >= WIRE_HDR_BYTES + WIRE_MAX_PAYLOAD +
 * WIRE_CRC_BYTES): header checked, payload and CRC read and checked.
 * Return: 0 and *h; -ENODATA on a clean EOF before a frame; -ECONNRESET
 * when the stream ends inside a frame; -EBADMSG with a message.
 */
int mio_read_frame(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h, char *err,
		   size_t errlen) __must_check;

static inline int mio_write(struct mio *io, const void *buf, size_t len)
{
	int ret = io->write(io, buf, len);

	if (!ret)
		io->bytes_out += len;
	return ret;
}

static inline int mio_flush(struct mio *io)
{
	return io->flush ? io->flush(io) : 0;
}

static inline void mio_shutdown(struct mio *io)
{
	if (io->shutdown)
		io->shutdown(io);
}

static inline void mio_close(struct mio *io)
{
	if (io->close)
		io->close(io);
	io->close = NULL;
}

struct channel;

/* A protocol/channel as a mio; takes ownership of ch (closed by mio_close). */
void mio_channel_open(struct mio *io, struct channel *ch);

struct channel_opts;
struct channel_info;

/*
 * Connect to a destination agent through protocol/channel (any URI of
 * uri.h; co the transport's options, NULL for none).
 * Return: 0, or -errno with a message in err.
 */
int mio_connect(struct mio *io, const char *uri, const struct channel_opts *co, int timeout_ms,
		char *err, size_t errlen) __must_check;

/* What carries a channel mio (channel.h); kind "file" for any other. */
void mio_get_info(const struct mio *io, struct channel_info *info);

/* Wait until a read would not block. Return: 1, 0 on timeout, -errno. */
static inline int mio_wait_readable(struct mio *io, int timeout_ms)
{
	return io->wait ? io->wait(io, timeout_ms) : 1;
}

/* Size of the frame buffer every reader and writer uses. */
#define MIO_FRAME_BUF (WIRE_HDR_BYTES + WIRE_MAX_PAYLOAD + WIRE_CRC_BYTES)

#endif
