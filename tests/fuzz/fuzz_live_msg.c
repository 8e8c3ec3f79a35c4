/* tests/fuzz/fuzz_live_msg.c - libFuzzer harness for a /live viewer's
 * message (ws/live_msg.c: what ws/live.c's receive callback parses before
 * it looks a campaign up).
 *
 * Input: the message's bytes (live.c closes anything over 1024 bytes
 * before parsing). What must hold:
 * - the answer is the one the contract gives, read independently here
 *   with jansson: a subscribe or unsubscribe of "leaderboard", "day" or
 *   "campaign:SLUG" with a valid slug is taken, with its "since" when that
 *   is an integer (a number past 64 bits is taken as no integer, and the
 *   message stands); anything else gets bad_request, channel_not_found or
 *   campaign_not_found;
 * - the error frame live.c builds from a refusal is valid JSON that fits
 *   its 200-byte buffer and carries that code;
 * - a subscription starts with a snapshot unless "since" is the seq the
 *   channel is at (one was published: it is not 0).
 *   make fuzz FUZZ=live_msg
 */
#include "ws/live_msg.h"
#include "core/validate.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The category and currency expected_error found in a board's channel
 * name (NULL: none). */
static const char *board_cat, *board_cur;

/* The error frame as live.c's set_error writes it. */
static void check_frame(const struct live_msg *m)
{
	char frame[200];
	int n = snprintf(frame, sizeof(frame),
	                 "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}", m->err_code,
	                 m->err_message);
	json_t *j;
	const char *code = NULL, *msg = NULL;

	if (n < 0 || (size_t)n >= sizeof(frame))
		abort();
	j = json_loads(frame, JSON_REJECT_DUPLICATES, NULL);
	if (!j || json_unpack(j, "{s:s,s:s}", "code", &code, "message", &msg) ||
	    strcmp(code, m->err_code) || !msg[0])
		abort();
	json_decref(j);
}

/* A board's channel after "leaderboard:": category:C, currency:XXX or
 * currency:XXX:category:C, C a category as stored (valid, trimmed, not
 * empty) and XXX three capital letters. */
static const char *board_error(const char *rest, const char **cat, const char **cur)
{
	char norm[TALLY_CATEGORY_SIZE];
	const char *c = NULL;

	*cat = *cur = NULL;
	if (!strncmp(rest, "currency:", 9)) {
		const char *code = rest + 9;
		char three[4] = "";

		if (strlen(code) < 3 || (code[3] && strncmp(code + 3, ":category:", 10)))
			return "channel_not_found";
		memcpy(three, code, 3);
		if (!validate_currency(three))
			return "currency_not_found";
		*cur = code;
		c = code[3] ? code + 13 : NULL;
	} else if (!strncmp(rest, "category:", 9)) {
		c = rest + 9;
	} else {
		return "channel_not_found";
	}
	if (c && (validate_category(c, strlen(c), norm) || !norm[0] || strcmp(norm, c)))
		return "category_not_found";
	*cat = c;
	return NULL;
}

static const char *expected_error(json_t *root, const char **op, const char **ch)
{
	json_t *o = json_object_get(root, "op"), *c = json_object_get(root, "channel");

	if (!json_is_object(root) || !json_is_string(o) || !json_is_string(c))
		return "bad_request";
	*op = json_string_value(o);
	*ch = json_string_value(c);
	if (strcmp(*op, "subscribe") && strcmp(*op, "unsubscribe"))
		return "bad_request";
	if (!strcmp(*ch, "leaderboard") || !strcmp(*ch, "day"))
		return NULL;
	if (!strncmp(*ch, "leaderboard:", 12))
		return board_error(*ch + 12, &board_cat, &board_cur);
	if (strncmp(*ch, "campaign:", 9))
		return "channel_not_found";
	if (!validate_slug(*ch + 9, strlen(*ch + 9)))
		return "campaign_not_found";
	return NULL;
}

static void check_snapshot(const struct live_msg *m)
{
	const uint64_t seqs[] = {0,
	                         1,
	                         2,
	                         (uint64_t)m->since,
	                         (uint64_t)m->since + 1,
	                         (uint64_t)m->since - 1,
	                         UINT64_C(1) << 63,
	                         UINT64_MAX};

	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		int want =
		    !(seqs[i] && m->has_since && m->since >= 0 && (uint64_t)m->since == seqs[i]);

		if (live_msg_needs_snapshot(m, seqs[i]) != want)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct live_msg m;
	int rc = live_msg_parse((const char *)data, size, &m);
	json_error_t jerr;
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	const char *op = NULL, *ch = NULL, *want;

	board_cat = board_cur = NULL;
	if (!root && json_error_code(&jerr) == json_error_numeric_overflow)
		root = json_loadb((const char *)data, size,
		                  JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
	want = root ? expected_error(root, &op, &ch) : "bad_request";

	if (want) {
		if (rc != -EINVAL || !m.err_code || !m.err_message || strcmp(m.err_code, want))
			abort();
		check_frame(&m);
	} else {
		json_t *since = json_object_get(root, "since");

		if (rc || m.err_code || m.err_message)
			abort();
		if (m.op != (strcmp(op, "subscribe") ? LIVE_MSG_UNSUBSCRIBE : LIVE_MSG_SUBSCRIBE))
			abort();
		if (!strcmp(ch, "leaderboard") ? m.channel != LIVE_MSG_BOARD || m.slug[0]
		    : !strcmp(ch, "day")       ? m.channel != LIVE_MSG_DAY || m.slug[0]
		    : !strncmp(ch, "leaderboard:", 12)
		        ? m.channel != LIVE_MSG_BOARD_OF || m.slug[0] ||
		              strcmp(m.category, board_cat ? board_cat : "") ||
		              strncmp(m.currency, board_cur ? board_cur : "", 3) ||
		              strlen(m.currency) != (board_cur ? 3u : 0u)
		        : m.channel != LIVE_MSG_CAMPAIGN || strcmp(m.slug, ch + 9))
			abort();
		if (m.has_since != json_is_integer(since) ||
		    (m.has_since && m.since != json_integer_value(since)) ||
		    (!m.has_since && m.since))
			abort();
		check_snapshot(&m);
	}
	json_decref(root);
	return 0;
}
