/* SPDX-License-Identifier: MIT */
/*
 * pagebench.h - the page path without a VM: how fast the real sender and
 * the real receiver move a memfd "RAM" over loopback TCP, against raw TCP
 * and a bare pipeline in the same run. The measurement behind
 * bench/bench_pagepath.
 *
 * Setup: a source memfd of --mib MiB (default 1024) filled, page by page
 * in a fixed pseudo-random order, with the --mix of zero pages, text pages
 * (runs of words from a small vocabulary: what zstd and lz4 shrink) and
 * random pages (what they do not), every page written once so nothing
 * faults in the timed part; a destination memfd of the same size, empty
 * (its pages fault in as they land, as at a real destination).
 *
 * Three measurements, one after the other, each moving the RAM's bytes:
 * raw TCP:  chanbench_tcp_pump() (1 MiB write() and read() on two threads).
 * bare:     the least a page path can do: the sender copies each page into
 *           a 1 MiB buffer with its CRC32C (common/crc32c.h) and write()s
 *           it; the receiver read()s 1 MiB, CRC32Cs each page and copies it
 *           into the destination. The CRCs of both sides must agree.
 * pagepath: migrate/pagesend.h's page_sender over a migrate/mio.h channel
 *           mio (protocol/channel.h, tcp:127.0.0.1), as the bulk round
 *           sends (zero pages skipped: the destination is known zero),
 *           --compress through its codec config, then END_ROUND; the
 *           receiver reads frames with mio_read_frame() and places each
 *           PAGES frame with migrate/pageplace.h's page_place(), the code
 *           migrate/incoming.c runs, into the destination memfd, which
 *           must then equal the source byte for byte.
 * --compress auto: the sender holds lz4 and zstd:1 too and, after every
 * slice of pages (256 until the first decision, then 4096), lets
 * migrate/autocomp.h choose among none, lz4 and zstd from its per-codec
 * figures and the link's (bytes over the time its writes took), as a
 * migration's rounds do. --bandwidth caps the page path's writes with
 * migrate/ratelimit.h (raw TCP and the bare pipeline stay uncapped: they
 * are what the link and a page path could do).
 * The destination is touched once, then emptied (hole punched) before each
 * measurement, so each pays the same page faults a real destination pays;
 * --warm-dst zeroes it in place instead, so its pages stay (what placing
 * pages costs without the faults).
 *
 * Figures: MB/s is RAM bytes (10^6) over the wall time from both threads
 * starting to the receiver's last byte; wire MB what crossed the socket.
 * Per thread: CPU ns per page (CLOCK_THREAD_CPUTIME_ID) and, where the
 * kernel lets a process count its own threads (perf_event_open, user
 * space only: perf_event_paranoid <= 2), instructions per page; otherwise
 * the table says how to get them with `perf stat -e instructions -t TID`.
 * --insn counts them with callgrind instead, where there is no PMU (a VM):
 * the program runs itself again under valgrind --tool=callgrind on a
 * 16 MiB RAM of the same mix and codec, once with `--only bare` and once
 * with `--only path`, collecting only inside each side's timed loop
 * (pagebench_{bare,path}_{send,recv}); user-space instructions only.
 *
 * Output: "$ COMMAND", the setup line, the table; with json one JSON
 * object: {"bench": "pagepath", "command", "settings": {"mib", "zero",
 * "text", "random", "compress", "warm_dst"}, "pages": {...}, "results": [{"name",
 * "mb_per_s", "seconds", "wire_bytes", "send_cpu_ns_per_page",
 * "recv_cpu_ns_per_page", "send_insn_per_page", "recv_insn_per_page"},
 * ...], "pagepath_over_tcp", "pagepath_over_bare", "verified"}.
 */
#ifndef KVMIG_BENCH_PAGEBENCH_H
#define KVMIG_BENCH_PAGEBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/compiler.h"
#include "protocol/codec.h"

struct pagebench_opts {
	unsigned mib;			/* --mib: RAM size (1024) */
	unsigned zero, text, random;	/* --mix zero:Z,text:T,random:R, percent (25/50/25) */
	struct codec_config compress;	/* --compress none|zstd[:L]|lz4[:A] (none) */
	bool cauto;			/* --compress auto: compress holds none */
	uint64_t bandwidth;		/* --bandwidth BYTES_PER_S: the page path's cap (0: none) */
	bool warm_dst;			/* --warm-dst: zero the destination in place, no faults */
	bool insn;			/* --insn: instructions per page under callgrind */
	const char *only;		/* --only bare|path: that one, no table (--insn's child) */
	bool json;			/* --json */
};

#define PAGEBENCH_SYNOPSIS \
	"[--mib N] [--mix zero:Z,text:T,random:R] [--compress none|zstd[:L]|lz4[:A]|auto] " \
	"[--bandwidth BYTES_PER_S] [--warm-dst] [--insn] [--json]"

void pagebench_defaults(struct pagebench_opts *o);

/* Parse argv[0..argc) (options only) into o. Return: 0, -EINVAL with the message. */
int pagebench_parse(int argc, char **argv, struct pagebench_opts *o, char *err,
		    size_t errlen) __must_check;

/*
 * Run and print to out; cmdline names the command. A destination that
 * differs from the source, or a broken stream, is bench_fatal().
 */
void pagebench_run(const struct pagebench_opts *o, const char *cmdline, FILE *out);

#endif /* KVMIG_BENCH_PAGEBENCH_H */
