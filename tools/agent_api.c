/* SPDX-License-Identifier: MIT */
/*
 * agent_api.c - the control API's methods: JSON helpers, one handler per
 * method, the method table and the dispatcher. See agent_api.h.
 */
#define LOG_PREFIX "kvmigd: "
#include "tools/agent_api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "dirtylog/dirtylog.h"
#include "migrate/announce.h"
#include "migrate/pcdest.h"
#include "migrate/snapshot.h"
#include "protocol/channel.h"
#include "tools/agent_incoming.h"
#include "tools/agent_limits.h"
#include "tools/control.h"
#include "tools/jobs.h"
#include "tools/registry.h"
#include "vm/vm.h"

/* ---- JSON helpers ---- */

static void set_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, ctl_string_lossy(s, strlen(s)));
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* Milliseconds with microsecond precision, from nanoseconds. */
static void set_ms(json_t *o, const char *key, uint64_t ns)
{
	json_object_set_new(o, key, json_real((double)(ns / 1000) / 1000.0));
}

static json_t *guest_stats_json(const struct vm *vm)
{
	struct vm_guest_stats gs;
	json_t *o = json_object();

	vm_get_stats(vm, &gs);
	set_u64(o, "progress", gs.progress);
	set_u64(o, "errors", gs.errors);
	set_u64(o, "ticks", gs.ticks);
	set_u64(o, "events", gs.events);
	if (gs.last_error_gfn == UINT64_MAX)
		json_object_set_new(o, "last_error_gfn", json_null());
	else
		set_u64(o, "last_error_gfn", gs.last_error_gfn);
	return o;
}

static const char *origin_name(enum registry_origin o)
{
	switch (o) {
	case REG_ORIGIN_START:
		return "start";
	case REG_ORIGIN_RESTORE:
		return "restore";
	case REG_ORIGIN_MIGRATE:
		return "migrate";
	}
	return "unknown";
}

/*
 * The API state of an entry: registry_state_name(), except that at the
 * source a migrating VM whose job switched to post-copy is "postcopy"
 * (the destination runs it; its pages leave from here on demand).
 */
static const char *entry_state(struct agent *a, const struct registry_entry *e)
{
	struct migrate_job *job;
	struct migrate_stats st;

	if (e->phase == REG_PHASE_MIGRATING && (job = jobs_running(a->jobs, e->name))) {
		migrate_get_stats(job, &st);
		if (st.postcopy.active)
			return "postcopy";
	}
	return registry_state_name(e);
}

/*
 * The destination's view of an incoming post-copy (vm.info "postcopy"):
 * what the receiver reports while the pages still arrive.
 */
static json_t *pcdest_json(struct pcdest *pd)
{
	struct pcdest_stats ps;
	json_t *o = json_object();

	pcdest_get_stats(pd, &ps);
	set_u64(o, "pages_missing", ps.pages_missing);
	set_u64(o, "pages_placed", ps.pages_placed);
	set_u64(o, "requests", ps.requests);
	set_u64(o, "faults", ps.faults);
	set_ms(o, "blocked_ms", ps.blocked_us * 1000);
	set_u64(o, "fault_latency_us_p50", ps.p50_us);
	set_u64(o, "fault_latency_us_p99", ps.p99_us);
	set_str(o, "link", ps.link_up ? "up" : "lost");
	set_u64(o, "link_down_ms", ps.link_up ? 0 : ps.link_down_ms);
	set_u64(o, "reconnects", ps.reconnects);
	if (ps.first_missing != UINT64_MAX) {
		json_t *w = json_array();

		set_u64(o, "first_missing_page", ps.first_missing);
		for (unsigned i = 0; i < ps.nwaiting && i < 4; i++)
			json_array_append_new(w, json_integer((json_int_t)ps.waiting[i]));
		json_object_set_new(o, "waiting_pages", w);
	}
	return o;
}

/*
 * The vm.list entry (full == false) or the vm.info object (full). An entry
 * another thread owns (phase != NONE) is described without touching the
 * VM's non-atomic state: an incoming one by what HELLO announced, a
 * migrating one without its pause statistics (the job pauses it).
 */
static json_t *vm_json(struct agent *a, const struct registry_entry *e, bool full)
{
	const struct vm_config *cfg;
	char mac[CTL_MAC_STRLEN];
	json_t *o = json_object();

	set_str(o, "name", e->name);
	set_str(o, "state", entry_state(a, e));
	if (e->phase == REG_PHASE_INCOMING) {
		set_u64(o, "mem_bytes", e->mem_bytes);
		if (full) {
			set_u64(o, "incoming_ms", (clock_now_ns() - e->added_ns) / 1000000);
			set_str(o, "origin", origin_name(e->origin));
			if (e->source[0])
				set_str(o, "source", e->source);
		}
		return o;
	}
	cfg = vm_get_config(e->vm);
	set_u64(o, "mem_bytes", cfg->mem_bytes);
	set_u64(o, "vcpus", cfg->vcpus);
	set_str(o, "guest", cfg->guest);
	set_str(o, "guest_args", cfg->guest_args);
	set_str(o, "mac", ctl_format_mac(cfg->mac, mac));
	if (full) {
		uint64_t ws_off, ws_bytes;
		json_t *w = json_object();

		json_object_set_new(o, "guest_stats", guest_stats_json(e->vm));
		if (e->phase == REG_PHASE_NONE) {
			struct vm_pause_stats ps;
			json_t *p = json_object();

			vm_get_pause_stats(e->vm, &ps);
			set_u64(p, "count", ps.count);
			set_u64(p, "last_us", ps.last_ns / 1000);
			set_u64(p, "max_us", ps.max_ns / 1000);
			set_u64(p, "total_us", ps.total_ns / 1000);
			json_object_set_new(o, "pause_latency", p);
		}
		vm_workset(e->vm, &ws_off, &ws_bytes);
		set_u64(w, "offset", ws_off);
		set_u64(w, "bytes", ws_bytes);
		json_object_set_new(o, "workset", w);
		set_u64(o, "dirty_ring", cfg->dirty_ring);
		set_u64(o, "uptime_ms", (clock_now_ns() - e->added_ns) / 1000000);
		set_str(o, "origin", origin_name(e->origin));
		if (e->source[0])
			set_str(o, "source", e->source);
		/* under the agent lock: the incoming thread clears pc under it too */
		if (e->phase == REG_PHASE_POSTCOPY && e->pc)
			json_object_set_new(o, "postcopy", pcdest_json(e->pc));
	}
	return o;
}

/* Copy every member of src into dst (for flat responses). */
static void merge(json_t *dst, json_t *src)
{
	json_object_update(dst, src);
	json_decref(src);
}

/* ---- request handlers: each returns a complete response ---- */

static json_t *no_vm(const char *name)
{
	return ctl_response_error("no VM named '%s'", name);
}

static json_t *req_ping(struct agent *a, json_t *req)
{
	json_t *r = ctl_response_ok();

	(void)req;
	set_u64(r, "pid", (uint64_t)getpid());
	set_u64(r, "uptime_ms", (clock_now_ns() - a->start_ns) / 1000000);
	set_u64(r, "vms", registry_count(a->reg));
	set_u64(r, "subscribers", a->subscribers);
	return r;
}

/*
 * events.subscribe: after the reply the connection carries the agent's
 * events, one per line (agent_loop.h), of every VM or of the one named.
 */
static json_t *req_events_subscribe(struct agent *a, json_t *req)
{
	const char *vm = "";
	char err[512];
	json_t *r;
	int ret;

	ret = ctl_get_str(req, "vm", false, &vm, err, sizeof(err));
	if (ret < 0 || (ret == 0 && registry_check_name(vm, err, sizeof(err)) < 0))
		return ctl_response_error("events.subscribe: %s", err);
	r = ctl_response_ok();
	if (!r)
		return NULL;
	a->req_subscribe = true;
	snprintf(a->req_subscribe_vm, sizeof(a->req_subscribe_vm), "%s", vm);
	set_u64(r, "seq", a->event_seq);
	if (vm[0])
		set_str(r, "vm", vm);
	return r;
}

static json_t *req_version(struct agent *a, json_t *req)
{
	json_t *r = ctl_response_ok(), *k = json_object();
	char err[256] = "";
	int ret;

	(void)req;
	set_str(r, "version", KVMIG_VERSION);
	set_u64(r, "api", CTL_API_VERSION);
	ret = vm_kvm_available(err, sizeof(err));
	json_object_set_new(k, "available", json_boolean(ret == 0));
	if (ret < 0)
		set_str(k, "error", err[0] ? err : strerror(-ret));
	json_object_set_new(r, "kvm", k);
	set_str(r, "control", a->control_path);
	json_object_set_new(r, "tls_dir", a->tls_dir ? json_string(a->tls_dir) : json_null());
	json_object_set_new(r, "state_dir", a->state_dir ? json_string(a->state_dir) : json_null());
	set_u64(r, "max_vms", REGISTRY_MAX_VMS);
	set_u64(r, "pid", (uint64_t)getpid());
	json_object_set_new(r, "config", a->config_path ? json_string(a->config_path) : json_null());
	/* the limits, what runs against them, and the room for guests */
	{
		json_t *l = agent_limits_json(a);

		if (!l) {
			json_decref(r);
			return NULL;
		}
		merge(r, l);
	}
	/* the first --listen as before; every one in listens / migrate_uris */
	if (a->nlisten) {
		json_t *ls = json_array(), *us = json_array();

		set_str(r, "listen", a->ml_addr[0]);
		if (a->ml_uri[0][0])
			set_str(r, "migrate_uri", a->ml_uri[0]);
		else
			json_object_set_new(r, "migrate_uri", json_null());
		for (unsigned i = 0; i < a->nlisten; i++) {
			json_array_append_new(ls, json_string(a->ml_addr[i]));
			json_array_append_new(us, a->ml_uri[i][0] ? json_string(a->ml_uri[i])
								 : json_null());
		}
		json_object_set_new(r, "listens", ls);
		json_object_set_new(r, "migrate_uris", us);
	} else {
		json_object_set_new(r, "listen", json_null());
		json_object_set_new(r, "migrate_uri", json_null());
		json_object_set_new(r, "listens", json_array());
		json_object_set_new(r, "migrate_uris", json_array());
	}
	return r;
}

static json_t *req_start(struct agent *a, json_t *req)
{
	const char *name, *guest, *args, *mac;
	char err[512];
	struct vm_config cfg;
	uint64_t v;
	struct vm *vm;
	int ret;

	if (ctl_get_str(req, "name", true, &name, err, sizeof(err)) < 0 ||
	    registry_check_name(name, err, sizeof(err)) < 0)
		return ctl_response_error("vm.start: %s", err);
	if (registry_find(a->reg, name))
		return ctl_response_error("a VM named '%s' already exists", name);
	if (registry_count(a->reg) >= REGISTRY_MAX_VMS)
		return ctl_response_error("the agent already hosts %d VMs, the most it can",
					  REGISTRY_MAX_VMS);
	vm_config_defaults(&cfg, name);

	ret = ctl_get_u64(req, "mem_bytes", false, &v, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0)
		cfg.mem_bytes = v;
	ret = ctl_get_u64(req, "vcpus", false, &v, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0) {
		if (v == 0 || v > VM_MAX_VCPUS)
			return ctl_response_error("vcpus must be between 1 and %d, not %llu",
						  VM_MAX_VCPUS, (unsigned long long)v);
		cfg.vcpus = (unsigned)v;
	}
	ret = ctl_get_str(req, "guest", false, &guest, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0) {
		if (!guest[0] || strlen(guest) >= sizeof(cfg.guest))
			return ctl_response_error(
				"unknown guest '%s' (guests: idle, seqdirty, randdirty, memcheck)",
				guest);
		snprintf(cfg.guest, sizeof(cfg.guest), "%s", guest);
	}
	ret = ctl_get_str(req, "guest_args", false, &args, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0) {
		if (strlen(args) >= sizeof(cfg.guest_args))
			return ctl_response_error("guest_args longer than %zu bytes",
						  sizeof(cfg.guest_args) - 1);
		snprintf(cfg.guest_args, sizeof(cfg.guest_args), "%s", args);
	}
	ret = ctl_get_str(req, "mac", false, &mac, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0 && ctl_parse_mac(mac, cfg.mac, err, sizeof(err)) < 0)
		return ctl_response_error("%s", err);
	ret = ctl_get_u64(req, "dirty_ring", false, &v, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.start: %s", err);
	if (ret == 0) /* vm_config_check judges the value; an absurd one stays absurd */
		cfg.dirty_ring = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;

	if (vm_config_check(&cfg, err, sizeof(err)) < 0)
		return ctl_response_error("%s", err);
	if (agent_limits_admit_mem(a, name, cfg.mem_bytes, err, sizeof(err)) < 0)
		return ctl_response_error("cannot start VM '%s': %s", name, err);
	ret = vm_kvm_available(err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot start VM '%s': KVM is not available: %s", name,
					  err[0] ? err : strerror(-ret));
	/* kvmigd --cpu-hide: its VMs never see what it says it lacks */
	ret = vm_create_hiding(&cfg, a->cpu_hide, &vm, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot create VM '%s': %s", name,
					  err[0] ? err : strerror(-ret));
	ret = vm_start(vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ctl_response_error("cannot start VM '%s': %s", name, strerror(-ret));
	}
	ret = registry_add(a->reg, vm, REG_ORIGIN_START, NULL);
	if (ret < 0) {
		vm_destroy(vm);
		return ctl_response_error("cannot register VM '%s': %s", name, strerror(-ret));
	}
	jobs_forget(a->jobs, name);
	pr_info("started VM '%s' (%s, %llu MiB, %u vCPU)", name, cfg.guest,
		(unsigned long long)(cfg.mem_bytes >> 20), cfg.vcpus);
	{
		json_t *r = ctl_response_ok();

		merge(r, vm_json(a, registry_find(a->reg, name), true));
		return r;
	}
}

/* The entry named by the request's "name", or NULL with *resp set. */
static struct registry_entry *find_named(struct agent *a, json_t *req, const char *method,
					 json_t **resp)
{
	struct registry_entry *e;
	const char *name;
	char err[512];

	if (ctl_get_str(req, "name", true, &name, err, sizeof(err)) < 0) {
		*resp = ctl_response_error("%s: %s", method, err);
		return NULL;
	}
	e = registry_find(a->reg, name);
	if (!e)
		*resp = no_vm(name);
	return e;
}

/* A job or an incoming stream owns the VM: refuse what would touch it. */
static json_t *busy(struct agent *a, const struct registry_entry *e)
{
	return ctl_response_error("VM '%s' is busy (%s)", e->name, entry_state(a, e));
}

static json_t *req_stop(struct agent *a, json_t *req)
{
	json_t *r = NULL, *stats;
	struct registry_entry *e = find_named(a, req, "vm.stop", &r);
	char name[VM_NAME_MAX];
	struct vm *vm;

	if (!e)
		return r;
	if (e->phase == REG_PHASE_POSTCOPY && e->pc) {
		/* a post-copy whose source is gone: only the user can give it up */
		struct pcdest_stats ps;

		pcdest_get_stats(e->pc, &ps);
		if (ps.link_up)
			return ctl_response_error("VM '%s' is receiving its memory (post-copy, %llu "
						  "pages to come): cancel the job at the source, or "
						  "wait",
						  e->name, (unsigned long long)ps.pages_missing);
		pcdest_abandon(e->pc);
		pr_warn("VM '%s': post-copy given up by vm.stop with %llu pages missing", e->name,
			(unsigned long long)ps.pages_missing);
		r = ctl_response_ok();
		set_str(r, "name", e->name);
		json_object_set_new(r, "pages_lost", json_integer((json_int_t)ps.pages_missing));
		return r;
	}
	if (e->phase != REG_PHASE_NONE)
		return busy(a, e);
	snprintf(name, sizeof(name), "%s", e->name);
	stats = guest_stats_json(e->vm);
	vm = registry_remove(a->reg, name);
	vm_destroy(vm);
	pr_info("stopped VM '%s'", name);
	r = ctl_response_ok();
	set_str(r, "name", name);
	json_object_set_new(r, "guest_stats", stats);
	return r;
}

/*
 * The run state a vm.pause or vm.resume may act on, or an error response:
 * busy while a job or an incoming stream owns the VM, and a VM whose guest
 * stopped for good can be neither paused nor resumed. want is the state
 * the request leaves (VM_RUN_PAUSED or VM_RUN_RUNNING); being in it
 * already is an error too, so that a script learns it did nothing.
 */
static json_t *check_pause_resume(struct agent *a, const struct registry_entry *e,
				   enum vm_run_state want)
{
	if (e->phase != REG_PHASE_NONE)
		return busy(a, e);
	switch (vm_get_run_state(e->vm)) {
	case VM_RUN_RUNNING:
		return want == VM_RUN_RUNNING
			       ? ctl_response_error("VM '%s' is already running", e->name)
			       : NULL;
	case VM_RUN_CREATED:
	case VM_RUN_PAUSED:
		return want == VM_RUN_PAUSED
			       ? ctl_response_error("VM '%s' is already paused", e->name)
			       : NULL;
	case VM_RUN_STOPPED:
		break;
	}
	return ctl_response_error("cannot %s VM '%s': its guest stopped for good (vm stop "
				  "removes it)",
				  want == VM_RUN_PAUSED ? "pause" : "resume", e->name);
}

/*
 * incoming.adopt: `kvmigd --incoming stdio` (run by sshd for kvmig migrate
 * --ssh-exec) hands over its stdin and stdout (SCM_RIGHTS) and the agent
 * runs the migration arriving on them as if its listener had accepted it.
 */
static json_t *req_adopt(struct agent *a, json_t *req)
{
	const char *peer = "kvmigd --incoming stdio";
	struct channel *ch;
	char err[256], desc[300];
	int rfd, wfd, notify, ret;

	if (ctl_get_str(req, "peer", false, &peer, err, sizeof(err)) < 0)
		return ctl_response_error("incoming.adopt: %s", err);
	if (!a->req_nfds || *a->req_nfds == 0)
		return ctl_response_error("incoming.adopt: no file descriptors came with the "
					  "request (send the stream's read and write ends with "
					  "SCM_RIGHTS)");
	if (a->closing)
		return ctl_response_error("incoming.adopt: the agent is shutting down");
	/* ours now: one fd is a socket used both ways, two are read and write ends */
	rfd = a->req_fds[0];
	wfd = *a->req_nfds > 1 ? a->req_fds[1] : a->req_fds[0];
	*a->req_nfds = 0;
	ret = channel_pipe_open(rfd, wfd, AGENT_INCOMING_IO_TIMEOUT_MS, &ch);
	if (ret < 0)
		return ctl_response_error("incoming.adopt: %s", strerror(-ret));
	snprintf(desc, sizeof(desc), "stdio of %.200s", peer);
	/* the requester hears on this connection when the stream ends */
	notify = fcntl(a->req_conn_fd, F_DUPFD_CLOEXEC, 0);
	ret = agent_incoming_start(a, ch, desc, notify, err, sizeof(err));
	if (ret < 0) {
		if (notify >= 0)
			close(notify);
		return ctl_response_error("incoming.adopt: %s", err);
	}
	pr_info("incoming migration on the stdio of %s", peer);
	return ctl_response_ok();
}

static json_t *req_pause(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.pause", &r);
	uint64_t latency_ns = 0;
	int ret;

	if (!e)
		return r;
	r = check_pause_resume(a, e, VM_RUN_PAUSED);
	if (r)
		return r;
	ret = vm_pause(e->vm, &latency_ns);
	if (ret < 0)
		return ctl_response_error("cannot pause VM '%s': %s", e->name, strerror(-ret));
	pr_info("paused VM '%s' (in %llu us)", e->name, (unsigned long long)(latency_ns / 1000));
	r = ctl_response_ok();
	merge(r, vm_json(a, e, true));
	return r;
}

static json_t *req_resume(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.resume", &r);
	int ret;

	if (!e)
		return r;
	r = check_pause_resume(a, e, VM_RUN_RUNNING);
	if (r)
		return r;
	ret = vm_resume(e->vm);
	if (ret < 0)
		return ctl_response_error("cannot resume VM '%s': %s", e->name, strerror(-ret));
	pr_info("resumed VM '%s'", e->name);
	r = ctl_response_ok();
	merge(r, vm_json(a, e, true));
	return r;
}

static json_t *req_list(struct agent *a, json_t *req)
{
	json_t *r = ctl_response_ok(), *arr = json_array();

	(void)req;
	for (size_t i = 0; i < registry_count(a->reg); i++)
		json_array_append_new(arr, vm_json(a, registry_at(a->reg, i), false));
	json_object_set_new(r, "vms", arr);
	return r;
}

static json_t *req_info(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.info", &r);

	if (!e)
		return r;
	r = ctl_response_ok();
	merge(r, vm_json(a, e, true));
	return r;
}

static json_t *req_console(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.console", &r);
	char *buf;
	size_t n;

	if (!e)
		return r;
	if (e->phase == REG_PHASE_INCOMING)
		return busy(a, e);
	buf = malloc(VM_CONSOLE_BYTES + 1);
	if (!buf)
		return ctl_response_error("out of memory");
	n = vm_console_read(e->vm, buf, VM_CONSOLE_BYTES + 1);
	r = ctl_response_ok();
	set_str(r, "name", e->name);
	json_object_set_new(r, "console", ctl_string_lossy(buf, n));
	set_u64(r, "bytes", n);
	free(buf);
	return r;
}

static json_t *req_save(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.save", &r);
	struct snapshot_stats st = {0};
	const char *path, *compress = NULL;
	char err[512] = "";
	int ret;

	if (!e)
		return r;
	if (ctl_get_str(req, "path", true, &path, err, sizeof(err)) < 0)
		return ctl_response_error("vm.save: %s", err);
	if (!path[0])
		return ctl_response_error("vm.save: field 'path' is empty");
	if (ctl_get_str(req, "compress", false, &compress, err, sizeof(err)) < 0)
		return ctl_response_error("vm.save: %s", err);
	if (e->phase != REG_PHASE_NONE)
		return busy(a, e);
	ret = snapshot_save_compressed(e->vm, path, compress, &st, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot save VM '%s' to %s: %s", e->name, path,
					  err[0] ? err : strerror(-ret));
	pr_info("saved VM '%s' to %s (%llu bytes, paused %llu us)", e->name, path,
		(unsigned long long)st.file_bytes, (unsigned long long)(st.pause_ns / 1000));
	r = ctl_response_ok();
	set_str(r, "name", e->name);
	set_str(r, "path", path);
	set_u64(r, "file_bytes", st.file_bytes);
	set_u64(r, "ram_pages", st.ram_pages);
	set_u64(r, "zero_pages", st.zero_pages);
	set_ms(r, "pause_ms", st.pause_ns);
	set_ms(r, "elapsed_ms", st.elapsed_ns);
	set_u64(r, "pause_us", st.pause_ns / 1000);
	set_u64(r, "elapsed_us", st.elapsed_ns / 1000);
	return r;
}

static json_t *req_restore(struct agent *a, json_t *req)
{
	struct snapshot_stats st = {0};
	const char *path, *name = NULL;
	char err[512] = "";
	char vname[VM_NAME_MAX];
	struct vm *vm = NULL;
	json_t *r;
	int ret;

	if (ctl_get_str(req, "path", true, &path, err, sizeof(err)) < 0)
		return ctl_response_error("vm.restore: %s", err);
	if (!path[0])
		return ctl_response_error("vm.restore: field 'path' is empty");
	ret = ctl_get_str(req, "name", false, &name, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("vm.restore: %s", err);
	if (ret == 1)
		name = NULL;
	if (name) {
		if (registry_check_name(name, err, sizeof(err)) < 0)
			return ctl_response_error("vm.restore: %s", err);
		if (registry_find(a->reg, name))
			return ctl_response_error("a VM named '%s' already exists", name);
	}
	if (registry_count(a->reg) >= REGISTRY_MAX_VMS)
		return ctl_response_error("the agent already hosts %d VMs, the most it can",
					  REGISTRY_MAX_VMS);
	ret = snapshot_restore(path, name, &vm, &st, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot restore from %s: %s", path,
					  err[0] ? err : strerror(-ret));
	snprintf(vname, sizeof(vname), "%s", vm_get_config(vm)->name);
	if (agent_limits_admit_mem(a, vname, vm_get_config(vm)->mem_bytes, err, sizeof(err)) < 0) {
		vm_destroy(vm);
		return ctl_response_error("cannot restore from %s: %s", path, err);
	}
	if (registry_find(a->reg, vname)) {
		vm_destroy(vm);
		return ctl_response_error("a VM named '%s' already exists; restore it under "
					  "another name (field 'name', kvmig vm restore --name)",
					  vname);
	}
	/* a VM saved while paused is restored paused (vm resume starts it) */
	ret = st.paused ? 0 : vm_start(vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ctl_response_error("cannot start restored VM '%s': %s", vname,
					  strerror(-ret));
	}
	ret = registry_add(a->reg, vm, REG_ORIGIN_RESTORE, path);
	if (ret < 0) {
		vm_destroy(vm);
		return ctl_response_error("cannot register VM '%s': %s", vname, strerror(-ret));
	}
	jobs_forget(a->jobs, vname);
	pr_info("restored VM '%s' from %s%s", vname, path, st.paused ? " (paused, as saved)" : "");
	r = ctl_response_ok();
	merge(r, vm_json(a, registry_find(a->reg, vname), true));
	set_str(r, "path", path);
	set_u64(r, "file_bytes", st.file_bytes);
	set_u64(r, "ram_pages", st.ram_pages);
	set_u64(r, "zero_pages", st.zero_pages);
	set_ms(r, "elapsed_ms", st.elapsed_ns);
	set_u64(r, "elapsed_us", st.elapsed_ns / 1000);
	return r;
}

/* ---- migration, the source side ---- */

/*
 * An optional integer field within its migrate_limit (migrate/opts.h).
 * Return: 0 (set *out), 1 (absent), or -EINVAL with a message in err.
 */
static int opt_u64(json_t *req, enum migrate_opt opt, uint64_t *out, char *err, size_t errlen)
{
	const struct migrate_limit *l = migrate_limit(opt);
	uint64_t v;
	int ret = ctl_get_u64(req, l->field, false, &v, err, errlen);

	if (ret != 0)
		return ret;
	ret = migrate_opt_check(opt, v, err, errlen);
	if (ret < 0)
		return ret;
	*out = v;
	return 0;
}

/*
 * The RARP announce fields of migrate.start: announce (an interface name at
 * the destination), announce_rounds, announce_initial_ms, announce_step_ms,
 * announce_max_ms (ranges: migrate/announce.h, checked with the rest by
 * migrate_opts_check). Return: 0 or -EINVAL with err.
 */
static int announce_opts_from(json_t *req, struct migrate_opts *o, char *err, size_t errlen)
{
	static const char *const f[] = { "announce_rounds", "announce_initial_ms",
					 "announce_step_ms", "announce_max_ms" };
	unsigned *dst[] = { &o->announce_rounds, &o->announce_initial_ms, &o->announce_step_ms,
			    &o->announce_max_ms };
	const char *s;
	uint64_t v;
	int ret;

	if ((ret = ctl_get_str(req, "announce", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0) {
		if (!s[0] || strlen(s) >= sizeof(o->announce)) {
			snprintf(err, errlen, "field 'announce' must be an interface name of 1 to %zu "
				 "bytes", sizeof(o->announce) - 1);
			return -EINVAL;
		}
		snprintf(o->announce, sizeof(o->announce), "%s", s);
	}
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		if ((ret = ctl_get_u64(req, f[k], false, &v, err, errlen)) < 0)
			return ret;
		if (ret == 0 && v > ANNOUNCE_MAX_ROUNDS * (uint64_t)ANNOUNCE_MAX_MS) {
			snprintf(err, errlen, "field '%s' is out of range: %llu", f[k],
				 (unsigned long long)v);
			return -EINVAL;
		}
		if (ret == 0)
			*dst[k] = (unsigned)v;
	}
	return 0;
}

/*
 * migrate.start's "postcopy": a mode name (off, auto, now, manual) or a
 * boolean (true = auto, false = off), and "postcopy_reconnect_ms".
 * Return: 0 or -EINVAL with err.
 */
static int postcopy_opts_from(json_t *req, struct migrate_opts *o, char *err, size_t errlen)
{
	static const char allowed[] = "off, auto, now or manual (or true = auto, false = off)";
	const json_t *v = json_object_get(req, "postcopy");
	uint64_t ms;
	int ret;

	if (json_is_boolean(v)) {
		o->postcopy = json_is_true(v) ? MIGRATE_POSTCOPY_AUTO : MIGRATE_POSTCOPY_OFF;
	} else if (json_is_string(v)) {
		if (migrate_postcopy_parse(json_string_value(v), &o->postcopy) < 0) {
			snprintf(err, errlen, "field 'postcopy' must be %s, not '%.40s'", allowed,
				 json_string_value(v));
			return -EINVAL;
		}
	} else if (v) {
		snprintf(err, errlen, "field 'postcopy' must be %s, got %s", allowed,
			 json_is_null(v)	? "null"
			 : json_is_number(v) ? "a number"
			 : json_is_array(v)  ? "an array"
					      : "an object");
		return -EINVAL;
	}
	if ((ret = opt_u64(req, MIGRATE_OPT_POSTCOPY_RECONNECT, &ms, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->postcopy_reconnect_ms = ms;
	return 0;
}

/* The job options of a migrate.start request. Return: 0 or -EINVAL with err. */
static int migrate_opts_from(json_t *req, struct migrate_opts *o, char *err, size_t errlen)
{
	const char *s;
	uint64_t v;
	bool b;
	int ret;

	migrate_opts_defaults(o);
	if ((ret = opt_u64(req, MIGRATE_OPT_MAX_DOWNTIME, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->max_downtime_ms = v;
	if ((ret = opt_u64(req, MIGRATE_OPT_BANDWIDTH, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->bandwidth = v;
	if ((ret = opt_u64(req, MIGRATE_OPT_XBZRLE_CACHE, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->xbzrle_cache_bytes = (size_t)v;
	if ((ret = ctl_get_str(req, "compress", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0) {
		if (strlen(s) >= sizeof(o->compress)) {
			snprintf(err, errlen, "unknown compression '%.40s...'", s);
			return -EINVAL;
		}
		snprintf(o->compress, sizeof(o->compress), "%s", s);
	}
	if ((ret = opt_u64(req, MIGRATE_OPT_PARALLEL, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->parallel = (unsigned)v;
	if ((ret = ctl_get_bool(req, "auto_converge", false, &b, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->auto_converge = b;
	if ((ret = opt_u64(req, MIGRATE_OPT_MAX_ITERATIONS, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->max_iterations = (unsigned)v;
	if ((ret = opt_u64(req, MIGRATE_OPT_TIMEOUT, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->timeout_ms = v;
	if ((ret = ctl_get_bool(req, "verify", false, &b, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->verify = b;
	if ((ret = ctl_get_bool(req, "strict_cpu", false, &b, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->strict_cpu = b;
	if ((ret = ctl_get_str(req, "dirty_track", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0 && dirtylog_backend_by_name(s, &o->dirty_track) < 0) {
		snprintf(err, errlen, "unknown dirty tracking '%.40s' (bitmap, ring)", s);
		return -EINVAL;
	}
	if ((ret = ctl_get_str(req, "tls_dir", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0) {
		if (!s[0] || strlen(s) >= sizeof(o->tls_dir)) {
			snprintf(err, errlen, "field 'tls_dir' must be a directory of 1 to %zu bytes",
				 sizeof(o->tls_dir) - 1);
			return -EINVAL;
		}
		snprintf(o->tls_dir, sizeof(o->tls_dir), "%s", s);
	}
	if ((ret = ctl_get_bool(req, "ssh_accept_new", false, &b, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->ssh_accept_new = b;
	if ((ret = opt_u64(req, MIGRATE_OPT_SSH_AGENT_PORT, &v, err, errlen)) < 0)
		return ret;
	if (ret == 0)
		o->ssh_agent_port = (unsigned)v;
	if ((ret = ctl_get_str(req, "ssh_exec", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0) {
		if (strlen(s) >= sizeof(o->ssh_exec)) {
			snprintf(err, errlen, "field 'ssh_exec' is longer than %zu bytes",
				 sizeof(o->ssh_exec) - 1);
			return -EINVAL;
		}
		snprintf(o->ssh_exec, sizeof(o->ssh_exec), "%s", s);
	}
	if ((ret = ctl_get_str(req, "ssh_data", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0) {
		if (strcmp(s, "ssh") && strcmp(s, "tls")) {
			snprintf(err, errlen, "field 'ssh_data' must be ssh or tls, not '%.40s'", s);
			return -EINVAL;
		}
		o->ssh_data_tls = !strcmp(s, "tls");
	}
	if ((ret = announce_opts_from(req, o, err, errlen)) < 0)
		return ret;
	if ((ret = postcopy_opts_from(req, o, err, errlen)) < 0)
		return ret;
	/* the same check migrate_start makes, before the VM is looked at */
	return migrate_opts_check(o, err, errlen);
}

/*
 * Every field is checked before the VM is looked at, so a bad request is
 * answered the same whatever the agent hosts.
 */
static json_t *req_migrate_start(struct agent *a, json_t *req)
{
	struct registry_entry *e;
	struct migrate_job *job = NULL;
	struct migrate_opts o;
	struct migrate_stats st;
	const char *name, *uri;
	char err[512] = "";
	json_t *r;
	int ret;

	if (ctl_get_str(req, "name", true, &name, err, sizeof(err)) < 0)
		return ctl_response_error("migrate.start: %s", err);
	if (ctl_get_str(req, "uri", true, &uri, err, sizeof(err)) < 0)
		return ctl_response_error("migrate.start: %s", err);
	if (!uri[0])
		return ctl_response_error("migrate.start: field 'uri' is empty");
	if (strlen(uri) >= JOBS_URI_MAX)
		return ctl_response_error("migrate.start: field 'uri' is longer than %d bytes",
					  JOBS_URI_MAX - 1);
	if (migrate_opts_from(req, &o, err, sizeof(err)) < 0)
		return ctl_response_error("migrate.start: %s", err);
	/* the agent's credentials unless the request names others */
	if (!o.tls_dir[0] && a->tls_dir)
		snprintf(o.tls_dir, sizeof(o.tls_dir), "%s", a->tls_dir);
	e = registry_find(a->reg, name);
	if (!e)
		return no_vm(name);
	if (e->phase != REG_PHASE_NONE)
		return busy(a, e);
	if (o.dirty_track == DIRTYLOG_RING && !vm_get_config(e->vm)->dirty_ring)
		return ctl_response_error(
			"cannot migrate VM '%s' with dirty ring tracking: it was started without "
			"a dirty ring (vm start --dirty-ring ENTRIES)",
			e->name);
	if (agent_limits_admit_outgoing(a, err, sizeof(err)) < 0)
		return ctl_response_error("cannot migrate VM '%s': %s", e->name, err);
	/* connects (bounded by the engine's handshake timeout) before it returns */
	ret = migrate_start(e->vm, uri, &o, &job, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot migrate VM '%s': %s", e->name,
					  err[0] ? err : strerror(-ret));
	ret = jobs_add(a->jobs, e->name, uri, job);
	if (ret < 0) {
		migrate_cancel(job);
		if (migrate_wait(job) == 0)
			pr_err("VM '%s' left by a job nobody tracks", e->name);
		migrate_job_free(job);
		return ctl_response_error("cannot migrate VM '%s': %s", e->name,
					  ret == -EBUSY ? "a job already runs on it"
							: "too many migration jobs");
	}
	e->phase = REG_PHASE_MIGRATING;
	/* the budget is split anew: this job's cap, and the others' shrink */
	agent_limits_share(a);
	pr_info("migrating VM '%s' to %s (compress %s, xbzrle %zu bytes, bandwidth %llu B/s, "
		"max downtime %llu ms, %s tracking%s%s%s%s)",
		e->name, uri, o.compress, o.xbzrle_cache_bytes, (unsigned long long)o.bandwidth,
		(unsigned long long)o.max_downtime_ms, dirtylog_backend_name(o.dirty_track),
		o.auto_converge ? ", auto-converge" : "", o.verify ? ", verify" : "",
		o.postcopy != MIGRATE_POSTCOPY_OFF ? ", post-copy " : "",
		o.postcopy != MIGRATE_POSTCOPY_OFF ? migrate_postcopy_name(o.postcopy) : "");
	migrate_get_stats(job, &st);
	r = ctl_response_ok();
	set_str(r, "name", e->name);
	set_str(r, "uri", uri);
	set_str(r, "status", st.status[0] ? st.status : "setup");
	return r;
}

/* The name field of a job request, or NULL with *resp set. */
static const char *job_name(json_t *req, const char *method, json_t **resp)
{
	const char *name;
	char err[512];

	if (ctl_get_str(req, "name", true, &name, err, sizeof(err)) < 0) {
		*resp = ctl_response_error("%s: %s", method, err);
		return NULL;
	}
	return name;
}

static json_t *no_job(struct agent *a, const char *name)
{
	return ctl_response_error("no migration job for '%s'%s", name,
				  registry_find(a->reg, name)
					  ? " (the VM has not been migrated from this agent)"
					  : "");
}

static json_t *req_job_info(struct agent *a, json_t *req)
{
	json_t *r = NULL, *o;
	const char *name = job_name(req, "job.info", &r);
	struct migrate_stats st;
	char uri[JOBS_URI_MAX];

	if (!name)
		return r;
	if (jobs_get(a->jobs, name, &st, uri, NULL) < 0)
		return no_job(a, name);
	o = jobs_stats_json(name, uri, &st);
	if (!o)
		return NULL;
	r = ctl_response_ok();
	merge(r, o);
	return r;
}

static json_t *req_job_cancel(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	const char *name = job_name(req, "job.cancel", &r);
	struct migrate_job *job;
	struct migrate_stats st;

	if (!name)
		return r;
	job = jobs_running(a->jobs, name);
	if (!job) {
		if (jobs_get(a->jobs, name, &st, NULL, NULL) == 0)
			return ctl_response_error("the migration of '%s' already ended (%s)", name,
						  st.status);
		return no_job(a, name);
	}
	migrate_cancel(job);
	pr_info("cancelling the migration of VM '%s'", name);
	r = ctl_response_ok();
	set_str(r, "name", name);
	set_str(r, "status", "cancelling");
	return r;
}

/*
 * The running job of a job.* request, or NULL with *resp set: no job, or
 * one that already ended (as job.cancel answers).
 */
static struct migrate_job *running_job(struct agent *a, const char *name, json_t **resp)
{
	struct migrate_job *job = jobs_running(a->jobs, name);
	struct migrate_stats st;

	if (job)
		return job;
	if (jobs_get(a->jobs, name, &st, NULL, NULL) == 0)
		*resp = ctl_response_error("the migration of '%s' already ended (%s)", name,
					   st.status);
	else
		*resp = no_job(a, name);
	return NULL;
}

/* job.postcopy: switch a running pre-copy job to post-copy (`kvmig job postcopy`). */
static json_t *req_job_postcopy(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	const char *name = job_name(req, "job.postcopy", &r);
	struct migrate_job *job;
	char err[512] = "";
	int ret;

	if (!name || !(job = running_job(a, name, &r)))
		return r;
	ret = migrate_postcopy(job, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot switch the migration of '%s' to post-copy: %s",
					  name, err[0] ? err : strerror(-ret));
	pr_info("switching the migration of VM '%s' to post-copy", name);
	r = ctl_response_ok();
	set_str(r, "name", name);
	set_str(r, "status", "switching");
	return r;
}

/*
 * job.resume: reconnect a post-copy whose link broke (`kvmig job resume
 * NAME [--to URI]`), to uri or where it went first.
 */
static json_t *req_job_resume(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	const char *name = job_name(req, "job.resume", &r), *uri = NULL;
	struct migrate_job *job;
	struct migrate_stats st;
	char err[512] = "", cur[JOBS_URI_MAX];
	int ret;

	if (!name)
		return r;
	if (ctl_get_str(req, "uri", false, &uri, err, sizeof(err)) < 0)
		return ctl_response_error("job.resume: %s", err);
	if (uri && strlen(uri) >= JOBS_URI_MAX)
		return ctl_response_error("job.resume: field 'uri' is longer than %d bytes",
					  JOBS_URI_MAX - 1);
	if (!(job = running_job(a, name, &r)))
		return r;
	ret = migrate_resume(job, uri && uri[0] ? uri : NULL, err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot resume the migration of '%s': %s", name,
					  err[0] ? err : strerror(-ret));
	if (uri && uri[0] && jobs_set_uri(a->jobs, name, uri) < 0)
		pr_warn("the job of '%s' is not in the table any more", name);
	if (jobs_get(a->jobs, name, &st, cur, NULL) < 0)
		snprintf(cur, sizeof(cur), "%s", uri ? uri : "");
	pr_info("resuming the migration of VM '%s' to %s", name, cur);
	r = ctl_response_ok();
	set_str(r, "name", name);
	set_str(r, "uri", cur);
	set_str(r, "status", "resuming");
	return r;
}

/* A job ended (called by jobs_reap/jobs_shutdown under the lock). */
void agent_api_job_done(void *ctx, const char *name, int result, const struct migrate_stats *st)
{
	struct agent *a = ctx;
	struct registry_entry *e = registry_find(a->reg, name);

	if (!e) {
		pr_err("the migration job of '%s' ended but the VM is gone", name);
		return;
	}
	if (result == 0) {
		/* the destination runs it; ours is paused and no longer needed */
		vm_destroy(registry_remove(a->reg, name));
		agent_limits_share(a);	/* one job fewer shares the budget */
		pr_info("migrated VM '%s' away: %llu ms, downtime %llu ms, %llu bytes sent%s", name,
			(unsigned long long)st->total_ms, (unsigned long long)st->downtime_ms,
			(unsigned long long)st->transferred_bytes,
			st->verified ? ", RAM digest verified" : "");
		return;
	}
	e->phase = REG_PHASE_NONE;
	agent_limits_share(a);
	pr_warn("migration of VM '%s' %s after %llu ms: %s; %s", name, st->status,
		(unsigned long long)st->total_ms, st->error[0] ? st->error : "unknown error",
		vm_get_run_state(e->vm) == VM_RUN_RUNNING
			? "it runs on here"
			: "it stays here, paused (kvmig vm resume, once you know the destination "
			  "does not run it)");
}

struct method {
	const char *name;
	json_t *(*fn)(struct agent *a, json_t *req);
	const char *const *keys; /* fields besides "method" and "id" */
};

static const char *const k_none[] = {NULL};
static const char *const k_name[] = {"name", NULL};
static const char *const k_peer[] = {"peer", NULL};
static const char *const k_save[] = {"name", "path", "compress", NULL};
static const char *const k_restore[] = {"path", "name", NULL};
static const char *const k_start[] = {"name",	    "mem_bytes", "vcpus",      "guest",
				      "guest_args", "mac",	 "dirty_ring", NULL};
static const char *const k_migrate[] = {"name",
					"uri",
					"max_downtime_ms",
					"bandwidth",
					"xbzrle_cache_bytes",
					"compress",
					"parallel",
					"auto_converge",
					"max_iterations",
					"timeout_ms",
					"verify",
					"strict_cpu",
					"dirty_track",
					"tls_dir",
					"ssh_accept_new",
					"ssh_agent_port",
					"ssh_exec",
					"ssh_data",
					"announce",
					"announce_rounds",
					"announce_initial_ms",
					"announce_step_ms",
					"announce_max_ms",
					"postcopy",
					"postcopy_reconnect_ms",
					NULL};
static const char *const k_resume[] = {"name", "uri", NULL};
static const char *const k_events[] = {"vm", NULL};

static const struct method methods[] = {
	{"agent.ping", req_ping, k_none},	{"agent.version", req_version, k_none},
	{"vm.start", req_start, k_start},	{"vm.stop", req_stop, k_name},
	{"vm.list", req_list, k_none},		{"vm.info", req_info, k_name},
	{"vm.console", req_console, k_name},	{"vm.save", req_save, k_save},
	{"vm.restore", req_restore, k_restore}, {"migrate.start", req_migrate_start, k_migrate},
	{"job.info", req_job_info, k_name},	{"job.cancel", req_job_cancel, k_name},
	{"vm.pause", req_pause, k_name},	{"vm.resume", req_resume, k_name},
	{"incoming.adopt", req_adopt, k_peer},	{"job.postcopy", req_job_postcopy, k_name},
	{"job.resume", req_job_resume, k_resume},
	{"events.subscribe", req_events_subscribe, k_events},
};

json_t *agent_api_handle_request(struct agent *a, const char *line, size_t len)
{
	const struct method *m = NULL;
	const char *mname;
	char err[512];
	json_t *req, *resp, *id;

	a->requests++;
	/* jobs that ended are reaped first, so every answer sees their outcome */
	jobs_reap(a->jobs, agent_api_job_done, a);
	if (ctl_parse_object(line, len, &req, err, sizeof(err)) < 0)
		return ctl_response_error("bad request: %s", err);
	if (ctl_get_str(req, "method", true, &mname, err, sizeof(err)) < 0) {
		resp = ctl_response_error("bad request: %s", err);
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (!strcmp(methods[i].name, mname))
			m = &methods[i];
	if (!m) {
		resp = ctl_response_error("unknown method '%s'", mname);
		goto out;
	}
	if (ctl_check_keys(req, m->keys, err, sizeof(err)) < 0) {
		resp = ctl_response_error("%s: %s", mname, err);
		goto out;
	}
	resp = m->fn(a, req);
out:
	if (!resp)
		resp = ctl_response_error("out of memory");
	id = json_object_get(req, "id");
	if (resp && id)
		json_object_set(resp, "id", id);
	if (resp && json_is_false(json_object_get(resp, "ok")))
		pr_debug("request %.200s failed: %s", line,
			 json_string_value(json_object_get(resp, "error")));
	else
		pr_debug("request %.200s ok", line);
	json_decref(req);
	return resp;
}
