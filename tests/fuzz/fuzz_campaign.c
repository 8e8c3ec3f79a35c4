/* tests/fuzz/fuzz_campaign.c - libFuzzer harness for the admin campaign
 * bodies: POST /api/v1/admin/campaigns (create) and PATCH
 * /api/v1/admin/campaigns/{slug} (update), both read by validate_campaign.
 *
 * Every input is validated as a create and as an update. What must hold:
 * an accepted create has a valid slug, a non-blank name and a currency; an
 * accepted update never carries a slug or a currency; every field given is
 * within its limits and a schedule ends after it starts; a refusal says
 * why (422 with per-field messages, or 400 with a message); and a body
 * accepted as a create is refused as an update for its slug and currency
 * only.
 *   make fuzz FUZZ=campaign
 */
#include "base/util.h"
#include "core/validate.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_common(const struct campaign_spec *c)
{
	if (c->has_name) {
		long n = util_utf8_len(c->name, strlen(c->name));
		int blank = 1;

		for (const char *p = c->name; *p; p++)
			blank &= isspace((unsigned char)*p) != 0;
		if (n < 1 || n > TALLY_CAMPAIGN_NAME_MAX || blank ||
		    util_has_control(c->name, strlen(c->name), 0) ||
		    util_has_bidi_control(c->name, strlen(c->name)))
			abort();
	} else if (c->name[0]) {
		abort();
	}
	if (c->has_goal ? c->goal_cents < 0 || c->goal_cents > INT64_C(1000000000000000)
	                : c->goal_cents != 0)
		abort();
	if ((c->has_starts ? c->starts_at < 0 : c->starts_at != 0) ||
	    (c->has_ends ? c->ends_at < 0 : c->ends_at != 0))
		abort();
	if (c->starts_at && c->ends_at && c->ends_at <= c->starts_at)
		abort();
}

static void check_refusal(int rc, const struct validate_error *e)
{
	if (!e->message[0])
		abort();
	if (rc == TALLY_EFIELDS ? !e->fields || !json_object_size(e->fields)
	                        : rc != TALLY_EJSON || e->fields)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct campaign_spec c, u;
	struct validate_error ec = {{0}, NULL}, eu = {{0}, NULL};
	int rc = validate_campaign((const char *)data, size, 1, &c, &ec);
	int ru = validate_campaign((const char *)data, size, 0, &u, &eu);

	if (rc == TALLY_OK) {
		if (ec.fields || !c.has_slug || !c.has_name || !c.has_currency ||
		    !validate_slug(c.slug, strlen(c.slug)) || !validate_currency(c.currency))
			abort();
		check_common(&c);
	} else {
		check_refusal(rc, &ec);
	}
	if (ru == TALLY_OK) {
		if (eu.fields || u.has_slug || u.has_currency || u.slug[0] || u.currency[0])
			abort();
		check_common(&u);
	} else {
		check_refusal(ru, &eu);
	}
	/* Not JSON, or not an object: refused alike, with the same words. */
	if ((rc == TALLY_EJSON) != (ru == TALLY_EJSON) ||
	    (rc == TALLY_EJSON && strcmp(ec.message, eu.message)))
		abort();
	if (rc == TALLY_OK &&
	    (ru != TALLY_EFIELDS || json_object_size(eu.fields) != 2 ||
	     !json_object_get(eu.fields, "slug") || !json_object_get(eu.fields, "currency")))
		abort();
	validate_error_fini(&ec);
	validate_error_fini(&eu);
	return 0;
}
