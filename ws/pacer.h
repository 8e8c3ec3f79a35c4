/* ws/pacer.h - how far the live loop slows its viewers down under load
 * (see pacer.c). ws/ only; one thread (the live loop) calls it.
 */
#ifndef TALLY_WS_PACER_H
#define TALLY_WS_PACER_H

#include <stdint.h>

#define PACER_SLOW_MAX 16 /* the most the channels are slowed */

struct pacer {
	int slow;              /* 1, 2, 4 .. PACER_SLOW_MAX: intervals times, events divided by */
	int calm_seconds;      /* seconds without pressure since the last change */
	int refusing;          /* new viewers are refused */
	int64_t live_behind;   /* live messages waiting that count as pressure */
	int64_t intake_behind; /* donations crowding the writer's queue that do */
};

/* A pacer at full speed; pressure is more than live_behind messages
 * waiting for the live loop, or more than intake_behind donations queued
 * into a half-full writer queue since the last tick. */
void pacer_init(struct pacer *p, int64_t live_behind, int64_t intake_behind);

/* Once a second: live messages waiting now, donations that crowded the
 * writer's queue since the last tick, and whether live messages were
 * dropped since. Doubles slow under pressure, halves it after three calm
 * seconds. Returns the new slow. */
int pacer_tick(struct pacer *p, int64_t live_waiting, int64_t intake_crowded, int dropped);

/* 1 while new viewers are refused: the channels are as slow as they go
 * and the pressure is still on. */
int pacer_refusing(const struct pacer *p);

#endif
