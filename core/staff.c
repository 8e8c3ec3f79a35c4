/* core/staff.c - what staff do: create and change campaigns, pause and
 * resume queues, retry and discard jobs, refund gifts, add and revoke staff
 * tokens, and read the audit trail, the job lists and the tokens. Every
 * action is checked here on the caller's thread, recorded with its audit
 * row by the writer in one transaction, and answered by staff_finish once
 * everything it changed is visible.
 */
#include "core/internal.h"
#include "core/jobs.h"
#include "core/shield.h"
#include "core/validate.h"
#include "base/util.h"
#include "db/db.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- campaigns ---- */

int engine_campaign_create(struct engine *e, const struct campaign_spec *spec, const char *actor,
                           engine_done_fn done, void *ud)
{
	struct pending *p;
	int exists;

	pthread_mutex_lock(&e->lock);
	exists = campaign_find_slug(e, spec->slug, strlen(spec->slug)) != NULL;
	pthread_mutex_unlock(&e->lock);
	if (exists)
		return TALLY_EEXISTS;
	if (!engine_day_currency_ok(e, spec->currency))
		return TALLY_ENOT_DAY_CURRENCY;
	p = pending_new(e, DB_OP_CAMPAIGN_CREATE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.u.campaign = *spec;
	pending_audit(p, "campaign.create", spec->slug, NULL);
	return engine_submit(e, p, 1);
}

/* The published id, status and schedule of campaign `slug`. */
static int lookup(struct engine *e, const char *slug, struct campaign_row *out)
{
	struct campaign *c;

	pthread_mutex_lock(&e->lock);
	c = campaign_find_slug(e, slug, strlen(slug));
	if (c)
		*out = c->pub;
	pthread_mutex_unlock(&e->lock);
	return c ? 0 : TALLY_ENOCAMPAIGN;
}

int engine_campaign_update(struct engine *e, const char *slug, const struct campaign_spec *spec,
                           const char *actor, engine_done_fn done, void *ud)
{
	struct campaign_row now;
	struct pending *p;
	int64_t starts, ends;
	int rc = lookup(e, slug, &now);

	if (rc)
		return rc;
	/* The schedule after the update must still make sense. */
	starts = spec->has_starts ? spec->starts_at : now.starts_at;
	ends = spec->has_ends ? spec->ends_at : now.ends_at;
	if (starts && ends && ends <= starts)
		return TALLY_ESCHEDULE;
	p = pending_new(e, DB_OP_CAMPAIGN_UPDATE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.campaign_id = now.id;
	p->op.u.campaign = *spec;
	pending_audit(p, "campaign.update", slug, NULL);
	return engine_submit(e, p, 1);
}

int engine_campaign_action(struct engine *e, const char *slug, const char *action,
                           const char *actor, engine_done_fn done, void *ud)
{
	static const struct {
		const char *action;
		enum campaign_status to;
	} actions[] = {
	    {"pause", CAMPAIGN_PAUSED},
	    {"resume", CAMPAIGN_ACTIVE},
	    {"close", CAMPAIGN_CLOSED},
	};
	struct campaign_row now;
	struct pending *p;
	char what[40];
	size_t i;
	int rc = lookup(e, slug, &now);

	if (rc)
		return rc;
	for (i = 0; i < UTIL_ARRAY_LEN(actions) && strcmp(actions[i].action, action); i++)
		;
	if (i == UTIL_ARRAY_LEN(actions))
		return TALLY_ESTATE;
	if (now.status == CAMPAIGN_CLOSED && actions[i].to != CAMPAIGN_CLOSED)
		return TALLY_ECLOSED;
	p = pending_new(e, DB_OP_CAMPAIGN_STATUS, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.campaign_id = now.id;
	p->op.u.status = actions[i].to;
	snprintf(what, sizeof(what), "campaign.%s", action);
	pending_audit(p, what, slug, NULL);
	return engine_submit(e, p, 1);
}

int engine_shield_action(struct engine *e, const char *action, const char *actor)
{
	int raise = !strcmp(action, "raise"), changed;
	struct pending *p;

	if (!e->cfg.shield || (!raise && strcmp(action, "lower")))
		return TALLY_ESTATE;
	changed = raise ? shield_raise(e->cfg.shield, util_now_ms())
	                : shield_lower(e->cfg.shield, util_now_ms());
	p = pending_new(e, DB_OP_SYNC, NULL, NULL, actor);
	if (!p)
		return TALLY_EIO;
	pending_audit(p, raise ? "shield.raise" : "shield.lower", "shield",
	              changed ? NULL : "no change");
	return engine_submit(e, p, 1) ? TALLY_EIO : changed;
}

int engine_campaign_create_sync(struct engine *e, const struct campaign_spec *spec,
                                const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_campaign_create(e, spec, actor, waiter_done, &w));
}

int engine_campaign_action_sync(struct engine *e, const char *slug, const char *action,
                                const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_campaign_action(e, slug, action, actor, waiter_done, &w));
}

/* ---- queues and jobs ---- */

int engine_queue_action(struct engine *e, const char *name, const char *action, const char *actor,
                        engine_done_fn done, void *ud)
{
	int q = job_queue_by_name(name), retry = !strcmp(action, "retry-dead");
	struct pending *p;
	char what[40];

	if (q < 0)
		return TALLY_ENOQUEUE;
	if (!retry && strcmp(action, "pause") && strcmp(action, "resume"))
		return TALLY_ESTATE;
	p = pending_new(e, retry ? DB_OP_QUEUE_RETRY_DEAD : DB_OP_QUEUE_PAUSE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.u.queue.queue = (enum job_queue)q;
	p->op.u.queue.paused = !strcmp(action, "pause");
	snprintf(what, sizeof(what), "queue.%s", action);
	pending_audit(p, what, job_queue_names[q], NULL);
	return engine_submit(e, p, 1);
}

int engine_job_action(struct engine *e, int64_t id, const char *action, const char *actor,
                      engine_done_fn done, void *ud)
{
	struct pending *p;
	char target[32], what[40];
	int rc;

	if (strcmp(action, "retry") && strcmp(action, "discard"))
		return TALLY_ESTATE;
	p = pending_new(e, DB_OP_JOB_UPDATE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	rc = jobs_hold(e->jobs, id, action, &p->op.u.job);
	if (rc) {
		pending_free(e, p);
		return rc == -ENOENT ? TALLY_ENOJOB : rc == -EBUSY ? TALLY_EJOBBUSY : TALLY_ESTATE;
	}
	snprintf(target, sizeof(target), "job %lld", (long long)id);
	snprintf(what, sizeof(what), "job.%s", action);
	pending_audit(p, what, target, p->op.u.job.error);
	rc = engine_submit(e, p, 1);
	if (rc) {
		/* Not queued (p is freed): give the job back. */
		struct db_job_update back = {.job_id = id};

		jobs_committed(e->jobs, &back, -ESHUTDOWN);
	}
	return rc;
}

int engine_queue_action_sync(struct engine *e, const char *name, const char *action,
                             const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_queue_action(e, name, action, actor, waiter_done, &w));
}

int engine_job_action_sync(struct engine *e, int64_t id, const char *action, const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_job_action(e, id, action, actor, waiter_done, &w));
}

int engine_refund_sync(struct engine *e, const char *id, const char *reason, const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_refund(e, id, reason, actor, waiter_done, &w));
}

void engine_queue_info(struct engine *e, enum job_queue q, struct job_queue_info *out)
{
	jobs_queue_info(e->jobs, q, out);
}

int engine_jobs_metrics(struct engine *e, struct buf *out)
{
	return jobs_metrics(e->jobs, out);
}

int engine_jobs_each(struct engine *e, enum job_queue q, enum job_state st, int limit,
                     int (*cb)(void *ud, const struct job_record *j), void *ud)
{
	int rc;

	if (st != JOB_DONE)
		return jobs_each(e->jobs, q, st, limit, cb, ud);
	pthread_mutex_lock(&e->reader_lock);
	rc = db_list_jobs(e->reader, q, st, limit, cb, ud);
	pthread_mutex_unlock(&e->reader_lock);
	return rc < 0 && !tally_is_own(rc) ? TALLY_EIO : rc;
}

int engine_job_histories(struct engine *e, const int64_t *ids, size_t n, struct job_history *out)
{
	enum { AT_ONCE = 32 };
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i].n = 0;
	for (size_t i = 0; i < n && !rc; i += AT_ONCE) {
		pthread_mutex_lock(&e->reader_lock);
		rc = e->reader ? db_job_histories(e->reader, ids + i,
		                                  n - i < AT_ONCE ? n - i : AT_ONCE, out + i)
		               : -EIO;
		pthread_mutex_unlock(&e->reader_lock);
	}
	return rc == -ENOMEM ? rc : rc ? TALLY_EIO : 0;
}

/* ---- refunds and the audit trail ---- */

int engine_refund(struct engine *e, const char *id, const char *reason, const char *actor,
                  engine_done_fn done, void *ud)
{
	struct db_donation_row row;
	struct pending *p;
	int64_t n;
	int rc;

	rc = intake_donation_row(e, id, &n, &row);
	if (rc)
		return rc;
	if (row.offline)
		return TALLY_EOFFLINE;
	if (strcmp(row.status, "succeeded"))
		return TALLY_ESTATE;
	p = pending_new(e, DB_OP_REFUND, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.u.refund.donation_id = n;
	snprintf(p->op.u.refund.reason, sizeof(p->op.u.refund.reason), "%s",
	         reason && reason[0] ? reason : "refunded by staff");
	p->op.u.refund.job.id = jobs_next_id(e->jobs);
	p->op.u.refund.job.kind = JOB_REFUND;
	p->op.u.refund.job.url = NULL;
	pending_audit(p, "donation.refund", id, p->op.u.refund.reason);
	return engine_submit(e, p, 1);
}

int engine_audit_each(struct engine *e, int limit, int (*cb)(void *ud, const struct audit_entry *a),
                      void *ud)
{
	int rc;

	pthread_mutex_lock(&e->reader_lock);
	rc = db_list_audit(e->reader, limit, cb, ud);
	pthread_mutex_unlock(&e->reader_lock);
	return rc < 0 && !tally_is_own(rc) ? TALLY_EIO : rc;
}

/* ---- staff tokens ---- */

int engine_staff_auth(struct engine *e, const char *bearer, size_t len, struct staff_identity *out)
{
	return tokens_auth(e->tokens, bearer, len, out);
}

int engine_token_add(struct engine *e, const char *name, enum staff_role role, const char *actor,
                     engine_done_fn done, void *ud)
{
	struct staff_token now;
	struct pending *p;
	char detail[32];
	int rc;

	if (!validate_token_name(name, strlen(name)) || role <= STAFF_PUBLIC || role >= STAFF_ROLES)
		return TALLY_EFIELDS;
	if (tokens_name_reserved(name) || !tokens_find(e->tokens, name, &now))
		return TALLY_ETOKEN_EXISTS;
	p = pending_new(e, DB_OP_TOKEN_ADD, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	rc = tokens_secret_new(p->secret, sizeof(p->secret));
	if (!rc)
		rc = tokens_hash_hex(p->secret, strlen(p->secret), p->op.u.token.hash);
	if (rc) {
		OPENSSL_cleanse(p->secret, sizeof(p->secret));
		pending_free(e, p);
		return TALLY_EIO;
	}
	snprintf(p->op.u.token.name, sizeof(p->op.u.token.name), "%s", name);
	p->op.u.token.role = role;
	snprintf(detail, sizeof(detail), "role %s", staff_role_names[role]);
	pending_audit(p, "token.create", name, detail);
	return engine_submit(e, p, 1);
}

int engine_token_revoke(struct engine *e, const char *name, const char *actor, engine_done_fn done,
                        void *ud)
{
	struct pending *p;

	if (!validate_token_name(name, strlen(name)))
		return TALLY_ENOTOKEN;
	if (tokens_name_reserved(name))
		return TALLY_ESTARTUP;
	/* Whether it exists is the database's to say: a token that another
	 * process added a moment ago may not be in memory yet. */
	p = pending_new(e, DB_OP_TOKEN_REVOKE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	snprintf(p->op.u.token.name, sizeof(p->op.u.token.name), "%s", name);
	pending_audit(p, "token.revoke", name, NULL);
	return engine_submit(e, p, 1);
}

long engine_tokens_list(struct engine *e, struct staff_token **out)
{
	return tokens_list(e->tokens, out);
}

/* ---- answers (writer thread) ---- */

void staff_finish(struct engine *e, struct pending *p, int rc)
{
	struct db_op *op = &p->op;
	struct engine_answer a = {0};
	struct job_queue_info qi;
	struct staff_token tok = {0};
	struct campaign *c;
	struct buf b = {0};

	if (op->kind == DB_OP_DAY && op->u.day.action == DB_DAY_TOUCH && rc)
		e->day_touch_pending = 0; /* not committed: the next tick retries */
	if (op->kind == DB_OP_CAMPAIGN_TOUCH && rc) {
		/* The schedule change did not commit: let the next tick retry. */
		c = campaign_find_id(e, op->campaign_id);
		if (c)
			c->touch_pending = 0;
	}
	if (!p->done) {
		OPENSSL_cleanse(p->secret, sizeof(p->secret));
		return;
	}
	a.rc = rc;
	if (!rc) {
		switch (op->kind) {
		case DB_OP_QUEUE_PAUSE:
		case DB_OP_QUEUE_RETRY_DEAD:
			jobs_queue_info(e->jobs, op->u.queue.queue, &qi);
			a.kind = ANSWER_QUEUE;
			a.job_queue = op->u.queue.queue;
			a.queue = &qi;
			a.retried = op->kind == DB_OP_QUEUE_RETRY_DEAD ? op->u.queue.changed : -1;
			break;
		case DB_OP_JOB_UPDATE:
			a.kind = ANSWER_JOB;
			a.job_id = op->u.job.job_id;
			a.job_queue = op->u.job.queue;
			a.job_state = op->u.job.state;
			break;
		case DB_OP_REFUND:
			a.kind = ANSWER_REFUND;
			a.donation_id = op->u.refund.donation_id;
			a.job_id = op->u.refund.job.id;
			break;
		case DB_OP_TOKEN_ADD:
		case DB_OP_TOKEN_REVOKE:
			snprintf(tok.name, sizeof(tok.name), "%s", op->u.token.name);
			tok.role = op->u.token.role;
			tok.created_at =
			    op->kind == DB_OP_TOKEN_ADD ? op->now_ms : op->u.token.created_at;
			tok.revoked_at = op->kind == DB_OP_TOKEN_ADD ? 0 : op->u.token.revoked_at;
			a.kind = ANSWER_TOKEN;
			a.token = &tok;
			a.secret = op->kind == DB_OP_TOKEN_ADD ? p->secret : NULL;
			break;
		case DB_OP_SYNC:
			break;
		case DB_OP_POOL_CREATE:
		case DB_OP_POOL_UPDATE:
		case DB_OP_CHALLENGE_CREATE:
			a.kind = ANSWER_PLAIN;
			if (op->kind == DB_OP_CHALLENGE_CREATE ? challenges_answer(e, op, &b)
			                                       : pools_answer(e, op, &b))
				a.rc = TALLY_EIO;
			a.body = b.p;
			a.len = b.len;
			break;
		case DB_OP_DAY: {
			uint64_t seq;

			if (engine_day_json(e, &b, &seq))
				a.rc = TALLY_EIO;
			a.body = b.p;
			a.len = b.len;
			break;
		}
		default:
			/* Campaign actions answer with the new public state. */
			c = campaign_find_id(e, op->campaign_id);
			pthread_mutex_lock(&e->lock);
			if (!c || !c->json || buf_append(&b, c->json, c->json_len))
				a.rc = TALLY_EIO;
			pthread_mutex_unlock(&e->lock);
			a.body = b.p;
			a.len = b.len;
		}
	}
	p->done(p->ud, &a);
	buf_fini(&b);
	OPENSSL_cleanse(p->secret, sizeof(p->secret));
}
