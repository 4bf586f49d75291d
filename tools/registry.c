/* SPDX-License-Identifier: MIT */
#include "tools/registry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

struct registry {
	struct registry_entry *e[REGISTRY_MAX_VMS];
	size_t n;
};

struct registry *registry_new(void)
{
	return calloc(1, sizeof(struct registry));
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	/* Newest first: the reverse of creation, like a stack of resources. */
	while (r->n > 0) {
		struct registry_entry *e = r->e[--r->n];

		vm_destroy(e->vm);
		free(e);
	}
	free(r);
}

int registry_check_name(const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0) {
		snprintf(err, errlen, "VM name is empty");
		return -EINVAL;
	}
	if (len >= VM_NAME_MAX) {
		snprintf(err, errlen, "VM name is longer than %d characters", VM_NAME_MAX - 1);
		return -EINVAL;
	}
	if (name[0] == '-' || name[0] == '.') {
		snprintf(err, errlen, "VM name '%s' must not start with '%c'", name, name[0]);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		if (!ok) {
			snprintf(err, errlen, "VM name '%s' has a character outside [A-Za-z0-9._-]",
				 name);
			return -EINVAL;
		}
	}
	return 0;
}

static ssize_t find_index(const struct registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->e[i]->name, name))
			return (ssize_t)i;
	return -1;
}

static int add_entry(struct registry *r, struct vm *vm, const char *name, uint64_t mem_bytes,
		     enum registry_origin origin, const char *source, enum registry_phase phase)
{
	struct registry_entry *e;

	if (find_index(r, name) >= 0)
		return -EEXIST;
	if (r->n >= REGISTRY_MAX_VMS)
		return -ENOSPC;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->vm = vm;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->mem_bytes = mem_bytes;
	e->added_ns = clock_now_ns();
	e->origin = origin;
	snprintf(e->source, sizeof(e->source), "%s", source ? source : "");
	e->phase = phase;
	r->e[r->n++] = e;
	return 0;
}

int registry_add(struct registry *r, struct vm *vm, enum registry_origin origin, const char *source)
{
	const struct vm_config *cfg = vm_get_config(vm);

	return add_entry(r, vm, cfg->name, cfg->mem_bytes, origin, source, REG_PHASE_NONE);
}

int registry_reserve(struct registry *r, const char *name, uint64_t mem_bytes,
		     enum registry_origin origin, const char *source)
{
	return add_entry(r, NULL, name, mem_bytes, origin, source, REG_PHASE_INCOMING);
}

int registry_attach(struct registry *r, struct vm *vm)
{
	ssize_t i = find_index(r, vm_get_config(vm)->name);

	if (i < 0 || r->e[i]->phase != REG_PHASE_INCOMING)
		return -ENOENT;
	if (r->e[i]->vm)
		return -EEXIST;
	r->e[i]->vm = vm;
	r->e[i]->mem_bytes = vm_get_config(vm)->mem_bytes;
	return 0;
}

struct registry_entry *registry_find(struct registry *r, const char *name)
{
	ssize_t i = find_index(r, name);

	return i < 0 ? NULL : r->e[i];
}

struct vm *registry_remove(struct registry *r, const char *name)
{
	ssize_t i = find_index(r, name);
	struct vm *vm;

	if (i < 0)
		return NULL;
	vm = r->e[i]->vm;
	free(r->e[i]);
	memmove(&r->e[i], &r->e[i + 1], (r->n - (size_t)i - 1) * sizeof(r->e[0]));
	r->n--;
	return vm;
}

size_t registry_count(const struct registry *r)
{
	return r->n;
}

struct registry_entry *registry_at(struct registry *r, size_t i)
{
	return i < r->n ? r->e[i] : NULL;
}

const char *registry_state_name(const struct registry_entry *e)
{
	switch (e->phase) {
	case REG_PHASE_MIGRATING:
		return "migrating";
	case REG_PHASE_POSTCOPY:
		return "postcopy";
	case REG_PHASE_INCOMING:
		return "incoming";
	case REG_PHASE_NONE:
		break;
	}
	if (!e->vm)
		return "incoming";
	switch (vm_get_run_state(e->vm)) {
	case VM_RUN_RUNNING:
		return "running";
	case VM_RUN_CREATED:
	case VM_RUN_PAUSED:
		return "paused";
	case VM_RUN_STOPPED:
		return "stopped";
	}
	return "stopped";
}
