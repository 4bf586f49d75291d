/* SPDX-License-Identifier: MIT */
/*
 * codecbench.c - page codec throughput and ratio (bench/codecbench.h):
 * building the sets, the timed passes, the reference CLIs, the table.
 */
#include "bench/codecbench.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "common/clock.h"
#include "common/parse.h"
#include "protocol/codec.h"
#include "protocol/xbzrle.h"

#define PAGE 4096
#define HOT_PAGES 64

struct page_set {
	const char *name;
	uint8_t *data;
	size_t pages;
};

#define RNG_SEED 0x853c49e6748fea9bull

/* One run's state: the time budget, the generator, where its rows go. */
static double budget_s = 0.3;
static uint64_t rng = RNG_SEED;

struct out {
	FILE *f;	/* the table, row by row; NULL with JSON */
	json_t *j;	/* the JSON object, always built */
};

/* A table line, when the table is printed. */
PRINTF_FMT(2, 3) static void row(const struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->f)
		return;
	va_start(ap, fmt);
	vfprintf(o->f, fmt, ap);
	va_end(ap);
	fflush(o->f);
}

static json_t *jarray(json_t *parent, const char *key)
{
	json_t *a = json_array();

	bench_json_set(parent, key, a);
	return a;
}

static void jpush(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) < 0)
		bench_fatal("out of memory (JSON)");
}

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static double now_s(void)
{
	return (double)clock_now_ns() / 1e9;
}

static void *xmalloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n ? n : 1))
		bench_fatal("out of memory (%zu bytes)", n);
	memset(p, 0, n); /* fault it in now, not inside a timed window */
	return p;
}

/* ---- building the sets ----------------------------------------------------- */

/* Append up to cap - *len bytes of a regular file. */
static void slurp(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f;
	size_t n;

	if (*len >= cap)
		return;
	f = fopen(path, "rb");
	if (!f)
		return;
	n = fread(buf + *len, 1, cap - *len, f);
	*len += n;
	fclose(f);
}

/* Files in dir matching pattern, in name order. Return: files read. */
static unsigned slurp_dir(const char *dir, const char *pattern, uint8_t *buf, size_t cap,
			  size_t *len)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	unsigned files = 0;

	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (*len < cap && names[i]->d_name[0] != '.' &&
		    !fnmatch(pattern, names[i]->d_name, 0) &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
		    !stat(path, &st) && S_ISREG(st.st_mode) && st.st_size > 0) {
			slurp(path, buf, cap, len);
			files++;
		}
		free(names[i]);
	}
	free(names);
	return files;
}

static void make_zero(struct page_set *s, size_t pages)
{
	s->name = "zero";
	s->pages = pages;
	s->data = xmalloc(pages * PAGE);
	memset(s->data, 0, pages * PAGE); /* real pages, not the shared zero page */
}

static void make_random(struct page_set *s, size_t pages)
{
	s->name = "random";
	s->pages = pages;
	s->data = xmalloc(pages * PAGE);
	for (size_t i = 0; i < pages * PAGE; i += 8) {
		uint64_t v = rnd();

		memcpy(s->data + i, &v, 8);
	}
}

static void make_text(struct page_set *s, size_t pages, char *src, size_t src_cap)
{
	const size_t cap = 16u << 20;
	uint8_t *corpus = xmalloc(cap);
	size_t len = 0;
	unsigned files = slurp_dir("/usr/share/common-licenses", "*", corpus, cap, &len);
	struct dirent **names;
	int n = scandir("/usr/share/doc", &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (len < cap &&
		    snprintf(path, sizeof(path), "/usr/share/doc/%s/copyright", names[i]->d_name) <
			    (int)sizeof(path) &&
		    !stat(path, &st) && S_ISREG(st.st_mode)) {
			slurp(path, corpus, cap, &len);
			files++;
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	if (len < 64 * 1024) { /* no text on this machine: words */
		static const char *const w[] = { "the ", "of ", "and ", "memory ", "page ",
						 "guest ", "is ", "to ", "migration ", "in ",
						 "a ", "that ", "dirty ", "with ", "for\n" };

		len = 0;
		while (len < 1u << 20) {
			const char *x = w[rnd() % 15];

			memcpy(corpus + len, x, strlen(x));
			len += strlen(x);
		}
		snprintf(src, src_cap, "generated words");
	} else {
		snprintf(src, src_cap, "%u text files, %.1f MiB", files, (double)len / (1 << 20));
	}
	s->name = "text";
	s->pages = pages;
	s->data = xmalloc(pages * PAGE);
	for (size_t p = 0; p < pages; p++)
		memcpy(s->data + p * PAGE, corpus + rnd() % (len - PAGE), PAGE);
	free(corpus);
}

static void make_binary(struct page_set *s, size_t pages, char *src, size_t src_cap)
{
	size_t cap = pages * PAGE, len = 0;
	unsigned files;

	s->name = "binary";
	s->pages = pages;
	s->data = xmalloc(cap);
	files = slurp_dir("/usr/lib/x86_64-linux-gnu", "*.so*", s->data, cap, &len);
	files += slurp_dir("/usr/bin", "*", s->data, cap, &len);
	snprintf(src, src_cap, "%u files from /usr/lib/x86_64-linux-gnu and /usr/bin", files);
	/* not enough binaries: repeat what was read (or random) */
	for (size_t i = len; i < cap; i++)
		s->data[i] = len ? s->data[i % len] : (uint8_t)rnd();
}

/* new = old with k random bytes of each page changed. */
static uint8_t *make_pair(const struct page_set *old, unsigned k)
{
	uint8_t *new = xmalloc(old->pages * PAGE);

	memcpy(new, old->data, old->pages * PAGE);
	for (size_t p = 0; p < old->pages; p++)
		for (unsigned c = 0; c < k; c++) {
			size_t at = p * PAGE + rnd() % PAGE;

			new[at] = (uint8_t)(new[at] + 1 + rnd() % 255);
		}
	return new;
}

/* ---- codecs ---------------------------------------------------------------- */

struct codec_result {
	double enc_mbs, dec_mbs, ratio, raw_pct;
};

static void encode_page(struct codec_ctx *ctx, const struct page_set *s, size_t p, uint8_t *enc,
			size_t bound, uint32_t *lens)
{
	ssize_t n = codec_encode(ctx, s->data + p * PAGE, PAGE, enc + p * bound, bound);

	lens[p] = n > 0 ? (uint32_t)n : 0; /* 0: sent raw */
}

static void decode_page(struct codec_ctx *ctx, const struct page_set *s, size_t p,
			const uint8_t *enc, size_t bound, const uint32_t *lens, uint8_t *out)
{
	if (!lens[p])
		memcpy(out + p * PAGE, s->data + p * PAGE, PAGE); /* a raw page */
	else if (codec_decode(ctx, enc + p * bound, lens[p], out + p * PAGE, PAGE) != PAGE)
		bench_fatal("page %zu of the %s set does not decode", p, s->name);
}

/*
 * Encode, then decode, the whole set in passes until the time budget is
 * spent (at least 3); report the best pass, as zstd -b and lz4 -b report
 * their best run, which keeps other load on the machine out.
 */
static struct codec_result bench_codec(const char *name, const struct page_set *s)
{
	struct codec_result res = { 0 };
	struct codec_config cfg;
	struct codec_ctx *ctx;
	size_t bound, total = 0, wire = 0, raw = 0;
	uint8_t *enc, *out;
	uint32_t *lens;
	double t0, best = 0;
	unsigned windows = 0;

	if (codec_by_name(name, &cfg) || codec_ctx_create(&cfg, PAGE, &ctx))
		bench_fatal("cannot create %s", name);
	bound = cfg.ops->bound(PAGE);
	enc = xmalloc(s->pages * bound);
	lens = bench_alloc(s->pages * sizeof(*lens));
	out = xmalloc(s->pages * PAGE);

	t0 = now_s();
	do {
		double w = now_s();

		for (size_t p = 0; p < s->pages; p++)
			encode_page(ctx, s, p, enc, bound, lens);
		best = fmax(best, (double)s->pages * PAGE / (now_s() - w));
	} while (++windows < 3 || now_s() - t0 < budget_s);
	res.enc_mbs = best / 1e6;

	/* check what was encoded, then time its decode */
	for (size_t p = 0; p < s->pages; p++) {
		total += PAGE;
		wire += lens[p] ? lens[p] : PAGE;
		raw += !lens[p];
		decode_page(ctx, s, p, enc, bound, lens, out);
		if (memcmp(out + p * PAGE, s->data + p * PAGE, PAGE))
			bench_fatal("%s: page %zu does not round-trip", name, p);
	}
	res.ratio = (double)total / (double)wire;
	res.raw_pct = 100.0 * (double)raw / (double)s->pages;
	best = 0;
	windows = 0;
	t0 = now_s();
	do {
		double w = now_s();

		for (size_t p = 0; p < s->pages; p++)
			decode_page(ctx, s, p, enc, bound, lens, out);
		best = fmax(best, (double)s->pages * PAGE / (now_s() - w));
	} while (++windows < 3 || now_s() - t0 < budget_s);
	res.dec_mbs = best / 1e6;
	codec_ctx_destroy(ctx);
	free(enc);
	free(lens);
	free(out);
	return res;
}

/* ---- zero scan ------------------------------------------------------------- */

/*
 * The memory-bound runs time whole passes over their pages (a window of
 * several passes when the set is small) and keep the best window.
 */
static size_t passes_per_window(size_t pages)
{
	return pages >= 4096 ? 1 : 4096 / pages;
}

/* Return: pages per second. */
static double bench_zero(enum codec_simd simd, const struct page_set *s, size_t pages, bool expect)
{
	size_t reps = passes_per_window(pages), hits = 0, seen = 0;
	double t0 = now_s(), best = 0;
	unsigned windows = 0;

	do {
		double w = now_s();

		for (size_t r = 0; r < reps; r++)
			for (size_t p = 0; p < pages; p++)
				hits += codec_is_zero_page_simd(simd, s->data + p * PAGE, PAGE);
		best = fmax(best, (double)(reps * pages) / (now_s() - w));
		seen += reps * pages;
	} while (++windows < 3 || now_s() - t0 < budget_s);
	if ((hits == seen) != expect)
		bench_fatal("zero scan %s disagrees on %s pages", codec_simd_name(simd), s->name);
	return best;
}

/* ---- xbzrle ---------------------------------------------------------------- */

/* Encode new against old for pages [0, pages) into enc/lens. Return: GB/s. */
static double xbz_encode(enum xbzrle_impl impl, const uint8_t *old, const uint8_t *new,
			 size_t pages, uint8_t *enc, int *lens)
{
	size_t reps = passes_per_window(pages);
	double t0 = now_s(), best = 0;
	unsigned windows = 0;

	do {
		double w = now_s();

		for (size_t r = 0; r < reps; r++)
			for (size_t p = 0; p < pages; p++)
				lens[p] = xbzrle_encode_impl(impl, old + p * PAGE, new + p * PAGE, PAGE,
							     enc + p * PAGE, PAGE - 1);
		best = fmax(best, (double)(reps * pages) * PAGE / (now_s() - w));
	} while (++windows < 3 || now_s() - t0 < budget_s);
	return best / 1e9;
}

/* Apply the deltas to dst (idempotent, so passes can repeat). Return: GB/s. */
static double xbz_decode(const uint8_t *enc, const int *lens, uint8_t *dst, size_t pages)
{
	size_t reps = passes_per_window(pages);
	double t0 = now_s(), best = 0;
	unsigned windows = 0;

	do {
		double w = now_s();

		for (size_t r = 0; r < reps; r++)
			for (size_t p = 0; p < pages; p++)
				if (lens[p] > 0 && xbzrle_decode(enc + p * PAGE, (size_t)lens[p],
								 dst + p * PAGE, PAGE) < 0)
					bench_fatal("xbzrle decode failed");
		best = fmax(best, (double)(reps * pages) * PAGE / (now_s() - w));
	} while (++windows < 3 || now_s() - t0 < budget_s);
	return best / 1e9;
}

static void bench_xbzrle(const struct out *o, json_t *rows, const struct page_set *old,
			 unsigned k)
{
	uint8_t *new = make_pair(old, k), *enc = xmalloc(old->pages * PAGE);
	uint8_t *dst = xmalloc(old->pages * PAGE);
	int *lens = bench_alloc(old->pages * sizeof(*lens));
	int *ref = bench_alloc(old->pages * sizeof(*ref));
	size_t wire = 0, overflow = 0;
	double dec, dec_hot, ratio, ovfl;
	json_t *r = json_pack("{s:i}", "changes", (json_int_t)k), *encs;

	if (!r)
		bench_fatal("out of memory (JSON)");
	encs = jarray(r, "encode");

	for (int i = 0; i < XBZRLE_IMPL_COUNT; i++) {
		enum xbzrle_impl impl = (enum xbzrle_impl)i;
		double gbs, hot;

		if (!xbzrle_impl_supported(impl))
			continue;
		gbs = xbz_encode(impl, old->data, new, old->pages, enc, lens);
		hot = xbz_encode(impl, old->data, new, HOT_PAGES, enc, lens);
		if (i == 0) {
			memcpy(ref, lens, old->pages * sizeof(*lens));
		} else if (memcmp(ref, lens, old->pages * sizeof(*lens))) {
			bench_fatal("%s output differs from scalar", xbzrle_impl_name(impl));
		}
		row(o, "xbzrle     %-4u  %-8s  %8.2f  %8.2f\n", k, xbzrle_impl_name(impl), gbs,
		    hot);
		jpush(encs, json_pack("{s:s,s:o,s:o}", "impl", xbzrle_impl_name(impl), "gb_per_s",
				      bench_json_real(gbs, 2), "hot_gb_per_s",
				      bench_json_real(hot, 2)));
	}
	/* ratio, overflow, and decode (checked) */
	memcpy(dst, old->data, old->pages * PAGE);
	for (size_t p = 0; p < old->pages; p++) {
		if (lens[p] > 0) {
			wire += (size_t)lens[p];
		} else if (lens[p] < 0) {
			wire += PAGE;
			overflow++;
			memcpy(dst + p * PAGE, new + p * PAGE, PAGE);
		}
		if (lens[p] > 0 &&
		    xbzrle_decode(enc + p * PAGE, (size_t)lens[p], dst + p * PAGE, PAGE) < 0)
			bench_fatal("xbzrle decode failed");
	}
	if (memcmp(dst, new, old->pages * PAGE))
		bench_fatal("xbzrle round trip differs");
	dec = xbz_decode(enc, lens, dst, old->pages);
	dec_hot = xbz_decode(enc, lens, dst, HOT_PAGES);
	ratio = (double)(old->pages * PAGE) / (double)wire;
	ovfl = 100.0 * (double)overflow / (double)old->pages;
	row(o, "xbzrle     %-4u  %-8s  %8s  %8s  %8.2f  %8.2f  %7.1f  %5.1f%%\n", k, "decode", "",
	    "", dec, dec_hot, ratio, ovfl);
	bench_json_set(r, "dec_gb_per_s", bench_json_real(dec, 2));
	bench_json_set(r, "dec_hot_gb_per_s", bench_json_real(dec_hot, 2));
	bench_json_set(r, "ratio", bench_json_real(ratio, 1));
	bench_json_set(r, "overflow_pct", bench_json_real(ovfl, 1));
	jpush(rows, r);
	free(new);
	free(enc);
	free(dst);
	free(lens);
	free(ref);
}

/* ---- reference CLIs -------------------------------------------------------- */

struct cli_result {
	bool ok;
	double enc_mbs, dec_mbs, ratio;
};

/* Run "tool -b1 -B4096 -i1 file" and read its last result line. */
static struct cli_result run_cli(const char *tool, const char *file)
{
	struct cli_result r = { 0 };
	char cmd[512], line[1024], last[1024] = "", tail[1024] = "";
	FILE *p;
	int c;
	size_t n = 0;

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null && %s -b1 -B4096 -i1 %s 2>&1", tool,
		 tool, file);
	p = popen(cmd, "r");
	if (!p)
		return r;
	/* progress lines end in \r: split on both */
	while ((c = fgetc(p)) != EOF) {
		if (c == '\r' || c == '\n') {
			line[n] = 0;
			/* the last line with both speeds: a later round may show one */
			if (strstr(line, "->") && strstr(line, "MB/s") &&
			    strstr(strstr(line, "MB/s") + 4, "MB/s"))
				memcpy(last, line, n + 1);
			if (n)
				memcpy(tail, line, n + 1);
			n = 0;
		} else if (n < sizeof(line) - 1) {
			line[n++] = (char)c;
		}
	}
	pclose(p);
	{
		/* "... : 67108864 -> 20000000 (x3.355),  500.0 MB/s,  1500.0 MB/s" */
		const char *a = strchr(last, '('), *m1, *m2;
		double enc = 0, dec = 0, ratio = 0;

		m1 = strstr(last, "MB/s");
		m2 = m1 ? strstr(m1 + 4, "MB/s") : NULL;
		if (!a || !m1 || !m2) {
			fprintf(stderr, "%s: %s: cannot read \"%s\" (last line \"%s\")\n",
				bench_prog(), tool, last, tail);
			return r;
		}
		if (a[1] == 'x')
			a++;
		ratio = strtod(a + 1, NULL);
		for (const char *q = m1 - 1; q > last; q--)
			if (*q == ',' || *q == ' ') {
				if (q[1] != ' ' && q[1] != 'M') {
					enc = strtod(q + 1, NULL);
					break;
				}
			}
		for (const char *q = m2 - 1; q > m1; q--)
			if (*q == ',' || *q == ' ') {
				if (q[1] != ' ' && q[1] != 'M') {
					dec = strtod(q + 1, NULL);
					break;
				}
			}
		r.ok = enc > 0 && dec > 0;
		r.enc_mbs = enc;
		r.dec_mbs = dec;
		r.ratio = ratio;
	}
	return r;
}

static void cpu_name(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, cap, "unknown cpu");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && c) {
			snprintf(buf, cap, "%s", c + 2);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

/* ---- options and the run ----------------------------------------------------- */

void codecbench_defaults(struct codecbench_opts *o)
{
	o->mib = 64;
	o->time_s = 0.3;
	o->cli = true;
}

int codecbench_parse(int argc, char **argv, struct codecbench_opts *o, char *err, size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		const char *v;
		uint64_t n;
		int r;

		if (!strcmp(argv[i], "--no-cli")) {
			o->cli = false;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--mib", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (parse_u64(v, &n) < 0 || n < 1 || n > (1u << 20)) {
				snprintf(err, errlen, "bad --mib '%s': MiB per set, 1 to %u", v,
					 1u << 20);
				return -EINVAL;
			}
			o->mib = (size_t)n;
		} else if ((r = bench_take_opt(argc, argv, &i, "--time", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (bench_parse_double(v, &o->time_s) < 0 || o->time_s <= 0 ||
			    o->time_s > 3600) {
				snprintf(err, errlen, "bad --time '%s': seconds, above 0", v);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "unknown option '%s'", argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* Write a set to a temporary file for the reference CLIs. Return: 0, -errno. */
static int write_set(const struct page_set *s, char *path, size_t cap, char *err, size_t errlen)
{
	FILE *f;
	int fd;

	snprintf(path, cap, "/tmp/bench_codec_%s.XXXXXX", s->name);
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f || fwrite(s->data, PAGE, s->pages, f) != s->pages || fclose(f)) {
		int e = errno ? errno : EIO;

		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		if (f)
			fclose(f);
		else if (fd >= 0)
			close(fd);
		if (fd >= 0)
			unlink(path);
		return -e;
	}
	return 0;
}

static json_t *jnum_or_null(bool ok, double v, int decimals)
{
	return ok ? bench_json_real(v, decimals) : json_null();
}

/* The reference CLIs on the text and binary sets. Return: 0, -errno. */
static int run_reference(const struct out *o, json_t *rows, const char *const *codecs,
			 struct page_set *sets, struct codec_result (*res)[4], char *err,
			 size_t errlen)
{
	const struct page_set *cs[2] = { &sets[1], &sets[2] };	/* text, binary */
	char path[2][64];
	int ret;

	row(o, "\nreference CLIs on the same data, 4 KiB blocks (zstd/lz4 -b1 -B4096 -i1)\n");
	row(o, "%-8s %-7s %9s %9s %6s %9s %9s %6s %7s %7s\n", "codec", "set", "enc ours",
	    "enc cli", "o/c", "dec ours", "dec cli", "o/c", "ratio o", "ratio c");
	if ((ret = write_set(cs[0], path[0], sizeof(path[0]), err, errlen)) < 0)
		return ret;
	if ((ret = write_set(cs[1], path[1], sizeof(path[1]), err, errlen)) < 0) {
		unlink(path[0]);
		return ret;
	}
	for (int c = 0; c < 2; c++) {
		const char *tool = c == 0 ? "zstd" : "lz4";
		size_t ci = c == 0 ? 0 : 2; /* zstd:1, lz4 */

		for (int s = 0; s < 2; s++) {
			struct cli_result r = run_cli(tool, path[s]);
			const struct codec_result *our = &res[ci][s + 1];

			jpush(rows, json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "codec",
					      codecs[ci], "set", cs[s]->name, "tool", tool,
					      "ours_enc_mb_per_s", bench_json_real(our->enc_mbs, 0),
					      "cli_enc_mb_per_s", jnum_or_null(r.ok, r.enc_mbs, 0),
					      "ours_dec_mb_per_s", bench_json_real(our->dec_mbs, 0),
					      "cli_dec_mb_per_s", jnum_or_null(r.ok, r.dec_mbs, 0),
					      "ours_ratio", bench_json_real(our->ratio, 2),
					      "cli_ratio", jnum_or_null(r.ok, r.ratio, 2)));
			if (!r.ok) {
				row(o,
				    "%-8s %-7s %9.0f %9s (%s not found or output not understood)\n",
				    codecs[ci], cs[s]->name, our->enc_mbs, "-", tool);
				continue;
			}
			row(o, "%-8s %-7s %9.0f %9.0f %6.2f %9.0f %9.0f %6.2f %7.2f %7.2f\n",
			    codecs[ci], cs[s]->name, our->enc_mbs, r.enc_mbs,
			    our->enc_mbs / r.enc_mbs, our->dec_mbs, r.dec_mbs,
			    our->dec_mbs / r.dec_mbs, our->ratio, r.ratio);
		}
	}
	unlink(path[0]);
	unlink(path[1]);
	return 0;
}

int codecbench_run(const struct codecbench_opts *opts, const char *cmdline, bool json, FILE *f,
		   char *err, size_t errlen)
{
	static const char *const codecs[] = { "zstd:1", "zstd:3", "lz4", "lz4hc:9" };
	struct page_set sets[4], *binary;
	struct codec_result res[4][4];
	char cpu[256], text_src[128], bin_src[128];
	const char *zimpl, *ximpl;
	double t_start = now_s();
	struct out o = { .f = json ? NULL : f, .j = json_object() };
	json_t *rows;
	size_t pages;
	int ret = 0;

	if (!o.j)
		bench_fatal("out of memory (JSON)");
	budget_s = opts->time_s;
	rng = RNG_SEED;
	row(&o, "# %s\n", cmdline);
	pages = opts->mib * (1u << 20) / PAGE;
	if (pages < HOT_PAGES)
		pages = HOT_PAGES;
	cpu_name(cpu, sizeof(cpu));
	make_zero(&sets[0], pages);
	make_text(&sets[1], pages, text_src, sizeof(text_src));
	make_binary(&sets[2], pages, bin_src, sizeof(bin_src));
	make_random(&sets[3], pages);
	binary = &sets[2];
	zimpl = codec_simd_supported(CODEC_SIMD_AVX512) ? "avx512" :
		codec_simd_supported(CODEC_SIMD_AVX2)	? "avx2" :
							  "scalar";
	ximpl = xbzrle_impl_supported(XBZRLE_IMPL_AVX512) ? "avx512bw" :
		xbzrle_impl_supported(XBZRLE_IMPL_AVX2)	  ? "avx2" :
							    "scalar";
	row(&o, "# cpu: %s; zero scan: %s; xbzrle: %s\n", cpu, zimpl, ximpl);
	row(&o, "# %zu-byte pages, sets of %zu MiB (%zu pages), %.2f s per measurement\n",
	    (size_t)PAGE, pages * PAGE >> 20, pages, budget_s);
	row(&o, "# text: %s; binary: %s\n", text_src, bin_src);
	bench_json_set(o.j, "bench", json_string("codec"));
	bench_json_set(o.j, "command", json_string(cmdline));
	bench_json_set(o.j, "settings",
		       json_pack("{s:i,s:I,s:I,s:o,s:b}", "page_bytes", PAGE, "mib",
				 (json_int_t)opts->mib, "pages", (json_int_t)pages, "time_s",
				 bench_json_real(budget_s, 3), "reference_cli", opts->cli));
	bench_json_set(o.j, "cpu", json_string(cpu));
	bench_json_set(o.j, "zero_scan_impl", json_string(zimpl));
	bench_json_set(o.j, "xbzrle_impl", json_string(ximpl));
	bench_json_set(o.j, "text_source", json_string(text_src));
	bench_json_set(o.j, "binary_source", json_string(bin_src));

	row(&o, "\n%-10s %-8s %10s %10s %8s %6s\n", "codec", "set", "enc MB/s", "dec MB/s", "ratio",
	    "raw%");
	rows = jarray(o.j, "codecs");
	for (size_t c = 0; c < 4; c++)
		for (size_t s = 0; s < 4; s++) {
			const struct codec_result *r = &res[c][s];

			res[c][s] = bench_codec(codecs[c], &sets[s]);
			row(&o, "%-10s %-8s %10.0f %10.0f %8.2f %5.1f%%\n", codecs[c], sets[s].name,
			    r->enc_mbs, r->dec_mbs, r->ratio, r->raw_pct);
			jpush(rows, json_pack("{s:s,s:s,s:o,s:o,s:o,s:o}", "codec", codecs[c],
					      "set", sets[s].name, "enc_mb_per_s",
					      bench_json_real(r->enc_mbs, 0), "dec_mb_per_s",
					      bench_json_real(r->dec_mbs, 0), "ratio",
					      bench_json_real(r->ratio, 2), "raw_pct",
					      bench_json_real(r->raw_pct, 1)));
		}

	row(&o, "\n%-16s %-8s %12s %12s %16s\n", "zero-page scan", "impl", "GB/s zero", "GB/s hot",
	    "Mpages/s binary");
	rows = jarray(o.j, "zero_scan");
	for (int i = 0; i < CODEC_SIMD_COUNT; i++) {
		enum codec_simd simd = (enum codec_simd)i;
		double z, zh, b;

		if (!codec_simd_supported(simd))
			continue;
		z = bench_zero(simd, &sets[0], pages, true);
		zh = bench_zero(simd, &sets[0], HOT_PAGES, true);
		b = bench_zero(simd, binary, pages, false);
		row(&o, "%-16s %-8s %12.2f %12.2f %16.1f\n", "", codec_simd_name(simd),
		    z * PAGE / 1e9, zh * PAGE / 1e9, b / 1e6);
		jpush(rows, json_pack("{s:s,s:o,s:o,s:o}", "impl", codec_simd_name(simd),
				      "zero_gb_per_s", bench_json_real(z * PAGE / 1e9, 2),
				      "zero_hot_gb_per_s", bench_json_real(zh * PAGE / 1e9, 2),
				      "binary_mpages_per_s", bench_json_real(b / 1e6, 1)));
	}

	row(&o, "\n%-10s %-5s %-8s  %8s  %8s  %8s  %8s  %7s  %6s\n", "xbzrle", "chg", "impl",
	    "enc GB/s", "enc hot", "dec GB/s", "dec hot", "ratio", "ovfl");
	rows = jarray(o.j, "xbzrle");
	for (size_t k = 0; k < 3; k++) {
		static const unsigned changes[3] = { 1, 64, 1024 };

		bench_xbzrle(&o, rows, binary, changes[k]);
	}

	if (opts->cli)
		ret = run_reference(&o, jarray(o.j, "reference"), codecs, sets, res, err, errlen);
	else
		bench_json_set(o.j, "reference", json_null());
	for (size_t s = 0; s < 4; s++)
		free(sets[s].data);
	if (ret < 0) {
		json_decref(o.j);
		return ret;
	}
	row(&o, "\n# total %.1f s\n", now_s() - t_start);
	bench_json_set(o.j, "total_s", bench_json_real(now_s() - t_start, 1));
	if (json)
		bench_json_print(f, o.j);
	else
		json_decref(o.j);
	return 0;
}
