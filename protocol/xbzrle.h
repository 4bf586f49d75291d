/* SPDX-License-Identifier: MIT */
/*
 * xbzrle.h - XOR-based zero-run-length delta of a page against its previous
 * copy, byte-compatible with QEMU's migration/xbzrle.c.
 *
 * Stage 4 of the data flow: the source encodes a dirty page against the copy
 * it sent last time (protocol/pagecache), the destination applies the delta
 * to the page it already holds. Pure functions on caller buffers: no state,
 * no allocation, callable from any thread. The encoder picks the widest
 * SIMD path the CPU has at run time (AVX-512BW, AVX2, else 64-bit words);
 * every path emits the same bytes.
 *
 * Grammar (the XOR of old and new is split into maximal runs):
 *
 *	delta = { zrun nzrun byte{nzrun} }     possibly empty: page unchanged
 *	zrun  = uleb128    bytes equal in old and new; 0 only in the first pair
 *	nzrun = uleb128    bytes that differ, >= 1, followed by the NEW bytes
 *
 * A trailing run of equal bytes is not written. QEMU caps a uleb128 value
 * at 2 bytes (values up to 16383), which covers every run of a page smaller
 * than 16 KiB; for pages of 16 KiB and more (whose longest runs QEMU cannot
 * encode) both sides allow as many bytes as len itself takes in uleb128, so
 * for a 4 KiB page the stream is exactly QEMU's, both ways.
 * Like QEMU's decoder, a non-minimal 2-byte value (0x85 0x00 for 5) is
 * accepted.
 */
#ifndef KVMIG_PROTOCOL_XBZRLE_H
#define KVMIG_PROTOCOL_XBZRLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* Largest page the functions accept (their return value is an int). */
#define XBZRLE_MAX_PAGE ((size_t)1 << 30)

/*
 * Worst-case encoded size of a len-byte page: alternating 1-byte runs cost
 * 3 bytes per 2 page bytes.
 */
static inline size_t xbzrle_bound(size_t len)
{
	return len + len / 2 + 2;
}

/*
 * xbzrle_encode - write the delta that turns old into new.
 * @old, @new: the cached and the current page, len bytes each.
 * @dst, @dlen: output buffer.
 *
 * Return: the encoded size (> 0); 0 when the pages are equal (nothing to
 * send); -1 when the delta does not fit in dlen (send the page whole), or
 * when len exceeds XBZRLE_MAX_PAGE. dst may hold partial output after -1.
 */
int xbzrle_encode(const uint8_t *old, const uint8_t *new, size_t len, uint8_t *dst,
		  size_t dlen) __must_check;

/*
 * xbzrle_decode - apply a delta to page in place.
 * @src, @slen: the delta as produced by xbzrle_encode (possibly empty).
 * @page, @len: the receiver's copy of the page, which must equal the
 * sender's old page.
 *
 * Return: the number of page bytes covered (the end of the last changed
 * run, 0 for an empty delta), or -1 on malformed input: a truncated or
 * over-long uleb128, a zero zrun after the first pair, a zero nzrun, a run
 * past the end of the page, or truncated bytes. Never writes outside
 * page[0, len). After -1 the page may be partly updated: treat it as lost.
 */
int xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len) __must_check;

/*
 * Encoder implementations, for tests and benchmarks. xbzrle_encode() uses
 * the best one xbzrle_impl_supported() reports.
 */
enum xbzrle_impl {
	XBZRLE_IMPL_SCALAR, /* portable, 64-bit words through memcpy loads */
	XBZRLE_IMPL_AVX2,
	XBZRLE_IMPL_AVX512, /* AVX-512BW */
	XBZRLE_IMPL_COUNT,
};

bool xbzrle_impl_supported(enum xbzrle_impl impl);
const char *xbzrle_impl_name(enum xbzrle_impl impl);

/*
 * xbzrle_encode_impl - xbzrle_encode() with a chosen implementation. An
 * implementation the CPU lacks falls back to the scalar one.
 */
int xbzrle_encode_impl(enum xbzrle_impl impl, const uint8_t *old, const uint8_t *new, size_t len,
		       uint8_t *dst, size_t dlen) __must_check;

#endif
