/* SPDX-License-Identifier: MIT */
/*
 * parse.h - strict number parsing for command lines and guest parameters.
 *
 * Every parser rejects empty strings, trailing garbage, signs and overflow.
 */
#ifndef KVMIG_COMMON_PARSE_H
#define KVMIG_COMMON_PARSE_H

#include <stdint.h>

#include "common/compiler.h"

/* Decimal or 0x-hex unsigned integer. Return: 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t *out) __must_check;

/*
 * A byte size: a number with an optional K, M, G or T suffix (binary units,
 * case-insensitive, an optional trailing "B" or "iB" accepted).
 * Return: 0 or -EINVAL / -ERANGE.
 */
int parse_size(const char *s, uint64_t *out) __must_check;

/*
 * A rate in MiB/s, as --bandwidth takes it: a non-negative decimal number
 * (fractions allowed, at most 1e9; 0 stays 0, anything above 0 is at least
 * 1 byte/s), in bytes per second. Return: 0, -EINVAL.
 */
int parse_mib_s(const char *s, uint64_t *bytes_per_s) __must_check;

/* Format bytes as "64M", "1.5G", "4096" into buf. Returns buf. */
const char *format_size(uint64_t bytes, char *buf, unsigned long cap);

#endif
