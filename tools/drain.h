/* SPDX-License-Identifier: MIT */
/*
 * drain.h - kvmig drain: empty one agent of its VMs, live, onto others,
 * for host maintenance. Nova's host-evacuate-live fires one migration per
 * VM and forgets them; this plans, limits, retries and reports.
 *
 * Plan: the source's VMs in the chosen order (smallest or largest RAM
 * first, or least dirty first: the guest's write pace sampled over a
 * short window), each to the destination with the most memory free for
 * guests after what is already planned for it (agent.version
 * "mem_free_bytes"; an agent that does not report it counts as having
 * room). A VM no destination has room for stays, and says so.
 *
 * Run: at most max_parallel moves at once in all, and per destination at
 * most what it takes (agent.version "max_incoming", when it reports it).
 * Each move is the source agent's migrate.start with the drain's
 * migration options, followed by job.info polls. A move that fails leaves
 * the guest running at the source (the engine's rule before switchover);
 * it is retried on another destination (never one that failed it, nor one
 * that stopped answering), after a backoff that doubles from
 * DRAIN_BACKOFF_MS, at most DRAIN_MAX_TRIES times. One VM never stops the
 * drain: it ends when every VM has moved or stayed.
 *
 * drain_sort() and drain_choose() are the plan's pure parts (unit-tested);
 * drain_run() does the I/O through tools/cli.h and reports through the
 * callback after every change. Single-threaded.
 */
#ifndef KVMIG_TOOLS_DRAIN_H
#define KVMIG_TOOLS_DRAIN_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/cli.h"
#include "tools/inventory.h"

#define DRAIN_MAX_VMS	 64
#define DRAIN_MAX_DESTS	 16
#define DRAIN_MAX_TRIES	 3
#define DRAIN_BACKOFF_MS 500u		/* before the first retry; doubles, at most 8 s */
#define DRAIN_POLL_MS	 150u
#define DRAIN_UNKNOWN	 UINT64_MAX	/* a destination that does not report free memory */

enum drain_order { DRAIN_ORDER_SMALLEST, DRAIN_ORDER_LARGEST, DRAIN_ORDER_LEAST_DIRTY };

struct drain_agent {
	char name[INV_NAME_MAX];	/* as the user named it */
	char control[INV_PATH_MAX];	/* its control socket */
	char uri[INV_URI_MAX];		/* destinations: where the migrations go */
	bool up;			/* it answered */
	char why_down[300];
	uint64_t mem_free;		/* bytes free for guests, or DRAIN_UNKNOWN */
	uint64_t planned;		/* bytes of the moves running to it */
	unsigned slots;			/* moves it takes at once (0: no limit of its own) */
	unsigned running;		/* moves to it now */
};

enum drain_state { DRAIN_PENDING, DRAIN_RUNNING, DRAIN_MOVED, DRAIN_STAYED, DRAIN_LOST };

struct drain_try {
	int dest;
	char error[400];
};

struct drain_vm {
	char name[64];
	uint64_t mem_bytes;
	char vm_state[16];		/* at the source when the drain began */
	double dirty_rate;		/* progress per second over the sample (least-dirty) */
	enum drain_state state;
	int dest;			/* running, moved: where (index); -1 */
	unsigned ntries;
	struct drain_try tries[DRAIN_MAX_TRIES];
	uint64_t retry_at_ms;		/* pending after a failure: not before this */
	/* while running: the job's latest figures */
	char status[20];
	unsigned round;
	uint64_t transferred_bytes, remaining_bytes, downtime_ms, total_ms;
	char reason[400];		/* stayed, lost: why */
};

struct drain {
	struct drain_agent src;
	struct drain_agent dst[DRAIN_MAX_DESTS];
	unsigned ndst;
	struct drain_vm vm[DRAIN_MAX_VMS];
	unsigned nvm;
	enum drain_order order;
	unsigned max_parallel;
	json_t *opts;			/* migrate.start fields for every move (borrowed) */
	int timeout_ms;			/* of each control call */
	uint64_t t0_ms;
	unsigned running;
	unsigned peak_running;		/* the most moves at once */
	/* called after each change of a VM (vm: its index) and once a poll (-1) */
	void (*report)(struct drain *d, int vm, void *arg);
	void *arg;
};

/* The order in which the VMs move (stable). */
void drain_sort(struct drain_vm *v, unsigned n, enum drain_order o);

/*
 * Where vm goes now: the destination with the most room left that is up,
 * has not failed this VM, and has a free slot. Return: its index; -EBUSY
 * when one could take it later (its slots or its room are taken by running
 * moves); -ENOSPC when none can (why says why).
 */
int drain_choose(const struct drain *d, const struct drain_vm *vm, char *why, size_t len);

/*
 * Ask the agents: the source's VMs (and their pace, for least-dirty), the
 * destinations' URIs, free memory and slots. Return: 0, or -errno with err
 * (the source does not answer, no destination does, too many VMs).
 */
int drain_probe(struct drain *d, char *err, size_t errlen) __must_check;

/* What would move where, without moving: vm[].dest set, or state STAYED with reason. */
void drain_plan(struct drain *d);

/*
 * Move them all. *stop (a SIGINT count, may be NULL): 1 starts no more
 * moves (the pending VMs stay), 2 also cancels the running ones.
 * Return: the VMs still at the source (0: it is empty).
 */
unsigned drain_run(struct drain *d, volatile sig_atomic_t *stop);

/* The result as JSON (the report of --json): a new object. */
json_t *drain_report_json(const struct drain *d, bool dry_run);

const char *drain_state_name(enum drain_state s);
const char *drain_order_name(enum drain_order o);
int drain_order_parse(const char *s, enum drain_order *o);

#endif /* KVMIG_TOOLS_DRAIN_H */
