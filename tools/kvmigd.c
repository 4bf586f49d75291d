/* SPDX-License-Identifier: MIT */
/*
 * kvmigd - the kvmig agent: hosts named VMs, serves the control API
 * (tools/API.md) on a unix socket, one JSON object per line, migrates VMs
 * out (migrate.start) and takes migrations in (--listen).
 *
 * This file is main: the options (those a --config file may set too are
 * parsed and checked by tools/agentconf.c, the command line laid over the
 * file), the set-up (the control socket, the migration listener, the
 * loop's fds, READY=1 to systemd) and the tear-down in the reverse
 * order. The agent's state and its threads and locking are described in
 * tools/agent.h; the loop is tools/agent_loop.c, the API methods
 * tools/agent_api.c, the arriving migrations tools/agent_incoming.c.
 */
#define LOG_PREFIX "kvmigd: "
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "migrate/announce.h"
#include "migrate/pcdest.h"
#include "migrate/session.h"
#include "protocol/channel.h"
#include "protocol/uri.h"
#include "tools/agent.h"
#include "tools/agent_api.h"
#include "tools/agent_incoming.h"
#include "tools/agent_loop.h"
#include "tools/agentconf.h"
#include "tools/control.h"
#include "tools/jobs.h"
#include "tools/registry.h"
#include "vm/cpucheck.h"
#include "vm/vm.h"

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

/*
 * Stop in the order that leaves no thread behind: refuse new streams,
 * shut the arriving ones down and join their threads (without the lock:
 * they take it to drop their reservation), cancel and reap the outgoing
 * jobs (their VMs run on here until destroyed with the rest), then free.
 */
static void shutdown_agent(struct agent *a)
{
	size_t n;

	agent_loop_close_clients(a);
	pthread_mutex_lock(&a->lock);
	a->closing = true;
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->nlisten; i++) {
		channel_listener_close(a->ml[i]);
		a->ml[i] = NULL;
	}
	agent_incoming_shutdown(a);
	session_table_destroy(a->sessions);	/* no stream is left to meet in it */
	a->sessions = NULL;
	pc_table_destroy(a->pcs);
	a->pcs = NULL;
	pthread_mutex_lock(&a->lock);
	if (a->jobs) {
		if (jobs_any_running(a->jobs))
			pr_info("cancelling the running migration jobs");
		jobs_shutdown(a->jobs, agent_api_job_done, a);
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
	agent_loop_fini(a);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmigd [--config FILE] --control PATH [--listen URI]... [--tls-dir DIR]\n"
		"              [--state-dir DIR] [--announce IFACE] [--max-incoming N]\n"
		"              [--max-outgoing N] [--bandwidth-budget MiB/s] [--guest-mem SIZE]\n"
		"              [--cpu-hide FEATURE[,FEATURE...]] [--tsc-khz KHZ]\n"
		"       kvmigd --cpu-features [--cpu-hide ...] [--tsc-khz KHZ]\n"
		"       kvmigd --incoming stdio [--config FILE] [--control PATH]\n"
		"\n"
		"The kvmig agent. It hosts KVM virtual machines running kvmig's guest\n"
		"programs and serves the control API on a unix socket: one JSON object\n"
		"per line, described in tools/API.md; the kvmig CLI is its client.\n"
		"It runs in the foreground and logs to stderr; under systemd (Type=notify,\n"
		"kvmigd.service) it reports READY=1 once its sockets are open.\n"
		"\n"
		"Options:\n"
		"  --config FILE    read the options below from FILE, lines of 'key = value'\n"
		"                   ('#' comments): control, listen (repeatable), tls_dir,\n"
		"                   state_dir, announce, max_incoming, max_outgoing,\n"
		"                   bandwidth, guest_mem (see kvmigd.conf(5)). An option given here\n"
		"                   wins over the file; any --listen replaces all its listen\n"
		"                   lines. An unknown key, a bad value or a key given twice\n"
		"                   is an error naming FILE:LINE (exit status 1).\n"
		"  --control PATH   unix socket to serve (required, here or as control in\n"
		"                   FILE; created with mode 0600, its directory too if\n"
		"                   missing). If another agent already serves PATH, kvmigd\n"
		"                   refuses to start; a stale socket file left by a dead\n"
		"                   agent is replaced.\n"
		"  --listen URI     accept incoming migrations on URI:\n"
		"                     tcp:HOST:PORT  HOST a name, an IPv4 address or [IPv6];\n"
		"                                    empty for every address; PORT 0 lets the\n"
		"                                    kernel pick one (agent.version shows it)\n"
		"                     unix:PATH      a unix socket (a stale one is replaced)\n"
		"                     tls:HOST:PORT  TLS over TCP: needs --tls-dir; every\n"
		"                                    source must show a client certificate\n"
		"                                    signed by its ca-cert.pem\n"
		"                   tcp://HOST:PORT, tls://HOST:PORT and unix:///PATH are\n"
		"                   accepted too. A source migrates here with kvmig migrate\n"
		"                   NAME --to tcp://HOST:PORT (tls://, unix:///PATH, or\n"
		"                   ssh://HOST through this host's sshd); the VM keeps its name.\n"
		"                   Up to %d --listen options: e.g. tls:0.0.0.0:49152 for\n"
		"                   other hosts and tcp:127.0.0.1:49153 for ssh:// tunnels\n"
		"                   (kvmig migrate --ssh-agent-port 49153). A tls: listener\n"
		"                   without --tls-dir takes only connections opened with a\n"
		"                   one-time key handed over SSH (--ssh-data tls).\n"
		"  --tls-dir DIR    TLS credentials, the layout of QEMU and libvirt:\n"
		"                   ca-cert.pem, server-cert.pem and server-key.pem for a\n"
		"                   tls: listener; ca-cert.pem, client-cert.pem and\n"
		"                   client-key.pem for migrations to tls:// (the default\n"
		"                   of kvmig migrate --tls-dir).\n",
		AGENT_MAX_LISTEN);
	fprintf(f,
		"  --state-dir DIR  directory for the agent's state: accepted and shown by\n"
		"                   agent.version, not used yet.\n"
		"  --announce IFACE after an incoming migration, send the RARP announce of\n"
		"                   the guest's MAC on IFACE (5 frames at 0, 50, 200, 450\n"
		"                   and 800 ms) when the source named no interface with\n"
		"                   kvmig migrate --announce; IFACE must exist at start.\n"
		"  --max-incoming N at most N migrations arrive at once (0 to %d; default 0:\n"
		"                   no limit of its own): one more is refused at its\n"
		"                   handshake, the source says why and the guest runs on\n"
		"                   there.\n"
		"  --max-outgoing N at most N migration jobs run at once (0 to %d; default\n"
		"                   0: no limit): migrate.start beyond them fails, saying so.\n"
		"  --bandwidth-budget MiB/s\n"
		"                   a budget the outgoing migrations share (fractions\n"
		"                   allowed; default 0: none): each job's stream is capped\n"
		"                   at its own --bandwidth or budget / running jobs, if\n"
		"                   less, split again as jobs start and end (job info shows\n"
		"                   bandwidth_limit).\n"
		"  --guest-mem SIZE the guest RAM this agent hosts at most, all its VMs\n"
		"                   together (K, M, G, T; default 0: no limit): a vm start,\n"
		"                   restore or incoming migration beyond it is refused,\n"
		"                   saying how much is free; agent.version's mem_free_bytes\n"
		"                   is what is left of it (kvmig drain places VMs by it).\n"
		"  --cpu-hide FEATURE[,FEATURE...]\n"
		"                   act as if this host's CPU lacked these features (names\n"
		"                   of /proc/cpuinfo: avx2,bmi2): VMs started here do not\n"
		"                   get them, and a migration or restore of a guest that\n"
		"                   uses one is refused, naming it. An unknown name is an\n"
		"                   error (exit status 2).\n"
		"  --tsc-khz KHZ    testing/override: report KHZ as this host's TSC rate to\n"
		"                   the CPU check of arriving migrations instead of what KVM\n"
		"                   says (guests still run at the real rate). A guest whose\n"
		"                   TSC rate differs by more than 250 ppm is logged as a\n"
		"                   warning, or refused when the source asked --strict-cpu.\n"
		"  --incoming stdio hand the migration stream on stdin/stdout to the agent\n"
		"                   at --control PATH (default $KVMIG_AGENT, else\n"
		"                   " CTL_DEFAULT_AGENT ") and exit: what kvmig migrate\n"
		"                   --ssh-exec runs through sshd, so a host needs no\n"
		"                   listener for ssh:// migrations.\n"
		"  --cpu-features   print the CPU features this host's KVM offers guests\n"
		"                   (after --cpu-hide) and its TSC rate, then exit.\n"
		"  -v, --verbose    log every request (like KVMIG_LOG=debug; default: info)\n"
		"  -V, --version    print the version and exit\n"
		"  -h, --help       print this help and exit\n"
		"\n",
		AGENTCONF_MAX_COUNT, AGENTCONF_MAX_COUNT);
	fprintf(f,
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
		"address in use, TLS credentials that do not load, a --config FILE that\n"
		"cannot be read or has a bad line), 2 on bad usage (a malformed --listen\n"
		"URI).\n",
		AGENT_MAX_CONNS, AGENT_MAX_INCOMING, REGISTRY_MAX_VMS);
}

/*
 * kvmigd --incoming stdio: started by sshd for kvmig migrate --ssh-exec.
 * The migration stream is on stdin/stdout: hand both to the running agent
 * (incoming.adopt, SCM_RIGHTS), which runs the migration. Stay until the
 * agent says the stream ended (its incoming.end line on the control
 * connection): sshd stops feeding our stdin (the agent's copy too) as soon
 * as we exit. Exit 0 when the migration arrived; 1 with the reason on
 * stderr (which ssh carries back to the source) when there is no agent,
 * it refused, or the migration failed.
 */
#define STDIO_ANSWER_MS 30000 /* for the answer to incoming.adopt; the end may take hours */

/* The next line from the agent into *o (lb keeps what came after it). */
static int stdio_next(struct ctl_linebuf *lb, int fd, uint64_t deadline, json_t **o, char *err,
		      size_t errlen)
{
	char *line;
	size_t len;
	int ret;

	while ((ret = ctl_linebuf_next(lb, &line, &len)) == 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = clock_now_ms();
		ssize_t n;

		if (deadline) {
			ret = now >= deadline ? 0 : poll(&p, 1, (int)(deadline - now));
			if (ret < 0 && errno == EINTR)
				continue;
			if (ret == 0) {
				snprintf(err, errlen, "no answer from the agent within %d s",
					 STDIO_ANSWER_MS / 1000);
				return -ETIMEDOUT;
			}
		}
		n = ctl_linebuf_read(lb, fd);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "the agent closed the connection before the "
					      "migration ended");
			return n < 0 ? (int)n : -ECONNRESET;
		}
	}
	if (ret < 0) {
		snprintf(err, errlen, "a line from the agent longer than %u bytes",
			 CTL_REQUEST_MAX);
		return ret;
	}
	return ctl_parse_object(line, len, o, err, errlen);
}

static int incoming_stdio(const char *control)
{
	const char *env = getenv("KVMIG_AGENT"), *client = getenv("SSH_CLIENT");
	const int fds[2] = {STDIN_FILENO, STDOUT_FILENO};
	uint64_t deadline = clock_now_ms() + STDIO_ANSWER_MS;
	char err[512], peer[256];
	json_t *req, *o = NULL;
	struct ctl_linebuf lb;
	int fd, ret;

	if (!control)
		control = env && env[0] ? env : CTL_DEFAULT_AGENT;
	fd = ctl_connect(control, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "kvmigd --incoming stdio: %s\n", err);
		return 1;
	}
	snprintf(peer, sizeof(peer), "ssh from %.64s (kvmigd --incoming stdio, pid %d)",
		 client && client[0] ? client : "an unknown host", (int)getpid());
	req = json_pack("{s:s, s:i, s:s}", "method", "incoming.adopt", "id", 1, "peer", peer);
	ret = req ? ctl_send_fds(fd, req, fds, 2, err, sizeof(err)) : -ENOMEM;
	json_decref(req);
	if (ret == 0)
		ret = ctl_linebuf_init(&lb, CTL_REQUEST_MAX);
	if (ret < 0) {
		fprintf(stderr, "kvmigd --incoming stdio: %s\n", ret == -ENOMEM ? "out of memory" : err);
		close(fd);
		return 1;
	}
	/*
	 * Two lines come: the answer to the request and, once the stream is
	 * over, incoming.end; the end may come first (a stream that fails at
	 * once) and both may arrive in one read (hence one line buffer).
	 */
	for (;;) {
		const char *e;

		ret = stdio_next(&lb, fd, deadline, &o, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "kvmigd --incoming stdio: %s\n", err);
			break;
		}
		e = json_string_value(json_object_get(o, "error"));
		if (json_object_get(o, "event")) {
			if (!json_is_true(json_object_get(o, "ok"))) {
				fprintf(stderr, "kvmigd --incoming stdio: the migration failed: %s\n",
					e ? e : "no reason given");
				ret = -EIO;
			}
			break;
		}
		if (!json_is_true(json_object_get(o, "ok"))) {
			fprintf(stderr, "kvmigd --incoming stdio: the agent at %s refused: %s\n",
				control, e ? e : "no reason given");
			ret = -EPERM;
			break;
		}
		/* taken: now wait for the end, however long the migration runs */
		deadline = 0;
		json_decref(o);
		o = NULL;
	}
	json_decref(o);
	ctl_linebuf_free(&lb);
	close(fd);
	return ret < 0 ? 1 : 0;
}

/*
 * Type=notify (tools/kvmigd.service.in): tell the service manager that
 * the agent serves its sockets (READY=1), or that it stops (STOPPING=1).
 * The protocol is one datagram to $NOTIFY_SOCKET, a path or, with a
 * leading '@', an abstract name; no libsystemd is needed. Without the
 * variable (not started by systemd) nothing is sent.
 */
static void notify_service(const char *state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n = path ? strlen(path) : 0;
	int fd;

	if (!n || (path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		pr_warn("cannot notify the service manager at %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* ---- options and the --config file ---- */

/* The options a --config file may set, and their keys there (tools/agentconf.h). */
static const struct {
	int opt;
	const char *name;
	enum agentconf_key key;
} conf_opts[] = {
	{'c', "control", AGENTCONF_CONTROL},
	{'l', "listen", AGENTCONF_LISTEN},
	{'t', "tls-dir", AGENTCONF_TLS_DIR},
	{'s', "state-dir", AGENTCONF_STATE_DIR},
	{'a', "announce", AGENTCONF_ANNOUNCE},
	{'I', "max-incoming", AGENTCONF_MAX_INCOMING},
	{'O', "max-outgoing", AGENTCONF_MAX_OUTGOING},
	{'B', "bandwidth-budget", AGENTCONF_BANDWIDTH},
	{'G', "guest-mem", AGENTCONF_GUEST_MEM},
};

/* Option opt's value into cli. Return: 0, or -errno after the message. */
static int set_option(struct agentconf *cli, int opt, const char *value)
{
	char err[512];
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(conf_opts); i++) {
		if (conf_opts[i].opt != opt)
			continue;
		ret = agentconf_set(cli, agentconf_key_name(conf_opts[i].key), value, 0, err,
				    sizeof(err));
		if (ret == -EINVAL)
			fprintf(stderr, "kvmigd: invalid --%s: %s\nTry 'kvmigd --help'.\n",
				conf_opts[i].name, err);
		else if (ret == -E2BIG)
			fprintf(stderr, "kvmigd: at most %d --listen addresses\n", AGENT_MAX_LISTEN);
		else if (ret < 0)
			fprintf(stderr, "kvmigd: --%s: %s\n", conf_opts[i].name, err);
		return ret;
	}
	return -ENOENT;
}

/* The agent's options from the configuration (file and command line); conf keeps the strings. */
static void apply_conf(struct agent *a, const struct agentconf *conf, const char *config_path)
{
	_Static_assert(AGENTCONF_MAX_LISTEN == AGENT_MAX_LISTEN, "one limit of --listen");
	a->config_path = config_path;
	a->control_path = conf->control;
	for (unsigned i = 0; i < conf->nlisten; i++)
		a->listen_uri[i] = conf->listen[i];
	a->nlisten = conf->nlisten;
	a->tls_dir = conf->tls_dir;
	a->state_dir = conf->state_dir;
	a->announce = conf->announce;
	a->max_incoming = conf->max_incoming;
	a->max_outgoing = conf->max_outgoing;
	a->bandwidth_budget = conf->bandwidth;
	a->guest_mem = conf->guest_mem;
}

/*
 * Everything but the configuration's lifetime: main frees conf and cli
 * whichever way this returns. Return: the exit status.
 */
static int run(int argc, char **argv, struct agentconf *conf, struct agentconf *cli)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"tls-dir", required_argument, NULL, 't'},
		{"state-dir", required_argument, NULL, 's'},
		{"announce", required_argument, NULL, 'a'},
		{"config", required_argument, NULL, 'C'},
		{"max-incoming", required_argument, NULL, 'I'},
		{"max-outgoing", required_argument, NULL, 'O'},
		{"bandwidth-budget", required_argument, NULL, 'B'},
		{"guest-mem", required_argument, NULL, 'G'},
		{"cpu-hide", required_argument, NULL, 'H'},
		{"tsc-khz", required_argument, NULL, 'K'},
		{"cpu-features", no_argument, NULL, 'F'},
		{"incoming", required_argument, NULL, 'i'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct agent a = {.lfd = -1, .sfd = -1, .epfd = -1, .wakefd = -1};
	static struct cpucheck_cpu host_cpu;
	static struct cpucheck_mask cpu_hide;
	bool verbose = false, hiding = false, list_features = false, stdio_mode = false;
	const char *cpu_hide_arg = NULL, *config_path = NULL;
	unsigned long tsc_khz = 0;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'l':
		case 't':
		case 's':
		case 'a':
		case 'I':
		case 'O':
		case 'B':
		case 'G':
			/* the options a --config file may set: checked as its lines are */
			if (set_option(cli, c, optarg) < 0)
				return 2;
			break;
		case 'C':
			config_path = optarg;
			break;
		case 'H': {
			char err[256];

			if (cpucheck_mask_parse(optarg, &cpu_hide, err, sizeof(err)) < 0) {
				fprintf(stderr, "kvmigd: --cpu-hide: %s\nTry 'kvmigd --help'.\n", err);
				return 2;
			}
			hiding = true;
			cpu_hide_arg = optarg;
			break;
		}
		case 'K': {
			char *end;

			errno = 0;
			tsc_khz = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || tsc_khz == 0 || tsc_khz > 100000000ul) {
				fprintf(stderr,
					"kvmigd: invalid --tsc-khz '%s': expected kHz, 1 to 100000000\n"
					"Try 'kvmigd --help'.\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'F':
			list_features = true;
			break;
		case 'i':
			if (strcmp(optarg, "stdio")) {
				fprintf(stderr, "kvmigd: --incoming takes only 'stdio', not '%s'\n"
						"Try 'kvmigd --help'.\n",
					optarg);
				return 2;
			}
			stdio_mode = true;
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
	if (config_path) {
		char err[1024];

		if (agentconf_load(conf, config_path, err, sizeof(err)) < 0) {
			fprintf(stderr, "kvmigd: %s\n", err);
			return 1;
		}
	}
	/* the command line wins over the file */
	agentconf_override(conf, cli);
	apply_conf(&a, conf, config_path);
	if (list_features) {
		char err[256], *names;
		size_t need;

		if (vm_host_cpu(&host_cpu, err, sizeof(err)) < 0) {
			fprintf(stderr, "kvmigd: %s\n", err);
			return 1;
		}
		cpucheck_mask_apply(&host_cpu, &cpu_hide);
		need = cpucheck_list_features(&host_cpu, NULL, 0) + 1;
		names = malloc(need);
		if (!names)
			return 1;
		cpucheck_list_features(&host_cpu, names, need);
		printf("features: %s\ntsc_khz: %lu\n", names,
		       tsc_khz ? tsc_khz : (unsigned long)host_cpu.tsc_khz);
		free(names);
		return 0;
	}
	if (stdio_mode)
		return incoming_stdio(a.control_path);
	if (!a.control_path || !a.control_path[0]) {
		fprintf(stderr, "kvmigd: --control PATH is required (or control = PATH in the "
				"--config file)\nTry 'kvmigd --help'.\n");
		return 2;
	}
	if (verbose)
		log_set_level(LOG_DEBUG);
	else if (!getenv("KVMIG_LOG"))
		log_set_level(LOG_INFO);
	if (a.tls_dir && access(a.tls_dir, R_OK | X_OK) < 0)
		pr_warn("--tls-dir %s: %s (migrations to tls:// will fail)", a.tls_dir,
			strerror(errno));
	if (a.announce) {
		char err[256];

		if (announce_iface_check(a.announce, err, sizeof(err)) < 0) {
			fprintf(stderr, "kvmigd: --announce %s: %s\n", a.announce, err);
			return 1;
		}
	}
	if (a.state_dir && access(a.state_dir, R_OK | X_OK) < 0)
		pr_warn("--state-dir %s: %s (not used yet)", a.state_dir, strerror(errno));

	signal(SIGPIPE, SIG_IGN);
	a.start_ns = clock_now_ns();
	pthread_mutex_init(&a.lock, NULL);
	a.reg = registry_new();
	a.jobs = jobs_new();
	if (!a.reg || !a.jobs || session_table_create(&a.sessions) < 0 ||
	    pc_table_create(&a.pcs) < 0) {
		pr_err("out of memory");
		registry_free(a.reg);
		jobs_free(a.jobs);
		return 1;
	}
	if (setup_socket(&a) < 0) {
		status = 1;
		goto out;
	}
	for (unsigned i = 0; i < a.nlisten; i++) {
		struct channel_opts co = {.tls_dir = a.tls_dir};
		char err[512];

		if (channel_listen_opts(a.listen_uri[i], &co, &a.ml[i], err, sizeof(err)) < 0) {
			pr_err("%s", err);
			status = 1;
			goto out;
		}
		if (channel_listener_addr(a.ml[i], a.ml_addr[i], sizeof(a.ml_addr[i])) < 0)
			snprintf(a.ml_addr[i], sizeof(a.ml_addr[i]), "%s", a.listen_uri[i]);
		/* a relative unix path is made absolute here: the agent never changes directory */
		if (channel_listener_uri(a.ml[i], a.ml_uri[i], sizeof(a.ml_uri[i])) < 0) {
			a.ml_uri[i][0] = '\0';
			pr_warn("--listen %s: no URI a source could reach it by (path too long?)",
				a.listen_uri[i]);
		}
	}
	if (agent_loop_init(&a) < 0) {
		status = 1;
		goto out;
	}
	{
		char err[256] = "";

		if (vm_kvm_available(err, sizeof(err)) < 0) {
			pr_warn("KVM is not available (%s): VMs cannot be started", err);
		} else if (vm_host_cpu(&host_cpu, err, sizeof(err)) < 0) {
			pr_warn("cannot read this host's CPU (%s): arriving guests are checked "
				"when they are built", err);
		} else {
			cpucheck_mask_apply(&host_cpu, &cpu_hide);
			if (tsc_khz) {
				pr_info("reporting a TSC rate of %lu kHz (--tsc-khz; KVM says %u kHz)",
					tsc_khz, host_cpu.tsc_khz);
				host_cpu.tsc_khz = (uint32_t)tsc_khz;
			}
			a.cpu = &host_cpu;
		}
		if (hiding) {
			a.cpu_hide = &cpu_hide;
			pr_info("hiding CPU features from guests: %s", cpu_hide_arg);
		}
	}
	pr_info("kvmigd %s serving %s (pid %d)%s%s", KVMIG_VERSION, a.control_path, (int)getpid(),
		config_path ? ", configured by " : "", config_path ? config_path : "");
	for (unsigned i = 0; i < a.nlisten; i++)
		pr_info("accepting migrations on %s", a.ml_addr[i]);
	if (a.max_incoming || a.max_outgoing || a.bandwidth_budget)
		pr_info("limits: max_incoming %u, max_outgoing %u, bandwidth budget %.1f MiB/s "
			"(0: none)",
			a.max_incoming, a.max_outgoing, (double)a.bandwidth_budget / 1048576.0);
	notify_service("READY=1");
	agent_loop_run(&a);
	if (!a.quit)
		status = 1;
	notify_service("STOPPING=1");
out:
	shutdown_agent(&a);
	pthread_mutex_destroy(&a.lock);
	if (status == 0)
		pr_info("stopped after %llu requests", (unsigned long long)a.requests);
	return status;
}

int main(int argc, char **argv)
{
	struct agentconf conf, cli;
	int status;

	agentconf_init(&conf);
	agentconf_init(&cli);
	status = run(argc, argv, &conf, &cli);
	agentconf_free(&cli);
	agentconf_free(&conf);
	return status;
}
