/* base/err.c - texts of tally's error codes (see err.h). */
#include "base/err.h"

#include <string.h>

static const char *const own[] = {
    [TALLY_EJSON - TALLY_EJSON] = "the body is not a valid JSON object",
    [TALLY_EFIELDS - TALLY_EJSON] = "some fields are invalid",
    [TALLY_ENOCAMPAIGN - TALLY_EJSON] = "no campaign has this slug",
    [TALLY_EPAUSED - TALLY_EJSON] = "the campaign is paused and is not accepting donations",
    [TALLY_ECLOSED - TALLY_EJSON] = "the campaign is closed or outside its schedule",
    [TALLY_ECURRENCY - TALLY_EJSON] = "the currency differs from the campaign's currency",
    [TALLY_EOVERLOADED - TALLY_EJSON] =
        "too many donations are waiting to be recorded; retry shortly",
    [TALLY_ESHUTDOWN - TALLY_EJSON] = "the server is shutting down",
    [TALLY_EEXISTS - TALLY_EJSON] = "a campaign with this slug already exists",
    [TALLY_ENODONATION - TALLY_EJSON] = "no donation has this id",
    [TALLY_ESTATE - TALLY_EJSON] = "the action does not apply in the current state",
    [TALLY_EIO - TALLY_EJSON] =
        "storage is failing (disk full?): nothing was recorded; retry shortly",
    [TALLY_EIDEM_REUSED - TALLY_EJSON] =
        "this Idempotency-Key was already used with a different request",
    [TALLY_EIDEM_BUSY - TALLY_EJSON] =
        "a request with this Idempotency-Key is still being processed; retry shortly",
    [TALLY_EIDEM_KEY - TALLY_EJSON] = "the Idempotency-Key is longer than 255 bytes",
    [TALLY_ESCHEDULE - TALLY_EJSON] = "ends_at must be after starts_at",
    [TALLY_ELOCKED - TALLY_EJSON] = "another tally process is using this database",
    [TALLY_ENOJOB - TALLY_EJSON] = "no job has this id (done jobs cannot be acted on)",
    [TALLY_ENOQUEUE - TALLY_EJSON] = "no queue has this name (payments, receipts, webhooks)",
    [TALLY_EJOBBUSY - TALLY_EJSON] = "an attempt of this job is in flight; try again when it ends",
    [TALLY_ETOTAL - TALLY_EJSON] =
        ("this gift would take the campaign's total past 10^15 minor units, the most one "
         "campaign can hold"),
    [TALLY_ENOTOKEN - TALLY_EJSON] = "no staff token has this name",
    [TALLY_ETOKEN_EXISTS - TALLY_EJSON] =
        ("a staff token with this name exists (names are never reused, revoked ones "
         "included, and \"admin\" is the startup token's)"),
    [TALLY_ESTARTUP - TALLY_EJSON] =
        ("the startup token (TALLY_ADMIN_TOKEN or the token file) cannot be revoked "
         "through the API: change it and restart tally"),
    [TALLY_ENOPOOL - TALLY_EJSON] = "no match pool has this slug",
    [TALLY_EPOOL_EXISTS - TALLY_EJSON] = "a match pool with this slug already exists",
    [TALLY_EPOOL_AMOUNT - TALLY_EJSON] =
        "amount_cents is below what the pool has already promised (reserved + used)",
    [TALLY_EPOOL_CURRENCY - TALLY_EJSON] =
        ("every campaign a pool matches must take the pool's currency (a match never "
         "mixes currencies)"),
    [TALLY_ENOCHALLENGE - TALLY_EJSON] = "no challenge has this slug",
    [TALLY_ECHALLENGE_EXISTS - TALLY_EJSON] = "a challenge with this slug already exists",
    [TALLY_ENOFEE - TALLY_EJSON] =
        "this server offers no fee coverage (no --fee configured): send cover_fee false",
    [TALLY_EOFFLINE - TALLY_EJSON] =
        ("an offline gift did not go through the processor, so it cannot be refunded "
         "through it: return the money by hand"),
    [TALLY_ENOCATEGORY - TALLY_EJSON] = "no campaign has this category",
    [TALLY_EDAY_BEFORE - TALLY_EJSON] =
        "the giving day has not opened yet: GET /api/v1/day tells when gifts are taken",
    [TALLY_EDAY_CLOSED - TALLY_EJSON] = "the giving day has closed: gifts are no longer taken",
    [TALLY_EDAY_CURRENCY - TALLY_EJSON] =
        "a campaign has another currency than the one given for the whole day",
    [TALLY_ENOT_DAY_CURRENCY - TALLY_EJSON] =
        "the giving day takes one currency: a campaign must use the day's currency",
    [TALLY_ECAPTCHA_REQUIRED - TALLY_EJSON] =
        "this campaign is protected: send the CAPTCHA's token as captcha_token",
    [TALLY_ECAPTCHA_FAILED - TALLY_EJSON] =
        "the CAPTCHA was not solved: solve it again and send its new token",
    [TALLY_ECAPTCHA_DOWN - TALLY_EJSON] =
        "the CAPTCHA cannot be checked right now: nothing was recorded; retry shortly",
};

int tally_is_own(int err)
{
	return err >= TALLY_EJSON && err < TALLY_ELAST;
}

const char *tally_strerror(int err)
{
	if (err == 0)
		return "ok";
	if (tally_is_own(err))
		return own[err - TALLY_EJSON];
	if (err < 0 && err > -4000)
		return strerror(-err);
	return "unknown error";
}
