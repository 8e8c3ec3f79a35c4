/* tui/remote.c - the console's source for a server elsewhere.
 *
 * DESIGN: one reader thread owns the websocket: connect, upgrade (the
 * token in Authorization), then read the server's frames and apply each
 * message to a mirror (tui/console_mirror.c) under the lock; the console
 * thread's fetch copies the mirror out under the same lock. A connection
 * that fails, closes, or says nothing for REMOTE_DEAD_MS is dropped and
 * tried again after a backoff (0.5 s doubling to REMOTE_BACKOFF_MAX_MS);
 * the mirror keeps the last numbers meanwhile, and a new connection's
 * feed sends every campaign again, so nothing needs clearing. The
 * client's frames are masked (RFC 6455); the server's may not be. For
 * https:// the connection is TLS (tui/remote_conn.c: certificate and name
 * verified, a failure's reason on the reconnect line). Actions are admin
 * API requests made with libcurl on the console thread, each bounded by
 * REMOTE_ACTION_TIMEOUT_S, trusting the same --ca-file; the server's
 * error message is what errtext shows.
 */
#include "tui/remote.h"
#include "tui/console_mirror.h"
#include "tui/remote_conn.h"
#include "base/buf.h"
#include "base/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192      /* the server's answer to the upgrade at most */
#define MSG_MAX (16 << 20) /* one message at most */
#define CONNECT_MS 3000    /* connecting and upgrading at most */
#define ERR_CAP 160
#define ACTION_SEEN_MS 1500 /* an action waits for its state at most */

enum link { LINK_CONNECTING, LINK_UP, LINK_DOWN };

struct remote {
	char url[96]; /* http(s)://HOST:PORT, no trailing slash */
	char host[64], port[8];
	char token[300];
	struct remote_tls *tls; /* https:// only, else NULL; read-only */
	char *ca_file;          /* --ca-file for libcurl, or NULL */
	pthread_t thread;
	int started;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t wake;  /* stop, or a state came */
	int stop;
	struct console_mirror *mirror;
	enum link link;
	int64_t last_msg_ms; /* monotonic; 0: none on this connection */
	int64_t down_ms;     /* monotonic, when the link went down */
	time_t last_msg_wall;
	uint64_t states;   /* states applied, ever */
	char why[ERR_CAP]; /* why the last connection ended or failed */

	/* the console thread's: the last action's error */
	char action_err[ERR_CAP];
	int action_rc;
};

static int64_t mono_ms(void)
{
	return (int64_t)(util_mono_ns() / 1000000u);
}

int remote_new(const char *url, const char *token, const char *ca_file, struct remote **out,
               char *err, size_t errcap)
{
	struct remote *r;
	const char *h, *colon, *end;
	size_t hl;
	int tls = !strncmp(url, "https://", 8);

	*out = NULL;
	if (strncmp(url, "http://", 7) && !tls) {
		snprintf(err, errcap,
		         "--connect takes http://HOST:PORT or https://HOST:PORT (got '%s')", url);
		return -EINVAL;
	}
	h = url + (tls ? 8 : 7);
	end = h + strlen(h);
	if (end > h && end[-1] == '/')
		end--;
	colon = memrchr(h, ':', (size_t)(end - h));
	hl = colon ? (size_t)(colon - h) : 0;
	if (!colon || !hl || hl >= sizeof(r->host) || end - colon < 2 || end - colon > 6 ||
	    memchr(h, '/', (size_t)(end - h)) || memchr(h, '@', (size_t)(end - h))) {
		snprintf(err, errcap, "--connect takes %s://HOST:PORT (got '%s')",
		         tls ? "https" : "http", url);
		return -EINVAL;
	}
	for (const char *p = colon + 1; p < end; p++)
		if (*p < '0' || *p > '9') {
			snprintf(err, errcap, "--connect: the port must be a number (got '%s')",
			         url);
			return -EINVAL;
		}
	if (ca_file && !tls) {
		snprintf(err, errcap, "--ca-file is for an https:// server (got '%s')", url);
		return -EINVAL;
	}
	if (!token || !*token || strlen(token) >= sizeof(r->token) || strpbrk(token, "\r\n")) {
		snprintf(err, errcap,
		         "a staff token is needed (TALLY_ADMIN_TOKEN or --token-file)");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r->host, h, hl);
	memcpy(r->port, colon + 1, (size_t)(end - colon - 1));
	snprintf(r->url, sizeof(r->url), "%s://%.63s:%.7s", tls ? "https" : "http", r->host,
	         r->port);
	snprintf(r->token, sizeof(r->token), "%s", token);
	r->link = LINK_CONNECTING;
	r->down_ms = mono_ms();
	if (tls) {
		int rc = remote_tls_new(ca_file, &r->tls, err, errcap);

		if (rc) {
			free(r);
			return rc;
		}
		if (ca_file && !(r->ca_file = strdup(ca_file))) {
			remote_tls_free(r->tls);
			free(r);
			return -ENOMEM;
		}
	}
	if (console_mirror_new(&r->mirror) || pthread_mutex_init(&r->lock, NULL)) {
		console_mirror_free(r->mirror);
		goto fail;
	}
	if (pthread_cond_init(&r->wake, NULL)) {
		pthread_mutex_destroy(&r->lock);
		console_mirror_free(r->mirror);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	remote_tls_free(r->tls);
	free(r->ca_file);
	free(r);
	snprintf(err, errcap, "out of memory");
	return -ENOMEM;
}

static int stopping(struct remote *r)
{
	int s;

	pthread_mutex_lock(&r->lock);
	s = r->stop;
	pthread_mutex_unlock(&r->lock);
	return s;
}

static void link_down(struct remote *r, const char *why)
{
	pthread_mutex_lock(&r->lock);
	if (r->link != LINK_DOWN)
		r->down_ms = mono_ms();
	r->link = LINK_DOWN;
	snprintf(r->why, sizeof(r->why), "%s", why);
	pthread_mutex_unlock(&r->lock);
}

/* ---- the socket ---- */

/* Sec-WebSocket-Accept for key. */
static int accept_of(const char *key, char *out, size_t cap)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char in[96];

	snprintf(in, sizeof(in), "%s%s", key, guid);
	if (!EVP_Digest(in, strlen(in), sha, &n, EVP_sha1(), NULL) || n != 20 || cap < 29)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, sha, 20);
	return 0;
}

/* The server's error message in an HTTP answer's JSON body, if any. */
static void error_message(const char *body, char *out, size_t cap)
{
	json_t *j = json_loads(body, 0, NULL);
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));

	if (m)
		snprintf(out, cap, "%s", m);
	json_decref(j);
}

/* Upgrade c to the console feed. Returns 0, or -1 (why says); in then
 * holds the bytes that came after the answer's head (frames). */
static int upgrade(struct remote *r, struct remote_conn *c, struct buf *in, char *why, size_t cap)
{
	unsigned char raw[16];
	char key[32], want[32], req[1024];
	int64_t deadline = mono_ms() + CONNECT_MS;
	char *end;
	int n;

	if (util_random(raw, sizeof(raw))) {
		snprintf(why, cap, "no random bytes for the websocket key");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	if (accept_of(key, want, sizeof(want))) {
		snprintf(why, cap, "cannot compute the websocket accept key");
		return -1;
	}
	n = snprintf(req, sizeof(req),
	             "GET /live/console HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	             "Sec-WebSocket-Protocol: tally.console.v1\r\nAuthorization: Bearer %s\r\n\r\n",
	             r->host, r->port, key, r->token);
	if (n < 0 || (size_t)n >= sizeof(req) || remote_conn_send(c, req, (size_t)n, deadline)) {
		snprintf(why, cap, "cannot send the upgrade");
		return -1;
	}
	in->len = 0;
	while (!(in->len && (end = memmem(in->p, in->len, "\r\n\r\n", 4)))) {
		int64_t left = deadline - mono_ms();
		ssize_t k;

		if (in->len >= HEAD_MAX || left <= 0 || buf_reserve(in, 4096)) {
			snprintf(why, cap, "no answer to the upgrade");
			return -1;
		}
		k = remote_conn_recv(c, in->p + in->len, 4096, (int)left, why, cap);
		if (k < 0)
			return -1;
		in->len += (size_t)k;
	}
	*end = '\0';
	if (strncmp(in->p, "HTTP/1.1 101 ", 13)) {
		char msg[ERR_CAP] = "";
		int status = 0;

		/* The refusal's body: what came with the head, enough for a
		 * short JSON error. */
		size_t body = (size_t)(end + 4 - in->p);

		if (buf_reserve(in, 1))
			return -1;
		in->p[in->len] = '\0';
		error_message(in->p + body, msg, sizeof(msg));
		if (sscanf(in->p, "HTTP/1.%*d %d", &status) != 1)
			status = 0;
		snprintf(why, cap, "refused (%d)%s%.120s", status, msg[0] ? ": " : "", msg);
		return -1;
	}
	if (!strcasestr(in->p, want)) {
		snprintf(why, cap, "the server's websocket accept key is wrong");
		return -1;
	}
	/* Keep what came after the head. */
	{
		size_t head = (size_t)(end + 4 - in->p);

		memmove(in->p, in->p + head, in->len - head);
		in->len -= head;
	}
	return 0;
}

/* Send a masked control frame (a pong, or a close). */
static int send_control(struct remote_conn *c, unsigned char op, const unsigned char *payload,
                        size_t n)
{
	unsigned char f[2 + 4 + 125];
	unsigned char mask[4];

	if (n > 125 || util_random(mask, sizeof(mask)))
		return -1;
	f[0] = 0x80 | op;
	f[1] = 0x80 | (unsigned char)n;
	memcpy(f + 2, mask, 4);
	for (size_t i = 0; i < n; i++)
		f[6 + i] = payload[i] ^ mask[i % 4];
	return remote_conn_send(c, f, 6 + n, mono_ms() + CONNECT_MS);
}

/* Take whole frames from the front of in. Returns 0 to read on, or -1
 * (why says) to drop the connection. */
static int frames(struct remote *r, struct remote_conn *c, struct buf *in, struct buf *msg,
                  int *msg_open, char *why, size_t cap)
{
	size_t at = 0;
	int rc = 0;

	while (!rc) {
		const unsigned char *h = (const unsigned char *)in->p + at;
		size_t have = in->len - at, hl = 2;
		uint64_t len;
		unsigned op, fin;

		if (have < 2)
			break;
		fin = h[0] & 0x80;
		op = h[0] & 0x0f;
		len = h[1] & 0x7f;
		if (h[1] & 0x80) {
			snprintf(why, cap, "the server sent a masked frame");
			return -1;
		}
		if (len == 126) {
			if (have < 4)
				break;
			len = (uint64_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (len == 127) {
			if (have < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | h[2 + i];
			hl = 10;
		}
		if (len > MSG_MAX) {
			snprintf(why, cap, "a message over %d bytes", MSG_MAX);
			return -1;
		}
		if (have < hl + len)
			break;
		at += hl + (size_t)len;
		switch (op) {
		case 0x0: /* continuation */
		case 0x1: /* text */
			if ((op == 0x1) == *msg_open || msg->len + len > MSG_MAX) {
				snprintf(why, cap, "a broken message from the server");
				return -1;
			}
			if (op == 0x1)
				msg->len = 0;
			*msg_open = !fin;
			if (buf_append(msg, (const char *)h + hl, (size_t)len))
				return -1;
			if (fin) {
				char err[ERR_CAP];

				pthread_mutex_lock(&r->lock);
				rc = console_mirror_apply(r->mirror, msg->p, msg->len, err,
				                          sizeof(err));
				if (!rc) {
					r->states++;
					pthread_cond_broadcast(&r->wake);
					r->last_msg_ms = mono_ms();
					r->last_msg_wall = time(NULL);
					r->link = LINK_UP;
					r->why[0] = '\0';
				}
				pthread_mutex_unlock(&r->lock);
				if (rc)
					snprintf(why, cap,
					         "a message the console cannot read: %.120s",
					         rc == -EINVAL ? err : strerror(-rc));
			}
			break;
		case 0x8: /* close: answer it with its code, then reconnect */
			/* The answer is a courtesy: the connection ends either way. */
			(void)send_control(c, 0x8, h + hl, len >= 2 ? 2 : 0);
			snprintf(why, cap, "the server closed the feed%s%.*s", len > 2 ? ": " : "",
			         len > 2 ? (int)(len - 2 < 100 ? len - 2 : 100) : 0,
			         len > 2 ? (const char *)h + hl + 2 : "");
			return -1;
		case 0x9: /* ping */
			if (len > 125 || send_control(c, 0xA, h + hl, (size_t)len))
				rc = -1;
			break;
		case 0xA: /* pong */
			break;
		default:
			snprintf(why, cap, "an unknown frame from the server");
			return -1;
		}
	}
	memmove(in->p, in->p + at, in->len - at);
	in->len -= at;
	return rc ? -1 : 0;
}

/* Read one connection until it fails or the console stops. */
static void session(struct remote *r, struct remote_conn *c)
{
	struct buf in = {0}, msg = {0};
	char why[ERR_CAP] = "";
	int msg_open = 0;

	if (upgrade(r, c, &in, why, sizeof(why))) {
		link_down(r, why);
		goto out;
	}
	pthread_mutex_lock(&r->lock);
	r->last_msg_ms = mono_ms(); /* the hello is due at once */
	pthread_mutex_unlock(&r->lock);
	for (;;) {
		int64_t quiet;
		ssize_t k;

		if (frames(r, c, &in, &msg, &msg_open, why, sizeof(why))) {
			link_down(r, why[0] ? why : "out of memory");
			break;
		}
		if (stopping(r))
			break;
		pthread_mutex_lock(&r->lock);
		quiet = mono_ms() - r->last_msg_ms;
		pthread_mutex_unlock(&r->lock);
		if (quiet > REMOTE_DEAD_MS) {
			link_down(r, "the server went quiet");
			break;
		}
		if (buf_reserve(&in, 65536)) {
			link_down(r, "out of memory");
			break;
		}
		k = remote_conn_recv(c, in.p + in.len, 65536, 250, why, sizeof(why));
		if (k < 0) {
			link_down(r, why);
			break;
		}
		in.len += (size_t)k;
	}
out:
	buf_fini(&in);
	buf_fini(&msg);
	remote_conn_close(c);
}

static void *reader_main(void *arg)
{
	struct remote *r = arg;
	int64_t backoff = 500;
	sigset_t pipe;

	/* A write to a connection the server closed is an error here, not a
	 * SIGPIPE (OpenSSL writes without MSG_NOSIGNAL). */
	if (sigemptyset(&pipe) || sigaddset(&pipe, SIGPIPE) ||
	    pthread_sigmask(SIG_BLOCK, &pipe, NULL)) {
		link_down(r, "cannot block SIGPIPE in the reader");
		return NULL;
	}

	while (!stopping(r)) {
		char why[ERR_CAP];
		int64_t began = mono_ms();
		struct remote_conn c;

		pthread_mutex_lock(&r->lock);
		r->link = r->link == LINK_UP ? LINK_DOWN : r->link;
		pthread_mutex_unlock(&r->lock);
		if (remote_conn_open(&c, r->host, r->port, r->tls, CONNECT_MS, why, sizeof(why)))
			link_down(r, why);
		else
			session(r, &c);
		/* A connection that lived a while starts the backoff over. */
		if (mono_ms() - began > REMOTE_DEAD_MS)
			backoff = 500;
		pthread_mutex_lock(&r->lock);
		if (!r->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += backoff / 1000;
			ts.tv_nsec += (backoff % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->wake, &r->lock, &ts);
		}
		pthread_mutex_unlock(&r->lock);
		backoff = backoff * 2 > REMOTE_BACKOFF_MAX_MS ? REMOTE_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

int remote_start(struct remote *r)
{
	int rc = pthread_create(&r->thread, NULL, reader_main, r);

	if (rc)
		return -rc;
	r->started = 1;
	return 0;
}

void remote_free(struct remote *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		r->stop = 1;
		pthread_cond_broadcast(&r->wake);
		pthread_mutex_unlock(&r->lock);
		if (pthread_join(r->thread, NULL))
			fprintf(stderr, "tally console: the reader thread did not join\n");
	}
	console_mirror_free(r->mirror);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	remote_tls_free(r->tls);
	free(r->ca_file);
	free(r);
}

/* ---- the console source ---- */

static int remote_fetch(void *ctx, struct console_model *m)
{
	struct remote *r = ctx;
	int64_t now = mono_ms();
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = console_mirror_copy(r->mirror, m);
	snprintf(m->server, sizeof(m->server), "%s", r->url);
	m->connected = 0;
	if (r->link == LINK_UP && now - r->last_msg_ms <= REMOTE_STALE_MS) {
		m->connected = 1;
		snprintf(m->error, sizeof(m->error), "%s", m->synced ? "" : "syncing campaigns");
	} else if (r->link == LINK_UP) {
		struct tm tm;
		char at[16] = "?";

		if (localtime_r(&r->last_msg_wall, &tm))
			strftime(at, sizeof(at), "%H:%M:%S", &tm);
		snprintf(m->error, sizeof(m->error), "stale since %s", at);
	} else {
		snprintf(m->error, sizeof(m->error), "%s (%lld s)%s%.120s",
		         r->link == LINK_CONNECTING ? "connecting" : "reconnecting",
		         (long long)((now - r->down_ms) / 1000), r->why[0] ? ": " : "", r->why);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* After an action: wait (at most ACTION_SEEN_MS) for two states, the
 * second built after the server answered, so the screen shows what was
 * done before the console takes the next key. */
static void see_it(struct remote *r)
{
	struct timespec ts;
	uint64_t want;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ACTION_SEEN_MS % 1000 * 1000000L;
	ts.tv_sec += ACTION_SEEN_MS / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&r->lock);
	want = r->states + 2;
	while (r->states < want && r->link == LINK_UP && !r->stop)
		if (pthread_cond_timedwait(&r->wake, &r->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->lock);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	return buf_append(ud, p, size * n) ? 0 : size * n;
}

/* One admin API request; 2xx is 0. Else a negative code, with the
 * server's message (or curl's) kept for errtext. */
static int request_body(struct remote *r, const char *method, const char *path, const char *json,
                        char **answer)
{
	char url[512], auth[340], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = NULL, *h2;
	struct buf body = {0};
	CURL *e = curl_easy_init();
	long status = 0;
	int rc;

	snprintf(url, sizeof(url), "%s%s", r->url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
	h2 = e ? curl_slist_append(NULL, auth) : NULL;
	h = h2 ? curl_slist_append(h2, "Content-Type: application/json") : NULL;
	if (!h) {
		curl_slist_free_all(h2);
		curl_easy_cleanup(e);
		snprintf(r->action_err, sizeof(r->action_err), "out of memory");
		return r->action_rc = -ENOMEM;
	}
	if (curl_easy_setopt(e, CURLOPT_URL, url) || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)REMOTE_ACTION_TIMEOUT_S) ||
	    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) ||
	    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h) ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr) ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body) ||
	    /* https://: the reader's trust, TLS 1.2 or later, names checked */
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) ||
	    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) ||
	    (r->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file)) ||
	    (!strcmp(method, "POST") &&
	     curl_easy_setopt(e, CURLOPT_POSTFIELDS, json ? json : "{}"))) {
		rc = -EIO;
		snprintf(r->action_err, sizeof(r->action_err), "cannot set up the request");
	} else if (curl_easy_perform(e) != CURLE_OK) {
		rc = -EIO;
		snprintf(r->action_err, sizeof(r->action_err), "%.150s",
		         cerr[0] ? cerr : "no answer");
	} else if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) || status < 200 ||
	           status > 299) {
		rc = status == 401 || status == 403 ? -EACCES
		     : status == 404                ? -ENOENT
		     : status == 409                ? -EBUSY
		                                    : -EIO;
		snprintf(r->action_err, sizeof(r->action_err), "HTTP %ld", status);
		if (!buf_append(&body, "", 1))
			error_message(body.p, r->action_err, sizeof(r->action_err));
	} else if (answer) {
		/* a read: the answer's body, NUL-terminated, is the caller's */
		rc = buf_append(&body, "", 1) ? -ENOMEM : 0;
		if (!rc) {
			*answer = body.p;
			body = (struct buf){0};
		}
	} else {
		rc = 0;
		see_it(r);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	buf_fini(&body);
	return r->action_rc = rc;
}

static int request(struct remote *r, const char *method, const char *path)
{
	return request_body(r, method, path, NULL, NULL);
}

static int remote_set_paused(void *ctx, const char *slug, int pause)
{
	char path[256];
	char *s = curl_easy_escape(NULL, slug, 0);
	int rc;

	if (!s)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s/%s", s,
	         pause ? "pause" : "resume");
	curl_free(s);
	rc = request(ctx, "POST", path);
	return rc;
}

static int remote_queue_action(void *ctx, const char *queue, const char *action)
{
	char path[128];
	char *q = curl_easy_escape(NULL, queue, 0);

	if (!q)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/admin/queues/%s/%s", q, action);
	curl_free(q);
	return request(ctx, "POST", path);
}

static int remote_queue_set_paused(void *ctx, const char *queue, int pause)
{
	return remote_queue_action(ctx, queue, pause ? "pause" : "resume");
}

static int remote_queue_retry_dead(void *ctx, const char *queue)
{
	return remote_queue_action(ctx, queue, "retry-dead");
}

static int remote_job_retry(void *ctx, int64_t id)
{
	char path[96];

	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld/retry", (long long)id);
	return request(ctx, "POST", path);
}

static int remote_job_discard(void *ctx, int64_t id)
{
	char path[96];

	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld", (long long)id);
	return request(ctx, "DELETE", path);
}

static int remote_close(void *ctx, const char *slug)
{
	char path[256];
	char *s = curl_easy_escape(NULL, slug, 0);

	if (!s)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s/close", s);
	curl_free(s);
	return request(ctx, "POST", path);
}

static int remote_refund(void *ctx, int64_t donation_id, const char *reason)
{
	char path[96];
	json_t *body = json_pack("{s:s}", "reason", reason ? reason : "");
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	json_decref(body);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/admin/donations/dn_%lld/refund",
	         (long long)donation_id);
	rc = request_body(ctx, "POST", path, text, NULL);
	free(text);
	return rc;
}

/* Through the admin API, as any staff client would (the server checks
 * the fields and the role). */
static int remote_offline_gift(void *ctx, const char *slug, int64_t amount_cents,
                               const char *method, const char *name, const char *note, char *id,
                               size_t idcap)
{
	char path[256], *answer = NULL, *text, *s = curl_easy_escape(NULL, slug, 0);
	json_t *body, *got;
	int rc;

	if (!s)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s/offline-donations", s);
	curl_free(s);
	body = json_pack("{s:I,s:s,s:{s:s},s:s}", "amount_cents", (json_int_t)amount_cents,
	                 "method", method, "donor", "name", name, "note", note);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return -ENOMEM;
	rc = request_body(ctx, "POST", path, text, &answer);
	free(text);
	got = !rc && answer ? json_loads(answer, 0, NULL) : NULL;
	if (id && idcap)
		snprintf(id, idcap, "%s",
		         json_string_value(json_object_get(got, "id"))
		             ? json_string_value(json_object_get(got, "id"))
		             : "");
	json_decref(got);
	free(answer);
	return rc;
}

static int remote_campaign_json(void *ctx, const char *slug, char **out)
{
	char path[256];
	char *s = curl_easy_escape(NULL, slug, 0);

	if (!s)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/api/v1/campaigns/%s", s);
	curl_free(s);
	return request_body(ctx, "GET", path, NULL, out);
}

static int remote_shield_set(void *ctx, int raise)
{
	return request(ctx, "POST",
	               raise ? "/api/v1/admin/shield/raise" : "/api/v1/admin/shield/lower");
}

static const char *remote_errtext(void *ctx, int rc)
{
	struct remote *r = ctx;

	return rc && rc == r->action_rc && r->action_err[0] ? r->action_err : NULL;
}

void remote_source(struct remote *r, struct console_source *src)
{
	*src = (struct console_source){
	    .fetch = remote_fetch,
	    .set_paused = remote_set_paused,
	    .ctx = r,
	    .queue_set_paused = remote_queue_set_paused,
	    .queue_retry_dead = remote_queue_retry_dead,
	    .job_retry = remote_job_retry,
	    .job_discard = remote_job_discard,
	    .errtext = remote_errtext,
	    .close_campaign = remote_close,
	    .refund = remote_refund,
	    .offline_gift = remote_offline_gift,
	    .campaign_json = remote_campaign_json,
	    .shield_set = remote_shield_set,
	};
}
