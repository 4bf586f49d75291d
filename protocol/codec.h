/* SPDX-License-Identifier: MIT */
/*
 * codec.h - how one guest page is encoded in the migration stream.
 *
 * Stage 4 of the data flow. Each page encoding is a const vtable (struct
 * codec_ops) found in a table by its wire id. The source picks one per page:
 * CODEC_ZERO for an all-zero page, CODEC_XBZRLE when the page cache holds
 * its previous copy, otherwise the --compress codec, and CODEC_RAW whenever
 * an encoder answers -ENOSPC. The destination reads the id from the frame
 * and calls that codec's decoder on the page's memory. Encoders and decoders
 * write into caller buffers (dst, dst_cap) and never allocate. A struct
 * codec_ctx holds what a codec keeps for a whole migration (a zstd CCtx and
 * DCtx, an lz4 stream); it is made once per migration and used by one thread
 * at a time. The vtables and the table are immutable and shared.
 *
 * Payloads: ZERO is empty; RAW is the page; XBZRLE is an xbzrle.h delta
 * against the receiver's copy (empty: page unchanged); ZSTD is one standard
 * zstd frame with its content size; LZ4 is one raw LZ4 block (no frame),
 * from the fast or the HC encoder. Every decoder fills exactly dst_cap bytes
 * (the page size) or fails: a zstd or lz4 payload that decodes to any other
 * size is rejected.
 */
#ifndef KVMIG_PROTOCOL_CODEC_H
#define KVMIG_PROTOCOL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/compiler.h"

/* Codec ids. These are on-wire values: never renumber, only append. */
enum codec_id {
	CODEC_ZERO = 0,
	CODEC_RAW = 1,
	CODEC_XBZRLE = 2,
	CODEC_ZSTD = 3,
	CODEC_LZ4 = 4,
};

#define CODEC_COUNT 5

struct codec_ctx;

typedef ssize_t (*codec_encode_fn)(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
				   size_t dst_cap);
typedef ssize_t (*codec_decode_fn)(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
				   size_t dst_cap);
typedef size_t (*codec_bound_fn)(size_t len);
typedef int (*codec_state_create_fn)(int level, size_t page_size, void **state);
typedef void (*codec_state_destroy_fn)(void *state);

/*
 * One codec. encode() returns the payload size, or -ENOSPC when dst_cap is
 * too small or when the payload would not be smaller than len (every codec
 * but RAW; ZERO answers -ENOSPC for a page that is not all zero), so the
 * caller sends the page raw; -EINVAL for bad arguments. decode() returns
 * dst_cap, -EBADMSG for a malformed payload, -EINVAL for bad arguments.
 * bound() is the worst-case payload size for len input bytes; size dst with
 * it, as an encoder may need a little room past its payload (zstd: 8 bytes).
 */
struct codec_ops {
	const char *name;
	enum codec_id id;
	int level_min; /* all three 0 when the codec has no level */
	int level_max;
	int level_default;
	codec_encode_fn encode;
	codec_decode_fn decode;
	codec_bound_fn bound;
	/* Backend hooks for codec_ctx_create/destroy; NULL when stateless. */
	codec_state_create_fn state_create;
	codec_state_destroy_fn state_destroy;
};

/*
 * The vtables, each in its own file (codec.c, codec_zstd.c, codec_lz4.c).
 * codec_lz4hc_ops is an encoder variant: it emits CODEC_LZ4 payloads and is
 * not in the id table. Reach codecs through codec_get()/codec_by_name().
 */
extern const struct codec_ops codec_zero_ops;
extern const struct codec_ops codec_raw_ops;
extern const struct codec_ops codec_xbzrle_ops;
extern const struct codec_ops codec_zstd_ops;
extern const struct codec_ops codec_lz4_ops;
extern const struct codec_ops codec_lz4hc_ops;

/* The codec for a wire id, or NULL for an id this build does not know. */
const struct codec_ops *codec_get(unsigned int id);

/* A codec plus its level, as chosen by --compress. */
struct codec_config {
	const struct codec_ops *ops;
	int level; /* zstd level; lz4 acceleration; lz4hc level; 0 for others */
};

/*
 * codec_by_name - parse "none", "raw", "zero", "xbzrle", "zstd[:LEVEL]"
 * (1..22, default 1), "lz4[:ACCEL]" (acceleration 1..65537, default 1) or
 * "lz4hc[:LEVEL]" (1..12, default 9). "none" is CODEC_RAW.
 * Return: 0, or -EINVAL for an unknown name or a bad or out-of-range level.
 */
int codec_by_name(const char *name, struct codec_config *cfg) __must_check;

/*
 * codec_config_format - the canonical name of cfg ("zstd:1", "lz4hc:9",
 * "raw") into buf. Return: 0, or -ENOSPC when cap is too small.
 */
int codec_config_format(const struct codec_config *cfg, char *buf, size_t cap) __must_check;

/*
 * codec_ctx_create - the per-migration state of a codec (both directions).
 * @page_size: the guest page size the context will see (a size hint).
 * Return: 0 and *out, -EINVAL for a bad config, -ENOMEM.
 */
int codec_ctx_create(const struct codec_config *cfg, size_t page_size,
		     struct codec_ctx **out) __must_check;

/* Free a context; NULL is fine. */
void codec_ctx_destroy(struct codec_ctx *ctx);

const struct codec_ops *codec_ctx_ops(const struct codec_ctx *ctx);

/*
 * codec_ctx_set_ref - the old page the next CODEC_XBZRLE encode works
 * against (borrowed: it must stay valid across the encode call).
 */
void codec_ctx_set_ref(struct codec_ctx *ctx, const void *old_page);

/* Backend state made by ops->state_create (for codec_*.c only). */
void *codec_ctx_state(const struct codec_ctx *ctx);

/*
 * codec_encode / codec_decode - ctx->ops->encode/decode. ZERO, RAW, XBZRLE
 * and LZ4 decoders also accept a NULL ctx through their ops; ZSTD needs one.
 */
ssize_t codec_encode(struct codec_ctx *ctx, const void *src, size_t len, void *dst,
		     size_t dst_cap) __must_check;
ssize_t codec_decode(struct codec_ctx *ctx, const void *src, size_t slen, void *dst,
		     size_t dst_cap) __must_check;

/*
 * codec_is_zero_page - true when all len bytes of page are zero. Vectorized
 * (AVX-512, AVX2, 64-bit words), picked at run time; stops at the first
 * non-zero 256-byte block.
 */
bool codec_is_zero_page(const void *page, size_t len);

/* Zero-scan implementations, for tests and benchmarks. */
enum codec_simd {
	CODEC_SIMD_SCALAR,
	CODEC_SIMD_AVX2,
	CODEC_SIMD_AVX512,
	CODEC_SIMD_COUNT,
};

bool codec_simd_supported(enum codec_simd simd);
const char *codec_simd_name(enum codec_simd simd);

/* codec_is_zero_page with a chosen implementation (scalar if unsupported). */
bool codec_is_zero_page_simd(enum codec_simd simd, const void *page, size_t len);

#endif
