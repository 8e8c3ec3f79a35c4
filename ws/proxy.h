/* ws/proxy.h - trusted reverse proxies, and the client address behind
 * one (X-Forwarded-For). ws/ and the composition root.
 */
#ifndef TALLY_WS_PROXY_H
#define TALLY_WS_PROXY_H

#include <stddef.h>

#define PROXY_MAX 64       /* trusted CIDRs at most */
#define PROXY_XFF_MAX 1024 /* a longer X-Forwarded-For is ignored */
#define PROXY_IP_SIZE 48   /* an address as text, NUL included */

struct proxies;

/* An empty list (nothing trusted). Returns 0 or -ENOMEM. */
int proxies_new(struct proxies **out);
void proxies_free(struct proxies *p);

/* Trust cidr: "10.0.0.0/8", "::1/128", or an address alone (the whole
 * length). Returns 0, or -EINVAL (not a CIDR, a prefix out of range, bits
 * set past the prefix) or -ENOSPC (PROXY_MAX already) with a message in
 * err. Before the list is shared: afterwards it is read-only, and any
 * thread may read it. */
int proxies_add(struct proxies *p, const char *cidr, char *err, size_t errcap);

/* How many CIDRs are trusted (0 for p NULL). */
int proxies_count(const struct proxies *p);

/* 1 when ip (text) lies in a trusted CIDR; an IPv4-mapped IPv6 address
 * counts as its IPv4 one. 0 for p NULL or ip not an address. */
int proxies_trusted(const struct proxies *p, const char *ip);

/* The client's address for limits and the audit: peer itself when peer
 * is not trusted or xff is NULL; else the right-most address of xff (a
 * comma-separated X-Forwarded-For, several headers joined by commas)
 * that is not trusted, or its left-most when all are. When the walk from
 * the right meets an element that is not a plain address (a name, a
 * port, garbage, an empty element) before it finds the client, the
 * header is ignored and out is peer. out gets cap bytes at most. */
void proxies_client(const struct proxies *p, const char *peer, const char *xff, char *out,
                    size_t cap);

#endif
