/* base/events.h - the notable events a staff console tails.
 *
 * Staff actions (with who did them), declined gifts, dead jobs, viewers
 * shed under load, storage failing and back, a loop that stalls: each
 * layer notes what on-call should see, and the console feed reads them
 * by sequence number. One ring of EVENTS_KEEP for the process; the oldest
 * go first. Any thread.
 */
#ifndef TALLY_BASE_EVENTS_H
#define TALLY_BASE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENTS_KEEP 1024
#define EVENT_KIND_SIZE 16
#define EVENT_WHO_SIZE 64
#define EVENT_TEXT_SIZE 160

struct tally_event {
	uint64_t seq;               /* 1, 2, ... in the order noted */
	int64_t at_ms;              /* wall clock, ms since the epoch */
	char kind[EVENT_KIND_SIZE]; /* "staff", "decline", "dead", "overload", "storage", "stall" */
	char who[EVENT_WHO_SIZE];   /* the staff member or token name; "" when none */
	char text[EVENT_TEXT_SIZE];
};

/* Note an event (text cut to fit). */
__attribute__((format(printf, 3, 4))) void events_note(const char *kind, const char *who,
                                                       const char *fmt, ...);

/* Copy the events after seq `after`, oldest first, at most n of them (the
 * newest n when more wait). Returns how many were copied. */
size_t events_since(uint64_t after, struct tally_event *out, size_t n);

/* The last seq noted (0: none yet). */
uint64_t events_last(void);

#endif
