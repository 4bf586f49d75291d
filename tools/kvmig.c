/* SPDX-License-Identifier: MIT */
/*
 * kvmig - the command-line client of the agent (kvmigd).
 *
 * Each command turns into one request on the agent's control socket
 * (tools/API.md) and prints the reply: human-readable by default, or with
 * --json the reply object without its "ok" field, on one line of stdout.
 * Errors always go to stderr as "kvmig: <message>"; exit status 1 for an
 * error from the agent or the connection, 2 for bad usage and commands
 * that are not implemented yet.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/parse.h"
#include "tools/control.h"
#include "vm/vm.h"

#define DEFAULT_AGENT	  "/run/kvmig/kvmigd.sock"
#define DEFAULT_TIMEOUT_S 600

enum { EXIT_ERR = 1, EXIT_USAGE = 2 };

struct cli {
	const char *agent;
	bool json;
	int timeout_ms;
	int argc; /* the command words, global options removed */
	char **argv;
};

static void NORETURN PRINTF_FMT(2, 3) die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("kvmig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void NORETURN usage_error(const char *hint, const char *fmt, ...) PRINTF_FMT(2, 3);

static void usage_error(const char *hint, const char *fmt, ...)
{
	va_list ap;

	fputs("kvmig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s'.\n", hint);
	exit(EXIT_USAGE);
}

static void help_main(FILE *f)
{
	fprintf(f,
		"Usage: kvmig [--agent PATH] [--json] [--timeout SEC] COMMAND ...\n"
		"\n"
		"Control a kvmig agent (kvmigd) through its unix socket.\n"
		"\n"
		"Commands:\n"
		"  vm start NAME [--mem SIZE] [--vcpus N] [--guest GUEST[,KEY=VALUE...]] [--mac "
		"MAC]\n"
		"  vm stop NAME              destroy a VM\n"
		"  vm list                   list the agent's VMs\n"
		"  vm info NAME              state, sizes, guest counters, pause latency\n"
		"  vm console NAME           the guest's console output (newest 64 KiB)\n"
		"  vm save NAME FILE         snapshot a running VM into FILE (it keeps running)\n"
		"  vm restore FILE [--name NAME]   start a VM from a snapshot\n"
		"  agent ping                is the agent alive\n"
		"  agent version             agent version, API version, whether KVM works\n"
		"  agent send JSON           send one raw request line (for debugging)\n"
		"  migrate, job, drain, bench, demo   not implemented yet (exit status 2)\n"
		"\n"
		"Options (anywhere on the command line):\n"
		"  --agent PATH    the agent's control socket; default $KVMIG_AGENT,\n"
		"                  else " DEFAULT_AGENT "\n"
		"  --json          print the agent's reply as one JSON object on stdout\n"
		"  --timeout SEC   wait at most SEC seconds for a reply (default %d; 0: forever)\n"
		"  -h, --help      this help; 'kvmig vm --help' for the vm commands\n"
		"  -V, --version   print the version\n"
		"\n"
		"Errors go to stderr as 'kvmig: <message>', also with --json.\n"
		"Exit status: 0 success, 1 error, 2 bad usage or not implemented.\n",
		DEFAULT_TIMEOUT_S);
}

static void help_vm(FILE *f)
{
	fprintf(f,
		"Usage: kvmig vm COMMAND ...\n"
		"\n"
		"  vm start NAME [--mem SIZE] [--vcpus N] [--guest GUEST[,KEY=VALUE...]] [--mac "
		"MAC]\n"
		"      Create and run a VM. SIZE takes K, M, G suffixes (binary units) and\n"
		"      must be a multiple of 2M from 16M to 64G; default 64M. N: 1 to %d,\n"
		"      default 1. GUEST: idle (default), seqdirty, randdirty or memcheck;\n"
		"      what follows the first comma is passed to the guest as its\n"
		"      arguments, e.g. --guest memcheck,workset=4M. MAC: six hex pairs\n"
		"      separated by ':' (default: 52:54:00 and three random bytes).\n"
		"      NAME: up to %d characters from [A-Za-z0-9._-].\n"
		"  vm stop NAME\n"
		"      Destroy the VM and print its last guest counters.\n"
		"  vm list\n"
		"      One line per VM: name, state, memory, vCPUs, guest, MAC.\n"
		"  vm info NAME\n"
		"      Everything the agent knows about the VM, as 'key: value' lines.\n"
		"      state is one of running, paused, migrating, postcopy, stopped.\n"
		"  vm console NAME\n"
		"      Print the newest console output of the guest (COM1).\n"
		"  vm save NAME FILE\n"
		"      Pause the VM briefly, write its state and RAM to FILE, resume it.\n"
		"  vm restore FILE [--name NAME]\n"
		"      Build a VM from FILE and run it, under NAME or the saved name.\n"
		"\n"
		"FILE is opened by the agent; kvmig makes a relative FILE absolute against\n"
		"its own working directory first. Every command takes --json.\n",
		VM_MAX_VCPUS, VM_NAME_MAX - 1);
}

/* ---- talking to the agent ---- */

/*
 * Send req (consumed) and return the successful reply; an "ok":false reply
 * or a connection problem ends the program with status 1.
 */
static json_t *call_line(const struct cli *cli, const char *line, size_t len)
{
	char err[1024];
	json_t *resp;
	int fd, ret;

	fd = ctl_connect(cli->agent, err, sizeof(err));
	if (fd < 0)
		die(EXIT_ERR, "%s", err);
	ret = ctl_call_line(fd, line, len, &resp, cli->timeout_ms, err, sizeof(err));
	close(fd);
	if (ret < 0)
		die(EXIT_ERR, "%s", err);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *msg = json_string_value(json_object_get(resp, "error"));

		die(EXIT_ERR, "%s", msg ? msg : "the agent reported an error without a message");
	}
	json_object_del(resp, "ok");
	json_object_del(resp, "id");
	return resp;
}

static json_t *call(const struct cli *cli, json_t *req)
{
	size_t len;
	char *line = req ? ctl_encode(req, &len) : NULL;
	json_t *resp;

	if (!line)
		die(EXIT_ERR, "out of memory");
	json_decref(req);
	resp = call_line(cli, line, len);
	free(line);
	return resp;
}

static json_t *request(const char *method)
{
	json_t *r = json_object();

	if (r)
		json_object_set_new(r, "method", json_string(method));
	return r;
}

/* Add a string field; user text that is not UTF-8 becomes '?'. */
static void req_str(json_t *req, const char *key, const char *val)
{
	json_object_set_new(req, key, ctl_string_lossy(val, strlen(val)));
}

static void print_json(const json_t *o)
{
	size_t len;
	char *s = ctl_encode(o, &len);

	if (!s)
		die(EXIT_ERR, "out of memory");
	fwrite(s, 1, len, stdout);
	free(s);
}

static const char *json_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long json_num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* "64M" for exact multiples, else "1.5M" style with one decimal. */
static const char *size_str(long long v, char *buf, size_t cap)
{
	static const char units[] = "KMGT";
	double x = (double)v;
	int u = -1;

	if (v < 1024 || v % 1024 == 0)
		return format_size((uint64_t)v, buf, cap);
	while (x >= 1024.0 && u < 3) {
		x /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", x, units[u]);
	return buf;
}

/* Print an object as aligned "key: value" lines, nested keys joined by '.'. */
struct kv {
	char key[96];
	char val[512];
};

static void flatten(json_t *o, const char *prefix, struct kv *kv, size_t *n, size_t max)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		char full[96];

		if (*n >= max)
			return;
		snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v)) {
			flatten(v, full, kv, n, max);
			continue;
		}
		snprintf(kv[*n].key, sizeof(kv[*n].key), "%s", full);
		switch (json_typeof(v)) {
		case JSON_STRING:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "%s", json_string_value(v));
			break;
		case JSON_INTEGER: {
			long long x = json_integer_value(v);
			size_t kl = strlen(key);
			char sz[32];

			if (kl > 6 && !strcmp(key + kl - 6, "_bytes") && x >= 1024)
				snprintf(kv[*n].val, sizeof(kv[*n].val), "%lld (%s)", x,
					 size_str(x, sz, sizeof(sz)));
			else
				snprintf(kv[*n].val, sizeof(kv[*n].val), "%lld", x);
			break;
		}
		case JSON_REAL:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "%.3f", json_real_value(v));
			break;
		case JSON_TRUE:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "yes");
			break;
		case JSON_FALSE:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "no");
			break;
		case JSON_NULL:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "-");
			break;
		case JSON_ARRAY:
		case JSON_OBJECT: {
			char *s = json_dumps(v, JSON_COMPACT);

			snprintf(kv[*n].val, sizeof(kv[*n].val), "%s", s ? s : "?");
			free(s);
			break;
		}
		}
		(*n)++;
	}
}

static void print_kv(json_t *o)
{
	struct kv kv[128];
	size_t n = 0, w = 0;

	flatten(o, "", kv, &n, ARRAY_SIZE(kv));
	for (size_t i = 0; i < n; i++)
		w = MAX(w, strlen(kv[i].key));
	for (size_t i = 0; i < n; i++)
		printf("%s:%*s %s\n", kv[i].key, (int)(w - strlen(kv[i].key)), "", kv[i].val);
}

/* ---- argument helpers ---- */

/* Make a relative path absolute against our working directory. */
static void abs_path(const char *path, char *out, size_t cap)
{
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		if ((size_t)snprintf(out, cap, "%s", path) >= cap)
			die(EXIT_USAGE, "path too long: %s", path);
		return;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		die(EXIT_ERR, "cannot get the working directory: %s", strerror(errno));
	if ((size_t)snprintf(out, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "", path) >= cap)
		die(EXIT_USAGE, "path too long: %s", path);
}

/*
 * Option parser for command words: "--opt VALUE" or "--opt=VALUE".
 * Return: true (and *val) when argv[*i] is opt; advances *i past the value.
 */
static bool take_opt(int argc, char **argv, int *i, const char *opt, const char **val,
		     const char *hint)
{
	size_t ol = strlen(opt);

	if (strncmp(argv[*i], opt, ol))
		return false;
	if (argv[*i][ol] == '=') {
		*val = argv[*i] + ol + 1;
		return true;
	}
	if (argv[*i][ol])
		return false;
	if (*i + 1 >= argc)
		usage_error(hint, "option %s needs a value", opt);
	*val = argv[++*i];
	return true;
}

static bool is_help(const char *s)
{
	return !strcmp(s, "--help") || !strcmp(s, "-h") || !strcmp(s, "help");
}

/* Check that a command got exactly n positional words after argv[0..1]. */
static void want_args(const struct cli *cli, int n, const char *synopsis)
{
	if (cli->argc - 2 != n)
		usage_error("kvmig vm --help", "usage: kvmig %s", synopsis);
	for (int i = 2; i < cli->argc; i++)
		if (cli->argv[i][0] == '-' && cli->argv[i][1])
			usage_error("kvmig vm --help", "unknown option '%s'; usage: kvmig %s",
				    cli->argv[i], synopsis);
}

/* ---- vm commands ---- */

static int cmd_vm_start(const struct cli *cli)
{
	static const char syn[] =
		"vm start NAME [--mem SIZE] [--vcpus N] [--guest GUEST[,KEY=VALUE...]] [--mac MAC]";
	const char *name = NULL, *mem = NULL, *vcpus = NULL, *guest = NULL, *mac = NULL, *v;
	json_t *req, *r;

	for (int i = 2; i < cli->argc; i++) {
		const char *hint = "kvmig vm --help";

		if (take_opt(cli->argc, cli->argv, &i, "--mem", &v, hint))
			mem = v;
		else if (take_opt(cli->argc, cli->argv, &i, "--vcpus", &v, hint))
			vcpus = v;
		else if (take_opt(cli->argc, cli->argv, &i, "--guest", &v, hint))
			guest = v;
		else if (take_opt(cli->argc, cli->argv, &i, "--mac", &v, hint))
			mac = v;
		else if (cli->argv[i][0] == '-')
			usage_error(hint, "unknown option '%s' for vm start", cli->argv[i]);
		else if (!name)
			name = cli->argv[i];
		else
			usage_error(hint, "unexpected argument '%s'; usage: kvmig %s", cli->argv[i],
				    syn);
	}
	if (!name)
		usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	req = request("vm.start");
	req_str(req, "name", name);
	if (mem) {
		uint64_t bytes;

		if (parse_size(mem, &bytes) < 0)
			usage_error("kvmig vm --help",
				    "invalid --mem '%s': expected a size such as 64M or 4G", mem);
		json_object_set_new(req, "mem_bytes", json_integer((json_int_t)bytes));
	}
	if (vcpus) {
		uint64_t n;

		if (parse_u64(vcpus, &n) < 0 || n > INT_MAX)
			usage_error("kvmig vm --help",
				    "invalid --vcpus '%s': expected a number from 1 to %d", vcpus,
				    VM_MAX_VCPUS);
		json_object_set_new(req, "vcpus", json_integer((json_int_t)n));
	}
	if (guest) {
		const char *comma = strchr(guest, ',');
		size_t gl = comma ? (size_t)(comma - guest) : strlen(guest);

		if (gl == 0)
			usage_error(
				"kvmig vm --help",
				"invalid --guest '%s': expected GUEST[,KEY=VALUE...] with GUEST "
				"one of idle, seqdirty, randdirty, memcheck",
				guest);
		json_object_set_new(req, "guest", ctl_string_lossy(guest, gl));
		req_str(req, "guest_args", comma ? comma + 1 : "");
	}
	if (mac) {
		char err[512], macs[CTL_MAC_STRLEN];
		uint8_t m[6];

		if (ctl_parse_mac(mac, m, err, sizeof(err)) < 0)
			usage_error("kvmig vm --help", "invalid --mac: %s", err);
		req_str(req, "mac", ctl_format_mac(m, macs));
	}
	r = call(cli, req);
	if (cli->json) {
		print_json(r);
	} else {
		long long nv = json_num(r, "vcpus");
		char sz[32];

		printf("started VM %s: %s, %s, %lld vCPU%s, guest %s%s%s, mac %s\n",
		       json_str(r, "name"), json_str(r, "state"),
		       size_str(json_num(r, "mem_bytes"), sz, sizeof(sz)), nv, nv == 1 ? "" : "s",
		       json_str(r, "guest"), json_str(r, "guest_args")[0] ? "," : "",
		       json_str(r, "guest_args"), json_str(r, "mac"));
	}
	json_decref(r);
	return 0;
}

static int cmd_vm_stop(const struct cli *cli)
{
	json_t *req, *r, *gs;

	want_args(cli, 1, "vm stop NAME");
	req = request("vm.stop");
	req_str(req, "name", cli->argv[2]);
	r = call(cli, req);
	gs = json_object_get(r, "guest_stats");
	if (cli->json)
		print_json(r);
	else
		printf("stopped VM %s (progress %lld, errors %lld, ticks %lld)\n",
		       json_str(r, "name"), json_num(gs, "progress"), json_num(gs, "errors"),
		       json_num(gs, "ticks"));
	json_decref(r);
	return 0;
}

static int cmd_vm_list(const struct cli *cli)
{
	json_t *r, *vms, *v;
	size_t i;

	want_args(cli, 0, "vm list");
	r = call(cli, request("vm.list"));
	vms = json_object_get(r, "vms");
	if (cli->json) {
		print_json(r);
	} else if (json_array_size(vms) == 0) {
		printf("no VMs\n");
	} else {
		printf("%-20s %-10s %6s %5s %-10s %-17s %s\n", "NAME", "STATE", "MEM", "VCPUS",
		       "GUEST", "MAC", "GUEST_ARGS");
		json_array_foreach(vms, i, v)
		{
			char sz[32];

			printf("%-20s %-10s %6s %5lld %-10s %-17s %s\n", json_str(v, "name"),
			       json_str(v, "state"),
			       size_str(json_num(v, "mem_bytes"), sz, sizeof(sz)),
			       json_num(v, "vcpus"), json_str(v, "guest"), json_str(v, "mac"),
			       json_str(v, "guest_args"));
		}
	}
	json_decref(r);
	return 0;
}

static int cmd_vm_info(const struct cli *cli)
{
	json_t *req, *r;

	want_args(cli, 1, "vm info NAME");
	req = request("vm.info");
	req_str(req, "name", cli->argv[2]);
	r = call(cli, req);
	if (cli->json)
		print_json(r);
	else
		print_kv(r);
	json_decref(r);
	return 0;
}

static int cmd_vm_console(const struct cli *cli)
{
	json_t *req, *r;

	want_args(cli, 1, "vm console NAME");
	req = request("vm.console");
	req_str(req, "name", cli->argv[2]);
	r = call(cli, req);
	if (cli->json) {
		print_json(r);
	} else {
		const json_t *c = json_object_get(r, "console");

		fwrite(json_string_value(c), 1, json_string_length(c), stdout);
	}
	json_decref(r);
	return 0;
}

static int cmd_vm_save(const struct cli *cli)
{
	char path[PATH_MAX];
	json_t *req, *r;

	want_args(cli, 2, "vm save NAME FILE");
	abs_path(cli->argv[3], path, sizeof(path));
	req = request("vm.save");
	req_str(req, "name", cli->argv[2]);
	req_str(req, "path", path);
	r = call(cli, req);
	if (cli->json) {
		print_json(r);
	} else {
		char sz[32];

		printf("saved VM %s to %s: %lld bytes (%s) in %.3f ms, guest paused %.3f ms "
		       "(%lld pages with data, %lld zero pages)\n",
		       json_str(r, "name"), json_str(r, "path"), json_num(r, "file_bytes"),
		       size_str(json_num(r, "file_bytes"), sz, sizeof(sz)),
		       json_real_value(json_object_get(r, "elapsed_ms")),
		       json_real_value(json_object_get(r, "pause_ms")), json_num(r, "ram_pages"),
		       json_num(r, "zero_pages"));
	}
	json_decref(r);
	return 0;
}

static int cmd_vm_restore(const struct cli *cli)
{
	static const char syn[] = "vm restore FILE [--name NAME]";
	const char *file = NULL, *name = NULL, *v;
	char path[PATH_MAX];
	json_t *req, *r;

	for (int i = 2; i < cli->argc; i++) {
		if (take_opt(cli->argc, cli->argv, &i, "--name", &v, "kvmig vm --help"))
			name = v;
		else if (cli->argv[i][0] == '-' && cli->argv[i][1])
			usage_error("kvmig vm --help", "unknown option '%s' for vm restore",
				    cli->argv[i]);
		else if (!file)
			file = cli->argv[i];
		else
			usage_error("kvmig vm --help", "unexpected argument '%s'; usage: kvmig %s",
				    cli->argv[i], syn);
	}
	if (!file)
		usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	abs_path(file, path, sizeof(path));
	req = request("vm.restore");
	req_str(req, "path", path);
	if (name)
		req_str(req, "name", name);
	r = call(cli, req);
	if (cli->json)
		print_json(r);
	else
		printf("restored VM %s from %s: %s, progress %lld, in %.3f ms\n",
		       json_str(r, "name"), json_str(r, "path"), json_str(r, "state"),
		       json_num(json_object_get(r, "guest_stats"), "progress"),
		       json_real_value(json_object_get(r, "elapsed_ms")));
	json_decref(r);
	return 0;
}

static int cmd_vm(const struct cli *cli)
{
	static const struct {
		const char *name;
		int (*fn)(const struct cli *cli);
	} cmds[] = {
		{"start", cmd_vm_start},     {"stop", cmd_vm_stop},	  {"list", cmd_vm_list},
		{"info", cmd_vm_info},	     {"console", cmd_vm_console}, {"save", cmd_vm_save},
		{"restore", cmd_vm_restore},
	};

	if (cli->argc < 2)
		usage_error("kvmig vm --help", "missing vm command");
	/* "kvmig vm help", and --help or -h after any vm command word. */
	for (int i = 1; i < cli->argc; i++) {
		if ((i == 1 && is_help(cli->argv[i])) || !strcmp(cli->argv[i], "--help") ||
		    !strcmp(cli->argv[i], "-h")) {
			help_vm(stdout);
			return 0;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cli->argv[1], cmds[i].name))
			return cmds[i].fn(cli);
	usage_error("kvmig vm --help", "unknown vm command '%s'", cli->argv[1]);
}

/* ---- agent commands ---- */

static int cmd_agent(const struct cli *cli)
{
	const char *sub = cli->argc > 1 ? cli->argv[1] : "";
	json_t *r;

	if (!strcmp(sub, "ping") && cli->argc == 2) {
		r = call(cli, request("agent.ping"));
		if (cli->json)
			print_json(r);
		else
			printf("agent at %s is alive (pid %lld, %lld VMs)\n", cli->agent,
			       json_num(r, "pid"), json_num(r, "vms"));
	} else if (!strcmp(sub, "version") && cli->argc == 2) {
		r = call(cli, request("agent.version"));
		if (cli->json)
			print_json(r);
		else
			print_kv(r);
	} else if (!strcmp(sub, "send") && cli->argc == 3) {
		/* The caller's text as it is, malformed or not: a debugging aid. */
		r = call_line(cli, cli->argv[2], strlen(cli->argv[2]));
		print_json(r);
	} else {
		usage_error("kvmig --help",
			    "usage: kvmig agent ping | agent version | agent send JSON");
	}
	json_decref(r);
	return 0;
}

/*
 * Take the global options out of argv wherever they are; what is left are
 * the command words. "--" ends option processing.
 */
static void parse_globals(struct cli *cli, int argc, char **argv)
{
	const char *env = getenv("KVMIG_AGENT");
	bool dashdash = false;

	cli->agent = env && env[0] ? env : DEFAULT_AGENT;
	cli->timeout_ms = DEFAULT_TIMEOUT_S * 1000;
	cli->argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!cli->argv)
		die(EXIT_ERR, "out of memory");
	cli->argc = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;

		if (dashdash) {
			cli->argv[cli->argc++] = argv[i];
		} else if (!strcmp(argv[i], "--")) {
			dashdash = true;
		} else if (!strcmp(argv[i], "--json")) {
			cli->json = true;
		} else if (take_opt(argc, argv, &i, "--agent", &v, "kvmig --help")) {
			if (!v[0])
				usage_error("kvmig --help", "--agent needs a socket path");
			cli->agent = v;
		} else if (take_opt(argc, argv, &i, "--timeout", &v, "kvmig --help")) {
			uint64_t s;

			if (parse_u64(v, &s) < 0 || s > INT_MAX / 1000)
				usage_error("kvmig --help",
					    "invalid --timeout '%s': expected seconds", v);
			cli->timeout_ms = (int)s * 1000;
		} else {
			cli->argv[cli->argc++] = argv[i];
		}
	}
}

int main(int argc, char **argv)
{
	static const char *const later[] = {"migrate", "job", "drain", "bench", "demo"};
	struct cli cli = {0};
	const char *cmd;

	signal(SIGPIPE, SIG_IGN);
	parse_globals(&cli, argc, argv);
	if (cli.argc == 0) {
		help_main(stderr);
		return EXIT_USAGE;
	}
	cmd = cli.argv[0];
	if (is_help(cmd)) {
		help_main(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
		if (cli.json)
			printf("{\"version\":\"%s\",\"api\":%d}\n", KVMIG_VERSION, CTL_API_VERSION);
		else
			printf("kvmig %s (control API %d)\n", KVMIG_VERSION, CTL_API_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "vm"))
		return cmd_vm(&cli);
	if (!strcmp(cmd, "agent"))
		return cmd_agent(&cli);
	for (size_t i = 0; i < ARRAY_SIZE(later); i++) {
		if (!strcmp(cmd, later[i])) {
			fprintf(stderr, "kvmig: '%s' is not implemented yet\n", cmd);
			if (!strcmp(cmd, "demo"))
				fprintf(stderr, "kvmig: run 'make demo' in the source tree\n");
			return EXIT_USAGE;
		}
	}
	usage_error("kvmig --help", "unknown command '%s'", cmd);
}
