/* core/captcha.h - the server-side CAPTCHA check of a donor's token:
 * Cloudflare Turnstile, hCaptcha or Google reCAPTCHA (v2 / invisible),
 * asked through their siteverify endpoints on a thread of its own.
 *
 * THREADS: captcha_verify may be called from any thread (the API loop) and
 * never blocks on the network: it queues the token and returns. The
 * verifier's own thread ("captcha") runs every request on one curl multi
 * handle and calls each request's done callback there. One lock (c->lock,
 * a leaf) guards the queue, the in-flight count and the counters.
 */
#ifndef TALLY_CORE_CAPTCHA_H
#define TALLY_CORE_CAPTCHA_H

#include "base/buf.h"
#include "base/model.h"

#include <stddef.h>
#include <stdint.h>

/* A donor's token: at most this many bytes of printable ASCII. */
#define CAPTCHA_TOKEN_MAX TALLY_CAPTCHA_TOKEN_MAX

enum captcha_provider {
	CAPTCHA_NONE, /* no CAPTCHA configured */
	CAPTCHA_TURNSTILE,
	CAPTCHA_HCAPTCHA,
	CAPTCHA_RECAPTCHA,
};

/* The provider named name ("turnstile", "hcaptcha", "recaptcha"), or -1. */
int captcha_provider_by_name(const char *name);

/* The name of p ("none" for CAPTCHA_NONE). */
const char *captcha_provider_name(enum captcha_provider p);

/* p's siteverify URL (NULL for CAPTCHA_NONE). */
const char *captcha_default_url(enum captcha_provider p);

#define CAPTCHA_TIMEOUT_MS_DEFAULT 2000
#define CAPTCHA_TIMEOUT_MS_MAX 30000
#define CAPTCHA_INFLIGHT_DEFAULT 256

struct captcha_config {
	enum captcha_provider provider;
	const char *secret; /* the site's secret key (copied) */
	const char *url;    /* NULL: the provider's siteverify URL (copied) */
	int timeout_ms;     /* each verification's whole time limit */
	int max_inflight;   /* queued and running at most; past it: overloaded */
};

/* Fill cfg with defaults (no provider, 2000 ms, 256 in flight). */
void captcha_config_defaults(struct captcha_config *cfg);

struct captcha;

/* A verifier with cfg (copied) and its thread started. curl_global_init
 * must have run. Returns 0, or a negative errno with a reason in err. */
int captcha_new(const struct captcha_config *cfg, struct captcha **out, char *err, size_t errcap);

/* Stop taking verifications: every one still queued or in flight is
 * answered CAPTCHA_UNAVAILABLE ("tally is shutting down") soon after, on
 * the captcha thread, which then ends; captcha_verify answers
 * TALLY_ESHUTDOWN from now on. Any thread (the API loop when its drain
 * begins, so no gift waits on the network then); again: a no-op. */
void captcha_stop(struct captcha *c);

/* captcha_stop, wait for the thread (every answer given) and free c.
 * NULL is a no-op. Not from a done callback. */
void captcha_free(struct captcha *c);

enum captcha_result {
	CAPTCHA_OK,          /* the provider accepted the token */
	CAPTCHA_REJECTED,    /* the provider refused it (why: its error-codes) */
	CAPTCHA_UNAVAILABLE, /* no answer: unreachable, timed out, a bad answer,
	                      * a refused secret, or shutting down */
};

/* A verification's answer, on the captcha thread: why is a short reason
 * ("" for CAPTCHA_OK), valid during the call only. Keep it short: copy
 * what you need and hand it to your own thread. */
typedef void (*captcha_done_fn)(void *ud, enum captcha_result result, const char *why);

/* Verify token (1 to CAPTCHA_TOKEN_MAX bytes, copied; never logged) for
 * the client at remoteip ("" or NULL: not sent). Returns 0, and then done
 * is called exactly once, later, on the captcha thread; or
 * TALLY_EOVERLOADED (max_inflight reached), TALLY_ESHUTDOWN (stopping),
 * -EINVAL (a bad token) or -ENOMEM, and then done is never called. Any
 * thread; never blocks on the network. */
int captcha_verify(struct captcha *c, const char *token, const char *remoteip, captcha_done_fn done,
                   void *ud);

struct captcha_stats {
	uint64_t ok, rejected, unavailable, overloaded;
	int64_t inflight;
};

void captcha_get_stats(struct captcha *c, struct captcha_stats *out);

/* Append the Prometheus families tally_captcha_*. Returns 0 or -ENOMEM. */
int captcha_metrics(struct captcha *c, struct buf *out);

#endif
