/* SPDX-License-Identifier: MIT */
/*
 * expect_err.h - the cmocka check the protocol unit tests share: a call
 * returned the -errno want and the test's message buffer err (a char array
 * the including file declares, filled by the call) contains substr.
 * Include after <cmocka.h>.
 */
#ifndef KVMIG_TESTS_HELPERS_EXPECT_ERR_H
#define KVMIG_TESTS_HELPERS_EXPECT_ERR_H

#include <string.h>

static inline void expect_err_at(int ret, int want, const char *got, const char *substr,
				 const char *file, int line)
{
	if (ret != want || !strstr(got, substr)) {
		print_error("got %d \"%s\", want %d with \"%s\"\n", ret, got, want, substr);
		_fail(file, line);
	}
}

/* ret must be the errno want, and err must contain substr */
#define expect_err(ret, want, substr) \
	expect_err_at((int)(ret), (want), err, (substr), __FILE__, __LINE__)

#endif
