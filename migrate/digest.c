/* SPDX-License-Identifier: MIT */
#include "migrate/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "common/compiler.h"
#include "protocol/codec.h"
#include "vm/ramwalk.h"

#define PAGE 4096u

int ram_digest(int fd, const uint8_t *ram, uint64_t bytes, uint8_t out[RAM_DIGEST_BYTES])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t npages = bytes / PAGE, pos = 0, first, n;
	unsigned len = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while (ramwalk_next(fd, &pos, npages, &first, &n)) {
		for (uint64_t pg = first; pg < first + n; pg++) {
			const uint8_t *p = ram + pg * PAGE;
			uint8_t idx[8];

			if (codec_is_zero_page(p, PAGE))
				continue;
			for (int i = 0; i < 8; i++)
				idx[i] = (uint8_t)(pg >> (8 * i));
			EVP_DigestUpdate(ctx, idx, sizeof(idx));
			EVP_DigestUpdate(ctx, p, PAGE);
		}
	}
	EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	return 0;
}

int ram_digest_page_xor(uint64_t pg, const uint8_t *page, uint8_t acc[RAM_DIGEST_BYTES])
{
	uint8_t buf[8 + PAGE], md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (codec_is_zero_page(page, PAGE))
		return 0;
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(pg >> (8 * i));
	memcpy(buf + 8, page, PAGE);
	if (!EVP_Digest(buf, sizeof(buf), md, &len, EVP_sha256(), NULL) || len != RAM_DIGEST_BYTES)
		return -ENOMEM;
	for (unsigned i = 0; i < RAM_DIGEST_BYTES; i++)
		acc[i] ^= md[i];
	return 0;
}

int ram_digest_pages(int fd, const uint8_t *ram, uint64_t bytes, const uint64_t *skip,
		     uint8_t out[RAM_DIGEST_BYTES])
{
	uint64_t npages = bytes / PAGE, pos = 0, first, n;
	int ret;

	memset(out, 0, RAM_DIGEST_BYTES);
	while (ramwalk_next(fd, &pos, npages, &first, &n)) {
		for (uint64_t pg = first; pg < first + n; pg++) {
			if (skip && (skip[pg / 64] >> (pg % 64) & 1))
				continue;
			ret = ram_digest_page_xor(pg, ram + pg * PAGE, out);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}
