/* ws/live_msg.h - a /live viewer's message, parsed: what it asks for, or
 * the error frame it gets. No lws and no engine (ws/live.c looks the
 * campaign up and acts), so the fuzz harness (tests/fuzz/fuzz_live_msg.c)
 * calls it directly. Any thread.
 *
 * A message is {"op":"subscribe"|"unsubscribe","channel":NAME} with an
 * optional "since":SEQ; NAME is "leaderboard", "day", "campaign:SLUG", or
 * a leaderboard of one category and/or one currency:
 *   leaderboard:category:C              (C: the rest of the name, whole)
 *   leaderboard:currency:XXX            (XXX: three capital letters)
 *   leaderboard:currency:XXX:category:C
 * The currency comes first so that a category may hold any character,
 * ':' included: after "category:" the whole rest is the category, as
 * stored (trimmed, validate_category), compared byte for byte.
 */
#ifndef TALLY_WS_LIVE_MSG_H
#define TALLY_WS_LIVE_MSG_H

#include "base/model.h"

#include <stddef.h>
#include <stdint.h>

enum live_msg_op { LIVE_MSG_SUBSCRIBE, LIVE_MSG_UNSUBSCRIBE };

enum live_msg_channel { LIVE_MSG_BOARD, LIVE_MSG_DAY, LIVE_MSG_CAMPAIGN, LIVE_MSG_BOARD_OF };

struct live_msg {
	enum live_msg_op op;
	enum live_msg_channel channel;
	char slug[TALLY_SLUG_SIZE]; /* LIVE_MSG_CAMPAIGN: a valid slug */
	/* LIVE_MSG_BOARD_OF: the category ("" for every campaign) and the
	 * currency ("" for the one the campaigns use); one is set. */
	char category[TALLY_CATEGORY_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	int has_since;   /* "since" was an integer (one past 64 bits is not) */
	long long since; /* its value */
	/* When the message is refused: the error frame's code and message,
	 * static text ready to sit inside a JSON string. */
	const char *err_code, *err_message;
};

/* Parse the message in[0..len). Returns 0 with out filled, or -EINVAL with
 * out->err_code ("bad_request", "channel_not_found", "campaign_not_found":
 * the slug cannot be a campaign's, "category_not_found": the category
 * cannot be one, or "currency_not_found": not a currency code) and
 * out->err_message set. */
int live_msg_parse(const char *in, size_t len, struct live_msg *out);

/* 1 when a subscription asked by m must start with a snapshot of a channel
 * whose subscribers are at state pub_seq (0: none published yet); 0 when
 * the viewer has that state already ("since" equal to a pub_seq > 0). */
int live_msg_needs_snapshot(const struct live_msg *m, uint64_t pub_seq);

#endif
