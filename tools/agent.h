/* SPDX-License-Identifier: MIT */
/*
 * agent.h - the state of kvmigd, the kvmig agent, shared by its parts:
 *
 *   tools/kvmigd.c          main: options, set-up and tear-down
 *   tools/agent_loop.c      the controller's epoll loop and its clients
 *   tools/agent_api.c       the control API's methods (tools/API.md)
 *   tools/agent_incoming.c  migrations arriving on the --listen socket
 *   tools/agent_limits.c    max_incoming, max_outgoing, the bandwidth budget
 *   tools/agentconf.c       the --config file and the options over it
 *
 * Threads:
 *  - the controller runs the loop; it alone touches the fields marked
 *    "controller" below. Requests are served one at a time, under lock.
 *  - each outgoing migration runs on its job thread (migrate/migrate.h),
 *    which alone touches its VM while the entry's phase is "migrating".
 *    The loop wakes every JOB_POLL_MS while jobs run, reaps those that
 *    ended, destroys the source VM of a completed one and hands a failed
 *    one back to "running".
 *    Each job event wakes the loop too (wakefd), which hands the new
 *    events of every job to the event subscribers (agent_loop.h).
 *  - each accepted migration connection gets a thread that runs the
 *    incoming decoder (migrate/incoming.h) and starts the VM it builds;
 *    its events (incoming-started, -arrived, -failed) go into in_events.
 *  - the VMs' vCPU threads run on their own and never touch the agent.
 *
 * Locking: agent.lock guards the registry, the job table and `closing`.
 * The controller holds it while it serves a request and while it reaps;
 * an incoming thread holds it only for a moment to reserve, attach or drop
 * its VM's name, never across the stream. An entry whose phase is not
 * REG_PHASE_NONE belongs to another thread: the controller reads only its
 * name, state and atomic counters. Besides the fields under lock, an
 * incoming thread touches only wakefd (agent_loop_wake()).
 *
 * Ownership: main (kvmigd.c) embeds the struct, creates the lock, the
 * registry, the job table, the control socket and the migration listener,
 * and frees them at shutdown; the loop owns its fds and clients, the
 * incoming part its connection records.
 */
#ifndef KVMIG_TOOLS_AGENT_H
#define KVMIG_TOOLS_AGENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol/uri.h"

#define AGENT_MAX_CONNS	   64 /* control clients connected at once */
#define AGENT_MAX_INCOMING 16 /* migration streams arriving at once */
#define AGENT_MAX_LISTEN   4  /* --listen addresses */
#define AGENT_MAX_IN_EVENTS 64 /* incoming-side events queued for the controller */
#define AGENT_EVENT_VM_MAX  64 /* an events.subscribe "vm" filter, NUL included (VM_NAME_MAX) */

struct agent_conn;   /* one control client (agent_loop.c) */
struct agent_inconn; /* one arriving migration (agent_incoming.c) */
struct channel_listener;
struct cpucheck_cpu;
struct cpucheck_mask;
struct jobs;
struct registry;

struct agent {
	/* the options (main; read-only once the loop runs) */
	const char *control_path; /* --control: the unix socket served */
	const char *listen_uri[AGENT_MAX_LISTEN]; /* each --listen, in order */
	unsigned nlisten;
	const char *tls_dir;	  /* --tls-dir, or NULL: shown by agent.version */
	const char *state_dir;	  /* --state-dir, or NULL: shown by agent.version */
	const char *announce;	  /* --announce IFACE, or NULL: the incoming VMs' default */
	const char *config_path;  /* --config FILE, or NULL: shown by agent.version */
	unsigned max_incoming;	  /* --max-incoming: migrations arriving at once (0: no limit) */
	unsigned max_outgoing;	  /* --max-outgoing: jobs running at once (0: no limit) */
	uint64_t bandwidth_budget; /* --bandwidth-budget: bytes/s the outgoing jobs share (0: none) */
	uint64_t guest_mem;	  /* --guest-mem: guest RAM hosted at most, all VMs (0: no limit) */
	/* what this host's KVM can run (vm/cpucheck.h): the supported CPUID
	 * without --cpu-hide's features, the TSC rate or --tsc-khz; NULL
	 * without KVM. Incoming migrations are checked against it. */
	const struct cpucheck_cpu *cpu;
	const struct cpucheck_mask *cpu_hide; /* --cpu-hide, or NULL: hidden from VMs started here */

	/* the control socket (main binds and removes it; the loop accepts on it) */
	int lfd;
	dev_t sock_dev; /* the socket file we bound, so that we unlink only it */
	ino_t sock_ino;

	/* the loop's fds (agent_loop_init() opens them, agent_loop_fini() closes) */
	int sfd;    /* signalfd for SIGTERM/SIGINT */
	int epfd;   /* the epoll set */
	int wakefd; /* eventfd: any thread may write it to wake the loop */

	struct agent_conn *conns[AGENT_MAX_CONNS]; /* controller: the control clients */

	/*
	 * The migration listeners (protocol/channel.h), one per --listen
	 * (nlisten of them; e.g. tls: for other hosts and tcp:127.0.0.1 for
	 * ssh:// tunnels): main opens and closes them; the controller accepts.
	 */
	struct channel_listener *ml[AGENT_MAX_LISTEN];
	char ml_addr[AGENT_MAX_LISTEN][URI_HOST_MAX + 64]; /* "tcp:127.0.0.1:40213", "unix:m.sock" */
	char ml_uri[AGENT_MAX_LISTEN][URI_HOST_MAX + 64];  /* "tcp://127.0.0.1:40213" */
	struct agent_inconn *inc[AGENT_MAX_INCOMING]; /* controller: arriving migrations */
	/* controller, during one request: the descriptors that came with it
	 * (a request that keeps them sets *req_nfds to 0) and the client's
	 * connection (incoming.adopt answers on it again at the end) */
	int *req_fds;
	unsigned *req_nfds;
	int req_conn_fd;

	/*
	 * Events (events.subscribe, agent_loop.h): the controller numbers
	 * them (event_seq) and queues them to the subscribers; during a
	 * request, events.subscribe asks the loop to make the client's
	 * connection one (req_subscribe, with its filter, "" for every VM).
	 * The incoming threads queue their events in in_events under lock.
	 */
	uint64_t event_seq;	  /* controller: the newest seq given */
	unsigned subscribers;	  /* controller: connections subscribed (not dropped) */
	bool req_subscribe;	  /* controller, during one request */
	char req_subscribe_vm[AGENT_EVENT_VM_MAX];
	json_t *in_events[AGENT_MAX_IN_EVENTS]; /* under lock: queued, oldest first */
	unsigned n_in_events;		       /* under lock */
	uint64_t in_events_lost;	       /* under lock: dropped when the queue was full */

	uint64_t start_ns; /* main: when the agent started (agent.ping's uptime) */
	uint64_t requests; /* controller: requests served, logged at exit */
	bool quit;	   /* controller: a signal asked the loop to end */

	pthread_mutex_t lock;
	struct registry *reg; /* under lock */
	struct jobs *jobs;    /* under lock */
	/* where the channels of parallel incoming migrations meet (its own lock);
	 * freed after every incoming thread has ended */
	struct session_table *sessions;
	/* where post-copy's fault and resumed streams find their receiver (its own
	 * lock); freed after every incoming thread has ended */
	struct pc_table *pcs;
	bool closing;	      /* under lock: refuse new incoming VMs */
};

#endif /* KVMIG_TOOLS_AGENT_H */
