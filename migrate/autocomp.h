/* SPDX-License-Identifier: MIT */
/*
 * autocomp.h - `--compress auto`: which codec the next pages go with,
 * decided from measured numbers only (the convergence decision's sibling).
 *
 * A page costs two things: CPU to encode it and bytes on the link. For
 * each choice c (none, lz4:1, zstd:1) the senders measure, on this guest's
 * pages, the wire bytes and the encoder's CPU ns per page (pagesend.h
 * encodes a sample of the pages with every codec it holds); the lanes
 * measure the link. The predicted page rate of c is
 *
 *   rate(c) = min(link_bytes_per_s / wire_bytes_per_page(c),
 *                 cpus * 1e9 / encode_ns_per_page(c))
 *
 * (none costs no encoder time: its rate is the link's). The encoders and
 * the link work side by side (a socket buffer between them), hence a
 * minimum, not a sum. The link's rate is what the writes achieved: bytes
 * over the time spent writing (rate limiter waits excluded), bounded by the
 * cap while one applies. When the link is the bottleneck the writes block
 * and this is its rate; when it is not they return at once, and the figure
 * only says the link has room. The fastest choice wins, so a compressor is
 * used exactly when the link, not the CPU, bounds the rate ("link-bound";
 * none wins: "cpu-bound").
 *
 * A codec whose ratio is under AUTOCOMP_MIN_RATIO is not worth its CPU
 * whatever the link ("no-gain"); the codec in use keeps its place down to
 * AUTOCOMP_KEEP_RATIO. Hysteresis: the choice changes only when the
 * winner's rate beats the current one's by more than AUTOCOMP_SWITCH_PCT,
 * so noise near the balance point does not flap. Until every compressor is
 * measured and the link has a rate (or a cap), the choice stays ("probe").
 *
 * The caller passes running totals (what the page senders count; what the
 * link moved); autocomp keeps where the current window of each began. A
 * codec's window closes once it holds AUTOCOMP_MIN_PAGES pages (the link's
 * once it moved AUTOCOMP_MIN_LINK_BYTES); until then the old figures stay
 * and the window grows, so small rounds add up. A closed window updates the
 * codec's estimate, the old one weighing as much as AUTOCOMP_HISTORY_PAGES
 * new pages: the pages change from round to round, so a few windows replace
 * it, while one window of noisy timings (another thread on the core) does
 * not flip the choice. The link's rate is the last window's.
 *
 * Pure: fed numbers, tested without a VM. One struct autocomp per job,
 * owned by the job thread.
 */
#ifndef KVMIG_MIGRATE_AUTOCOMP_H
#define KVMIG_MIGRATE_AUTOCOMP_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/codec.h"

#define AUTOCOMP_MIN_PAGES 16	/* pages a codec needs in a window to be measured */
#define AUTOCOMP_HISTORY_PAGES 64 /* what the old estimate weighs against a window's pages */
#define AUTOCOMP_SWITCH_PCT 10	/* the winner must be this much faster to switch */
#define AUTOCOMP_MIN_RATIO 1.1	/* under this ratio compression gains nothing */
#define AUTOCOMP_KEEP_RATIO 1.05 /* ... and the codec in use is dropped under this one */
/*
 * Bytes the link must move to be measured: more than a loopback socket's
 * buffer, whose first megabytes take writes far faster than the link.
 */
#define AUTOCOMP_MIN_LINK_BYTES (4u << 20)

/* The choices, in the order of the tables below (none first). */
enum autocomp_choice {
	AUTOCOMP_NONE,
	AUTOCOMP_LZ4,
	AUTOCOMP_ZSTD,
	AUTOCOMP_CHOICES,
};

enum autocomp_reason {
	AUTOCOMP_PROBE,		/* not every codec or the link measured yet: kept as is */
	AUTOCOMP_LINK_BOUND,	/* a compressor moves more pages: the link is the bottleneck */
	AUTOCOMP_CPU_BOUND,	/* none moves more pages: the encoders would be the bottleneck */
	AUTOCOMP_NO_GAIN,	/* no compressor reaches AUTOCOMP_MIN_RATIO on these pages */
	AUTOCOMP_REASONS,
};

/* One codec's figures: running totals (a page sender's, pagesend.h). */
struct autocomp_sample {
	uint64_t pages;		/* pages encoded (sampled) */
	uint64_t in_bytes;	/* their bytes (pages * page size) */
	uint64_t out_bytes;	/* bytes they took on the wire (raw when it did not shrink) */
	uint64_t ns;		/* encoder time */
};

struct autocomp_input {
	/* by enum codec_id: CODEC_LZ4 and CODEC_ZSTD are read, the rest unused */
	struct autocomp_sample codec[CODEC_COUNT];
	/*
	 * The link, running totals: bytes written, and the time the writes
	 * took per writer (the writers' sum over their number: they write
	 * side by side), rate limiter waits excluded.
	 */
	uint64_t link_bytes, link_ns;
	uint64_t cap_bytes_per_s;	/* the --bandwidth cap while it applies; 0: none */
	unsigned cpus;		/* encoders that run side by side: min(lanes, cores), >= 1 */
};

/* The decision's state and its last outcome (read them freely). */
struct autocomp {
	enum autocomp_choice cur;
	enum autocomp_reason why;
	unsigned switches;	/* times cur changed */
	double link_bytes_per_s; /* the link's rate at the last decision, capped (0: none yet) */
	double link_measured;	/* the last measured rate, uncapped (0: none yet) */
	struct autocomp_input base; /* the totals where each window began */
	struct {
		bool known;
		double out_per_page; /* wire bytes per page */
		double ns_per_page;
	} est[AUTOCOMP_CHOICES];
	double rate[AUTOCOMP_CHOICES]; /* predicted pages/s at the last decision (0: unknown) */
};

/* Start with choice first (reason "probe"), nothing measured. */
void autocomp_init(struct autocomp *ac, enum autocomp_choice first);

/*
 * autocomp_decide - fold in the totals so far (every field only grows) and
 * choose. @page_bytes: the page size (none's wire bytes per page).
 * Return: the choice for the next pages (also ac->cur; ac->why says why).
 */
enum autocomp_choice autocomp_decide(struct autocomp *ac, const struct autocomp_input *in,
				     unsigned page_bytes);

/* "none", "lz4", "zstd": the names the stats use. */
const char *autocomp_choice_name(enum autocomp_choice c);

/* "probe", "link-bound", "cpu-bound", "no-gain". */
const char *autocomp_reason_name(enum autocomp_reason r);

/* The codec a choice sends with (CODEC_RAW for none; lz4 and zstd at level 1). */
struct codec_config autocomp_codec(enum autocomp_choice c);

/* Its wire id (CODEC_RAW, CODEC_LZ4, CODEC_ZSTD). */
enum codec_id autocomp_codec_id(enum autocomp_choice c);

#endif
