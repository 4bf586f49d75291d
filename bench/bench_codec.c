/* SPDX-License-Identifier: MIT */
/*
 * bench_codec.c - page codec throughput and ratio on page sets built here.
 *
 * Sets (64 MiB each by default): zero pages; text pages cut at random
 * offsets from the plain-text files of /usr/share/common-licenses and
 * /usr/share/doc/ * /copyright (or generated words if there are none);
 * binary pages read from /usr/lib/x86_64-linux-gnu/ *.so* and /usr/bin/ *;
 * random pages; and XBZRLE pairs: the binary set as old pages and a copy
 * with 1, 64 or 1024 changed bytes per page as new pages.
 *
 * Each measurement times whole passes over its set, at least 3 and for at
 * least --time seconds, and reports the best pass, as zstd -b and lz4 -b
 * report their best run: other load on the machine only ever slows a pass.
 * Sets are bigger than the last-level cache, so the XBZRLE and zero-scan
 * figures include memory traffic; the "hot" columns rerun them on 64 pages
 * that stay in L2. Every decode is checked against its input outside the
 * timing.
 * Ratio is page bytes over payload bytes, with pages an encoder refused
 * (-ENOSPC) counted as sent raw. Last, zstd -b1 and lz4 -b1 run with 4 KiB
 * blocks on the same text and binary data, for comparison.
 *
 * Usage: bench_codec [--mib N] [--time SECS] [--no-cli]
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "protocol/codec.h"
#include "protocol/xbzrle.h"

#define PAGE 4096
#define HOT_PAGES 64

struct page_set {
	const char *name;
	uint8_t *data;
	size_t pages;
};

static double budget_s = 0.3;
static uint64_t rng = 0x853c49e6748fea9bull;

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

	if (posix_memalign(&p, 4096, n ? n : 1)) {
		fprintf(stderr, "bench_codec: out of memory (%zu bytes)\n", n);
		exit(1);
	}
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
		exit(1);
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

	if (codec_by_name(name, &cfg) || codec_ctx_create(&cfg, PAGE, &ctx)) {
		fprintf(stderr, "bench_codec: cannot create %s\n", name);
		exit(1);
	}
	bound = cfg.ops->bound(PAGE);
	enc = xmalloc(s->pages * bound);
	lens = calloc(s->pages, sizeof(*lens));
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
		if (memcmp(out + p * PAGE, s->data + p * PAGE, PAGE)) {
			fprintf(stderr, "bench_codec: %s: page %zu does not round-trip\n", name, p);
			exit(1);
		}
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
	if ((hits == seen) != expect) {
		fprintf(stderr, "bench_codec: zero scan %s disagrees on %s pages\n",
			codec_simd_name(simd), s->name);
		exit(1);
	}
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
					exit(1);
		best = fmax(best, (double)(reps * pages) * PAGE / (now_s() - w));
	} while (++windows < 3 || now_s() - t0 < budget_s);
	return best / 1e9;
}

static void bench_xbzrle(const struct page_set *old, unsigned k)
{
	uint8_t *new = make_pair(old, k), *enc = xmalloc(old->pages * PAGE);
	uint8_t *dst = xmalloc(old->pages * PAGE);
	int *lens = calloc(old->pages, sizeof(*lens)), *ref = calloc(old->pages, sizeof(*ref));
	size_t wire = 0, overflow = 0;
	double dec, dec_hot;

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
			fprintf(stderr, "bench_codec: %s output differs from scalar\n",
				xbzrle_impl_name(impl));
			exit(1);
		}
		printf("xbzrle     %-4u  %-8s  %8.2f  %8.2f\n", k, xbzrle_impl_name(impl), gbs, hot);
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
		    xbzrle_decode(enc + p * PAGE, (size_t)lens[p], dst + p * PAGE, PAGE) < 0) {
			fprintf(stderr, "bench_codec: xbzrle decode failed\n");
			exit(1);
		}
	}
	if (memcmp(dst, new, old->pages * PAGE)) {
		fprintf(stderr, "bench_codec: xbzrle round trip differs\n");
		exit(1);
	}
	dec = xbz_decode(enc, lens, dst, old->pages);
	dec_hot = xbz_decode(enc, lens, dst, HOT_PAGES);
	printf("xbzrle     %-4u  %-8s  %8s  %8s  %8.2f  %8.2f  %7.1f  %5.1f%%\n", k, "decode", "", "",
	       dec, dec_hot, (double)(old->pages * PAGE) / (double)wire,
	       100.0 * (double)overflow / (double)old->pages);
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
			fprintf(stderr, "bench_codec: %s: cannot read \"%s\" (last line \"%s\")\n", tool,
				last, tail);
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

int main(int argc, char **argv)
{
	static const char *const codecs[] = { "zstd:1", "zstd:3", "lz4", "lz4hc:9" };
	size_t mib = 64, pages;
	bool cli = true;
	struct page_set sets[4], *text, *binary;
	struct codec_result res[4][4];
	char cpu[256], text_src[128], bin_src[128];
	double t_start = now_s();

	printf("#");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
			mib = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
			budget_s = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--no-cli")) {
			cli = false;
		} else {
			fprintf(stderr, "usage: %s [--mib N] [--time SECS] [--no-cli]\n", argv[0]);
			return 2;
		}
	}
	if (mib < 1 || budget_s <= 0) {
		fprintf(stderr, "bench_codec: bad --mib or --time\n");
		return 2;
	}
	pages = mib * (1u << 20) / PAGE;
	if (pages < HOT_PAGES)
		pages = HOT_PAGES;
	cpu_name(cpu, sizeof(cpu));
	make_zero(&sets[0], pages);
	make_text(&sets[1], pages, text_src, sizeof(text_src));
	make_binary(&sets[2], pages, bin_src, sizeof(bin_src));
	make_random(&sets[3], pages);
	text = &sets[1];
	binary = &sets[2];
	printf("# cpu: %s; zero scan: %s; xbzrle: %s\n", cpu,
	       codec_simd_supported(CODEC_SIMD_AVX512) ? "avx512" :
	       codec_simd_supported(CODEC_SIMD_AVX2)   ? "avx2" :
							 "scalar",
	       xbzrle_impl_supported(XBZRLE_IMPL_AVX512) ? "avx512bw" :
	       xbzrle_impl_supported(XBZRLE_IMPL_AVX2)	 ? "avx2" :
							   "scalar");
	printf("# %zu-byte pages, sets of %zu MiB (%zu pages), %.2f s per measurement\n", (size_t)PAGE,
	       pages * PAGE >> 20, pages, budget_s);
	printf("# text: %s; binary: %s\n", text_src, bin_src);

	printf("\n%-10s %-8s %10s %10s %8s %6s\n", "codec", "set", "enc MB/s", "dec MB/s", "ratio",
	       "raw%");
	for (size_t c = 0; c < 4; c++)
		for (size_t s = 0; s < 4; s++) {
			res[c][s] = bench_codec(codecs[c], &sets[s]);
			printf("%-10s %-8s %10.0f %10.0f %8.2f %5.1f%%\n", codecs[c], sets[s].name,
			       res[c][s].enc_mbs, res[c][s].dec_mbs, res[c][s].ratio,
			       res[c][s].raw_pct);
			fflush(stdout);
		}

	printf("\n%-16s %-8s %12s %12s %16s\n", "zero-page scan", "impl", "GB/s zero", "GB/s hot",
	       "Mpages/s binary");
	for (int i = 0; i < CODEC_SIMD_COUNT; i++) {
		enum codec_simd simd = (enum codec_simd)i;
		double z, zh, b;

		if (!codec_simd_supported(simd))
			continue;
		z = bench_zero(simd, &sets[0], pages, true);
		zh = bench_zero(simd, &sets[0], HOT_PAGES, true);
		b = bench_zero(simd, binary, pages, false);
		printf("%-16s %-8s %12.2f %12.2f %16.1f\n", "", codec_simd_name(simd), z * PAGE / 1e9,
		       zh * PAGE / 1e9, b / 1e6);
	}

	printf("\n%-10s %-5s %-8s  %8s  %8s  %8s  %8s  %7s  %6s\n", "xbzrle", "chg", "impl",
	       "enc GB/s", "enc hot", "dec GB/s", "dec hot", "ratio", "ovfl");
	for (size_t k = 0; k < 3; k++) {
		static const unsigned changes[3] = { 1, 64, 1024 };

		bench_xbzrle(binary, changes[k]);
		fflush(stdout);
	}

	if (cli) {
		const struct page_set *cs[2] = { text, binary };
		char path[2][64];

		printf("\nreference CLIs on the same data, 4 KiB blocks (zstd/lz4 -b1 -B4096 -i1)\n");
		printf("%-8s %-7s %9s %9s %6s %9s %9s %6s %7s %7s\n", "codec", "set", "enc ours",
		       "enc cli", "o/c", "dec ours", "dec cli", "o/c", "ratio o", "ratio c");
		for (int s = 0; s < 2; s++) {
			FILE *f;
			int fd;

			snprintf(path[s], sizeof(path[s]), "/tmp/bench_codec_%s.XXXXXX", cs[s]->name);
			fd = mkstemp(path[s]);
			f = fd >= 0 ? fdopen(fd, "wb") : NULL;
			if (!f || fwrite(cs[s]->data, PAGE, cs[s]->pages, f) != cs[s]->pages ||
			    fclose(f)) {
				fprintf(stderr, "bench_codec: cannot write %s\n", path[s]);
				return 1;
			}
		}
		for (int c = 0; c < 2; c++) {
			const char *tool = c == 0 ? "zstd" : "lz4";
			size_t ci = c == 0 ? 0 : 2; /* zstd:1, lz4 */

			for (int s = 0; s < 2; s++) {
				struct cli_result r = run_cli(tool, path[s]);
				const struct codec_result *o = &res[ci][s + 1];

				if (!r.ok) {
					printf("%-8s %-7s %9.0f %9s (%s not found or output not understood)\n",
					       codecs[ci], cs[s]->name, o->enc_mbs, "-", tool);
					continue;
				}
				printf("%-8s %-7s %9.0f %9.0f %6.2f %9.0f %9.0f %6.2f %7.2f %7.2f\n",
				       codecs[ci], cs[s]->name, o->enc_mbs, r.enc_mbs, o->enc_mbs / r.enc_mbs,
				       o->dec_mbs, r.dec_mbs, o->dec_mbs / r.dec_mbs, o->ratio, r.ratio);
				fflush(stdout);
			}
		}
		unlink(path[0]);
		unlink(path[1]);
	}
	printf("\n# total %.1f s\n", now_s() - t_start);
	for (size_t s = 0; s < 4; s++)
		free(sets[s].data);
	return 0;
}
