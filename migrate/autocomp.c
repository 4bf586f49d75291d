/* SPDX-License-Identifier: MIT */
#include "migrate/autocomp.h"

#include <stddef.h>

#include "common/compiler.h"

static const char *const choice_names[] = {
	[AUTOCOMP_NONE] = "none",
	[AUTOCOMP_LZ4] = "lz4",
	[AUTOCOMP_ZSTD] = "zstd",
};
_Static_assert(ARRAY_SIZE(choice_names) == AUTOCOMP_CHOICES, "a name for every choice");

static const char *const reason_names[] = {
	[AUTOCOMP_PROBE] = "probe",
	[AUTOCOMP_LINK_BOUND] = "link-bound",
	[AUTOCOMP_CPU_BOUND] = "cpu-bound",
	[AUTOCOMP_NO_GAIN] = "no-gain",
};
_Static_assert(ARRAY_SIZE(reason_names) == AUTOCOMP_REASONS, "a name for every reason");

void autocomp_init(struct autocomp *ac, enum autocomp_choice first)
{
	*ac = (struct autocomp){ .cur = first, .why = AUTOCOMP_PROBE };
}

const char *autocomp_choice_name(enum autocomp_choice c)
{
	return (unsigned)c < AUTOCOMP_CHOICES ? choice_names[c] : "?";
}

const char *autocomp_reason_name(enum autocomp_reason r)
{
	return (unsigned)r < AUTOCOMP_REASONS ? reason_names[r] : "?";
}

static const enum codec_id ids[] = {
	[AUTOCOMP_NONE] = CODEC_RAW,
	[AUTOCOMP_LZ4] = CODEC_LZ4,
	[AUTOCOMP_ZSTD] = CODEC_ZSTD,
};
_Static_assert(ARRAY_SIZE(ids) == AUTOCOMP_CHOICES, "a codec for every choice");

enum codec_id autocomp_codec_id(enum autocomp_choice c)
{
	return (unsigned)c < AUTOCOMP_CHOICES ? ids[c] : CODEC_RAW;
}

struct codec_config autocomp_codec(enum autocomp_choice c)
{
	switch (c) {
	case AUTOCOMP_LZ4:
		return (struct codec_config){ .ops = &codec_lz4_ops, .level = 1 };
	case AUTOCOMP_ZSTD:
		return (struct codec_config){ .ops = &codec_zstd_ops, .level = 1 };
	case AUTOCOMP_NONE:
	case AUTOCOMP_CHOICES:
		break;
	}
	return (struct codec_config){ .ops = &codec_raw_ops, .level = 0 };
}

/* Close c's window and replace its estimate when the window holds enough. */
static void measure(struct autocomp *ac, enum autocomp_choice c, const struct autocomp_sample *now)
{
	struct autocomp_sample *b = &ac->base.codec[ids[c]];
	uint64_t pages = now->pages - b->pages, out = now->out_bytes - b->out_bytes;

	double w, ns = (double)(now->ns - b->ns);

	if (pages < AUTOCOMP_MIN_PAGES || !out)
		return;
	/* the old estimate weighs as much as AUTOCOMP_HISTORY_PAGES new pages */
	w = ac->est[c].known ? AUTOCOMP_HISTORY_PAGES : 0.0;
	ac->est[c].known = true;
	ac->est[c].out_per_page = (ac->est[c].out_per_page * w + (double)out) / (w + (double)pages);
	ac->est[c].ns_per_page = (ac->est[c].ns_per_page * w + ns) / (w + (double)pages);
	*b = *now;
}

/* The link's window, and the rate the decision divides by (capped). */
static void measure_link(struct autocomp *ac, const struct autocomp_input *in)
{
	uint64_t bytes = in->link_bytes - ac->base.link_bytes;
	uint64_t ns = in->link_ns - ac->base.link_ns;
	double cap = (double)in->cap_bytes_per_s;

	if (bytes >= AUTOCOMP_MIN_LINK_BYTES && ns) {
		ac->link_measured = (double)bytes * 1e9 / (double)ns;
		ac->base.link_bytes = in->link_bytes;
		ac->base.link_ns = in->link_ns;
	}
	ac->link_bytes_per_s = ac->link_measured;
	/* the cap bounds the link, measured or not yet */
	if (cap > 0.0 && (ac->link_bytes_per_s <= 0.0 || cap < ac->link_bytes_per_s))
		ac->link_bytes_per_s = cap;
}

/* Predicted pages/s of c on the link (known estimates only). */
static double page_rate(const struct autocomp *ac, enum autocomp_choice c, unsigned cpus)
{
	double link = ac->link_bytes_per_s / ac->est[c].out_per_page;
	double cpu;

	if (ac->est[c].ns_per_page <= 0.0)
		return link;
	cpu = (double)cpus * 1e9 / ac->est[c].ns_per_page;
	return link < cpu ? link : cpu;
}

enum autocomp_choice autocomp_decide(struct autocomp *ac, const struct autocomp_input *in,
				     unsigned page_bytes)
{
	unsigned cpus = in->cpus ? in->cpus : 1;
	enum autocomp_choice best = AUTOCOMP_NONE, next;
	bool gain = false;

	ac->est[AUTOCOMP_NONE].known = true;
	ac->est[AUTOCOMP_NONE].out_per_page = (double)page_bytes;
	ac->est[AUTOCOMP_NONE].ns_per_page = 0.0;
	for (int c = AUTOCOMP_NONE + 1; c < AUTOCOMP_CHOICES; c++)
		measure(ac, (enum autocomp_choice)c, &in->codec[ids[c]]);
	measure_link(ac, in);
	for (int c = 0; c < AUTOCOMP_CHOICES; c++)
		ac->rate[c] = 0.0;
	for (int c = 0; c < AUTOCOMP_CHOICES; c++) {
		if (!ac->est[c].known || ac->link_bytes_per_s <= 0.0) {
			ac->why = AUTOCOMP_PROBE;
			return ac->cur;
		}
	}
	for (int c = 0; c < AUTOCOMP_CHOICES; c++) {
		enum autocomp_choice k = (enum autocomp_choice)c;

		/*
		 * A codec that barely shrinks the pages is never worth its CPU;
		 * the one in use keeps its place down to AUTOCOMP_KEEP_RATIO, so
		 * pages whose ratio hovers at the limit do not flap.
		 */
		if (k != AUTOCOMP_NONE &&
		    (double)page_bytes < (k == ac->cur ? AUTOCOMP_KEEP_RATIO : AUTOCOMP_MIN_RATIO) *
						 ac->est[k].out_per_page)
			continue;
		if (k != AUTOCOMP_NONE)
			gain = true;
		ac->rate[k] = page_rate(ac, k, cpus);
		if (ac->rate[k] > ac->rate[best])
			best = k;
	}
	next = best;
	/* hysteresis: stay unless the winner is clearly faster (a ruled-out codec is left) */
	if (best != ac->cur && ac->rate[ac->cur] > 0.0 &&
	    ac->rate[best] * 100.0 <= ac->rate[ac->cur] * (100.0 + AUTOCOMP_SWITCH_PCT))
		next = ac->cur;
	if (next != ac->cur)
		ac->switches++;
	ac->cur = next;
	if (next != AUTOCOMP_NONE)
		ac->why = AUTOCOMP_LINK_BOUND;
	else
		ac->why = gain ? AUTOCOMP_CPU_BOUND : AUTOCOMP_NO_GAIN;
	return next;
}
