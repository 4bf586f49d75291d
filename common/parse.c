/* SPDX-License-Identifier: MIT */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -EINVAL;
	}
	for (; *s; s++) {
		unsigned d;

		if (isdigit((unsigned char)*s))
			d = (unsigned)(*s - '0');
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = 0;
	unsigned shift = 0;
	uint64_t v;
	int ret;

	if (!s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		n = 2;
		while (isxdigit((unsigned char)s[n]))
			n++;
	} else {
		while (isdigit((unsigned char)s[n]))
			n++;
	}
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	ret = parse_u64(num, &v);
	if (ret < 0)
		return ret;
	s += n;
	switch (toupper((unsigned char)*s)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		s++;
		break;
	case 'M':
		shift = 20;
		s++;
		break;
	case 'G':
		shift = 30;
		s++;
		break;
	case 'T':
		shift = 40;
		s++;
		break;
	default:
		return -EINVAL;
	}
	if (shift && (!strcasecmp(s, "ib") || !strcasecmp(s, "b")))
		s += strlen(s);
	else if (!shift && !strcasecmp(s, "b"))
		s++;
	if (*s)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

const char *format_size(uint64_t bytes, char *buf, unsigned long cap)
{
	static const char units[] = "KMGT";
	int u = -1;
	uint64_t v = bytes;

	while (v >= 1024 && (v % 1024) == 0 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, cap, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, cap, "%llu%c", (unsigned long long)v, units[u]);
	return buf;
}

int parse_mib_s(const char *s, uint64_t *bytes_per_s)
{
	char *end;
	double v;

	if (!s[0] || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return -EINVAL;
	*bytes_per_s = (uint64_t)(v * 1048576.0);
	if (v > 0 && *bytes_per_s == 0)
		*bytes_per_s = 1;
	return 0;
}
