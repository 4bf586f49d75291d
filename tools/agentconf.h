/* SPDX-License-Identifier: MIT */
/*
 * agentconf.h - kvmigd's configuration: the file of `kvmigd --config FILE`
 * and the command-line options that override it.
 *
 * The file (documented in kvmigd.conf(5), tools/man/kvmigd.conf.5) is
 * lines of `key = value`. Blank lines are ignored; `#` starts a comment
 * at the start of a line or after a blank, so a value may hold a `#` that
 * follows another character (a path like /srv/vm#1). Blanks around the
 * key and the value are dropped, those inside the value kept. Keys:
 *
 *   control = PATH       the control socket (--control)
 *   listen = URI         a migration listener (--listen); repeatable, up
 *                        to AGENTCONF_MAX_LISTEN
 *   tls_dir = DIR        TLS credentials (--tls-dir)
 *   state_dir = DIR      the agent's state directory (--state-dir)
 *   announce = IFACE     the RARP announce interface of incoming VMs
 *                        (--announce)
 *   max_incoming = N     migrations arriving at once (--max-incoming);
 *                        0: no limit of its own
 *   max_outgoing = N     migration jobs running at once (--max-outgoing)
 *   bandwidth = MiB/s    the host-wide budget the outgoing jobs share
 *                        (--bandwidth-budget; the syntax of kvmig migrate
 *                        --bandwidth); 0: none
 *   guest_mem = SIZE     the guest RAM this agent hosts at most, all VMs
 *                        together (--guest-mem; K, M, G, T); 0: no limit
 *
 * An unknown key, a bad value or a key given twice (but listen) is an
 * error naming the file and the line: "FILE:LINE: message".
 *
 * Both the file and the options go through agentconf_set(), so a value
 * means the same and is checked the same wherever it comes from. An
 * option repeated on the command line replaces the earlier one (as
 * getopt programs do); agentconf_override() then lays the options over
 * the file: each key set on the command line wins, and any --listen
 * replaces every listen line of the file.
 *
 * The struct owns its strings (agentconf_free). No threads, no globals.
 */
#ifndef KVMIG_TOOLS_AGENTCONF_H
#define KVMIG_TOOLS_AGENTCONF_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define AGENTCONF_MAX_LISTEN 4	      /* = AGENT_MAX_LISTEN (tools/agent.h) */
#define AGENTCONF_MAX_COUNT  64	      /* max_incoming, max_outgoing: 0 to this */
#define AGENTCONF_MAX_BYTES  (1 << 20) /* a larger file is refused */

enum agentconf_key {
	AGENTCONF_CONTROL,
	AGENTCONF_LISTEN,
	AGENTCONF_TLS_DIR,
	AGENTCONF_STATE_DIR,
	AGENTCONF_ANNOUNCE,
	AGENTCONF_MAX_INCOMING,
	AGENTCONF_MAX_OUTGOING,
	AGENTCONF_BANDWIDTH,
	AGENTCONF_GUEST_MEM,
	AGENTCONF_NKEYS
};

struct agentconf {
	char *control;				/* or NULL */
	char *listen[AGENTCONF_MAX_LISTEN];	/* nlisten of them, in order */
	unsigned nlisten;
	char *tls_dir, *state_dir, *announce;	/* or NULL */
	unsigned max_incoming, max_outgoing;	/* 0: no limit */
	uint64_t bandwidth;			/* bytes/s, 0: no budget */
	uint64_t guest_mem;			/* bytes for guests, 0: no limit */
	unsigned set;				/* bit (1 << key): the key was given */
	unsigned line[AGENTCONF_NKEYS];		/* the file line that gave it (0: none) */
};

/* An empty configuration: nothing set. */
void agentconf_init(struct agentconf *c);

/* Free the strings; c is empty again. */
void agentconf_free(struct agentconf *c);

/* The key's name in the file ("max_incoming"), or NULL. */
const char *agentconf_key_name(enum agentconf_key k);

/*
 * Give key (its name in the file) the value text. line > 0: from that
 * line of a file, where a scalar key given before is an error; line 0:
 * from the command line, where it replaces the value.
 * Return: 0; -ENOENT (unknown key), -EINVAL (bad value), -EEXIST (given
 * twice), -E2BIG (too many listen), -ENOMEM; err says why, never with
 * the file or line, and for -EINVAL about the value alone ("expected a
 * count from 0 to 64 (0: no limit), not 'x'"): the caller names the key
 * or the option.
 */
int agentconf_set(struct agentconf *c, const char *key, const char *value, unsigned line,
		  char *err, size_t errlen) __must_check;

/*
 * Parse the text of a configuration file (len bytes, no NUL needed)
 * into c, which agentconf_init() prepared. name is the file's name in
 * the messages. Return: 0, or -errno with "NAME:LINE: message" in err
 * (c then holds what the lines before it set).
 */
int agentconf_parse(struct agentconf *c, const char *name, const char *text, size_t len,
		    char *err, size_t errlen) __must_check;

/*
 * Read and parse the file at path into c (agentconf_init'ed).
 * Return: 0, or -errno with "PATH: reason" or "PATH:LINE: message".
 */
int agentconf_load(struct agentconf *c, const char *path, char *err, size_t errlen) __must_check;

/*
 * Lay the command line's values (cli, from agentconf_set with line 0)
 * over the file's (c): every key cli set replaces c's; cli's listens
 * replace all of c's. The strings move from cli to c; cli ends empty.
 */
void agentconf_override(struct agentconf *c, struct agentconf *cli);


#endif /* KVMIG_TOOLS_AGENTCONF_H */
