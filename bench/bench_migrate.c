/* SPDX-License-Identifier: MIT */
/*
 * bench_migrate.c - one live migration on real KVM, measured end to end,
 * in one process, and the helpers bench/e2e.sh needs around it. The
 * migration itself is bench/migbench.h's (which `kvmig bench migrate`
 * runs too); this program adds what only the comparison with QEMU needs.
 *
 *   bench_migrate run [--mem SIZE] [--workset SIZE] [--vcpus N] [--xbzrle SIZE]
 *                     [--compress none|zstd[:L]|lz4|auto] [--parallel N] [--auto-converge] [--verify]
 *                     [--max-downtime MS] [--bandwidth BYTES_PER_S] [--max-iterations N]
 *                     [--warm PAGES] [--timeout MS] [--tls-dir DIR]
 *                     [--postcopy off|auto|now|manual] [--postcopy-after MS]
 *   bench_migrate tcp [--mib N]
 *   bench_migrate watch SRC_FILE DST_FILE
 *   bench_migrate probe
 *
 * run: the migration of bench/migbench.h; prints its JSON object on one
 * line (what each member means is there).
 *
 * tcp: the raw loopback TCP throughput in the same run: --mib MiB (default
 * 1024) written in 1 MiB write()s on one thread and read() on another over a
 * connection made by channel_listen/connect/accept (so with the channel's
 * socket options): bench/chanbench.h's tcp pump. Prints
 * {"tcp_bytes": ..., "tcp_ms": ..., "tcp_bytes_per_s": ...}.
 *
 * watch SRC_FILE DST_FILE: the same guest-seen downtime for QEMU, whose
 * guest (bench/qemu/dirty.S) writes one byte per 256 pages to a debugcon
 * file on each side: samples the sum of both sizes every
 * MIGBENCH_WATCH_PERIOD_US until SIGTERM (migbench_gaps, as run's
 * watcher), then prints guest_downtime_ms and gap_start_ns (on
 * CLOCK_MONOTONIC, as Python's time.monotonic()). bench/qemu/qmp.py runs it.
 *
 * probe: does KVM really run a guest here? Starts a small seqdirty VM and
 * waits (up to PROBE_DEADLINE_NS) until its progress reaches PROBE_PAGES:
 * exit 0 when it did, 1 when the VM could not be built or made no progress,
 * 77 without /dev/kvm. bench/e2e.sh runs natively when it passes.
 *
 * Exit status: 0 (also when the migration itself failed: status says so),
 * 1 on a setup error (a bad option too), 77 without /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/chanbench.h"
#include "bench/migbench.h"
#include "common/clock.h"
#include "common/parse.h"
#include "vm/vm.h"

#define PROBE_PAGES	  1024
#define PROBE_DEADLINE_NS (30ull * 1000000000ull)

/* ---- run: one migration ------------------------------------------------------------ */

static int cmd_run(int argc, char **argv)
{
	struct migbench_opts o;
	char err[512];
	int ret;

	migbench_defaults(&o);
	if (migbench_parse(argc, argv, &o, err, sizeof(err)) < 0)
		bench_fatal("%s", err);
	ret = migbench_run(&o, NULL, true, stdout, err, sizeof(err));
	if (ret == -ENODEV) {
		fprintf(stderr, "bench_migrate: SKIPPED: %s\n", err);
		return 77;
	}
	if (ret < 0)
		bench_fatal("%s", err);
	return 0;	/* also when the migration failed (ret 1): its status says so */
}

/* ---- probe: does a guest run here? ------------------------------------------------ */

static int cmd_probe(void)
{
	struct vm_config cfg;
	struct vm_guest_stats st = { 0 };
	struct vm *vm = NULL;
	char err[512];
	uint64_t t0;

	if (vm_kvm_available(err, sizeof(err))) {
		fprintf(stderr, "bench_migrate: probe: %s\n", err);
		return 77;
	}
	vm_config_defaults(&cfg, "probe");
	cfg.mem_bytes = 64ull << 20;
	cfg.vcpus = 1;
	snprintf(cfg.guest, sizeof(cfg.guest), "seqdirty");
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "workset=1M");
	if (vm_create(&cfg, &vm, err, sizeof(err))) {
		fprintf(stderr, "bench_migrate: probe: vm_create: %s\n", err);
		return 1;
	}
	if (vm_start(vm)) {
		fprintf(stderr, "bench_migrate: probe: vm_start failed\n");
		vm_destroy(vm);
		return 1;
	}
	t0 = clock_now_ns();
	for (;;) {
		vm_get_stats(vm, &st);
		if (st.progress >= PROBE_PAGES || vm_dead_vcpus(vm) ||
		    clock_now_ns() - t0 > PROBE_DEADLINE_NS)
			break;
		usleep(2000);
	}
	vm_destroy(vm);
	if (st.progress < PROBE_PAGES) {
		fprintf(stderr, "bench_migrate: probe: the guest made %llu of %u pages of progress\n",
			(unsigned long long)st.progress, PROBE_PAGES);
		return 1;
	}
	printf("{\"probe\": \"ok\", \"ms\": %.0f}\n", (double)(clock_now_ns() - t0) / 1e6);
	return 0;
}


/* ---- tcp: the raw loopback throughput ------------------------------------------ */

static int cmd_tcp(int argc, char **argv)
{
	uint64_t bytes = 1ull << 30, mib;
	double secs;

	for (int i = 0; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mib") && parse_size(argv[i + 1], &mib) == 0)
			bytes = mib << 20;
		else
			bench_fatal("unknown option or bad value: %s %s", argv[i], argv[i + 1]);
	}
	if (argc % 2)
		bench_fatal("%s needs a value", argv[argc - 1]);
	secs = chanbench_tcp_pump(bytes);
	bytes = (bytes + (1u << 20) - 1) >> 20 << 20;
	printf("{\"tcp_bytes\": %llu, \"tcp_ms\": %.1f, \"tcp_bytes_per_s\": %.0f}\n",
	       (unsigned long long)bytes, secs * 1e3, (double)bytes / secs);
	return 0;
}

/* ---- watch: the same sampling for QEMU's debugcon files -------------------------- */

static volatile sig_atomic_t watch_stop;

static void on_term(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Size of the file at path, opened once it exists (fd cached in *fd). */
static uint64_t file_size(const char *path, int *fd)
{
	struct stat st;

	if (*fd < 0)
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st))
		return 0;
	return (uint64_t)st.st_size;
}

static int cmd_watch(int argc, char **argv)
{
	const struct timespec period = { 0, MIGBENCH_WATCH_PERIOD_US * 1000 };
	struct sigaction sa;
	struct migbench_gaps g;
	int fs = -1, fd = -1;
	uint64_t s = 0, d = 0;
	const char *sched;

	if (argc != 2)
		bench_fatal("usage: bench_migrate watch SRC_FILE DST_FILE");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	memset(&g, 0, sizeof(g));
	sched = migbench_sampler_sched();
	while (!watch_stop) {
		s = file_size(argv[0], &fs);
		d = file_size(argv[1], &fd);
		migbench_gaps_sample(&g, s + d, clock_now_ns());
		nanosleep(&period, NULL);
	}
	migbench_gaps_end(&g, clock_now_ns());
	printf("{\"guest_downtime_ms\": %.1f, \"gap_start_ns\": %llu, \"watch_samples\": %llu, "
	       "\"watch_max_sample_us\": %.0f, \"watch_sched\": \"%s\", \"src_bytes\": %llu, "
	       "\"dst_bytes\": %llu}\n",
	       (double)g.gap_ns / 1e6, (unsigned long long)g.gap_start_ns,
	       (unsigned long long)g.samples, (double)g.max_sample_ns / 1e3, sched, (unsigned long long)s,
	       (unsigned long long)d);
	return 0;
}

int main(int argc, char **argv)
{
	bench_set_prog("bench_migrate");
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "tcp"))
		return cmd_tcp(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "watch"))
		return cmd_watch(argc - 2, argv + 2);
	if (argc == 2 && !strcmp(argv[1], "probe"))
		return cmd_probe();
	fprintf(stderr, "usage: bench_migrate run " MIGBENCH_SYNOPSIS "\n"
			"                        (--tls-dir DIR: TLS with the credentials of DIR, "
			"both ends)\n"
			"       bench_migrate tcp [--mib N]\n"
			"       bench_migrate watch SRC_FILE DST_FILE\n"
			"       bench_migrate probe\n");
	return 2;
}
