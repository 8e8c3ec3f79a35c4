/* core/intake.c - donations: admission, idempotency keys, their answers.
 *
 * DESIGN: a donation is admitted on the caller's thread (its key is new or
 * its answer is known, the campaign exists, is open, takes this currency
 * and has room for the amount under TALLY_TOTAL_MAX counting the gifts
 * still in flight, the writer has room), gets its id and its 202 body, and
 * goes to the writer. So no sum of a campaign's money can overflow. Idempotency lives here alone:
 * the recent keys in memory (idem.c) answer double clicks and quick retries; SQLite, which stores a
 * key on the donation it created, answers the rest, both before admission
 * (a retry of a gift whose campaign has closed since) and in the writer
 * (a key that left memory: the op comes back as a replay).
 * Each gift gets a status token at admission, 128 random bits stored with
 * it: its 202 (and every replay of that 202) shows the token, and the
 * public status read wants it, so sequential ids cannot be walked.
 */
#include "core/internal.h"
#include "core/day.h"
#include "core/jobs.h"
#include "core/shield.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_LIFETIME_MS (24 * 3600 * 1000LL)

const struct donation_limits *engine_limits(struct engine *e)
{
	return &e->cfg.limits;
}

/* Fingerprint of a donation request: equal for the same gift to the same
 * campaign, whatever the JSON's spacing or key order. FNV-1a over the
 * fields, each followed by a separator byte that no field contains. */
static uint64_t fingerprint(const char *slug, const struct donation_req *r)
{
	const char *const strs[] = {slug,     r->currency, r->name,
	                            r->email, r->message,  r->payment_token};
	int64_t nums[] = {r->amount_cents, r->anonymous, r->hide_amount, r->cover_fee};
	uint64_t h = util_hash("", 0);

	for (size_t i = 0; i < UTIL_ARRAY_LEN(strs); i++)
		h = util_hash_add(util_hash_add(h, strs[i], strlen(strs[i])), "\x1f", 1);
	return util_hash_add(h, nums, sizeof(nums));
}

/* An offline gift's: the donation's fields, then what only offline gifts
 * have, behind a marker no online gift's fingerprint has (the same key on
 * both routes is a reuse). The currency is the one given ("" when none). */
static uint64_t fingerprint_offline(const char *slug, const struct offline_req *o)
{
	int64_t nums[] = {o->method, o->received_at, o->receipt};
	uint64_t h = util_hash_add(fingerprint(slug, &o->d), "offline\x1f", 8);

	h = util_hash_add(util_hash_add(h, o->note, strlen(o->note)), "\x1f", 1);
	return util_hash_add(h, nums, sizeof(nums));
}

/* The first answer of a gift, rendered from what its row stores: a 202
 * for an online gift, a 201 for an offline one. */
static size_t render_answer(char *dst, size_t cap, const struct db_donation_row *row,
                            const char *slug)
{
	if (row->offline)
		return publish_render_offline(dst, cap, row->id, slug, row->amount_cents,
		                              row->matched_cents, row->currency, row->method,
		                              row->received_at, row->created_at);
	return publish_render_receipt(dst, cap, row->id, slug, row->amount_cents,
	                              row->matched_cents, row->fee_cents, row->currency,
	                              row->created_at, row->status_token);
}

/* The answer SQLite holds for an idempotency key: 0 with *replayed and the
 * first 202 appended to replay, TALLY_EIDEM_REUSED, or `otherwise` when
 * the key is unknown or expired. Reads on the caller's thread. */
static int stored_answer(struct engine *e, const char *key, uint64_t fp, int64_t now,
                         struct buf *replay, int *replayed, int otherwise)
{
	struct db_donation_row row;
	const char *slug = "";
	char body[384];
	int64_t hash;
	size_t len;
	int rc;

	pthread_mutex_lock(&e->reader_lock);
	rc = db_donation_by_key(e->reader, key, &row, &hash);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc || row.created_at < now - IDEM_LIFETIME_MS)
		return otherwise;
	if ((uint64_t)hash != fp)
		return TALLY_EIDEM_REUSED;
	pthread_mutex_lock(&e->lock);
	{
		struct campaign *c = campaign_find_id(e, row.campaign_id);

		if (c)
			slug = c->pub.slug;
		len = render_answer(body, sizeof(body), &row, slug);
	}
	pthread_mutex_unlock(&e->lock);
	if (!replay || buf_append(replay, body, len))
		return otherwise;
	*replayed = 1;
	return 0;
}

/* A new status token: 128 bits from the OS, as lower-case hex. Returns 0
 * or -errno. */
static int new_status_token(char out[TALLY_STATUS_TOKEN_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[TALLY_STATUS_TOKEN_LEN / 2];
	int rc = util_random(raw, sizeof(raw));

	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[TALLY_STATUS_TOKEN_LEN] = '\0';
	return 0;
}

/* 1 if c can take amount more without passing TALLY_TOTAL_MAX (raised,
 * pending and in flight together). e->lock held. */
static int has_room(struct campaign *c, int64_t amount)
{
	int64_t sum;

	return !__builtin_add_overflow((int64_t)atomic_load(&c->claimed_cents), amount, &sum) &&
	       sum <= TALLY_TOTAL_MAX;
}

/* Is the campaign open to this gift, and has it room for it? Returns 0
 * with its id and *admitted (the gift now counts in its claimed_cents), or
 * why not. */
static int admit(struct engine *e, const char *slug, struct donation_req *req, int offline,
                 int64_t now, int64_t *campaign_id, struct campaign **admitted)
{
	struct campaign *c;
	int rc = TALLY_ENOCAMPAIGN;

	pthread_mutex_lock(&e->lock);
	c = campaign_find_slug(e, slug, strlen(slug));
	if (c) {
		/* Staff record the cheques that came in whether the campaign
		 * is paused or outside its schedule or the giving day's; only
		 * closing it (the books are closed) refuses them. */
		enum campaign_status st = !offline ? campaign_effective(&c->pub, NULL, now)
		                          : c->pub.status == CAMPAIGN_CLOSED ? CAMPAIGN_CLOSED
		                                                             : CAMPAIGN_ACTIVE;
		enum day_phase phase = offline ? DAY_NONE : day_phase(&e->day, now);

		if (offline && !req->currency[0])
			memcpy(req->currency, c->pub.currency, sizeof(req->currency));
		*campaign_id = c->pub.id;
		rc = st == CAMPAIGN_PAUSED                    ? TALLY_EPAUSED
		     : st == CAMPAIGN_CLOSED                  ? TALLY_ECLOSED
		     : phase == DAY_BEFORE                    ? TALLY_EDAY_BEFORE
		     : phase == DAY_CLOSED                    ? TALLY_EDAY_CLOSED
		     : strcmp(c->pub.currency, req->currency) ? TALLY_ECURRENCY
		     : !has_room(c, req->amount_cents)        ? TALLY_ETOTAL
		                                              : 0;
		if (!rc) {
			atomic_fetch_add(&c->claimed_cents, req->amount_cents);
			*admitted = c;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* An admitted gift that is not stored after all leaves the count. */
static void give_back(struct campaign *c, int64_t amount)
{
	atomic_fetch_sub(&c->claimed_cents, amount);
}

/* Admit and queue a gift: an online one (offline NULL) or an offline one
 * (kind DB_OP_OFFLINE, audited under actor). See engine_donate. */
static int submit_gift(struct engine *e, const char *slug, struct donation_req *req,
                       const struct offline_req *offline, const struct gift_client *client,
                       uint64_t fp, const char *idem_key, const char *actor, struct buf *replay,
                       int *replayed, engine_done_fn done, void *ud)
{
	struct pending *p;
	struct campaign *c = NULL;
	int64_t now = util_now_ms(), campaign_id = 0, id;
	char token[TALLY_STATUS_TOKEN_SIZE];
	int rc;

	*replayed = 0;
	if (idem_key[0]) {
		enum idem_result found;

		rc = idem_begin(e->idem, idem_key, fp, now, replay, &found);
		if (rc == -EAGAIN) /* the key's bucket is full of gifts in flight */
			return TALLY_EOVERLOADED;
		if (rc)
			return TALLY_EIO;
		switch (found) {
		case IDEM_REPLAY:
			*replayed = 1;
			return 0;
		case IDEM_REUSED:
			return TALLY_EIDEM_REUSED;
		case IDEM_IN_FLIGHT:
			return TALLY_EIDEM_BUSY;
		case IDEM_NEW:
			break;
		}
	}
	rc = admit(e, slug, req, offline != NULL, now, &campaign_id, &c);
	if (!rc && new_status_token(token)) {
		log_msg(LOG_ERROR, "intake.random_failed", "no random bytes for a status token");
		give_back(c, req->amount_cents);
		rc = TALLY_EIO;
	}
	p = rc ? NULL
	       : pending_new(e, offline ? DB_OP_OFFLINE : DB_OP_DONATION, done, ud,
	                     offline ? actor : NULL);
	if (!rc && !p) {
		give_back(c, req->amount_cents);
		rc = TALLY_EIO;
	}
	if (rc) {
		if (idem_key[0]) {
			idem_abort(e->idem, idem_key);
			/* A retry of a gift made before the campaign was paused or
			 * closed, whose key has left memory: the first answer still
			 * stands. */
			rc = stored_answer(e, idem_key, fp, now, replay, replayed, rc);
		}
		return rc;
	}
	id = atomic_fetch_add(&e->next_donation_id, 1);
	if (client)
		shield_note_gift(e->cfg.shield, id, client->addr, client->user_agent, client->page,
		                 slug);
	p->op.now_ms = now;
	p->op.campaign_id = campaign_id;
	p->op.u.donation.req = *req;
	p->op.u.donation.new_donor = 0;
	p->op.u.donation.replay = 0;
	p->op.u.donation.id = id;
	p->op.u.donation.job_id = offline ? 0 : jobs_next_id(e->jobs);
	memcpy(p->op.u.donation.idem_key, idem_key, strlen(idem_key) + 1);
	memcpy(p->op.u.donation.status_token, token, sizeof(token));
	p->op.u.donation.idem_hash = (int64_t)fp;
	p->op.u.donation.idem_expired = now - IDEM_LIFETIME_MS;
	p->op.u.donation.pool_id = 0;
	p->op.u.donation.matched_cents = 0;
	if (offline) {
		struct db_offline *o = &p->op.u.donation.offline;
		char detail[160];

		o->method = offline->method;
		memcpy(o->note, offline->note, sizeof(o->note));
		o->received_at = offline->received_at ? offline->received_at : now;
		o->n_follow =
		    jobs_success_followups(e->jobs, offline->receipt, req->email, o->follow);
		p->body_len = publish_render_offline(
		    p->body, sizeof(p->body), id, slug, req->amount_cents, 0, req->currency,
		    gift_method_names[o->method], o->received_at, now);
		snprintf(detail, sizeof(detail), "dn_%lld %lld %s %s", (long long)id,
		         (long long)req->amount_cents, req->currency, gift_method_names[o->method]);
		pending_audit(p, "offline_gift", slug, detail);
	} else {
		p->body_len =
		    publish_render_receipt(p->body, sizeof(p->body), id, slug, req->amount_cents, 0,
		                           req->fee_cents, req->currency, now, token);
	}
	/* Staff's gifts are not refused by donor load (the queue's bound). */
	rc = engine_submit(e, p, offline != NULL);
	if (rc)
		give_back(c, req->amount_cents);
	if (rc && idem_key[0])
		idem_abort(e->idem, idem_key);
	return rc;
}

struct shield *engine_shield(struct engine *e)
{
	return e->cfg.shield;
}

int engine_donate(struct engine *e, const char *slug, const struct donation_req *req,
                  const char *idem_key, struct buf *replay, int *replayed, engine_done_fn done,
                  void *ud)
{
	return engine_donate_from(e, slug, req, NULL, idem_key, replay, replayed, done, ud);
}

int engine_donate_from(struct engine *e, const char *slug, const struct donation_req *req,
                       const struct gift_client *client, const char *idem_key, struct buf *replay,
                       int *replayed, engine_done_fn done, void *ud)
{
	struct donation_req r = *req;

	*replayed = 0;
	if (!idem_key)
		idem_key = "";
	if (strlen(idem_key) > TALLY_IDEM_KEY_MAX)
		return TALLY_EIDEM_KEY;
	if (r.cover_fee && !fee_offered(&e->cfg.fee))
		return TALLY_ENOFEE;
	r.fee_cents = r.cover_fee ? fee_compute(&e->cfg.fee, r.amount_cents) : 0;
	return submit_gift(e, slug, &r, NULL, client, idem_key[0] ? fingerprint(slug, req) : 0,
	                   idem_key, NULL, replay, replayed, done, ud);
}

int engine_donate_replay(struct engine *e, const char *slug, const struct donation_req *req,
                         const char *idem_key, struct buf *replay, int *replayed)
{
	uint64_t fp = fingerprint(slug, req);
	int64_t now = util_now_ms();
	enum idem_result found;
	int rc;

	*replayed = 0;
	if (!idem_key || !idem_key[0] || strlen(idem_key) > TALLY_IDEM_KEY_MAX)
		return 0;
	rc = idem_begin(e->idem, idem_key, fp, now, replay, &found);
	if (rc)
		return rc == -EAGAIN ? TALLY_EOVERLOADED : TALLY_EIO;
	if (found == IDEM_REPLAY) {
		*replayed = 1;
		return 0;
	}
	if (found != IDEM_NEW)
		return 0;
	idem_abort(e->idem, idem_key);
	rc = stored_answer(e, idem_key, fp, now, replay, replayed, TALLY_ENODONATION);
	return rc == TALLY_ENODONATION || rc == TALLY_EIDEM_REUSED ? 0 : rc;
}

int engine_offline_gift(struct engine *e, const char *slug, const struct offline_req *req,
                        const char *idem_key, const char *actor, struct buf *replay, int *replayed,
                        engine_done_fn done, void *ud)
{
	struct donation_req r = req->d;

	*replayed = 0;
	if (!idem_key)
		idem_key = "";
	if (strlen(idem_key) > TALLY_IDEM_KEY_MAX)
		return TALLY_EIDEM_KEY;
	r.payment_token[0] = '\0';
	r.cover_fee = 0;
	r.fee_cents = 0;
	return submit_gift(e, slug, &r, req, NULL, idem_key[0] ? fingerprint_offline(slug, req) : 0,
	                   idem_key, actor, replay, replayed, done, ud);
}

/* engine_offline_gift_sync's wait: the answer's rc and the gift's id. */
struct offline_waiter {
	struct waiter w;
	char id[32];
};

static void offline_done(void *ud, const struct engine_answer *a)
{
	struct offline_waiter *ow = ud;
	const char *at = a->body ? strstr(a->body, "\"id\":\"") : NULL;

	if (!a->rc && at)
		snprintf(ow->id, sizeof(ow->id), "%.*s", (int)strcspn(at + 6, "\""), at + 6);
	waiter_done(&ow->w, a);
}

int engine_offline_gift_sync(struct engine *e, const char *slug, const struct offline_req *req,
                             const char *actor, char *id, size_t idcap)
{
	struct offline_waiter ow = {.id = ""};
	int replayed, rc;

	waiter_init(&ow.w);
	rc = waiter_wait(&ow.w, engine_offline_gift(e, slug, req, NULL, actor, NULL, &replayed,
	                                            offline_done, &ow));
	if (id && idcap)
		snprintf(id, idcap, "%s", rc ? "" : ow.id);
	return rc;
}

void intake_finish(struct engine *e, struct pending *p, int rc)
{
	struct db_op *op = &p->op;
	const char *key = op->u.donation.idem_key;
	struct engine_answer a = {0};
	struct campaign *admitted = campaign_find_id(e, op->campaign_id);

	/* Stored, it is pending now and stays claimed; else it leaves. */
	if (admitted && (rc || op->u.donation.replay))
		give_back(admitted, op->u.donation.req.amount_cents);

	if (!rc && op->u.donation.replay) {
		/* The database knew the key: answer what it answered then. */
		struct campaign *c = campaign_find_id(e, op->u.donation.prev_campaign_id);
		uint64_t fp = (uint64_t)op->u.donation.prev_hash;
		struct db_donation_row row = {0};

		row.id = op->u.donation.id;
		row.amount_cents = op->u.donation.prev_amount_cents;
		row.matched_cents = op->u.donation.prev_matched_cents;
		row.fee_cents = op->u.donation.prev_fee_cents;
		row.created_at = op->u.donation.prev_created_at;
		row.offline = op->u.donation.prev_offline;
		row.received_at = op->u.donation.prev_received_at;
		memcpy(row.currency, op->u.donation.prev_currency, sizeof(row.currency));
		memcpy(row.method, op->u.donation.prev_method, sizeof(row.method));
		memcpy(row.status_token, op->u.donation.status_token, sizeof(row.status_token));
		p->body_len = render_answer(p->body, sizeof(p->body), &row, c ? c->w.slug : "");
		idem_finish(e->idem, key, fp, p->body, p->body_len);
		if (fp == (uint64_t)op->u.donation.idem_hash)
			a.replayed = 1;
		else
			rc = TALLY_EIDEM_REUSED;
	} else {
		/* The writer decided its match just before storing it: the 202
		 * says so (and its replays, from memory or the row, the same). */
		if (!rc && op->u.donation.matched_cents && admitted && op->kind == DB_OP_DONATION)
			p->body_len = publish_render_receipt(
			    p->body, sizeof(p->body), op->u.donation.id, admitted->w.slug,
			    op->u.donation.req.amount_cents, op->u.donation.matched_cents,
			    op->u.donation.req.fee_cents, op->u.donation.req.currency, op->now_ms,
			    op->u.donation.status_token);
		else if (!rc && op->u.donation.matched_cents && admitted)
			p->body_len = publish_render_offline(
			    p->body, sizeof(p->body), op->u.donation.id, admitted->w.slug,
			    op->u.donation.req.amount_cents, op->u.donation.matched_cents,
			    op->u.donation.req.currency,
			    gift_method_names[op->u.donation.offline.method],
			    op->u.donation.offline.received_at, op->now_ms);
		if (key[0] && rc)
			idem_abort(e->idem, key);
		else if (key[0])
			idem_finish(e->idem, key, (uint64_t)op->u.donation.idem_hash, p->body,
			            p->body_len);
	}
	if (!p->done)
		return;
	a.rc = rc;
	if (!rc) {
		a.body = p->body;
		a.len = p->body_len;
	}
	p->done(p->ud, &a);
}

static int parse_donation_id(const char *id, int64_t *out)
{
	char *end;
	long long n;

	if (strncmp(id, "dn_", 3) || id[3] < '1' || id[3] > '9')
		return -1;
	errno = 0;
	n = strtoll(id + 3, &end, 10);
	if (*end || errno || n <= 0)
		return -1;
	*out = n;
	return 0;
}

int intake_donation_row(struct engine *e, const char *id, int64_t *n, struct db_donation_row *row)
{
	int rc;

	if (parse_donation_id(id, n))
		return TALLY_ENODONATION;
	pthread_mutex_lock(&e->reader_lock);
	rc = db_donation_get(e->reader, *n, row);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc == -ENOENT)
		return TALLY_ENODONATION;
	return rc ? TALLY_EIO : 0;
}

/* Append a donation's JSON: its public fields, then with staff set what
 * only staff see. */
static int render_donation(struct engine *e, int64_t n, const struct db_donation_row *row,
                           const struct db_donation_staff *staff, struct buf *out)
{
	const char *slug = "";
	char ts[32];
	int rc;

	pthread_mutex_lock(&e->lock);
	{
		struct campaign *c = campaign_find_id(e, row->campaign_id);

		if (c)
			slug = c->pub.slug;
		rc = buf_printf(out, "{\"id\":\"dn_%lld\",\"campaign\":\"%s\",\"status\":\"%s\"",
		                (long long)n, slug, row->status);
	}
	pthread_mutex_unlock(&e->lock);
	/* The match it holds now (0 once failed, or refunded and given
	 * back); hidden with the amount, which it would reveal. */
	if (!row->hide_amount || staff)
		rc |= buf_printf(out,
		                 ",\"amount_cents\":%lld,\"matched_cents\":%lld,\"fee_cents\":%lld,"
		                 "\"charged_cents\":%lld",
		                 (long long)row->amount_cents, (long long)db_donation_matched(row),
		                 (long long)row->fee_cents,
		                 (long long)(row->amount_cents + row->fee_cents));
	rc |= buf_printf(out, ",\"currency\":\"%s\",\"created_at\":\"%s\",\"source\":\"%s\"",
	                 row->currency, util_rfc3339(row->created_at, ts, sizeof(ts)),
	                 row->offline ? "offline" : "online");
	if (row->reason[0] && strcmp(row->status, "succeeded")) {
		rc |= buf_puts(out, ",\"reason\":");
		rc |= buf_json_string(out, row->reason);
	}
	if (staff) {
		rc |= buf_puts(out, ",\"donor\":{\"name\":");
		rc |= buf_json_string(out, row->name);
		rc |= buf_puts(out, ",\"email\":");
		rc |= buf_json_string(out, staff->email);
		rc |= buf_printf(out, "},\"anonymous\":%s,\"hide_amount\":%s,\"message\":",
		                 row->anonymous ? "true" : "false",
		                 row->hide_amount ? "true" : "false");
		rc |= buf_json_string(out, row->message);
		rc |= buf_puts(out, ",\"processor_ref\":");
		rc |= staff->processor_ref[0] ? buf_json_string(out, staff->processor_ref)
		                              : buf_puts(out, "null");
		rc |= staff->receipt_sent_at
		          ? buf_printf(out, ",\"receipt_sent_at\":\"%s\"",
		                       util_rfc3339(staff->receipt_sent_at, ts, sizeof(ts)))
		          : buf_puts(out, ",\"receipt_sent_at\":null");
		rc |= staff->refund_requested_at
		          ? buf_printf(out, ",\"refund_requested_at\":\"%s\"",
		                       util_rfc3339(staff->refund_requested_at, ts, sizeof(ts)))
		          : buf_puts(out, ",\"refund_requested_at\":null");
		rc |= buf_printf(out, ",\"has_status_token\":%s",
		                 row->status_token[0] ? "true" : "false");
		if (row->offline) {
			rc |= buf_printf(
			    out, ",\"method\":\"%s\",\"received_at\":\"%s\",\"note\":", row->method,
			    util_rfc3339(row->received_at, ts, sizeof(ts)));
			rc |= buf_json_string(out, staff->note);
		}
	}
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
}

int engine_donation_json(struct engine *e, const char *id, const char *token, struct buf *out)
{
	struct db_donation_row row;
	int64_t n;
	int rc;

	rc = intake_donation_row(e, id, &n, &row);
	if (rc)
		return rc;
	/* No token, a wrong one, or a gift from before tokens: the same
	 * answer as an unknown id, so a guess learns nothing. The stored
	 * token is the second operand: the time taken depends on its length
	 * alone. */
	if (!token || !row.status_token[0] ||
	    !util_ct_equal(token, strlen(token), row.status_token, strlen(row.status_token)))
		return TALLY_ENODONATION;
	return render_donation(e, n, &row, NULL, out);
}

int engine_donation_staff_json(struct engine *e, const char *id, struct buf *out)
{
	struct db_donation_staff staff;
	struct db_donation_row row;
	int64_t n;
	int rc;

	if (parse_donation_id(id, &n))
		return TALLY_ENODONATION;
	pthread_mutex_lock(&e->reader_lock);
	rc = db_donation_get_staff(e->reader, n, &row, &staff);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc == -ENOENT)
		return TALLY_ENODONATION;
	if (rc)
		return TALLY_EIO;
	return render_donation(e, n, &row, &staff, out);
}
