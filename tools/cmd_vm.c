/* SPDX-License-Identifier: MIT */
/*
 * cmd_vm.c - kvmig vm start|stop|pause|resume|list|info|console|save|restore
 * (tools/cmd_vm.h).
 */
#include "tools/cmd_vm.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "migrate/migrate.h"
#include "tools/control.h"
#include "vm/vm.h"

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
		"      Destroy the VM and print its last guest counters. At the\n"
		"      destination of a post-copy whose link to the source is lost, this\n"
		"      gives the post-copy up (the guest cannot run without the pages that\n"
		"      never arrived: it says how many) and destroys the VM.\n"
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

		if (cli_take_opt(cli->argc, cli->argv, &i, "--mem", &v, hint))
			mem = v;
		else if (cli_take_opt(cli->argc, cli->argv, &i, "--vcpus", &v, hint))
			vcpus = v;
		else if (cli_take_opt(cli->argc, cli->argv, &i, "--guest", &v, hint))
			guest = v;
		else if (cli_take_opt(cli->argc, cli->argv, &i, "--mac", &v, hint))
			mac = v;
		else if (cli_take_opt(cli->argc, cli->argv, &i, "--dirty-ring", &v, hint))
			ring = v;
		else if (cli->argv[i][0] == '-')
			cli_usage_error(hint, "unknown option '%s' for vm start", cli->argv[i]);
		else if (!name)
			name = cli->argv[i];
		else
			cli_usage_error(hint, "unexpected argument '%s'; usage: kvmig %s",
					cli->argv[i], syn);
	}
	if (!name)
		cli_usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	req = cli_request("vm.start");
	cli_req_str(req, "name", name);
	if (mem) {
		uint64_t bytes;

		if (parse_size(mem, &bytes) < 0)
			cli_usage_error("kvmig vm --help",
					"invalid --mem '%s': expected a size such as 64M or 4G",
					mem);
		json_object_set_new(req, "mem_bytes", json_integer((json_int_t)bytes));
	}
	if (vcpus) {
		uint64_t n;

		if (parse_u64(vcpus, &n) < 0 || n > INT_MAX)
			cli_usage_error("kvmig vm --help",
					"invalid --vcpus '%s': expected a number from 1 to %d",
					vcpus, VM_MAX_VCPUS);
		json_object_set_new(req, "vcpus", json_integer((json_int_t)n));
	}
	if (guest) {
		const char *comma = strchr(guest, ',');
		size_t gl = comma ? (size_t)(comma - guest) : strlen(guest);

		if (gl == 0)
			cli_usage_error(
				"kvmig vm --help",
				"invalid --guest '%s': expected GUEST[,KEY=VALUE...] with GUEST "
				"one of idle, seqdirty, randdirty, memcheck",
				guest);
		json_object_set_new(req, "guest", ctl_string_lossy(guest, gl));
		cli_req_str(req, "guest_args", comma ? comma + 1 : "");
	}
	if (mac) {
		char err[512], macs[CTL_MAC_STRLEN];
		uint8_t m[6];

		if (ctl_parse_mac(mac, m, err, sizeof(err)) < 0)
			cli_usage_error("kvmig vm --help", "invalid --mac: %s", err);
		cli_req_str(req, "mac", ctl_format_mac(m, macs));
	}
	if (ring) {
		uint64_t n;

		if (parse_u64(ring, &n) < 0 || n > UINT32_MAX)
			cli_usage_error(
				"kvmig vm --help",
				"invalid --dirty-ring '%s': expected a number of entries, a power "
				"of two such as 4096",
				ring);
		json_object_set_new(req, "dirty_ring", json_integer((json_int_t)n));
	}
	r = cli_call(cli, req);
	if (cli->json) {
		cli_print_json(r);
	} else {
		long long nv = cli_json_num(r, "vcpus");
		char sz[32];

		printf("started VM %s: %s, %s, %lld vCPU%s, guest %s%s%s, mac %s\n",
		       cli_json_str(r, "name"), cli_json_str(r, "state"),
		       cli_size_str(cli_json_num(r, "mem_bytes"), sz, sizeof(sz)), nv,
		       nv == 1 ? "" : "s", cli_json_str(r, "guest"),
		       cli_json_str(r, "guest_args")[0] ? "," : "", cli_json_str(r, "guest_args"),
		       cli_json_str(r, "mac"));
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

	cli_want_args(cli, 1, usage);
	req = cli_request(method);
	cli_req_str(req, "name", cli->argv[2]);
	r = cli_call(cli, req);
	gs = json_object_get(r, "guest_stats");
	if (cli->json)
		cli_print_json(r);
	else if (json_object_get(r, "pages_lost"))
		printf("gave up the post-copy of VM %s: %lld pages never arrived; it is destroyed\n",
		       cli_json_str(r, "name"), cli_json_num(r, "pages_lost"));
	else
		printf("%s VM %s (progress %lld, errors %lld, ticks %lld)\n", done,
		       cli_json_str(r, "name"), cli_json_num(gs, "progress"),
		       cli_json_num(gs, "errors"), cli_json_num(gs, "ticks"));
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

	cli_want_args(cli, 0, "vm list");
	r = cli_call(cli, cli_request("vm.list"));
	vms = json_object_get(r, "vms");
	if (cli->json) {
		cli_print_json(r);
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
				snprintf(nv, sizeof(nv), "%lld", cli_json_num(v, "vcpus"));
			else
				snprintf(nv, sizeof(nv), "-");
			printf("%-20s %-10s %6s %5s %-10s %-17s %s\n", cli_json_str(v, "name"),
			       cli_json_str(v, "state"),
			       cli_size_str(cli_json_num(v, "mem_bytes"), sz, sizeof(sz)), nv,
			       json_object_get(v, "guest") ? cli_json_str(v, "guest") : "-",
			       json_object_get(v, "mac") ? cli_json_str(v, "mac") : "-",
			       cli_json_str(v, "guest_args"));
		}
	}
	json_decref(r);
	return 0;
}

static int cmd_vm_info(const struct cli *cli)
{
	json_t *req, *r;

	cli_want_args(cli, 1, "vm info NAME");
	req = cli_request("vm.info");
	cli_req_str(req, "name", cli->argv[2]);
	r = cli_call(cli, req);
	if (cli->json)
		cli_print_json(r);
	else
		cli_print_kv(r);
	json_decref(r);
	return 0;
}

static int cmd_vm_console(const struct cli *cli)
{
	json_t *req, *r;

	cli_want_args(cli, 1, "vm console NAME");
	req = cli_request("vm.console");
	cli_req_str(req, "name", cli->argv[2]);
	r = cli_call(cli, req);
	if (cli->json) {
		cli_print_json(r);
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
		if (cli_take_opt(cli->argc, cli->argv, &i, "--compress", &v, "kvmig vm --help")) {
			if (migrate_check_compress(v, err, sizeof(err)) < 0)
				cli_usage_error("kvmig vm --help", "invalid --compress: %s", err);
			/* auto measures a link: a file has none */
			if (migrate_compress_auto(v))
				cli_usage_error("kvmig vm --help",
						"invalid --compress: auto is for migrations "
						"(none, zstd[:LEVEL] or lz4)");
			compress = v;
		} else if (cli->argv[i][0] == '-' && cli->argv[i][1]) {
			cli_usage_error("kvmig vm --help", "unknown option '%s' for vm save",
					cli->argv[i]);
		} else if (nargs < 2) {
			args[nargs++] = cli->argv[i];
		} else {
			cli_usage_error("kvmig vm --help",
					"unexpected argument '%s'; usage: kvmig %s", cli->argv[i],
					syn);
		}
	}
	if (nargs != 2)
		cli_usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	cli_abs_path(args[1], path, sizeof(path));
	req = cli_request("vm.save");
	cli_req_str(req, "name", args[0]);
	cli_req_str(req, "path", path);
	if (compress)
		cli_req_str(req, "compress", compress);
	r = cli_call(cli, req);
	if (cli->json) {
		cli_print_json(r);
	} else {
		char sz[32];

		printf("saved VM %s to %s: %lld bytes (%s) in %.3f ms, guest paused %.3f ms "
		       "(%lld pages with data, %lld zero pages)\n",
		       cli_json_str(r, "name"), cli_json_str(r, "path"),
		       cli_json_num(r, "file_bytes"),
		       cli_size_str(cli_json_num(r, "file_bytes"), sz, sizeof(sz)),
		       json_real_value(json_object_get(r, "elapsed_ms")),
		       json_real_value(json_object_get(r, "pause_ms")),
		       cli_json_num(r, "ram_pages"), cli_json_num(r, "zero_pages"));
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
		if (cli_take_opt(cli->argc, cli->argv, &i, "--name", &v, "kvmig vm --help"))
			name = v;
		else if (cli->argv[i][0] == '-' && cli->argv[i][1])
			cli_usage_error("kvmig vm --help", "unknown option '%s' for vm restore",
					cli->argv[i]);
		else if (!file)
			file = cli->argv[i];
		else
			cli_usage_error("kvmig vm --help",
					"unexpected argument '%s'; usage: kvmig %s", cli->argv[i],
					syn);
	}
	if (!file)
		cli_usage_error("kvmig vm --help", "usage: kvmig %s", syn);
	cli_abs_path(file, path, sizeof(path));
	req = cli_request("vm.restore");
	cli_req_str(req, "path", path);
	if (name)
		cli_req_str(req, "name", name);
	r = cli_call(cli, req);
	if (cli->json)
		cli_print_json(r);
	else
		printf("restored VM %s from %s: %s, progress %lld, in %.3f ms\n",
		       cli_json_str(r, "name"), cli_json_str(r, "path"), cli_json_str(r, "state"),
		       cli_json_num(json_object_get(r, "guest_stats"), "progress"),
		       json_real_value(json_object_get(r, "elapsed_ms")));
	json_decref(r);
	return 0;
}

int cmd_vm(const struct cli *cli)
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
		cli_usage_error("kvmig vm --help", "missing vm command");
	/* "kvmig vm help", and --help or -h after any vm command word. */
	for (int i = 1; i < cli->argc; i++) {
		if ((i == 1 && cli_is_help(cli->argv[i])) || !strcmp(cli->argv[i], "--help") ||
		    !strcmp(cli->argv[i], "-h")) {
			help_vm(stdout);
			return 0;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cli->argv[1], cmds[i].name))
			return cmds[i].fn(cli);
	cli_usage_error("kvmig vm --help", "unknown vm command '%s'", cli->argv[1]);
}
