/* SPDX-License-Identifier: MIT */
/*
 * inventory.h - the agents of a fleet by name, for kvmig drain
 * (--inventory FILE), so that an operator writes `--from host3 --to
 * host4,host5` instead of socket paths and URIs.
 *
 * The file is text, one agent per line:
 *
 *     # NAME  CONTROL-SOCKET                 [MIGRATION-URI]
 *     host3   /run/kvmig/host3.sock
 *     host4   /run/kvmig/host4.sock          tls://10.0.0.4:4444
 *
 * fields separated by blanks, `#` starts a comment, blank lines are
 * skipped. NAME is 1..63 letters, digits, '-', '_' or '.'; the control
 * socket an absolute path (as kvmig --agent takes it); the URI, when
 * given, is where migrations to that agent go (else the first URI the
 * agent reports it listens on). A name given twice, a relative path or a
 * URI that does not parse is an error naming FILE:LINE.
 */
#ifndef KVMIG_TOOLS_INVENTORY_H
#define KVMIG_TOOLS_INVENTORY_H

#include <stddef.h>

#include "common/compiler.h"

#define INV_NAME_MAX	64
#define INV_PATH_MAX	108	/* sun_path */
#define INV_URI_MAX	256
#define INV_MAX_AGENTS	64

struct inv_agent {
	char name[INV_NAME_MAX];
	char control[INV_PATH_MAX];
	char uri[INV_URI_MAX];		/* "" when the file gives none */
};

struct inventory {
	struct inv_agent a[INV_MAX_AGENTS];
	unsigned n;
};

/* Parse text (len bytes; name: the file, for messages). Return: 0, or -EINVAL with err. */
int inventory_parse(struct inventory *inv, const char *text, size_t len, const char *name,
		    char *err, size_t errlen) __must_check;

/* Read and parse path. Return: 0, or -errno with err. */
int inventory_load(struct inventory *inv, const char *path, char *err, size_t errlen) __must_check;

/* The agent called name, or NULL. */
const struct inv_agent *inventory_find(const struct inventory *inv, const char *name);

#endif /* KVMIG_TOOLS_INVENTORY_H */
