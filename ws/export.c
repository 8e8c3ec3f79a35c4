/* ws/export.c - GET /api/v1/admin/donations.csv: the donations as a CSV
 * file for reconciliation, streamed.
 *
 * DESIGN: the handler checks every query parameter (anything unknown,
 * repeated or malformed is a 400 naming it, an unknown campaign a 404,
 * before a byte of CSV), opens the export (engine_export_open: a read-only
 * SQLite connection of this thread's) and asks for WRITEABLE. Each
 * WRITEABLE then reads pages of the export (db/export.c: at most
 * DB_EXPORT_PAGE rows among DB_EXPORT_SPAN ids each, no read transaction
 * left open between them) until it has rows or EXPORT_SPANS_PER_WRITE pages
 * went by, and writes them as one HTTP/1.1 chunk with one lws_write; lws
 * calls back once the socket takes more. So the service thread is never
 * held longer than a few small reads, and memory holds one page's CSV
 * whatever the export's size: a client that reads slowly is simply called
 * back less often. The chunked framing is ours (lws 4.1 only chunks its
 * own compressed or interpreted files): the body ends with the zero
 * chunk, so a client tells a complete file from a cut one; a failure
 * mid-stream closes the connection without it. An HTTP/1.0 client gets
 * the file ended by the connection's close. A client that goes away, or
 * takes nothing for EXPORT_STALL_S, is closed by lws and export_free
 * releases everything. At most EXPORT_MAX_OPEN exports stream at once
 * (503 export_busy with Retry-After beyond): each holds a SQLite
 * connection (its page cache, a descriptor) and a share of the service
 * thread that donors' requests need on a giving day, and reconciliation
 * is a staff task that can wait a few seconds.
 */
#include "ws/internal.h"
#include "ws/csv.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_MAX_OPEN 4
#define EXPORT_RETRY_S 5
#define EXPORT_STALL_S 30
#define EXPORT_SPANS_PER_WRITE 8
/* Room before a chunk's data for the answer's head and the chunk's size
 * line; after it for the CRLF and the last chunk. */
#define EXPORT_PRE (LWS_PRE + HTTP_HDR_ROOM + 16)

struct export_stream {
	struct engine_export *x;
	struct buf out;                    /* EXPORT_PRE, then the chunk's CSV */
	unsigned char head[HTTP_HDR_ROOM]; /* the answer's head, until it is sent */
	size_t head_len;                   /* 0 once sent */
	int chunked;                       /* HTTP/1.1: chunked; 1.0: ended by close */
	int head_only;                     /* HEAD: the head and nothing else */
	int header_row;                    /* the CSV's first line is still to write */
	int closing;                       /* all written; close the connection once
	                                    * lws has sent what it buffered */
	uint64_t rows;
};

/* ---- the columns ---- */

enum col_kind { COL_DONATION_ID, COL_TIME, COL_INT, COL_BOOL, COL_TEXT };

static const struct column {
	const char *name;
	enum col_kind kind;
	size_t off; /* in struct export_row */
} columns[] = {
    {"id", COL_DONATION_ID, offsetof(struct export_row, id)},
    {"created_at", COL_TIME, offsetof(struct export_row, created_at)},
    {"campaign", COL_TEXT, offsetof(struct export_row, campaign)},
    {"status", COL_TEXT, offsetof(struct export_row, status)},
    {"source", COL_TEXT, offsetof(struct export_row, source)},
    {"method", COL_TEXT, offsetof(struct export_row, method)},
    {"currency", COL_TEXT, offsetof(struct export_row, currency)},
    {"amount_cents", COL_INT, offsetof(struct export_row, amount_cents)},
    {"fee_cents", COL_INT, offsetof(struct export_row, fee_cents)},
    {"matched_cents", COL_INT, offsetof(struct export_row, matched_cents)},
    {"bonus_cents", COL_INT, offsetof(struct export_row, bonus_cents)},
    {"pool", COL_TEXT, offsetof(struct export_row, pool)},
    {"donor_name", COL_TEXT, offsetof(struct export_row, donor_name)},
    {"donor_email", COL_TEXT, offsetof(struct export_row, donor_email)},
    {"anonymous", COL_BOOL, offsetof(struct export_row, anonymous)},
    {"message", COL_TEXT, offsetof(struct export_row, message)},
    {"note", COL_TEXT, offsetof(struct export_row, note)},
    {"received_at", COL_TIME, offsetof(struct export_row, received_at)},
    {"reason", COL_TEXT, offsetof(struct export_row, reason)},
    {"processor_ref", COL_TEXT, offsetof(struct export_row, processor_ref)},
};

static int header_row(struct buf *out)
{
	int rc = 0;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(columns); i++)
		rc |= (i ? buf_puts(out, ",") : 0) | buf_puts(out, columns[i].name);
	return rc | buf_puts(out, CSV_EOL) ? -ENOMEM : 0;
}

static int cell(struct buf *out, const struct column *c, const struct export_row *r)
{
	const char *at = (const char *)r + c->off;
	int64_t v;
	char ts[32];

	switch (c->kind) {
	case COL_DONATION_ID:
		memcpy(&v, at, sizeof(v));
		return buf_printf(out, "dn_%lld", (long long)v) ? -ENOMEM : 0;
	case COL_TIME: /* ours, never a formula: 2026-12-01T10:00:00.000Z, or empty */
		memcpy(&v, at, sizeof(v));
		return v ? buf_puts(out, util_rfc3339(v, ts, sizeof(ts))) ? -ENOMEM : 0 : 0;
	case COL_INT:
		memcpy(&v, at, sizeof(v));
		return csv_int(out, v);
	case COL_BOOL:
		return buf_puts(out, *(const int *)(const void *)at ? "true" : "false") ? -ENOMEM
		                                                                        : 0;
	case COL_TEXT:
		return csv_text(out, *(const char *const *)(const void *)at);
	}
	return -EINVAL;
}

static int data_row(struct buf *out, const struct export_row *r)
{
	int rc = 0;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(columns) && !rc; i++)
		rc = (i ? buf_puts(out, ",") : 0) || cell(out, &columns[i], r) ? -ENOMEM : 0;
	return rc || buf_puts(out, CSV_EOL) ? -ENOMEM : 0;
}

/* ---- the query ---- */

static const char *const statuses[] = {"pending", "succeeded", "failed", "refunded"};
static const char *const sources[] = {"online", "offline"};

struct query {
	char campaign[TALLY_SLUG_SIZE];
	struct export_filter f;
};

/* A parameter's reader: 0, or an error text for its "fields" entry. */
typedef const char *(*param_fn)(const char *v, struct query *q);

static const char *one_of(const char *v, const char *const *names, size_t n, char *dst, size_t cap,
                          const char *err)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i])) {
			snprintf(dst, cap, "%s", v);
			return NULL;
		}
	return err;
}

static const char *p_campaign(const char *v, struct query *q)
{
	if (!validate_slug(v, strlen(v)))
		return "must be a campaign's slug";
	snprintf(q->campaign, sizeof(q->campaign), "%s", v);
	return NULL;
}

static const char *p_status(const char *v, struct query *q)
{
	return one_of(v, statuses, UTIL_ARRAY_LEN(statuses), q->f.status, sizeof(q->f.status),
	              "must be pending, succeeded, failed or refunded");
}

static const char *p_source(const char *v, struct query *q)
{
	return one_of(v, sources, UTIL_ARRAY_LEN(sources), q->f.source, sizeof(q->f.source),
	              "must be online or offline");
}

static const char *p_from(const char *v, struct query *q)
{
	q->f.has_from = 1;
	return util_parse_rfc3339(v, &q->f.from) ? "must be an RFC 3339 time such as "
	                                           "2026-12-01T00:00:00Z"
	                                         : NULL;
}

static const char *p_to(const char *v, struct query *q)
{
	q->f.has_to = 1;
	return util_parse_rfc3339(v, &q->f.to) ? "must be an RFC 3339 time such as "
	                                         "2026-12-02T00:00:00Z"
	                                       : NULL;
}

static const struct param {
	const char *name;
	param_fn read;
} params[] = {
    {"campaign", p_campaign}, {"status", p_status}, {"source", p_source},
    {"from", p_from},         {"to", p_to},
};

/* 400 invalid_query naming the parameter. Returns the handler's result. */
static int bad_param(struct http_pss *p, const char *name, const char *why)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "%.40s is not a filter of this export", name);
	return http_error(p, 400, "invalid_query", why ? "a filter's value is invalid" : msg,
	                  json_pack("{s:s}", name, why ? why : "unknown parameter"), 0);
}

/* Read every parameter of the query into q. Returns 0; 1 after answering
 * 400; -1 when even that failed. */
static int read_query(struct http_pss *p, struct query *q)
{
	unsigned seen = 0;

	for (const char *a = p->query; *a; a += strlen(a) + 1) {
		size_t nlen = strcspn(a, "=");
		char name[48];
		size_t i;
		const char *why;

		/* The name as the error shows it: 40 bytes at most, printable
		 * ASCII ('?' for any other byte: the JSON must be UTF-8). */
		snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), a);
		for (char *c = name; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?';
		for (i = 0; i < UTIL_ARRAY_LEN(params); i++)
			if (strlen(params[i].name) == nlen && !strncmp(a, params[i].name, nlen))
				break;
		if (i == UTIL_ARRAY_LEN(params))
			why = NULL;
		else if (seen & (1u << i))
			why = "must be given once";
		else if (!a[nlen] || !a[nlen + 1])
			why = "must have a value";
		else
			why = params[i].read(a + nlen + 1, q);
		seen |= 1u << (i < UTIL_ARRAY_LEN(params) ? i : 31);
		if (i == UTIL_ARRAY_LEN(params) || why)
			return bad_param(p, name, why) ? -1 : 1;
	}
	if (q->f.has_from && q->f.has_to && q->f.from >= q->f.to)
		return bad_param(p, "to", "must be after from") ? -1 : 1;
	return 0;
}

/* ---- the stream ---- */

static void stream_free(struct server *s, struct export_stream *st)
{
	if (!st)
		return;
	engine_export_close(st->x);
	buf_fini(&st->out);
	free(st);
	s->exports_open--;
}

void export_free(struct server *s, struct http_pss *p)
{
	stream_free(s, p->export);
	p->export = NULL;
}

static int http11(struct lws *wsi)
{
	char v[16];

	return lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP) == 8 && !strcmp(v, "HTTP/1.1");
}

int export_handler(struct server *s, struct http_pss *p)
{
	static const struct http_header h[] = {
	    {"content-disposition:", "attachment; filename=\"donations.csv\""},
	    {"cache-control:", "no-store"},
	};
	struct query q = {0};
	struct export_stream *st;
	int rc;

	if ((rc = read_query(p, &q)))
		return rc < 0 ? -1 : 0;
	if (q.campaign[0] &&
	    (q.f.campaign_id = engine_campaign_id(s->engine, q.campaign, strlen(q.campaign))) < 0)
		return http_error(p, 404, "campaign_not_found", "no campaign has this slug",
		                  json_pack("{s:s}", "campaign", "no campaign has this slug"), 0);
	if (s->stopping)
		return http_engine_error(p, TALLY_ESHUTDOWN);
	if (s->exports_open >= EXPORT_MAX_OPEN) {
		return http_error(p, 503, "export_busy",
		                  "the most exports that may run at once are running; retry later",
		                  NULL, EXPORT_RETRY_S);
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	s->exports_open++;
	st->chunked = http11(p->wsi);
	st->head_only = p->method == M_HEAD;
	st->header_row = 1;
	if (!st->chunked)
		p->close_after = 1; /* the body ends with the connection */
	rc = st->head_only ? 0 : engine_export_open(s->engine, &q.f, &st->x);
	if (rc) {
		stream_free(s, st);
		return rc == -ENOMEM ? -1 : http_engine_error(p, rc);
	}
	st->head_len = http_stream_head(p, 200, "text/csv; charset=utf-8", h,
	                                (int)UTIL_ARRAY_LEN(h), st->chunked, st->head);
	if (!st->head_len) {
		stream_free(s, st);
		return -1;
	}
	p->export = st;
	/* Not with the reading paused as an async answer is: lws then calls
	 * no WRITEABLE. */
	return lws_callback_on_writable(p->wsi) < 0 ? -1 : 0;
}

/* Read pages into st->out after EXPORT_PRE until some rows came, the
 * export ended or EXPORT_SPANS_PER_WRITE pages went by. Returns 0 or an
 * engine error. */
static int fill(struct export_stream *st)
{
	struct export_row r;
	int got, rc = 0;

	if (st->header_row && (rc = header_row(&st->out)))
		return rc;
	st->header_row = 0;
	if (st->head_only)
		return 0;
	for (int n = 0; n < EXPORT_SPANS_PER_WRITE && !engine_export_finished(st->x); n++) {
		while (!(rc = engine_export_next(st->x, &r, &got)) && got) {
			if ((rc = data_row(&st->out, &r)))
				return rc;
			st->rows++;
		}
		if (rc)
			return rc;
		if (st->out.len > EXPORT_PRE)
			break;
	}
	return 0;
}

int export_writeable(struct server *s, struct http_pss *p)
{
	struct export_stream *st = p->export;
	size_t len, start;
	char size[20];
	int rc, final, n;

	if (st->closing) {
		export_free(s, p);
		return -1; /* lws calls back only once its buffered bytes are out */
	}
	st->out.len = 0;
	if (buf_reserve(&st->out, EXPORT_PRE + 4096))
		return -1;
	st->out.len = EXPORT_PRE;
	if ((rc = fill(st))) {
		log_msg(LOG_ERROR, "export.failed",
		        "a donations export stopped after %llu rows: %s",
		        (unsigned long long)st->rows, tally_strerror(rc));
		return -1; /* no last chunk: the client sees the file is cut */
	}
	final = st->head_only || engine_export_finished(st->x);
	if (st->head_only)
		st->out.len = EXPORT_PRE; /* HEAD: the head alone */
	len = st->out.len - EXPORT_PRE;
	start = EXPORT_PRE;
	if (st->chunked && !st->head_only) {
		if (len) {
			n = snprintf(size, sizeof(size), "%zx\r\n", len);
			start -= (size_t)n;
			memcpy(st->out.p + start, size, (size_t)n);
		}
		if ((len && buf_puts(&st->out, "\r\n")) ||
		    (final && buf_puts(&st->out, "0\r\n\r\n")))
			return -1;
	}
	if (st->head_len) {
		start -= st->head_len;
		memcpy(st->out.p + start, st->head, st->head_len);
		st->head_len = 0;
	}
	len = st->out.len - start;
	if (len && lws_write(p->wsi, (unsigned char *)st->out.p + start, len,
	                     final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)len)
		return -1;
	if (!final) {
		/* Drop a client that takes nothing for a while: it holds a slot. */
		lws_set_timeout(p->wsi, PENDING_TIMEOUT_HTTP_CONTENT, EXPORT_STALL_S);
		return lws_callback_on_writable(p->wsi) < 0 ? -1 : 0;
	}
	if (!st->chunked || p->close_after) {
		/* Close once lws has sent what it buffered (HTTP/1.0: the
		 * close ends the body). */
		st->closing = 1;
		return lws_callback_on_writable(p->wsi) < 0 ? -1 : 0;
	}
	lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
	export_free(s, p);
	/* lws defers this until what it buffered is out. */
	return lws_http_transaction_completed(p->wsi) ? -1 : 0;
}
