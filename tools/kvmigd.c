/* SPDX-License-Identifier: MIT */
/*
 * kvmigd - the kvmig agent: hosts named VMs and serves the control API
 * (tools/API.md) on a unix socket, one JSON object per line.
 *
 * One thread runs an epoll loop over the listening socket, a signalfd for
 * SIGTERM/SIGINT and every client connection. Requests are served one at a
 * time in arrival order: a long request (vm.save of a big VM) delays the
 * others, whose bytes wait in their sockets, but each connection has its
 * own input and output buffer, so replies never mix. Output is written
 * without blocking; a client that does not read its replies only stalls
 * itself (its further requests are not read until its output drains).
 * The VMs' vCPU threads run on their own and never touch the loop.
 */
#define LOG_PREFIX "kvmigd: "
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "migrate/snapshot.h"
#include "tools/control.h"
#include "tools/registry.h"
#include "vm/vm.h"

#define MAX_CONNS 64
#define EV_LISTEN 0
#define EV_SIGNAL 1
#define EV_CONN0  2

struct conn {
	int fd;
	unsigned slot;
	struct ctl_linebuf in;
	char *out;
	size_t out_len, out_off, out_cap;
	bool eof;  /* the client shut down its side */
	bool dead; /* write error: close without further work */
};

struct agent {
	const char *control_path;
	const char *listen_uri;
	const char *tls_dir;
	const char *state_dir;
	int lfd, sfd, epfd;
	dev_t sock_dev;
	ino_t sock_ino;
	struct conn *conns[MAX_CONNS];
	struct registry *reg;
	uint64_t start_ns;
	uint64_t requests;
	bool quit;
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

/* The vm.list entry (full == false) or the vm.info object (full). */
static json_t *vm_json(const struct registry_entry *e, bool full)
{
	const struct vm_config *cfg = vm_get_config(e->vm);
	char mac[CTL_MAC_STRLEN];
	json_t *o = json_object();

	set_str(o, "name", e->name);
	set_str(o, "state", registry_state_name(e));
	set_u64(o, "mem_bytes", cfg->mem_bytes);
	set_u64(o, "vcpus", cfg->vcpus);
	set_str(o, "guest", cfg->guest);
	set_str(o, "guest_args", cfg->guest_args);
	set_str(o, "mac", ctl_format_mac(cfg->mac, mac));
	if (full) {
		struct vm_pause_stats ps;
		uint64_t ws_off, ws_bytes;
		json_t *p = json_object(), *w = json_object();

		json_object_set_new(o, "guest_stats", guest_stats_json(e->vm));
		vm_get_pause_stats(e->vm, &ps);
		set_u64(p, "count", ps.count);
		set_u64(p, "last_us", ps.last_ns / 1000);
		set_u64(p, "max_us", ps.max_ns / 1000);
		set_u64(p, "total_us", ps.total_ns / 1000);
		json_object_set_new(o, "pause_latency", p);
		vm_workset(e->vm, &ws_off, &ws_bytes);
		set_u64(w, "offset", ws_off);
		set_u64(w, "bytes", ws_bytes);
		json_object_set_new(o, "workset", w);
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

/* Jobs own their VM: refuse stop/save while one runs (later issues). */
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
	const char *path;
	char err[512] = "";
	int ret;

	if (!e)
		return r;
	if (ctl_get_str(req, "path", true, &path, err, sizeof(err)) < 0)
		return ctl_response_error("vm.save: %s", err);
	if (!path[0])
		return ctl_response_error("vm.save: field 'path' is empty");
	if (e->phase != REG_PHASE_NONE)
		return busy(e);
	ret = snapshot_save(e->vm, path, &st, err, sizeof(err));
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
	ret = vm_start(vm);
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
	pr_info("restored VM '%s' from %s", vname, path);
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

struct method {
	const char *name;
	json_t *(*fn)(struct agent *a, json_t *req);
	const char *const *keys; /* fields besides "method" and "id" */
};

static const char *const k_none[] = {NULL};
static const char *const k_name[] = {"name", NULL};
static const char *const k_start[] = {"name",	    "mem_bytes", "vcpus", "guest",
				      "guest_args", "mac",	 NULL};
static const char *const k_save[] = {"name", "path", NULL};
static const char *const k_restore[] = {"path", "name", NULL};

static const struct method methods[] = {
	{"agent.ping", req_ping, k_none},	{"agent.version", req_version, k_none},
	{"vm.start", req_start, k_start},	{"vm.stop", req_stop, k_name},
	{"vm.list", req_list, k_none},		{"vm.info", req_info, k_name},
	{"vm.console", req_console, k_name},	{"vm.save", req_save, k_save},
	{"vm.restore", req_restore, k_restore},
};

static json_t *handle_request(struct agent *a, const char *line, size_t len)
{
	const struct method *m = NULL;
	const char *mname;
	char err[512];
	json_t *req, *resp, *id;

	a->requests++;
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
		if (r == -EMSGSIZE)
			resp = ctl_response_error("bad request: line longer than %u bytes",
						  CTL_REQUEST_MAX);
		else
			resp = handle_request(a, line, len);
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
	if (a->sfd < 0 || a->epfd < 0) {
		pr_err("signalfd/epoll: %s", strerror(errno));
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
		int n = epoll_wait(a->epfd, evs, (int)ARRAY_SIZE(evs), -1);

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

static void shutdown_agent(struct agent *a)
{
	size_t n = a->reg ? registry_count(a->reg) : 0;

	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (a->conns[i])
			conn_close(a, a->conns[i]);
	if (n)
		pr_info("destroying %zu VM%s", n, n == 1 ? "" : "s");
	registry_free(a->reg);
	a->reg = NULL;
	remove_socket(a);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sfd >= 0)
		close(a->sfd);
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
		"  --listen URI     migration listener (tcp:HOST:PORT, tls:HOST:PORT,\n"
		"                   unix:PATH). NOT IMPLEMENTED YET: kvmigd exits with status 2.\n"
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
		"At most %d clients are connected and %d VMs hosted at once.\n"
		"Paths in vm.save and vm.restore are opened by the agent: relative ones are\n"
		"relative to the agent's working directory.\n"
		"VMs need /dev/kvm; without it the agent runs and answers, and vm.start\n"
		"and vm.restore fail with a message saying so.\n"
		"\n"
		"SIGTERM or SIGINT: destroy every VM, remove the socket, exit 0.\n"
		"Exit status: 0 after a clean shutdown, 1 on an error, 2 on bad usage.\n",
		MAX_CONNS, REGISTRY_MAX_VMS);
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
	struct agent a = {.lfd = -1, .sfd = -1, .epfd = -1};
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
		fprintf(stderr, "kvmigd: --listen is not implemented yet (migration listener "
				"comes with the migration engine)\n");
		return 2;
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
	a.reg = registry_new();
	if (!a.reg) {
		pr_err("out of memory");
		return 1;
	}
	if (setup_socket(&a) < 0 || setup_loop(&a) < 0) {
		status = 1;
		goto out;
	}
	{
		char err[256] = "";

		if (vm_kvm_available(err, sizeof(err)) < 0)
			pr_warn("KVM is not available (%s): VMs cannot be started", err);
	}
	pr_info("kvmigd %s serving %s (pid %d)", KVMIG_VERSION, a.control_path, (int)getpid());
	run_loop(&a);
	if (!a.quit)
		status = 1;
out:
	shutdown_agent(&a);
	if (status == 0)
		pr_info("stopped after %llu requests", (unsigned long long)a.requests);
	return status;
}
