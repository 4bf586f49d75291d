/* SPDX-License-Identifier: MIT */
/*
 * digest.h - a digest of all guest RAM, the same on both hosts.
 *
 * SHA-256 over (page index, page bytes) of every page that is not all
 * zero, in page order: holes of the memfd are skipped without reading, so
 * large sparse guests cost what they hold. Two RAMs with equal digests hold
 * the same non-zero pages at the same places and zeros everywhere else.
 */
#ifndef KVMIG_MIGRATE_DIGEST_H
#define KVMIG_MIGRATE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define RAM_DIGEST_BYTES 32

/* fd: the RAM memfd (for SEEK_DATA), or -1 to scan every page. Return: 0, -ENOMEM. */
int ram_digest(int fd, const uint8_t *ram, uint64_t bytes, uint8_t out[RAM_DIGEST_BYTES]) __must_check;

/*
 * The order-free digest of post-copy (WIRE_DIGEST_PAGES): the XOR over
 * every non-zero page of SHA-256(page number, LE u64 | the page). The
 * source computes it over its paused RAM (ram_digest_pages, holes
 * skipped, and pages whose bit is set in skip when skip is not NULL); the
 * destination adds each page as it places it (ram_digest_page_xor) to the
 * part it computed over the pages it already had. Return: 0, -ENOMEM.
 */
int ram_digest_pages(int fd, const uint8_t *ram, uint64_t bytes, const uint64_t *skip,
		     uint8_t out[RAM_DIGEST_BYTES]) __must_check;
/* XOR page pg's hash into acc (a zero page adds nothing). Return: 0, -ENOMEM. */
int ram_digest_page_xor(uint64_t pg, const uint8_t *page, uint8_t acc[RAM_DIGEST_BYTES]) __must_check;

#endif
