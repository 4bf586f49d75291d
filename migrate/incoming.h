/* SPDX-License-Identifier: MIT */
/*
 * incoming.h - the receiving end of a migration stream: frames in, a VM out.
 *
 * One decoder serves snapshot files and sockets. It reads frames through a
 * struct mio, checks their order (protocol/frame.h), creates guest RAM when
 * HELLO arrives, decodes PAGES straight into RAM (each entry checked before
 * a byte is written), collects STATE sections into a struct vm_state
 * (vm/state.h checks each), and at COMPLETE checks that everything arrived
 * (and the RAM digest, if one was sent) before it loads the state into the
 * VM. The VM itself (KVM VM, slots, irqchip, PIT, parked vCPU threads) is
 * prepared from HELLO's configuration on a thread of its own (kvmig-prep)
 * while the pages arrive, on the same RAM, so that COMPLETE only loads the
 * state (vm/vm.h: vm_prepare, vm_load_state); a dirty-ring VM is built
 * again at COMPLETE, since HELLO does not say the ring's size. Until
 * COMPLETE nothing leaves this object: any failure destroys the prepared
 * VM and frees the RAM, and no VM is ever loaded from a partial stream.
 *
 * With a return path (a socket), HELLO is answered with HELLO_ACK and each
 * END_ROUND with an ACK; once the VM is built the caller hands over
 * (incoming_handover: READY, then the source's GO), starts the VM and
 * sends RESUMED. The
 * connections of a parallel migration each get their own incoming object
 * and thread, and meet through migrate/session.h.
 * Used by one thread.
 */
#ifndef KVMIG_MIGRATE_INCOMING_H
#define KVMIG_MIGRATE_INCOMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "migrate/mio.h"
#include "vm/vm.h"

struct incoming_stats {
	uint64_t frames;
	uint64_t pages;		/* page entries applied */
	uint64_t zero_pages, raw_pages, xbzrle_pages, compressed_pages;
	uint32_t rounds;
	uint64_t bytes;		/* stream bytes read */
	uint64_t switchover_ns;	/* clock at SWITCHOVER (0 if none) */
	uint64_t complete_ns;	/* clock at COMPLETE */
	uint8_t digest_alg;	/* digest the source sent */
	uint8_t digest_ok;
	bool stream_ok;		/* the whole stream checked out (a failure is the VM build) */
	bool paused;		/* SWITCHOVER said the guest was paused: keep it paused */
	bool postcopy;		/* the pages come after GO (incoming_run_postcopy) */
	/*
	 * The VM build: prepared while the pages arrived, so COMPLETE only
	 * loaded the state (vm_prebuilt); or prepared, but it did not fit the
	 * state and was built again at COMPLETE (vm_rebuilt: a dirty-ring VM,
	 * whose ring size HELLO does not carry); neither: built at COMPLETE.
	 */
	bool vm_prepared;	/* a VM was prepared during pre-copy (whatever came of it) */
	bool vm_prebuilt, vm_rebuilt;
	uint64_t complete_to_ready_us;	/* COMPLETE received to the VM ready to start */
	struct {
		uint32_t frames;	/* RARP frames sent after the resume */
		uint64_t first_us;	/* the first one left this long after it */
	} announce;
};

struct incoming;
struct announce_sched;
struct announce_stats;

/*
 * in: the stream; ret: the return path, or NULL (files). name: the VM's
 * name, or NULL to keep the sender's. Return: 0, -ENOMEM.
 */
int incoming_create(struct mio *in, struct mio *ret, const char *name,
		    struct incoming **out) __must_check;
void incoming_destroy(struct incoming *inc);

/*
 * Consume the stream up to COMPLETE and build the VM (not started).
 * Return: 0 and *vm, or -errno with a message in err naming the frame and
 * the problem. On failure an ERROR frame goes back on the return path.
 * Return 1 (and no VM) for channel 1..N-1 of a parallel migration
 * (migrate/session.h): its pages went into channel 0's RAM, and the VM is
 * channel 0's to build.
 */
int incoming_run(struct incoming *inc, struct vm **vm, char *err, size_t errlen) __must_check;

/*
 * Called when HELLO arrived and was checked, before any page: the VM's name
 * (after the override) and its memory. Return 0 to go on, or -errno with a
 * message in err to refuse the stream (the source gets an ERROR frame).
 */
typedef int (*incoming_hello_fn)(void *ctx, const char *name, uint64_t mem_bytes, char *err,
				 size_t errlen);
void incoming_set_hello_hook(struct incoming *inc, incoming_hello_fn fn, void *ctx);

/*
 * A key exchange (--ssh-data tls, protocol/wire.h: KEY): the stream is a
 * single KEY frame. The hook registers the key where TLS connections
 * arrive and gives that listener's port, answered with KEY_ACK; then
 * incoming_run() returns 2 (no VM). Without a hook, KEY is refused.
 */
struct wire_key;
typedef int (*incoming_key_fn)(void *ctx, const struct wire_key *k, uint16_t *port, char *err,
			       size_t errlen);
void incoming_set_key_hook(struct incoming *inc, incoming_key_fn fn, void *ctx);

struct cpucheck_cpu;

/*
 * What this host can run (vm/cpucheck.h), borrowed: the guest's CPUID and
 * TSC rate are checked against it before HELLO_ACK (streams with a CPUID
 * frame) or at COMPLETE (streams without one), and a missing feature
 * refuses the stream with an ERROR naming it. Without one, this host's
 * KVM is asked (vm_host_cpu) when the stream builds a VM; a check-only
 * decoder then compares nothing.
 */
void incoming_set_host_cpu(struct incoming *inc, const struct cpucheck_cpu *host);

struct session_table;

/*
 * The table where the channels of parallel migrations meet
 * (migrate/session.h), borrowed; it must outlive this object. Without one
 * a parallel HELLO is refused.
 */
void incoming_set_sessions(struct incoming *inc, struct session_table *t);

/*
 * Check the whole stream as incoming_run() does, but build no VM: it then
 * returns 0 with *vm NULL and frees the RAM (a snapshot check, and the
 * decoder's own tests, which need no /dev/kvm).
 */
void incoming_check_only(struct incoming *inc);

/* Files: the stream must end right after COMPLETE (checked before the VM is built). */
void incoming_expect_eof(struct incoming *inc);

/* The VM of the stream, as announced by HELLO (valid after HELLO). */
const char *incoming_name(const struct incoming *inc);

/*
 * Live migrations (with a return path), once incoming_run() built the VM
 * and the caller holds it ready to start: send READY and wait for the
 * source's GO. Until GO the source owns the guest: on any failure here
 * destroy the VM. From GO on the guest is ours: start it (a failure to
 * start is reported with incoming_send_error, which lets the source take
 * it back), and keep it running even if RESUMED cannot be sent.
 * Return: 0 (GO), or -errno with a message (the source gave up, went away,
 * or sent something else; the channel's timeout bounds the wait).
 */
int incoming_handover(struct incoming *inc, char *err, size_t errlen) __must_check;

/* ERROR on the return path: this side failed and runs nothing. */
int incoming_send_error(struct incoming *inc, int code, const char *msg);

/* Tell the source the VM runs (after vm_start). Return: 0 or -errno. */
int incoming_send_resumed(struct incoming *inc) __must_check;

/*
 * The RARP announce (migrate/announce.h). A source that offers
 * WIRE_CAP_ANNOUNCE names the interface and schedule in its ANNOUNCE frame
 * (checked at the handshake: an interface missing here refuses the
 * migration); otherwise the agent's default, set before incoming_run (s
 * NULL: QEMU's schedule; iface NULL or "": none), applies.
 */
void incoming_set_announce_default(struct incoming *inc, const char *iface,
				   const struct announce_sched *s);

/* Whether to announce the guest once it runs, and where and how (*iface points into inc). */
bool incoming_announce(const struct incoming *inc, const char **iface, struct announce_sched *s);

/*
 * The rounds are over: record st in the stats and, when the source chose
 * WIRE_CAP_ANNOUNCE, tell it with ANNOUNCED. Return: 0 or -errno.
 */
int incoming_send_announced(struct incoming *inc, const struct announce_stats *st);

void incoming_get_stats(const struct incoming *inc, struct incoming_stats *st);

/*
 * Post-copy (migrate/pcdest.h). The table where the FAULT and RESUME
 * streams of post-copies find their receiver, borrowed; without one,
 * post-copy is never chosen and such streams are refused. A FAULT or
 * RESUME stream is served inside incoming_run(), which returns 1 (no VM)
 * when it ends.
 */
struct pc_table;
struct pcdest;
void incoming_set_postcopy(struct incoming *inc, struct pc_table *t);

/* The receiver of a post-copy whose VM incoming_run() built, else NULL. */
struct pcdest *incoming_pcdest(const struct incoming *inc);

/*
 * After GO and the VM's start (and RESUMED): receive the pages still
 * missing until every one is in place. Return: 0, or -errno with err
 * saying how many pages never arrived (the guest cannot run on: stop it).
 */
int incoming_run_postcopy(struct incoming *inc, char *err, size_t errlen) __must_check;

/*
 * Release the post-copy receiver (its userfaultfd): before the VM is
 * destroyed, whatever happened, or once every page is in place.
 */
void incoming_postcopy_end(struct incoming *inc);

#endif
