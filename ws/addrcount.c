/* ws/addrcount.c - connections per address in an open-addressing table
 * with linear probing. Removing an address shifts the entries after it
 * back (no tombstones), so the table only ever holds the addresses that
 * are connected now and never fills up with ones that have left.
 */
#include "ws/addrcount.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char ip[ADDRCOUNT_IP_SIZE]; /* "" = free */
	int n;
};

struct addrcount {
	size_t mask, used;
	struct slot *v;
};

int addrcount_new(size_t cap, struct addrcount **out)
{
	struct addrcount *a = calloc(1, sizeof(*a));
	size_t n = 64;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	while (n < cap)
		n <<= 1;
	a->v = calloc(n, sizeof(*a->v));
	if (!a->v) {
		free(a);
		return -ENOMEM;
	}
	a->mask = n - 1;
	*out = a;
	return 0;
}

void addrcount_free(struct addrcount *a)
{
	if (!a)
		return;
	free(a->v);
	free(a);
}

static size_t home(const struct addrcount *a, const char *ip)
{
	return (size_t)util_hash(ip, strlen(ip)) & a->mask;
}

/* The slot of ip, or of the free slot where it would go. */
static size_t find(const struct addrcount *a, const char *ip)
{
	size_t i = home(a, ip);

	while (a->v[i].ip[0] && strcmp(a->v[i].ip, ip))
		i = (i + 1) & a->mask;
	return i;
}

int addrcount_add(struct addrcount *a, const char *ip, int limit)
{
	size_t i = find(a, ip);

	if (a->v[i].ip[0])
		return a->v[i].n >= limit ? -EBUSY : (a->v[i].n++, 0);
	/* Keep a free slot so probes always end. */
	if (a->used + 1 > a->mask || limit < 1)
		return limit < 1 ? -EBUSY : -ENOSPC;
	snprintf(a->v[i].ip, sizeof(a->v[i].ip), "%s", ip);
	a->v[i].n = 1;
	a->used++;
	return 0;
}

void addrcount_remove(struct addrcount *a, const char *ip)
{
	size_t i = find(a, ip), j = i;

	if (!a->v[i].ip[0] || --a->v[i].n > 0)
		return;
	/* Empty slot i, then move back every entry after it that probing
	 * would no longer reach (Knuth's deletion for linear probing). */
	for (;;) {
		a->v[i].ip[0] = '\0';
		a->v[i].n = 0;
		for (;;) {
			size_t h;

			j = (j + 1) & a->mask;
			if (!a->v[j].ip[0]) {
				a->used--;
				return;
			}
			h = home(a, a->v[j].ip);
			/* Entry j may stay unless its home lies cyclically in
			 * (i, j]. */
			if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
				continue;
			a->v[i] = a->v[j];
			i = j;
			break;
		}
	}
}
