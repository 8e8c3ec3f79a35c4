/* ws/shield.c - the card-testing shield on the API: the gate every public
 * donation passes before it is admitted, and the staff routes that show,
 * raise and lower the shield (core/shield.h holds the rules). */
#include "ws/internal.h"
#include "core/shield.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>

int shield_gate(struct server *s, struct http_pss *p, const char *slug,
                const struct donation_req *req, int *captcha)
{
	struct shield *sh = engine_shield(s->engine);
	/* A slug no campaign has is the engine's 404 to answer; the shield
	 * keeps no room for it. Looked up only for a client it watches. */
	const char *known =
	    shield_watches(sh, p->client) && engine_campaign_id(s->engine, slug, strlen(slug)) >= 0
	        ? slug
	        : NULL;
	struct shield_ask ask = {p->client, req->email, known, req->amount_cents};
	struct shield_answer a;
	char msg[160];
	enum shield_verdict v = shield_admit(sh, &ask, util_now_ms(), &a);
	int was = 0;

	*captcha = 0;
	/* A retry of a gift acknowledged before is answered as before: not
	 * refused, and not checked again (a CAPTCHA token is good once). */
	if ((v != SHIELD_PASS || a.captcha) && p->idem_key[0] &&
	    !engine_donate_replay(s->engine, slug, req, p->idem_key, http_body(p), &was) && was)
		return http_send(p, 202, NULL, api_replayed, 1) ? -1 : 1;
	switch (v) {
	case SHIELD_PASS:
		*captcha = a.captcha;
		return 0;
	case SHIELD_BLOCKED:
		return http_error(p, 429, "too_many_attempts",
		                  "too many declined payments from this address or email; retry "
		                  "later",
		                  NULL, a.retry_after_s)
		           ? -1
		           : 1;
	case SHIELD_BELOW_MIN:
		snprintf(msg, sizeof(msg),
		         "must be at least %lld while this campaign is protected from card testing",
		         (long long)a.min_cents);
		return http_error(p, 422, "validation_failed", "amount_cents is too small",
		                  json_pack("{s:s}", "amount_cents", msg), 0)
		           ? -1
		           : 1;
	}
	return 0;
}

static int send_state(struct server *s, struct http_pss *p)
{
	static const struct http_header nocache[] = {{"cache-control:", "no-cache"}};
	struct shield *sh = engine_shield(s->engine);
	struct buf *b = http_body(p);

	if (!sh)
		return http_error(p, 404, "not_found", "the shield is not set up", NULL, 0);
	if (shield_json(sh, util_now_ms(), 20, b))
		return -1;
	return http_send(p, 200, NULL, nocache, 1);
}

int shield_h_get(struct server *s, struct http_pss *p)
{
	return send_state(s, p);
}

static int action(struct server *s, struct http_pss *p, const char *what)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	api_actor(p, actor, sizeof(actor));
	rc = engine_shield_action(s->engine, what, actor);
	if (rc < 0 && rc != TALLY_EIO)
		return http_engine_error(p, rc);
	return send_state(s, p);
}

int shield_h_raise(struct server *s, struct http_pss *p)
{
	return action(s, p, "raise");
}

int shield_h_lower(struct server *s, struct http_pss *p)
{
	return action(s, p, "lower");
}
