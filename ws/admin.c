/* ws/admin.c - the JSON of the staff listings and answers: queues, jobs,
 * the audit trail, staff tokens, and the answers of queue, job, refund and
 * token actions. The engine hands over plain structs; their JSON shape is
 * decided here. */
#include "ws/internal.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int admin_queue_json(struct buf *out, enum job_queue q, const struct job_queue_info *i)
{
	return buf_printf(out,
	                  "{\"name\":\"%s\",\"paused\":%s,\"ready\":%lld,\"running\":%lld,"
	                  "\"scheduled\":%lld,\"dead\":%lld,\"held\":%lld,\"done\":%lld,"
	                  "\"failed\":%lld,\"done_per_s\":%.1f,\"latency_ms_p50\":%.2f,"
	                  "\"latency_ms_p99\":%.2f,\"workers\":%d,\"inflight\":%d,"
	                  "\"declined\":%lld}",
	                  job_queue_names[q], i->paused ? "true" : "false", (long long)i->ready,
	                  (long long)i->running, (long long)i->scheduled, (long long)i->dead,
	                  (long long)i->held, (long long)i->done_total, (long long)i->failed_total,
	                  i->done_per_s, i->latency_ms_p50, i->latency_ms_p99, i->workers,
	                  i->inflight, (long long)i->declined);
}

int admin_queues_json(struct engine *e, struct buf *out)
{
	int rc = buf_puts(out, "{\"queues\":[");

	for (int q = 0; q < JOB_QUEUES; q++) {
		struct job_queue_info i;

		engine_queue_info(e, (enum job_queue)q, &i);
		rc |= q ? buf_puts(out, ",") : 0;
		rc |= admin_queue_json(out, (enum job_queue)q, &i);
	}
	rc |= buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}

struct list_ctx {
	struct buf *out;
	int n, rc;
};

/* A job's failed attempts, oldest first: [{"attempt","at","ms","error"}]. */
static int history_json(struct buf *out, const struct job_history *h)
{
	int rc = buf_puts(out, "[");

	for (int i = 0; i < h->n; i++) {
		const struct job_attempt *a = &h->a[i];
		char ts[32];

		rc |= buf_printf(
		    out, "%s{\"attempt\":%d,\"at\":\"%s\",\"ms\":%lld,\"error\":", i ? "," : "",
		    a->attempt, util_rfc3339(a->at_ms, ts, sizeof(ts)), (long long)a->took_ms);
		rc |= buf_json_string(out, a->error);
		rc |= buf_puts(out, "}");
	}
	return rc | buf_puts(out, "]");
}

static int job_json(struct buf *out, const struct job_record *j, const struct job_history *h,
                    int first)
{
	const char *kind = job_kind_names[j->kind];
	char ts[32], ts2[32];
	int rc = buf_printf(out,
	                    "%s{\"id\":%lld,\"queue\":\"%s\",\"kind\":\"%s\",\"state\":\"%s\","
	                    "\"attempts\":%d,\"next_run_at\":\"%s\",\"created_at\":\"%s\","
	                    "\"last_error\":",
	                    first ? "" : ",", (long long)j->id, job_queue_names[j->queue], kind,
	                    job_state_names[j->state], j->attempts,
	                    util_rfc3339(j->next_run_at, ts, sizeof(ts)),
	                    util_rfc3339(j->created_at, ts2, sizeof(ts2)));

	rc |= j->last_error[0] ? buf_json_string(out, j->last_error) : buf_puts(out, "null");
	rc |= buf_puts(out, ",\"attempt_history\":");
	rc |= history_json(out, h);
	rc |=
	    buf_printf(out, ",\"payload\":{\"donation_id\":\"dn_%lld\"", (long long)j->donation_id);
	if (j->url[0]) {
		rc |= buf_printf(
		    out, ",\"event_id\":\"evt_%lld_%s\",\"url\":", (long long)j->donation_id,
		    strchr(kind, '.') ? strchr(kind, '.') + 1 : kind);
		rc |= buf_json_string(out, j->url);
	}
	return rc | buf_puts(out, "}}");
}

/* The listing's jobs, copied: their histories are read after the walk
 * (done jobs are walked under the read-connection lock). */
struct jobs_got {
	struct job_record *v;
	int n, cap;
};

static int keep_job(void *ud, const struct job_record *j)
{
	struct jobs_got *g = ud;

	if (g->n < g->cap)
		g->v[g->n++] = *j;
	return 0;
}

int admin_jobs_json(struct engine *e, enum job_queue q, enum job_state st, int limit,
                    struct buf *out)
{
	struct jobs_got g = {calloc(limit > 0 ? (size_t)limit : 1, sizeof(*g.v)), 0, limit};
	struct job_history *h = NULL;
	int64_t *ids = NULL;
	int rc = g.v ? engine_jobs_each(e, q, st, limit, keep_job, &g) : -ENOMEM;

	if (!rc && g.n) {
		ids = malloc((size_t)g.n * sizeof(*ids));
		h = malloc((size_t)g.n * sizeof(*h));
		if (!ids || !h)
			rc = -ENOMEM;
		for (int i = 0; !rc && i < g.n; i++)
			ids[i] = g.v[i].id;
		if (!rc)
			rc = engine_job_histories(e, ids, (size_t)g.n, h);
	}
	if (!rc) {
		rc = buf_puts(out, "{\"jobs\":[");
		for (int i = 0; i < g.n && !rc; i++)
			rc = job_json(out, &g.v[i], &h[i], i == 0);
		rc = rc || buf_puts(out, "]}") ? -ENOMEM : 0;
	}
	free(ids);
	free(h);
	free(g.v);
	return rc;
}

static int audit_cb(void *ud, const struct audit_entry *a)
{
	struct list_ctx *lc = ud;
	char ts[32];

	lc->rc |= buf_printf(lc->out, "%s{\"id\":%lld,\"at\":\"%s\",\"actor\":", lc->n++ ? "," : "",
	                     (long long)a->id, util_rfc3339(a->at, ts, sizeof(ts)));
	lc->rc |= buf_json_string(lc->out, a->actor);
	lc->rc |= buf_puts(lc->out, ",\"action\":");
	lc->rc |= buf_json_string(lc->out, a->action);
	lc->rc |= buf_puts(lc->out, ",\"target\":");
	lc->rc |= buf_json_string(lc->out, a->target);
	lc->rc |= buf_puts(lc->out, ",\"detail\":");
	lc->rc |= buf_json_string(lc->out, a->detail);
	lc->rc |= buf_puts(lc->out, "}");
	return 0;
}

int admin_audit_json(struct engine *e, int limit, struct buf *out)
{
	struct list_ctx lc = {out, 0, buf_puts(out, "{\"entries\":[")};
	int rc = engine_audit_each(e, limit, audit_cb, &lc);

	if (rc)
		return rc;
	lc.rc |= buf_puts(out, "]}");
	return lc.rc ? -ENOMEM : 0;
}

/* A time, or null for 0. */
static int put_time(struct buf *out, int64_t ms)
{
	char ts[32];

	return ms ? buf_printf(out, "\"%s\"", util_rfc3339(ms, ts, sizeof(ts)))
	          : buf_puts(out, "null");
}

int admin_token_json(struct buf *out, const struct staff_token *t, const char *secret)
{
	int rc = buf_puts(out, "{\"name\":");

	rc |= buf_json_string(out, t->name);
	rc |= buf_printf(out, ",\"role\":\"%s\",\"created_at\":", staff_role_names[t->role]);
	rc |= put_time(out, t->created_at);
	rc |= buf_puts(out, ",\"revoked_at\":");
	rc |= put_time(out, t->revoked_at);
	rc |= buf_printf(out, ",\"startup\":%s", t->startup ? "true" : "false");
	if (secret) {
		rc |= buf_puts(out, ",\"secret\":");
		rc |= buf_json_string(out, secret);
	}
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
}

int admin_tokens_json(struct engine *e, struct buf *out)
{
	struct staff_token *v;
	long n = engine_tokens_list(e, &v);
	int rc;

	if (n < 0)
		return (int)n;
	rc = buf_puts(out, "{\"tokens\":[");
	for (long i = 0; i < n && !rc; i++)
		rc = (i ? buf_puts(out, ",") : 0) || admin_token_json(out, &v[i], NULL);
	rc |= buf_puts(out, "]}");
	free(v);
	return rc ? -ENOMEM : 0;
}

int admin_answer_json(const struct engine_answer *a, struct buf *out)
{
	int rc = 0;

	switch (a->kind) {
	case ANSWER_QUEUE:
		rc = admin_queue_json(out, a->job_queue, a->queue);
		if (!rc && a->retried >= 0 && out->len) {
			out->len--; /* reopen the object */
			rc = buf_printf(out, ",\"retried\":%lld}", (long long)a->retried);
		}
		break;
	case ANSWER_JOB:
		rc = buf_printf(out, "{\"id\":%lld,\"queue\":\"%s\",\"state\":\"%s\"}",
		                (long long)a->job_id, job_queue_names[a->job_queue],
		                a->job_state == JOB_GONE ? "discarded"
		                                         : job_state_names[a->job_state]);
		break;
	case ANSWER_REFUND:
		rc = buf_printf(out,
		                "{\"id\":\"dn_%lld\",\"status\":\"succeeded\","
		                "\"refund\":\"requested\",\"job\":%lld}",
		                (long long)a->donation_id, (long long)a->job_id);
		break;
	case ANSWER_TOKEN:
		rc = admin_token_json(out, a->token, a->secret);
		break;
	case ANSWER_PLAIN:
		rc = a->len ? buf_append(out, a->body, a->len) : buf_puts(out, "{}");
		break;
	}
	return rc ? -ENOMEM : 0;
}
