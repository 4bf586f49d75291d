/* SPDX-License-Identifier: MIT */
/*
 * test_agentconf.c - kvmigd's configuration (tools/agentconf.h): every
 * key and its value, comments and blanks, the command line laid over the
 * file, and each bad input refused with its exact "FILE:LINE: message".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/parse.h"
#include "tools/agentconf.h"

#define MIB 1048576ull

static int parse(struct agentconf *c, const char *text, char *err, size_t errlen)
{
	agentconf_init(c);
	err[0] = '\0';
	return agentconf_parse(c, "t.conf", text, strlen(text), err, errlen);
}

static void test_agentconf_every_key(void **state)
{
	static const char text[] =
		"control = /run/kvmig/kvmigd.sock\n"
		"listen = tcp:0.0.0.0:49152\n"
		"listen = unix:/run/kvmig/mig.sock\n"
		"tls_dir = /etc/kvmig/tls\n"
		"state_dir = /var/lib/kvmig\n"
		"announce = eth0\n"
		"max_incoming = 2\n"
		"max_outgoing = 3\n"
		"bandwidth = 12.5\n"
		"guest_mem = 6G\n";
	struct agentconf c;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.control, "/run/kvmig/kvmigd.sock");
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[0], "tcp:0.0.0.0:49152");
	assert_string_equal(c.listen[1], "unix:/run/kvmig/mig.sock");
	assert_string_equal(c.tls_dir, "/etc/kvmig/tls");
	assert_string_equal(c.state_dir, "/var/lib/kvmig");
	assert_string_equal(c.announce, "eth0");
	assert_int_equal(c.max_incoming, 2);
	assert_int_equal(c.max_outgoing, 3);
	assert_int_equal(c.bandwidth, 12 * MIB + MIB / 2);
	assert_int_equal(c.guest_mem, 6144 * MIB);
	assert_int_equal(c.set, (1u << AGENTCONF_NKEYS) - 1);
	/* each key remembers the line that gave it first */
	assert_int_equal(c.line[AGENTCONF_CONTROL], 1);
	assert_int_equal(c.line[AGENTCONF_LISTEN], 2);
	assert_int_equal(c.line[AGENTCONF_BANDWIDTH], 9);
	agentconf_free(&c);
	assert_null(c.control);
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.set, 0);

	/* the limits' edges: 0 means none, 64 is the largest count */
	assert_int_equal(parse(&c, "max_incoming = 0\nmax_outgoing = 64\nbandwidth = 0\n", err,
			       sizeof(err)),
			 0);
	assert_int_equal(c.max_incoming, 0);
	assert_int_equal(c.max_outgoing, 64);
	assert_int_equal(c.bandwidth, 0);
	assert_int_equal(c.set, (1u << AGENTCONF_MAX_INCOMING) | (1u << AGENTCONF_MAX_OUTGOING) |
					(1u << AGENTCONF_BANDWIDTH));
	agentconf_free(&c);

	/* an empty file sets nothing */
	assert_int_equal(parse(&c, "", err, sizeof(err)), 0);
	assert_int_equal(c.set, 0);
	assert_null(c.control);
	agentconf_free(&c);
}

static void test_agentconf_comments_and_blanks(void **state)
{
	static const char text[] =
		"# kvmigd.conf\n"
		"\n"
		"   # an indented comment\n"
		"control=/run/a.sock# not a comment: no blank before it\n"
		"\tstate_dir   =   /srv/vm state   # a comment after a blank\n"
		"tls_dir = /etc/kvmig/tls#1\r\n"
		"announce =\teth0\t\n"
		"   \t  \n"
		"max_incoming = 1"; /* no newline at the end */
	struct agentconf c;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	assert_string_equal(c.control, "/run/a.sock# not a comment: no blank before it");
	assert_string_equal(c.state_dir, "/srv/vm state");
	assert_string_equal(c.tls_dir, "/etc/kvmig/tls#1");
	assert_string_equal(c.announce, "eth0");
	assert_int_equal(c.max_incoming, 1);
	assert_int_equal(c.line[AGENTCONF_CONTROL], 4);
	assert_int_equal(c.line[AGENTCONF_MAX_INCOMING], 9);
	agentconf_free(&c);

	/* a file of comments sets nothing */
	assert_int_equal(parse(&c, "# control = /x\n#listen = tcp::1\n", err, sizeof(err)), 0);
	assert_int_equal(c.set, 0);
	agentconf_free(&c);
}

static void test_agentconf_overrides(void **state)
{
	static const char text[] = "control = /run/file.sock\n"
				   "listen = tcp:127.0.0.1:4000\n"
				   "listen = tcp:127.0.0.1:4001\n"
				   "tls_dir = /etc/file-tls\n"
				   "max_incoming = 2\n"
				   "bandwidth = 100\n";
	struct agentconf c, cli;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	agentconf_init(&cli);
	/* the command line: a repeated option replaces, listen appends */
	assert_int_equal(agentconf_set(&cli, "control", "/run/first.sock", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "control", "/run/cli.sock", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "listen", "unix:/run/m.sock", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "max_incoming", "5", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "max_incoming", "1", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "max_outgoing", "4", 0, err, sizeof(err)), 0);
	assert_int_equal(agentconf_set(&cli, "bandwidth", "0", 0, err, sizeof(err)), 0);
	assert_string_equal(cli.control, "/run/cli.sock");
	agentconf_override(&c, &cli);
	/* the command line's keys win */
	assert_string_equal(c.control, "/run/cli.sock");
	assert_int_equal(c.max_incoming, 1);
	assert_int_equal(c.max_outgoing, 4);
	assert_int_equal(c.bandwidth, 0); /* 0 given is 0, not "unset" */
	/* its one --listen replaces both of the file's */
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0], "unix:/run/m.sock");
	/* what it did not give stays as the file says */
	assert_string_equal(c.tls_dir, "/etc/file-tls");
	assert_null(c.state_dir);
	assert_int_equal(c.line[AGENTCONF_TLS_DIR], 4);
	assert_int_equal(c.line[AGENTCONF_CONTROL], 0);
	/* the strings moved: cli is empty */
	assert_null(cli.control);
	assert_int_equal(cli.nlisten, 0);
	assert_int_equal(cli.set, 0);
	agentconf_free(&c);

	/* no --listen on the command line: the file's stay */
	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	agentconf_init(&cli);
	assert_int_equal(agentconf_set(&cli, "state_dir", "/var/lib/x", 0, err, sizeof(err)), 0);
	agentconf_override(&c, &cli);
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.state_dir, "/var/lib/x");
	assert_string_equal(c.control, "/run/file.sock");
	agentconf_free(&c);

	/* without a file: the command line alone */
	agentconf_init(&c);
	agentconf_init(&cli);
	assert_int_equal(agentconf_set(&cli, "control", "/run/only.sock", 0, err, sizeof(err)), 0);
	agentconf_override(&c, &cli);
	assert_string_equal(c.control, "/run/only.sock");
	assert_int_equal(c.set, 1u << AGENTCONF_CONTROL);
	agentconf_free(&c);

	/* the option's value is checked as the file's is, without FILE:LINE */
	agentconf_init(&cli);
	assert_int_equal(agentconf_set(&cli, "max_outgoing", "x", 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "expected a count from 0 to 64 (0: no limit), not 'x'");
	agentconf_free(&cli);
}

/* text must fail with ret and exactly want as the message. */
static void refused(const char *text, int ret, const char *want)
{
	struct agentconf c;
	char err[512];

	assert_int_equal(parse(&c, text, err, sizeof(err)), ret);
	if (strcmp(err, want))
		fail_msg("for %s\n got: %s\nwant: %s", text, err, want);
	agentconf_free(&c);
}

/* text must fail with ret and a message starting with want. */
static void refused_prefix(const char *text, int ret, const char *want)
{
	struct agentconf c;
	char err[512];

	assert_int_equal(parse(&c, text, err, sizeof(err)), ret);
	if (strncmp(err, want, strlen(want)))
		fail_msg("for %s\n got: %s\nwant: %s...", text, err, want);
	agentconf_free(&c);
}

static void test_agentconf_bad_input(void **state)
{
	char longpath[200], text[300];

	(void)state;
	refused("# ok\ncolour = blue\n", -ENOENT,
		"t.conf:2: unknown key 'colour' (keys: control, listen, tls_dir, state_dir, "
		"announce, max_incoming, max_outgoing, bandwidth, guest_mem)");
	refused("max-incoming = 2\n", -ENOENT,
		"t.conf:1: unknown key 'max-incoming' (did you mean max_incoming?)");
	refused("Control = /run/x.sock\n", -ENOENT,
		"t.conf:1: unknown key 'Control' (keys: control, listen, tls_dir, state_dir, "
		"announce, max_incoming, max_outgoing, bandwidth, guest_mem)");
	/* duplicate scalar keys; listen may repeat */
	refused("control = /run/a.sock\n\ncontrol = /run/b.sock\n", -EEXIST,
		"t.conf:3: 'control' is given twice (first on line 1)");
	refused("max_incoming = 1\nmax_incoming = 1\n", -EEXIST,
		"t.conf:2: 'max_incoming' is given twice (first on line 1)");
	refused("bandwidth = 1\nmax_outgoing = 1\nbandwidth = 2\n", -EEXIST,
		"t.conf:3: 'bandwidth' is given twice (first on line 1)");
	refused("listen = tcp::1\nlisten = tcp::2\nlisten = tcp::3\nlisten = tcp::4\n"
		"listen = tcp::5\n",
		-E2BIG, "t.conf:5: at most 4 listen addresses");
	/* bad values */
	refused("guest_mem = lots\n", -EINVAL,
		"t.conf:1: guest_mem: expected a size such as 8G or 512M (0: no limit), not 'lots'");
	refused("max_incoming = many\n", -EINVAL,
		"t.conf:1: max_incoming: expected a count from 0 to 64 (0: no limit), not 'many'");
	refused("max_outgoing = 65\n", -EINVAL,
		"t.conf:1: max_outgoing: expected a count from 0 to 64 (0: no limit), not '65'");
	refused("max_outgoing = -1\n", -EINVAL,
		"t.conf:1: max_outgoing: expected a count from 0 to 64 (0: no limit), not '-1'");
	refused("max_incoming = 1.5\n", -EINVAL,
		"t.conf:1: max_incoming: expected a count from 0 to 64 (0: no limit), not '1.5'");
	refused("bandwidth = fast\n", -EINVAL,
		"t.conf:1: bandwidth: expected MiB/s, a number such as 100 or 12.5 (0: no "
		"budget), not 'fast'");
	refused("bandwidth = -5\n", -EINVAL,
		"t.conf:1: bandwidth: expected MiB/s, a number such as 100 or 12.5 (0: no "
		"budget), not '-5'");
	refused("bandwidth = 100 MiB/s\n", -EINVAL,
		"t.conf:1: bandwidth: expected MiB/s, a number such as 100 or 12.5 (0: no "
		"budget), not '100 MiB/s'");
	refused("announce = eth0/1\n", -EINVAL,
		"t.conf:1: announce: 'eth0/1' is not an interface name (1 to 15 characters, no "
		"'/' or blank)");
	refused("announce = a-very-long-interface\n", -EINVAL,
		"t.conf:1: announce: 'a-very-long-interface' is not an interface name (1 to 15 "
		"characters, no '/' or blank)");
	refused_prefix("listen = tcp:127.0.0.1\n", -EINVAL, "t.conf:1: listen: ");
	refused_prefix("listen = http://x:80\n", -EINVAL, "t.conf:1: listen: ");
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(text, sizeof(text), "control = %s\n", longpath);
	refused(text, -EINVAL,
		"t.conf:1: control: a socket path of 1 to 107 bytes expected, not 199 bytes");
	/* lines that are not key = value */
	refused("control /run/x.sock\n", -EINVAL,
		"t.conf:1: expected 'key = value', not 'control /run/x.sock'");
	refused("\n= /run/x.sock\n", -EINVAL, "t.conf:2: expected 'key = value', not '= /run/x.sock'");
	refused("tls_dir =\n", -EINVAL, "t.conf:1: tls_dir: no value");
	refused("tls_dir =   # nothing but a comment\n", -EINVAL, "t.conf:1: tls_dir: no value");
	{
		struct agentconf c;
		char err[512];
		static const char nul[] = "control = /run/x.sock\nlisten\0 = tcp::1\n";

		agentconf_init(&c);
		assert_int_equal(agentconf_parse(&c, "t.conf", nul, sizeof(nul) - 1, err,
						 sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "t.conf:2: a NUL byte (this is not a text file)");
		/* what the lines before it set is there, and is freed */
		assert_string_equal(c.control, "/run/x.sock");
		agentconf_free(&c);
	}
}

static void test_agentconf_load(void **state)
{
	char dir[] = "/tmp/test_agentconf.XXXXXX", path[64], err[512];
	struct agentconf c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/kvmigd.conf", dir);

	/* missing */
	agentconf_init(&c);
	assert_int_equal(agentconf_load(&c, path, err, sizeof(err)), -ENOENT);
	{
		char want[128];

		snprintf(want, sizeof(want), "%s: No such file or directory", path);
		assert_string_equal(err, want);
	}
	/* a directory */
	assert_int_equal(agentconf_load(&c, dir, err, sizeof(err)), -EISDIR);

	/* a file: the messages name it */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("control = /run/x.sock\nmax_outgoing = 2\nmax_outgoing = 3\n", f);
	fclose(f);
	assert_int_equal(agentconf_load(&c, path, err, sizeof(err)), -EEXIST);
	{
		char want[160];

		snprintf(want, sizeof(want), "%s:3: 'max_outgoing' is given twice (first on line 2)",
			 path);
		assert_string_equal(err, want);
	}
	agentconf_free(&c);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("control = /run/x.sock\nmax_outgoing = 2\n", f);
	fclose(f);
	assert_int_equal(agentconf_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.control, "/run/x.sock");
	assert_int_equal(c.max_outgoing, 2);
	agentconf_free(&c);

	/* too large to be a configuration */
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < (AGENTCONF_MAX_BYTES / 16) + 1; i++)
		fputs("# fifteen chars\n", f);
	fclose(f);
	assert_int_equal(agentconf_load(&c, path, err, sizeof(err)), -EFBIG);
	agentconf_free(&c);

	unlink(path);
	rmdir(dir);
}

static void test_agentconf_mib_s(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(parse_mib_s("100", &v), 0);
	assert_int_equal(v, 100 * MIB);
	assert_int_equal(parse_mib_s(".5", &v), 0);
	assert_int_equal(v, MIB / 2);
	assert_int_equal(parse_mib_s("0", &v), 0);
	assert_int_equal(v, 0);
	/* a tiny rate is 1 byte/s, never "unlimited" */
	assert_int_equal(parse_mib_s("0.0000001", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_mib_s("", &v), -EINVAL);
	assert_int_equal(parse_mib_s("+1", &v), -EINVAL);
	assert_int_equal(parse_mib_s("1e10", &v), -EINVAL);
	assert_int_equal(parse_mib_s("nan", &v), -EINVAL);
	assert_int_equal(parse_mib_s("1k", &v), -EINVAL);
	assert_int_equal(agentconf_key_name(AGENTCONF_BANDWIDTH)[0], 'b');
	assert_null(agentconf_key_name(AGENTCONF_NKEYS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agentconf_every_key),
		cmocka_unit_test(test_agentconf_comments_and_blanks),
		cmocka_unit_test(test_agentconf_overrides),
		cmocka_unit_test(test_agentconf_bad_input),
		cmocka_unit_test(test_agentconf_load),
		cmocka_unit_test(test_agentconf_mib_s),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
