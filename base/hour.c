/* base/hour.c - gifts and their amount per minute over the last hour.
 *
 * DESIGN: bucket 0 is the newest minute seen; a gift in a later minute
 * shifts the ring by the minutes that passed (all of it after an hour of
 * silence), so adding is O(1) but for that shift and summing is one pass
 * over HOUR_MINUTES buckets, skipping those older than the hour asked for.
 */
#include "base/hour.h"

#include <string.h>

void hour_add(struct hour_window *h, int64_t now_ms, int64_t cents)
{
	int64_t minute = now_ms / 60000, shift = minute - h->minute, back;

	if (shift > 0) {
		if (shift >= HOUR_MINUTES) {
			memset(h->gifts, 0, sizeof(h->gifts));
			memset(h->cents, 0, sizeof(h->cents));
		} else {
			size_t keep = (size_t)(HOUR_MINUTES - shift);

			memmove(h->gifts + shift, h->gifts, keep * sizeof(h->gifts[0]));
			memmove(h->cents + shift, h->cents, keep * sizeof(h->cents[0]));
			memset(h->gifts, 0, (size_t)shift * sizeof(h->gifts[0]));
			memset(h->cents, 0, (size_t)shift * sizeof(h->cents[0]));
		}
		h->minute = minute;
	}
	back = h->minute - minute;
	if (back >= HOUR_MINUTES)
		return;
	h->gifts[back]++;
	h->cents[back] += cents;
}

void hour_sum(const struct hour_window *h, int64_t now_ms, int64_t *gifts, int64_t *cents)
{
	int64_t oldest = now_ms / 60000 - (HOUR_MINUTES - 1);

	*gifts = *cents = 0;
	for (int i = 0; i < HOUR_MINUTES; i++) {
		int64_t minute = h->minute - i;

		if (minute < oldest || minute > now_ms / 60000)
			continue;
		*gifts += h->gifts[i];
		*cents += h->cents[i];
	}
}
