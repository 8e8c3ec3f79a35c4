/* base/err.h - tally's one error space (libuv's convention).
 *
 * A function that can fail returns 0 on success or a negative code: either
 * a negated errno (-ENOMEM, -EINVAL, ... from the OS or a library mapped to
 * one) or one of tally's own codes below, which sit under -4000 so they
 * never meet an errno. tally_strerror names both. A success that comes in
 * kinds (a replayed answer, say) says so through an out-parameter, never
 * through a positive return. SQLite codes never leave db/: db_errno maps
 * them.
 */
#ifndef TALLY_BASE_ERR_H
#define TALLY_BASE_ERR_H

enum tally_err {
	TALLY_OK = 0,
	TALLY_EJSON = -4000,     /* 400 invalid_json: the body is not a JSON object */
	TALLY_EFIELDS,           /* 422 validation_failed: per-field messages */
	TALLY_ENOCAMPAIGN,       /* 404 campaign_not_found */
	TALLY_EPAUSED,           /* 409 campaign_paused */
	TALLY_ECLOSED,           /* 409 campaign_closed (status or schedule) */
	TALLY_ECURRENCY,         /* 422 currency differs from the campaign's */
	TALLY_EOVERLOADED,       /* 503 overloaded: intake queue full */
	TALLY_ESHUTDOWN,         /* 503 shutting down */
	TALLY_EEXISTS,           /* 409 campaign_exists */
	TALLY_ENODONATION,       /* 404 donation_not_found */
	TALLY_ESTATE,            /* 409 the action does not apply in this state */
	TALLY_EIO,               /* 503 storage_unavailable: nothing recorded */
	TALLY_EIDEM_REUSED,      /* 422 idempotency_key_reused */
	TALLY_EIDEM_BUSY,        /* 409 idempotency_key_in_use */
	TALLY_EIDEM_KEY,         /* 422 the Idempotency-Key is too long */
	TALLY_ESCHEDULE,         /* 422 ends_at would not be after starts_at */
	TALLY_ELOCKED,           /* another tally has this database open */
	TALLY_ENOJOB,            /* 404 job_not_found */
	TALLY_ENOQUEUE,          /* 404 queue_not_found */
	TALLY_EJOBBUSY,          /* 409 job_running: an attempt is in flight */
	TALLY_ETOTAL,            /* 422 the gift would take its campaign past TALLY_TOTAL_MAX */
	TALLY_ENOTOKEN,          /* 404 token_not_found: no staff token has this name */
	TALLY_ETOKEN_EXISTS,     /* 409 token_exists: the name is taken (revoked ones too) */
	TALLY_ESTARTUP,          /* 409 startup_token: the startup token is not revoked here */
	TALLY_ENOPOOL,           /* 404 pool_not_found: no match pool has this slug */
	TALLY_EPOOL_EXISTS,      /* 409 pool_exists: the slug is taken */
	TALLY_EPOOL_AMOUNT,      /* 422 the amount is below what the pool has promised */
	TALLY_EPOOL_CURRENCY,    /* 422 a named campaign's currency is not the pool's */
	TALLY_ENOCHALLENGE,      /* 404 challenge_not_found */
	TALLY_ECHALLENGE_EXISTS, /* 409 challenge_exists: the slug is taken */
	TALLY_ENOFEE,            /* 422 cover_fee asked for, and no fee is configured (--fee) */
	TALLY_EOFFLINE,          /* 409 offline_gift: not through the processor, no refund here */
	TALLY_ENOCATEGORY,       /* 404 category_not_found: no campaign has this category */
	TALLY_EDAY_BEFORE,       /* 409 campaign_closed: the giving day has not opened yet */
	TALLY_EDAY_CLOSED,       /* 409 campaign_closed: the giving day has closed */
	TALLY_EDAY_CURRENCY,     /* 409 currency_mismatch: a campaign has another currency */
	TALLY_ENOT_DAY_CURRENCY, /* 422 a campaign's currency is not the day's */
	TALLY_ECAPTCHA_REQUIRED, /* 403 captcha_required: a protected gift came without a token */
	TALLY_ECAPTCHA_FAILED,   /* 403 captcha_failed: the CAPTCHA provider refused the token */
	TALLY_ECAPTCHA_DOWN,     /* 503 captcha_unavailable: the verifier did not answer */
	TALLY_ELAST
};

/* A short English text for err: one of tally's codes, a negated errno, or
 * 0. Never NULL; the text is static. */
const char *tally_strerror(int err);

/* 1 if err is one of tally's own codes (not an errno). */
int tally_is_own(int err);

#endif
