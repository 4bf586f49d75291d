/* SPDX-License-Identifier: MIT */
/*
 * kvmigd - the kvmig agent: hosts named VMs, serves the control API
 * (tools/API.md) on a unix socket, one JSON object per line, migrates VMs
 * out (migrate.start) and takes migrations in (--listen).
 *
 * Threads:
 *  - the controller runs an epoll loop over the control socket, its
 *    clients, the migration listener, a signalfd for SIGTERM/SIGINT and an
 *    eventfd the other threads use to wake it. Requests are served one at
 *    a time in arrival order: a long request (vm.save of a big VM) delays
 *    the others, whose bytes wait in their sockets, but each connection has
 *    its own input and output buffer, so replies never mix. Output is
 *    written without blocking; a client that does not read its replies
 *    only stalls itself.
 *  - each outgoing migration runs on its job thread (migrate/migrate.h),
 *    which alone touches its VM while the entry's phase is "migrating".
 *    The loop wakes every JOB_POLL_MS while jobs run, reaps those that
 *    ended, destroys the source VM of a completed one and hands a failed
 *    one back to "running".
 *  - each accepted migration connection gets a thread that runs the
 *    incoming decoder (migrate/incoming.h) and starts the VM it builds.
 *  - the VMs' vCPU threads run on their own and never touch the agent.
 *
 * Locking: agent.lock guards the registry, the job table and `closing`.
 * The controller holds it while it serves a request and while it reaps;
 * an incoming thread holds it only for a moment to reserve, attach or drop
 * its VM's name, never across the stream. An entry whose phase is not
 * REG_PHASE_NONE belongs to another thread: the controller reads only its
 * name, state and atomic counters.
 */
#define LOG_PREFIX "kvmigd: "
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "dirtylog/dirtylog.h"
#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "migrate/snapshot.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/uri.h"
#include "tools/control.h"
#include "tools/jobs.h"
#include "tools/registry.h"
#include "vm/vm.h"

#define MAX_CONNS    64
#define MAX_INCOMING 16	  /* migration streams arriving at once */
#define JOB_POLL_MS  100  /* how often the loop looks at running jobs */
#define LINGER_MS    2000 /* a refused stream's input is drained this long */
#define INCOMING_IO_TIMEOUT_MS 30000 /* a silent source fails its stream (the channel's I/O timeout) */
#define EV_LISTEN    0
#define EV_SIGNAL    1
#define EV_MIGLISTEN 2
#define EV_WAKE	     3
#define EV_CONN0     4

struct conn {
	int fd;
	unsigned slot;
	struct ctl_linebuf in;
	char *out;
	size_t out_len, out_off, out_cap;
	bool eof;  /* the client shut down its side */
	bool dead; /* write error: close without further work */
};

struct agent;

/* One accepted migration connection and the thread that receives it. */
struct inconn {
	struct agent *a;
	struct channel *ch; /* the connection; the thread's mio owns and closes it */
	int shut_fd;	    /* a duplicate of its socket the controller may shutdown() */
	pthread_t thread;
	_Atomic bool done;
	char peer[384];
	char name[VM_NAME_MAX]; /* the reserved name, "" until HELLO reserved it */
};

struct agent {
	const char *control_path;
	const char *listen_uri;
	const char *tls_dir;
	const char *state_dir;
	int lfd, sfd, epfd, wakefd;
	dev_t sock_dev;
	ino_t sock_ino;
	struct conn *conns[MAX_CONNS];
	/* the migration listener (protocol/channel.h); NULL without --listen */
	struct channel_listener *ml;
	char ml_addr[URI_HOST_MAX + 64]; /* what it listens on: "tcp:127.0.0.1:40213", "unix:m.sock" */
	char ml_uri[URI_HOST_MAX + 64];	 /* the URI a source migrates to: "tcp://127.0.0.1:40213" */
	struct inconn *inc[MAX_INCOMING];
	uint64_t start_ns;
	uint64_t requests;
	bool quit;

	pthread_mutex_t lock;
	struct registry *reg; /* under lock */
	struct jobs *jobs;    /* under lock */
	bool closing;	      /* under lock: refuse new incoming VMs */
};

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
 * The vm.list entry (full == false) or the vm.info object (full). An entry
 * another thread owns (phase != NONE) is described without touching the
 * VM's non-atomic state: an incoming one by what HELLO announced, a
 * migrating one without its pause statistics (the job pauses it).
 */
static json_t *vm_json(const struct registry_entry *e, bool full)
{
	const struct vm_config *cfg;
	char mac[CTL_MAC_STRLEN];
	json_t *o = json_object();

	set_str(o, "name", e->name);
	set_str(o, "state", registry_state_name(e));
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
	if (a->ml) {
		set_str(r, "listen", a->ml_addr);
		if (a->ml_uri[0])
			set_str(r, "migrate_uri", a->ml_uri);
		else
			json_object_set_new(r, "migrate_uri", json_null());
	} else {
		json_object_set_new(r, "listen", json_null());
		json_object_set_new(r, "migrate_uri", json_null());
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
	ret = vm_kvm_available(err, sizeof(err));
	if (ret < 0)
		return ctl_response_error("cannot start VM '%s': KVM is not available: %s", name,
					  err[0] ? err : strerror(-ret));
	ret = vm_create(&cfg, &vm, err, sizeof(err));
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

		merge(r, vm_json(registry_find(a->reg, name), true));
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
static json_t *busy(const struct registry_entry *e)
{
	return ctl_response_error("VM '%s' is busy (%s)", e->name, registry_state_name(e));
}

static json_t *req_stop(struct agent *a, json_t *req)
{
	json_t *r = NULL, *stats;
	struct registry_entry *e = find_named(a, req, "vm.stop", &r);
	char name[VM_NAME_MAX];
	struct vm *vm;

	if (!e)
		return r;
	if (e->phase != REG_PHASE_NONE)
		return busy(e);
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
static json_t *check_pause_resume(const struct registry_entry *e, enum vm_run_state want)
{
	if (e->phase != REG_PHASE_NONE)
		return busy(e);
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

static json_t *req_pause(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.pause", &r);
	uint64_t latency_ns = 0;
	int ret;

	if (!e)
		return r;
	r = check_pause_resume(e, VM_RUN_PAUSED);
	if (r)
		return r;
	ret = vm_pause(e->vm, &latency_ns);
	if (ret < 0)
		return ctl_response_error("cannot pause VM '%s': %s", e->name, strerror(-ret));
	pr_info("paused VM '%s' (in %llu us)", e->name, (unsigned long long)(latency_ns / 1000));
	r = ctl_response_ok();
	merge(r, vm_json(e, true));
	return r;
}

static json_t *req_resume(struct agent *a, json_t *req)
{
	json_t *r = NULL;
	struct registry_entry *e = find_named(a, req, "vm.resume", &r);
	int ret;

	if (!e)
		return r;
	r = check_pause_resume(e, VM_RUN_RUNNING);
	if (r)
		return r;
	ret = vm_resume(e->vm);
	if (ret < 0)
		return ctl_response_error("cannot resume VM '%s': %s", e->name, strerror(-ret));
	pr_info("resumed VM '%s'", e->name);
	r = ctl_response_ok();
	merge(r, vm_json(e, true));
	return r;
}

static json_t *req_list(struct agent *a, json_t *req)
{
	json_t *r = ctl_response_ok(), *arr = json_array();

	(void)req;
	for (size_t i = 0; i < registry_count(a->reg); i++)
		json_array_append_new(arr, vm_json(registry_at(a->reg, i), false));
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
	merge(r, vm_json(e, true));
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
		return busy(e);
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
		return busy(e);
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
	merge(r, vm_json(registry_find(a->reg, vname), true));
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
	if ((ret = ctl_get_str(req, "dirty_track", false, &s, err, errlen)) < 0)
		return ret;
	if (ret == 0 && dirtylog_backend_by_name(s, &o->dirty_track) < 0) {
		snprintf(err, errlen, "unknown dirty tracking '%.40s' (bitmap, ring)", s);
		return -EINVAL;
	}
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
	e = registry_find(a->reg, name);
	if (!e)
		return no_vm(name);
	if (e->phase != REG_PHASE_NONE)
		return busy(e);
	if (o.dirty_track == DIRTYLOG_RING && !vm_get_config(e->vm)->dirty_ring)
		return ctl_response_error(
			"cannot migrate VM '%s' with dirty ring tracking: it was started without "
			"a dirty ring (vm start --dirty-ring ENTRIES)",
			e->name);
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
	pr_info("migrating VM '%s' to %s (compress %s, xbzrle %zu bytes, bandwidth %llu B/s, "
		"max downtime %llu ms, %s tracking%s%s)",
		e->name, uri, o.compress, o.xbzrle_cache_bytes, (unsigned long long)o.bandwidth,
		(unsigned long long)o.max_downtime_ms, dirtylog_backend_name(o.dirty_track),
		o.auto_converge ? ", auto-converge" : "", o.verify ? ", verify" : "");
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

/* A job ended (called by jobs_reap/jobs_shutdown under the lock). */
static void job_done(void *ctx, const char *name, int result, const struct migrate_stats *st)
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
		pr_info("migrated VM '%s' away: %llu ms, downtime %llu ms, %llu bytes sent%s", name,
			(unsigned long long)st->total_ms, (unsigned long long)st->downtime_ms,
			(unsigned long long)st->transferred_bytes,
			st->verified ? ", RAM digest verified" : "");
		return;
	}
	e->phase = REG_PHASE_NONE;
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
					"dirty_track",
					NULL};

static const struct method methods[] = {
	{"agent.ping", req_ping, k_none},	{"agent.version", req_version, k_none},
	{"vm.start", req_start, k_start},	{"vm.stop", req_stop, k_name},
	{"vm.list", req_list, k_none},		{"vm.info", req_info, k_name},
	{"vm.console", req_console, k_name},	{"vm.save", req_save, k_save},
	{"vm.restore", req_restore, k_restore}, {"migrate.start", req_migrate_start, k_migrate},
	{"job.info", req_job_info, k_name},	{"job.cancel", req_job_cancel, k_name},
	{"vm.pause", req_pause, k_name},	{"vm.resume", req_resume, k_name},
};

static json_t *handle_request(struct agent *a, const char *line, size_t len)
{
	const struct method *m = NULL;
	const char *mname;
	char err[512];
	json_t *req, *resp, *id;

	a->requests++;
	/* jobs that ended are reaped first, so every answer sees their outcome */
	jobs_reap(a->jobs, job_done, a);
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

/* ---- connections ---- */

static void conn_close(struct agent *a, struct conn *c)
{
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	ctl_linebuf_free(&c->in);
	free(c->out);
	a->conns[c->slot] = NULL;
	free(c);
}

static int conn_queue(struct conn *c, json_t *resp)
{
	size_t len;
	char *s = resp ? ctl_encode(resp, &len) : NULL;

	json_decref(resp);
	if (!s)
		return -ENOMEM;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t ncap = MAX(c->out_len + len, 2 * c->out_cap);
		char *nb = realloc(c->out, ncap);

		if (!nb) {
			free(s);
			return -ENOMEM;
		}
		c->out = nb;
		c->out_cap = ncap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
	free(s);
	return 0;
}

static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

/* Serve every complete request buffered on c while its output drains. */
static void conn_process(struct agent *a, struct conn *c)
{
	while (!c->dead && !a->quit) {
		char *line;
		size_t len;
		json_t *resp;
		int r;

		if (c->out_len > c->out_off) {
			conn_flush(c);
			if (c->out_len > c->out_off)
				return; /* wait for EPOLLOUT */
		}
		r = ctl_linebuf_next(&c->in, &line, &len);
		if (r == 0 && c->eof)
			r = ctl_linebuf_take_rest(&c->in, &line, &len);
		if (r == 0)
			return;
		if (r == -EMSGSIZE) {
			resp = ctl_response_error("bad request: line longer than %u bytes",
						  CTL_REQUEST_MAX);
		} else {
			pthread_mutex_lock(&a->lock);
			resp = handle_request(a, line, len);
			pthread_mutex_unlock(&a->lock);
		}
		if (conn_queue(c, resp) < 0)
			c->dead = true;
	}
}

static void conn_event(struct agent *a, struct conn *c, uint32_t events)
{
	bool want_out;
	struct epoll_event ev = {0};

	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->eof && c->out_len == c->out_off) {
		ssize_t n = ctl_linebuf_read(&c->in, c->fd);

		if (n == 0)
			c->eof = true;
		else if (n < 0 && n != -EAGAIN)
			c->dead = true;
	}
	if ((events & EPOLLERR) && !(events & EPOLLIN))
		c->dead = true;
	conn_process(a, c);
	conn_flush(c);
	want_out = c->out_len > c->out_off;
	if (c->dead || (c->eof && !want_out)) {
		conn_close(a, c);
		return;
	}
	ev.events = want_out ? EPOLLOUT : EPOLLIN;
	ev.data.u64 = EV_CONN0 + c->slot;
	epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void accept_clients(struct agent *a)
{
	for (;;) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct conn *c;
		unsigned slot;
		int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				pr_warn("accept: %s", strerror(errno));
			return;
		}
		for (slot = 0; slot < MAX_CONNS && a->conns[slot]; slot++)
			;
		c = slot < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c || ctl_linebuf_init(&c->in, CTL_REQUEST_MAX) < 0) {
			static const char msg[] =
				"{\"ok\":false,\"error\":\"agent busy: too many connections\"}\n";

			pr_warn("refusing a client: %s",
				slot < MAX_CONNS ? "out of memory" : "too many connections");
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				pr_debug("refusal not sent: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->fd = fd;
		c->slot = slot;
		ev.data.u64 = EV_CONN0 + slot;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			pr_warn("epoll_ctl: %s", strerror(errno));
			ctl_linebuf_free(&c->in);
			free(c);
			close(fd);
			continue;
		}
		a->conns[slot] = c;
	}
}

/* ---- migration, the destination side ---- */

static void wake_loop(struct agent *a)
{
	uint64_t one = 1;

	if (write(a->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("eventfd write: %s", strerror(errno));
}

/* An ERROR frame for the source, for failures after the stream arrived. */
/*
 * After a refusal: send FIN behind the ERROR frame, then read and drop
 * what the source still sends for a short while. Closing with unread
 * input would make the kernel answer with a reset, which can destroy the
 * ERROR frame before the source reads it.
 */
static void linger_close(int fd)
{
	uint64_t deadline = clock_now_ms() + LINGER_MS;
	char buf[16384];

	if (shutdown(fd, SHUT_WR) < 0)
		return;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = clock_now_ms();
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

/*
 * The hello hook: HELLO named the VM. Reserve the name so that nothing
 * else takes it while the pages arrive, or refuse the stream.
 */
static int reserve_name(void *ctx, const char *name, uint64_t mem_bytes, char *err, size_t errlen)
{
	struct inconn *ic = ctx;
	struct agent *a = ic->a;
	int ret = registry_check_name(name, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&a->lock);
	if (a->closing) {
		ret = -ESHUTDOWN;
		snprintf(err, errlen, "the destination agent is shutting down");
	} else {
		ret = registry_reserve(a->reg, name, mem_bytes, REG_ORIGIN_MIGRATE, ic->peer);
		if (ret == -EEXIST)
			snprintf(err, errlen, "a VM named '%s' already exists on the destination",
				 name);
		else if (ret == -ENOSPC)
			snprintf(err, errlen,
				 "the destination already hosts %d VMs, the most it can",
				 REGISTRY_MAX_VMS);
		else if (ret < 0)
			snprintf(err, errlen, "cannot reserve the name '%s': %s", name,
				 strerror(-ret));
		else
			snprintf(ic->name, sizeof(ic->name), "%s", name);
	}
	pthread_mutex_unlock(&a->lock);
	if (ret == 0)
		pr_info("incoming migration of VM '%s' (%llu MiB) from %s", name,
			(unsigned long long)(mem_bytes >> 20), ic->peer);
	return ret;
}

/* What the log calls the stream: "of VM 'web1' from tcp:..." or "from ...". */
static const char *stream_desc(const struct inconn *ic, char *buf, size_t cap)
{
	if (ic->name[0])
		snprintf(buf, cap, "of VM '%s' from %s", ic->name, ic->peer);
	else
		snprintf(buf, cap, "from %s", ic->peer);
	return buf;
}

/*
 * One incoming migration: run the decoder (it checks every frame and
 * answers the source on the same socket), then register, start and
 * announce the VM. Any failure leaves nothing behind: the reservation is
 * dropped and a VM that was built is destroyed.
 */
static void *incoming_thread(void *arg)
{
	struct inconn *ic = arg;
	struct agent *a = ic->a;
	struct incoming *inc = NULL;
	struct incoming_stats ist;
	struct vm *vm = NULL;
	struct mio io;
	char err[WIRE_MAX_MSG] = "", desc[512];
	uint64_t t0 = clock_now_ns();
	int ret;

	/* takes the channel: mio_close() closes it */
	mio_channel_open(&io, ic->ch);
	ic->ch = NULL;
	ret = incoming_create(&io, &io, NULL, &inc);
	if (ret < 0) {
		pr_err("incoming migration %s failed: out of memory",
		       stream_desc(ic, desc, sizeof(desc)));
		goto close;
	}
	incoming_set_hello_hook(inc, reserve_name, ic);
	ret = incoming_run(inc, &vm, err, sizeof(err));
	if (ret < 0) {
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err[0] ? err : strerror(-ret));
		goto drop;
	}
	if (ret > 0) {
		/* a parallel channel: its pages are in; channel 0's thread builds the VM */
		pr_debug("parallel migration channel from %s done", ic->peer);
		goto close;
	}
	pthread_mutex_lock(&a->lock);
	ret = a->closing ? -ESHUTDOWN : registry_attach(a->reg, vm);
	pthread_mutex_unlock(&a->lock);
	if (ret < 0) {
		snprintf(err, sizeof(err), "%s",
			 ret == -ESHUTDOWN ? "the destination agent is shutting down"
					   : "cannot register the VM");
		(void)incoming_send_error(inc, ret, err);
		vm_destroy(vm);
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err);
		goto drop;
	}
	/* the registry holds the VM now; phase "incoming" keeps it ours */
	ret = incoming_handover(inc, err, sizeof(err));
	if (ret < 0) {
		/* no GO: the source keeps (or takes back) the guest */
		pr_err("incoming migration %s failed before GO: %s; the VM built here is "
		       "destroyed",
		       stream_desc(ic, desc, sizeof(desc)), err);
		goto drop;
	}
	incoming_get_stats(inc, &ist);
	/* a guest that left its source paused stays paused (vm resume starts it) */
	ret = ist.paused ? 0 : vm_start(vm);
	if (ret < 0) {
		snprintf(err, sizeof(err), "cannot start the VM on the destination: %s",
			 strerror(-ret));
		(void)incoming_send_error(inc, ret, err);
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err);
		goto drop;
	}
	ret = incoming_send_resumed(inc);
	if (ret < 0) {
		/* after GO the guest is ours: the source keeps its copy paused */
		pr_warn("incoming migration %s: the VM is here (%s), but the source could not "
			"be told (%s); its copy stays paused there",
			stream_desc(ic, desc, sizeof(desc)), ist.paused ? "paused" : "running",
			strerror(-ret));
	}
	pthread_mutex_lock(&a->lock);
	{
		struct registry_entry *e = registry_find(a->reg, ic->name);

		if (e) {
			e->phase = REG_PHASE_NONE;
			e->added_ns = clock_now_ns();
		}
	}
	jobs_forget(a->jobs, ic->name);
	pthread_mutex_unlock(&a->lock);
	incoming_get_stats(inc, &ist);
	pr_info("VM '%s' migrated in from %s and %s: %llu bytes, %llu pages in %u rounds, "
		"%llu ms%s",
		ic->name, ic->peer, ist.paused ? "stays paused, as it left" : "runs", (unsigned long long)ist.bytes, (unsigned long long)ist.pages,
		ist.rounds, (unsigned long long)((clock_now_ns() - t0) / 1000000),
		ist.digest_ok ? ", RAM digest verified" : "");
	goto close;
drop:
	if (ic->name[0]) {
		struct vm *old;

		pthread_mutex_lock(&a->lock);
		old = registry_remove(a->reg, ic->name);
		pthread_mutex_unlock(&a->lock);
		vm_destroy(old);
	}
	linger_close(ic->shut_fd);
close:
	incoming_destroy(inc);
	mio_close(&io);
	atomic_store(&ic->done, true);
	wake_loop(a);
	return NULL;
}

/* "tcp:10.0.0.2:51234", "tcp:[::1]:40000" or "unix:/run/kvmig/mig.sock (pid 4242)". */
static void describe_peer(const struct agent *a, int fd, char *out, size_t cap)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, cap, "a peer of %s", a->ml_addr);
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
			snprintf(out, cap, "%s (pid %d)", a->ml_addr, (int)cr.pid);
		else
			snprintf(out, cap, "%s", a->ml_addr);
		return;
	}
	if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&ss)->sin6_addr)) {
		/* an IPv4 peer of a listener on every address (dual-stack): show it as IPv4 */
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};

		memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], sizeof(s4.sin_addr));
		memcpy(&ss, &s4, sizeof(s4));
		sl = sizeof(s4);
	}
	if (getnameinfo((const struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, cap, "an unknown peer");
	else if (ss.ss_family == AF_INET6)
		snprintf(out, cap, "tcp:[%.64s]:%.8s", host, port);
	else
		snprintf(out, cap, "tcp:%.64s:%.8s", host, port);
}

/*
 * The migration listener is readable: take every connection that waits
 * (channel_accept_pending never blocks the loop) and give each a thread.
 */
static void accept_incoming(struct agent *a)
{
	for (;;) {
		struct channel *ch;
		struct inconn *ic;
		char err[256];
		unsigned slot;
		int ret;

		ret = channel_accept_pending(a->ml, INCOMING_IO_TIMEOUT_MS, &ch, err, sizeof(err));
		if (ret == -EAGAIN)
			return;
		if (ret < 0) {
			pr_warn("accepting on %s: %s", a->ml_addr, err);
			return;
		}
		for (slot = 0; slot < MAX_INCOMING && a->inc[slot]; slot++)
			;
		ic = slot < MAX_INCOMING ? calloc(1, sizeof(*ic)) : NULL;
		if (!ic) {
			pr_warn("refusing a migration connection on %s: %s", a->ml_addr,
				slot < MAX_INCOMING ? "out of memory"
						    : "too many migrations arriving at once");
			channel_close(ch);
			continue;
		}
		ic->a = a;
		ic->ch = ch;
		ic->shut_fd = fcntl(channel_fd(ch), F_DUPFD_CLOEXEC, 0);
		describe_peer(a, channel_fd(ch), ic->peer, sizeof(ic->peer));
		ret = ic->shut_fd < 0 ? errno
				      : pthread_create(&ic->thread, NULL, incoming_thread, ic);
		if (ret) {
			pr_warn("refusing a migration connection from %s: %s", ic->peer,
				strerror(ret));
			if (ic->shut_fd >= 0)
				close(ic->shut_fd);
			channel_close(ch);
			free(ic);
			continue;
		}
		pr_debug("migration connection from %s", ic->peer);
		a->inc[slot] = ic;
	}
}

/* Join the incoming threads that are done (all: every one, after shutdown()). */
static void reap_incoming(struct agent *a, bool all)
{
	for (unsigned i = 0; i < MAX_INCOMING; i++) {
		struct inconn *ic = a->inc[i];

		if (!ic || (!all && !atomic_load(&ic->done)))
			continue;
		pthread_join(ic->thread, NULL);
		close(ic->shut_fd);
		free(ic);
		a->inc[i] = NULL;
	}
}

/* ---- set-up and tear-down ---- */

/*
 * Bind the control socket. A live agent on path makes us refuse; a socket
 * file nobody listens on (left by a crash) is replaced; any other file is
 * left alone.
 */
static int setup_socket(struct agent *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = a->control_path;
	char dir[PATH_MAX];
	struct stat st;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_err("control socket path %s is longer than %zu bytes", path,
		       sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		char err[512];

		if (!S_ISSOCK(st.st_mode)) {
			pr_err("%s exists and is not a socket; refusing to replace it", path);
			return -EEXIST;
		}
		fd = ctl_connect(path, err, sizeof(err));
		if (fd >= 0) {
			close(fd);
			pr_err("another agent already serves %s", path);
			return -EADDRINUSE;
		}
		if (fd != -ECONNREFUSED) {
			pr_err("cannot check the existing socket: %s", err);
			return fd;
		}
		pr_info("replacing stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			ret = -errno;
			pr_err("cannot remove stale socket %s: %s", path, strerror(-ret));
			return ret;
		}
	}
	/* Create the socket's directory (one level, like /run/kvmig). */
	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		pr_err("cannot create directory for %s: %s", path, strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		pr_err("socket: %s", strerror(-ret));
		return ret;
	}
	old = umask(0077); /* the socket file is 0600: only our user */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		pr_err("cannot listen on %s: %s", path,
		       ret == -EADDRINUSE ? "another agent just took it" : strerror(-ret));
		close(fd);
		return ret;
	}
	if (stat(path, &st) == 0) {
		a->sock_dev = st.st_dev;
		a->sock_ino = st.st_ino;
	}
	a->lfd = fd;
	return 0;
}

/* Unlink the socket file if it is still the one we bound. */
static void remove_socket(struct agent *a)
{
	struct stat st;

	if (a->lfd < 0)
		return;
	close(a->lfd);
	a->lfd = -1;
	if (stat(a->control_path, &st) == 0 && st.st_dev == a->sock_dev &&
	    st.st_ino == a->sock_ino && unlink(a->control_path) < 0)
		pr_warn("cannot remove %s: %s", a->control_path, strerror(errno));
}

static int setup_loop(struct agent *a)
{
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t set;

	/*
	 * Block the shutdown signals before any vCPU thread exists, so every
	 * thread inherits the mask and they arrive only through the signalfd.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	a->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->sfd < 0 || a->epfd < 0 || a->wakefd < 0) {
		pr_err("signalfd/epoll/eventfd: %s", strerror(errno));
		return -errno;
	}
	ev.data.u64 = EV_WAKE;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->wakefd, &ev) < 0)
		return -errno;
	if (a->ml) {
		ev.data.u64 = EV_MIGLISTEN;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, channel_listener_fd(a->ml), &ev) < 0)
			return -errno;
	}
	ev.data.u64 = EV_SIGNAL;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->sfd, &ev) < 0)
		return -errno;
	ev.data.u64 = EV_LISTEN;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->lfd, &ev) < 0)
		return -errno;
	return 0;
}

static void run_loop(struct agent *a)
{
	while (!a->quit) {
		struct epoll_event evs[16];
		int n, timeout_ms;

		pthread_mutex_lock(&a->lock);
		jobs_reap(a->jobs, job_done, a);
		timeout_ms = jobs_any_running(a->jobs) ? JOB_POLL_MS : -1;
		pthread_mutex_unlock(&a->lock);
		reap_incoming(a, false);
		n = epoll_wait(a->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n && !a->quit; i++) {
			uint64_t k = evs[i].data.u64;

			if (k == EV_LISTEN) {
				accept_clients(a);
			} else if (k == EV_MIGLISTEN) {
				accept_incoming(a);
			} else if (k == EV_WAKE) {
				uint64_t v;

				if (read(a->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					pr_debug("eventfd read: %s", strerror(errno));
			} else if (k == EV_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(a->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					pr_info("got %s, shutting down",
						strsignal((int)si.ssi_signo));
					a->quit = true;
				}
			} else if (k - EV_CONN0 < MAX_CONNS && a->conns[k - EV_CONN0]) {
				conn_event(a, a->conns[k - EV_CONN0], evs[i].events);
			}
		}
	}
}

/*
 * Stop in the order that leaves no thread behind: refuse new streams,
 * shut the arriving ones down and join their threads (without the lock:
 * they take it to drop their reservation), cancel and reap the outgoing
 * jobs (their VMs run on here until destroyed with the rest), then free.
 */
static void shutdown_agent(struct agent *a)
{
	unsigned nin = 0;
	size_t n;

	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (a->conns[i])
			conn_close(a, a->conns[i]);
	pthread_mutex_lock(&a->lock);
	a->closing = true;
	pthread_mutex_unlock(&a->lock);
	channel_listener_close(a->ml);
	a->ml = NULL;
	for (unsigned i = 0; i < MAX_INCOMING; i++) {
		if (a->inc[i] && !atomic_load(&a->inc[i]->done)) {
			shutdown(a->inc[i]->shut_fd, SHUT_RDWR);
			nin++;
		}
	}
	if (nin)
		pr_info("closing %u incoming migration%s", nin, nin == 1 ? "" : "s");
	reap_incoming(a, true);
	pthread_mutex_lock(&a->lock);
	if (a->jobs) {
		if (jobs_any_running(a->jobs))
			pr_info("cancelling the running migration jobs");
		jobs_shutdown(a->jobs, job_done, a);
	}
	jobs_free(a->jobs);
	a->jobs = NULL;
	n = a->reg ? registry_count(a->reg) : 0;
	if (n)
		pr_info("destroying %zu VM%s", n, n == 1 ? "" : "s");
	registry_free(a->reg);
	a->reg = NULL;
	pthread_mutex_unlock(&a->lock);
	remove_socket(a);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sfd >= 0)
		close(a->sfd);
	if (a->wakefd >= 0)
		close(a->wakefd);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmigd --control PATH [--listen URI] [--tls-dir DIR] [--state-dir DIR]\n"
		"\n"
		"The kvmig agent. It hosts KVM virtual machines running kvmig's guest\n"
		"programs and serves the control API on a unix socket: one JSON object\n"
		"per line, described in tools/API.md; the kvmig CLI is its client.\n"
		"It runs in the foreground and logs to stderr.\n"
		"\n"
		"Options:\n"
		"  --control PATH   unix socket to serve (required; created with mode 0600,\n"
		"                   its directory too if missing). If another agent already\n"
		"                   serves PATH, kvmigd refuses to start; a stale socket file\n"
		"                   left by a dead agent is replaced.\n"
		"  --listen URI     accept incoming migrations on URI:\n"
		"                     tcp:HOST:PORT  HOST a name, an IPv4 address or [IPv6];\n"
		"                                    empty for every address; PORT 0 lets the\n"
		"                                    kernel pick one (agent.version shows it)\n"
		"                     unix:PATH      a unix socket (a stale one is replaced)\n"
		"                     tls:HOST:PORT  NOT IMPLEMENTED YET: exit status 2\n"
		"                   tcp://HOST:PORT and unix:///PATH are accepted too. A\n"
		"                   source migrates here with kvmig migrate NAME --to\n"
		"                   tcp://HOST:PORT (or unix:///PATH); the VM keeps its name.\n"
		"  --tls-dir DIR    TLS credentials (ca-cert.pem, server-cert.pem, ...):\n"
		"                   accepted and shown by agent.version, not used yet.\n"
		"  --state-dir DIR  directory for the agent's state: accepted and shown by\n"
		"                   agent.version, not used yet.\n"
		"  -v, --verbose    log every request (like KVMIG_LOG=debug; default: info)\n"
		"  -V, --version    print the version and exit\n"
		"  -h, --help       print this help and exit\n"
		"\n"
		"Requests are served one at a time, in arrival order across clients: a long\n"
		"request (vm.save of a big VM) delays the others but never mixes replies.\n"
		"Migrations run on threads of their own, outgoing (migrate.start) and\n"
		"incoming (--listen), so the agent answers while they run; an arriving VM\n"
		"shows as state 'incoming' until it runs. At most %d clients are connected,\n"
		"%d migrations arrive and %d VMs are hosted at once.\n"
		"Paths in vm.save and vm.restore are opened by the agent: relative ones are\n"
		"relative to the agent's working directory.\n"
		"VMs need /dev/kvm; without it the agent runs and answers, and vm.start\n"
		"and vm.restore fail with a message saying so.\n"
		"\n"
		"SIGTERM or SIGINT: close arriving migrations, cancel outgoing ones (their\n"
		"VMs resume here first), destroy every VM, remove the sockets, exit 0.\n"
		"Exit status: 0 after a clean shutdown, 1 on an error (such as a --listen\n"
		"address in use), 2 on bad usage (a malformed --listen URI, tls:).\n",
		MAX_CONNS, MAX_INCOMING, REGISTRY_MAX_VMS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"tls-dir", required_argument, NULL, 't'},
		{"state-dir", required_argument, NULL, 's'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct agent a = {.lfd = -1, .sfd = -1, .epfd = -1, .wakefd = -1};
	bool verbose = false;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a.control_path = optarg;
			break;
		case 'l':
			a.listen_uri = optarg;
			break;
		case 't':
			a.tls_dir = optarg;
			break;
		case 's':
			a.state_dir = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("kvmigd %s (control API %d)\n", KVMIG_VERSION, CTL_API_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'kvmigd --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmigd: unexpected argument '%s'\nTry 'kvmigd --help'.\n",
			argv[optind]);
		return 2;
	}
	if (!a.control_path || !a.control_path[0]) {
		fprintf(stderr, "kvmigd: --control PATH is required\nTry 'kvmigd --help'.\n");
		return 2;
	}
	if (a.listen_uri) {
		struct uri u;
		char err[512];

		/* malformed, or a transport not built: refused before any socket exists */
		if (uri_parse_listen(a.listen_uri, &u, err, sizeof(err)) < 0) {
			fprintf(stderr, "kvmigd: invalid --listen: %s\nTry 'kvmigd --help'.\n", err);
			return 2;
		}
		if (!channel_ops_for(u.scheme)) {
			fprintf(stderr, "kvmigd: --listen %s: %s is not implemented yet\n",
				a.listen_uri, u.scheme == URI_TLS ? "TLS" : uri_scheme_name(u.scheme));
			return 2;
		}
	}
	if (verbose)
		log_set_level(LOG_DEBUG);
	else if (!getenv("KVMIG_LOG"))
		log_set_level(LOG_INFO);
	if (a.tls_dir && access(a.tls_dir, R_OK | X_OK) < 0)
		pr_warn("--tls-dir %s: %s (not used yet)", a.tls_dir, strerror(errno));
	if (a.state_dir && access(a.state_dir, R_OK | X_OK) < 0)
		pr_warn("--state-dir %s: %s (not used yet)", a.state_dir, strerror(errno));

	signal(SIGPIPE, SIG_IGN);
	a.start_ns = clock_now_ns();
	pthread_mutex_init(&a.lock, NULL);
	a.reg = registry_new();
	a.jobs = jobs_new();
	if (!a.reg || !a.jobs) {
		pr_err("out of memory");
		registry_free(a.reg);
		jobs_free(a.jobs);
		return 1;
	}
	if (setup_socket(&a) < 0) {
		status = 1;
		goto out;
	}
	if (a.listen_uri) {
		char err[512];

		if (channel_listen(a.listen_uri, &a.ml, err, sizeof(err)) < 0) {
			pr_err("%s", err);
			status = 1;
			goto out;
		}
		if (channel_listener_addr(a.ml, a.ml_addr, sizeof(a.ml_addr)) < 0)
			snprintf(a.ml_addr, sizeof(a.ml_addr), "%s", a.listen_uri);
		/* a relative unix path is made absolute here: the agent never changes directory */
		if (channel_listener_uri(a.ml, a.ml_uri, sizeof(a.ml_uri)) < 0) {
			a.ml_uri[0] = '\0';
			pr_warn("--listen %s: no URI a source could reach it by (path too long?)",
				a.listen_uri);
		}
	}
	if (setup_loop(&a) < 0) {
		status = 1;
		goto out;
	}
	{
		char err[256] = "";

		if (vm_kvm_available(err, sizeof(err)) < 0)
			pr_warn("KVM is not available (%s): VMs cannot be started", err);
	}
	pr_info("kvmigd %s serving %s (pid %d)", KVMIG_VERSION, a.control_path, (int)getpid());
	if (a.ml)
		pr_info("accepting migrations on %s", a.ml_addr);
	run_loop(&a);
	if (!a.quit)
		status = 1;
out:
	shutdown_agent(&a);
	pthread_mutex_destroy(&a.lock);
	if (status == 0)
		pr_info("stopped after %llu requests", (unsigned long long)a.requests);
	return status;
}
