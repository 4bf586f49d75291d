/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - kvmig bench codec|channel|migrate (tools/cmd_bench.h): the
 * help texts, and each bench's options handed to its module.
 */
#include "tools/cmd_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "bench/chanbench.h"
#include "bench/codecbench.h"
#include "bench/migbench.h"
#include "migrate/opts.h"
#include "protocol/channel.h"

static void help_bench(FILE *f)
{
	fprintf(f,
		"Usage: kvmig bench codec|channel|migrate [--json] [OPTIONS]\n"
		"\n"
		"Run one of the benchmarks of the source tree's bench/ (make bench) here,\n"
		"in this process (no agent is involved), and print the same table, or with\n"
		"--json one JSON object with the figures, the command line and the settings.\n"
		"\n"
		"  bench codec     the page codecs (zstd, lz4, XBZRLE, the zero-page scan):\n"
		"                  MB/s each way and ratio on zero, text, binary and random pages\n"
		"  bench channel   the migration channel's throughput: on loopback against the\n"
		"                  bare transport, or between two hosts as iperf does (--listen\n"
		"                  on one, --to on the other)\n"
		"  bench migrate   one live migration of a dirtying guest inside this process:\n"
		"                  total time, downtime, bytes (needs /dev/kvm)\n"
		"\n"
		"'kvmig bench BENCH --help' lists each one's options. MB is 10^6 bytes.\n"
		"Exit status: 0 success, 1 the bench could not run or measure, 2 bad usage.\n");
}

static void help_codec(FILE *f)
{
	fprintf(f, "Usage: kvmig bench codec [--json] [--mib N] [--time SECS] [--no-cli]\n"
		   "\n"
		   "Encode and decode page sets built here: zero pages, text pages (from\n"
		   "/usr/share/common-licenses and /usr/share/doc/*/copyright), binary pages\n"
		   "(/usr/lib/x86_64-linux-gnu/*.so*, /usr/bin/*) and random pages, with zstd:1,\n"
		   "zstd:3, lz4 and lz4hc:9: MB/s each way, ratio (page bytes over payload\n"
		   "bytes) and the share of pages sent raw because the codec could not shrink\n"
		   "them. Then the zero-page scan and XBZRLE (1, 64 and 1024 changed bytes per\n"
		   "page) for each SIMD implementation this CPU has, and, unless --no-cli, the\n"
		   "zstd and lz4 command-line tools (-b1 -B4096) on the same data when they are\n"
		   "installed. Each figure is the best of at least 3 passes over its set; every\n"
		   "page is checked to decode back to itself.\n"
		   "\n"
		   "  --mib N      MiB per page set (default 64; at least 64 pages)\n"
		   "  --time SECS  time per measurement (default 0.3)\n"
		   "  --no-cli     leave out the zstd and lz4 command-line tools\n"
		   "  --json       one JSON object: settings, cpu, codecs[] (codec, set,\n"
		   "               enc_mb_per_s, dec_mb_per_s, ratio, raw_pct), zero_scan[],\n"
		   "               xbzrle[], reference[] (null with --no-cli), total_s\n");
}

static void help_channel(FILE *f)
{
	fprintf(f,
		"Usage: kvmig bench channel [--json] [--gib N] [--repeat R] [--streams N]\n"
		"                           [--transport tcp|unix|tls|tls-psk]\n"
		"                           [--cipher aes128gcm|chacha20] [--tls-dir DIR]\n"
		"       kvmig bench channel --listen ADDR [--once] [--tls-dir DIR] [--cipher C] "
		"[--json]\n"
		"       kvmig bench channel --to URI [--gib N] [--streams N] [--tls-dir DIR]\n"
		"                           [--cipher C] [--ssh-agent-port PORT] "
		"[--ssh-accept-new]\n"
		"                           [--json]\n"
		"\n"
		"Without --listen or --to, on loopback in this process: the channel (frames\n"
		"of 512 raw pages; every header, CRC and page entry checked by the receiver)\n"
		"against the bare transport (write/read of 1 MiB; SSL_write/SSL_read with\n"
		"the same certificates and suite) and against raw TCP. The rows: tcp and\n"
		"unix; tls and tls-psk (the channel of --ssh-data tls) with --cipher, or the\n"
		"one --transport names. Each figure is the median of --repeat runs.\n"
		"\n"
		"Between two hosts, as iperf:\n"
		"  one host:    kvmig bench channel --listen tls:0.0.0.0:5201 --tls-dir DIR\n"
		"  the other:   kvmig bench channel --to tls://HOST:5201 --tls-dir DIR --gib 4\n"
		"The sink (--listen) prints where it listens (port 0: one the kernel picks),\n"
		"then one line per session, serving one sender at a time until it is\n"
		"stopped (--once: one session, and its exit status says how it went). The\n"
		"sender (--to) sends --gib GiB on each of --streams connections and prints\n"
		"the MB/s of all of them (from the moment the sink is ready on every stream\n"
		"to its last answer), the transport, TLS version, cipher suite and kTLS,\n"
		"the bytes sent and the bytes the sink received; it fails unless the sink\n"
		"received every byte.\n"
		"\n"
		"  --gib N          GiB per stream (default 1; fractions allowed)\n"
		"  --streams N      connections at once, 1 to %d (default 1); MB/s is their sum\n"
		"  --repeat R       loopback: runs per figure, 1 to 50 (default 5)\n"
		"  --transport T    loopback: only T (tcp, unix, tls, tls-psk)\n"
		"  --cipher C       the TLS 1.3 suite: aes128gcm (TLS_AES_128_GCM_SHA256) or\n"
		"                   chacha20 (TLS_CHACHA20_POLY1305_SHA256); default: OpenSSL's\n"
		"                   choice between the hosts, and on loopback no tls rows\n"
		"  --tls-dir DIR    TLS credentials: ca-cert.pem, and server-cert.pem and\n"
		"                   server-key.pem (--listen) or client-cert.pem and\n"
		"                   client-key.pem (--to); both ends check the other's\n"
		"                   certificate. Loopback TLS without it works only from the\n"
		"                   source tree (tests/helpers/mkcerts.sh makes them)\n"
		"  --listen ADDR    be the sink: tcp:HOST:PORT, tls:HOST:PORT, unix:PATH\n"
		"  --once           the sink serves one session, then exits\n"
		"  --to URI         be the sender: tcp://HOST:PORT, tls://HOST:PORT,\n"
		"                   unix:///PATH, or ssh://[USER@]HOST[:PORT]: through the sshd\n"
		"                   there to a sink listening on tcp:127.0.0.1:PORT of that host\n"
		"  --ssh-agent-port PORT  ssh://: that sink's PORT (default %u)\n"
		"  --ssh-accept-new       ssh://: trust and record a host key that is not in\n"
		"                   ~/.ssh/known_hosts (a changed key is always refused)\n"
		"  --json           one JSON object; the sink one per line, the first saying\n"
		"                   where it listens (listen, uri), then one per session\n"
		"                   (event received or failed)\n",
		CHANBENCH_MAX_STREAMS, CHANNEL_AGENT_PORT);
}

static void help_migrate(FILE *f)
{
	fprintf(f,
		"Usage: kvmig bench migrate [--json] [--mem SIZE] [--workset SIZE] [--vcpus N]\n"
		"                           [--warm PAGES] [ENGINE OPTIONS]\n"
		"\n"
		"Live-migrate a guest inside this process, as two agents on one host would:\n"
		"a source VM running seqdirty (it writes its working set over and over),\n"
		"and a destination on TCP loopback (TLS with --tls-dir) that builds the VM,\n"
		"runs it and confirms. After a warm-up it measures the guest's pace, migrates,\n"
		"and watches the guest run on at the destination. It prints the status, the\n"
		"total time, the downtime as the engine measures it and as the guest saw it\n"
		"(the longest pause in its progress, sampled every %u us on both sides), the\n"
		"set-up time, the bytes sent, the rounds and the guest's pace during the\n"
		"migration. Needs a working /dev/kvm.\n"
		"\n"
		"  --mem SIZE           guest RAM (K, M, G; default 1G; a multiple of 2M)\n"
		"  --workset SIZE       what the guest keeps dirtying (default 16M)\n"
		"  --vcpus N            vCPUs (default 1)\n"
		"  --warm PAGES         guest progress before the migration starts (default:\n"
		"                       two passes over the working set)\n"
		"Engine options, as kvmig migrate takes them unless said:\n"
		"  --max-downtime MS    (default 300)\n"
		"  --bandwidth BYTES/S  bytes per second, K/M/G binary (default 0: unlimited)\n"
		"  --xbzrle SIZE        an XBZRLE cache of SIZE bytes (default: off)\n"
		"  --compress ALG       none (default), zstd[:LEVEL], lz4 or auto\n"
		"  --parallel N         connections, 1 to %d\n"
		"  --auto-converge      throttle the vCPUs when the guest outruns the link\n"
		"  --max-iterations N   give up after N rounds (default 30; 0: never)\n"
		"  --verify             compare a digest of all guest RAM on both sides\n"
		"  --tls-dir DIR        TLS on loopback, both ends with DIR's credentials\n"
		"  --postcopy MODE      off (default), auto, now, or manual with\n"
		"  --postcopy-after MS  the switch to post-copy asked for MS after the start\n"
		"  --timeout SEC        kvmig's global option: give the migration up after\n"
		"                       SEC seconds (default 600; 0: never)\n"
		"  --json               one JSON object: the figures (bench/migbench.h), the\n"
		"                       command line and the settings the job ran with\n"
		"\n"
		"Exit status: 0 the migration completed and the guest ran on; 1 it did not\n"
		"(the table or the object says why) or no /dev/kvm; 2 bad usage.\n",
		MIGBENCH_WATCH_PERIOD_US, MIGRATE_MAX_PARALLEL);
}

/* The options after "bench BENCH": --help anywhere among them asks for the help. */
static bool wants_help(const struct cli *cli)
{
	for (int i = 2; i < cli->argc; i++)
		if (cli_is_help(cli->argv[i]))
			return true;
	return false;
}

/* What made the output: this process's command line, or its words. */
static char *command_line(const struct cli *cli)
{
	static char name[] = "kvmig";
	char *s = bench_self_cmdline();
	char **w;

	if (s)
		return s;
	w = calloc((size_t)cli->argc + 1, sizeof(*w));
	if (!w)
		cli_die(CLI_EXIT_ERR, "out of memory");
	w[0] = name;
	for (int i = 0; i < cli->argc; i++)
		w[i + 1] = cli->argv[i];
	s = bench_cmdline(cli->argc + 1, w);
	free(w);
	return s;
}

static int bench_codec(const struct cli *cli)
{
	struct codecbench_opts o;
	char err[512], *cmd;
	int ret;

	codecbench_defaults(&o);
	if (codecbench_parse(cli->argc - 2, cli->argv + 2, &o, err, sizeof(err)) < 0)
		cli_usage_error("kvmig bench codec --help", "bench codec: %s", err);
	cmd = command_line(cli);
	ret = codecbench_run(&o, cmd, cli->json, stdout, err, sizeof(err));
	free(cmd);
	if (ret < 0)
		cli_die(CLI_EXIT_ERR, "bench codec: %s", err);
	return 0;
}

static int bench_channel(const struct cli *cli)
{
	struct chanbench_opts o;
	char err[768], *cmd;
	int ret;

	chanbench_defaults(&o);
	if (chanbench_parse(cli->argc - 2, cli->argv + 2, &o, err, sizeof(err)) < 0)
		cli_usage_error("kvmig bench channel --help", "bench channel: %s", err);
	cmd = command_line(cli);
	ret = chanbench_run(&o, cmd, cli->json, stdout, err, sizeof(err));
	free(cmd);
	if (ret < 0)
		cli_die(CLI_EXIT_ERR, "bench channel: %s", err);
	return 0;
}

static int bench_migrate(const struct cli *cli)
{
	struct migbench_opts o;
	char err[768], *cmd;
	int ret;

	migbench_defaults(&o);
	/* the global --timeout SEC is the migration's (kvmig.c took it out of argv) */
	o.mo.timeout_ms = (uint64_t)cli->timeout_ms;
	if (migbench_parse(cli->argc - 2, cli->argv + 2, &o, err, sizeof(err)) < 0)
		cli_usage_error("kvmig bench migrate --help", "bench migrate: %s", err);
	cmd = command_line(cli);
	ret = migbench_run(&o, cmd, cli->json, stdout, err, sizeof(err));
	free(cmd);
	if (ret == -ENODEV)
		cli_die(CLI_EXIT_ERR, "bench migrate needs a working /dev/kvm: %s", err);
	if (ret != 0)
		cli_die(CLI_EXIT_ERR, "bench migrate: %s", err);
	return 0;
}

int cmd_bench(const struct cli *cli)
{
	static const struct {
		const char *name;
		int (*run)(const struct cli *cli);
		void (*help)(FILE *f);
	} benches[] = {
		{"codec", bench_codec, help_codec},
		{"channel", bench_channel, help_channel},
		{"migrate", bench_migrate, help_migrate},
	};
	const char *sub = cli->argc > 1 ? cli->argv[1] : NULL;

	if (!sub)
		cli_usage_error("kvmig bench --help", "usage: kvmig bench codec|channel|migrate "
						      "[--json] [OPTIONS]");
	if (cli_is_help(sub)) {
		help_bench(stdout);
		return 0;
	}
	bench_set_prog("kvmig");
	for (size_t i = 0; i < ARRAY_SIZE(benches); i++) {
		if (strcmp(sub, benches[i].name))
			continue;
		if (wants_help(cli)) {
			benches[i].help(stdout);
			return 0;
		}
		return benches[i].run(cli);
	}
	cli_usage_error("kvmig bench --help", "unknown bench '%s' (codec, channel or migrate)",
			sub);
}
