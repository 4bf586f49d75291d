/* SPDX-License-Identifier: MIT */
/*
 * channel.h - a connection between two agents that moves whole frames
 * (protocol/frame.h): stage 6 of the data flow.
 *
 * A channel is a transport, a const struct channel_ops chosen by URI
 * scheme (TCP and unix sockets in channel_tcp.c and channel_unix.c, TLS
 * in channel_tls.c, SSH in channel_ssh.c), configured by a struct
 * channel_opts (credentials, host keys), plus what every transport
 * shares, in channel.c:
 *  - an output buffer of CHANNEL_OBUF_BYTES: frames up to CHANNEL_COPY_MAX
 *    bytes are copied into it, larger ones go out straight from the
 *    caller's buffer, gathered with what is buffered into one send
 *    (writev), so a stream of small frames costs one send per MiB, never
 *    one per frame or page. Nothing leaves before the buffer fills, a large
 *    frame goes, or channel_flush(): flush at every point where the peer
 *    must see what was sent (END_ROUND, SWITCHOVER, COMPLETE, ERROR, every
 *    return-path frame);
 *  - an input buffer that reads ahead, so small frames cost no syscall
 *    each, while large payloads are received straight into the caller's
 *    buffer;
 *  - channel_read_frame(), which hands out only frames whose header
 *    (frame_check_header) and CRC (frame_check_crc) were checked;
 *  - counters of bytes and frames moved and of transport calls;
 *  - a timeout: every wait for the peer (to accept bytes or to send some)
 *    is bounded by timeout_ms, poll()-based, and gives -ETIMEDOUT.
 *
 * Threads: I/O blocks, one thread per direction. The sending thread owns
 * channel_write()/channel_flush(), the receiving thread owns
 * channel_read_frame(); channel_get_stats() and channel_shutdown() may be
 * called from any thread (shutdown wakes both: the cancel path);
 * channel_set_timeout() before the threads start; channel_close() after
 * both are done. No locks: the two directions share nothing but atomics.
 *
 * Errors, each with a message naming what failed: -ETIMEDOUT the peer made
 * no progress for timeout_ms; -ECONNRESET the peer is gone (reset, EPIPE,
 * or EOF inside a frame; SIGPIPE is never raised: sends use MSG_NOSIGNAL);
 * -ENODATA the peer closed the stream cleanly between two frames (as in
 * common/xio.h: whether that is an error depends on the protocol state);
 * -ECANCELED this side shut the channel down; -EBADMSG a frame failed its
 * checks; -ENOSPC a frame larger than the caller's buffer; other -errno.
 * An error breaks its direction for good (later calls repeat it), except a
 * read timeout before a whole frame header arrived: nothing was consumed
 * (a partial header stays buffered) and the caller may read again (a
 * receive loop with a short timeout that checks for cancellation).
 */
#ifndef KVMIG_PROTOCOL_CHANNEL_H
#define KVMIG_PROTOCOL_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/compiler.h"
#include "protocol/frame.h"
#include "protocol/uri.h"
#include "protocol/wire.h"

#define CHANNEL_OBUF_BYTES (1u << 20)
#define CHANNEL_IBUF_BYTES (256u << 10)
#define CHANNEL_COPY_MAX (64u << 10)	/* larger frames are sent without a copy */
#define CHANNEL_SOCKBUF_BYTES (4u << 20)	/* SO_SNDBUF/SO_RCVBUF asked (the kernel caps it) */
#define CHANNEL_IOV_MAX 8		/* iovecs one ops->send takes */
#define CHANNEL_NO_TIMEOUT (-1)
/* The largest frame: size channel_read_frame()'s buffer with it. */
#define CHANNEL_FRAME_MAX ((size_t)WIRE_HDR_BYTES + WIRE_MAX_PAYLOAD + WIRE_CRC_BYTES)

struct channel;
struct channel_listener;

/*
 * What a transport needs beyond the URI. All zero (or a NULL pointer to
 * the struct) means the defaults; tcp and unix use none of it.
 *
 * TLS (tls://, tls:): tls_dir is a credentials directory in the QEMU and
 * libvirt layout (ca-cert.pem, server-cert.pem, server-key.pem,
 * client-cert.pem, client-key.pem); both ends present a certificate and
 * check the other's against ca-cert.pem; the client checks tls_hostname
 * (default: the URI host) against the server certificate's DNS or IP
 * SANs. tls_ciphers restricts TLS 1.3 suites (OpenSSL's
 * SSL_CTX_set_ciphersuites syntax). tls_psk: a one-time pre-shared key
 * instead of certificates (--ssh-data tls): the connection opens only for
 * a peer holding the same identity and key.
 *
 * SSH (ssh://[USER@]HOST[:PORT]): the host key is checked against
 * ssh_known_hosts (default ~/.ssh/known_hosts); an unknown key is refused
 * unless ssh_accept_new (then it is recorded), a changed one always.
 * Authentication: the user's ssh-agent, then ssh_identity or the default
 * key files. The channel is a direct-tcpip channel to
 * 127.0.0.1:ssh_agent_port on the remote host (the destination agent's
 * listener), or with ssh_exec the stdin/stdout of that remote command.
 */
struct channel_opts {
	const char *tls_dir;
	const char *tls_hostname;
	const char *tls_ciphers;
	const uint8_t *tls_psk;
	size_t tls_psk_len;
	const char *tls_psk_identity;

	bool ssh_accept_new;
	const char *ssh_known_hosts;
	const char *ssh_identity;
	uint16_t ssh_agent_port;	/* 0: CHANNEL_AGENT_PORT */
	const char *ssh_exec;
};

/* The port a destination agent listens on unless told otherwise. */
#define CHANNEL_AGENT_PORT 49152u

/* What carries a channel, for the job statistics' transport object. */
struct channel_info {
	char kind[16];		/* "tcp", "unix", "tls", "ssh" */
	char version[16];	/* "TLSv1.3", "SSH-2.0"; "" for plain sockets */
	char cipher[64];	/* "TLS_AES_256_GCM_SHA384", "aes128-ctr"; "" for none */
	bool ktls;		/* the kernel encrypts the records (TLS only) */
	char peer[128];		/* who was authenticated: certificate subject, host key
				 * fingerprint; "" when nothing was */
};

/*
 * A transport. Connection ops work on an open channel; constructor hooks
 * make one. A hook a transport lacks is NULL.
 *
 * send: all bytes of iov[0..iovcnt) (iovcnt <= CHANNEL_IOV_MAX) or an
 * error; short writes are retried inside. recv: at least min and at most
 * max bytes into buf (min >= 1), Return: bytes, -ENODATA at EOF before the
 * first byte, -ECONNRESET at EOF after it, -errno. Both wait at most
 * channel_timeout() for each bit of progress. shutdown: shutdown(2) of the
 * connection, callable from any thread. close: free the transport's state
 * and close its fd. get_fd: the socket to poll, -1 if none.
 *
 * handshake (optional): finish setting up an accepted connection (a TLS
 * server handshake), within the channel's timeout; accept never does it,
 * so an event loop that accepts is never held up by a slow peer. The
 * connection's own thread calls channel_handshake() before the first
 * frame. info (optional): fill what carries the channel beyond kind.
 *
 * connect: open a channel to u with the options o (never NULL here),
 * handshake included. listen: bind and listen at u, updating u->port to
 * the port bound; *fd the listening socket (non-blocking), *priv the
 * transport's listener state (credentials loaded from o). accept: the
 * next connection on a listening fd, waiting up to wait_ms for one (0:
 * only one already pending, else -EAGAIN without a message); timeout_ms
 * is the new channel's I/O timeout (and bounds its handshake). unlisten:
 * close fd, free priv, remove what listen created.
 */
struct channel_ops {
	const char *name;
	int (*send)(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		    size_t errlen);
	ssize_t (*recv)(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			size_t errlen);
	int (*shutdown)(struct channel *ch, int how);
	void (*close)(struct channel *ch);
	int (*get_fd)(const struct channel *ch);
	int (*handshake)(struct channel *ch, char *err, size_t errlen);
	void (*info)(const struct channel *ch, struct channel_info *info);
	/*
	 * wait (optional): channel_wait()'s work for a transport that buffers
	 * data the socket no longer shows (ssh: libssh2 reads packets for both
	 * directions). Same contract as channel_wait(); NULL: poll get_fd.
	 */
	int (*wait)(struct channel *ch, int timeout_ms);

	int (*connect)(const struct uri *u, const struct channel_opts *o, int timeout_ms,
		       struct channel **out, char *err, size_t errlen);
	int (*listen)(struct uri *u, const struct channel_opts *o, int *fd, void **priv,
		      char *err, size_t errlen);
	int (*accept)(int fd, void *priv, int wait_ms, int timeout_ms, struct channel **out,
		      char *err, size_t errlen);
	void (*unlisten)(const struct uri *u, int fd, void *priv);
};

extern const struct channel_ops channel_tcp_ops;
extern const struct channel_ops channel_unix_ops;
extern const struct channel_ops channel_tls_ops;
extern const struct channel_ops channel_ssh_ops;

/* The transport for a scheme, or NULL when this build has none (ssh). */
const struct channel_ops *channel_ops_for(enum uri_scheme scheme);

struct channel_stats {
	uint64_t bytes_sent;		/* bytes the transport accepted */
	uint64_t bytes_received;	/* bytes read from the transport */
	uint64_t frames_sent;		/* frames given to channel_write() */
	uint64_t frames_received;	/* checked frames returned */
	uint64_t sends;			/* ops->send calls: one per batch of frames */
	uint64_t recvs;			/* ops->recv calls */
};

/* ---- making channels ------------------------------------------------------ */

/*
 * channel_connect - open a channel to a URI (tcp://HOST:PORT,
 * unix:///PATH; see uri.h). timeout_ms bounds the connect and becomes the
 * channel's I/O timeout (CHANNEL_NO_TIMEOUT: wait forever; name
 * resolution is not bounded).
 * Return: 0 and *out; -EINVAL bad URI, -EOPNOTSUPP a scheme this build
 * cannot open, -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH (also: name not
 * resolved), -ENOENT (no such socket), other -errno; err says which.
 */
int channel_connect(const char *uri, int timeout_ms, struct channel **out, char *err,
		    size_t errlen) __must_check;

/* channel_connect with transport options (o may be NULL: the defaults). */
int channel_connect_opts(const char *uri, const struct channel_opts *o, int timeout_ms,
			 struct channel **out, char *err, size_t errlen) __must_check;

/*
 * channel_listen - listen at a --listen address (tcp:HOST:PORT, unix:PATH;
 * the URL forms tcp://HOST:PORT and unix:///PATH too, see uri.h). Port 0
 * picks a free port (channel_listener_port()). An empty TCP host listens on
 * every address of both families; [::1] and other IPv6 addresses work as
 * well. Accepted TCP connections get TCP_NODELAY and keepalive
 * (channel_tcp.c). A unix socket file left by a dead listener is replaced;
 * one with a live listener is not (-EADDRINUSE, "another process listens
 * there"), nor any other kind of file (-EEXIST).
 * Return: 0 and *out; -EINVAL (malformed: the message is uri.h's),
 * -EOPNOTSUPP (a scheme this build cannot listen on), -EADDRINUSE,
 * -EEXIST, -EHOSTUNREACH (name not resolved), other -errno; err says which.
 */
int channel_listen(const char *spec, struct channel_listener **out, char *err,
		   size_t errlen) __must_check;

/* channel_listen with transport options (o may be NULL; a tls: listener without tls_dir
 * serves only pre-shared-key connections: channel_listener_add_psk). */
int channel_listen_opts(const char *spec, const struct channel_opts *o,
			struct channel_listener **out, char *err, size_t errlen) __must_check;

/*
 * channel_accept - the next connection; timeout_ms bounds the wait and
 * becomes the channel's I/O timeout. Return: 0 and *out, -ETIMEDOUT,
 * -errno.
 */
int channel_accept(struct channel_listener *l, int timeout_ms, struct channel **out, char *err,
		   size_t errlen) __must_check;

/*
 * channel_accept_pending - for an event loop that polls
 * channel_listener_fd() for input: take a connection that is already
 * waiting, never block for one. timeout_ms becomes the channel's I/O
 * timeout. Call it until it gives -EAGAIN (the socket is level-triggered
 * readable while connections wait). A connection the peer reset before it
 * was taken is skipped.
 * Return: 0 and *out; -EAGAIN when none is waiting (err untouched);
 * -errno with a message (-EMFILE, -ENOMEM, ...).
 */
int channel_accept_pending(struct channel_listener *l, int timeout_ms, struct channel **out,
			   char *err, size_t errlen) __must_check;

/* The bound TCP port (0 for unix). */
uint16_t channel_listener_port(const struct channel_listener *l);

/*
 * The address listened on, in the --listen syntax with the port bound:
 * tcp:127.0.0.1:40213, tcp:[::1]:4444, tcp::4444 (every address),
 * unix:PATH as given. Return: length, -ENOSPC.
 */
int channel_listener_addr(const struct channel_listener *l, char *buf, size_t cap) __must_check;

/*
 * A URI that connects to this listener (tcp://127.0.0.1:PORT for a
 * wildcard address, unix:///ABSOLUTE/PATH). Return: length, -ENOSPC.
 */
int channel_listener_uri(const struct channel_listener *l, char *buf, size_t cap) __must_check;

/*
 * The listening socket (non-blocking), for an event loop: readable when
 * channel_accept_pending() has a connection to take.
 */
int channel_listener_fd(const struct channel_listener *l);

/*
 * channel_listener_add_psk - let a tls: listener accept TLS 1.3
 * connections that prove they hold key (16..48 bytes, 32 recommended)
 * under identity (1..128 bytes), until clock_now_ms() reaches expires_ms
 * (checked at each handshake: a key opens only connections made before it
 * expires). The same identity again replaces its key. An unknown identity
 * is refused. A tls: listener without tls_dir serves only such keys.
 * Thread-safe: call it while another thread accepts.
 * Return: 0; -EOPNOTSUPP (not a tls: listener), -EINVAL, -ENOMEM.
 */
int channel_listener_add_psk(struct channel_listener *l, const char *identity, const uint8_t *key,
			     size_t len, uint64_t expires_ms) __must_check;

/* Forget identity's key (no-op when absent, or not a tls: listener). Thread-safe. */
void channel_listener_remove_psk(struct channel_listener *l, const char *identity);

/* Stop listening: close the socket, remove a unix socket file. NULL is fine. */
void channel_listener_close(struct channel_listener *l);

/*
 * channel_open - wrap a connected socket in a channel with transport ops
 * (for transports, and for tests over a socketpair). Takes ownership of fd
 * (closed by channel_close(), or here on failure) and of priv (ops->close
 * frees it). Return: 0 and *out, -ENOMEM.
 */
int channel_open(const struct channel_ops *ops, int fd, void *priv, int timeout_ms,
		 struct channel **out) __must_check;

/*
 * channel_pipe_open - a channel over two fds (channel_pipe.c): frames are
 * read from rfd and written to wfd (the same fd is fine: a socket), e.g.
 * the stdin and stdout sshd gives `kvmigd --incoming stdio`. Takes
 * ownership of both (made non-blocking). kind "stdio". Return: 0 and *out,
 * -errno (the fds are closed).
 */
int channel_pipe_open(int rfd, int wfd, int timeout_ms, struct channel **out) __must_check;

/* Close without flushing (flush first to keep buffered frames). NULL is fine. */
void channel_close(struct channel *ch);

/* ---- using them ------------------------------------------------------------- */

/*
 * channel_write - queue or send one whole frame of len bytes (a writer's
 * output). Borrowed: frame may be reused when this returns.
 * Return: 0, or -errno (the sending direction is then broken).
 */
int channel_write(struct channel *ch, const void *frame, size_t len, char *err,
		  size_t errlen) __must_check;

/* Send everything buffered. Return: 0 or -errno. */
int channel_flush(struct channel *ch, char *err, size_t errlen) __must_check;

/*
 * channel_read_frame - the next frame, header and CRC checked, into buf
 * (cap bytes; CHANNEL_FRAME_MAX holds any frame). *h gets its header; the
 * payload is at buf + WIRE_HDR_BYTES, h->len bytes.
 * Return: the frame's total size, or -ETIMEDOUT, -ENODATA (the peer closed
 * the stream after the previous frame), -ECONNRESET (reset, or closed
 * inside a frame), -ECANCELED, -EBADMSG, -ENOSPC (frame larger than cap),
 * -errno.
 */
ssize_t channel_read_frame(struct channel *ch, uint8_t *buf, size_t cap, struct frame_hdr *h,
			   char *err, size_t errlen) __must_check;

/*
 * channel_wait - wait up to timeout_ms (0: just look) until
 * channel_read_frame() has something to read (a buffered byte, data or
 * EOF on the socket, or a broken channel to report). Called by the
 * receiving thread, e.g. one that mostly sends and now and then looks for
 * replies. Return: 1, 0 on timeout, -errno.
 */
int channel_wait(struct channel *ch, int timeout_ms) __must_check;

/*
 * channel_shutdown - shutdown(2): SHUT_WR after the last frame, SHUT_RDWR
 * from any thread to cancel (blocked calls return -ECANCELED).
 * Return: 0 or -errno.
 */
int channel_shutdown(struct channel *ch, int how);

/* The I/O timeout in ms (CHANNEL_NO_TIMEOUT: none). */
void channel_set_timeout(struct channel *ch, int timeout_ms);
int channel_timeout(const struct channel *ch);

void channel_get_stats(const struct channel *ch, struct channel_stats *st);

/* "tcp", "unix", ... */
const char *channel_transport(const struct channel *ch);

/*
 * channel_handshake - finish an accepted connection's setup (TLS: the
 * server handshake, peer certificate checked). Call once, from the
 * connection's thread, before the first read; a no-op for transports
 * without one. Return: 0, or -errno with the reason in words
 * ("certificate expired", "unknown CA", "no client certificate").
 */
int channel_handshake(struct channel *ch, char *err, size_t errlen) __must_check;

/* What carries ch: kind always, the rest where the transport has it. */
void channel_get_info(const struct channel *ch, struct channel_info *info);

int channel_fd(const struct channel *ch);
void *channel_priv(const struct channel *ch);

/* ---- for socket transports (channel_tcp.c, channel_unix.c, channel_tls.c) -- */

/*
 * Connection ops over a stream socket: sendmsg/recv with MSG_DONTWAIT and
 * MSG_NOSIGNAL, poll() when the kernel is not ready, channel_fd() the
 * socket. close frees nothing but the fd.
 */
int channel_sock_send(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		      size_t errlen);
ssize_t channel_sock_recv(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			  size_t errlen);
int channel_sock_shutdown(struct channel *ch, int how);
void channel_sock_close(struct channel *ch);
int channel_sock_get_fd(const struct channel *ch);

/*
 * Connect a new socket (family/addr) within timeout_ms; *fd is the
 * connected socket (close-on-exec). setup, when not NULL, runs on the
 * socket before connect (socket options). Return: 0 or -errno, no message.
 */
int channel_sock_connect(int family, const void *addr, size_t addrlen, int timeout_ms,
			 int (*setup)(int fd), int *fd);

/*
 * Wait up to timeout_ms (0: do not wait) and accept one connection
 * (close-on-exec). Return: 0; -ETIMEDOUT, or -EAGAIN when timeout_ms is 0
 * and none is pending; -errno. No message.
 */
int channel_sock_accept(int lfd, int timeout_ms, int *fd);

/*
 * channel_sock_accept() within wait_ms, then setup (socket options) on the
 * new socket. Return: 0 and *fd; -EAGAIN (wait_ms 0, none pending) without
 * a message; -errno with one.
 */
int channel_sock_accept_setup(int lfd, int wait_ms, void (*setup)(int fd), int *fd, char *err,
			      size_t errlen) __must_check;

/*
 * After a send of done bytes from v[i..iovcnt): skip what went, trim the
 * iovec it stopped in. Return: the index of the first iovec left.
 */
int channel_iov_advance(struct iovec *v, int i, int iovcnt, size_t done);

/*
 * The whole accept hook of a socket transport: channel_sock_accept()
 * within wait_ms, setup (socket options) on the new socket, then a channel
 * of ops with timeout_ms. Return: 0 and *out; -EAGAIN (wait_ms 0, none
 * pending) without a message; -errno with one.
 */
int channel_sock_accept_open(const struct channel_ops *ops, int lfd, int wait_ms, int timeout_ms,
			     void (*setup)(int fd), struct channel **out, char *err,
			     size_t errlen) __must_check;

/*
 * TCP pieces for transports that run over TCP (tls, ssh): dial u (every
 * address it resolves to, within timeout_ms) and set the connection's
 * options (channel_tcp_setup: TCP_NODELAY, keepalive); bind and listen at
 * u (u->port updated). Return: 0 and *fd; -errno with a message naming
 * the address.
 */
int channel_tcp_dial(const struct uri *u, int timeout_ms, int *fd, char *err,
		     size_t errlen) __must_check;
int channel_tcp_bind(struct uri *u, int *fd, char *err, size_t errlen) __must_check;
void channel_tcp_setup(int fd);

/* channel_tls.c's half of channel_listener_add_psk/remove_psk (priv: its listener state). */
int channel_tls_add_psk(void *priv, const char *identity, const uint8_t *key, size_t len,
			uint64_t expires_ms);
void channel_tls_remove_psk(void *priv, const char *identity);

/* Ask for large socket buffers; the kernel caps them at net.core.[rw]mem_max. */
void channel_sock_set_buffers(int fd);

#endif
