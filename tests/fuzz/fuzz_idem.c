/* tests/fuzz/fuzz_idem.c - libFuzzer harness for the idempotency keys kept
 * in memory (core/idem.c): begin, finish and abort with arbitrary keys,
 * fingerprints, bodies and clock steps, checked against a plain model.
 *
 * Input: one byte choosing the table (its cap and window), then up to
 * eight keys (a length byte and that many bytes each; a key ends at a NUL,
 * as a C string does), then operations of four bytes each (what, which
 * key, fingerprint, clock step or body length) with a body after a finish.
 * The model is a list in age order; what must hold after every operation:
 * - begin answers what the model says: new, in flight (same fingerprint,
 *   not finished), reused (another fingerprint), or a replay that appends
 *   exactly the body stored by the last finish, after what the buffer held;
 * - an entry in flight is never forgotten but by abort; a finished one
 *   goes only oldest first, once past the window or over the cap;
 * - idem_count is the model's count, and every table is empty again once
 *   its keys are aborted (so one run never leaks into the next).
 *   make fuzz FUZZ=idem
 */
#include "core/idem.h"
#include "base/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEYS 8
#define MODEL_MAX 256
#define BODY_MAX 700 /* past the 320 bytes kept inline */

struct entry {
	const char *key;
	uint64_t fp;
	int64_t at_ms;
	int done;
	size_t body_len;
	char body[BODY_MAX];
};

struct model {
	struct entry e[MODEL_MAX]; /* oldest first */
	size_t n, cap;
	int64_t window_ms;
};

static struct idem_table *tables[6];
static const struct {
	size_t cap;
	int64_t window_ms;
} configs[6] = {{1, 1000}, {3, 0}, {3, 50}, {8, 200}, {64, 1000000}, {200000, 5}};

static struct entry *find(struct model *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->e[i].key, key))
			return &m->e[i];
	return NULL;
}

static void drop(struct model *m, struct entry *x)
{
	size_t i = (size_t)(x - m->e);

	memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(m->e[0]));
	m->n--;
}

/* As documented: from the oldest, finished entries go while the table is
 * over its cap or they are older than the window; in-flight ones stay. */
static void prune(struct model *m, int64_t now_ms)
{
	size_t i = 0;

	while (i < m->n) {
		if (m->n <= m->cap && m->e[i].at_ms >= now_ms - m->window_ms)
			break;
		if (m->e[i].done)
			drop(m, &m->e[i]);
		else
			i++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;
	char keys[KEYS][256];
	size_t nkeys = 0, pos = 1;
	int64_t now = INT64_C(1700000000000);
	struct idem_table *t;
	int which;

	if (size < 2)
		return 0;
	which = data[0] % 6;
	if (!tables[which] &&
	    idem_new(configs[which].cap, configs[which].window_ms, &tables[which]))
		abort();
	t = tables[which];
	m.n = 0;
	m.cap = configs[which].cap;
	m.window_ms = configs[which].window_ms;

	/* The keys. */
	while (nkeys < KEYS && pos < size && data[pos] != 0xff) {
		size_t len = data[pos++] % 64;

		if (len > size - pos)
			len = size - pos;
		memcpy(keys[nkeys], data + pos, len);
		keys[nkeys][len] = '\0';
		nkeys++;
		pos += len;
	}
	pos++;
	if (!nkeys)
		return 0;

	/* The operations. */
	while (pos + 4 <= size) {
		uint8_t op = data[pos] % 4;
		const char *key = keys[data[pos + 1] % nkeys];
		uint64_t fp = data[pos + 2] % 3;
		uint8_t arg = data[pos + 3];
		struct entry *x;

		pos += 4;
		if (op == 0) { /* begin */
			struct buf replay = {0};
			enum idem_result r = (enum idem_result) - 1;

			if (buf_puts(&replay, "prefix:"))
				abort();
			prune(&m, now);
			if (idem_begin(t, key, fp, now, &replay, &r))
				abort();
			x = find(&m, key);
			if (!x) {
				if (r != IDEM_NEW || m.n == MODEL_MAX)
					abort();
				x = &m.e[m.n++];
				memset(x, 0, offsetof(struct entry, body));
				x->key = key;
				x->fp = fp;
				x->at_ms = now;
			} else if (x->fp != fp) {
				if (r != IDEM_REUSED)
					abort();
			} else if (!x->done) {
				if (r != IDEM_IN_FLIGHT)
					abort();
			} else if (r != IDEM_REPLAY || replay.len != 7 + x->body_len ||
			           memcmp(replay.p, "prefix:", 7) ||
			           memcmp(replay.p + 7, x->body, x->body_len)) {
				abort();
			}
			if (r != IDEM_REPLAY && replay.len != 7)
				abort();
			buf_fini(&replay);
		} else if (op == 1) { /* finish, with a body that follows */
			size_t len = (size_t)arg * 3 % BODY_MAX;

			if (len > size - pos)
				len = size - pos;
			idem_finish(t, key, fp, (const char *)data + pos, len);
			if ((x = find(&m, key))) {
				x->fp = fp;
				x->done = 1;
				x->body_len = len;
				memcpy(x->body, data + pos, len);
			}
			pos += len;
		} else if (op == 2) { /* abort */
			idem_abort(t, key);
			if ((x = find(&m, key)))
				drop(&m, x);
		} else { /* the clock moves, backwards too */
			now += (int64_t)(int8_t)arg * 7;
		}
		if (idem_count(t) != m.n)
			abort();
	}

	for (size_t i = 0; i < nkeys; i++)
		idem_abort(t, keys[i]);
	if (idem_count(t) != 0)
		abort();
	return 0;
}
