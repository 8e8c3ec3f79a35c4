/* ws/pacer.c - how far the live loop slows its viewers down under load.
 *
 * DESIGN: when the machine is short, viewers give way before donors, in
 * this order: updates come less often (each channel's coalescing interval
 * times slow) and donor walls thin (wall-per-s divided by slow), the
 * leaderboard and day channels with them; then, with the channels as slow
 * as they go, new viewers are refused (503 live_full); and only when the
 * intake queue itself is full do donations get 503. Pressure is either
 * side falling behind: live messages waiting for the live loop, or
 * donations that found the writer's queue half full since the last look
 * (the donors' own queue: when it fills, every CPU the viewers take is one
 * the donors wait for; a count, not a sample, so a burst between two looks
 * counts). Once a second slow doubles under pressure and halves after
 * three calm seconds.
 */
#include "ws/pacer.h"

void pacer_init(struct pacer *p, int64_t live_behind, int64_t intake_behind)
{
	p->slow = 1;
	p->calm_seconds = 0;
	p->refusing = 0;
	p->live_behind = live_behind;
	p->intake_behind = intake_behind;
}

int pacer_tick(struct pacer *p, int64_t live_waiting, int64_t intake_crowded, int dropped)
{
	int pressed = dropped || live_waiting > p->live_behind || intake_crowded > p->intake_behind;

	if (pressed) {
		p->calm_seconds = 0;
		/* Already as slow as it goes, and still pressed: refuse. */
		p->refusing = p->slow == PACER_SLOW_MAX;
		if (p->slow < PACER_SLOW_MAX)
			p->slow *= 2;
	} else {
		p->refusing = 0;
		if (p->slow > 1 && ++p->calm_seconds >= 3) {
			p->calm_seconds = 0;
			p->slow /= 2;
		}
	}
	return p->slow;
}

int pacer_refusing(const struct pacer *p)
{
	return p->refusing;
}
