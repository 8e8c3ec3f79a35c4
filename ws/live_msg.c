/* ws/live_msg.c - a /live viewer's message, parsed (see live_msg.h). */
#include "ws/live_msg.h"
#include "base/err.h"
#include "core/validate.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static int refuse(struct live_msg *out, const char *code, const char *message)
{
	out->err_code = code;
	out->err_message = message;
	return -EINVAL;
}

/* leaderboard:category:C, leaderboard:currency:XXX[:category:C] (rest:
 * what follows "leaderboard:"). */
static int parse_board(const char *rest, struct live_msg *out)
{
	const char *category = NULL;

	if (!strncmp(rest, "currency:", 9)) {
		const char *code = rest + 9;

		if (strlen(code) < 3 || (code[3] && strncmp(code + 3, ":category:", 10)))
			return refuse(out, "channel_not_found",
			              "leaderboard channels are leaderboard:category:C, "
			              "leaderboard:currency:XXX and "
			              "leaderboard:currency:XXX:category:C");
		memcpy(out->currency, code, 3);
		out->currency[3] = '\0';
		if (!validate_currency(out->currency))
			return refuse(out, "currency_not_found",
			              "a currency is three capital letters such as USD");
		if (code[3])
			category = code + 13;
	} else if (!strncmp(rest, "category:", 9)) {
		category = rest + 9;
	} else {
		return refuse(out, "channel_not_found",
		              "leaderboard channels are leaderboard:category:C, "
		              "leaderboard:currency:XXX and leaderboard:currency:XXX:category:C");
	}
	/* As stored: valid, trimmed already, not empty. */
	if (category && (validate_category(category, strlen(category), out->category) ||
	                 !out->category[0] || strcmp(out->category, category)))
		return refuse(out, "category_not_found", "no campaign has this category");
	out->channel = LIVE_MSG_BOARD_OF;
	return 0;
}

static int parse_channel(const char *name, struct live_msg *out)
{
	const char *slug;

	if (!strcmp(name, "leaderboard")) {
		out->channel = LIVE_MSG_BOARD;
		return 0;
	}
	if (!strncmp(name, "leaderboard:", 12))
		return parse_board(name + 12, out);
	if (!strcmp(name, "day")) {
		out->channel = LIVE_MSG_DAY;
		return 0;
	}
	if (strncmp(name, "campaign:", 9))
		return refuse(out, "channel_not_found",
		              "channels are campaign:SLUG, leaderboard, leaderboard:category:C, "
		              "leaderboard:currency:XXX[:category:C] and day");
	slug = name + 9;
	if (!validate_slug(slug, strlen(slug)))
		return refuse(out, "campaign_not_found", "no campaign has this slug");
	out->channel = LIVE_MSG_CAMPAIGN;
	memcpy(out->slug, slug, strlen(slug) + 1);
	return 0;
}

int live_msg_parse(const char *in, size_t len, struct live_msg *out)
{
	json_error_t jerr;
	json_t *msg, *since = NULL;
	const char *op = NULL, *channel = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	msg = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr);
	/* A number past 64 bits (a since nobody was ever sent) is read as
	 * a real: the message stands, and the since is no seq. */
	if (!msg && json_error_code(&jerr) == json_error_numeric_overflow)
		msg = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!msg ||
	    json_unpack(msg, "{s:s, s:s, s?o}", "op", &op, "channel", &channel, "since", &since)) {
		json_decref(msg);
		return refuse(
		    out, "bad_request",
		    "send {\\\"op\\\":\\\"subscribe\\\",\\\"channel\\\":\\\"campaign:SLUG\\\"}");
	}
	if (!strcmp(op, "subscribe"))
		out->op = LIVE_MSG_SUBSCRIBE;
	else if (!strcmp(op, "unsubscribe"))
		out->op = LIVE_MSG_UNSUBSCRIBE;
	else
		rc = refuse(out, "bad_request", "op must be subscribe or unsubscribe");
	if (!rc)
		rc = parse_channel(channel, out);
	out->has_since = json_is_integer(since);
	out->since = out->has_since ? json_integer_value(since) : 0;
	json_decref(msg);
	return rc;
}

int live_msg_needs_snapshot(const struct live_msg *m, uint64_t pub_seq)
{
	/* A since that names the state the channel is at skips the
	 * snapshot; any other (older, newer, negative, not an integer)
	 * cannot be trusted to show what the viewer has: it gets one. */
	return !(pub_seq && m->has_since && m->since >= 0 && (uint64_t)m->since == pub_seq);
}
