/* core/captcha.c - the CAPTCHA verifier (see captcha.h).
 *
 * DESIGN: one thread owns one curl multi handle. captcha_verify builds the
 * request's form on the caller's thread, appends the request to a FIFO
 * under c->lock and wakes the thread with curl_multi_wakeup (thread-safe);
 * the caller never waits for the network. The thread drains the whole
 * FIFO on each turn, gives every request an easy handle (core/transfer.c,
 * as the job handlers do) with the verification's whole time limit
 * (CURLOPT_TIMEOUT_MS), drives the transfers with curl_multi_perform and
 * curl_multi_poll, and answers each finished one through its callback,
 * outside the lock. The providers all answer the same way: 200 with JSON
 * {"success": true|false, "error-codes": [...]}. At the stop every queued
 * and running request is answered "unavailable" before the thread ends,
 * so a caller waiting on an answer always gets one.
 */
#include "core/captcha.h"
#include "core/transfer.h"
#include "base/err.h"
#include "base/log.h"
#include "base/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	const char *url;
} providers[] = {
    [CAPTCHA_NONE] = {"none", NULL},
    [CAPTCHA_TURNSTILE] = {"turnstile",
                           "https://challenges.cloudflare.com/turnstile/v0/siteverify"},
    [CAPTCHA_HCAPTCHA] = {"hcaptcha", "https://api.hcaptcha.com/siteverify"},
    [CAPTCHA_RECAPTCHA] = {"recaptcha", "https://www.google.com/recaptcha/api/siteverify"},
};

/* Error codes that blame the site's configuration, not the donor: the
 * donor cannot fix them, so they are "unavailable" (and logged). */
static const char *const config_errors[] = {
    "missing-input-secret",
    "invalid-input-secret",
    "sitekey-secret-mismatch",
    "invalid-or-already-seen-secret",
};

int captcha_provider_by_name(const char *name)
{
	for (size_t i = CAPTCHA_TURNSTILE; i < UTIL_ARRAY_LEN(providers); i++)
		if (!strcmp(name, providers[i].name))
			return (int)i;
	return -1;
}

const char *captcha_provider_name(enum captcha_provider p)
{
	return (size_t)p < UTIL_ARRAY_LEN(providers) ? providers[p].name : "none";
}

const char *captcha_default_url(enum captcha_provider p)
{
	return (size_t)p < UTIL_ARRAY_LEN(providers) ? providers[p].url : NULL;
}

void captcha_config_defaults(struct captcha_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->provider = CAPTCHA_NONE;
	cfg->timeout_ms = CAPTCHA_TIMEOUT_MS_DEFAULT;
	cfg->max_inflight = CAPTCHA_INFLIGHT_DEFAULT;
}

/* One verification: queued, then running (on the thread only). */
struct creq {
	struct creq *next, *prev; /* the FIFO, then the running list */
	CURL *easy;
	struct transfer t;
	struct buf form; /* secret=...&response=...[&remoteip=...] */
	captcha_done_fn done;
	void *ud;
};

struct captcha {
	char *secret, *url;
	int timeout_ms, max_inflight;
	CURLM *multi; /* the thread's; curl_multi_wakeup from any thread */
	pthread_t thread;
	int started;
	pthread_mutex_t lock; /* guards everything below; a leaf */
	struct creq *qhead, *qtail;
	int stop;
	int64_t inflight; /* queued + running */
	struct captcha_stats stats;
	/* The thread's own. */
	struct creq *running;
	uint64_t logged_ns;  /* when "captcha.unavailable" was last logged */
	uint64_t not_logged; /* failures since, not logged one by one */
};

static void req_free(struct creq *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	transfer_fini(&r->t);
	if (r->form.p)
		explicit_bzero(r->form.p, r->form.len); /* the secret and the token */
	buf_fini(&r->form);
	free(r);
}

/* Answer r and forget it (the thread, outside the lock). */
static void answer(struct captcha *c, struct creq *r, enum captcha_result res, const char *why)
{
	r->done(r->ud, res, why);
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	if (res == CAPTCHA_OK)
		c->stats.ok++;
	else if (res == CAPTCHA_REJECTED)
		c->stats.rejected++;
	else
		c->stats.unavailable++;
	pthread_mutex_unlock(&c->lock);
	req_free(r);
}

static void running_add(struct captcha *c, struct creq *r)
{
	r->prev = NULL;
	r->next = c->running;
	if (c->running)
		c->running->prev = r;
	c->running = r;
}

static void running_del(struct captcha *c, struct creq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->running = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

/* Give r an easy handle and add it to the multi: 0, or -1 (then r is not
 * running and the caller answers it). */
static int start(struct captcha *c, struct creq *r)
{
	CURLMcode mc;

	r->easy = transfer_easy(&r->t, c->url);
	if (!r->easy)
		return -1;
	if (transfer_header(&r->t, "Content-Type: application/x-www-form-urlencoded") ||
	    transfer_header(&r->t, "Accept: application/json") || transfer_header(&r->t, "Expect:"))
		return -1;
	if (curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->t.headers) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->form.p) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->form.len) ||
	    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms) ||
	    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms) ||
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "tally") ||
	    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r))
		return -1;
	mc = curl_multi_add_handle(c->multi, r->easy);
	if (mc != CURLM_OK) {
		log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_add_handle: %s",
		        curl_multi_strerror(mc));
		return -1;
	}
	running_add(c, r);
	return 0;
}

/* The provider's verdict from a 200 answer: OK, REJECTED with its
 * error-codes in why, or UNAVAILABLE (not its JSON, or a code that blames
 * the site's secret). */
static enum captcha_result verdict(const struct buf *resp, char *why, size_t cap)
{
	json_error_t jerr;
	json_t *root = json_loadb(resp->p ? resp->p : "", resp->len, 0, &jerr);
	json_t *ok = root ? json_object_get(root, "success") : NULL;
	json_t *codes = root ? json_object_get(root, "error-codes") : NULL;
	enum captcha_result res;
	size_t used = 0, i;
	json_t *v;

	if (!ok || !json_is_boolean(ok)) {
		snprintf(why, cap, "the verifier's answer is not its JSON");
		json_decref(root);
		return CAPTCHA_UNAVAILABLE;
	}
	if (json_is_true(ok)) {
		why[0] = '\0';
		json_decref(root);
		return CAPTCHA_OK;
	}
	res = CAPTCHA_REJECTED;
	why[0] = '\0';
	if (json_is_array(codes))
		json_array_foreach(codes, i, v)
		{
			const char *s = json_is_string(v) ? json_string_value(v) : "?";
			int n;

			for (size_t k = 0; k < UTIL_ARRAY_LEN(config_errors); k++)
				if (!strcmp(s, config_errors[k]))
					res = CAPTCHA_UNAVAILABLE;
			/* Codes are short ASCII words; anything else is cut. */
			n = snprintf(why + used, cap - used, "%s%.64s", used ? ", " : "", s);
			if (n < 0 || (size_t)n >= cap - used)
				break;
			used += (size_t)n;
		}
	if (!why[0])
		snprintf(why, cap, "no error code given");
	for (char *q = why; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			*q = '?';
	if (res == CAPTCHA_UNAVAILABLE)
		log_msg(LOG_ERROR, "captcha.secret_refused",
		        "the CAPTCHA verifier refused tally's secret (%s): every protected gift "
		        "is refused until it is fixed",
		        why);
	json_decref(root);
	return res;
}

/* Log a verifier that did not answer: at most one line a second (an
 * outage fails every protected gift), saying how many went unlogged. */
static void log_unavailable(struct captcha *c, const char *why)
{
	uint64_t now = util_mono_ns();

	if (c->logged_ns && now - c->logged_ns < 1000000000ull) {
		c->not_logged++;
		return;
	}
	if (c->not_logged)
		log_msg(LOG_WARN, "captcha.unavailable", "%s (and %llu more since the last line)",
		        why, (unsigned long long)c->not_logged);
	else
		log_msg(LOG_WARN, "captcha.unavailable", "%s", why);
	c->logged_ns = now;
	c->not_logged = 0;
}

static void finish(struct captcha *c, struct creq *r, CURLcode rc)
{
	char why[256];
	long code;
	enum captcha_result res;

	if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "the verifier did not answer: %s",
		         transfer_error(&r->t, rc));
		log_unavailable(c, why);
		answer(c, r, CAPTCHA_UNAVAILABLE, why);
		return;
	}
	code = transfer_code(r->easy);
	if (code != 200) {
		snprintf(why, sizeof(why), "the verifier answered HTTP %ld", code);
		log_unavailable(c, why);
		answer(c, r, CAPTCHA_UNAVAILABLE, why);
		return;
	}
	res = verdict(&r->t.resp, why, sizeof(why));
	answer(c, r, res, why);
}

static void reap(struct captcha *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct creq *r = NULL;
		CURLcode result;
		CURL *e = m->easy_handle;

		if (m->msg != CURLMSG_DONE)
			continue;
		result = m->data.result; /* m is invalid after the removal */
		if (curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r) != CURLE_OK || !r)
			r = NULL;
		if (curl_multi_remove_handle(c->multi, e) != CURLM_OK)
			log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_remove_handle failed");
		if (!r)
			continue;
		running_del(c, r);
		finish(c, r, result);
	}
}

static void *captcha_main(void *arg)
{
	struct captcha *c = arg;
	int stop = 0;

	if (util_thread_name("captcha"))
		log_msg(LOG_WARN, "captcha.thread_name", "cannot name the captcha thread");
	while (!stop) {
		struct creq *take;
		int running;

		pthread_mutex_lock(&c->lock);
		take = c->qhead;
		c->qhead = c->qtail = NULL;
		stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		while (take) {
			struct creq *r = take;

			take = r->next;
			r->next = NULL;
			if (stop)
				answer(c, r, CAPTCHA_UNAVAILABLE, "tally is shutting down");
			else if (start(c, r))
				answer(c, r, CAPTCHA_UNAVAILABLE, "cannot start the verification");
		}
		if (stop)
			break;
		if (curl_multi_perform(c->multi, &running) != CURLM_OK)
			log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_perform failed");
		reap(c);
		if (curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_poll failed");
	}
	while (c->running) {
		struct creq *r = c->running;

		running_del(c, r);
		if (curl_multi_remove_handle(c->multi, r->easy) != CURLM_OK)
			log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_remove_handle failed");
		answer(c, r, CAPTCHA_UNAVAILABLE, "tally is shutting down");
	}
	return NULL;
}

int captcha_new(const struct captcha_config *cfg, struct captcha **out, char *err, size_t errcap)
{
	struct captcha *c;
	const char *url = cfg->url ? cfg->url : captcha_default_url(cfg->provider);
	int rc;

	*out = NULL;
	if (cfg->provider == CAPTCHA_NONE || !url || !cfg->secret || !*cfg->secret ||
	    cfg->timeout_ms < 1 || cfg->max_inflight < 1) {
		snprintf(err, errcap, "captcha: a provider, a secret and limits are needed");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->secret = strdup(cfg->secret);
	c->url = strdup(url);
	c->timeout_ms = cfg->timeout_ms;
	c->max_inflight = cfg->max_inflight;
	if (!c->secret || !c->url)
		goto nomem;
	c->multi = curl_multi_init();
	if (!c->multi) {
		snprintf(err, errcap, "captcha: cannot set up curl");
		rc = -ENOMEM;
		goto fail;
	}
	rc = pthread_mutex_init(&c->lock, NULL);
	if (rc) {
		snprintf(err, errcap, "captcha: %s", strerror(rc));
		rc = -rc;
		curl_multi_cleanup(c->multi);
		c->multi = NULL;
		goto fail;
	}
	rc = pthread_create(&c->thread, NULL, captcha_main, c);
	if (rc) {
		snprintf(err, errcap, "captcha: cannot start its thread: %s", strerror(rc));
		pthread_mutex_destroy(&c->lock);
		curl_multi_cleanup(c->multi);
		c->multi = NULL;
		rc = -rc;
		goto fail;
	}
	c->started = 1;
	*out = c;
	return 0;
nomem:
	snprintf(err, errcap, "captcha: out of memory");
	rc = -ENOMEM;
fail:
	if (c) {
		if (c->secret)
			explicit_bzero(c->secret, strlen(c->secret));
		free(c->secret);
		free(c->url);
		free(c);
	}
	return rc;
}

void captcha_stop(struct captcha *c)
{
	CURLMcode mc;

	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	/* Safe after the thread ended too: the multi handle lives until
	 * captcha_free. */
	mc = curl_multi_wakeup(c->multi);
	if (mc != CURLM_OK)
		log_msg(LOG_WARN, "captcha.wake_failed", "%s", curl_multi_strerror(mc));
}

void captcha_free(struct captcha *c)
{
	CURLMcode mc;

	if (!c)
		return;
	captcha_stop(c);
	if (pthread_join(c->thread, NULL))
		log_msg(LOG_WARN, "captcha.join_failed", "the captcha thread did not join");
	mc = curl_multi_cleanup(c->multi);
	if (mc != CURLM_OK)
		log_msg(LOG_WARN, "captcha.curl_failed", "curl_multi_cleanup: %s",
		        curl_multi_strerror(mc));
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c->secret, strlen(c->secret));
	free(c->secret);
	free(c->url);
	free(c);
}

/* Append name=value, value percent-encoded (everything but RFC 3986's
 * unreserved characters). Returns 0 or -ENOMEM. */
static int form_add(struct buf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if ((b->len && buf_puts(b, "&")) || buf_puts(b, name) || buf_puts(b, "="))
		return -ENOMEM;
	for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
		char esc[3] = {'%', hex[*s >> 4], hex[*s & 15]};

		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' || *s == '~') {
			if (buf_append(b, s, 1))
				return -ENOMEM;
		} else if (buf_append(b, esc, 3)) {
			return -ENOMEM;
		}
	}
	return 0;
}

int captcha_verify(struct captcha *c, const char *token, const char *remoteip, captcha_done_fn done,
                   void *ud)
{
	size_t len = token ? strlen(token) : 0;
	struct creq *r;
	CURLMcode mc;
	int rc = 0;

	if (!len || len > CAPTCHA_TOKEN_MAX || !done)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->stop)
		rc = TALLY_ESHUTDOWN;
	else if (c->inflight >= c->max_inflight) {
		rc = TALLY_EOVERLOADED;
		c->stats.overloaded++;
	} else
		c->inflight++; /* the place is held while the form is built */
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r || form_add(&r->form, "secret", c->secret) ||
	    form_add(&r->form, "response", token) ||
	    (remoteip && *remoteip && form_add(&r->form, "remoteip", remoteip))) {
		req_free(r);
		pthread_mutex_lock(&c->lock);
		c->inflight--;
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	r->done = done;
	r->ud = ud;
	pthread_mutex_lock(&c->lock);
	if (c->stop) {
		/* Stopped meanwhile: the thread may already have drained its
		 * FIFO for the last time. */
		c->inflight--;
		pthread_mutex_unlock(&c->lock);
		req_free(r);
		return TALLY_ESHUTDOWN;
	}
	if (c->qtail)
		c->qtail->next = r;
	else
		c->qhead = r;
	c->qtail = r;
	pthread_mutex_unlock(&c->lock);
	mc = curl_multi_wakeup(c->multi);
	if (mc != CURLM_OK) /* the thread still looks at the FIFO within a second */
		log_msg(LOG_WARN, "captcha.wake_failed", "%s", curl_multi_strerror(mc));
	return 0;
}

void captcha_get_stats(struct captcha *c, struct captcha_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->inflight = c->inflight;
	pthread_mutex_unlock(&c->lock);
}

int captcha_metrics(struct captcha *c, struct buf *out)
{
	struct captcha_stats st;

	captcha_get_stats(c, &st);
	return buf_printf(out,
	                  "# HELP tally_captcha_verifications_total CAPTCHA tokens checked, by "
	                  "result.\n"
	                  "# TYPE tally_captcha_verifications_total counter\n"
	                  "tally_captcha_verifications_total{result=\"ok\"} %llu\n"
	                  "tally_captcha_verifications_total{result=\"rejected\"} %llu\n"
	                  "tally_captcha_verifications_total{result=\"unavailable\"} %llu\n"
	                  "tally_captcha_verifications_total{result=\"overloaded\"} %llu\n"
	                  "# HELP tally_captcha_inflight CAPTCHA checks queued or running.\n"
	                  "# TYPE tally_captcha_inflight gauge\n"
	                  "tally_captcha_inflight %lld\n",
	                  (unsigned long long)st.ok, (unsigned long long)st.rejected,
	                  (unsigned long long)st.unavailable, (unsigned long long)st.overloaded,
	                  (long long)st.inflight)
	           ? -ENOMEM
	           : 0;
}
