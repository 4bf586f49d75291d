/* SPDX-License-Identifier: MIT */
/*
 * drain.c - kvmig drain: empty one agent of its VMs (tools/drain.h).
 */
#include "tools/drain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"

#define DIRTY_SAMPLE_MS 500u	/* least-dirty: the window the guests' pace is measured over */
#define BACKOFF_MAX_MS	8000u

const char *drain_state_name(enum drain_state s)
{
	switch (s) {
	case DRAIN_PENDING:
		return "pending";
	case DRAIN_RUNNING:
		return "moving";
	case DRAIN_MOVED:
		return "moved";
	case DRAIN_STAYED:
		return "stayed";
	case DRAIN_LOST:
		return "lost";
	}
	return "unknown";
}

static const char *const order_names[] = {
	[DRAIN_ORDER_SMALLEST] = "smallest",
	[DRAIN_ORDER_LARGEST] = "largest",
	[DRAIN_ORDER_LEAST_DIRTY] = "least-dirty",
};

const char *drain_order_name(enum drain_order o)
{
	return o <= DRAIN_ORDER_LEAST_DIRTY ? order_names[o] : "unknown";
}

int drain_order_parse(const char *s, enum drain_order *o)
{
	for (unsigned i = 0; i <= DRAIN_ORDER_LEAST_DIRTY; i++) {
		if (!strcmp(s, order_names[i])) {
			*o = (enum drain_order)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Does a go before b? Ties keep the source's order (the sort is stable). */
static bool before(const struct drain_vm *a, const struct drain_vm *b, enum drain_order o)
{
	switch (o) {
	case DRAIN_ORDER_SMALLEST:
		return a->mem_bytes < b->mem_bytes;
	case DRAIN_ORDER_LARGEST:
		return a->mem_bytes > b->mem_bytes;
	case DRAIN_ORDER_LEAST_DIRTY:
		return a->dirty_rate < b->dirty_rate;
	}
	return false;
}

void drain_sort(struct drain_vm *v, unsigned n, enum drain_order o)
{
	for (unsigned i = 1; i < n; i++) {
		struct drain_vm x = v[i];
		unsigned j = i;

		for (; j > 0 && before(&x, &v[j - 1], o); j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static bool tried(const struct drain_vm *vm, int dest)
{
	for (unsigned t = 0; t < vm->ntries; t++)
		if (vm->tries[t].dest == dest)
			return true;
	return false;
}

static void mib(char *buf, size_t len, uint64_t bytes)
{
	snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
}

int drain_choose(const struct drain *d, const struct drain_vm *vm, char *why, size_t len)
{
	int best = -1;
	uint64_t best_left = 0;
	bool later = false;
	size_t w = 0;
	char need[32];

	mib(need, sizeof(need), vm->mem_bytes);
	w += (size_t)snprintf(why, len, "no destination can take its %s:", need);
	for (unsigned i = 0; i < d->ndst; i++) {
		const struct drain_agent *a = &d->dst[i];
		uint64_t left;
		char have[32];

		if (!a->up) {
			if (w < len)
				w += (size_t)snprintf(why + w, len - w, " %s does not answer (%s);",
						      a->name, a->why_down);
			continue;
		}
		if (tried(vm, (int)i)) {
			if (w < len)
				w += (size_t)snprintf(why + w, len - w, " %s failed it;", a->name);
			continue;
		}
		if (a->mem_free != DRAIN_UNKNOWN && a->mem_free < vm->mem_bytes) {
			mib(have, sizeof(have), a->mem_free);
			if (w < len)
				w += (size_t)snprintf(why + w, len - w, " %s has %s free;", a->name,
						      have);
			continue;
		}
		left = a->mem_free == DRAIN_UNKNOWN ? UINT64_MAX
						     : a->mem_free - MIN(a->planned, a->mem_free);
		if (left < vm->mem_bytes || (a->slots && a->running >= a->slots)) {
			later = true;
			continue;
		}
		/* equal room (or unknown on both): the less loaded one */
		if (best < 0 || left > best_left ||
		    (left == best_left && (a->planned < d->dst[best].planned ||
					   (a->planned == d->dst[best].planned &&
					    a->running < d->dst[best].running)))) {
			best = (int)i;
			best_left = left;
		}
	}
	if (w && w <= len && why[w - 1] == ';')
		why[w - 1] = '\0';
	if (best >= 0)
		return best;
	return later ? -EBUSY : -ENOSPC;
}

/* ---- talking to the agents ---- */

static json_t *call(const struct drain *d, const char *control, json_t *req, char *err,
		    size_t len)
{
	struct cli c = { .agent = control, .timeout_ms = d->timeout_ms };

	return cli_try_call_reply(&c, req, err, len);
}

static json_t *vm_req(const char *method, const char *name)
{
	json_t *r = cli_request(method);

	if (r)
		cli_req_str(r, "name", name);
	return r;
}

/* agent.version of a: up or not, and for a destination its URI, room and slots. */
static void probe_agent(const struct drain *d, struct drain_agent *a, bool dest)
{
	json_t *r = call(d, a->control, cli_request("agent.version"), a->why_down,
			 sizeof(a->why_down));
	const json_t *kvm, *uris, *v;

	a->up = r != NULL;
	if (!r)
		return;
	kvm = json_object_get(r, "kvm");
	if (!json_is_true(json_object_get(kvm, "available"))) {
		snprintf(a->why_down, sizeof(a->why_down), "KVM does not work there: %s",
			 cli_json_str(kvm, "error"));
		a->up = false;
	}
	if (dest && a->up && !a->uri[0]) {
		uris = json_object_get(r, "migrate_uris");
		v = json_is_array(uris) ? json_array_get(uris, 0) : json_object_get(r, "migrate_uri");
		if (json_is_string(v) && strlen(json_string_value(v)) < sizeof(a->uri)) {
			snprintf(a->uri, sizeof(a->uri), "%s", json_string_value(v));
		} else {
			snprintf(a->why_down, sizeof(a->why_down),
				 "it does not listen for migrations (kvmigd --listen)");
			a->up = false;
		}
	}
	v = json_object_get(r, "mem_free_bytes");
	a->mem_free = json_is_integer(v) && json_integer_value(v) >= 0
			      ? (uint64_t)json_integer_value(v)
			      : DRAIN_UNKNOWN;
	v = json_object_get(r, "max_incoming");
	a->slots = json_is_integer(v) && json_integer_value(v) > 0
			   ? (unsigned)json_integer_value(v)
			   : 0;
	json_decref(r);
}

/* A VM's guest progress at the source, or -1. */
static double progress_of(const struct drain *d, const char *name)
{
	char err[256];
	json_t *r = call(d, d->src.control, vm_req("vm.info", name), err, sizeof(err));
	double p = -1;

	if (r) {
		p = (double)cli_json_num(json_object_get(r, "guest_stats"), "progress");
		json_decref(r);
	}
	return p;
}

static void sample_dirty(struct drain *d)
{
	double p0[DRAIN_MAX_VMS], p1;
	uint64_t t0 = clock_now_ms(), t1;

	for (unsigned i = 0; i < d->nvm; i++)
		p0[i] = progress_of(d, d->vm[i].name);
	/* a measurement, not a wait for something: the guests' pace over the window */
	usleep(DIRTY_SAMPLE_MS * 1000);
	t1 = clock_now_ms();
	for (unsigned i = 0; i < d->nvm; i++) {
		p1 = progress_of(d, d->vm[i].name);
		d->vm[i].dirty_rate = p0[i] >= 0 && p1 >= p0[i] && t1 > t0
					      ? (p1 - p0[i]) * 1000.0 / (double)(t1 - t0)
					      : 0;
	}
}

int drain_probe(struct drain *d, char *err, size_t errlen)
{
	const json_t *vms, *v;
	unsigned up = 0;
	size_t k;
	json_t *r;

	probe_agent(d, &d->src, false);
	if (!d->src.up) {
		snprintf(err, errlen, "the source agent %s: %s", d->src.name, d->src.why_down);
		return -EHOSTDOWN;
	}
	for (unsigned i = 0; i < d->ndst; i++) {
		if (!strcmp(d->dst[i].control, d->src.control)) {
			snprintf(err, errlen, "%s is the source: it cannot be a destination too",
				 d->dst[i].name);
			return -EINVAL;
		}
		probe_agent(d, &d->dst[i], true);
		up += d->dst[i].up;
	}
	r = call(d, d->src.control, cli_request("vm.list"), err, errlen);
	if (!r)
		return -EHOSTDOWN;
	vms = json_object_get(r, "vms");
	d->nvm = 0;
	json_array_foreach(vms, k, v) {
		struct drain_vm *vm;

		if (d->nvm == DRAIN_MAX_VMS) {
			json_decref(r);
			snprintf(err, errlen, "the source has more than %d VMs", DRAIN_MAX_VMS);
			return -E2BIG;
		}
		vm = &d->vm[d->nvm++];
		memset(vm, 0, sizeof(*vm));
		vm->dest = -1;
		snprintf(vm->name, sizeof(vm->name), "%s", cli_json_str(v, "name"));
		snprintf(vm->vm_state, sizeof(vm->vm_state), "%s", cli_json_str(v, "state"));
		vm->mem_bytes = (uint64_t)cli_json_num(v, "mem_bytes");
		if (strcmp(vm->vm_state, "running") && strcmp(vm->vm_state, "paused")) {
			vm->state = DRAIN_STAYED;
			snprintf(vm->reason, sizeof(vm->reason),
				 "it is %s: the drain moves running and paused VMs only",
				 cli_json_str(v, "state"));
		}
	}
	json_decref(r);
	if (!up && d->nvm) {
		size_t w = (size_t)snprintf(err, errlen, "no destination answers:");

		for (unsigned i = 0; i < d->ndst && w < errlen; i++)
			w += (size_t)snprintf(err + w, errlen - w, " %s: %s;", d->dst[i].name,
					      d->dst[i].why_down);
		if (w && w <= errlen)
			err[w - 1] = '\0';
		return -EHOSTDOWN;
	}
	if (d->order == DRAIN_ORDER_LEAST_DIRTY)
		sample_dirty(d);
	drain_sort(d->vm, d->nvm, d->order);
	return 0;
}

void drain_plan(struct drain *d)
{
	unsigned slots[DRAIN_MAX_DESTS];
	char why[sizeof(d->vm[0].reason)];

	/* every move at once: only room decides */
	for (unsigned i = 0; i < d->ndst; i++) {
		slots[i] = d->dst[i].slots;
		d->dst[i].slots = 0;
	}
	for (unsigned i = 0; i < d->nvm; i++) {
		struct drain_vm *vm = &d->vm[i];
		int r;

		if (vm->state != DRAIN_PENDING)
			continue;
		r = drain_choose(d, vm, why, sizeof(why));
		if (r >= 0) {
			vm->dest = r;
			d->dst[r].planned += vm->mem_bytes;
		} else {
			vm->state = DRAIN_STAYED;
			snprintf(vm->reason, sizeof(vm->reason), "%s", why);
		}
	}
	for (unsigned i = 0; i < d->ndst; i++)
		d->dst[i].slots = slots[i];
}

/* ---- the run ---- */

static uint64_t now_ms(const struct drain *d)
{
	return clock_now_ms() - d->t0_ms;
}

static void changed(struct drain *d, unsigned i)
{
	if (d->report)
		d->report(d, (int)i, d->arg);
}

/* The move of vm i to dest failed with err: the guest is at the source (or lost). */
static void failed(struct drain *d, unsigned i, int dest, const char *error)
{
	struct drain_vm *vm = &d->vm[i];
	struct drain_agent *a = &d->dst[dest];
	char why[256], err[400];
	json_t *r;

	snprintf(err, sizeof(err), "%s", error);
	if (vm->ntries < DRAIN_MAX_TRIES) {
		vm->tries[vm->ntries].dest = dest;
		snprintf(vm->tries[vm->ntries].error, sizeof(vm->tries[0].error), "%s", err);
		vm->ntries++;
	}
	/* a destination that stopped answering takes no more moves */
	probe_agent(d, a, true);
	/* where is the guest? */
	r = call(d, d->src.control, vm_req("vm.info", vm->name), why, sizeof(why));
	if (r) {
		json_decref(r);
		vm->state = DRAIN_PENDING;
		vm->retry_at_ms = now_ms(d) + MIN(DRAIN_BACKOFF_MS << (vm->ntries - 1),
						  BACKOFF_MAX_MS);
		if (vm->ntries == DRAIN_MAX_TRIES) {
			vm->state = DRAIN_STAYED;
			snprintf(vm->reason, sizeof(vm->reason), "%u moves failed; the last: %.300s",
				 vm->ntries, err);
		}
	} else {
		vm->state = DRAIN_LOST;
		snprintf(vm->reason, sizeof(vm->reason),
			 "the move failed (%.200s) and the source no longer has it (%.100s)",
			 err, why);
	}
}

static void start_move(struct drain *d, unsigned i, int dest)
{
	struct drain_vm *vm = &d->vm[i];
	struct drain_agent *a = &d->dst[dest];
	json_t *req = json_deep_copy(d->opts);
	char err[512];
	json_t *r;

	json_object_set_new(req, "method", json_string("migrate.start"));
	cli_req_str(req, "name", vm->name);
	cli_req_str(req, "uri", a->uri);
	vm->dest = dest;
	vm->status[0] = '\0';
	vm->round = 0;
	vm->transferred_bytes = vm->remaining_bytes = 0;
	r = call(d, d->src.control, req, err, sizeof(err));
	if (!r) {
		failed(d, i, dest, err);
		changed(d, i);
		return;
	}
	json_decref(r);
	vm->state = DRAIN_RUNNING;
	snprintf(vm->status, sizeof(vm->status), "setup");
	a->running++;
	a->planned += vm->mem_bytes;
	d->running++;
	d->peak_running = MAX(d->peak_running, d->running);
	changed(d, i);
}

static void ended(struct drain *d, unsigned i)
{
	struct drain_vm *vm = &d->vm[i];
	struct drain_agent *a = &d->dst[vm->dest];

	a->running--;
	a->planned -= MIN(a->planned, vm->mem_bytes);
	d->running--;
}

/* job.info of a running move. Return: false when the source stopped answering. */
static bool poll_move(struct drain *d, unsigned i, char *err, size_t errlen)
{
	struct drain_vm *vm = &d->vm[i];
	const char *st;
	json_t *r = call(d, d->src.control, vm_req("job.info", vm->name), err, errlen);

	if (!r)
		return false;
	st = cli_json_str(r, "status");
	vm->round = (unsigned)cli_json_num(r, "round");
	vm->transferred_bytes = (uint64_t)cli_json_num(r, "transferred_bytes");
	vm->remaining_bytes = (uint64_t)cli_json_num(r, "remaining_bytes");
	vm->downtime_ms = (uint64_t)cli_json_num(r, "downtime_ms");
	vm->total_ms = (uint64_t)cli_json_num(r, "total_ms");
	if (!strcmp(st, "completed")) {
		ended(d, i);
		vm->state = DRAIN_MOVED;
		probe_agent(d, &d->dst[vm->dest], true);	/* its room now */
		changed(d, i);
	} else if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
		char e[400];

		snprintf(e, sizeof(e), "%s", cli_json_str(r, "error"));
		ended(d, i);
		failed(d, i, vm->dest, e[0] ? e : st);
		changed(d, i);
	} else if (strcmp(vm->status, st)) {
		snprintf(vm->status, sizeof(vm->status), "%s", st);
		changed(d, i);
	}
	json_decref(r);
	return true;
}

/* The source stopped answering: nothing more can be moved or followed. */
static void source_gone(struct drain *d, const char *err)
{
	for (unsigned i = 0; i < d->nvm; i++) {
		struct drain_vm *vm = &d->vm[i];

		if (vm->state != DRAIN_PENDING && vm->state != DRAIN_RUNNING)
			continue;
		if (vm->state == DRAIN_RUNNING)
			ended(d, i);
		vm->state = DRAIN_STAYED;
		snprintf(vm->reason, sizeof(vm->reason),
			 "the source agent stopped answering (%.300s): its state is unknown", err);
		changed(d, i);
	}
}

static void cancel_running(struct drain *d)
{
	char err[256];

	for (unsigned i = 0; i < d->nvm; i++)
		if (d->vm[i].state == DRAIN_RUNNING)
			json_decref(call(d, d->src.control, vm_req("job.cancel", d->vm[i].name),
					 err, sizeof(err)));
}

unsigned drain_run(struct drain *d, volatile sig_atomic_t *stop)
{
	unsigned left = 0;
	bool cancelled = false;

	d->t0_ms = d->t0_ms ? d->t0_ms : clock_now_ms();
	for (;;) {
		bool busy = false;
		char err[512], why[sizeof(d->vm[0].reason)];

		for (unsigned i = 0; i < d->nvm; i++) {
			if (d->vm[i].state == DRAIN_RUNNING && !poll_move(d, i, err, sizeof(err))) {
				source_gone(d, err);
				break;
			}
		}
		if (stop && *stop >= 2 && !cancelled) {
			cancel_running(d);
			cancelled = true;
		}
		for (unsigned i = 0; i < d->nvm; i++) {
			struct drain_vm *vm = &d->vm[i];
			int r;

			if (vm->state != DRAIN_PENDING)
				continue;
			if (stop && *stop) {
				vm->state = DRAIN_STAYED;
				snprintf(vm->reason, sizeof(vm->reason),
					 "the drain was interrupted before it moved");
				changed(d, i);
				continue;
			}
			busy = true;
			if (d->running >= d->max_parallel || vm->retry_at_ms > now_ms(d))
				continue;
			r = drain_choose(d, vm, why, sizeof(why));
			if (r >= 0) {
				vm->reason[0] = '\0';
				start_move(d, i, r);
			} else if (r == -ENOSPC) {
				vm->state = DRAIN_STAYED;
				snprintf(vm->reason, sizeof(vm->reason), "%s", why);
				changed(d, i);
			}
		}
		if (!busy && !d->running)
			break;
		if (d->report)
			d->report(d, -1, d->arg);
		/* the moves run on the agents: look again in a while */
		usleep(DRAIN_POLL_MS * 1000);
	}
	for (unsigned i = 0; i < d->nvm; i++)
		left += d->vm[i].state != DRAIN_MOVED;
	return left;
}

json_t *drain_report_json(const struct drain *d, bool dry_run)
{
	json_t *o = json_object(), *vms = json_array();
	unsigned moved = 0, stayed = 0;

	for (unsigned i = 0; i < d->nvm; i++) {
		const struct drain_vm *vm = &d->vm[i];
		json_t *v = json_object(), *tries = json_array();
		const char *result = drain_state_name(vm->state);

		if (dry_run)
			result = vm->state == DRAIN_PENDING ? "planned" : "stays";
		json_object_set_new(v, "name", json_string(vm->name));
		json_object_set_new(v, "mem_bytes", json_integer((json_int_t)vm->mem_bytes));
		json_object_set_new(v, "result", json_string(result));
		json_object_set_new(v, "to", vm->dest >= 0 && (dry_run ? vm->state == DRAIN_PENDING
									: vm->state == DRAIN_MOVED)
						     ? json_string(d->dst[vm->dest].name)
						     : json_null());
		for (unsigned t = 0; t < vm->ntries; t++) {
			json_t *a = json_object();

			json_object_set_new(a, "to", json_string(d->dst[vm->tries[t].dest].name));
			json_object_set_new(a, "error", json_string(vm->tries[t].error));
			json_array_append_new(tries, a);
		}
		json_object_set_new(v, "failed_attempts", tries);
		if (vm->state == DRAIN_MOVED) {
			json_object_set_new(v, "downtime_ms", json_integer((json_int_t)vm->downtime_ms));
			json_object_set_new(v, "transferred_bytes",
					    json_integer((json_int_t)vm->transferred_bytes));
			json_object_set_new(v, "total_ms", json_integer((json_int_t)vm->total_ms));
		}
		if (d->order == DRAIN_ORDER_LEAST_DIRTY)
			json_object_set_new(v, "dirty_rate", json_real(vm->dirty_rate));
		if (vm->reason[0])
			json_object_set_new(v, "reason", json_string(vm->reason));
		json_array_append_new(vms, v);
		moved += vm->state == DRAIN_MOVED;
		stayed += vm->state == DRAIN_STAYED || vm->state == DRAIN_LOST;
	}
	json_object_set_new(o, "from", json_string(d->src.name));
	json_object_set_new(o, "dry_run", json_boolean(dry_run));
	json_object_set_new(o, "order", json_string(drain_order_name(d->order)));
	json_object_set_new(o, "max_parallel", json_integer(d->max_parallel));
	if (!dry_run) {
		json_object_set_new(o, "drained", json_boolean(moved == d->nvm));
		json_object_set_new(o, "moved", json_integer(moved));
		json_object_set_new(o, "stayed", json_integer(stayed));
		json_object_set_new(o, "peak_parallel", json_integer(d->peak_running));
		json_object_set_new(o, "elapsed_ms", json_integer((json_int_t)now_ms(d)));
	}
	json_object_set_new(o, "vms", vms);
	return o;
}
