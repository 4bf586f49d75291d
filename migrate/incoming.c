/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "incoming: "
#include "migrate/incoming.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/clock.h"
#include "common/log.h"
#include "migrate/announce.h"
#include "migrate/digest.h"
#include "migrate/pageplace.h"
#include "migrate/pcdest.h"
#include "migrate/session.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "vm/cpucheck.h"
#include "vm/state.h"

#define OUT_BUF 2048
#define JOIN_TIMEOUT_MS 10000		/* a secondary waits this long for channel 0 */
#define BARRIER_TIMEOUT_MS 120000	/* channel 0 waits this long for the others */
#define SUPPORTED_CAPS                                                                  \
	(WIRE_CAP_XBZRLE | WIRE_CAP_ZSTD | WIRE_CAP_LZ4 | WIRE_CAP_VERIFY | WIRE_CAP_MULTI | \
	 WIRE_CAP_CPUID | WIRE_CAP_ANNOUNCE)	/* POSTCOPY: when this host can */

struct incoming {
	struct mio *in, *ret;
	char name[VM_NAME_MAX];
	struct wire_hello hello;
	uint32_t caps;
	struct wire_order order;
	struct vm_ram ram;
	bool have_ram;
	uint8_t *ram_base;		/* where pages go: ours, or channel 0's */
	int ram_fd;			/* the same RAM as a file */
	uint64_t ram_bytes;
	struct page_placer place;	/* PAGES into ram (set up with the decoders) */
	struct session_table *sessions;	/* where parallel channels meet, or NULL */
	struct session *sess;		/* a parallel migration */
	bool secondary;			/* channel 1..N-1 of one */
	struct vm_state *state;
	uint32_t seen, vcpus_seen, sections;
	struct codec_ctx *zstd, *lz4;
	uint8_t *buf, *out;
	struct incoming_stats st;
	struct wire_complete complete;
	bool expect_eof;
	bool check_only;
	incoming_key_fn key_fn;
	void *key_ctx;
	bool key_done;
	incoming_hello_fn hello_fn;
	void *hello_ctx;
	/* the RARP announce: what the source asked for (ANNOUNCE), else the default */
	bool ack_pending;		/* HELLO offered ANNOUNCE: HELLO_ACK waits for it */
	bool announce_set;		/* iface and sched hold an announce to make */
	char announce_iface[ANNOUNCE_IFACE_MAX];
	struct announce_sched announce_sched;
	/* CPU compatibility (vm/cpucheck.h) */
	/* post-copy (migrate/pcdest.h) */
	struct pc_table *pcs;			/* borrowed: where FAULT/RESUME streams meet */
	struct pcdest *pd;			/* channel 0 of a post-copy: its receiver */
	bool postcopy;				/* SWITCHOVER said POSTCOPY */
	bool pc_stream;				/* a FAULT or RESUME stream, served */
	const struct cpucheck_cpu *host_cpu;	/* borrowed, or NULL: own_cpu, queried */
	struct cpucheck_cpu *own_cpu;
	struct wire_cpuid *cpuid;		/* the CPUID frame, once it came */
	bool cpuid_pending;			/* HELLO offered it: HELLO_ACK waits for it */
	/* the VM prepared while the pages arrive (prep_start .. prep_join) */
	bool prep_started;			/* the kvmig-prep thread runs or ran: join it */
	pthread_t prep_thread;
	struct vm_config prep_cfg;		/* from HELLO; read by that thread only */
	struct vm_ram prep_ram;			/* a copy of ram's handles, ditto */
	struct vm *prep_vm;			/* its result, ours once joined */
	/* then, once round 0 is in, it maps that round's pages (pageplace.h) */
	pthread_mutex_t prep_lock;
	pthread_cond_t prep_cond;
	bool bulk_done;				/* round 0 is in RAM (under prep_lock) */
	atomic_bool prep_stop;			/* joining: stop mapping, do not wait */
	uint64_t mapped_pages;
	struct vm *stale_vm;			/* prepared but unfit: goes in incoming_destroy,
						 * after the guest runs, not in the downtime */
	int prep_ret;
	uint64_t prep_ns;			/* how long vm_prepare took */
	char prep_err[256];
};

static void prep_discard(struct incoming *inc);

int incoming_create(struct mio *in, struct mio *ret, const char *name, struct incoming **out)
{
	struct incoming *inc = calloc(1, sizeof(*inc));

	*out = NULL;
	if (!inc)
		return -ENOMEM;
	inc->in = in;
	inc->ret = ret;
	if (name)
		snprintf(inc->name, sizeof(inc->name), "%s", name);
	inc->ram.fd = -1;
	pthread_mutex_init(&inc->prep_lock, NULL);
	pthread_cond_init(&inc->prep_cond, NULL);
	atomic_init(&inc->prep_stop, false);
	wire_order_init(&inc->order, false);
	inc->state = calloc(1, sizeof(*inc->state));
	inc->buf = malloc(MIO_FRAME_BUF);
	inc->out = malloc(OUT_BUF);
	if (!inc->state || !inc->buf || !inc->out) {
		incoming_destroy(inc);
		return -ENOMEM;
	}
	*out = inc;
	return 0;
}

void incoming_destroy(struct incoming *inc)
{
	if (!inc)
		return;
	prep_discard(inc);
	vm_destroy(inc->stale_vm);
	pcdest_destroy(inc->pd);
	if (inc->have_ram)
		vm_ram_destroy(&inc->ram);
	page_placer_fini(&inc->place);
	codec_ctx_destroy(inc->zstd);
	codec_ctx_destroy(inc->lz4);
	free(inc->own_cpu);
	free(inc->cpuid);
	free(inc->state);
	free(inc->buf);
	free(inc->out);
	pthread_cond_destroy(&inc->prep_cond);
	pthread_mutex_destroy(&inc->prep_lock);
	free(inc);
}

const char *incoming_name(const struct incoming *inc)
{
	return inc->name[0] ? inc->name : inc->hello.name;
}

void incoming_get_stats(const struct incoming *inc, struct incoming_stats *st)
{
	*st = inc->st;
	st->bytes = inc->in->bytes_in;
}

static int send_ret(struct incoming *inc, ssize_t n)
{
	int ret;

	if (!inc->ret)
		return 0;
	if (n < 0)
		return (int)n;
	ret = mio_write(inc->ret, inc->out, (size_t)n);
	return ret ? ret : mio_flush(inc->ret);
}

/* Decoder contexts for the negotiated compressors, and the placer using them (RAM set). */
static int make_decoders(struct incoming *inc, char *err, size_t errlen)
{
	if (inc->caps & WIRE_CAP_ZSTD) {
		struct codec_config c = { .ops = &codec_zstd_ops, .level = 1 };

		if (codec_ctx_create(&c, WIRE_PAGE_SIZE, &inc->zstd) < 0)
			return err_set(-ENOMEM, err, errlen, "out of memory for zstd");
	}
	if (inc->caps & WIRE_CAP_LZ4) {
		struct codec_config c = { .ops = &codec_lz4_ops, .level = 1 };

		if (codec_ctx_create(&c, WIRE_PAGE_SIZE, &inc->lz4) < 0)
			return err_set(-ENOMEM, err, errlen, "out of memory for lz4");
	}
	if (page_placer_init(&inc->place, inc->ram_base, inc->ram_fd, inc->ram_bytes, inc->zstd,
			     inc->lz4) < 0)
		return err_set(-ENOMEM, err, errlen, "out of memory for the page placer");
	return 0;
}

/*
 * Channel 1..N-1 of a parallel migration: join the session channel 0
 * opened (it may come a little later), then carry pages into its RAM.
 */
static int on_hello_secondary(struct incoming *inc, char *err, size_t errlen)
{
	struct wire_hello_ack ack = { .version = WIRE_VERSION };
	struct session_info si;
	int ret;

	ret = session_join(inc->sessions, inc->hello.session, inc->hello.channel,
			   inc->hello.channels, inc->in, JOIN_TIMEOUT_MS, &inc->sess, &si, err, errlen);
	if (ret < 0)
		return ret;
	inc->secondary = true;
	inc->order.pages_only = true;
	inc->ram_base = si.ram;
	inc->ram_fd = si.ram_fd;
	inc->ram_bytes = si.ram_bytes;
	inc->caps = si.caps;
	if ((inc->hello.caps & inc->caps) != inc->caps)
		return err_set(-EPROTO, err, errlen,
			    "HELLO: channel %u offers capabilities 0x%x, channel 0 chose 0x%x",
			    inc->hello.channel, inc->hello.caps, inc->caps);
	ret = make_decoders(inc, err, errlen);
	if (ret < 0)
		return ret;
	ack.caps = inc->caps;
	return send_ret(inc, frame_put_hello_ack(inc->out, OUT_BUF, &ack));
}

static int finish_hello(struct incoming *inc, char *err, size_t errlen);

/*
 * The VM's configuration as HELLO gives it. HELLO carries no dirty-ring
 * size (and the wire format stays as it is), so this says "no ring": a
 * VM with a ring is prepared without one and built again at COMPLETE.
 */
static void hello_config(const struct incoming *inc, struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "%s", incoming_name(inc));
	cfg->mem_bytes = inc->hello.mem_bytes;
	cfg->vcpus = inc->hello.vcpus;
	snprintf(cfg->guest, sizeof(cfg->guest), "%s", inc->hello.guest);
	snprintf(cfg->guest_args, sizeof(cfg->guest_args), "%s", inc->hello.guest_args);
	memcpy(cfg->mac, inc->hello.mac, 6);
}

/*
 * Preparing the VM while the pages arrive. Building a VM (KVM VM, slots,
 * irqchip, PIT, vCPUs and their threads) takes milliseconds and needs only
 * the configuration, which HELLO gave: it runs on a thread of its own
 * (kvmig-prep), so the page stream is not held up, on the RAM the pages
 * are written into (vm_prepare borrows it). At COMPLETE the thread is
 * joined (long done, normally) and only the state is loaded, inside the
 * downtime. Every way out of incoming_run that does not hand the VM over
 * joins the thread and destroys what it built before the RAM goes.
 */
static void *prep_main(void *arg)
{
	struct incoming *inc = arg;
	uint64_t t0 = clock_now_ns();

	pthread_setname_np(pthread_self(), "kvmig-prep");
	inc->prep_ret = vm_prepare(&inc->prep_cfg, &inc->prep_ram, &inc->prep_vm, inc->prep_err,
				   sizeof(inc->prep_err));
	inc->prep_ns = clock_now_ns() - t0;
	/* the bulk round wrote the file; map it, so later stores take no fault */
	pthread_mutex_lock(&inc->prep_lock);
	while (!inc->bulk_done && !atomic_load(&inc->prep_stop))
		pthread_cond_wait(&inc->prep_cond, &inc->prep_lock);
	pthread_mutex_unlock(&inc->prep_lock);
	if (!atomic_load(&inc->prep_stop)) {
		int ret = page_place_map(inc->prep_ram.alias, inc->prep_ram.fd, inc->prep_ram.bytes,
					 &inc->prep_stop, &inc->mapped_pages);

		if (ret < 0)
			pr_debug("VM '%s': mapping the bulk round's pages: %s", incoming_name(inc),
				 strerror(-ret));
	}
	return NULL;
}

/* Round 0 is in RAM on every channel: the preparing thread may map it. */
static void prep_bulk_done(struct incoming *inc)
{
	if (!inc->prep_started)
		return;
	pthread_mutex_lock(&inc->prep_lock);
	inc->bulk_done = true;
	pthread_cond_signal(&inc->prep_cond);
	pthread_mutex_unlock(&inc->prep_lock);
}

/* Start preparing the VM of HELLO on inc->ram; if that cannot start, COMPLETE builds it all. */
static void prep_start(struct incoming *inc)
{
	int ret;

	if (inc->check_only || inc->prep_started)
		return;
	hello_config(inc, &inc->prep_cfg);
	inc->prep_ram = inc->ram;
	ret = pthread_create(&inc->prep_thread, NULL, prep_main, inc);
	if (ret) {
		pr_warn("VM '%s': cannot prepare the VM during pre-copy (%s); it is built at COMPLETE",
			incoming_name(inc), strerror(ret));
		return;
	}
	inc->prep_started = true;
}

/* Join the preparing thread. Return: the VM it prepared (now the caller's), or NULL. */
static struct vm *prep_join(struct incoming *inc)
{
	struct vm *vm;

	if (!inc->prep_started)
		return NULL;
	pthread_mutex_lock(&inc->prep_lock);
	atomic_store(&inc->prep_stop, true);
	pthread_cond_signal(&inc->prep_cond);
	pthread_mutex_unlock(&inc->prep_lock);
	pthread_join(inc->prep_thread, NULL);
	inc->prep_started = false;
	vm = inc->prep_vm;
	inc->prep_vm = NULL;
	inc->st.vm_prepared = vm != NULL;
	if (inc->prep_ret < 0)
		pr_debug("VM '%s': preparing it failed (%s); COMPLETE builds it", incoming_name(inc),
			 inc->prep_err);
	else
		pr_debug("VM '%s' prepared in %llu us; %llu pages mapped after round 0",
			 incoming_name(inc), (unsigned long long)inc->prep_ns / 1000,
			 (unsigned long long)inc->mapped_pages);
	return vm;
}

/* A failure or an early end: the prepared VM goes (fds, threads, memory; not the RAM). */
static void prep_discard(struct incoming *inc)
{
	vm_destroy(prep_join(inc));
}

/*
 * At COMPLETE, the stream checked out: load the state into the prepared
 * VM, or build the VM now (nothing was prepared, preparing failed, or the
 * prepared VM does not fit the state: a dirty ring). *vm on success; the
 * RAM is the VM's whatever happens.
 */
static int build_vm(struct incoming *inc, struct vm **vm, char *err, size_t errlen)
{
	const char *name = inc->name[0] ? inc->name : NULL;
	struct vm *pv = prep_join(inc);
	char msg[256];
	int ret = 0;

	if (pv) {
		ret = vm_load_state(pv, inc->state, &inc->ram, msg, sizeof(msg));
		if (ret == 0) {
			inc->have_ram = false;	/* the VM's now */
			inc->st.vm_prebuilt = true;
			*vm = pv;
			return 0;
		}
		if (ret != -ESTALE) {
			vm_destroy(pv);
			return err_set(ret, err, errlen, "cannot build the VM: %s", msg);
		}
		/* its teardown (1-17 ms measured here) waits until the guest runs */
		inc->stale_vm = pv;
		/* the ring's size came only now, with the state: build it again */
		inc->st.vm_rebuilt = true;
		pr_debug("VM '%s': the prepared VM does not fit (%s); built again", incoming_name(inc),
			 msg);
	}
	ret = vm_create_from_state(inc->state, &inc->ram, name, vm, msg, sizeof(msg));
	inc->have_ram = false; /* the VM owns it now, or freed it */
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot build the VM: %s", msg);
	return 0;
}

static int on_hello(struct incoming *inc, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct vm_config cfg;
	char msg[200];
	int ret;

	ret = frame_get_hello(p, len, &inc->hello, err, errlen);
	if (ret < 0)
		return ret;
	if (inc->hello.channels != 1 && (!inc->ret || inc->expect_eof))
		return err_set(-EPROTO, err, errlen,
			    "HELLO: channel %u of %u; a stream file holds one channel",
			    inc->hello.channel, inc->hello.channels);
	if (inc->hello.channels != 1 && !inc->sessions)
		return err_set(-EPROTO, err, errlen,
			       "HELLO: channel %u of %u; this receiver takes no parallel migrations",
			       inc->hello.channel, inc->hello.channels);
	if (inc->hello.channels != 1 && !(inc->hello.caps & WIRE_CAP_MULTI))
		return err_set(-EPROTO, err, errlen, "HELLO: %u channels without the MULTI capability",
			    inc->hello.channels);
	if (inc->hello.flags) {
		/* post-copy's other streams: the receiver of the session serves them */
		if (!inc->ret || inc->expect_eof)
			return err_set(-EPROTO, err, errlen, "HELLO: a post-copy stream in a file");
		wire_order_pages_stream(&inc->order);
		ret = pc_table_serve(inc->pcs, &inc->hello, inc->in, inc->ret, err, errlen);
		if (ret == 0)
			inc->pc_stream = true;
		return ret;
	}
	if (inc->hello.channel != 0)
		return on_hello_secondary(inc, err, errlen);
	/* the VM it describes must be one this host can build */
	hello_config(inc, &cfg);
	ret = vm_config_check(&cfg, msg, sizeof(msg));
	if (ret < 0)
		return err_set(-EBADMSG, err, errlen, "HELLO describes a VM this host refuses: %s", msg);
	if (inc->hello.caps & WIRE_CAP_CPUID) {
		/* nothing is reserved or allocated before the CPU check */
		inc->cpuid_pending = true;
		return 0;
	}
	return finish_hello(inc, err, errlen);
}

/* Channel 0's HELLO is acceptable (and its CPU, when it sent one): take the stream. */
static int finish_hello(struct incoming *inc, char *err, size_t errlen)
{
	struct wire_hello_ack ack = { .version = WIRE_VERSION };
	int ret;

	if (inc->hello_fn) {
		ret = inc->hello_fn(inc->hello_ctx, incoming_name(inc), inc->hello.mem_bytes, err,
				    errlen);
		if (ret < 0)
			return ret;
	}
	inc->caps = inc->hello.caps & SUPPORTED_CAPS;
	if (inc->hello.caps & WIRE_CAP_POSTCOPY && inc->pcs && inc->ret && !inc->expect_eof) {
		char why[256];

		/* not chosen when this host cannot: the source says so */
		if (pcdest_probe(why, sizeof(why)) == 0)
			inc->caps |= WIRE_CAP_POSTCOPY;
		else
			pr_warn("VM '%s' asks for post-copy, which this host cannot serve: %s",
				incoming_name(inc), why);
	}
	ret = vm_ram_create(&inc->ram, inc->hello.mem_bytes, err, errlen);
	if (ret < 0)
		return ret;
	inc->have_ram = true;
	inc->ram_base = inc->ram.alias;
	inc->ram_fd = inc->ram.fd;
	inc->ram_bytes = inc->ram.bytes;
	ret = make_decoders(inc, err, errlen);
	if (ret < 0)
		return ret;
	if (inc->caps & WIRE_CAP_POSTCOPY) {
		ret = pcdest_create(inc->pcs, inc->hello.session, inc->caps, inc->ram.fd,
				    inc->ram.slot_view, inc->ram.alias, inc->ram.bytes, &inc->pd, err,
				    errlen);
		if (ret < 0)
			return ret;
	}
	if (inc->hello.channels > 1) {
		/* the other channels carry pages only: no CPUID on them */
		struct session_info si = {
			.ram = inc->ram_base, .ram_fd = inc->ram_fd, .ram_bytes = inc->ram_bytes,
			/* ANNOUNCE: offered on all; CPUID and POSTCOPY: channel 0 only */
			.caps = inc->caps & ~(WIRE_CAP_CPUID | WIRE_CAP_POSTCOPY),
		};

		ret = session_open(inc->sessions, inc->hello.session, inc->hello.channels, &si,
				   &inc->sess);
		if (ret == -EEXIST)
			return err_set(ret, err, errlen, "HELLO: session %016llx is already arriving",
				    (unsigned long long)inc->hello.session);
		if (ret < 0)
			return err_set(ret, err, errlen, "HELLO: cannot open a session of %u channels: %s",
				    inc->hello.channels, strerror(-ret));
	}
	/* the configuration is known and the CPU checked out: build the VM meanwhile */
	prep_start(inc);
	if (inc->caps & WIRE_CAP_ANNOUNCE) {
		/* the ANNOUNCE frame comes next: HELLO_ACK once its interface checked out */
		inc->ack_pending = true;
		return 0;
	}
	ack.caps = inc->caps;
	return send_ret(inc, frame_put_hello_ack(inc->out, OUT_BUF, &ack));
}

/*
 * ANNOUNCE: where and how to announce the guest once it runs here. The
 * interface must exist on this host and take a packet socket, or the
 * migration is refused now, before any page moved.
 */
static int on_announce(struct incoming *inc, const uint8_t *p, size_t len, char *err,
		       size_t errlen)
{
	struct wire_hello_ack ack = { .version = WIRE_VERSION, .caps = inc->caps };
	struct wire_announce a;
	struct announce_sched s;
	char msg[200];
	int ret;

	if (!(inc->hello.caps & WIRE_CAP_ANNOUNCE))
		return err_set(-EPROTO, err, errlen,
			       "ANNOUNCE frame without the ANNOUNCE capability in HELLO");
	ret = frame_get_announce(p, len, &a, err, errlen);
	if (ret < 0)
		return ret;
	s = (struct announce_sched){ .rounds = a.rounds, .initial_ms = a.initial_ms,
				     .step_ms = a.step_ms, .max_ms = a.max_ms };
	ret = announce_sched_check(&s, msg, sizeof(msg));
	if (ret < 0)
		return err_set(-EBADMSG, err, errlen, "ANNOUNCE: %s", msg);
	if (inc->ret && !inc->check_only) {
		ret = announce_iface_check(a.iface, msg, sizeof(msg));
		if (ret < 0)
			return err_set(ret, err, errlen, "the destination cannot announce the guest: %s",
				       msg);
	}
	snprintf(inc->announce_iface, sizeof(inc->announce_iface), "%s", a.iface);
	inc->announce_sched = s;
	inc->announce_set = true;
	if (!inc->ack_pending)
		return 0;
	inc->ack_pending = false;
	return send_ret(inc, frame_put_hello_ack(inc->out, OUT_BUF, &ack));
}

/*
 * Can this host run a guest with that CPU? Refuses with a message naming
 * the missing features (and a TSC difference when strict); a TSC
 * difference that is not refused is logged. Without a host CPU to compare
 * with (a check-only decoder), only the frame itself was checked.
 */
static int check_cpu(struct incoming *inc, const struct cpucheck_cpu *guest, bool strict_tsc,
		     char *err, size_t errlen)
{
	const struct cpucheck_cpu *host = inc->host_cpu;
	struct cpucheck_result r;
	char msg[WIRE_MAX_MSG - 64], why[200];
	int ret;

	if (!host && inc->check_only)
		return 0;
	if (!host) {
		if (!inc->own_cpu) {
			inc->own_cpu = calloc(1, sizeof(*inc->own_cpu));
			if (!inc->own_cpu)
				return err_set(-ENOMEM, err, errlen, "out of memory");
			ret = vm_host_cpu(inc->own_cpu, why, sizeof(why));
			if (ret < 0)
				return err_set(ret, err, errlen,
					       "cannot tell whether this host can run the guest: %s",
					       why);
		}
		host = inc->own_cpu;
	}
	cpucheck_compare(guest, host, &r);
	ret = cpucheck_verdict(&r, strict_tsc, inc->ret && !inc->expect_eof, msg, sizeof(msg));
	if (ret < 0)
		return err_set(ret, err, errlen, "%s", msg);
	if (msg[0])
		pr_warn("VM '%s': %s", incoming_name(inc), msg);
	return 0;
}

static void cpu_from_wire(const struct wire_cpuid *c, struct cpucheck_cpu *cpu)
{
	memset(cpu, 0, sizeof(*cpu));
	cpu->n = c->count;
	cpu->tsc_khz = c->tsc_khz;
	for (uint32_t i = 0; i < c->count && i < CPUCHECK_MAX_ENTRIES; i++) {
		struct kvm_cpuid_entry2 *e = &cpu->ent[i];

		e->function = c->ent[i].function;
		e->index = c->ent[i].index;
		e->flags = c->ent[i].flags;
		e->eax = c->ent[i].eax;
		e->ebx = c->ent[i].ebx;
		e->ecx = c->ent[i].ecx;
		e->edx = c->ent[i].edx;
	}
}

static int on_cpuid(struct incoming *inc, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct cpucheck_cpu *guest;
	int ret;

	if (!inc->cpuid_pending)
		return err_set(-EPROTO, err, errlen, "CPUID frame without the CPUID capability");
	inc->cpuid = calloc(1, sizeof(*inc->cpuid));
	guest = calloc(1, sizeof(*guest));
	if (!inc->cpuid || !guest) {
		free(guest);
		return err_set(-ENOMEM, err, errlen, "out of memory");
	}
	ret = frame_get_cpuid(p, len, inc->cpuid, err, errlen);
	if (ret == 0) {
		cpu_from_wire(inc->cpuid, guest);
		ret = check_cpu(inc, guest, inc->cpuid->flags & WIRE_CPUID_STRICT_TSC, err, errlen);
	}
	free(guest);
	if (ret < 0)
		return ret;
	inc->cpuid_pending = false;
	return finish_hello(inc, err, errlen);
}

/*
 * At COMPLETE: the vCPUs' CPUID must be the one the CPUID frame announced
 * (no feature beyond it), and a stream without the frame (an older source
 * or snapshot) is checked here, from the state, before any VM is built.
 */
static int check_state_cpu(struct incoming *inc, char *err, size_t errlen)
{
	const struct vcpu_state *v = &inc->state->vcpu[0];
	struct cpucheck_cpu *st = calloc(1, sizeof(*st)), *sent = NULL;
	struct cpucheck_result r;
	char names[128];
	int ret = 0;

	if (!st)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	st->n = v->ncpuid < CPUCHECK_MAX_ENTRIES ? v->ncpuid : CPUCHECK_MAX_ENTRIES;
	memcpy(st->ent, v->cpuid, st->n * sizeof(st->ent[0]));
	st->tsc_khz = v->tsc_khz;
	if (!inc->cpuid) {
		ret = check_cpu(inc, st, false, err, errlen);
		goto out;
	}
	sent = calloc(1, sizeof(*sent));
	if (!sent) {
		ret = err_set(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	cpu_from_wire(inc->cpuid, sent);
	cpucheck_compare(st, sent, &r);
	if (r.nmissing) {
		cpucheck_feature_name(r.missing[0], names, sizeof(names));
		ret = err_set(-EBADMSG, err, errlen,
			      "STATE: vCPU 0 has CPU feature %s, which the CPUID frame did not "
			      "announce",
			      names);
	}
out:
	free(st);
	free(sent);
	return ret;
}

/* KEY: a one-time TLS key for the pages of a migration that comes next. */
static int on_key(struct incoming *inc, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct wire_key k;
	struct wire_key_ack a = {0};
	int ret;

	if (!inc->ret || inc->expect_eof)
		return err_set(-EPROTO, err, errlen, "KEY frame in a stream file");
	if (!inc->key_fn)
		return err_set(-EPROTO, err, errlen, "KEY frame: this receiver takes no keys");
	ret = frame_get_key(p, len, &k, err, errlen);
	if (ret == 0)
		ret = inc->key_fn(inc->key_ctx, &k, &a.port, err, errlen);
	explicit_bzero(&k, sizeof(k));
	if (ret < 0)
		return ret;
	inc->key_done = true;
	return send_ret(inc, frame_put_key_ack(inc->out, OUT_BUF, &a));
}

static int on_pages(struct incoming *inc, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct page_place_counts c = {0};
	int ret = page_place(&inc->place, p, len, inc->caps, &c, err, errlen);

	inc->st.pages += c.pages;
	inc->st.zero_pages += c.zero_pages;
	inc->st.raw_pages += c.raw_pages;
	inc->st.xbzrle_pages += c.xbzrle_pages;
	inc->st.compressed_pages += c.compressed_pages;
	return ret;
}

static int on_state(struct incoming *inc, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	char msg[200];
	unsigned type;
	size_t used;
	int ret;

	ret = state_read_section(inc->state, p, len, &used, &type, msg, sizeof(msg));
	if (ret < 0)
		return err_set(ret, err, errlen, "STATE: %s", msg);
	if (used != len)
		return err_set(-EBADMSG, err, errlen, "STATE: %zu bytes after the %s section",
			    len - used, state_section_name(type));
	if (type == STATE_SEC_RAM || type == STATE_SEC_END)
		return err_set(-EBADMSG, err, errlen, "STATE: a %s section has no place in a stream",
			    state_section_name(type));
	if (type == STATE_SEC_VCPU) {
		uint32_t idx = inc->state->vcpu[p[8] & 7].index;

		if (inc->vcpus_seen & (1u << idx))
			return err_set(-EBADMSG, err, errlen, "STATE: vCPU %u sent twice", idx);
		inc->vcpus_seen |= 1u << idx;
	} else if (inc->seen & (1u << type)) {
		return err_set(-EBADMSG, err, errlen, "STATE: %s section sent twice",
			    state_section_name(type));
	}
	inc->seen |= 1u << type;
	inc->sections++;
	return 0;
}

/* A secondary's COMPLETE: its page count, which must be what arrived. */
static int on_complete_secondary(struct incoming *inc, const uint8_t *p, size_t len, char *err,
				 size_t errlen)
{
	struct wire_complete c;
	int ret = frame_get_complete(p, len, &c, err, errlen);

	if (ret < 0)
		return ret;
	if (c.state_sections || c.digest_alg != WIRE_DIGEST_NONE)
		return err_set(-EBADMSG, err, errlen,
			    "COMPLETE on parallel channel %u carries state or a digest",
			    inc->hello.channel);
	if (c.pages != inc->st.pages)
		return err_set(-EBADMSG, err, errlen,
			    "COMPLETE on parallel channel %u announces %llu pages, %llu arrived",
			    inc->hello.channel, (unsigned long long)c.pages,
			    (unsigned long long)inc->st.pages);
	session_complete(inc->sess, inc->hello.channel, inc->st.pages);
	return 0;
}

static int on_complete(struct incoming *inc, const uint8_t *p, size_t len, char *err,
		       size_t errlen)
{
	struct vm_config *c = &inc->state->config;
	char msg[200];
	int ret;

	ret = frame_get_complete(p, len, &inc->complete, err, errlen);
	if (ret < 0)
		return ret;
	if (inc->sess) {
		uint64_t others;

		/* every page of every channel is in RAM before anything is checked */
		ret = session_wait_complete(inc->sess, BARRIER_TIMEOUT_MS, &others, err, errlen);
		if (ret < 0)
			return ret;
		inc->st.pages += others;
	}
	if (inc->complete.state_sections != inc->sections)
		return err_set(-EBADMSG, err, errlen,
			    "COMPLETE announces %u state sections, %u arrived",
			    inc->complete.state_sections, inc->sections);
	ret = state_check_complete(inc->state, inc->seen, inc->vcpus_seen, msg, sizeof(msg));
	if (ret < 0)
		return err_set(ret, err, errlen, "incomplete state: %s", msg);
	if (c->mem_bytes != inc->hello.mem_bytes || c->vcpus != inc->hello.vcpus ||
	    strcmp(c->guest, inc->hello.guest))
		return err_set(-EBADMSG, err, errlen,
			    "the config section (%llu bytes, %u vCPUs, %s) contradicts HELLO",
			    (unsigned long long)c->mem_bytes, c->vcpus, c->guest);
	ret = check_state_cpu(inc, err, errlen);
	if (ret < 0)
		return ret;
	inc->st.digest_alg = inc->complete.digest_alg;
	if (inc->postcopy) {
		/* the pages come after GO: drop the stale ones, catch the faults */
		inc->st.postcopy = true;
		return pcdest_arm(inc->pd, inc->complete.digest_alg, inc->complete.digest, err,
				  errlen);
	}
	if (inc->complete.digest_alg == WIRE_DIGEST_PAGES)
		return err_set(-EBADMSG, err, errlen,
			       "COMPLETE: the PAGES digest is for post-copy, and this is not one");
	if (inc->complete.digest_alg == WIRE_DIGEST_SHA256) {
		uint8_t d[RAM_DIGEST_BYTES];

		if (ram_digest(inc->ram.fd, inc->ram.alias, inc->ram.bytes, d) < 0)
			return err_set(-ENOMEM, err, errlen, "cannot compute the RAM digest");
		if (memcmp(d, inc->complete.digest, RAM_DIGEST_BYTES))
			return err_set(-EBADMSG, err, errlen,
				    "RAM digest mismatch: the guest memory that arrived differs "
				    "from the source's");
		inc->st.digest_ok = 1;
	}
	return 0;
}

int incoming_run(struct incoming *inc, struct vm **vm, char *err, size_t errlen)
{
	struct frame_hdr h;
	bool done = false;
	int ret = 0;

	*vm = NULL;
	while (!done) {
		const uint8_t *p = inc->buf + WIRE_HDR_BYTES;

		ret = mio_read_frame(inc->in, inc->buf, MIO_FRAME_BUF, &h, err, errlen);
		if (ret == -ENODATA) {
			/* EOF at a frame boundary */
			if (inc->st.frames) {
				ret = -ECONNRESET;
				err_set(ret, err, errlen,
				     "the stream ended after %llu frames, before COMPLETE",
				     (unsigned long long)inc->st.frames);
			} else {
				err_set(ret, err, errlen, "the stream is empty");
			}
			goto out;
		}
		if (ret < 0)
			goto out;
		ret = wire_order_check(&inc->order, h.type, err, errlen);
		if (ret < 0)
			goto out;
		if (inc->ack_pending && h.type != WIRE_F_ANNOUNCE && h.type != WIRE_F_ERROR) {
			ret = err_set(-EPROTO, err, errlen,
				      "HELLO offered ANNOUNCE, then came %s instead",
				      frame_type_name(h.type));
			goto out;
		}
		inc->st.frames++;
		if (inc->cpuid_pending &&
		    (h.type == WIRE_F_PAGES || h.type == WIRE_F_END_ROUND ||
		     h.type == WIRE_F_SWITCHOVER)) {
			ret = err_set(-EPROTO, err, errlen,
				      "HELLO offered a CPUID frame, but %s came first",
				      frame_type_name(h.type));
			goto out;
		}
		switch (h.type) {
		case WIRE_F_HELLO:
			ret = on_hello(inc, p, h.len, err, errlen);
			done = inc->pc_stream;
			break;
		case WIRE_F_KEY:
			ret = on_key(inc, p, h.len, err, errlen);
			done = true;
			break;
		case WIRE_F_ANNOUNCE:
			ret = on_announce(inc, p, h.len, err, errlen);
			break;
		case WIRE_F_CPUID:
			ret = on_cpuid(inc, p, h.len, err, errlen);
			break;
		case WIRE_F_PAGES:
			ret = on_pages(inc, p, h.len, err, errlen);
			break;
		case WIRE_F_END_ROUND: {
			struct wire_end_round e;
			struct wire_ack a;

			ret = frame_get_end_round(p, h.len, &e, err, errlen);
			if (ret < 0)
				break;
			inc->st.rounds = e.round + 1;
			if (inc->secondary) {
				ret = session_round(inc->sess, inc->hello.channel, e.round);
				if (ret < 0)
					err_set(ret, err, errlen, "the migration failed on another channel");
				break;
			}
			/* the ACK says the whole round is in RAM, on every channel */
			if (inc->sess) {
				ret = session_wait_round(inc->sess, e.round, BARRIER_TIMEOUT_MS, err,
							 errlen);
				if (ret < 0)
					break;
			}
			if (e.round == 0)
				prep_bulk_done(inc);
			a.round = e.round;
			a.pages = inc->st.pages;
			ret = send_ret(inc, frame_put_ack(inc->out, OUT_BUF, &a));
			break;
		}
		case WIRE_F_SWITCHOVER: {
			uint32_t round, flags;

			ret = frame_get_switchover(p, h.len, &round, &flags, err, errlen);
			inc->st.paused = flags & WIRE_SWITCHOVER_PAUSED;
			inc->st.switchover_ns = clock_now_ns();
			if (ret == 0 && (flags & WIRE_SWITCHOVER_POSTCOPY)) {
				if (!inc->pd) {
					ret = err_set(-EPROTO, err, errlen,
						      "SWITCHOVER asks for post-copy, which was not "
						      "negotiated");
					break;
				}
				inc->postcopy = true;
				wire_order_postcopy(&inc->order);
			}
			break;
		}
		case WIRE_F_NEEDED: {
			struct wire_bitmap b;

			ret = frame_get_bitmap(p, h.len, WIRE_F_NEEDED, inc->ram_bytes / WIRE_PAGE_SIZE,
					       &b, err, errlen);
			if (ret == 0)
				ret = pcdest_needed(inc->pd, &b);
			break;
		}
		case WIRE_F_STATE:
			ret = on_state(inc, p, h.len, err, errlen);
			break;
		case WIRE_F_COMPLETE:
			inc->st.complete_ns = clock_now_ns();
			ret = inc->secondary ? on_complete_secondary(inc, p, h.len, err, errlen)
					     : on_complete(inc, p, h.len, err, errlen);
			done = true;
			break;
		case WIRE_F_ERROR: {
			struct wire_error e;

			ret = frame_get_error(p, h.len, &e, err, errlen);
			if (ret == 0)
				ret = err_set(-ECANCELED, err, errlen, "the source gave up: %s", e.msg);
			break;
		}
		default:
			ret = err_set(-EPROTO, err, errlen, "%s frame on the forward stream",
				   frame_type_name(h.type));
			break;
		}
		if (ret < 0)
			goto out;
	}
	if (inc->secondary || inc->pc_stream) {
		inc->st.stream_ok = true;
		ret = 1;
		goto out;
	}
	if (inc->key_done) {
		ret = 2;
		goto out;
	}
	/* the other channels left after their COMPLETE: the RAM is ours alone */
	session_close(inc->sess);
	inc->sess = NULL;
	if (inc->expect_eof) {
		uint8_t extra;

		ret = inc->in->read(inc->in, &extra, 1);
		if (ret != -ENODATA) {
			ret = err_set(-EBADMSG, err, errlen, "data after the end of the stream");
			goto out;
		}
	}
	inc->st.stream_ok = true;
	if (inc->check_only) {
		vm_ram_destroy(&inc->ram);
		inc->have_ram = false;
		ret = 0;
		goto out;
	}
	ret = build_vm(inc, vm, err, errlen);
	if (ret == 0) {
		inc->st.complete_to_ready_us = (clock_now_ns() - inc->st.complete_ns) / 1000;
		pr_debug("switchover to COMPLETE %llu us, COMPLETE to VM ready %llu us (%s)",
			 (unsigned long long)(inc->st.complete_ns - inc->st.switchover_ns) / 1000,
			 (unsigned long long)inc->st.complete_to_ready_us,
			 inc->st.vm_prebuilt  ? "prepared during pre-copy"
			 : inc->st.vm_rebuilt ? "prepared, built again"
					      : "built at COMPLETE");
	}

out:
	if (ret < 0 && inc->ret && ret != -ECANCELED) {
		ssize_t n = frame_put_error(inc->out, OUT_BUF, (uint32_t)-ret, err);

		(void)send_ret(inc, n);
	}
	if (inc->secondary) {
		session_leave(inc->sess, inc->hello.channel, ret, err);
	} else {
		/* stops the other channels before the RAM they write to goes */
		session_close(inc->sess);
	}
	inc->sess = NULL;
	/* a VM still prepared was not handed over: it goes before the RAM it sits on */
	prep_discard(inc);
	if (ret < 0 && inc->have_ram) {
		pcdest_destroy(inc->pd);
		inc->pd = NULL;
		vm_ram_destroy(&inc->ram);
		inc->have_ram = false;
	}
	return ret;
}

int incoming_handover(struct incoming *inc, char *err, size_t errlen)
{
	struct wire_resumed r = { .digest_ok = inc->st.digest_ok };
	struct frame_hdr h;
	int ret;

	ret = send_ret(inc, frame_put_ready(inc->out, OUT_BUF, &r));
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot tell the source the VM is ready: %s",
			       strerror(-ret));
	ret = mio_read_frame(inc->in, inc->buf, MIO_FRAME_BUF, &h, err, errlen);
	if (ret == -ENODATA)
		return err_set(-ECONNRESET, err, errlen,
			       "the source went away before it said GO");
	if (ret < 0)
		return ret;
	ret = wire_order_check(&inc->order, h.type, err, errlen);
	if (ret < 0)
		return ret;
	if (h.type == WIRE_F_ERROR) {
		struct wire_error e;

		ret = frame_get_error(inc->buf + WIRE_HDR_BYTES, h.len, &e, err, errlen);
		return ret < 0 ? ret : err_set(-ECANCELED, err, errlen, "the source gave up: %s", e.msg);
	}
	return frame_get_go(inc->buf + WIRE_HDR_BYTES, h.len, err, errlen);
}

int incoming_send_error(struct incoming *inc, int code, const char *msg)
{
	return send_ret(inc, frame_put_error(inc->out, OUT_BUF, (uint32_t)-code, msg));
}

int incoming_send_resumed(struct incoming *inc)
{
	struct wire_resumed r = { .digest_ok = inc->st.digest_ok };

	return send_ret(inc, frame_put_resumed(inc->out, OUT_BUF, &r));
}

void incoming_set_announce_default(struct incoming *inc, const char *iface,
				   const struct announce_sched *s)
{
	if (inc->announce_set || !iface || !iface[0])
		return;
	snprintf(inc->announce_iface, sizeof(inc->announce_iface), "%s", iface);
	if (s)
		inc->announce_sched = *s;
	else
		announce_sched_defaults(&inc->announce_sched);
	inc->announce_set = true;
}

bool incoming_announce(const struct incoming *inc, const char **iface, struct announce_sched *s)
{
	if (!inc->announce_set)
		return false;
	*iface = inc->announce_iface;
	*s = inc->announce_sched;
	return true;
}

int incoming_send_announced(struct incoming *inc, const struct announce_stats *st)
{
	struct wire_announced a = {
		.frames = st->frames, .error = (uint32_t)-st->error, .first_us = st->first_us,
	};

	inc->st.announce.frames = st->frames;
	inc->st.announce.first_us = st->first_us;
	if (!(inc->caps & WIRE_CAP_ANNOUNCE))
		return 0;
	return send_ret(inc, frame_put_announced(inc->out, OUT_BUF, &a));
}

void incoming_expect_eof(struct incoming *inc)
{
	inc->expect_eof = true;
}

void incoming_set_sessions(struct incoming *inc, struct session_table *t)
{
	inc->sessions = t;
}

void incoming_check_only(struct incoming *inc)
{
	inc->check_only = true;
}

void incoming_set_host_cpu(struct incoming *inc, const struct cpucheck_cpu *host)
{
	inc->host_cpu = host;
}

void incoming_set_key_hook(struct incoming *inc, incoming_key_fn fn, void *ctx)
{
	inc->key_fn = fn;
	inc->key_ctx = ctx;
}

void incoming_set_hello_hook(struct incoming *inc, incoming_hello_fn fn, void *ctx)
{
	inc->hello_fn = fn;
	inc->hello_ctx = ctx;
}

void incoming_set_postcopy(struct incoming *inc, struct pc_table *t)
{
	inc->pcs = t;
}

struct pcdest *incoming_pcdest(const struct incoming *inc)
{
	return inc->postcopy ? inc->pd : NULL;
}

int incoming_run_postcopy(struct incoming *inc, char *err, size_t errlen)
{
	return pcdest_run(inc->pd, inc->in, inc->ret, err, errlen);
}

void incoming_postcopy_end(struct incoming *inc)
{
	pcdest_destroy(inc->pd);
	inc->pd = NULL;
}
