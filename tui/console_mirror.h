/* tui/console_mirror.h - a console model kept from the feed's messages.
 *
 * The server's console feed (ws/console_feed.c) sends a "hello", then
 * "state" messages: the header numbers, queues and dead jobs whole, the
 * campaigns that changed since the last state. A mirror applies them and
 * copies the result into the model the console draws. The in-process
 * console and the remote one both read the feed through a mirror, so they
 * show the same numbers. No locking: the owner serialises the calls.
 */
#ifndef TALLY_TUI_CONSOLE_MIRROR_H
#define TALLY_TUI_CONSOLE_MIRROR_H

#include "tui/console.h"

#include <stddef.h>

struct console_mirror;

int console_mirror_new(struct console_mirror **out);
void console_mirror_free(struct console_mirror *mi);

/* Forget the campaigns and numbers (a new connection starts over). */
void console_mirror_reset(struct console_mirror *mi);

/* Apply one message. Returns 0; -EINVAL for a message that is not a
 * feed message (err says what is wrong; nothing of it is applied); or
 * -ENOMEM. */
int console_mirror_apply(struct console_mirror *mi, const char *msg, size_t len, char *err,
                         size_t errcap);

/* 1 once a state said every campaign has been sent. */
int console_mirror_synced(const struct console_mirror *mi);

/* Copy what the mirror holds into m (m->campaigns realloc'd; the
 * connection fields, server, connected and error, are left as they are).
 * Returns 0 or -ENOMEM. */
int console_mirror_copy(const struct console_mirror *mi, struct console_model *m);

#endif
