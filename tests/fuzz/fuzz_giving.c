/* tests/fuzz/fuzz_giving.c - libFuzzer harness for the giving day's admin
 * bodies: match pools (POST /api/v1/admin/match-pools, PATCH .../{slug})
 * read by validate_pool, and challenges (POST /api/v1/admin/challenges)
 * read by validate_challenge.
 *
 * Every input is validated as a pool create, a pool update and a
 * challenge. What must hold: an accepted pool has a valid slug (create
 * only), a non-blank name when given, an amount within 1..10^15, a ratio
 * of 1..10 when given, caps within their bounds, at most 64 distinct
 * valid campaign slugs or "all" (never both, "all" with a currency), and
 * a window that ends after it starts; an accepted challenge has a kind, a
 * positive threshold and bonus, both times in order and its campaigns as
 * valid slugs; every refusal says why (422 with per-field messages, or
 * 400 with a message).
 *   make fuzz FUZZ=giving
 */
#include "core/validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOTAL_MAX INT64_C(1000000000000000)

static void check_refusal(int rc, const struct validate_error *e)
{
	if (!e->message[0])
		abort();
	if (rc == TALLY_EFIELDS ? !e->fields || !json_object_size(e->fields)
	                        : rc != TALLY_EJSON || e->fields)
		abort();
}

static void check_slugs(char (*slugs)[TALLY_SLUG_SIZE], int n, int all)
{
	if (n < 0 || n > TALLY_POOL_CAMPAIGNS_MAX || (all && n))
		abort();
	for (int i = 0; i < n; i++) {
		if (!validate_slug(slugs[i], strlen(slugs[i])))
			abort();
		for (int k = 0; k < i; k++)
			if (!strcmp(slugs[i], slugs[k]))
				abort();
	}
}

static void check_pool(const struct pool_spec *s, int create)
{
	const struct pool_row *p = &s->row;

	if (create != s->has_slug || (create && !validate_slug(p->slug, strlen(p->slug))) ||
	    (!create && (p->slug[0] || s->has_currency || p->currency[0])))
		abort();
	if (create && (!s->has_name || !s->has_amount || !s->has_campaigns))
		abort();
	if (s->has_name && !p->name[0])
		abort();
	if (s->has_amount ? p->amount_cents < 1 || p->amount_cents > TOTAL_MAX
	                  : p->amount_cents != 0)
		abort();
	if (s->has_ratio ? p->ratio < 1 || p->ratio > TALLY_POOL_RATIO_MAX : p->ratio != 0)
		abort();
	if (p->per_gift_cap_cents < 0 || p->per_gift_cap_cents > INT64_C(1000000000000) ||
	    p->per_donor_cap_cents < 0 || p->per_donor_cap_cents > TOTAL_MAX)
		abort();
	check_slugs((char(*)[TALLY_SLUG_SIZE])s->slugs, s->n_slugs, s->all);
	if (create && s->all && !s->has_currency)
		abort();
	if (s->has_currency && !validate_currency(p->currency))
		abort();
	if (p->starts_at < 0 || p->ends_at < 0 ||
	    (p->starts_at && p->ends_at && p->ends_at <= p->starts_at))
		abort();
}

static void check_challenge(const struct challenge_spec *s)
{
	const struct challenge_row *c = &s->row;

	if (!validate_slug(c->slug, strlen(c->slug)) || !c->name[0])
		abort();
	if ((unsigned)c->kind >= CHALLENGE_KINDS || c->threshold < 1 || c->threshold > TOTAL_MAX ||
	    c->bonus_cents < 1 || c->bonus_cents > TOTAL_MAX || c->winners < 0 ||
	    c->min_gift_cents < 0)
		abort();
	if (c->starts_at <= 0 || c->ends_at <= c->starts_at)
		abort();
	check_slugs((char(*)[TALLY_SLUG_SIZE])s->slugs, s->n_slugs, s->all);
	if (!s->all && !s->n_slugs)
		abort();
	if (s->all && !validate_currency(c->currency))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pool_spec pc, pu;
	static struct challenge_spec cs;
	struct validate_error ec = {{0}, NULL}, eu = {{0}, NULL}, ech = {{0}, NULL};
	int rc = validate_pool((const char *)data, size, 1, &pc, &ec);
	int ru = validate_pool((const char *)data, size, 0, &pu, &eu);
	int rch = validate_challenge((const char *)data, size, &cs, &ech);

	if (rc == TALLY_OK)
		check_pool(&pc, 1);
	else
		check_refusal(rc, &ec);
	if (ru == TALLY_OK)
		check_pool(&pu, 0);
	else
		check_refusal(ru, &eu);
	if (rch == TALLY_OK)
		check_challenge(&cs);
	else
		check_refusal(rch, &ech);
	/* Not JSON, or not an object: all three refuse it alike. */
	if ((rc == TALLY_EJSON) != (ru == TALLY_EJSON) ||
	    (rc == TALLY_EJSON) != (rch == TALLY_EJSON))
		abort();
	/* An accepted create is refused as an update for its slug alone
	 * (and its currency, when it names one). */
	if (rc == TALLY_OK && (ru != TALLY_EFIELDS || !json_object_get(eu.fields, "slug") ||
	                       json_object_size(eu.fields) != 1u + pc.has_currency))
		abort();
	validate_error_fini(&ec);
	validate_error_fini(&eu);
	validate_error_fini(&ech);
	return 0;
}
