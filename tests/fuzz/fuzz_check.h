/* SPDX-License-Identifier: MIT */
/*
 * fuzz_check.h - the fuzz targets' one assertion: CHECK(cond) prints the
 * file, line and condition and aborts, so libFuzzer (and the replay
 * driver) records the input as a crash. Unlike assert() it stays on in
 * every build.
 */
#ifndef KVMIG_TESTS_FUZZ_CHECK_H
#define KVMIG_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
			abort();                                                      \
		}                                                                     \
	} while (0)

#endif
