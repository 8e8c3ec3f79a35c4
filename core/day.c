/* core/day.c - the giving day's phases (see day.h). */
#include "core/day.h"

static int day_set(const struct giving_day *d)
{
	return d && d->set;
}

int64_t day_first_gift_at(const struct giving_day *d)
{
	if (!day_set(d))
		return 0;
	return d->early_at ? d->early_at : d->opens_at;
}

enum day_phase day_phase(const struct giving_day *d, int64_t now)
{
	if (!day_set(d))
		return DAY_NONE;
	if (now >= d->closes_at)
		return DAY_CLOSED;
	if (now >= d->opens_at)
		return DAY_OPEN;
	if (d->early_at && now >= d->early_at)
		return DAY_EARLY;
	return DAY_BEFORE;
}

int day_takes_gifts(const struct giving_day *d, int64_t now)
{
	enum day_phase p = day_phase(d, now);

	return p == DAY_NONE || p == DAY_EARLY || p == DAY_OPEN;
}

int64_t day_next_change(const struct giving_day *d, int64_t now)
{
	const int64_t at[] = {d ? d->early_at : 0, d ? d->opens_at : 0, d ? d->closes_at : 0};

	if (!day_set(d))
		return 0;
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		if (at[i] > now)
			return at[i];
	return 0;
}

int64_t day_opens_in_ms(const struct giving_day *d, int64_t now)
{
	return day_set(d) && now < d->opens_at ? d->opens_at - now : 0;
}

int64_t day_campaign_opens_at(const struct campaign_row *r, const struct giving_day *d, int64_t now)
{
	int64_t at = now;

	if (r->status != CAMPAIGN_ACTIVE)
		return 0;
	if (r->starts_at && r->starts_at > at)
		at = r->starts_at;
	if (day_phase(d, now) == DAY_BEFORE && day_first_gift_at(d) > at)
		at = day_first_gift_at(d);
	if (at == now || (r->ends_at && at >= r->ends_at) || (day_set(d) && at >= d->closes_at))
		return 0;
	return at;
}
