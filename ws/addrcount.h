/* ws/addrcount.h - connections per client address, for one thread (the
 * live loop). A table of the addresses connected now: an address goes
 * when its last connection does.
 */
#ifndef TALLY_WS_ADDRCOUNT_H
#define TALLY_WS_ADDRCOUNT_H

#include <stddef.h>

#define ADDRCOUNT_IP_SIZE 48

struct addrcount;

/* A table for up to cap addresses at once (rounded up to a power of two).
 * Returns 0 or -ENOMEM. */
int addrcount_new(size_t cap, struct addrcount **out);
void addrcount_free(struct addrcount *a);

/* Count one more connection from ip unless it has limit already. Returns
 * 0 (counted), -EBUSY (at the limit: not counted) or -ENOSPC (the table
 * is full of other addresses: not counted, not limited). */
int addrcount_add(struct addrcount *a, const char *ip, int limit);

/* One connection from ip (counted by addrcount_add) is gone. */
void addrcount_remove(struct addrcount *a, const char *ip);

#endif
