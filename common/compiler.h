/* SPDX-License-Identifier: MIT */
/*
 * compiler.h - attributes and small macros shared by every module.
 *
 * Leaf header: includes nothing from the tree. Keep it tiny; anything with
 * behaviour belongs in a module of its own.
 */
#ifndef KVMIG_COMMON_COMPILER_H
#define KVMIG_COMMON_COMPILER_H

#define __must_check __attribute__((warn_unused_result))
#define PRINTF_FMT(a, b) __attribute__((format(printf, a, b)))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) / (a) * (a))

#endif
