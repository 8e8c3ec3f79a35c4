/* base/util.c - time, UTF-8 checks, RFC 3339, randomness, hashing (FNV-1a
 * unkeyed, SipHash-2-4 keyed). */
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t util_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t n = max;

	if (len <= max)
		return len;
	/* b[n] is the first byte left out: while it continues a sequence,
	 * leave out the bytes before it too, back to the sequence's lead
	 * (at most three: a longer run is not UTF-8). */
	while (n > 0 && max - n < 3 && (b[n] & 0xc0) == 0x80)
		n--;
	return (b[n] & 0xc0) == 0x80 ? max : n;
}

long util_utf8_len(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	long n = 0;

	while (i < len) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t need;

		if (c < 0x80) {
			i++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (len - i - 1 < need)
			return -1;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += need + 1;
		n++;
	}
	return n;
}

int util_has_control(const char *s, size_t len, int allow_newline)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n' && allow_newline)
			continue;
		if (c < 0x20 || c == 0x7f)
			return 1;
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return 1;
	}
	return 0;
}

int util_has_bidi_control(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	/* U+202A..U+202E are E2 80 AA..AE; U+2066..U+2069 are E2 81 A6..A9. */
	for (size_t i = 0; i + 2 < len; i++)
		if (p[i] == 0xe2 && ((p[i + 1] == 0x80 && p[i + 2] >= 0xaa && p[i + 2] <= 0xae) ||
		                     (p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)))
			return 1;
	return 0;
}

char *util_rfc3339(int64_t ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	if (!gmtime_r(&secs, &tm))
		memset(&tm, 0, sizeof(tm)); /* out of range: print the epoch's fields */
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return buf;
}

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c && !(c == 'T' && **p == 't'))
		return -EINVAL;
	(*p)++;
	return 0;
}

int util_parse_rfc3339(const char *s, int64_t *out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, ms = 0, off = 0;
	const char *p = s;
	struct tm tm = {0};

	if (parse_digits(&p, 4, &y) || expect(&p, '-') || parse_digits(&p, 2, &mo) ||
	    expect(&p, '-') || parse_digits(&p, 2, &d) || expect(&p, 'T') ||
	    parse_digits(&p, 2, &h) || expect(&p, ':') || parse_digits(&p, 2, &mi) ||
	    expect(&p, ':') || parse_digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		int digits = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
			digits++;
			p++;
		}
		if (!digits || digits > 9)
			return -EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;

		p++;
		if (parse_digits(&p, 2, &oh) || expect(&p, ':') || parse_digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 60 + om);
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	{
		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		int max = mdays[mo - 1] + (mo == 2 && leap);

		if (d > max)
			return -EINVAL;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + ms;
	return 0;
}

int util_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int util_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < blen; i++) {
		unsigned char ca = i < alen ? (unsigned char)a[i] : 0;

		diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
	}
	return diff == 0 && alen == blen;
}

uint64_t util_hash_add(uint64_t h, const void *s, size_t len)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

uint64_t util_hash(const void *s, size_t len)
{
	return util_hash_add(14695981039346656037ull, s, len);
}

int util_hash_key_random(struct util_hash_key *key)
{
	return util_random(key, sizeof(*key));
}

static uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

/* One SipRound over the state v[0..3]. */
static void sip_round(uint64_t *v)
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13) ^ v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17) ^ v[2];
	v[2] = rotl64(v[2], 32);
}

/* Little-endian 64-bit word from n <= 8 bytes of p. */
static uint64_t le64(const unsigned char *p, size_t n)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++)
		m |= (uint64_t)p[i] << (8 * i);
	return m;
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012): two rounds per 8-byte word,
 * the last word carrying the length's low byte on top, four rounds to
 * finish. */
uint64_t util_hash_keyed(const struct util_hash_key *key, const void *s, size_t len)
{
	const unsigned char *p = s;
	uint64_t v[4] = {key->k0 ^ 0x736f6d6570736575ull, key->k1 ^ 0x646f72616e646f6dull,
	                 key->k0 ^ 0x6c7967656e657261ull, key->k1 ^ 0x7465646279746573ull};
	uint64_t m;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		m = le64(p + i, 8);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	m = le64(p + i, len - i) | (uint64_t)len << 56;
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int util_is_loopback(const char *ip)
{
	return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1") || !strncmp(ip, "::ffff:127.", 11);
}

char *util_url_redact(const char *url, char *out, size_t cap)
{
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : url;
	size_t auth_len = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', auth_len);

	if (!at)
		snprintf(out, cap, "%s", url);
	else
		snprintf(out, cap, "%.*s%s", (int)(auth - url), url, at + 1);
	return out;
}

int util_thread_name(const char *name)
{
	char n[16];

	snprintf(n, sizeof n, "%s", name);
	return -pthread_setname_np(pthread_self(), n);
}

size_t util_fair_share(const int64_t *avail, size_t n, size_t cap, size_t *take)
{
	size_t left = cap;

	for (size_t i = 0; i < n; i++)
		take[i] = 0;
	/* Rounds of equal shares; a queue that needs less than its share
	 * leaves the rest for the next round. Each round gives at least one
	 * row to every queue still wanting, so it ends. */
	while (left > 0) {
		size_t wanting = 0, share;

		for (size_t i = 0; i < n; i++)
			if (avail[i] > 0 && (uint64_t)avail[i] > take[i])
				wanting++;
		if (wanting == 0)
			break;
		share = left / wanting ? left / wanting : 1;
		for (size_t i = 0; i < n && left > 0; i++) {
			if (!(avail[i] > 0 && (uint64_t)avail[i] > take[i]))
				continue;
			uint64_t more = (uint64_t)avail[i] - take[i];
			size_t give = more < share ? (size_t)more : share;
			take[i] += give;
			left -= give;
		}
	}
	return cap - left;
}
