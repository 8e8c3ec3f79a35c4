/* base/watchdog.h - notices a loop that stopped going round (blocked, or
 * spinning inside one call) and says so: in the log once when it stalls
 * and once when it turns again, and in /metrics (see watchdog.c).
 */
#ifndef TALLY_BASE_WATCHDOG_H
#define TALLY_BASE_WATCHDOG_H

#include <stddef.h>

struct buf;
struct watchdog;
struct watch;

/* A watchdog that calls a loop stalled when it has not beaten for
 * stall_ms, looking every stall_ms / 4. Returns 0 or -errno. */
int watchdog_new(int stall_ms, struct watchdog **out);

/* Start looking (a thread of its own). Returns 0 or -errno. */
int watchdog_start(struct watchdog *w);

/* Stop looking and free (and every watch). Any thread but its own. */
void watchdog_free(struct watchdog *w);

/* Watch the calling thread's loop under name (at most 8 loops; the name
 * is copied). From the loop's own thread, so its CPU can be read. Returns
 * the watch, or NULL when full. */
struct watch *watchdog_join(struct watchdog *w, const char *name);

/* The loop went round once (its own thread; cheap: one atomic add). */
void watch_beat(struct watch *h);

/* The loop is done: stop watching it (its own thread). */
void watch_leave(struct watch *h);

/* 1 while the named loop is stalled, 0 when not (or not watched). */
int watchdog_stalled(struct watchdog *w, const char *name);

/* Append the Prometheus text of every watched loop to b. Returns 0 or
 * -ENOMEM. */
int watchdog_metrics(struct watchdog *w, struct buf *b);

#endif
