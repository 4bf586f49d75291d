/* SPDX-License-Identifier: MIT */
/*
 * sshtls.h - --ssh-data tls: SSH authenticates both hosts, TLS carries the
 * pages.
 *
 * libssh2 encrypts one 16-byte block per OpenSSL call, so one SSH channel
 * moves ~300 MB/s here, far below the link. With --ssh-data tls the source
 * opens the SSH channel only to hand the destination agent a one-time TLS
 * 1.3 pre-shared key (protocol/wire.h: KEY, answered by KEY_ACK with the
 * port of the destination's tls: listener), then every lane connects to
 * tls://SSHHOST:PORT holding that key (channel_opts.tls_psk). Nothing but
 * the key opens those connections, and only the SSH channel, whose host
 * key known_hosts vouches for and whose user key the destination's sshd
 * accepted, ever carried it: the trust is SSH's, the speed TLS's (AES-GCM
 * on every core). The key dies with the migration (the destination drops
 * it when the migration it opened ends) or after SSHTLS_KEY_LIFETIME_MS.
 *
 * Called by migrate_start() on the controller's thread, before any lane
 * connects; touches no VM.
 */
#ifndef KVMIG_MIGRATE_SSHTLS_H
#define KVMIG_MIGRATE_SSHTLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "protocol/channel.h"
#include "protocol/wire.h"

#define SSHTLS_KEY_LIFETIME_MS 60000u

struct sshtls {
	char identity[WIRE_KEY_ID_BYTES];	/* hex, NUL-terminated */
	uint8_t key[WIRE_KEY_MAX];
	char tls_uri[256];			/* tls://SSHHOST:PORT */
};

/*
 * Through ssh_uri (with co's SSH options), hand the destination a fresh
 * key and learn its TLS port. Return: 0 and *out; -errno with the reason
 * in err (the SSH refusals of channel_ssh.c, or the destination's ERROR:
 * "no tls: listener").
 */
int sshtls_exchange(const char *ssh_uri, const struct channel_opts *co, int timeout_ms,
		    struct sshtls *out, char *err, size_t errlen) __must_check;

/* co for the lanes: TLS with out's key, no certificates. */
void sshtls_channel_opts(const struct sshtls *s, struct channel_opts *co);

#endif
