/* SPDX-License-Identifier: MIT */
/*
 * kvmig - the command-line client of the agent (kvmigd).
 *
 * Each command turns into one request on the agent's control socket
 * (tools/API.md) and prints the reply: human-readable by default, or with
 * --json the reply object without its "ok" field, on one line of stdout.
 * Errors always go to stderr as "kvmig: <message>"; exit status 1 for an
 * error from the agent or the connection, 2 for bad usage and commands
 * that are not implemented yet. `kvmig migrate` is the one command that
 * talks more than once: it starts a job, then polls job.info until the
 * job ends, drawing a progress line on a terminal.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "dirtylog/dirtylog.h"
#include "migrate/migrate.h"
#include "protocol/channel.h"
#include "protocol/uri.h"
#include "tools/control.h"
#include "tools/jobs.h"
#include "vm/vm.h"

#define DEFAULT_AGENT	  "/run/kvmig/kvmigd.sock"
#define DEFAULT_TIMEOUT_S 600
#define DEFAULT_XBZRLE	  (64ull << 20)
#define POLL_MS		  150 /* kvmig migrate polls job.info this often */

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
		"           [--dirty-ring ENTRIES]\n"
		"  vm stop NAME              destroy a VM\n"
		"  vm pause NAME             stop its vCPUs; it stays here, paused\n"
		"  vm resume NAME            run a paused VM again\n"
		"  vm list                   list the agent's VMs\n"
		"  vm info NAME              state, sizes, guest counters, pause latency\n"
		"  vm console NAME           the guest's console output (newest 64 KiB)\n"
		"  vm save NAME FILE [--compress ALG]  snapshot a running VM into FILE (it keeps running)\n"
		"  vm restore FILE [--name NAME]   start a VM from a snapshot\n"
		"  migrate NAME --to URI [OPTIONS]   live-migrate a VM to another agent\n"
		"                            (kvmig migrate --help for the options)\n"
		"  job info NAME             statistics of NAME's migration job\n"
		"  job cancel NAME           cancel it; the VM runs on at the source\n"
		"  agent ping                is the agent alive\n"
		"  agent version             agent version, API version, whether KVM works\n"
		"  agent send JSON           send one raw request line (for debugging)\n"
		"  drain, bench, demo        not implemented yet (exit status 2)\n"
		"\n"
		"Options (anywhere on the command line):\n"
		"  --agent PATH    the agent's control socket; default $KVMIG_AGENT,\n"
		"                  else " DEFAULT_AGENT "\n"
		"  --json          print the agent's reply as one JSON object on stdout\n"
		"  --timeout SEC   wait at most SEC seconds for a reply (default %d; 0: forever);\n"
		"                  after 'migrate' it is the migration's own --timeout\n"
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
		"           [--dirty-ring ENTRIES]\n"
		"      Create and run a VM. SIZE takes K, M, G suffixes (binary units) and\n"
		"      must be a multiple of 2M from 16M to 64G; default 64M. N: 1 to %d,\n"
		"      default 1. GUEST: idle (default), seqdirty, randdirty or memcheck;\n"
		"      what follows the first comma is passed to the guest as its\n"
		"      arguments, e.g. --guest memcheck,workset=4M. MAC: six hex pairs\n"
		"      separated by ':' (default: 52:54:00 and three random bytes).\n"
		"      NAME: up to %d characters from [A-Za-z0-9._-]. --dirty-ring gives\n"
		"      each vCPU a KVM dirty ring of ENTRIES (a power of two, 256 to 65536),\n"
		"      needed to migrate it with --dirty-track ring.\n"
		"  vm stop NAME\n"
		"      Destroy the VM and print its last guest counters.\n"
		"  vm pause NAME\n"
		"      Stop the VM's vCPUs: the guest makes no progress until vm resume.\n"
		"      An error if it is paused already or a migration owns it.\n"
		"  vm resume NAME\n"
		"      Run a paused VM again; an error if it runs already. A migration\n"
		"      whose link failed after the destination was told to start the VM\n"
		"      leaves the copy here paused: resume it only once you know that\n"
		"      the destination does not run it.\n"
		"  vm list\n"
		"      One line per VM: name, state, memory, vCPUs, guest, MAC.\n"
		"  vm info NAME\n"
		"      Everything the agent knows about the VM, as 'key: value' lines.\n"
		"      state is one of running, paused, migrating, postcopy, stopped, and\n"
		"      incoming while a migration stream is arriving.\n"
		"  vm console NAME\n"
		"      Print the newest console output of the guest (COM1).\n"
		"  vm save NAME FILE [--compress none|zstd[:LEVEL]|lz4]\n"
		"      Pause the VM briefly, write its state and RAM to FILE, resume it\n"
		"      (a VM paused with vm pause stays paused, and restores paused).\n"
		"  vm restore FILE [--name NAME]\n"
		"      Build a VM from FILE and run it, under NAME or the saved name; a VM\n"
		"      saved while paused is restored paused (vm resume runs it).\n"
		"\n"
		"FILE is opened by the agent; kvmig makes a relative FILE absolute against\n"
		"its own working directory first. Every command takes --json.\n",
		VM_MAX_VCPUS, VM_NAME_MAX - 1);
}

static void help_migrate(FILE *f)
{
	fprintf(f,
		"Usage: kvmig migrate NAME --to URI [OPTIONS]\n"
		"\n"
		"Live-migrate VM NAME from this agent to the agent listening on URI\n"
		"(kvmigd --listen): the guest keeps running while its memory is copied in\n"
		"rounds, then stops for a short stop-and-copy and resumes at the\n"
		"destination under the same name. If anything fails before the\n"
		"destination is told to start the VM, the guest runs on here unharmed.\n"
		"If the link fails after that, before the destination confirmed that\n"
		"the VM runs, the copy here stays paused (the destination may run it):\n"
		"check there, and only if it does not run there, kvmig vm resume NAME.\n"
		"A paused VM migrates too and arrives paused (kvmig vm resume NAME there\n"
		"runs it); a failure leaves it paused here.\n"
		"\n"
		"URI: tcp://HOST:PORT or unix:///PATH (tls:// and ssh:// are not implemented\n"
		"yet).\n"
		"\n"
		"Options:\n"
		"  --max-downtime MS      longest acceptable pause at switchover (default 300)\n"
		"  --bandwidth MiB/s      limit the stream (a number, fractions allowed;\n"
		"                         default and 0: unlimited)\n"
		"  --xbzrle[=CACHE]       send re-dirtied pages as XBZRLE deltas against a\n"
		"                         cache of CACHE bytes (K/M/G; default 64M)\n"
		"  --compress ALG         none (default), zstd[:LEVEL] (1..22) or lz4\n"
		"  --parallel N           connections carrying pages side by side, 1 to %d\n"
		"  --auto-converge        throttle the vCPUs when the guest dirties memory\n"
		"                         faster than the link moves it\n"
		"  --max-iterations N     give up after N precopy rounds (default 30; 0: never)\n"
		"  --timeout SEC          give up after SEC seconds (default: never)\n"
		"  --verify               compare a digest of all guest RAM on both sides\n"
		"  --dirty-track bitmap|ring   KVM dirty log (default) or dirty ring (the VM\n"
		"                         needs vm start --dirty-ring ENTRIES)\n"
		"  --detach               start the job and return; follow it with\n"
		"                         kvmig job info NAME\n"
		"  --json                 print the final statistics as one JSON object\n"
		"  --postcopy             NOT IMPLEMENTED YET (exit status 2)\n"
		"  --announce IFACE       NOT IMPLEMENTED YET (exit status 2)\n"
		"\n"
		"Without --detach, kvmig waits for the end of the job. On a terminal (or\n"
		"with KVMIG_PROGRESS=1; KVMIG_PROGRESS=0 turns it off) it draws a\n"
		"progress line on stderr: the share of the stream sent (bytes\n"
		"sent against what is still dirty), the rate, the dirty memory left, the\n"
		"round, the expected downtime and the vCPU throttle. Ctrl-C cancels the\n"
		"migration (the guest stays here); a second Ctrl-C stops waiting.\n"
		"At the end it prints the job statistics (the names of virsh domjobinfo\n"
		"and QEMU query-migrate; with --json one JSON object), also when the\n"
		"migration failed.\n"
		"\n"
		"Exit status: 0 the VM runs at the destination (and is gone here); 1 the\n"
		"migration failed or was cancelled ('kvmig: migration of NAME failed:\n"
		"<reason>' on stderr) or the agent refused it; 2 bad usage.\n",
		MIGRATE_MAX_PARALLEL);
}

static void help_job(FILE *f)
{
	fprintf(f, "Usage: kvmig job info NAME | job cancel NAME\n"
		   "\n"
		   "  job info NAME     statistics of the migration job of VM NAME: live while\n"
		   "                    it runs, final after it ended (kept until a new job\n"
		   "                    starts or another VM takes the name)\n"
		   "  job cancel NAME   cancel the running job; the VM runs on at the source\n"
		   "\n"
		   "Every command takes --json.\n");
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

/*
 * Like call(), but an error from the agent or the connection comes back
 * as NULL with the message in err instead of ending the program.
 */
static bool try_call(const struct cli *cli, json_t *req, char *err, size_t errlen)
{
	size_t len;
	char *line = req ? ctl_encode(req, &len) : NULL;
	json_t *resp = NULL;
	bool ok = false;
	int fd, ret;

	json_decref(req);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	fd = ctl_connect(cli->agent, err, errlen);
	if (fd >= 0) {
		ret = ctl_call_line(fd, line, len, &resp, cli->timeout_ms, err, errlen);
		close(fd);
		if (ret == 0 && json_is_true(json_object_get(resp, "ok"))) {
			ok = true;
		} else if (ret == 0) {
			const char *msg = json_string_value(json_object_get(resp, "error"));

			snprintf(err, errlen, "%s", msg ? msg : "the agent reported an error");
		}
	}
	json_decref(resp);
	free(line);
	return ok;
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
		"vm start NAME [--mem SIZE] [--vcpus N] "
		"[--guest GUEST[,KEY=VALUE...]] [--mac MAC] [--dirty-ring ENTRIES]";
	const char *name = NULL, *mem = NULL, *vcpus = NULL, *guest = NULL, *mac = NULL, *v;
	const char *ring = NULL;
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
		else if (take_opt(cli->argc, cli->argv, &i, "--dirty-ring", &v, hint))
			ring = v;
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
	if (ring) {
		uint64_t n;

		if (parse_u64(ring, &n) < 0 || n > UINT32_MAX)
			usage_error(
				"kvmig vm --help",
				"invalid --dirty-ring '%s': expected a number of entries, a power "
				"of two such as 4096",
				ring);
		json_object_set_new(req, "dirty_ring", json_integer((json_int_t)n));
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

/*
 * vm stop|pause|resume NAME: one request each, same shape; the human
 * output says what was done and where the guest's counters stand.
 */
static int vm_simple(const struct cli *cli, const char *usage, const char *method,
		     const char *done)
{
	json_t *req, *r, *gs;

	want_args(cli, 1, usage);
	req = request(method);
	req_str(req, "name", cli->argv[2]);
	r = call(cli, req);
	gs = json_object_get(r, "guest_stats");
	if (cli->json)
		print_json(r);
	else
		printf("%s VM %s (progress %lld, errors %lld, ticks %lld)\n", done,
		       json_str(r, "name"), json_num(gs, "progress"), json_num(gs, "errors"),
		       json_num(gs, "ticks"));
	json_decref(r);
	return 0;
}

static int cmd_vm_stop(const struct cli *cli)
{
	return vm_simple(cli, "vm stop NAME", "vm.stop", "stopped");
}

static int cmd_vm_pause(const struct cli *cli)
{
	return vm_simple(cli, "vm pause NAME", "vm.pause", "paused");
}

static int cmd_vm_resume(const struct cli *cli)
{
	return vm_simple(cli, "vm resume NAME", "vm.resume", "resumed");
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
			char sz[32], nv[16];

			/* an incoming VM is known only by name and size until it runs */
			if (json_object_get(v, "vcpus"))
				snprintf(nv, sizeof(nv), "%lld", json_num(v, "vcpus"));
			else
				snprintf(nv, sizeof(nv), "-");
			printf("%-20s %-10s %6s %5s %-10s %-17s %s\n", json_str(v, "name"),
			       json_str(v, "state"),
			       size_str(json_num(v, "mem_bytes"), sz, sizeof(sz)), nv,
			       json_object_get(v, "guest") ? json_str(v, "guest") : "-",
			       json_object_get(v, "mac") ? json_str(v, "mac") : "-",
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
	static const char syn[] = "vm save NAME FILE [--compress none|zstd[:LEVEL]|lz4]";
	const char *args[2] = { NULL, NULL }, *compress = NULL, *v;
	char path[PATH_MAX], err[256];
	int nargs = 0;
	json_t *req, *r;

	for (int i = 2; i < cli->argc; i++) {
		if (take_opt(cli->argc, cli->argv, &i, "--compress", &v, "kvmig vm --help")) {
			if (migrate_check_compress(v, err, sizeof(err)) < 0)
				usage_error("kvmig vm --help", "invalid --compress: %s", err);
			compress = v;
		} else if (cli->argv[i][0] == '-' && cli->argv[i][1]) {
			usage_error("kvmig vm --help", "unknown option '%s' for vm save",
				    cli->argv[i]);
		} else if (nargs < 2) {
			args[nargs++] = cli->argv[i];
		} else {
			usage_error("kvmig vm --help", "unexpected argument '%s'; usage: kvmig %s",
				    cli->argv[i], syn);
		}
	}
	if (nargs != 2)
		usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	abs_path(args[1], path, sizeof(path));
	req = request("vm.save");
	req_str(req, "name", args[0]);
	req_str(req, "path", path);
	if (compress)
		req_str(req, "compress", compress);
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
		{"restore", cmd_vm_restore}, {"pause", cmd_vm_pause},	  {"resume", cmd_vm_resume},
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

/* ---- migration ---- */

static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	interrupts++;
}

/*
 * Check a destination URI with the parser the agent's channel uses
 * (protocol/uri.h): tcp://HOST:PORT (HOST a name, IPv4 or [IPv6]),
 * unix:///PATH; tls:// and ssh:// are the contract's too, but their
 * transports are not in this build yet (exit 2).
 */
static void check_uri(const char *uri)
{
	static const char hint[] = "kvmig migrate --help";
	struct uri u;
	char err[512];

	if (uri_parse(uri, &u, err, sizeof(err)) < 0)
		usage_error(hint, "invalid --to: %s", err);
	if (!channel_ops_for(u.scheme)) {
		fprintf(stderr, "kvmig: --to %s: %s migration is not implemented yet\n", uri,
			uri_scheme_name(u.scheme));
		exit(EXIT_USAGE);
	}
}

/* A rate in MiB/s: a non-negative decimal number. */
static int parse_mib_s(const char *s, uint64_t *bytes_s)
{
	char *end;
	double v;

	if (!s[0] || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return -EINVAL;
	*bytes_s = (uint64_t)(v * 1048576.0);
	if (v > 0 && *bytes_s == 0)
		*bytes_s = 1;
	return 0;
}

static double json_real_or_int(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static bool job_over(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed") ||
	       !strcmp(status, "cancelled");
}

/* One progress line on stderr, redrawn in place. */
static void draw_progress(const json_t *st, double rate_bs)
{
	const char *status = json_str(st, "status");
	uint64_t sent = (uint64_t)json_num(st, "transferred_bytes");
	uint64_t left = (uint64_t)json_num(st, "remaining_bytes");
	double pct = sent + left ? 100.0 * (double)sent / (double)(sent + left) : 0.0;
	long long thr = json_num(st, "throttle_pct");
	char bar[26];
	size_t fill = (size_t)(pct / 4.0);

	if (!strcmp(status, "setup")) {
		fprintf(stderr, "\r%s: setting up\033[K", status);
		return;
	}
	for (size_t i = 0; i < sizeof(bar) - 1; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[sizeof(bar) - 1] = '\0';
	fprintf(stderr,
		"\r[%s] %3.0f%%  %7.1f MiB/s  %8.1f MiB left  round %lld  exp. downtime %lld ms",
		bar, pct > 99.0 && strcmp(status, "completed") ? 99.0 : pct, rate_bs / 1048576.0,
		(double)left / 1048576.0, json_num(st, "round"),
		json_num(st, "expected_downtime_ms"));
	if (thr)
		fprintf(stderr, "  throttle %lld%%", thr);
	if (!strcmp(status, "device"))
		fprintf(stderr, "  stop-and-copy");
	fprintf(stderr, "\033[K");
}

static json_t *job_info(const struct cli *cli, const char *name)
{
	json_t *req = request("job.info");

	req_str(req, "name", name);
	return call(cli, req);
}

/* Print final statistics: one JSON object, or a summary and a table. */
static void print_stats(const struct cli *cli, json_t *st)
{
	if (cli->json) {
		print_json(st);
		return;
	}
	printf("migration of %s to %s: %s after %lld ms, downtime %lld ms, %.1f MiB sent at "
	       "%.1f Mbit/s\n",
	       json_str(st, "name"), json_str(st, "uri"), json_str(st, "status"),
	       json_num(st, "total_ms"), json_num(st, "downtime_ms"),
	       (double)json_num(st, "transferred_bytes") / 1048576.0, json_real_or_int(st, "mbps"));
	print_kv(st);
}

/* Poll the job until it ends; print its statistics. Return: exit status. */
static int follow_job(const struct cli *cli, const char *name)
{
	const char *force = getenv("KVMIG_PROGRESS");
	bool tty = force && force[0] ? strcmp(force, "0") != 0 : isatty(STDERR_FILENO);
	bool cancel_sent = false, drawn = false;
	uint64_t last_bytes = 0;
	long long last_ms = -1;
	double rate = 0.0;
	json_t *st;
	int status;

	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
		const char *s;

		if (interrupts >= 2) {
			fprintf(stderr,
				"%skvmig: stopped waiting; the job goes on in the agent (kvmig job "
				"info %s)\n",
				drawn ? "\n" : "", name);
			exit(130);
		}
		if (interrupts == 1 && !cancel_sent) {
			json_t *req = request("job.cancel");
			char err[1024];

			req_str(req, "name", name);
			/* the job may have ended meanwhile: then job.info says how */
			if (try_call(cli, req, err, sizeof(err)))
				fprintf(stderr,
					"%skvmig: cancelling the migration of %s (Ctrl-C again to "
					"stop waiting)\n",
					drawn ? "\n" : "", name);
			else
				fprintf(stderr, "%skvmig: %s\n", drawn ? "\n" : "", err);
			cancel_sent = true;
			drawn = false;
		}
		st = job_info(cli, name);
		s = json_str(st, "status");
		if (job_over(s))
			break;
		if (tty) {
			uint64_t bytes = (uint64_t)json_num(st, "transferred_bytes");
			long long ms = json_num(st, "total_ms");

			/*
			 * The engine publishes its counters in steps (per chunk
			 * of pages), so the rate is taken between two changes
			 * of the byte count, not between two polls.
			 */
			if (bytes != last_bytes) {
				if (last_ms >= 0 && ms > last_ms && bytes > last_bytes)
					rate = (double)(bytes - last_bytes) * 1000.0 /
					       (double)(ms - last_ms);
				last_ms = ms;
				last_bytes = bytes;
			}
			if (rate <= 0.0)
				rate = json_real_or_int(st, "bandwidth");
			draw_progress(st, rate);
			drawn = true;
		}
		json_decref(st);
		nanosleep(&ts, NULL);
	}
	if (drawn)
		fprintf(stderr, "\r\033[K");
	print_stats(cli, st);
	fflush(stdout);
	status = strcmp(json_str(st, "status"), "completed") ? EXIT_ERR : 0;
	if (status)
		fprintf(stderr, "kvmig: migration of %s failed: %s\n", name,
			json_object_get(st, "error") ? json_str(st, "error")
						     : json_str(st, "status"));
	json_decref(st);
	return status;
}

/* A migration option's range (migrate/opts.h), for messages. */
#define LIMIT_MIN(opt) ((unsigned long long)migrate_limit(opt)->min)
#define LIMIT_MAX(opt) ((unsigned long long)migrate_limit(opt)->max)

static int cmd_migrate(const struct cli *cli)
{
	static const char hint[] = "kvmig migrate --help";
	static const char syn[] = "migrate NAME --to URI [OPTIONS]";
	const char *name = NULL, *to = NULL, *announce = NULL, *v;
	bool detach = false, postcopy = false;
	json_t *req, *r;

	for (int i = 1; i < cli->argc; i++) {
		if (!strcmp(cli->argv[i], "--help") || !strcmp(cli->argv[i], "-h")) {
			help_migrate(stdout);
			return 0;
		}
	}
	req = request("migrate.start");
	for (int i = 1; i < cli->argc; i++) {
		const char *arg = cli->argv[i];
		uint64_t n;

		if (take_opt(cli->argc, cli->argv, &i, "--to", &v, hint)) {
			to = v;
		} else if (take_opt(cli->argc, cli->argv, &i, "--max-downtime", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_DOWNTIME, n))
				usage_error(hint,
					    "invalid --max-downtime '%s': expected milliseconds, "
					    "%llu to %llu",
					    v, LIMIT_MIN(MIGRATE_OPT_MAX_DOWNTIME),
					    LIMIT_MAX(MIGRATE_OPT_MAX_DOWNTIME));
			json_object_set_new(req, "max_downtime_ms", json_integer((json_int_t)n));
		} else if (take_opt(cli->argc, cli->argv, &i, "--bandwidth", &v, hint)) {
			if (parse_mib_s(v, &n) < 0)
				usage_error(hint,
					    "invalid --bandwidth '%s': expected MiB/s, a number "
					    "such as 50 or 12.5 (0: unlimited)",
					    v);
			json_object_set_new(req, "bandwidth", json_integer((json_int_t)n));
		} else if (!strcmp(arg, "--xbzrle")) {
			json_object_set_new(req, "xbzrle_cache_bytes",
					    json_integer((json_int_t)DEFAULT_XBZRLE));
		} else if (!strncmp(arg, "--xbzrle=", 9)) {
			if (parse_size(arg + 9, &n) < 0 || n == 0 ||
			    !migrate_opt_ok(MIGRATE_OPT_XBZRLE_CACHE, n))
				usage_error(hint,
					    "invalid --xbzrle cache '%s': expected a size from 4K "
					    "to 1T, such as 64M",
					    arg + 9);
			json_object_set_new(req, "xbzrle_cache_bytes", json_integer((json_int_t)n));
		} else if (take_opt(cli->argc, cli->argv, &i, "--compress", &v, hint)) {
			char err[256];

			if (migrate_check_compress(v, err, sizeof(err)) < 0)
				usage_error(hint, "invalid --compress: %s", err);
			req_str(req, "compress", v);
		} else if (take_opt(cli->argc, cli->argv, &i, "--parallel", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_PARALLEL, n))
				usage_error(hint, "invalid --parallel '%s': expected %llu to %llu", v,
					    LIMIT_MIN(MIGRATE_OPT_PARALLEL),
					    LIMIT_MAX(MIGRATE_OPT_PARALLEL));
			json_object_set_new(req, "parallel", json_integer((json_int_t)n));
		} else if (!strcmp(arg, "--auto-converge")) {
			json_object_set_new(req, "auto_converge", json_true());
		} else if (take_opt(cli->argc, cli->argv, &i, "--max-iterations", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_ITERATIONS, n))
				usage_error(hint,
					    "invalid --max-iterations '%s': expected a number of "
					    "rounds, %llu to %llu",
					    v, LIMIT_MIN(MIGRATE_OPT_MAX_ITERATIONS),
					    LIMIT_MAX(MIGRATE_OPT_MAX_ITERATIONS));
			json_object_set_new(req, "max_iterations", json_integer((json_int_t)n));
		} else if (take_opt(cli->argc, cli->argv, &i, "--timeout", &v, hint)) {
			if (parse_u64(v, &n) < 0 || n > UINT64_MAX / 1000 ||
			    !migrate_opt_ok(MIGRATE_OPT_TIMEOUT, n * 1000))
				usage_error(hint, "invalid --timeout '%s': expected seconds, 0 to %llu",
					    v, LIMIT_MAX(MIGRATE_OPT_TIMEOUT) / 1000);
			json_object_set_new(req, "timeout_ms",
					    json_integer((json_int_t)(n * 1000)));
		} else if (!strcmp(arg, "--verify")) {
			json_object_set_new(req, "verify", json_true());
		} else if (take_opt(cli->argc, cli->argv, &i, "--dirty-track", &v, hint)) {
			enum dirtylog_backend b;

			if (dirtylog_backend_by_name(v, &b) < 0)
				usage_error(hint,
					    "invalid --dirty-track '%s': expected bitmap or ring",
					    v);
			req_str(req, "dirty_track", v);
		} else if (!strcmp(arg, "--detach")) {
			detach = true;
		} else if (!strcmp(arg, "--postcopy")) {
			postcopy = true;
		} else if (take_opt(cli->argc, cli->argv, &i, "--announce", &v, hint)) {
			announce = v;
		} else if (arg[0] == '-' && arg[1]) {
			usage_error(hint, "unknown option '%s' for migrate", arg);
		} else if (!name) {
			name = arg;
		} else {
			usage_error(hint, "unexpected argument '%s'; usage: kvmig %s", arg, syn);
		}
	}
	if (!name || !to)
		usage_error(hint, "usage: kvmig %s", syn);
	if (postcopy || announce) {
		fprintf(stderr, "kvmig: %s is not implemented yet\n",
			postcopy ? "--postcopy" : "--announce");
		exit(EXIT_USAGE);
	}
	check_uri(to);
	req_str(req, "name", name);
	req_str(req, "uri", to);
	if (!detach) {
		/* from here on, Ctrl-C cancels the job (even one not started yet) */
		struct sigaction sa = {.sa_handler = on_sigint};

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: sleeps end early */
	}
	r = call(cli, req);
	if (detach) {
		if (cli->json) {
			print_json(r);
		} else {
			printf("migration of %s to %s started (%s); follow it with 'kvmig job info "
			       "%s'\n",
			       json_str(r, "name"), json_str(r, "uri"), json_str(r, "status"),
			       json_str(r, "name"));
		}
		json_decref(r);
		return 0;
	}
	json_decref(r);
	return follow_job(cli, name);
}

static int cmd_job(const struct cli *cli)
{
	const char *sub = cli->argc > 1 ? cli->argv[1] : "";
	json_t *req, *r;

	for (int i = 1; i < cli->argc; i++) {
		if ((i == 1 && is_help(cli->argv[i])) || !strcmp(cli->argv[i], "--help") ||
		    !strcmp(cli->argv[i], "-h")) {
			help_job(stdout);
			return 0;
		}
	}
	if (cli->argc != 3 || (strcmp(sub, "info") && strcmp(sub, "cancel")))
		usage_error("kvmig job --help", "usage: kvmig job info NAME | job cancel NAME");
	if (cli->argv[2][0] == '-' && cli->argv[2][1])
		usage_error("kvmig job --help", "unknown option '%s'; usage: kvmig job %s NAME",
			    cli->argv[2], sub);
	if (!strcmp(sub, "info")) {
		r = job_info(cli, cli->argv[2]);
		if (cli->json)
			print_json(r);
		else
			print_kv(r);
	} else {
		req = request("job.cancel");
		req_str(req, "name", cli->argv[2]);
		r = call(cli, req);
		if (cli->json)
			print_json(r);
		else
			printf("cancelling the migration of %s; 'kvmig job info %s' shows when it "
			       "stopped\n",
			       json_str(r, "name"), json_str(r, "name"));
	}
	json_decref(r);
	return 0;
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

		if (!dashdash && cli->argc > 0 && !strcmp(cli->argv[0], "migrate") &&
		    !strncmp(argv[i], "--timeout", 9) && (!argv[i][9] || argv[i][9] == '=')) {
			/* after "migrate", --timeout is the migration's own */
			cli->argv[cli->argc++] = argv[i];
			if (!argv[i][9] && i + 1 < argc)
				cli->argv[cli->argc++] = argv[++i];
		} else if (dashdash) {
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
	static const char *const later[] = {"drain", "bench", "demo"};
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
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(&cli);
	if (!strcmp(cmd, "job"))
		return cmd_job(&cli);
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
