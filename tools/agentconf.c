/* SPDX-License-Identifier: MIT */
/*
 * agentconf.c - kvmigd's configuration file and its command-line
 * overrides (see agentconf.h). One table of keys; agentconf_set() checks
 * a value the same way for a file line and for an option.
 */
#include "tools/agentconf.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/parse.h"
#include "common/xio.h"
#include "migrate/announce.h"
#include "protocol/channel.h"
#include "protocol/uri.h"

static const char *const key_names[AGENTCONF_NKEYS] = {
	[AGENTCONF_CONTROL] = "control",
	[AGENTCONF_LISTEN] = "listen",
	[AGENTCONF_TLS_DIR] = "tls_dir",
	[AGENTCONF_STATE_DIR] = "state_dir",
	[AGENTCONF_ANNOUNCE] = "announce",
	[AGENTCONF_MAX_INCOMING] = "max_incoming",
	[AGENTCONF_MAX_OUTGOING] = "max_outgoing",
	[AGENTCONF_BANDWIDTH] = "bandwidth",
	[AGENTCONF_GUEST_MEM] = "guest_mem",
};
_Static_assert(AGENTCONF_NKEYS == 9, "key_names lists every key");

#define KEY_LIST                                                                          \
	"control, listen, tls_dir, state_dir, announce, max_incoming, max_outgoing, "     \
	"bandwidth, guest_mem"

void agentconf_init(struct agentconf *c)
{
	memset(c, 0, sizeof(*c));
}

void agentconf_free(struct agentconf *c)
{
	free(c->control);
	for (unsigned i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->tls_dir);
	free(c->state_dir);
	free(c->announce);
	agentconf_init(c);
}

const char *agentconf_key_name(enum agentconf_key k)
{
	return (unsigned)k < AGENTCONF_NKEYS ? key_names[k] : NULL;
}

/* A count 0..AGENTCONF_MAX_COUNT in decimal digits. */
static int parse_count(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (!s[0] || strlen(s) > 6)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > AGENTCONF_MAX_COUNT)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Replace *slot with a copy of s. */
static int set_string(char **slot, const char *s, char *err, size_t errlen)
{
	char *d = strdup(s);

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(*slot);
	*slot = d;
	return 0;
}

static int check_listen(const char *v, char *err, size_t errlen)
{
	struct uri u;

	/* malformed, or a transport not built: refused before any socket exists */
	if (uri_parse_listen(v, &u, err, errlen) < 0)
		return -EINVAL;
	if (!channel_ops_for(u.scheme)) {
		snprintf(err, errlen, "%s is not in this build", uri_scheme_name(u.scheme));
		return -EINVAL;
	}
	return 0;
}

static int check_path(const char *v, size_t max, const char *what, char *err, size_t errlen)
{
	if (strlen(v) > max) {
		snprintf(err, errlen, "%s of 1 to %zu bytes expected, not %zu bytes", what, max,
			 strlen(v));
		return -EINVAL;
	}
	return 0;
}

static int check_iface(const char *v, char *err, size_t errlen)
{
	if (strlen(v) >= ANNOUNCE_IFACE_MAX || strpbrk(v, "/ \t")) {
		snprintf(err, errlen,
			 "'%.64s' is not an interface name (1 to %d characters, no '/' or blank)", v,
			 ANNOUNCE_IFACE_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

int agentconf_set(struct agentconf *c, const char *key, const char *value, unsigned line,
		  char *err, size_t errlen)
{
	const size_t sock_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	unsigned k, n;
	uint64_t bw;
	int ret;

	for (k = 0; k < AGENTCONF_NKEYS; k++)
		if (!strcmp(key, key_names[k]))
			break;
	if (k == AGENTCONF_NKEYS) {
		char alt[32] = "";

		/* max-incoming for max_incoming: the option's spelling in the file */
		if (strchr(key, '-') && strlen(key) < sizeof(alt))
			for (size_t i = 0; key[i]; i++)
				alt[i] = key[i] == '-' ? '_' : key[i];
		for (k = 0; k < AGENTCONF_NKEYS; k++)
			if (!strcmp(alt, key_names[k]))
				break;
		if (k < AGENTCONF_NKEYS)
			snprintf(err, errlen, "unknown key '%.64s' (did you mean %s?)", key,
				 key_names[k]);
		else
			snprintf(err, errlen, "unknown key '%.64s' (keys: " KEY_LIST ")", key);
		return -ENOENT;
	}
	if (line && k != AGENTCONF_LISTEN && (c->set & (1u << k))) {
		snprintf(err, errlen, "'%s' is given twice (first on line %u)", key_names[k],
			 c->line[k]);
		return -EEXIST;
	}
	if (!value[0]) {
		snprintf(err, errlen, "no value");
		return -EINVAL;
	}
	switch ((enum agentconf_key)k) {
	case AGENTCONF_CONTROL:
		ret = check_path(value, sock_max, "a socket path", err, errlen);
		if (ret == 0)
			ret = set_string(&c->control, value, err, errlen);
		break;
	case AGENTCONF_LISTEN:
		if (c->nlisten == AGENTCONF_MAX_LISTEN) {
			snprintf(err, errlen, "at most %d listen addresses", AGENTCONF_MAX_LISTEN);
			return -E2BIG;
		}
		ret = check_listen(value, err, errlen);
		if (ret == 0)
			ret = set_string(&c->listen[c->nlisten], value, err, errlen);
		if (ret == 0)
			c->nlisten++;
		break;
	case AGENTCONF_TLS_DIR:
		ret = check_path(value, 4095, "a directory", err, errlen);
		if (ret == 0)
			ret = set_string(&c->tls_dir, value, err, errlen);
		break;
	case AGENTCONF_STATE_DIR:
		ret = check_path(value, 4095, "a directory", err, errlen);
		if (ret == 0)
			ret = set_string(&c->state_dir, value, err, errlen);
		break;
	case AGENTCONF_ANNOUNCE:
		ret = check_iface(value, err, errlen);
		if (ret == 0)
			ret = set_string(&c->announce, value, err, errlen);
		break;
	case AGENTCONF_MAX_INCOMING:
	case AGENTCONF_MAX_OUTGOING:
		ret = parse_count(value, &n);
		if (ret < 0) {
			snprintf(err, errlen, "expected a count from 0 to %d (0: no limit), not '%.64s'",
				 AGENTCONF_MAX_COUNT, value);
			break;
		}
		if (k == AGENTCONF_MAX_INCOMING)
			c->max_incoming = n;
		else
			c->max_outgoing = n;
		break;
	case AGENTCONF_BANDWIDTH:
		ret = parse_mib_s(value, &bw);
		if (ret < 0) {
			snprintf(err, errlen,
				 "expected MiB/s, a number such as 100 or 12.5 (0: no budget), not "
				 "'%.64s'",
				 value);
			break;
		}
		c->bandwidth = bw;
		break;
	case AGENTCONF_GUEST_MEM:
		ret = parse_size(value, &bw);
		if (ret < 0 || bw > (1ull << 50)) {
			ret = -EINVAL;
			snprintf(err, errlen,
				 "expected a size such as 8G or 512M (0: no limit), not '%.64s'",
				 value);
			break;
		}
		c->guest_mem = bw;
		break;
	case AGENTCONF_NKEYS:
	default:
		ret = -ENOENT;
		break;
	}
	if (ret < 0)
		return ret;
	if (!(c->set & (1u << k)))
		c->line[k] = line;
	c->set |= 1u << k;
	return 0;
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* [*s, *e) without the blanks at either end. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && blank(**s))
		(*s)++;
	while (*e > *s && blank((*e)[-1]))
		(*e)--;
}

/* One line [s, e) of the file, number line. */
static int parse_line(struct agentconf *c, const char *name, unsigned line, const char *s,
		      const char *e, char *err, size_t errlen)
{
	const char *eq, *ks, *ke, *vs, *ve;
	char msg[512], *key = NULL, *value = NULL;
	int ret;

	for (const char *p = s; p < e; p++) {
		if (*p == '#' && (p == s || blank(p[-1]))) {
			e = p;
			break;
		}
	}
	trim(&s, &e);
	if (s == e)
		return 0;
	eq = memchr(s, '=', (size_t)(e - s));
	ks = s;
	ke = eq ? eq : e;
	trim(&ks, &ke);
	if (!eq || ks == ke) {
		snprintf(err, errlen, "%s:%u: expected 'key = value', not '%.*s%s'", name, line,
			 (int)MIN(e - s, 60), s, e - s > 60 ? "..." : "");
		return -EINVAL;
	}
	vs = eq + 1;
	ve = e;
	trim(&vs, &ve);
	key = strndup(ks, (size_t)(ke - ks));
	value = strndup(vs, (size_t)(ve - vs));
	if (!key || !value) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s:%u: out of memory", name, line);
		goto out;
	}
	ret = agentconf_set(c, key, value, line, msg, sizeof(msg));
	if (ret == -EINVAL)
		snprintf(err, errlen, "%s:%u: %s: %s", name, line, key, msg);
	else if (ret < 0)
		snprintf(err, errlen, "%s:%u: %s", name, line, msg);
out:
	free(key);
	free(value);
	return ret;
}

int agentconf_parse(struct agentconf *c, const char *name, const char *text, size_t len,
		    char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		int ret;

		line++;
		if (memchr(p, '\0', (size_t)(e - p))) {
			snprintf(err, errlen, "%s:%u: a NUL byte (this is not a text file)", name,
				 line);
			return -EINVAL;
		}
		ret = parse_line(c, name, line, p, e, err, errlen);
		if (ret < 0)
			return ret;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int agentconf_load(struct agentconf *c, const char *path, char *err, size_t errlen)
{
	size_t n;
	char *buf;
	int ret = read_file_max(path, AGENTCONF_MAX_BYTES, &buf, &n);

	if (ret == -EFBIG)
		snprintf(err, errlen, "%s: larger than %d KiB: not a configuration file", path,
			 AGENTCONF_MAX_BYTES >> 10);
	else if (ret < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	else
		ret = agentconf_parse(c, path, buf, n, err, errlen);
	free(buf);
	return ret;
}

/* Move a string set on the command line over the file's. */
static void take(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

void agentconf_override(struct agentconf *c, struct agentconf *cli)
{
	for (unsigned k = 0; k < AGENTCONF_NKEYS; k++) {
		if (!(cli->set & (1u << k)))
			continue;
		switch ((enum agentconf_key)k) {
		case AGENTCONF_CONTROL:
			take(&c->control, &cli->control);
			break;
		case AGENTCONF_LISTEN:
			for (unsigned i = 0; i < c->nlisten; i++)
				free(c->listen[i]);
			for (unsigned i = 0; i < cli->nlisten; i++) {
				c->listen[i] = cli->listen[i];
				cli->listen[i] = NULL;
			}
			c->nlisten = cli->nlisten;
			cli->nlisten = 0;
			break;
		case AGENTCONF_TLS_DIR:
			take(&c->tls_dir, &cli->tls_dir);
			break;
		case AGENTCONF_STATE_DIR:
			take(&c->state_dir, &cli->state_dir);
			break;
		case AGENTCONF_ANNOUNCE:
			take(&c->announce, &cli->announce);
			break;
		case AGENTCONF_MAX_INCOMING:
			c->max_incoming = cli->max_incoming;
			break;
		case AGENTCONF_MAX_OUTGOING:
			c->max_outgoing = cli->max_outgoing;
			break;
		case AGENTCONF_BANDWIDTH:
			c->bandwidth = cli->bandwidth;
			break;
		case AGENTCONF_GUEST_MEM:
			c->guest_mem = cli->guest_mem;
			break;
		case AGENTCONF_NKEYS:
		default:
			break;
		}
		c->set |= 1u << k;
		c->line[k] = 0;
	}
	agentconf_free(cli);
}
