/* core/demo.h - a simulated giving day for first runs and demos. */
#ifndef TALLY_CORE_DEMO_H
#define TALLY_CORE_DEMO_H

#include "core/engine.h"

struct demo;

/* Create the demo campaigns that do not exist yet, set the demo's giving
 * day (early giving from now, opening three minutes after start, closing
 * six hours after; it replaces any day the database had), then start a
 * thread that
 * sends a steady, bursty stream of donations through the engine (the same
 * path as the HTTP API). Returns 0 or a negative code. */
int demo_start(struct engine *e, struct demo **out);

/* Stop the thread and free d. */
void demo_stop(struct demo *d);

#endif
