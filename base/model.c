/* base/model.c - the names of the model's enums (see model.h). */
#include "base/model.h"

#include <string.h>

const char *const campaign_status_names[CAMPAIGN_STATUSES] = {"active", "paused", "closed"};

const char *const pool_status_names[POOL_STATUSES] = {"active", "paused", "depleted"};

const char *const challenge_kind_names[CHALLENGE_KINDS] = {"amount", "donors", "gifts"};

const char *const job_queue_names[JOB_QUEUES] = {"payments", "receipts", "webhooks"};
const char *const job_kind_names[JOB_KINDS] = {
    "capture", "refund", "receipt", "donation.succeeded", "donation.failed", "donation.refunded"};
const char *const job_state_names[JOB_GONE + 1] = {"ready", "running", "scheduled", "done",
                                                   "dead",  "held",    "gone"};
const enum job_queue job_kind_queue[JOB_KINDS] = {JOB_PAYMENTS, JOB_PAYMENTS, JOB_RECEIPTS,
                                                  JOB_WEBHOOKS, JOB_WEBHOOKS, JOB_WEBHOOKS};

const char *const day_phase_names[DAY_PHASES] = {"none", "before", "early", "open", "closed"};

const char *const staff_role_names[STAFF_ROLES] = {"public", "viewer", "operator", "admin"};

const double commit_batch_size_bounds[COMMIT_HIST_BUCKETS] = {1,   2,   5,   10,   20,   50,
                                                              100, 200, 500, 1000, 2000, 5000};
const double commit_seconds_bounds[COMMIT_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                           0.05,   0.1,   0.25,  0.5,   1.0,  2.5};

const struct effect_rule effect_rules[EFFECT_OFFLINE + 1] = {
    [EFFECT_NONE] = {NULL, NULL, 0, 0, 0},
    [EFFECT_SUCCEEDED] = {"pending", "succeeded", -1, 1, 1},
    [EFFECT_FAILED] = {"pending", "failed", -1, 0, 1},
    [EFFECT_REFUNDED] = {"succeeded", "refunded", 0, -1, 1},
    [EFFECT_RECEIPT] = {NULL, NULL, 0, 0, 0},
    [EFFECT_REF] = {"pending", NULL, 0, 0, 0},
    [EFFECT_REFUND_DROPPED] = {"succeeded", NULL, 0, 0, 0},
    /* Inserted succeeded: never pending, counted as a succeeded gift. */
    [EFFECT_OFFLINE] = {NULL, "succeeded", 0, 1, 1},
};

const char *const gift_method_names[GIFT_METHODS] = {"cheque", "cash", "daf", "other"};

static int lookup(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

int campaign_status_by_name(const char *s)
{
	return lookup(campaign_status_names, CAMPAIGN_STATUSES, s);
}

int pool_status_by_name(const char *s)
{
	return lookup(pool_status_names, POOL_STATUSES, s);
}

int challenge_kind_by_name(const char *s)
{
	return lookup(challenge_kind_names, CHALLENGE_KINDS, s);
}

int job_queue_by_name(const char *name)
{
	return lookup(job_queue_names, JOB_QUEUES, name);
}

int job_kind_by_name(const char *name)
{
	return lookup(job_kind_names, JOB_KINDS, name);
}

int job_state_by_name(const char *name)
{
	return lookup(job_state_names, JOB_HELD, name);
}

int gift_method_by_name(const char *s)
{
	return lookup(gift_method_names, GIFT_METHODS, s);
}

int staff_role_by_name(const char *s)
{
	int r = lookup(staff_role_names, STAFF_ROLES, s);

	return r == STAFF_PUBLIC ? -1 : r;
}
