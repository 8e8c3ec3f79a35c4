/* base/model.h - the plain types that cross layers: a campaign, a donation
 * request, a campaign spec, the job queues, kinds and states, and the
 * sizes they are built from. Every folder may include it; it includes
 * nothing of tally's. Strings live at the edges (JSON, SQL text): inside,
 * states are enums, and their names come from the tables here.
 */
#ifndef TALLY_BASE_MODEL_H
#define TALLY_BASE_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Limits of the inputs, in code points unless said otherwise. A UTF-8
 * code point takes at most 4 bytes: *_SIZE is the buffer for one. */
#define TALLY_SLUG_MAX 64 /* bytes of [a-z0-9-] */
#define TALLY_CAMPAIGN_NAME_MAX 128
#define TALLY_CATEGORY_MAX 64 /* a campaign's category, as leaderboards group */
#define TALLY_DONOR_NAME_MAX 100
#define TALLY_EMAIL_MAX 254 /* bytes */
#define TALLY_MESSAGE_MAX 500
#define TALLY_TOKEN_MAX 64 /* bytes */
/* A donation's CAPTCHA token (core/captcha.h): bytes of printable ASCII.
 * Checked, never stored: it is not part of struct donation_req. */
#define TALLY_CAPTCHA_TOKEN_MAX 4096
#define TALLY_IDEM_KEY_MAX 255 /* bytes of printable ASCII */
#define TALLY_BODY_MAX (16 * 1024)
/* A gift's status token: 128 random bits as lower-case hex, the capability
 * that reads the gift's public status (GET /api/v1/donations/{id}?token=). */
#define TALLY_STATUS_TOKEN_LEN 32

/* Money bounds, in a currency's minor units (cents of USD, yen of JPY).
 * TALLY_AMOUNT_MAX, the largest gift --max-cents may allow: 10^12 is ten
 * billion dollars or euros, or a trillion yen, more than any one gift, with
 * room for currencies of many minor units (IDR, VND). TALLY_TOTAL_MAX, what
 * one campaign's gifts (raised, pending and in flight together) and its
 * goal may reach: 10^15, a thousand largest gifts. Both stay below 2^53,
 * so a browser's JSON numbers hold them exactly, and int64 sums of up to
 * 9,223 campaigns at the cap cannot overflow; sums past that are checked
 * (__builtin_add_overflow) and refused. */
#define TALLY_AMOUNT_MAX INT64_C(1000000000000)
#define TALLY_TOTAL_MAX INT64_C(1000000000000000)

#define TALLY_SLUG_SIZE (TALLY_SLUG_MAX + 1)
#define TALLY_CAMPAIGN_NAME_SIZE (TALLY_CAMPAIGN_NAME_MAX * 4 + 1)
#define TALLY_CATEGORY_SIZE (TALLY_CATEGORY_MAX * 4 + 1)
#define TALLY_DONOR_NAME_SIZE (TALLY_DONOR_NAME_MAX * 4 + 1)
#define TALLY_EMAIL_SIZE (TALLY_EMAIL_MAX + 1)
#define TALLY_MESSAGE_SIZE (TALLY_MESSAGE_MAX * 4 + 1)
#define TALLY_TOKEN_SIZE (TALLY_TOKEN_MAX + 1)
#define TALLY_CAPTCHA_TOKEN_SIZE (TALLY_CAPTCHA_TOKEN_MAX + 1)
#define TALLY_IDEM_KEY_SIZE (TALLY_IDEM_KEY_MAX + 1)
#define TALLY_STATUS_TOKEN_SIZE (TALLY_STATUS_TOKEN_LEN + 1)
#define TALLY_CURRENCY_SIZE 4 /* ISO 4217 code and its NUL */

/* ---- campaigns ---- */

enum campaign_status { CAMPAIGN_ACTIVE, CAMPAIGN_PAUSED, CAMPAIGN_CLOSED, CAMPAIGN_STATUSES };

extern const char *const campaign_status_names[CAMPAIGN_STATUSES];

/* The status named s; -1 when unknown. */
int campaign_status_by_name(const char *s);

/* A campaign's settings and stored aggregates: one record, as the database
 * keeps it, as the engine caches it and as the console shows it. Times are
 * ms since the epoch, 0 for none. */
struct campaign_row {
	int64_t id;
	char slug[TALLY_SLUG_SIZE];
	char name[TALLY_CAMPAIGN_NAME_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	enum campaign_status status; /* as stored (before the schedule) */
	int64_t goal_cents, starts_at, ends_at, created_at;
	char category[TALLY_CATEGORY_SIZE]; /* "" for none */
	/* The money: raised_cents is the donors' (succeeded online and
	 * offline gifts, less refunds), matched_cents what match pools added
	 * to those gifts, bonus_cents the challenges it unlocked; its total is
	 * the sum of the three (campaign_total). */
	int64_t raised_cents, matched_cents, bonus_cents;
	int64_t donor_count, donation_count, pending_cents;
	uint64_t seq;
	/* Since when the status has been paused, 0 while it is not. Not a
	 * column: at start-up the engine takes it from the audit (the
	 * campaign.pause that paused it), then from each pause it commits. */
	int64_t paused_since;
};

/* raised + matched + bonus: what the campaign's thermometer shows. */
static inline int64_t campaign_total(const struct campaign_row *r)
{
	return r->raised_cents + r->matched_cents + r->bonus_cents;
}

/* ---- the giving day ---- */

#define TALLY_DAY_NAME_MAX 128
#define TALLY_DAY_SPAN_MAX (INT64_C(31) * 24 * 3600 * 1000) /* opening to closing */

/* The day's schedule (at most one): gifts are taken from early_at (or
 * opens_at when there is no early window) until closes_at. Times are ms
 * since the epoch; early_at 0 for no early window; currency "" when the
 * day does not fix one. set 0: no day configured. */
struct giving_day {
	int set;
	char name[TALLY_DAY_NAME_MAX * 4 + 1];
	int64_t early_at, opens_at, closes_at;
	char currency[TALLY_CURRENCY_SIZE];
};

/* Where a moment stands in the day: none (no day configured), before
 * (nothing taken yet), early (the early-giving window), open, closed. */
enum day_phase { DAY_NONE, DAY_BEFORE, DAY_EARLY, DAY_OPEN, DAY_CLOSED, DAY_PHASES };

extern const char *const day_phase_names[DAY_PHASES];

/* A validated campaign create/update. has_* flags tell which fields were
 * given (an update may give any subset). Times are ms since the epoch; 0 with
 * has_* set means "cleared" (JSON null). */
struct campaign_spec {
	char slug[TALLY_SLUG_SIZE];
	char name[TALLY_CAMPAIGN_NAME_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	int64_t goal_cents;
	int64_t starts_at;
	int64_t ends_at;
	char category[TALLY_CATEGORY_SIZE]; /* validate_category's; "" clears */
	unsigned has_slug : 1, has_name : 1, has_currency : 1, has_goal : 1, has_starts : 1,
	    has_ends : 1, has_category : 1;
};

/* ---- match pools ---- */

/* A sponsor's pool that matches gifts: each gift reserves its match at
 * intake, in the writer's order (core/match.c says how much). */
#define TALLY_POOL_CAMPAIGNS_MAX 64 /* campaigns a pool names; 0 = all */
#define TALLY_POOL_RATIO_MAX 10     /* 10:1 at most */

/* A pool's switch, as staff set it: paused pools reserve nothing new (the
 * reservations made go on); a depleted pool is closed for good (staff
 * ended it), as is one whose window ended. */
enum pool_status { POOL_ACTIVE, POOL_PAUSED, POOL_DEPLETED, POOL_STATUSES };

extern const char *const pool_status_names[POOL_STATUSES];

/* The status named s; -1 when unknown. */
int pool_status_by_name(const char *s);

/* A match pool: its settings as stored, and the sums over its gifts. */
struct pool_row {
	int64_t id;
	char slug[TALLY_SLUG_SIZE];
	char name[TALLY_CAMPAIGN_NAME_SIZE];
	char sponsor[TALLY_CAMPAIGN_NAME_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	int64_t amount_cents;                        /* what the sponsor gives, in all */
	int ratio;                                   /* 2: two of match for one given */
	int64_t per_gift_cap_cents;                  /* at most this match per gift; 0: none */
	int64_t per_donor_cap_cents;                 /* per donor (email) over the pool; 0: none */
	int n_campaigns;                             /* 0: every campaign of its currency */
	int64_t campaigns[TALLY_POOL_CAMPAIGNS_MAX]; /* ids, ascending */
	int64_t starts_at, ends_at;                  /* ms; 0: open-ended */
	int match_offline;                           /* offline gifts draw too */
	enum pool_status status;
	int64_t created_at;
	/* SUM(matched_cents) of its gifts: pending ones (reserved) and
	 * succeeded or refunded-but-kept ones (used). Never stored as such:
	 * read from the donations at start, then kept by the writer. */
	int64_t reserved_cents, used_cents;
};

/* A validated pool create/update (has_* tell which fields were given; an
 * update may give any subset). campaigns are slugs until the engine finds
 * them. */
struct pool_spec {
	struct pool_row row;
	int n_slugs, all;
	char slugs[TALLY_POOL_CAMPAIGNS_MAX][TALLY_SLUG_SIZE];
	unsigned has_slug : 1, has_name : 1, has_sponsor : 1, has_currency : 1, has_amount : 1,
	    has_ratio : 1, has_gift_cap : 1, has_donor_cap : 1, has_campaigns : 1, has_starts : 1,
	    has_ends : 1, has_offline : 1;
};

/* ---- challenges ---- */

/* A bonus a campaign unlocks by reaching a threshold inside a window
 * ("power hour"), paid by a sponsor to the first `winners` campaigns that
 * reach it (0: to every one). What counts is explicit and recomputable
 * from the donations: gifts that succeeded (a later refund takes nothing
 * back), made inside [starts_at, ends_at), of at least min_gift_cents, in
 * the challenge's currency, online only when online_only; a unique donor
 * is an email (in lower case) per campaign. */
#define TALLY_CHALLENGE_CAMPAIGNS_MAX TALLY_POOL_CAMPAIGNS_MAX

enum challenge_kind { CHALLENGE_AMOUNT, CHALLENGE_DONORS, CHALLENGE_GIFTS, CHALLENGE_KINDS };

extern const char *const challenge_kind_names[CHALLENGE_KINDS];

/* The kind named s; -1 when unknown. */
int challenge_kind_by_name(const char *s);

struct challenge_row {
	int64_t id;
	char slug[TALLY_SLUG_SIZE];
	char name[TALLY_CAMPAIGN_NAME_SIZE];
	char sponsor[TALLY_CAMPAIGN_NAME_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	enum challenge_kind kind;
	int64_t threshold;   /* minor units (amount), donors or gifts */
	int64_t bonus_cents; /* to each winner */
	int winners;         /* 0: every campaign that reaches it */
	int n_campaigns;     /* 0: every campaign of its currency */
	int64_t campaigns[TALLY_CHALLENGE_CAMPAIGNS_MAX]; /* ids, ascending */
	int64_t min_gift_cents;
	int online_only;
	int64_t starts_at, ends_at; /* ms; both set */
	int64_t created_at;
	int awarded; /* awards made (not a column: counted from the awards) */
};

/* A validated challenge create. campaigns are slugs until the engine
 * finds them. */
struct challenge_spec {
	struct challenge_row row;
	int n_slugs, all;
	char slugs[TALLY_CHALLENGE_CAMPAIGNS_MAX][TALLY_SLUG_SIZE];
};

/* ---- donations ---- */

struct donation_limits {
	int64_t min_cents;
	int64_t max_cents;
};

/* A validated donation request. Strings are NUL-terminated UTF-8. */
struct donation_req {
	int64_t amount_cents;
	char currency[TALLY_CURRENCY_SIZE];
	char name[TALLY_DONOR_NAME_SIZE];
	char email[TALLY_EMAIL_SIZE];
	char message[TALLY_MESSAGE_SIZE];
	char payment_token[TALLY_TOKEN_SIZE];
	int anonymous;
	int hide_amount;
	int cover_fee;     /* the donor covers the processing fee (--fee) */
	int64_t fee_cents; /* set by the engine at admission: charged beside
	                    * amount_cents, never counted in any total */
};

/* ---- offline gifts (cheques, cash, donor-advised funds) ---- */

/* How an offline gift came in. */
enum gift_method { METHOD_CHEQUE, METHOD_CASH, METHOD_DAF, METHOD_OTHER, GIFT_METHODS };

extern const char *const gift_method_names[GIFT_METHODS];

/* The method named s; -1 when unknown. */
int gift_method_by_name(const char *s);

/* Staff's note on an offline gift (never public). */
#define TALLY_NOTE_MAX 200
#define TALLY_NOTE_SIZE (TALLY_NOTE_MAX * 4 + 1)

/* A validated offline gift, entered by staff. d.email may be "";
 * d.payment_token is "" and d.cover_fee 0. received_at is ms since the
 * epoch, 0 for "when recorded". */
struct offline_req {
	struct donation_req d;
	enum gift_method method;
	char note[TALLY_NOTE_SIZE];
	int64_t received_at;
	int receipt; /* queue a receipt when d.email is set */
};

/* ---- jobs ---- */

enum job_queue { JOB_PAYMENTS, JOB_RECEIPTS, JOB_WEBHOOKS, JOB_QUEUES };

enum job_kind {
	JOB_CAPTURE,        /* payments: capture the gift through the processor */
	JOB_REFUND,         /* payments: refund it */
	JOB_RECEIPT,        /* receipts: email the donor */
	JOB_HOOK_SUCCEEDED, /* webhooks: donation.succeeded */
	JOB_HOOK_FAILED,    /* webhooks: donation.failed */
	JOB_HOOK_REFUNDED,  /* webhooks: donation.refunded */
	JOB_KINDS
};

/* JOB_HELD is memory only (a staff action waits for its commit); a job
 * record whose state is JOB_GONE is deleted. */
enum job_state { JOB_READY, JOB_RUNNING, JOB_SCHEDULED, JOB_DONE, JOB_DEAD, JOB_HELD, JOB_GONE };

/* What a job's outcome does to its donation. */
enum job_effect {
	EFFECT_NONE,
	EFFECT_SUCCEEDED,      /* pending -> succeeded: counted in the totals */
	EFFECT_FAILED,         /* pending -> failed (declined or discarded) */
	EFFECT_REFUNDED,       /* succeeded -> refunded: taken out of the totals */
	EFFECT_RECEIPT,        /* the receipt went out: remember when */
	EFFECT_REF,            /* still pending: remember the processor's id */
	EFFECT_REFUND_DROPPED, /* a refund job discarded: may be asked again */
	EFFECT_OFFLINE,        /* an offline gift recorded: succeeded and counted at once */
};

/* What an effect does, read by the writer (which donation status it moves
 * from and to) and by the engine's cache (what the campaign's numbers do).
 * from NULL: any status; to NULL: the status stays. */
struct effect_rule {
	const char *from, *to; /* the donation's status in SQL */
	int pending;           /* pending_cents moves by this x the amount */
	int raised;            /* raised_cents and donation_count move by this */
	int public;            /* the campaign's public state changes */
};

extern const struct effect_rule effect_rules[EFFECT_OFFLINE + 1];

extern const char *const job_queue_names[JOB_QUEUES];
extern const char *const job_kind_names[JOB_KINDS];
extern const char *const job_state_names[JOB_GONE + 1];
extern const enum job_queue job_kind_queue[JOB_KINDS];

/* Look names up; -1 when unknown. job_state_by_name knows only the states
 * a user may ask for (ready, running, scheduled, done, dead). */
int job_queue_by_name(const char *name);
int job_kind_by_name(const char *name);
int job_state_by_name(const char *name);

struct job_policy {
	int workers;        /* threads */
	int inflight;       /* jobs in flight per thread */
	int max_attempts;   /* then dead */
	int64_t backoff_ms; /* delay after the first failed attempt */
	int64_t backoff_max_ms;
	int nice; /* of the queue's threads: slow work yields the CPU to donors */
	/* An attempt's time limit, over all its transfers (connect, a server
	 * that never answers, a blocking SMTP DATA end): then it fails and
	 * is retried. */
	int64_t timeout_ms;
};

struct job_queue_info {
	int paused, workers, inflight;
	int64_t ready, running, scheduled, dead, held;
	int64_t done_total, failed_total;      /* stored counters, since ever */
	int64_t declined;                      /* captures declined, since start */
	double done_per_s;                     /* last 10-20 s */
	double latency_ms_p50, latency_ms_p99; /* ready -> started, last 10-20 s */
};

/* A job's failed attempts, as it keeps them (the jobs table's history
 * column): the newest JOB_HISTORY_MAX, each error cut to
 * JOB_HISTORY_ERROR_MAX bytes (whole UTF-8 characters; last_error keeps
 * the newest whole). A successful attempt adds nothing. */
#define JOB_HISTORY_MAX 10
#define JOB_HISTORY_ERROR_MAX 160

struct job_attempt {
	int attempt;     /* its number: 1 for the job's first attempt */
	int64_t at_ms;   /* when it started, ms since the epoch */
	int64_t took_ms; /* how long it ran until its result */
	char error[JOB_HISTORY_ERROR_MAX + 1];
};

struct job_history {
	int n;                                 /* 0..JOB_HISTORY_MAX */
	struct job_attempt a[JOB_HISTORY_MAX]; /* oldest first */
};

/* A job as staff see it (from memory or from its row). */
struct job_record {
	int64_t id, donation_id, next_run_at, created_at;
	int attempts;
	enum job_queue queue;
	enum job_kind kind;
	enum job_state state;
	char url[512];
	char last_error[256];
};

/* ---- staff ---- */

/* A staff token's name: 1-64 of [A-Za-z0-9._-], but not "." or ".." (a
 * path segment could not name them). Names are unique without regard to
 * case, and never reused, revoked ones included. */
#define TALLY_STAFF_NAME_MAX 64
#define TALLY_STAFF_NAME_SIZE (TALLY_STAFF_NAME_MAX + 1)
/* A staff token's secret: "tly_" and 32 random bytes in base64url. */
#define TALLY_STAFF_SECRET_LEN (4 + 43)
#define TALLY_STAFF_SECRET_SIZE (TALLY_STAFF_SECRET_LEN + 1)
/* What is stored of a secret: its SHA-256, as lower-case hex. */
#define TALLY_STAFF_HASH_LEN 64
#define TALLY_STAFF_HASH_SIZE (TALLY_STAFF_HASH_LEN + 1)
/* Who did a staff action, as the audit keeps it: "NAME@ADDRESS" (a staff
 * token's name and the client's address) from the API, "console" or "cli"
 * from the local ones. */
#define TALLY_ACTOR_SIZE 128

/* What a staff token may do; each role may do everything the ones before
 * it may. STAFF_PUBLIC is no token at all: the public routes. */
enum staff_role { STAFF_PUBLIC, STAFF_VIEWER, STAFF_OPERATOR, STAFF_ADMIN, STAFF_ROLES };

extern const char *const staff_role_names[STAFF_ROLES];

/* The role named s: viewer, operator or admin (never public); -1 for any
 * other name. */
int staff_role_by_name(const char *s);

/* A staff token as staff see it: never its secret, nor its hash. Times are
 * ms since the epoch; revoked_at is 0 while the token is valid. */
struct staff_token {
	char name[TALLY_STAFF_NAME_SIZE];
	enum staff_role role;
	int64_t created_at, revoked_at;
	int startup; /* the token tally started with (TALLY_ADMIN_TOKEN or the
	              * token file): an admin, not stored, never revoked;
	              * created_at 0 */
};

/* Who a request's bearer is: a valid token's name and role, or role
 * STAFF_PUBLIC and name "" for none. */
struct staff_identity {
	char name[TALLY_STAFF_NAME_SIZE];
	enum staff_role role;
};

/* A staff action as the audit table keeps it. */
struct audit_entry {
	int64_t id, at;
	char actor[TALLY_ACTOR_SIZE];
	char action[40];
	char target[128];
	char detail[256];
};

/* ---- the donations export (GET /api/v1/admin/donations.csv) ---- */

/* Which gifts an export takes: 0 or "" is no filter. Times are ms since
 * the epoch on a gift's created_at: from inclusive, to exclusive. */
struct export_filter {
	int64_t campaign_id;
	char status[10]; /* pending, succeeded, failed or refunded */
	char source[8];  /* online or offline */
	int64_t from, to;
	unsigned has_from : 1, has_to : 1;
};

/* One exported gift. The strings point into the database's row, valid
 * until the next row is asked for; "" for none (never NULL). Amounts are
 * minor units; times are ms since the epoch, 0 for none. */
struct export_row {
	int64_t id, created_at, received_at;
	int64_t amount_cents, fee_cents, matched_cents, bonus_cents;
	int anonymous;
	const char *campaign, *status, *source, *method, *currency, *pool;
	const char *donor_name, *donor_email, *message, *note, *reason, *processor_ref;
};

/* ---- the writer's commits ---- */

#define COMMIT_HIST_BUCKETS 12
/* Upper bounds of the histogram buckets (a last bucket holds the rest). */
extern const double commit_batch_size_bounds[COMMIT_HIST_BUCKETS];
extern const double commit_seconds_bounds[COMMIT_HIST_BUCKETS];

struct commit_stats {
	uint64_t batch_size_hist[COMMIT_HIST_BUCKETS + 1];
	uint64_t commit_seconds_hist[COMMIT_HIST_BUCKETS + 1];
	double commit_seconds_sum;
	uint64_t batches;
	uint64_t ops;
	uint64_t failed_commits;
	uint64_t crowded;         /* operations queued while the queue was half full */
	int64_t failing_since_ms; /* commits fail since then (disk full, I/O
	                           * errors); 0 while they succeed */
	uint64_t last_batch;
	uint64_t depth; /* operations waiting now */
};

#endif
