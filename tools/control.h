/* SPDX-License-Identifier: MIT */
/*
 * control.h - the control API's framing: one JSON object per line over a
 * unix stream socket, shared by the agent (kvmigd) and the CLI (kvmig).
 *
 * Wire format (tools/API.md is the reference for the requests):
 *
 *   request  = JSON object, compact, terminated by '\n'
 *              {"method":"vm.info","name":"a"}
 *   response = JSON object, compact, terminated by '\n'
 *              {"ok":true,...} or {"ok":false,"error":"message"}
 *
 * A line is at most max_line bytes without its '\n' (CTL_REQUEST_MAX for
 * the agent, CTL_RESPONSE_MAX for the CLI). A trailing '\r' is dropped and
 * blank lines are skipped. A longer line is reported once as -EMSGSIZE and
 * the rest of it, up to its '\n', is thrown away, so the stream stays in
 * step and the next line parses normally. JSON encoding never emits a raw
 * newline (strings escape it), so one value is always one line.
 *
 * struct ctl_linebuf is a growable input buffer owned by one connection
 * (one thread); nothing here keeps global state.
 */
#ifndef KVMIG_TOOLS_CONTROL_H
#define KVMIG_TOOLS_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"

#define KVMIG_VERSION	 "0.1.0"     /* of kvmigd and kvmig */
#define CTL_API_VERSION	 1	     /* of the requests in tools/API.md */
#define CTL_REQUEST_MAX	 (64u << 10) /* longest request line the agent accepts */
#define CTL_RESPONSE_MAX (8u << 20)  /* longest response line a client accepts */
#define CTL_MAC_STRLEN	 18	     /* "52:54:00:12:34:56" plus NUL */

struct ctl_linebuf {
	char *buf;
	size_t start; /* first unconsumed byte */
	size_t len;   /* end of valid bytes */
	size_t cap;
	size_t max_line; /* longest accepted line, without '\n' */
	size_t scanned;	 /* bytes after start known to hold no '\n' */
	bool discarding; /* inside an oversize line: drop up to '\n' */
};

/* Set up an empty buffer. Return: 0 or -ENOMEM. */
int ctl_linebuf_init(struct ctl_linebuf *lb, size_t max_line) __must_check;

/* Free the buffer; lb may be reused after ctl_linebuf_init(). */
void ctl_linebuf_free(struct ctl_linebuf *lb);

/* Append bytes received from the peer. Return: 0 or -ENOMEM. */
int ctl_linebuf_feed(struct ctl_linebuf *lb, const void *data, size_t len) __must_check;

/*
 * One read(2) from fd (blocking or not) into lb.
 * Return: bytes read, 0 at end of file, -EAGAIN or another -errno.
 */
ssize_t ctl_linebuf_read(struct ctl_linebuf *lb, int fd) __must_check;

/*
 * ctl_linebuf_read() that also takes file descriptors sent with the bytes
 * (SCM_RIGHTS, at most CTL_MAX_FDS): *nfds of them land in fds
 * (close-on-exec; the caller owns them). More than CTL_MAX_FDS, or a
 * truncated control message: the extra ones are closed and -EBADMSG.
 */
#define CTL_MAX_FDS 2
ssize_t ctl_linebuf_read_fds(struct ctl_linebuf *lb, int fd, int fds[CTL_MAX_FDS],
			     unsigned *nfds) __must_check;

/*
 * Take the next complete line. *line points into lb, NUL-terminated, and
 * stays valid until the next call on lb.
 * Return: 1 and *line, *len; 0 when no complete line is buffered;
 * -EMSGSIZE once for a line longer than max_line (it is then skipped).
 */
int ctl_linebuf_next(struct ctl_linebuf *lb, char **line, size_t *len) __must_check;

/*
 * At end of file: take what is left as a last line even without '\n'.
 * Return: 1 and *line, *len; 0 when nothing (or only blanks) is left,
 * -EMSGSIZE when the rest is too long.
 */
int ctl_linebuf_take_rest(struct ctl_linebuf *lb, char **line, size_t *len) __must_check;

/* Bytes buffered but not yet returned as lines. */
size_t ctl_linebuf_pending(const struct ctl_linebuf *lb);

/*
 * Parse one line as a JSON object.
 * Return: 0 and *out (a new reference; the caller json_decref()s it), or
 * -EBADMSG with a message in err ("malformed JSON at column 7: ..." or
 * "request is not a JSON object").
 */
int ctl_parse_object(const char *line, size_t len, json_t **out, char *err,
		     size_t errlen) __must_check;

/*
 * Encode obj as one compact line ending in '\n'.
 * Return: a malloc()ed NUL-terminated string the caller frees, with its
 * length (including the '\n') in *len; NULL when out of memory.
 */
char *ctl_encode(const json_t *obj, size_t *len);

/* {"ok":true}. Return: a new object, or NULL when out of memory. */
json_t *ctl_response_ok(void);

/* {"ok":false,"error":"<formatted message>"}. Return: a new object or NULL. */
json_t *ctl_response_error(const char *fmt, ...) PRINTF_FMT(1, 2);

/*
 * A JSON string from arbitrary bytes (guest console output): invalid UTF-8
 * and NUL bytes become '?'. Return: a new string, or NULL when out of memory.
 */
json_t *ctl_string_lossy(const char *s, size_t len);

/*
 * Request field helpers for the agent. Each writes "field 'key' ..." into
 * err on failure.
 * ctl_check_keys: every key of obj is "method", "id" or in allowed
 * (NULL-terminated), so a misspelt field is an error, not silently ignored.
 * Return: 0 or -EINVAL.
 */
int ctl_check_keys(json_t *obj, const char *const *allowed, char *err, size_t errlen) __must_check;

/*
 * String field. *out borrows from obj. Return: 0 when present, 1 when absent
 * and not required, -EINVAL when absent and required or not a string.
 */
int ctl_get_str(const json_t *obj, const char *key, bool required, const char **out, char *err,
		size_t errlen) __must_check;

/*
 * Non-negative integer field. Return: 0 when present, 1 when absent and
 * not required, -EINVAL when absent and required, of another type or < 0.
 */
int ctl_get_u64(const json_t *obj, const char *key, bool required, uint64_t *out, char *err,
		size_t errlen) __must_check;

/*
 * Boolean field (JSON true or false). Return: 0 when present, 1 when
 * absent and not required, -EINVAL when absent and required or not a
 * boolean.
 */
int ctl_get_bool(const json_t *obj, const char *key, bool required, bool *out, char *err,
		 size_t errlen) __must_check;

/*
 * Parse a MAC strictly: six two-digit hex pairs separated by ':'
 * ("52:54:00:ab:CD:ef"). Multicast and all-zero addresses are refused: a
 * NIC needs a unicast address. Return: 0 or -EINVAL with a message in err.
 */
int ctl_parse_mac(const char *s, uint8_t mac[6], char *err, size_t errlen) __must_check;

/* Format a MAC as lower-case "52:54:00:12:34:56" into out. Returns out. */
const char *ctl_format_mac(const uint8_t mac[6], char out[CTL_MAC_STRLEN]);

/*
 * Client side: connect to the agent's unix socket at path.
 * Return: a connected blocking fd (close-on-exec), or -errno with
 * "cannot reach agent at PATH: reason" in err.
 */
int ctl_connect(const char *path, char *err, size_t errlen) __must_check;

/*
 * Client side: send one request line and wait for one response line.
 * timeout_ms <= 0 waits forever. A response with "ok":false is still a
 * success of this call: the caller looks at "ok" and "error".
 * Return: 0 and *resp (caller json_decref()s it); -ETIMEDOUT,
 * -ECONNRESET (the agent closed the connection), -EMSGSIZE, -EBADMSG
 * (not a JSON object or no boolean "ok") or another -errno, with a
 * message in err.
 */
int ctl_call_line(int fd, const char *line, size_t len, json_t **resp, int timeout_ms, char *err,
		  size_t errlen) __must_check;

/*
 * ctl_call_line() that sends nfds (1..CTL_MAX_FDS) file descriptors with
 * the request (SCM_RIGHTS): agent methods such as incoming.adopt take
 * them. Same return values.
 */
int ctl_call_fds(int fd, const json_t *req, const int *fds, unsigned nfds, json_t **resp,
		 int timeout_ms, char *err, size_t errlen) __must_check;

/*
 * The sending half of ctl_call_fds(): req as one line with the nfds
 * descriptors, no wait for the response. For a client that reads the
 * response and the lines after it with one ctl_linebuf (kvmigd --incoming
 * stdio: the agent's incoming.end line may arrive in the same read as the
 * response, and ctl_call_fds() would drop what follows the response).
 * Return: 0, -EINVAL (nfds), -errno; err says why.
 */
int ctl_send_fds(int fd, const json_t *req, const int *fds, unsigned nfds, char *err,
		 size_t errlen) __must_check;

/* The control socket the CLI and kvmigd --incoming stdio use without --agent/--control
 * and $KVMIG_AGENT. */
#define CTL_DEFAULT_AGENT "/run/kvmig/kvmigd.sock"

/* ctl_call_line() with req encoded by ctl_encode(). Same return values. */
int ctl_call(int fd, const json_t *req, json_t **resp, int timeout_ms, char *err,
	     size_t errlen) __must_check;

#endif
