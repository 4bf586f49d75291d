/* SPDX-License-Identifier: MIT */
/*
 * agent_limits.c - max_incoming, max_outgoing and the bandwidth budget of
 * kvmigd, and the load agent.version reports. See agent_limits.h.
 */
#define LOG_PREFIX "kvmigd: "
#include "tools/agent_limits.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "migrate/migrate.h"
#include "tools/jobs.h"
#include "tools/registry.h"
#include "vm/vm.h"

static unsigned count_phases(struct agent *a, enum registry_phase p1, enum registry_phase p2)
{
	struct registry_entry *e;
	unsigned n = 0;

	for (size_t i = 0; (e = registry_at(a->reg, i)); i++)
		if (e->phase == p1 || e->phase == p2)
			n++;
	return n;
}

unsigned agent_limits_incoming(struct agent *a)
{
	return count_phases(a, REG_PHASE_INCOMING, REG_PHASE_POSTCOPY);
}

unsigned agent_limits_outgoing(struct agent *a)
{
	return count_phases(a, REG_PHASE_MIGRATING, REG_PHASE_MIGRATING);
}

int agent_limits_admit_incoming(struct agent *a, char *err, size_t errlen)
{
	unsigned n;

	if (!a->max_incoming)
		return 0;
	n = agent_limits_incoming(a);
	if (n < a->max_incoming)
		return 0;
	snprintf(err, errlen,
		 "the destination agent runs %u incoming migration%s already (max_incoming %u)", n,
		 n == 1 ? "" : "s", a->max_incoming);
	return -EBUSY;
}

int agent_limits_admit_outgoing(struct agent *a, char *err, size_t errlen)
{
	unsigned n;

	if (!a->max_outgoing)
		return 0;
	n = agent_limits_outgoing(a);
	if (n < a->max_outgoing)
		return 0;
	snprintf(err, errlen,
		 "this agent runs %u outgoing migration%s already (max_outgoing %u); retry when "
		 "one has ended",
		 n, n == 1 ? "" : "s", a->max_outgoing);
	return -EBUSY;
}

void agent_limits_share(struct agent *a)
{
	struct registry_entry *e;
	unsigned n;
	uint64_t share;

	if (!a->bandwidth_budget)
		return;
	n = agent_limits_outgoing(a);
	if (!n)
		return;
	share = a->bandwidth_budget / n;
	if (!share)
		share = 1;
	for (size_t i = 0; (e = registry_at(a->reg, i)); i++) {
		struct migrate_job *job;
		uint64_t own, cap;

		if (e->phase != REG_PHASE_MIGRATING || !(job = jobs_running(a->jobs, e->name)))
			continue;
		own = migrate_get_opts(job)->bandwidth;
		cap = own && own < share ? own : share;
		(void)migrate_set_bandwidth(job, cap);
		pr_debug("VM '%s': bandwidth cap %llu B/s (budget %llu B/s over %u job%s)", e->name,
			 (unsigned long long)cap, (unsigned long long)a->bandwidth_budget, n,
			 n == 1 ? "" : "s");
	}
}

/* MemTotal and MemAvailable of /proc/meminfo, in bytes. Return: 0 or -errno. */
static int read_meminfo(uint64_t *total, uint64_t *avail)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned found = 0;

	if (!f)
		return -errno;
	while (found != 3 && fgets(line, sizeof(line), f)) {
		unsigned long long kib;

		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
			*total = (uint64_t)kib << 10;
			found |= 1;
		} else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
			*avail = (uint64_t)kib << 10;
			found |= 2;
		}
	}
	fclose(f);
	return found == 3 ? 0 : -ENODATA;
}

static void put_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* The guest RAM of every VM here, reservations included. */
static uint64_t vms_mem(struct agent *a)
{
	struct registry_entry *e;
	uint64_t vms = 0;

	for (size_t i = 0; (e = registry_at(a->reg, i)); i++)
		vms += e->phase == REG_PHASE_INCOMING || !e->vm ? e->mem_bytes
								: vm_get_config(e->vm)->mem_bytes;
	return vms;
}

int agent_limits_admit_mem(struct agent *a, const char *name, uint64_t mem, char *err,
			   size_t errlen)
{
	uint64_t used;

	if (!a->guest_mem)
		return 0;
	used = vms_mem(a);
	if (used <= a->guest_mem && mem <= a->guest_mem - used)
		return 0;
	snprintf(err, errlen,
		 "VM '%s' needs %llu MiB, but this agent hosts at most %llu MiB of guest RAM "
		 "(guest_mem) and %llu MiB of it are taken: %llu MiB free",
		 name, (unsigned long long)(mem >> 20), (unsigned long long)(a->guest_mem >> 20),
		 (unsigned long long)(used >> 20),
		 (unsigned long long)((used < a->guest_mem ? a->guest_mem - used : 0) >> 20));
	return -ENOMEM;
}

json_t *agent_limits_json(struct agent *a)
{
	json_t *o = json_object(), *l = json_object();
	struct registry_entry *e;
	uint64_t total = 0, avail = 0, vms = vms_mem(a), bw = 0;

	if (!o || !l) {
		json_decref(o);
		json_decref(l);
		return NULL;
	}
	put_u64(l, "max_incoming", a->max_incoming);
	put_u64(l, "max_outgoing", a->max_outgoing);
	put_u64(l, "bandwidth_budget", a->bandwidth_budget);
	put_u64(l, "guest_mem_bytes", a->guest_mem);
	json_object_set_new(o, "limits", l);
	put_u64(o, "incoming", agent_limits_incoming(a));
	put_u64(o, "outgoing", agent_limits_outgoing(a));
	for (size_t i = 0; (e = registry_at(a->reg, i)); i++) {
		struct migrate_job *job;
		struct migrate_stats st;

		if (e->phase == REG_PHASE_MIGRATING && (job = jobs_running(a->jobs, e->name))) {
			migrate_get_stats(job, &st);
			bw += st.bandwidth;
		}
	}
	put_u64(o, "bandwidth_in_use", bw);
	if (read_meminfo(&total, &avail) == 0) {
		/* what a new guest may take here: the host's, and --guest-mem's */
		if (a->guest_mem)
			avail = MIN(avail, vms < a->guest_mem ? a->guest_mem - vms : 0);
		put_u64(o, "mem_total_bytes", total);
		put_u64(o, "mem_free_bytes", avail);
	} else {
		json_object_set_new(o, "mem_total_bytes", json_null());
		json_object_set_new(o, "mem_free_bytes", json_null());
	}
	put_u64(o, "vms_mem_bytes", vms);
	return o;
}
