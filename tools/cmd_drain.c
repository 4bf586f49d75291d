/* SPDX-License-Identifier: MIT */
/*
 * cmd_drain.c - kvmig drain (tools/cmd_drain.h).
 */
#include "tools/cmd_drain.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/parse.h"
#include "tools/drain.h"
#include "tools/inventory.h"
#include "tools/migopts.h"

#define HINT "kvmig drain --help"

static void help_drain(FILE *f)
{
	fprintf(f,
		"Usage: kvmig drain --from AGENT --to AGENT[,AGENT...] [--max-parallel N]\n"
		"                   [--order smallest|largest|least-dirty] [--dry-run]\n"
		"                   [--inventory FILE] [--json] [MIGRATE OPTIONS]\n"
		"\n"
		"Empty the agent --from of its VMs for maintenance: live-migrate each running\n"
		"or paused VM to one of the --to agents, then report where each went or why\n"
		"it stayed.\n"
		"\n"
		"AGENT is an agent's control socket (a path, as for --agent), or a name\n"
		"from --inventory FILE (lines 'NAME CONTROL-SOCKET [MIGRATION-URI]'; '#'\n"
		"comments). Migrations go to the first URI a destination listens on\n"
		"(kvmigd --listen), unless the inventory gives one.\n"
		"\n"
		"Placement: in the order chosen (default smallest: least RAM first;\n"
		"largest; least-dirty: the guests' write pace, sampled for 0.5 s), each VM\n"
		"goes to the destination with the most memory left free for guests\n"
		"(what the agent reports, minus the moves running to it). A VM no\n"
		"destination has room for stays. At most N moves run at once (default 1),\n"
		"and no more to one destination than it takes at once (its max_incoming).\n"
		"A move that fails leaves the guest running here; it is retried on another\n"
		"destination (never one that failed it) after a backoff (0.5 s, doubling),\n"
		"at most %d times. One VM never stops the drain.\n"
		"\n"
		"Options:\n"
		"  --from AGENT           the agent to empty\n"
		"  --to AGENT[,AGENT...]  where the VMs may go (up to %d; repeatable)\n"
		"  --max-parallel N       moves at once, 1 to %d (default 1)\n"
		"  --order ORDER          smallest (default), largest or least-dirty\n"
		"  --dry-run              print the plan (which VM would go where) and move\n"
		"                         nothing\n"
		"  --inventory FILE       agent names (see above)\n"
		"  --json                 the report as one JSON object on stdout\n"
		"\n"
		"Every option of kvmig migrate applies to each move:\n",
		DRAIN_MAX_TRIES, DRAIN_MAX_DESTS, DRAIN_MAX_VMS);
	migopts_help(f);
	fprintf(f,
		"\n"
		"On a terminal (or with KVMIG_PROGRESS=1) one progress line per VM is kept\n"
		"up to date on stderr; otherwise each change is one line there. The report\n"
		"(stdout): each VM, its result (moved, stayed, lost), where it went, its\n"
		"downtime and bytes, the failed attempts and why it stayed.\n"
		"Ctrl-C starts no more moves and lets the running ones finish; a second\n"
		"Ctrl-C cancels them (their guests run on here).\n"
		"\n"
		"Exit status: 0 the source is empty; 1 a VM stayed (or an agent did not\n"
		"answer); 2 bad usage.\n");
}

static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	interrupts++;
}

/* AGENT: an inventory name, else a control socket path. */
static void resolve(struct drain_agent *a, const char *spec, const struct inventory *inv,
		    const char *opt)
{
	const struct inv_agent *e = inventory_find(inv, spec);

	memset(a, 0, sizeof(*a));
	if (e) {
		snprintf(a->name, sizeof(a->name), "%s", e->name);
		snprintf(a->control, sizeof(a->control), "%s", e->control);
		snprintf(a->uri, sizeof(a->uri), "%s", e->uri);
		return;
	}
	if (!strchr(spec, '/'))
		cli_usage_error(HINT,
				"%s '%s': no such agent in the inventory, and not a control "
				"socket path%s",
				opt, spec, inv->n ? "" : " (no --inventory given)");
	if (strlen(spec) >= sizeof(a->control))
		cli_usage_error(HINT, "%s '%s': the path is too long", opt, spec);
	cli_abs_path(spec, a->control, sizeof(a->control));
	snprintf(a->name, sizeof(a->name), "%s", spec);
}

/* ---- progress and report ---- */

struct view {
	bool tty;
	unsigned drawn;		/* lines drawn last time */
};

static const char *size_str(uint64_t v, char *buf, size_t len)
{
	return cli_size_str((long long)v, buf, len);
}

static void vm_line(const struct drain *d, const struct drain_vm *vm, char *out, size_t len)
{
	char ram[16], b[16], r[16];
	const char *to = vm->dest >= 0 ? d->dst[vm->dest].name : "-";

	size_str(vm->mem_bytes, ram, sizeof(ram));
	switch (vm->state) {
	case DRAIN_RUNNING:
		snprintf(out, len, "%-16s %6s -> %-12s %-15s round %-3u %8s sent %8s left",
			 vm->name, ram, to, vm->status, vm->round,
			 size_str(vm->transferred_bytes, b, sizeof(b)),
			 size_str(vm->remaining_bytes, r, sizeof(r)));
		break;
	case DRAIN_MOVED:
		snprintf(out, len, "%-16s %6s -> %-12s moved in %llu ms, downtime %llu ms", vm->name,
			 ram, to, (unsigned long long)vm->total_ms,
			 (unsigned long long)vm->downtime_ms);
		break;
	case DRAIN_PENDING:
		if (vm->ntries)
			snprintf(out, len, "%-16s %6s    %-12s waiting to retry (%s failed: %.120s)",
				 vm->name, ram, "", d->dst[vm->tries[vm->ntries - 1].dest].name,
				 vm->tries[vm->ntries - 1].error);
		else
			snprintf(out, len, "%-16s %6s    %-12s waiting", vm->name, ram, "");
		break;
	case DRAIN_STAYED:
	case DRAIN_LOST:
		snprintf(out, len, "%-16s %6s    %-12s %s: %.200s", vm->name, ram, "",
			 drain_state_name(vm->state), vm->reason);
		break;
	}
}

static void on_report(struct drain *d, int i, void *arg)
{
	struct view *v = arg;
	char line[512];

	if (!v->tty) {
		/* a log: one line per change, none per poll */
		if (i >= 0) {
			vm_line(d, &d->vm[i], line, sizeof(line));
			fprintf(stderr, "drain: %s\n", line);
		}
		return;
	}
	if (i >= 0)
		return;	/* redrawn once a poll */
	if (v->drawn)
		fprintf(stderr, "\033[%uA", v->drawn);
	for (unsigned k = 0; k < d->nvm; k++) {
		vm_line(d, &d->vm[k], line, sizeof(line));
		fprintf(stderr, "\r%.*s\033[K\n", 150, line);
	}
	v->drawn = d->nvm;
	fflush(stderr);
}

static void print_plan(const struct drain *d)
{
	char ram[16];

	printf("plan: drain %s, %u VM(s), order %s\n", d->src.name, d->nvm,
	       drain_order_name(d->order));
	for (unsigned i = 0; i < d->nvm; i++) {
		const struct drain_vm *vm = &d->vm[i];

		size_str(vm->mem_bytes, ram, sizeof(ram));
		if (vm->state == DRAIN_PENDING)
			printf("  %-16s %6s -> %s (%s)\n", vm->name, ram, d->dst[vm->dest].name,
			       d->dst[vm->dest].uri);
		else
			printf("  %-16s %6s stays: %s\n", vm->name, ram, vm->reason);
	}
	for (unsigned i = 0; i < d->ndst; i++) {
		const struct drain_agent *a = &d->dst[i];
		char fr[16] = "unknown";

		if (a->mem_free != DRAIN_UNKNOWN)
			size_str(a->mem_free, fr, sizeof(fr));
		if (a->up)
			printf("  destination %s: %s free for guests, takes %s at once, %s\n",
			       a->name, fr, a->slots ? "a limited number" : "any number", a->uri);
		else
			printf("  destination %s: not used: %s\n", a->name, a->why_down);
	}
	printf("nothing was moved (--dry-run)\n");
}

static void print_report(const struct drain *d, unsigned left)
{
	char ram[16], b[16];
	unsigned moved = 0;

	printf("%-16s %6s  %-7s %-12s %5s %10s %9s %9s\n", "VM", "RAM", "RESULT", "WHERE",
	       "TRIES", "DOWNTIME", "BYTES", "TIME");
	for (unsigned i = 0; i < d->nvm; i++) {
		const struct drain_vm *vm = &d->vm[i];
		unsigned tries = vm->ntries + (vm->state == DRAIN_MOVED);

		size_str(vm->mem_bytes, ram, sizeof(ram));
		if (vm->state == DRAIN_MOVED) {
			moved++;
			printf("%-16s %6s  %-7s %-12s %5u %7llu ms %9s %6.1f s\n", vm->name, ram,
			       "moved", d->dst[vm->dest].name, tries,
			       (unsigned long long)vm->downtime_ms,
			       size_str(vm->transferred_bytes, b, sizeof(b)),
			       (double)vm->total_ms / 1000.0);
		} else {
			printf("%-16s %6s  %-7s %-12s %5u %10s %9s %9s\n", vm->name, ram,
			       drain_state_name(vm->state), "-", tries, "-", "-", "-");
		}
		for (unsigned t = 0; t < vm->ntries; t++)
			printf("    attempt %u to %s failed: %s\n", t + 1,
			       d->dst[vm->tries[t].dest].name, vm->tries[t].error);
		if (vm->state != DRAIN_MOVED && vm->reason[0])
			printf("    stayed: %s\n", vm->reason);
	}
	printf("%s: %u of %u VM(s) moved in %.1f s, at most %u at once%s\n", d->src.name, moved,
	       d->nvm, (double)(clock_now_ms() - d->t0_ms) / 1000.0, d->peak_running,
	       left ? "; the host is NOT empty" : "; the host is empty");
}

int cmd_drain(const struct cli *cli)
{
	static struct drain d;
	static struct inventory inv;
	const char *from = NULL, *to[DRAIN_MAX_DESTS], *inv_path = NULL, *v;
	unsigned nto = 0, left;
	struct migopts mo;
	bool dry = false;
	struct view view = { 0 };
	char err[1024];
	json_t *opts;
	uint64_t n;

	for (int i = 1; i < cli->argc; i++) {
		if (cli_is_help(cli->argv[i])) {
			help_drain(stdout);
			return 0;
		}
	}
	memset(&d, 0, sizeof(d));
	d.max_parallel = 1;
	d.order = DRAIN_ORDER_SMALLEST;
	opts = json_object();
	migopts_init(&mo);
	for (int i = 1; i < cli->argc; i++) {
		const char *arg = cli->argv[i];

		if (cli_take_opt(cli->argc, cli->argv, &i, "--from", &v, HINT)) {
			if (from)
				cli_usage_error(HINT, "--from given twice");
			from = v;
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--to", &v, HINT)) {
			char *list = strdup(v), *save = NULL;

			if (!list)
				cli_die(CLI_EXIT_ERR, "out of memory");
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (nto == DRAIN_MAX_DESTS)
					cli_usage_error(HINT, "more than %d destinations",
							DRAIN_MAX_DESTS);
				to[nto++] = t;
			}
			if (!nto)
				cli_usage_error(HINT, "--to: no agent named");
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--max-parallel", &v, HINT)) {
			if (parse_u64(v, &n) < 0 || n < 1 || n > DRAIN_MAX_VMS)
				cli_usage_error(HINT, "invalid --max-parallel '%s': expected 1 to %d",
						v, DRAIN_MAX_VMS);
			d.max_parallel = (unsigned)n;
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--order", &v, HINT)) {
			if (drain_order_parse(v, &d.order) < 0)
				cli_usage_error(HINT,
						"invalid --order '%s': expected smallest, largest or "
						"least-dirty",
						v);
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--inventory", &v, HINT)) {
			inv_path = v;
		} else if (!strcmp(arg, "--dry-run")) {
			dry = true;
		} else if (migopts_take(cli, &i, opts, &mo, HINT)) {
			/* applies to every move */
		} else if (arg[0] == '-' && arg[1]) {
			cli_usage_error(HINT, "unknown option '%s' for drain", arg);
		} else {
			cli_usage_error(HINT, "unexpected argument '%s'", arg);
		}
	}
	migopts_done(&mo, HINT);
	if (!from || !nto)
		cli_usage_error(HINT, "usage: kvmig drain --from AGENT --to AGENT[,AGENT...]");
	if (inv_path && inventory_load(&inv, inv_path, err, sizeof(err)) < 0)
		cli_die(CLI_EXIT_USAGE, "%s", err);
	resolve(&d.src, from, &inv, "--from");
	for (unsigned i = 0; i < nto; i++) {
		resolve(&d.dst[i], to[i], &inv, "--to");
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(d.dst[k].control, d.dst[i].control))
				cli_usage_error(HINT, "--to names %s twice", to[i]);
		if (d.dst[i].uri[0])
			migopts_check_uri("the inventory's URI", d.dst[i].uri, HINT);
	}
	d.ndst = nto;
	d.opts = opts;
	d.timeout_ms = cli->timeout_ms;
	d.t0_ms = clock_now_ms();
	if (drain_probe(&d, err, sizeof(err)) < 0)
		cli_die(CLI_EXIT_ERR, "cannot drain %s: %s", d.src.name, err);
	if (dry) {
		drain_plan(&d);
		if (cli->json) {
			json_t *r = drain_report_json(&d, true);

			cli_print_json(r);
			json_decref(r);
		} else {
			print_plan(&d);
		}
		json_decref(opts);
		return 0;
	}
	{
		const char *p = getenv("KVMIG_PROGRESS");
		struct sigaction sa = { .sa_handler = on_sigint };

		view.tty = p ? !strcmp(p, "1") : isatty(2);
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	d.report = on_report;
	d.arg = &view;
	left = drain_run(&d, &interrupts);
	if (view.tty)
		on_report(&d, -1, &view);
	if (cli->json) {
		json_t *r = drain_report_json(&d, false);

		cli_print_json(r);
		json_decref(r);
	} else {
		print_report(&d, left);
	}
	json_decref(opts);
	return left ? CLI_EXIT_ERR : 0;
}
