/* tally_console.c - the in-process console's source (`tally` without
 * --headless): the console feed (ws/console_feed.c) read through a mirror
 * (tui/console_mirror.c), the same way a remote console reads it over its
 * websocket, so both show the same numbers; its actions call the engine
 * directly. The console's thread is the only one that uses it.
 */
#include "tally_console.h"
#include "core/engine.h"
#include "base/buf.h"
#include "tui/console.h"
#include "tui/console_mirror.h"
#include "ws/console_feed.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct local_source {
	struct engine *engine;
	struct console_feed *feed;
	struct console_mirror *mirror;
	struct buf msg;
	int said_hello;
	char server_name[96];
};

static int local_next(struct local_source *ls, char *err, size_t errcap)
{
	int rc;

	ls->msg.len = 0;
	rc = console_feed_next(ls->feed, &ls->msg);
	return rc ? rc : console_mirror_apply(ls->mirror, ls->msg.p, ls->msg.len, err, errcap);
}

static int local_fetch(void *ctx, struct console_model *m)
{
	struct local_source *ls = ctx;
	char err[160];
	int rc = 0;

	if (!ls->said_hello) {
		rc = local_next(ls, err, sizeof(err));
		ls->said_hello = !rc;
	}
	if (!rc)
		rc = local_next(ls, err, sizeof(err));
	if (!rc)
		rc = console_mirror_copy(ls->mirror, m);
	if (rc)
		return rc;
	snprintf(m->server, sizeof(m->server), "%s", ls->server_name);
	m->connected = 1;
	m->error[0] = '\0';
	return 0;
}

static int local_set_paused(void *ctx, const char *slug, int pause)
{
	struct local_source *ls = ctx;
	int rc =
	    engine_campaign_action_sync(ls->engine, slug, pause ? "pause" : "resume", "console");

	switch (rc) {
	case TALLY_OK:
		return 0;
	case TALLY_ECLOSED:
		return -EPERM; /* closed campaigns stay closed */
	case TALLY_ENOCAMPAIGN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

/* The queue and job actions return tally's codes as they are; local_errtext
 * explains them. */
static int local_queue_action(struct local_source *ls, const char *queue, const char *action)
{
	int rc = engine_queue_action_sync(ls->engine, queue, action, "console");

	return rc;
}

static int local_queue_set_paused(void *ctx, const char *queue, int pause)
{
	return local_queue_action(ctx, queue, pause ? "pause" : "resume");
}

static int local_queue_retry_dead(void *ctx, const char *queue)
{
	return local_queue_action(ctx, queue, "retry-dead");
}

static int local_job_action(void *ctx, int64_t id, const char *action)
{
	struct local_source *ls = ctx;
	int rc = engine_job_action_sync(ls->engine, id, action, "console");

	return rc;
}

static int local_job_retry(void *ctx, int64_t id)
{
	return local_job_action(ctx, id, "retry");
}

static int local_job_discard(void *ctx, int64_t id)
{
	return local_job_action(ctx, id, "discard");
}

static int local_close(void *ctx, const char *slug)
{
	struct local_source *ls = ctx;

	return engine_campaign_action_sync(ls->engine, slug, "close", "console");
}

static int local_refund(void *ctx, int64_t donation_id, const char *reason)
{
	struct local_source *ls = ctx;
	char id[32];

	snprintf(id, sizeof(id), "dn_%lld", (long long)donation_id);
	return engine_refund_sync(ls->engine, id, reason, "console");
}

static int local_offline_gift(void *ctx, const char *slug, int64_t amount_cents, const char *method,
                              const char *name, const char *note, char *id, size_t idcap)
{
	struct local_source *ls = ctx;
	struct offline_req req;

	memset(&req, 0, sizeof(req));
	if (gift_method_by_name(method) < 0 || strlen(name) >= sizeof(req.d.name) ||
	    strlen(note) >= sizeof(req.note))
		return TALLY_EFIELDS;
	req.d.amount_cents = amount_cents;
	req.method = (enum gift_method)gift_method_by_name(method);
	snprintf(req.d.name, sizeof(req.d.name), "%s", name);
	snprintf(req.note, sizeof(req.note), "%s", note);
	return engine_offline_gift_sync(ls->engine, slug, &req, "console", id, idcap);
}

static int local_campaign_json(void *ctx, const char *slug, char **out)
{
	struct local_source *ls = ctx;
	struct buf b = {0};
	uint64_t seq;
	int rc = engine_campaign_json(ls->engine, slug, strlen(slug), &b, &seq);

	if (!rc)
		rc = buf_append(&b, "", 1) ? -ENOMEM : 0;
	if (rc) {
		buf_fini(&b);
		return rc;
	}
	*out = b.p; /* the buffer's bytes, NUL-terminated: the caller frees them */
	return 0;
}

/* Raise or lower the shield, audited under "console" as the API audits
 * its routes; the next state carries the shield whatever its cadence. */
static int local_shield_set(void *ctx, int raise)
{
	struct local_source *ls = ctx;
	int rc = engine_shield_action(ls->engine, raise ? "raise" : "lower", "console");

	console_feed_shield_now(ls->feed);
	return rc < 0 ? rc : 0;
}

/* tally's own codes get their text; errnos are the console's to word. */
static const char *local_errtext(void *ctx, int rc)
{
	(void)ctx;
	return tally_is_own(rc) ? tally_strerror(rc) : NULL;
}

int tally_console_new(struct engine *e, struct server *s, const char *server_name,
                      struct local_source **out)
{
	struct local_source *ls = calloc(1, sizeof(*ls));
	int rc;

	if (!ls)
		return -ENOMEM;
	ls->engine = e;
	snprintf(ls->server_name, sizeof(ls->server_name), "%s", server_name);
	rc = console_feed_new(s, "console", "admin", LONG_MAX, &ls->feed);
	if (!rc)
		rc = console_mirror_new(&ls->mirror);
	if (rc) {
		tally_console_free(ls);
		return rc;
	}
	*out = ls;
	return 0;
}

void tally_console_source(struct local_source *ls, struct console_source *src)
{
	*src = (struct console_source){
	    .fetch = local_fetch,
	    .set_paused = local_set_paused,
	    .ctx = ls,
	    .queue_set_paused = local_queue_set_paused,
	    .queue_retry_dead = local_queue_retry_dead,
	    .job_retry = local_job_retry,
	    .job_discard = local_job_discard,
	    .errtext = local_errtext,
	    .close_campaign = local_close,
	    .refund = local_refund,
	    .offline_gift = local_offline_gift,
	    .campaign_json = local_campaign_json,
	    .shield_set = local_shield_set,
	};
}

void tally_console_free(struct local_source *ls)
{
	if (!ls)
		return;
	console_feed_free(ls->feed);
	console_mirror_free(ls->mirror);
	buf_fini(&ls->msg);
	free(ls);
}
