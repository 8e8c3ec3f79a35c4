/* ws/captcha.c - the CAPTCHA check on the API: a gift the shield wants
 * checked (shield_gate says so) waits for the verifier (core/captcha.c)
 * before it goes on to the engine.
 *
 * DESIGN: the API loop never waits on the network. captcha_gate hands the
 * donor's token to the verifier with the request's async reference and
 * the handler answers HTTP_ASYNC. The verifier's thread posts the verdict
 * back as an XM_CAPTCHA message (server_post, the road the engine's
 * answers take), and the loop, in api_captcha_done (api.c), looks the
 * request up by its reference (the client may have gone), then refuses
 * the gift here (captcha_verdict) or admits it exactly as h_donate does
 * without a CAPTCHA. The request stays async all along, so the drain at
 * the stop waits for it as for any engine answer. The token itself is
 * never stored or logged.
 */
#include "ws/internal.h"
#include "core/captcha.h"
#include "core/shield.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest reason a verdict carries (core/captcha.c's are shorter). */
#define WHY_MAX 255

/* Where a verdict goes: the server, and its message, made when the check
 * is handed over so the captcha thread never allocates to answer. */
struct wait {
	struct server *s;
	struct xmsg *m; /* XM_CAPTCHA, ref set; WHY_MAX + 1 bytes of data */
};

/* The captcha thread: hand the verdict to the API loop. */
static void verified(void *ud, enum captcha_result result, const char *why)
{
	struct wait *w = ud;
	struct xmsg *m = w->m;

	snprintf(m->data, WHY_MAX + 1, "%s", why);
	m->len = strlen(m->data);
	m->rc = (int)result;
	server_post(w->s, m);
	free(w);
}

static int refuse_required(struct http_pss *p)
{
	return http_error(
	    p, 403, "captcha_required", tally_strerror(TALLY_ECAPTCHA_REQUIRED),
	    json_pack("{s:s}", "captcha_token", "required while this campaign is protected"), 0);
}

static int refuse_down(struct http_pss *p)
{
	return http_error(p, 503, "captcha_unavailable", tally_strerror(TALLY_ECAPTCHA_DOWN), NULL,
	                  5);
}

int captcha_gate(struct server *s, struct http_pss *p, const char *token)
{
	static const char room[WHY_MAX]; /* the reason's room, written later */
	struct shield *sh = engine_shield(s->engine);
	struct wait *w;
	int rc;

	if (!token[0]) {
		shield_captcha_refused(sh);
		return refuse_required(p) ? -1 : 0;
	}
	w = malloc(sizeof(*w));
	if (w && !(w->m = xmsg_new(XM_CAPTCHA, 0, room, WHY_MAX))) {
		free(w);
		w = NULL;
	}
	if (!w || !s->cfg.captcha) {
		/* Without a verifier the shield never asks (--captcha sets it
		 * up); fail closed all the same. */
		if (w)
			free(w->m);
		free(w);
		shield_captcha_refused(sh);
		return refuse_down(p) ? -1 : 0;
	}
	w->s = s;
	w->m->ref = http_ref(p);
	rc = captcha_verify(s->cfg.captcha, token, p->client, verified, w);
	if (rc == 0)
		return HTTP_ASYNC;
	free(w->m);
	free(w);
	shield_captcha_refused(sh);
	if (rc == TALLY_EOVERLOADED || rc == TALLY_ESHUTDOWN)
		return http_engine_error(p, rc) ? -1 : 0;
	return refuse_down(p) ? -1 : 0;
}

int captcha_verdict(struct server *s, struct http_pss *p, int result, const char *why)
{
	char msg[400];

	if (result == CAPTCHA_OK)
		return 1;
	shield_captcha_refused(engine_shield(s->engine));
	if (result != CAPTCHA_REJECTED)
		return refuse_down(p) ? -1 : 0;
	snprintf(msg, sizeof(msg),
	         "the CAPTCHA was not solved (%s): solve it again and send its new token", why);
	return http_error(
	           p, 403, "captcha_failed", msg,
	           json_pack("{s:s}", "captcha_token", "was refused by the CAPTCHA provider"), 0)
	           ? -1
	           : 0;
}
