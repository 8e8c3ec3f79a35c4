/* base/events.c - the notable events a staff console tails: a ring
 * under one lock; noting one is a copy and a few bytes of formatting. */
#include "base/events.h"
#include "base/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tally_event ring[EVENTS_KEEP];
static uint64_t last; /* seq of the newest; ring[last % EVENTS_KEEP] */

void events_note(const char *kind, const char *who, const char *fmt, ...)
{
	struct tally_event e;
	va_list ap;

	e.at_ms = util_now_ms();
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	snprintf(e.who, sizeof(e.who), "%s", who ? who : "");
	va_start(ap, fmt);
	vsnprintf(e.text, sizeof(e.text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lock);
	e.seq = ++last;
	ring[e.seq % EVENTS_KEEP] = e;
	pthread_mutex_unlock(&lock);
}

size_t events_since(uint64_t after, struct tally_event *out, size_t n)
{
	uint64_t from;
	size_t k = 0;

	pthread_mutex_lock(&lock);
	from = after + 1;
	if (last >= EVENTS_KEEP && from <= last - EVENTS_KEEP)
		from = last - EVENTS_KEEP + 1; /* older ones are gone */
	if (last >= n && from + n <= last)
		from = last - n + 1; /* the newest n */
	for (uint64_t s = from; s <= last && k < n; s++)
		out[k++] = ring[s % EVENTS_KEEP];
	pthread_mutex_unlock(&lock);
	return k;
}

uint64_t events_last(void)
{
	uint64_t s;

	pthread_mutex_lock(&lock);
	s = last;
	pthread_mutex_unlock(&lock);
	return s;
}
