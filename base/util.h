/* base/util.h - small helpers shared by every module: time, UTF-8, text. */
#ifndef TALLY_BASE_UTIL_H
#define TALLY_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Wall-clock time in milliseconds since the Unix epoch. Any thread. */
int64_t util_now_ms(void);

/* Monotonic time in nanoseconds. Any thread. */
uint64_t util_mono_ns(void);

/* Return the number of code points in s[0..len) if it is valid UTF-8
 * (shortest form, no surrogates, <= U+10FFFF), else -1. */
long util_utf8_len(const char *s, size_t len);

/* The length of the longest prefix of s[0..len) of at most max bytes that
 * does not end inside a UTF-8 sequence (len when len <= max). Bytes that
 * are not UTF-8 are cut where they fall. */
size_t util_utf8_cut(const char *s, size_t len, size_t max);

/* Return 1 if s[0..len) holds a C0 control character, DEL or a C1 control
 * (U+0080..U+009F, encoded C2 80..C2 9F) (a newline is allowed when
 * allow_newline is set), else 0. */
int util_has_control(const char *s, size_t len, int allow_newline);

/* Return 1 if s[0..len) holds a bidirectional embedding, override or
 * isolate (U+202A..U+202E, U+2066..U+2069): characters that make text
 * display in another order than it reads (a name that shows as "Ada" next
 * to an amount it reverses), else 0. */
int util_has_bidi_control(const char *s, size_t len);

/* Format ms since the epoch as RFC 3339 UTC with millisecond precision
 * ("2026-11-28T12:00:00.000Z") into buf (>= 25 bytes). Returns buf. */
char *util_rfc3339(int64_t ms, char *buf, size_t cap);

/* Parse an RFC 3339 timestamp ("YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM)").
 * Returns 0 and stores ms since the epoch in *out, or -EINVAL. */
int util_parse_rfc3339(const char *s, int64_t *out);

/* Fill buf with n cryptographically random bytes. Returns 0 or -errno. */
int util_random(void *buf, size_t n);

/* Constant-time comparison: 1 when a[0..alen) equals b[0..blen), else 0.
 * Runs in time dependent only on blen. */
int util_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

/* 64-bit FNV-1a hash of s[0..len). Unkeyed: anyone can compute it, so
 * anyone can build inputs that collide. Fine for stored fingerprints and
 * for tables of names staff choose; a table keyed by what clients send
 * uses util_hash_keyed. */
uint64_t util_hash(const void *s, size_t len);

/* Continue an FNV-1a hash h (from util_hash) over s[0..len). */
uint64_t util_hash_add(uint64_t h, const void *s, size_t len);

/* A secret key for util_hash_keyed: 128 random bits, one per table. */
struct util_hash_key {
	uint64_t k0, k1;
};

/* Fill *key from util_random. Returns 0 or -errno. */
int util_hash_key_random(struct util_hash_key *key);

/* SipHash-2-4 of s[0..len) under key. Without the key an outsider cannot
 * predict which inputs collide, so clients cannot flood one bucket of a
 * table that hashes their keys with it. Any thread. */
uint64_t util_hash_keyed(const struct util_hash_key *key, const void *s, size_t len);

/* 1 if ip (text) is a loopback address: 127.0.0.0/8, ::1 or IPv4-mapped
 * 127.x. */
int util_is_loopback(const char *ip);

/* Copy url into out (cap bytes, NUL-ended, cut when longer) without its
 * userinfo: "smtp://user:password@host:25/x" gives "smtp://host:25/x", a
 * URL without "scheme://" is read as starting with its authority, one
 * without '@' in its authority is copied as it is. For logs, which must
 * never hold a password. Returns out. Any thread. */
char *util_url_redact(const char *url, char *out, size_t cap);

/* Name the calling thread (top -H, gdb, perf; at most 15 bytes are kept).
 * Never the main thread: its name is the process's. Returns 0 or -errno. */
int util_thread_name(const char *name);

/* Split cap rows fairly between n lists that have avail[i] rows each
 * (negative counts as 0): each gets an equal share and what one cannot use
 * goes to the others, so one long list never hides another (the dead jobs
 * of each queue in the console's feed). Writes take[i] <= avail[i] and
 * returns their sum, min(cap, sum of avail). Any thread. */
size_t util_fair_share(const int64_t *avail, size_t n, size_t cap, size_t *take);

#endif
