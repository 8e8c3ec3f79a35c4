/* ws/proxy.c - trusted proxies: CIDRs in 128-bit form (IPv4 as
 * ::ffff:a.b.c.d, its prefix + 96), matched by a linear scan (a handful of
 * entries), and the standard right-to-left walk of X-Forwarded-For: each
 * hop appends the address it got the request from, so only the entries
 * added by trusted hops can be believed, and the right-most one that no
 * trusted hop is the client. Whatever a client writes to the left of that
 * is never read.
 */
#include "ws/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cidr {
	uint8_t net[16];
	int bits; /* 0-128 */
};

struct proxies {
	struct cidr v[PROXY_MAX];
	int n;
};

int proxies_new(struct proxies **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void proxies_free(struct proxies *p)
{
	free(p);
}

int proxies_count(const struct proxies *p)
{
	return p ? p->n : 0;
}

/* Parse an address (no spaces, no port) into 16 bytes. Returns 0 and
 * *v4 = 1 for IPv4 (stored mapped), or -1. */
static int parse_ip(const char *s, uint8_t out[16], int *v4)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		memcpy(out, mapped, 12);
		memcpy(out + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		*v4 = 0;
		return 0;
	}
	return -1;
}

static int in_cidr(const struct cidr *c, const uint8_t ip[16])
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->net, ip, (size_t)full))
		return 0;
	return !rest || !((c->net[full] ^ ip[full]) & (uint8_t)(0xff00 >> rest));
}

int proxies_add(struct proxies *p, const char *cidr, char *err, size_t errcap)
{
	char addr[PROXY_IP_SIZE];
	const char *slash = strchr(cidr, '/');
	size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	struct cidr c;
	int v4, max;

	if (p->n == PROXY_MAX) {
		snprintf(err, errcap, "at most %d --trusted-proxy", PROXY_MAX);
		return -ENOSPC;
	}
	if (!alen || alen >= sizeof(addr))
		goto bad;
	memcpy(addr, cidr, alen);
	addr[alen] = '\0';
	if (parse_ip(addr, c.net, &v4))
		goto bad;
	max = v4 ? 32 : 128;
	c.bits = max;
	if (slash) {
		const char *d = slash + 1;
		int bits = 0;

		if (!*d || strlen(d) > 3)
			goto bad;
		for (; *d; d++) {
			if (*d < '0' || *d > '9')
				goto bad;
			bits = bits * 10 + (*d - '0');
		}
		if (bits > max) {
			snprintf(err, errcap, "--trusted-proxy %s: an IPv%d prefix is 0 to %d bits",
			         cidr, v4 ? 4 : 6, max);
			return -EINVAL;
		}
		c.bits = bits;
	}
	if (v4)
		c.bits += 96;
	for (int i = c.bits; i < 128; i++)
		if (c.net[i / 8] & (0x80 >> (i % 8))) {
			snprintf(err, errcap,
			         "--trusted-proxy %s: the address has bits set past the prefix "
			         "(the network is written with them zero)",
			         cidr);
			return -EINVAL;
		}
	p->v[p->n++] = c;
	return 0;
bad:
	snprintf(err, errcap,
	         "--trusted-proxy wants an address or CIDR (127.0.0.1/32, 10.0.0.0/8, ::1/128), "
	         "got '%s'",
	         cidr);
	return -EINVAL;
}

static int trusted_bin(const struct proxies *p, const uint8_t ip[16])
{
	for (int i = 0; p && i < p->n; i++)
		if (in_cidr(&p->v[i], ip))
			return 1;
	return 0;
}

int proxies_trusted(const struct proxies *p, const char *ip)
{
	uint8_t b[16];
	int v4;

	if (!p || !p->n || parse_ip(ip, b, &v4))
		return 0;
	return trusted_bin(p, b);
}

/* The address b (parse_ip) as text in its usual form, so that one client
 * spelt two ways ("2001:DB8::1", "2001:db8:0::1") is one client. */
static void format_ip(const uint8_t b[16], int v4, char *out, size_t cap)
{
	char t[INET6_ADDRSTRLEN];

	if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)(b + 12) : (const void *)b, t,
	               sizeof(t)))
		t[0] = '\0';
	snprintf(out, cap, "%s", t);
}

void proxies_client(const struct proxies *p, const char *peer, const char *xff, char *out,
                    size_t cap)
{
	size_t end, len;
	uint8_t first[16];
	int first_v4 = 0, have_first = 0;

	snprintf(out, cap, "%s", peer);
	if (!xff || !proxies_trusted(p, peer) || (len = strlen(xff)) > PROXY_XFF_MAX)
		return;
	/* Elements from the right: xff[start, end) each time. */
	for (end = len;;) {
		char el[PROXY_IP_SIZE];
		uint8_t b[16];
		size_t start = end, a, z;
		int v4;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		a = start;
		z = end;
		while (a < z && (xff[a] == ' ' || xff[a] == '\t'))
			a++;
		while (z > a && (xff[z - 1] == ' ' || xff[z - 1] == '\t'))
			z--;
		if (a == z || z - a >= sizeof(el))
			return; /* empty or too long: not an address */
		memcpy(el, xff + a, z - a);
		el[z - a] = '\0';
		if (parse_ip(el, b, &v4))
			return;
		if (!trusted_bin(p, b)) {
			format_ip(b, v4, out, cap);
			return;
		}
		memcpy(first, b, sizeof(b));
		first_v4 = v4;
		have_first = 1;
		if (start == 0)
			break;
		end = start - 1; /* before its comma */
	}
	if (have_first) /* every hop trusted: the left-most is the client */
		format_ip(first, first_v4, out, cap);
}
