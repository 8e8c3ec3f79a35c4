/* ws/console_feed.h - what a staff console shows, as JSON messages.
 *
 * One feed per console: the in-process console reads it directly, a remote
 * one over the console websocket (/live/console, subprotocol
 * tally.console.v1, served by the live loop). Both read the same messages,
 * so two consoles show the same numbers. The first message is a "hello"
 * (the server, who is attached, and alert_paused_min: after how many
 * minutes a paused campaign is an alert, so that every console agrees);
 * each next one a "state": the server's clock (now_ms) and the header's
 * numbers, the queues, the dead jobs, the notable events since the last
 * state (base/events.h), and the campaigns that changed since
 * the previous state (every campaign at first, CONSOLE_FEED_BATCH at a
 * time, then only changes), and the card-testing shield (core/shield.h)
 * when it changed. tui/console_mirror.c reads them.
 */
#ifndef TALLY_WS_CONSOLE_FEED_H
#define TALLY_WS_CONSOLE_FEED_H

#include "base/buf.h"

#include <stdint.h>

#define CONSOLE_FEED_BATCH 1000     /* campaigns per state message at most */
#define CONSOLE_FEED_DEAD 50        /* dead jobs per state message at most */
#define CONSOLE_FEED_EVENTS 100     /* notable events per state at most (the newest) */
#define CONSOLE_FEED_FULL_MS 5000   /* every campaign looked at again this often */
#define CONSOLE_FEED_SHIELD_MS 1000 /* the shield rendered at most this often */
#define CONSOLE_FEED_OFFENDERS 10   /* the shield's worst offenders per state */

struct server;
struct console_feed;

/* A feed of s for one console; who and role name the staff token it
 * serves (shown by the console); batch is how many campaigns a state
 * carries at most (0: CONSOLE_FEED_BATCH; the in-process console takes
 * them all at once). Returns 0 or -ENOMEM. */
int console_feed_new(struct server *s, const char *who, const char *role, long batch,
                     struct console_feed **out);
void console_feed_free(struct console_feed *f);

/* Append the next message (one JSON object) to out: the hello first, then
 * states. A state is appended even when nothing changed (the console sees
 * that the server is alive). Returns 0 or -ENOMEM. Not thread-safe: one
 * caller per feed. */
int console_feed_next(struct console_feed *f, struct buf *out);

/* Make the next state carry the shield whatever its cadence (after a staff
 * action on it, so the console shows what it did at once). */
void console_feed_shield_now(struct console_feed *f);

#endif
