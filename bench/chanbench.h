/* SPDX-License-Identifier: MIT */
/*
 * chanbench.h - throughput of protocol/channel.h: on loopback against the
 * bare pump of the same transport and against raw TCP, or between two
 * hosts as iperf does. The measurement behind bench/bench_channel and
 * `kvmig bench channel`.
 *
 * Loopback (neither --listen nor --to), in one process:
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
 * Without --transport the tls rows run only with --cipher. MB is 10^6
 * bytes. TLS certificates: --tls-dir DIR (design.md's layout), else made
 * with tests/helpers/mkcerts.sh (run from the source tree) in a temporary
 * directory. tls-psk: the channel of --ssh-data tls (a TLS 1.3 external
 * pre-shared key, no certificates, a listener without --tls-dir), beside
 * the same certificate-based bare pump as tls: its channel/bare against
 * tls's says what the one-time key costs (nothing after the handshake).
 *
 * Between two hosts: `--listen ADDR` (tcp:HOST:PORT, tls:HOST:PORT with
 * --tls-dir, unix:PATH; port 0 picks one) is the sink; it prints where it
 * listens first, then serves one sender at a time, each session on a line
 * (with --once it serves one session and returns its result). `--to URI`
 * (tcp://, tls:// with --tls-dir, unix:///, ssh://[USER@]HOST[:PORT] to a
 * sink listening on tcp:127.0.0.1:PORT there, --ssh-agent-port PORT) is
 * the sender: --streams connections each carry --gib GiB of the same PAGES
 * frames as on loopback; the sink checks every frame as the loopback
 * receiver does and answers with what it received. MB/s is the bytes of
 * all streams over the sender's wall time, from the moment every stream's
 * sink was ready to the last answer; the sender fails unless the sink
 * received every byte it sent.
 *
 * The session, on each connection (STATE frames carry one text line, an
 * ERROR frame a refusal; protocol/wire.h frames, nothing new on the wire):
 *   sender -> sink  STATE "kvmig-bench-channel 1 hello session=HEX
 *                   stream=I streams=N frames=F frame_bytes=L"
 *   sink -> sender  STATE "kvmig-bench-channel 1 ready" once all N
 *                   streams of the session are connected (or ERROR why not)
 *   sender -> sink  F PAGES frames of L bytes
 *   sink -> sender  STATE "kvmig-bench-channel 1 result frames=F bytes=B
 *                   pages=P ns=T" (T: from ready to the last frame)
 *   sender          closes.
 * A migration stream sent to a sink (or a sink's answer to a migration)
 * fails on the first frame, with a message saying so.
 *
 * Output: the table under a first line "$ COMMAND" (the sink: a
 * "listening on" line, then a line per session); or with json one JSON
 * object on one line (the sink: one per line, JSON lines):
 *   loopback: {"bench": "channel", "mode": "loopback", "command",
 *     "settings": {"gib", "repeat", "streams", "transport", "cipher",
 *     "frame_bytes"}, "results": [{"transport", "cipher", "streams",
 *     "channel_mb_per_s", "bare_mb_per_s", "channel_over_bare",
 *     "channel_over_tcp"} or {"transport", "skipped"}, ...]}
 *   --to: {"bench": "channel", "mode": "to", "command", "settings": {"to",
 *     "gib", "streams", "cipher", "tls_dir"}, "transport": {"kind",
 *     "version", "cipher", "ktls", "peer"}, "streams", "frame_bytes",
 *     "frames", "bytes_sent", "bytes_received", "pages_received",
 *     "seconds", "mb_per_s", "sink_seconds", "sink_mb_per_s"}
 *   --listen: {"bench": "channel", "mode": "listen", "event": "listening",
 *     "command", "listen", "uri"}, then per session {..., "event":
 *     "received", "peer", "transport": {...}, "streams", "frames",
 *     "bytes_received", "pages", "seconds", "mb_per_s"} or {..., "event":
 *     "failed", "peer", "error"}.
 */
#ifndef KVMIG_BENCH_CHANBENCH_H
#define KVMIG_BENCH_CHANBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/compiler.h"

#define CHANBENCH_MAX_STREAMS 8

struct chanbench_opts {
	double gib;		/* --gib: GiB per stream (default 1) */
	int repeat;		/* --repeat: loopback runs per figure, median shown (5) */
	const char *transport;	/* --transport tcp|unix|tls|tls-psk: loopback, only that one */
	int cipher;		/* --cipher: index into the suites; -1 = none given */
	int streams;		/* --streams: connections at once (1) */
	const char *tls_dir;	/* --tls-dir */
	const char *listen;	/* --listen ADDR: be the sink */
	const char *to;		/* --to URI: be the sender */
	bool once;		/* --once: the sink serves one session */
	bool ssh_accept_new;	/* --ssh-accept-new */
	unsigned ssh_agent_port; /* --ssh-agent-port: the sink's port on the ssh:// host */
};

#define CHANBENCH_SYNOPSIS                                                                        \
	"[--gib N] [--repeat R] [--transport tcp|unix|tls|tls-psk] "                              \
	"[--cipher aes128gcm|chacha20] [--streams N] [--tls-dir DIR]\n"                           \
	"       [--listen ADDR [--once] | --to URI [--ssh-agent-port PORT] [--ssh-accept-new]]"

void chanbench_defaults(struct chanbench_opts *o);

/*
 * Parse argv[0..argc) (options only) into o, over its defaults, and check
 * that they go together (a URI that parses, --tls-dir for tls, no loopback
 * option with --listen or --to). Return: 0, or -EINVAL with the message.
 */
int chanbench_parse(int argc, char **argv, struct chanbench_opts *o, char *err,
		    size_t errlen) __must_check;

/*
 * Run what o asks for (loopback, sink or sender) and print to out as
 * above; cmdline names the command. Return: 0, or -errno with the message
 * in err: no peer there (-ECONNREFUSED, -ETIMEDOUT, ...), a refused
 * handshake, a sink that did not receive everything, a session that
 * failed (--once), no certificates for loopback TLS.
 */
int chanbench_run(const struct chanbench_opts *o, const char *cmdline, bool json, FILE *out,
		  char *err, size_t errlen) __must_check;

/*
 * Raw loopback TCP, as the tcp row's bare pump: bytes (rounded up to
 * 1 MiB) written on one thread and read on another over a connection made
 * by channel_listen/connect/accept. Return: the seconds it took.
 */
double chanbench_tcp_pump(uint64_t bytes);

/*
 * A connected pair over spec's transport ("tcp:127.0.0.1:0", ...; o may be
 * NULL): *tx connects, *rx accepts and handshakes. Dies on an error.
 */
struct channel;
struct channel_opts;
void chanbench_pair(const char *spec, const struct channel_opts *o, struct channel **tx,
		    struct channel **rx);

#endif /* KVMIG_BENCH_CHANBENCH_H */
