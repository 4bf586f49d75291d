#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Regenerate the seed corpora of the protocol fuzz targets in
# tests/fuzz/corpus/<target>/seed-* from the unit-test vectors: QEMU's edge
# cases, run-length boundaries, malformed deltas, and zstd/lz4 payloads made
# by our own codecs. Deterministic; crash inputs found later are added next
# to the seeds as crash-* files and are not touched here.
# Usage: tests/fuzz/make-corpus.sh   (from the top of the tree)
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/gen.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"
#include "protocol/xbzrle.h"

static void put(const char *target, const char *name, const void *a, size_t alen, const void *b,
		size_t blen)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/%s/seed-%s", target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void text(unsigned char *p, size_t len, unsigned seed)
{
	static const char *const w[] = { "the ", "page ", "guest ", "migration ", "dirty ",
					 "memory ", "of ", "a ", "kvm ", "round\n" };
	size_t i = 0;

	while (i < len) {
		const char *s = w[(seed = seed * 1103515245u + 12345u) >> 16 & 7];

		for (size_t k = 0; s[k] && i < len; k++)
			p[i++] = (unsigned char)s[k];
	}
}

int main(void)
{
	/* fuzz_xbzrle_decode: byte 0 picks the page size (0: 4096, 5: 100, 6: 16384) */
	static const struct {
		const char *name;
		unsigned char b[12];
		size_t n;
	} dec[] = {
		{ "empty", { 0 }, 1 },
		{ "first-byte", { 0, 0x00, 0x01, 0x42 }, 4 },
		{ "last-byte", { 0, 0xff, 0x1f, 0x01, 0x42 }, 5 },
		{ "middle-byte", { 0, 0xd0, 0x0f, 0x01, 0x99 }, 5 },
		{ "two-runs", { 0, 0x0a, 0x02, 1, 2, 0x80, 0x01, 0x01, 3 }, 9 },
		{ "zrun-16383", { 6, 0xff, 0x7f, 0x01, 0x42 }, 5 },
		{ "nonminimal-uleb", { 0, 0x80, 0x00, 0x81, 0x00, 0xaa }, 6 },
		{ "bad-3byte-uleb", { 0, 0x80, 0x80, 0x01, 0x01, 0xaa }, 6 },
		{ "bad-zero-nzrun", { 0, 0x05, 0x00 }, 3 },
		{ "bad-zero-zrun", { 0, 0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb }, 7 },
		{ "bad-past-end", { 0, 0xff, 0x1f, 0x02, 0xaa, 0xbb }, 6 },
		{ "bad-truncated", { 0, 0x00, 0x05, 0x01, 0x02, 0x03 }, 6 },
		{ "bad-lone-zrun", { 0, 0x05 }, 2 },
		{ "small-page", { 5, 0x10, 0x05, 1, 2, 3, 4, 5 }, 8 },
	};
	static unsigned char page[4096], old[4096], enc[8192], buf[9000];
	struct codec_config cfg;
	struct codec_ctx *ctx;
	ssize_t n;

	for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++)
		put("fuzz_xbzrle_decode", dec[i].name, dec[i].b, dec[i].n, NULL, 0);
	/* a full-page nzrun on a 100-byte page */
	buf[0] = 5;
	buf[1] = 0;
	buf[2] = 100;
	memset(buf + 3, 0x77, 100);
	put("fuzz_xbzrle_decode", "whole-small-page", buf, 103, NULL, 0);

	/* fuzz_xbzrle_roundtrip: odd byte 0 = patch mode, (lo, hi, value) triples */
	{
		static const unsigned char sparse[] = { 1, 7, 255, 0, 0, 1, 0xff, 0x0f, 2, 0x34, 0x02, 3 };
		static const unsigned char runs[] = { 1, 9, 128, 10, 0, 1, 11, 0, 2, 12, 0, 3, 13, 0, 4,
						      200, 3, 5, 201, 3, 6 };
		static const unsigned char big[] = { 7, 3, 64, 0xff, 0x3f, 9, 0x00, 0x20, 9 };

		put("fuzz_xbzrle_roundtrip", "sparse", sparse, sizeof(sparse), NULL, 0);
		put("fuzz_xbzrle_roundtrip", "runs", runs, sizeof(runs), NULL, 0);
		put("fuzz_xbzrle_roundtrip", "page-16k", big, sizeof(big), NULL, 0);
		/* split mode: 2 x 200 bytes, alternating changes */
		buf[0] = 0;
		buf[1] = 0;
		buf[2] = 128;
		for (size_t i = 0; i < 200; i++) {
			buf[3 + i] = (unsigned char)i;
			buf[203 + i] = (unsigned char)(i % 3 ? i : i ^ 0x55);
		}
		put("fuzz_xbzrle_roundtrip", "split-400", buf, 403, NULL, 0);
	}

	/* fuzz_codec_roundtrip: byte 0 odd repeats the input up to 4 KiB */
	text(page, sizeof(page), 1);
	buf[0] = 1;
	put("fuzz_codec_roundtrip", "text-repeat", buf, 1, page, 300);
	buf[0] = 0;
	put("fuzz_codec_roundtrip", "text-4k", buf, 1, page, sizeof(page));
	memset(old, 0, sizeof(old));
	old[100] = 1;
	put("fuzz_codec_roundtrip", "almost-zero", buf, 1, old, 1024);

	/* fuzz_codec_decode: byte 0 = id | size << 3 (size 0: 4096, 1: 1024) */
	buf[0] = CODEC_ZERO;
	put("fuzz_codec_decode", "zero", buf, 1, NULL, 0);
	buf[0] = CODEC_RAW | 1 << 3;
	put("fuzz_codec_decode", "raw-1k", buf, 1, page, 1024);
	memcpy(old, page, sizeof(old));
	old[5] ^= 1;
	old[3000] ^= 1;
	if (codec_by_name("xbzrle", &cfg) || codec_ctx_create(&cfg, 4096, &ctx))
		return 1;
	codec_ctx_set_ref(ctx, old);
	n = codec_encode(ctx, page, sizeof(page), enc, sizeof(enc));
	if (n <= 0)
		return 1;
	buf[0] = CODEC_XBZRLE;
	put("fuzz_codec_decode", "xbzrle", buf, 1, enc, (size_t)n);
	codec_ctx_destroy(ctx);
	static const char *const comp[] = { "zstd", "zstd:19", "lz4", "lz4hc" };
	for (size_t c = 0; c < 4; c++) {
		char name[32];

		if (codec_by_name(comp[c], &cfg) || codec_ctx_create(&cfg, 4096, &ctx))
			return 1;
		n = codec_encode(ctx, page, sizeof(page), enc, sizeof(enc));
		if (n <= 0)
			return 1;
		buf[0] = (unsigned char)cfg.ops->id;
		snprintf(name, sizeof(name), "%s-text", comp[c]);
		for (char *p = name; *p; p++)
			if (*p == ':')
				*p = '-';
		put("fuzz_codec_decode", name, buf, 1, enc, (size_t)n);
		codec_ctx_destroy(ctx);
	}
	return 0;
}
EOF
for t in fuzz_xbzrle_decode fuzz_xbzrle_roundtrip fuzz_codec_roundtrip fuzz_codec_decode; do
	mkdir -p "tests/fuzz/corpus/$t"
	rm -f "tests/fuzz/corpus/$t"/seed-*
done
${CC:-cc} -std=c11 -D_GNU_SOURCE -I. -o "$tmp/gen" "$tmp/gen.c" protocol/codec.c \
	protocol/codec_zstd.c protocol/codec_lz4.c protocol/xbzrle.c common/log.c common/parse.c \
	-lzstd -llz4
"$tmp/gen"
for t in fuzz_xbzrle_decode fuzz_xbzrle_roundtrip fuzz_codec_roundtrip fuzz_codec_decode; do
	echo "$t: $(ls "tests/fuzz/corpus/$t" | wc -l) files"
done
