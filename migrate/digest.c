/* SPDX-License-Identifier: MIT */
#include "migrate/digest.h"

#include <errno.h>
#include <openssl/evp.h>

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
