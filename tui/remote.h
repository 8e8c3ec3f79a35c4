/* tui/remote.h - the console's source for a server elsewhere.
 *
 * `tally console --connect http://HOST:PORT` (or https://, over TLS with
 * the certificate verified, see remote_conn.h) reads the server's console
 * feed over its websocket (/live/console, subprotocol tally.console.v1)
 * on a thread of its own, and acts through the admin HTTP API. The
 * connection's state is part of what fetch returns: connected, stale (no
 * message for REMOTE_STALE_MS) or reconnecting (with backoff up to
 * REMOTE_BACKOFF_MAX_MS); the last numbers stay on screen meanwhile.
 */
#ifndef TALLY_TUI_REMOTE_H
#define TALLY_TUI_REMOTE_H

#include "tui/console.h"

#include <stddef.h>

#define REMOTE_STALE_MS 3000       /* no message for this long: stale */
#define REMOTE_DEAD_MS 10000       /* no message for this long: reconnect */
#define REMOTE_BACKOFF_MAX_MS 8000 /* between two connection attempts at most */
#define REMOTE_ACTION_TIMEOUT_S 5  /* an action's HTTP request at most */

struct remote;

/* Parse url ("http://HOST:PORT" or "https://HOST:PORT", an optional
 * trailing slash) and keep the token. For https://, the server's
 * certificate must be signed by one in ca_file (PEM; NULL: the system's
 * CAs) and name HOST; ca_file is read now, and is refused with http://.
 * Returns 0, or a negative errno with one line in err (a bad URL, a
 * missing or unreadable ca_file). Nothing is connected yet. */
int remote_new(const char *url, const char *token, const char *ca_file, struct remote **out,
               char *err, size_t errcap);

/* Start the reader thread. Returns 0 or a negative errno. */
int remote_start(struct remote *r);

/* Stop the thread (if started) and free. */
void remote_free(struct remote *r);

/* The console source reading r (valid as long as r). */
void remote_source(struct remote *r, struct console_source *src);

#endif
