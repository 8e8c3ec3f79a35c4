/* tests/itest.h - integration helpers: start the real tally binary on a
 * free port with a temporary database, talk HTTP and websockets to it. */
#ifndef TALLY_TESTS_ITEST_H
#define TALLY_TESTS_ITEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define ITEST_TOKEN "itest-admin-token"

struct itest_server {
	pid_t pid;
	int port;
	char *dir; /* temp dir holding t.db and server.log */
	char db[512];
	char log[512];
};

struct itest_resp {
	int status;
	char headers[8192];
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
};

/* How many times longer than usual a server may take to start, stop or
 * settle: 10 under make valgrind (TALLY_VALGRIND set, not "0"), else 1. */
int itest_slowdown(void);

/* Start `$TALLY_BIN --headless --listen 127.0.0.1:0 --db DIR/t.db` plus
 * extra args (space separated, may be NULL), with TALLY_ADMIN_TOKEN set.
 * Creates DIR when s->dir is NULL. Waits until it serves. Returns 0 or -1. */
int itest_start(struct itest_server *s, const char *extra);

/* Start a server (no extra args) with one USD campaign "food" (goal
 * $1,000); a Check failure when that does not work. For fixtures. */
void itest_start_with_food(struct itest_server *s);

/* Send sig and wait for the exit; returns the wait status. */
int itest_signal(struct itest_server *s, int sig);

/* Stop with SIGTERM (if running) and remove the temp dir. */
void itest_cleanup(struct itest_server *s);

/* One HTTP/1.1 request on a new connection. extra_headers are raw lines
 * ("Name: value\r\n...") or NULL. Returns 0 or -1. */
int itest_http(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t len, struct itest_resp *r);

/* Send raw bytes on a new connection and collect what comes back until
 * the server closes or timeout_ms passes without data. Returns a malloc'd
 * NUL-terminated string (possibly empty), or NULL if it cannot connect. */
char *itest_raw(int port, const char *bytes, size_t len, int timeout_ms);

/* A raw HTTP connection, for tests of the connection itself. Open one to
 * port: returns the fd (close it with close()) or -1. */
int itest_conn_open(int port);
/* The same from the local address src (an IPv4 loopback alias such as
 * 127.0.0.7: every 127/8 address is the loopback's), for tests of what
 * tally decides per client address. */
int itest_conn_open_from(int port, const char *src);

/* Send bytes on fd, then read one response (headers, then a body of its
 * Content-Length; not for HEAD) within timeout_ms. Returns 0 or -1. */
int itest_conn_request(int fd, const char *bytes, size_t len, int timeout_ms, struct itest_resp *r);

/* 1 when the server closes fd (a read sees the end or a reset) within
 * timeout_ms, dropping any bytes that arrive meanwhile; else 0. */
int itest_conn_closed(int fd, int timeout_ms);

/* A JSON POST with Content-Type set; admin adds the bearer token. */
int itest_post_json(int port, const char *path, const char *json, int admin, struct itest_resp *r);

/* Value of a response header (case-insensitive name), copied into dst;
 * returns dst or NULL. */
const char *itest_header(const struct itest_resp *r, const char *name, char *dst, size_t cap);

void itest_resp_fini(struct itest_resp *r);

/* Create a campaign through the admin API. Returns the HTTP status. */
int itest_create_campaign(int port, const char *slug, const char *currency, long long goal);

/* Post a donation; returns the HTTP status. */
int itest_donate(int port, const char *slug, long long cents, const char *name, const char *email);

/* Websocket client: connect to path with subprotocol (NULL for none).
 * Returns the fd, or -1 (and *status the HTTP status when not 101). */
int itest_ws_connect(int port, const char *path, const char *subprotocol, int *status);
/* Read an HTTP head (up to its blank line, nothing after) from fd into
 * out (NUL-ended) within timeout_ms per byte. Returns 0 or -1. */
int itest_read_head(int fd, char *out, size_t cap, int timeout_ms);
int itest_ws_send(int fd, const char *text);
/* A /live websocket whose receive buffer is rcvbuf bytes: a reader that
 * takes nothing fills it soon. Returns the fd or -1. */
int itest_ws_connect_slow(int port, int rcvbuf);
/* Receive one text message within timeout_ms; returns malloc'd text or
 * NULL on timeout/close. */
char *itest_ws_recv(int fd, int timeout_ms);
/* Receive messages until one contains needle (or timeout); returns it. */
char *itest_ws_wait_for(int fd, const char *needle, int timeout_ms);

/* Read frames (answering pings with pongs when pong is set) until the
 * server's close frame: returns its status code, 0 when the connection
 * ended without one, or -1 when nothing ended it within timeout_ms. */
int itest_ws_close_code(int fd, int pong, int timeout_ms);

/* Read frames for ms, answering every ping. Returns the pings answered,
 * or -1 if the connection ended. */
int itest_ws_keep(int fd, int ms);

/* Send one frame of any opcode (masked, payload of len bytes). */
int itest_ws_send_frame(int fd, int opcode, const void *payload, size_t len);

/* Write one client frame into out (cap bytes at least len + 14): FIN set
 * when fin, the payload masked when masked (a client must mask: 0 is for
 * tests of the server's refusal). Returns the frame's length, 0 when it
 * does not fit. */
size_t itest_ws_frame(unsigned char *out, size_t cap, int fin, int opcode, int masked,
                      const void *payload, size_t len);

/* Read the next frame of any opcode: its payload (malloc'd, NUL-ended)
 * in *payload. Returns 0, -1 when the connection ended, -2 on timeout. */
int itest_ws_next(int fd, int timeout_ms, int *opcode, char **payload, size_t *len);

/* Send bytes on fd as they are (a frame in parts, say). Returns 0 or -1. */
int itest_send(int fd, const void *bytes, size_t len);

/* GET path with the admin token. Returns 0 or -1. */
int itest_admin_get(int port, const char *path, struct itest_resp *r);

/* r's body as JSON; fails the test when it is not. Caller decrefs. */
json_t *itest_json_body(const struct itest_resp *r);

/* GET path on port (as staff when admin), which must answer 200 with
 * JSON; fails the test otherwise. Caller decrefs. */
json_t *itest_get_json(int port, const char *path, int admin);

/* The whole file at path, NUL-ended (malloc'd); fails the test when it
 * cannot be read. */
char *itest_slurp(const char *path);

/* The integer o[key]; fails the test when it is not one. */
long long itest_json_int(json_t *o, const char *key);

/* Wait (at most 30 s, times itest_slowdown) until no job is ready, running, held or waiting to
 * retry: every accepted gift is captured or declined and its receipts and
 * webhooks done (or dead). Returns 0 or -1. */
int itest_settle(int port);

/* A stand-in server from tests/tools (Python): started with --port 0. */
struct itest_tool {
	pid_t pid;
	int port;
	FILE *out;
};

/* Start tests/tools/<script> with extra args (space separated, may be
 * NULL) and read the port it prints. Returns 0 or -1. */
int itest_tool_start(struct itest_tool *t, const char *script, const char *args);
void itest_tool_stop(struct itest_tool *t);

/* Run a SQL query returning one integer against db; -1 on any error. Opens
 * read-write so that it can recover the WAL of a killed server. */
long long itest_sql_int(const char *db, const char *sql);

#endif
