/* base/hour.h - gifts and their amount per minute over the last hour.
 *
 * One window per campaign (core/campaigns.c keeps them): a ring of
 * HOUR_MINUTES buckets, one per wall-clock minute, filled as gifts
 * succeed, summed when a reader asks. Plain data: the owner locks it.
 */
#ifndef TALLY_BASE_HOUR_H
#define TALLY_BASE_HOUR_H

#include <stdint.h>

#define HOUR_MINUTES 60

struct hour_window {
	int64_t minute;               /* the minute (ms since the epoch / 60000) of bucket 0 */
	uint32_t gifts[HOUR_MINUTES]; /* bucket i: the minute `minute - i` */
	int64_t cents[HOUR_MINUTES];  /* their amount, in minor units */
};

/* Count one gift of cents at now_ms (ms since the epoch). A time before
 * the window's newest minute counts in its own minute while that is still
 * in the window (the clock stepped back, or gifts of one batch out of
 * order), else not at all. */
void hour_add(struct hour_window *h, int64_t now_ms, int64_t cents);

/* The gifts and their amount in the minute of now_ms and the 59 before
 * it (the current minute is partial). A zeroed window holds none. */
void hour_sum(const struct hour_window *h, int64_t now_ms, int64_t *gifts, int64_t *cents);

#endif
