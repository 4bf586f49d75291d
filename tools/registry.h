/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the agent's table of named VMs.
 *
 * The agent hosts several VMs at once; each is known by a unique name
 * (the name in its vm_config). The registry owns the struct vm pointers it
 * holds: registry_free() destroys every VM still in it, registry_remove()
 * hands one back to the caller. Entries keep their insertion order, which
 * is the order of `vm list`.
 *
 * Besides the VM, an entry keeps what the agent knows about it and the VMM
 * does not: when it was added, where it came from (started, restored from
 * a snapshot file, or migrated in), and the phase of a migration job on it,
 * which turns into the API states "migrating", "postcopy" and "incoming".
 *
 * An incoming migration first reserves its name (registry_reserve: an
 * entry without a VM, phase REG_PHASE_INCOMING) as soon as the stream's
 * HELLO names it, so that no vm.start or second stream can take the name
 * while pages arrive; registry_attach() puts the VM in once it is built,
 * registry_remove() drops the reservation when the stream fails. Whoever
 * sees phase != REG_PHASE_NONE must not touch e->vm: another thread (the
 * migration job or the incoming connection) owns it.
 *
 * Threads: no locking inside. The agent serializes every call with its
 * own lock (the controller thread and the incoming-connection threads).
 */
#ifndef KVMIG_TOOLS_REGISTRY_H
#define KVMIG_TOOLS_REGISTRY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "vm/vm.h"

#define REGISTRY_MAX_VMS 64

struct pcdest;

enum registry_phase {
	REG_PHASE_NONE,	     /* no job: the state is the VM's run state */
	REG_PHASE_MIGRATING, /* pre-copy or stop-and-copy in progress */
	REG_PHASE_POSTCOPY,  /* running while pages still arrive on demand */
	REG_PHASE_INCOMING,  /* a migration stream is arriving; vm is NULL until built */
};

enum registry_origin {
	REG_ORIGIN_START,   /* vm.start */
	REG_ORIGIN_RESTORE, /* vm.restore; source holds the file */
	REG_ORIGIN_MIGRATE, /* incoming migration; source holds the peer address */
};

struct registry_entry {
	struct vm *vm; /* NULL while an incoming VM is not built yet */
	char name[VM_NAME_MAX];
	uint64_t mem_bytes; /* of a reservation (HELLO's); use the VM's config once built */
	uint64_t added_ns;  /* clock_now_ns() when added */
	enum registry_origin origin;
	char source[PATH_MAX]; /* snapshot path or peer URI, or "" */
	enum registry_phase phase;
	/*
	 * An incoming post-copy (phase REG_PHASE_POSTCOPY at the destination):
	 * its receiver, for pcdest_get_stats() (thread-safe), or NULL. Set and
	 * cleared under the agent lock by the incoming thread.
	 */
	struct pcdest *pc;
};

struct registry;

/* Return: an empty registry, or NULL when out of memory. */
struct registry *registry_new(void);

/* Destroy every VM still registered, then the registry. Accepts NULL. */
void registry_free(struct registry *r);

/*
 * Check a VM name for the API: 1 to VM_NAME_MAX - 1 characters from
 * [A-Za-z0-9._-], not starting with '-' or '.'.
 * Return: 0 or -EINVAL with a message in err.
 */
int registry_check_name(const char *name, char *err, size_t errlen) __must_check;

/*
 * Add vm under its config name. On success the registry owns vm. source
 * may be NULL.
 * Return: 0; -EEXIST when the name is taken; -ENOSPC when
 * REGISTRY_MAX_VMS are registered.
 */
int registry_add(struct registry *r, struct vm *vm, enum registry_origin origin,
		 const char *source) __must_check;

/*
 * Reserve name for an incoming VM: an entry without a VM in phase
 * REG_PHASE_INCOMING. source (the peer) may be NULL.
 * Return: 0; -EEXIST when the name is taken; -ENOSPC when
 * REGISTRY_MAX_VMS are registered (reservations count).
 */
int registry_reserve(struct registry *r, const char *name, uint64_t mem_bytes,
		     enum registry_origin origin, const char *source) __must_check;

/*
 * Put vm into the reservation named by its config name. The entry stays
 * in REG_PHASE_INCOMING until the caller sets phase (it still owns the
 * VM until then: nobody else touches an entry in that phase). On success
 * the registry owns vm. Return: 0; -ENOENT when no such reservation;
 * -EEXIST when the entry already has a VM.
 */
int registry_attach(struct registry *r, struct vm *vm) __must_check;

/* Return: the entry named name, or NULL. */
struct registry_entry *registry_find(struct registry *r, const char *name);

/*
 * Take the entry named name out of the registry; the caller then owns its
 * VM (typically vm_destroy()). Return: the VM, or NULL when there is no
 * such entry or it was a reservation without a VM.
 */
struct vm *registry_remove(struct registry *r, const char *name);

size_t registry_count(const struct registry *r);

/* Return: the i-th entry in insertion order, or NULL past the end. */
struct registry_entry *registry_at(struct registry *r, size_t i);

/*
 * The API state of an entry: "migrating" or "postcopy" while a job runs,
 * "incoming" while a migration stream arrives, else from the run state:
 * "running", "paused" (also a VM built but not yet started), "stopped".
 */
const char *registry_state_name(const struct registry_entry *e);

#endif
