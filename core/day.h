/* core/day.h - the giving day's schedule: where a moment stands in it, and
 * what that means for a campaign. Pure functions of their arguments (no
 * engine, no clock), so the rules are unit-tested on their own.
 */
#ifndef TALLY_CORE_DAY_H
#define TALLY_CORE_DAY_H

#include "base/model.h"

#include <stdint.h>

/* The phase of day d at now (ms): DAY_NONE when d is NULL or not set;
 * DAY_BEFORE before early_at (or opens_at without an early window);
 * DAY_EARLY from early_at to opens_at; DAY_OPEN from opens_at to closes_at;
 * DAY_CLOSED from closes_at on. Each bound belongs to the phase it starts. */
enum day_phase day_phase(const struct giving_day *d, int64_t now);

/* 1 if the day lets gifts in at now: no day, or the early or open phase. */
int day_takes_gifts(const struct giving_day *d, int64_t now);

/* The first moment gifts are taken: early_at, else opens_at (0: no day). */
int64_t day_first_gift_at(const struct giving_day *d);

/* The next moment after now at which the phase changes (early_at, opens_at
 * or closes_at); 0 when none is ahead or there is no day. */
int64_t day_next_change(const struct giving_day *d, int64_t now);

/* ms from now to the opening (opens_at): 0 once open, closed, or with no
 * day. */
int64_t day_opens_in_ms(const struct giving_day *d, int64_t now);

/* When a campaign that takes no gifts at now (its stored status active,
 * but outside its own window or the day's) will take them: the later of
 * its own starts_at and the day's first gift, when that comes before the
 * campaign's ends_at and the day's closes_at; 0 when it takes gifts now,
 * is paused or closed by staff, or will never open again. */
int64_t day_campaign_opens_at(const struct campaign_row *r, const struct giving_day *d,
                              int64_t now);

#endif
