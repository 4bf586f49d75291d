/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h - CRC32C (Castagnoli), with the SSE4.2 instruction when the CPU
 * has it and a table otherwise. Used to seal state sections and snapshot
 * records so a flipped byte is caught before anything is applied.
 */
#ifndef KVMIG_COMMON_CRC32C_H
#define KVMIG_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC of buf, continuing from crc (start with 0). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The table-driven version, for tests and machines without SSE4.2. */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
