/* core/shield.h - the card-testing shield: velocity rules over declined
 * captures, decided in memory on the intake path (see core/shield.c).
 *
 * Any thread may call any function here: one mutex (a leaf) guards the
 * shield. Times are milliseconds on the caller's clock (util_now_ms in
 * tally; tests pass their own).
 */
#ifndef TALLY_CORE_SHIELD_H
#define TALLY_CORE_SHIELD_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

/* The rules. Defaults (shield_config_defaults) and why they were chosen
 * are in core/shield.c; every field is a tally option (--shield-*). */
struct shield_config {
	int enabled;            /* 0: the shield decides nothing (--shield off) */
	int window_s;           /* the sliding window of the offender rules */
	int addr_declines;      /* an address is blocked at this many declines... */
	int addr_ratio_pct;     /* ...when they are at least this % of its attempts */
	int email_declines;     /* an email is blocked at this many declines */
	int card_declines;      /* a card fingerprint at this many declines... */
	int card_attempts;      /* ...or this many attempts, declined or not */
	int block_s;            /* how long an offender stays blocked */
	int campaign_declines;  /* a campaign's shield goes up at this many declines
	                         * in one minute... */
	int campaign_ratio_pct; /* ...when they are at least this % of its attempts */
	int up_s;               /* it comes down this long after the last minute
	                         * that would have raised it */
	int64_t up_min_cents;   /* while up: the campaign's least gift */
	int captcha;            /* a CAPTCHA verifier is set up (--captcha) */
	int captcha_always;     /* every gift needs a CAPTCHA token, up or not */
};

void shield_config_defaults(struct shield_config *cfg);

/* Apply --shield SPEC to cfg: "off", "on", or comma-separated NAME=N
 * (window-s, address-declines, address-ratio, email-declines,
 * card-declines, card-attempts, block-s, campaign-declines,
 * campaign-ratio, up-s, up-min-cents). Returns 0, or -EINVAL with one
 * line in err naming what is wrong and the range wanted (cfg may be
 * changed in part). */
int shield_config_parse(struct shield_config *cfg, const char *spec, char *err, size_t errcap);

struct shield;

/* A new shield with cfg's rules (copied). Returns 0 or -ENOMEM. */
int shield_new(const struct shield_config *cfg, struct shield **out);
void shield_free(struct shield *sh);

/* ---- the intake path (the API loop) ---- */

/* Who asks: the client's address (after --trusted-proxy), the donor's
 * email (any case), the campaign's slug (NULL when no campaign has it:
 * only campaigns that exist are watched) and the amount. */
struct shield_ask {
	const char *addr;
	const char *email;
	const char *campaign;
	int64_t amount_cents;
};

enum shield_verdict {
	SHIELD_PASS,      /* take the gift (captcha: after a CAPTCHA check) */
	SHIELD_BLOCKED,   /* 429 too_many_attempts, Retry-After retry_after_s */
	SHIELD_BELOW_MIN, /* the campaign's shield is up: at least min_cents */
};

struct shield_answer {
	int captcha;       /* PASS: only with a valid CAPTCHA token */
	int retry_after_s; /* BLOCKED: when the block ends (>= 1) */
	int64_t min_cents; /* BELOW_MIN: the least gift while up */
	char why[96];      /* BLOCKED: the rule, for the error's message */
};

/* Decide a donation before it is admitted. A PASS counts as an attempt
 * of its address (what the address's ratio divides by) and its campaign.
 * 127.0.0.1 and ::1 always pass, uncounted (local tools); so does
 * everything when the shield is off. */
/* 1 when the shield decides for a client at addr (it is on, and addr is
 * not 127.0.0.1 or ::1), else 0: shield_admit passes it uncounted. */
int shield_watches(const struct shield *sh, const char *addr);

enum shield_verdict shield_admit(struct shield *sh, const struct shield_ask *ask, int64_t now,
                                 struct shield_answer *out);

/* A gift the API refused for its CAPTCHA (missing, wrong, or the
 * verifier unreachable): counted in "refused". */
void shield_captcha_refused(struct shield *sh);

/* The client of an admitted gift (the engine, at admission): its address,
 * user agent and page (Referer or Origin), kept in memory (never stored)
 * until the capture's outcome, for the processor (client signals) and to
 * count a decline against the address. Any string but addr may be NULL
 * or "". Nothing is kept for 127.0.0.1 and ::1 (exempt) or when the
 * shield is off. The oldest are forgotten past a bound. */
struct shield_client {
	char addr[48];
	char user_agent[200];
	char page[200];
	char campaign[64];
};

void shield_note_gift(struct shield *sh, int64_t donation_id, const char *addr,
                      const char *user_agent, const char *page, const char *campaign);

/* ---- the payments queue (a worker thread) ---- */

/* Copy the client of gift donation_id into out: 0, or -ENOENT when it is
 * not known (a gift from before a restart, staff's, or forgotten). */
int shield_client_of(struct shield *sh, int64_t donation_id, struct shield_client *out);

/* May the capture of gift donation_id by email go to the processor? 0,
 * or -EPERM with the reason in why (its address or email was blocked
 * after it was admitted: a flood's queued captures cost nothing). */
int shield_capture_ok(struct shield *sh, int64_t donation_id, const char *email, int64_t now,
                      char *why, size_t whycap);

/* A capture's outcome: declined or not, and the card's fingerprint when
 * the processor gave one ("" or NULL else). Counts the decline against
 * the gift's address, email, card and campaign, blocks whoever crosses a
 * rule and raises a campaign's shield; forgets the gift's client. */
void shield_outcome(struct shield *sh, int64_t donation_id, const char *email,
                    const char *fingerprint, int declined, int64_t now);

/* ---- staff ---- */

/* Raise the shield on every campaign until lowered (staff), or lower it:
 * every campaign's shield comes down and every block and count is
 * forgotten. Returns 1 when that changed anything, else 0. */
int shield_raise(struct shield *sh, int64_t now);
int shield_lower(struct shield *sh, int64_t now);

/* Append the shield's state as JSON: {"enabled","raised","up":[campaigns
 * up, with since/until and their minute's declines and attempts],
 * "declines_per_min","attempts_per_min","trips","refused":{...},
 * "offenders":[the blocked and the worst, by kind: address, email,
 * card], "rules":{...}}. limit offenders at most. Returns 0 or -ENOMEM. */
int shield_json(struct shield *sh, int64_t now, int limit, struct buf *out);

/* Append the Prometheus families tally_shield_*. Returns 0 or -ENOMEM. */
int shield_metrics(struct shield *sh, int64_t now, struct buf *out);

#endif
