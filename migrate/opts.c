/* SPDX-License-Identifier: MIT */
#include "migrate/opts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/compiler.h"
#include "migrate/announce.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "vm/vm.h"

static const struct migrate_limit limits[] = {
	[MIGRATE_OPT_MAX_DOWNTIME] = { "max_downtime_ms", "--max-downtime", 1, 3600000, false },
	[MIGRATE_OPT_BANDWIDTH] = { "bandwidth", "--bandwidth", 0, UINT64_MAX, false },
	[MIGRATE_OPT_XBZRLE_CACHE] = { "xbzrle_cache_bytes", "--xbzrle", VM_PAGE_SIZE, 1ull << 40,
				       true },
	[MIGRATE_OPT_PARALLEL] = { "parallel", "--parallel", 1, MIGRATE_MAX_PARALLEL, false },
	[MIGRATE_OPT_MAX_ITERATIONS] = { "max_iterations", "--max-iterations", 0, 1000000, false },
	/* 100 million seconds: the CLI takes seconds, the field milliseconds */
	[MIGRATE_OPT_TIMEOUT] = { "timeout_ms", "--timeout", 0, 100000000ull * 1000, false },
	[MIGRATE_OPT_POSTCOPY_RECONNECT] = { "postcopy_reconnect_ms", "--postcopy-reconnect", 0,
					     86400000ull, false },
	[MIGRATE_OPT_SSH_AGENT_PORT] = { "ssh_agent_port", "--ssh-agent-port", 1, 65535, true },
};
_Static_assert(ARRAY_SIZE(limits) == MIGRATE_OPT_COUNT, "a limit for every option");

void migrate_opts_defaults(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_downtime_ms = 300;
	strcpy(o->compress, "none");
	o->parallel = 1;
	o->max_iterations = 30;
	o->dirty_track = DIRTYLOG_BITMAP;
	o->announce_rounds = ANNOUNCE_DEF_ROUNDS;
	o->announce_initial_ms = ANNOUNCE_DEF_INITIAL_MS;
	o->announce_step_ms = ANNOUNCE_DEF_STEP_MS;
	o->announce_max_ms = ANNOUNCE_DEF_MAX_MS;
}

const struct migrate_limit *migrate_limit(enum migrate_opt opt)
{
	return &limits[opt];
}

bool migrate_opt_ok(enum migrate_opt opt, uint64_t v)
{
	const struct migrate_limit *l = &limits[opt];

	return (v == 0 && l->zero_off) || (v >= l->min && v <= l->max);
}

bool migrate_compress_auto(const char *s)
{
	return !strcmp(s, "auto");
}

int migrate_check_compress(const char *s, char *err, size_t errlen)
{
	struct codec_config cc;
	size_t n = strcspn(s, ":");
	bool known = (n == 4 && !strncmp(s, "none", 4)) || (n == 4 && !strncmp(s, "zstd", 4)) ||
		     (n == 3 && !strncmp(s, "lz4", 3));

	if (migrate_compress_auto(s))
		return 0;
	if (n == 4 && !strncmp(s, "auto", 4)) {
		snprintf(err, errlen, "bad compression '%.40s': auto takes no level", s);
		return -EINVAL;
	}
	if (!known) {
		snprintf(err, errlen, "unknown compression '%.40s' (none, zstd[:LEVEL], lz4, auto)",
			 s);
		return -EINVAL;
	}
	if (codec_by_name(s, &cc) < 0) {
		const char *why = "lz4's acceleration is a number from 1 to 65537";

		if (!strncmp(s, "none", 4))
			why = "none takes no level";
		else if (!strncmp(s, "zstd", 4))
			why = "zstd's LEVEL is a number from 1 to 22";
		snprintf(err, errlen, "bad compression '%.40s': %s", s, why);
		return -EINVAL;
	}
	return 0;
}

int migrate_opt_check(enum migrate_opt opt, uint64_t v, char *err, size_t errlen)
{
	const struct migrate_limit *l = &limits[opt];

	if (migrate_opt_ok(opt, v))
		return 0;
	snprintf(err, errlen, "field '%s' must be %sbetween %llu and %llu, not %llu", l->field,
		 l->zero_off ? "0 (off) or " : "", (unsigned long long)l->min,
		 (unsigned long long)l->max, (unsigned long long)v);
	return -EINVAL;
}

static const char *const postcopy_names[] = {
	[MIGRATE_POSTCOPY_OFF] = "off",
	[MIGRATE_POSTCOPY_AUTO] = "auto",
	[MIGRATE_POSTCOPY_NOW] = "now",
	[MIGRATE_POSTCOPY_MANUAL] = "manual",
};

const char *migrate_postcopy_name(enum migrate_postcopy m)
{
	return (unsigned)m < ARRAY_SIZE(postcopy_names) ? postcopy_names[m] : "?";
}

int migrate_postcopy_parse(const char *s, enum migrate_postcopy *m)
{
	for (unsigned i = 0; i < ARRAY_SIZE(postcopy_names); i++) {
		if (!strcmp(s, postcopy_names[i])) {
			*m = (enum migrate_postcopy)i;
			return 0;
		}
	}
	return -EINVAL;
}

int migrate_opts_check(const struct migrate_opts *o, char *err, size_t errlen)
{
	const uint64_t v[MIGRATE_OPT_COUNT] = {
		[MIGRATE_OPT_MAX_DOWNTIME] = o->max_downtime_ms,
		[MIGRATE_OPT_BANDWIDTH] = o->bandwidth,
		[MIGRATE_OPT_XBZRLE_CACHE] = o->xbzrle_cache_bytes,
		[MIGRATE_OPT_PARALLEL] = o->parallel,
		[MIGRATE_OPT_MAX_ITERATIONS] = o->max_iterations,
		[MIGRATE_OPT_TIMEOUT] = o->timeout_ms,
		[MIGRATE_OPT_SSH_AGENT_PORT] = o->ssh_agent_port,
		[MIGRATE_OPT_POSTCOPY_RECONNECT] = o->postcopy_reconnect_ms,
	};
	int ret;

	for (int i = 0; i < MIGRATE_OPT_COUNT; i++) {
		ret = migrate_opt_check((enum migrate_opt)i, v[i], err, errlen);
		if (ret < 0)
			return ret;
	}
	if ((unsigned)o->postcopy >= ARRAY_SIZE(postcopy_names)) {
		snprintf(err, errlen, "unknown post-copy mode %u", (unsigned)o->postcopy);
		return -EINVAL;
	}
	if (!memchr(o->compress, '\0', sizeof(o->compress))) {
		snprintf(err, errlen, "compression name too long");
		return -EINVAL;
	}
	ret = migrate_check_compress(o->compress, err, errlen);
	if (ret < 0)
		return ret;
	if (!memchr(o->ssh_exec, '\0', sizeof(o->ssh_exec))) {
		snprintf(err, errlen, "field 'ssh_exec' is longer than %zu bytes",
			 sizeof(o->ssh_exec) - 1);
		return -EINVAL;
	}
	if (!memchr(o->tls_dir, '\0', sizeof(o->tls_dir))) {
		snprintf(err, errlen, "field 'tls_dir' is longer than %zu bytes",
			 sizeof(o->tls_dir) - 1);
		return -EINVAL;
	}
	{
		/* the schedule is checked even without --announce: it is one option set */
		struct announce_sched as = {
			.rounds = o->announce_rounds, .initial_ms = o->announce_initial_ms,
			.step_ms = o->announce_step_ms, .max_ms = o->announce_max_ms,
		};
		size_t n = strnlen(o->announce, sizeof(o->announce));

		if (n == sizeof(o->announce) || strchr(o->announce, '/') || strchr(o->announce, ' ')) {
			snprintf(err, errlen, "field 'announce' must be an interface name of at most "
				 "%zu bytes", sizeof(o->announce) - 1);
			return -EINVAL;
		}
		ret = announce_sched_check(&as, err, errlen);
		if (ret < 0)
			return ret;
	}
	if (o->dirty_track != DIRTYLOG_BITMAP && o->dirty_track != DIRTYLOG_RING) {
		snprintf(err, errlen, "unknown dirty tracking %d (bitmap, ring)", (int)o->dirty_track);
		return -EINVAL;
	}
	return 0;
}

void migrate_opts_channel(const struct migrate_opts *o, struct channel_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->tls_dir = o->tls_dir[0] ? o->tls_dir : NULL;
	co->ssh_accept_new = o->ssh_accept_new;
	co->ssh_agent_port = (uint16_t)o->ssh_agent_port;
	co->ssh_exec = o->ssh_exec[0] ? o->ssh_exec : NULL;
}
