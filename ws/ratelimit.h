/* ws/ratelimit.h - per-client token buckets (service thread only). */
#ifndef TALLY_WS_RATELIMIT_H
#define TALLY_WS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* rate tokens per second, burst tokens at most, for up to max_clients
 * clients at once (the longest idle is forgotten first). */
int ratelimit_new(double rate, double burst, size_t max_clients, struct ratelimit **out);
void ratelimit_free(struct ratelimit *r);

/* Take one token for client (an address string) at now_ns. Returns 0 when
 * allowed, else the whole seconds (>= 1) until a token is available. */
int ratelimit_take(struct ratelimit *r, const char *client, uint64_t now_ns);

#endif
