/* tests/test_tokens.c - named staff tokens with roles: the rules (names,
 * roles, secrets, hashes), the table in memory, `tally token` on a
 * database file, and the real server: every staff route for every role,
 * the token routes, whoami, the audit's names, a token added or revoked
 * by the command line while the server runs, the startup token, and every
 * kind of bad input (nothing written). */
#include "tests/itest.h"
#include "tests/tests.h"
#include "core/tokens.h"
#include "core/validate.h"
#include "db/db.h"
#include "db/writer.h"
#include "ws/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

/* SHA-256 of s as lower-case hex, computed here (not by core/tokens.c). */
static void sha256_hex(const char *s, char out[65])
{
	unsigned char h[32];
	unsigned int n = 0;

	ck_assert_int_eq(EVP_Digest(s, strlen(s), h, &n, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(n, 32);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* What a command printed and how it ended. */
struct run {
	int status; /* exit status, or -1 when it did not exit */
	char out[8192], err[8192];
};

/* Drain fd into buf (cap bytes, NUL-ended); returns 0 at its end. */
static int drain(int fd, char *buf, size_t cap, size_t *used)
{
	char scratch[512];
	ssize_t n = read(fd, scratch, sizeof(scratch));

	if (n <= 0)
		return n < 0 && errno == EINTR ? 1 : 0;
	for (ssize_t i = 0; i < n && *used + 1 < cap; i++)
		buf[(*used)++] = scratch[i];
	buf[*used] = '\0';
	return 1;
}

/* Run `$TALLY_BIN token ARGS...` (args NULL-ended), stdout and stderr apart. */
static void tally_token(struct run *r, const char *const *args)
{
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	char *argv[24];
	int out[2], err[2], argc = 0, st;
	size_t nout = 0, nerr = 0;
	int open_out = 1, open_err = 1;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	argv[argc++] = (char *)bin;
	argv[argc++] = "token";
	for (int i = 0; args[i] && argc < 23; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	ck_assert_int_eq(pipe(out), 0);
	ck_assert_int_eq(pipe(err), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		close(out[0]);
		close(err[0]);
		execv(bin, argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	while (open_out || open_err) {
		struct pollfd p[2] = {{open_out ? out[0] : -1, POLLIN, 0},
		                      {open_err ? err[0] : -1, POLLIN, 0}};

		ck_assert_int_ge(poll(p, 2, 30000), 1);
		if (open_out && p[0].revents)
			open_out = drain(out[0], r->out, sizeof(r->out), &nout);
		if (open_err && p[1].revents)
			open_err = drain(err[0], r->err, sizeof(r->err), &nerr);
	}
	close(out[0]);
	close(err[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *parse(const struct itest_resp *r)
{
	json_error_t e;
	json_t *j = json_loads(r->body, 0, &e);

	ck_assert_msg(j != NULL, "not JSON: %s", r->body);
	return j;
}

/* A request with bearer (NULL: none) and a JSON body (NULL: none). */
static int call(int port, const char *method, const char *path, const char *bearer,
                const char *body, struct itest_resp *r)
{
	char h[512] = "";

	if (bearer)
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", bearer);
	if (body)
		strncat(h, "Content-Type: application/json\r\n", sizeof(h) - strlen(h) - 1);
	return itest_http(port, method, path, h, body, body ? strlen(body) : 0, r);
}

/* The status of a request, its body dropped. */
static int status_of(int port, const char *method, const char *path, const char *bearer,
                     const char *body)
{
	struct itest_resp r;
	int st;

	ck_assert_int_eq(call(port, method, path, bearer, body, &r), 0);
	st = r.status;
	itest_resp_fini(&r);
	return st;
}

/* Assert r is the error status/code; returns the parsed body. */
static json_t *expect_error(const struct itest_resp *r, int status, const char *code)
{
	const char *got = NULL, *msg = NULL;
	json_t *j;

	ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
	j = parse(r);
	ck_assert_int_eq(json_unpack(j, "{s:{s:s,s:s}}", "error", "code", &got, "message", &msg),
	                 0);
	ck_assert_str_eq(got, code);
	ck_assert(strlen(msg) > 0);
	return j;
}

/* 1 when needle's bytes occur in the file at path (0 when it is absent). */
static int file_has(const char *path, const char *needle)
{
	size_t n = strlen(needle), used = 0, cap = 1 << 20;
	char *buf;
	int fd = open(path, O_RDONLY), found = 0;
	ssize_t got;

	if (fd < 0)
		return 0;
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	while ((got = read(fd, buf + used, cap - used)) > 0) {
		used += (size_t)got;
		if (used == cap) {
			buf = realloc(buf, cap *= 2);
			ck_assert_ptr_nonnull(buf);
		}
	}
	close(fd);
	for (size_t i = 0; i + n <= used && !found; i++)
		found = !memcmp(buf + i, needle, n);
	free(buf);
	return found;
}

/* 1 when secret is in the database or its -wal or -shm. */
static int db_files_have(const char *db, const char *secret)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char p[600];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", db, suffixes[i]);
		if (file_has(p, secret))
			return 1;
	}
	return 0;
}

static long long count_sql(const char *db, const char *sql)
{
	long long n = itest_sql_int(db, sql);

	ck_assert_msg(n >= 0, "%s failed on %s", sql, db);
	return n;
}

/* The stored hash of token name. */
static void stored_hash(const char *db, const char *name, char out[65])
{
	char sql[200];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(sql, sizeof(sql), "SELECT hash FROM staff_tokens WHERE name = '%s'", name);
	ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_busy_timeout(h, 5000), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, 65, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* ---- the rules, without a server ---- */

START_TEST(token_names)
{
	static const char *const good[] = {
	    "a",
	    "ops-alice",
	    "Ops.Bob_2",
	    "...",
	    "-",
	    "_",
	    "a..b",
	    "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	static const char *const bad[] = {
	    "",      ".",
	    "..",    "a b",
	    "a/b",   "a@b",
	    "é",     "a\tb",
	    "tab\n", "a%20b",
	    "a:b",   "01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(validate_token_name(good[i], strlen(good[i])), "%s refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!validate_token_name(bad[i], strlen(bad[i])), "%s taken", bad[i]);
	ck_assert(tokens_name_reserved("admin"));
	ck_assert(tokens_name_reserved("ADMIN"));
	ck_assert(!tokens_name_reserved("admin2"));
}
END_TEST

START_TEST(role_names)
{
	ck_assert_int_eq(staff_role_by_name("viewer"), STAFF_VIEWER);
	ck_assert_int_eq(staff_role_by_name("operator"), STAFF_OPERATOR);
	ck_assert_int_eq(staff_role_by_name("admin"), STAFF_ADMIN);
	ck_assert_int_eq(staff_role_by_name("public"), -1);
	ck_assert_int_eq(staff_role_by_name("Admin"), -1);
	ck_assert_int_eq(staff_role_by_name(""), -1);
	ck_assert_int_eq(staff_role_by_name("root"), -1);
	ck_assert(STAFF_PUBLIC < STAFF_VIEWER && STAFF_VIEWER < STAFF_OPERATOR &&
	          STAFF_OPERATOR < STAFF_ADMIN);
}
END_TEST

START_TEST(secrets_and_hashes)
{
	static char seen[100][TALLY_STAFF_SECRET_SIZE];
	char hex[TALLY_STAFF_HASH_SIZE], mine[65];

	/* The hash against a known vector and against OpenSSL called here. */
	ck_assert_int_eq(tokens_hash_hex("abc", 3, hex), 0);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	for (int i = 0; i < 100; i++) {
		char *s = seen[i];

		ck_assert_int_eq(tokens_secret_new(s, TALLY_STAFF_SECRET_SIZE), 0);
		ck_assert_uint_eq(strlen(s), TALLY_STAFF_SECRET_LEN);
		ck_assert(!strncmp(s, "tly_", 4));
		ck_assert_uint_eq(strspn(s + 4,
		                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                         "0123456789-_"),
		                  TALLY_STAFF_SECRET_LEN - 4);
		/* 32 bytes in 43 digits: the last one's two low bits are 0. */
		ck_assert(strchr("AEIMQUYcgkosw048", s[TALLY_STAFF_SECRET_LEN - 1]));
		for (int k = 0; k < i; k++)
			ck_assert_str_ne(s, seen[k]);
		ck_assert_int_eq(tokens_hash_hex(s, strlen(s), hex), 0);
		sha256_hex(s, mine);
		ck_assert_str_eq(hex, mine);
	}
	ck_assert_int_eq(tokens_secret_new(hex, TALLY_STAFF_SECRET_SIZE - 1), -ENOSPC);
}
END_TEST

/* The table: the startup token, added, revoked and reloaded tokens, found
 * without regard to case. */
START_TEST(table_in_memory)
{
	char s1[TALLY_STAFF_SECRET_SIZE], s2[TALLY_STAFF_SECRET_SIZE], h[TALLY_STAFF_HASH_SIZE];
	struct staff_token t = {0}, *list;
	struct staff_identity who;
	struct tokens *tb;
	char err[256] = "", *dir = tests_tmpdir(), path[600];
	struct db_op op;
	sqlite3 *db;

	ck_assert_int_eq(tokens_new(&tb), 0);
	ck_assert_int_eq(tokens_set_startup(tb, "boot-secret"), 0);
	ck_assert_int_eq(tokens_auth(tb, "boot-secret", 11, &who), 0);
	ck_assert_str_eq(who.name, "admin");
	ck_assert_int_eq(who.role, STAFF_ADMIN);
	ck_assert_int_eq(tokens_auth(tb, "boot-secreT", 11, &who), -ENOENT);
	ck_assert_int_eq(who.role, STAFF_PUBLIC);
	ck_assert_str_eq(who.name, "");
	ck_assert_int_eq(tokens_auth(tb, "boot-secret", 10, &who), -ENOENT);
	ck_assert_int_eq(tokens_auth(tb, "", 0, &who), -ENOENT);

	ck_assert_int_eq(tokens_secret_new(s1, sizeof(s1)), 0);
	ck_assert_int_eq(tokens_hash_hex(s1, strlen(s1), h), 0);
	snprintf(t.name, sizeof(t.name), "Ops1");
	t.role = STAFF_OPERATOR;
	t.created_at = 1;
	ck_assert_int_eq(tokens_add(tb, &t, h), 0);
	ck_assert_int_eq(tokens_add(tb, &t, "not hex"), -EINVAL);
	ck_assert_int_eq(tokens_auth(tb, s1, strlen(s1), &who), 0);
	ck_assert_str_eq(who.name, "Ops1");
	ck_assert_int_eq(who.role, STAFF_OPERATOR);
	ck_assert_int_eq(tokens_find(tb, "OPS1", &t), 0);
	ck_assert_str_eq(t.name, "Ops1");
	ck_assert_int_eq(tokens_find(tb, "ops2", &t), -ENOENT);
	tokens_revoke(tb, "ops1", 5);
	ck_assert_int_eq(tokens_auth(tb, s1, strlen(s1), &who), -ENOENT);
	tokens_revoke(tb, "admin", 5); /* the startup token is never revoked */
	ck_assert_int_eq(tokens_auth(tb, "boot-secret", 11, &who), 0);
	ck_assert_int_eq(tokens_list(tb, &list), 2);
	ck_assert(list[0].startup && !list[1].startup);
	ck_assert_int_eq(list[1].revoked_at, 5);
	free(list);

	/* Read from a database: what is stored replaces what was in memory,
	 * the startup token stays. */
	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	ck_assert_msg(db_open(path, "NORMAL", &db, err, sizeof(err)) == 0, "%s", err);
	memset(&op, 0, sizeof(op));
	op.kind = DB_OP_TOKEN_ADD;
	op.now_ms = 1700000000000;
	snprintf(op.u.token.name, sizeof(op.u.token.name), "viewer-9");
	op.u.token.role = STAFF_VIEWER;
	ck_assert_int_eq(tokens_secret_new(s2, sizeof(s2)), 0);
	ck_assert_int_eq(tokens_hash_hex(s2, strlen(s2), op.u.token.hash), 0);
	ck_assert_int_eq(db_apply_now(db, &op, err, sizeof(err)), 0);
	ck_assert_int_eq(op.rc, 0);
	ck_assert_int_eq(db_apply_now(db, &op, err, sizeof(err)), 0);
	ck_assert_int_eq(op.rc, -EEXIST);
	ck_assert_int_eq(tokens_load(tb, db), 0);
	ck_assert_int_eq(tokens_auth(tb, s2, strlen(s2), &who), 0);
	ck_assert_str_eq(who.name, "viewer-9");
	ck_assert_int_eq(who.role, STAFF_VIEWER);
	ck_assert_int_eq(tokens_find(tb, "ops1", &t), -ENOENT);
	ck_assert_int_eq(tokens_auth(tb, "boot-secret", 11, &who), 0);
	ck_assert_int_eq(tokens_list(tb, &list), 2);
	ck_assert(list[0].startup);
	ck_assert_str_eq(list[1].name, "viewer-9");
	ck_assert_int_eq(list[1].created_at, 1700000000000);
	free(list);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	tokens_free(tb);
	tests_rmdir(dir);
}
END_TEST

START_TEST(token_bodies)
{
	static const struct {
		const char *body;
		int rc;
		const char *field; /* the field named, for TALLY_EFIELDS */
	} cases[] = {
	    {"{\"name\":\"ops\",\"role\":\"operator\"}", TALLY_OK, NULL},
	    {"{\"name\":\"ops\",\"role\":\"viewer\",\"secret\":\"x\"}", TALLY_OK, NULL},
	    {"{\"name\":\"ops\"", TALLY_EJSON, NULL},
	    {"[\"ops\",\"viewer\"]", TALLY_EJSON, NULL},
	    {"{}", TALLY_EFIELDS, "name"},
	    {"{\"name\":\"ops\"}", TALLY_EFIELDS, "role"},
	    {"{\"name\":\"ops\",\"role\":\"root\"}", TALLY_EFIELDS, "role"},
	    {"{\"name\":\"ops\",\"role\":\"Admin\"}", TALLY_EFIELDS, "role"},
	    {"{\"name\":\"ops\",\"role\":3}", TALLY_EFIELDS, "role"},
	    {"{\"name\":\"ops\",\"role\":\"viewer\\u0000x\"}", TALLY_EJSON, NULL},
	    {"{\"name\":\"ops\",\"role\":null}", TALLY_EFIELDS, "role"},
	    {"{\"name\":\"\",\"role\":\"viewer\"}", TALLY_EFIELDS, "name"},
	    {"{\"name\":7,\"role\":\"viewer\"}", TALLY_EFIELDS, "name"},
	    {"{\"name\":\"a b\",\"role\":\"viewer\"}", TALLY_EFIELDS, "name"},
	    {"{\"name\":\"..\",\"role\":\"viewer\"}", TALLY_EFIELDS, "name"},
	    {"{\"name\":\"\\u00e9\",\"role\":\"viewer\"}", TALLY_EFIELDS, "name"},
	    {"{\"name\":\"x\\u0000y\",\"role\":\"viewer\"}", TALLY_EJSON, NULL},
	    {"{\"name\":\"0123456789012345678901234567890123456789012345678901234567890123"
	     "4\",\"role\":\"viewer\"}",
	     TALLY_EFIELDS, "name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct validate_error err = {{0}, NULL};
		char name[TALLY_STAFF_NAME_SIZE];
		enum staff_role role;
		int rc = validate_token(cases[i].body, strlen(cases[i].body), name, &role, &err);

		ck_assert_msg(rc == cases[i].rc, "%s: %d", cases[i].body, rc);
		if (cases[i].field)
			ck_assert_msg(json_object_get(err.fields, cases[i].field), "%s: no %s",
			              cases[i].body, cases[i].field);
		if (rc == TALLY_OK) {
			ck_assert_str_eq(name, "ops");
			ck_assert_int_ne(role, STAFF_PUBLIC);
		}
		validate_error_fini(&err);
	}
}
END_TEST

/* ---- tally token, on a database file ---- */

static char *cli_dir;
static char cli_db[600];

static void cli_setup(void)
{
	cli_dir = tests_tmpdir();
	ck_assert_ptr_nonnull(cli_dir);
	snprintf(cli_db, sizeof(cli_db), "%s/t.db", cli_dir);
}

static void cli_teardown(void)
{
	tests_rmdir(cli_dir);
	cli_dir = NULL;
}

START_TEST(cli_add_list_revoke)
{
	char secret[128], hash[65], mine[65];
	struct run r;

	tally_token(
	    &r, (const char *[]){"add", "ops-alice", "--role", "operator", "--db", cli_db, NULL});
	ck_assert_msg(r.status == 0, "%d: %s", r.status, r.err);
	/* stdout: the secret and its newline, nothing else. */
	ck_assert_uint_eq(strlen(r.out), TALLY_STAFF_SECRET_LEN + 1);
	ck_assert_int_eq(r.out[TALLY_STAFF_SECRET_LEN], '\n');
	snprintf(secret, sizeof(secret), "%.*s", TALLY_STAFF_SECRET_LEN, r.out);
	ck_assert(!strncmp(secret, "tly_", 4));
	ck_assert_ptr_null(strstr(r.err, secret));
	/* Stored: its hash, never the secret. */
	stored_hash(cli_db, "ops-alice", hash);
	sha256_hex(secret, mine);
	ck_assert_str_eq(hash, mine);
	ck_assert(!db_files_have(cli_db, secret));
	ck_assert(!db_files_have(cli_db, secret + 4));
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM staff_tokens WHERE role = "
	                                   "'operator' AND revoked_at IS NULL"),
	                 1);

	tally_token(
	    &r, (const char *[]){"add", "viewer.bob", "--db", cli_db, "--role", "viewer", NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(strlen(r.out), TALLY_STAFF_SECRET_LEN + 1);
	ck_assert(strncmp(r.out, secret, TALLY_STAFF_SECRET_LEN)); /* another secret */

	/* list: names, roles, times; never a secret or a hash. */
	tally_token(&r, (const char *[]){"list", "--db", cli_db, NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert(!strncmp(r.out, "NAME\tROLE\tCREATED\tREVOKED\n", 26));
	ck_assert_ptr_nonnull(strstr(r.out, "\nops-alice\toperator\t20"));
	ck_assert_ptr_nonnull(strstr(r.out, "Z\t-\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nviewer.bob\tviewer\t20"));
	ck_assert_ptr_null(strstr(r.out, "tly_"));
	ck_assert_ptr_null(strstr(r.out, hash));

	tally_token(&r, (const char *[]){"revoke", "OPS-ALICE", "--db", cli_db, NULL});
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_str_eq(r.out, "");
	ck_assert_ptr_nonnull(strstr(r.err, "ops-alice is revoked at 20"));
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM staff_tokens WHERE name = "
	                                   "'ops-alice' AND revoked_at > 0"),
	                 1);
	/* Again: a success that changes nothing and audits nothing. */
	tally_token(&r, (const char *[]){"revoke", "ops-alice", "--db", cli_db, NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "was already revoked"));
	tally_token(&r, (const char *[]){"list", "--db", cli_db, NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\nviewer.bob\tviewer\t"));
	{
		char *line = strstr(r.out, "\nops-alice\t");

		ck_assert_ptr_nonnull(line);
		line = strchr(line + 1, '\n');
		ck_assert_ptr_nonnull(line);
		ck_assert(line[-1] == 'Z'); /* a revoked time, not "-" */
	}
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM audit WHERE actor LIKE 'cli:%'"
	                                   " AND action = 'token.create'"),
	                 2);
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM audit WHERE actor LIKE 'cli:%'"
	                                   " AND action = 'token.revoke' AND target = 'ops-alice'"),
	                 1);
}
END_TEST

START_TEST(cli_help)
{
	struct run r;

	tally_token(&r, (const char *[]){"--help", NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "tally token add NAME --role viewer|operator|admin"));
	ck_assert_ptr_nonnull(strstr(r.out, "tally token revoke NAME"));
	tally_token(&r, (const char *[]){NULL});
	ck_assert_int_eq(r.status, 2);
	ck_assert_str_eq(r.out, "");
	ck_assert_ptr_nonnull(strstr(r.err, "usage: tally token"));
}
END_TEST

/* Each refusal: its exit status and message, nothing on stdout, nothing
 * written (a database it names but that does not exist is not created). */
static const struct {
	const char *args[8];
	int status;
	const char *says;
	int fresh; /* on a database path that does not exist */
} cli_bad[] = {
    {{"add", "bob", "--role", "root"}, 2, "--role wants viewer, operator or admin, got 'root'", 0},
    {{"add", "bob", "--role", "Admin"}, 2, "--role wants viewer, operator or admin", 0},
    {{"add", "bob"}, 2, "--role wants viewer, operator or admin", 1},
    {{"add", "bob", "--role"}, 2, "--role wants a value", 1},
    {{"add", "a b", "--role", "viewer"}, 2, "'a b' is not a token name", 1},
    {{"add", "..", "--role", "viewer"}, 2, "is not a token name", 1},
    {{"add", "caf\xc3\xa9", "--role", "viewer"}, 2, "is not a token name", 1},
    {{"add", "01234567890123456789012345678901234567890123456789012345678901234", "--role",
      "viewer"},
     2,
     "is not a token name",
     1},
    {{"add", "", "--role", "viewer"}, 2, "is not a token name", 1},
    {{"add", "--role", "viewer"}, 2, "which token?", 1},
    {{"add", "ops1", "--role", "viewer"}, 1, "a staff token with this name exists", 0},
    {{"add", "OPS1", "--role", "admin"}, 1, "a staff token with this name exists", 0},
    {{"add", "admin", "--role", "viewer"}, 1, "the startup token's", 1},
    {{"add", "Admin", "--role", "admin"}, 1, "the startup token's", 0},
    {{"add", "bob", "extra", "--role", "viewer"}, 2, "unexpected argument 'extra'", 1},
    {{"revoke", "nobody"}, 1, "no staff token has this name", 0},
    {{"revoke", "nobody"}, 1, "no database there", 1},
    {{"revoke", "ADMIN"}, 1, "cannot be revoked", 0},
    {{"revoke", "a/b"}, 2, "is not a token name", 0},
    {{"revoke"}, 2, "which token?", 0},
    {{"list", "--role", "viewer"}, 2, "--role is for add", 0},
    {{"list"}, 1, "no database there", 1},
    {{"remove", "ops1"}, 2, "unknown command 'remove'", 0},
    {{"add", "bob", "--role", "viewer", "--color"}, 2, "unknown option '--color'", 0},
};

START_TEST(cli_refusals_write_nothing)
{
	const char *args[12];
	char fresh[640], hash[65];
	struct run r;
	long long tokens, audit;
	int n = 0;

	tally_token(&r,
	            (const char *[]){"add", "ops1", "--role", "operator", "--db", cli_db, NULL});
	ck_assert_int_eq(r.status, 0);
	stored_hash(cli_db, "ops1", hash);
	tokens = count_sql(cli_db, "SELECT count(*) FROM staff_tokens");
	audit = count_sql(cli_db, "SELECT count(*) FROM audit");
	snprintf(fresh, sizeof(fresh), "%s/fresh-%d.db", cli_dir, _i);
	/* --db first: a case may end with an option that wants a value. */
	args[n++] = "--db";
	args[n++] = cli_bad[_i].fresh ? fresh : cli_db;
	for (int k = 0; cli_bad[_i].args[k]; k++)
		args[n++] = cli_bad[_i].args[k];
	args[n] = NULL;
	tally_token(&r, args);
	ck_assert_msg(r.status == cli_bad[_i].status, "%s: status %d: %s", cli_bad[_i].args[0],
	              r.status, r.err);
	ck_assert_msg(strstr(r.err, cli_bad[_i].says), "said: %s", r.err);
	ck_assert_str_eq(r.out, "");
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM staff_tokens"), tokens);
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM audit"), audit);
	ck_assert_int_eq(count_sql(cli_db, "SELECT count(*) FROM staff_tokens WHERE revoked_at IS "
	                                   "NULL AND role = 'operator'"),
	                 1);
	{
		char again[65];

		stored_hash(cli_db, "ops1", again);
		ck_assert_str_eq(again, hash);
	}
	if (cli_bad[_i].fresh)
		ck_assert_msg(access(fresh, F_OK) == -1 && errno == ENOENT, "%s was created",
		              fresh);
}
END_TEST

/* ---- the server ---- */

static struct itest_server srv;
/* Secrets of the tokens the fixture adds: tv (viewer), to (operator), ta
 * (admin). */
static char sv[128], so[128], sa[128];

/* Add a token through the API (as the startup admin); its secret into out. */
static void api_add(const char *name, const char *role, char *out, size_t cap)
{
	struct itest_resp r;
	char body[200];
	json_t *j;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
	ck_assert_int_eq(call(srv.port, "POST", "/api/v1/admin/tokens", ITEST_TOKEN, body, &r), 0);
	ck_assert_msg(r.status == 201, "%d: %s", r.status, r.body);
	j = parse(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), name);
	ck_assert_str_eq(json_string_value(json_object_get(j, "role")), role);
	ck_assert(json_is_null(json_object_get(j, "revoked_at")));
	ck_assert(json_is_string(json_object_get(j, "created_at")));
	ck_assert(json_is_false(json_object_get(j, "startup")));
	snprintf(out, cap, "%s", json_string_value(json_object_get(j, "secret")));
	ck_assert_uint_eq(strlen(out), TALLY_STAFF_SECRET_LEN);
	json_decref(j);
	itest_resp_fini(&r);
}

static void server_setup(void)
{
	itest_start_with_food(&srv);
	api_add("tv", "viewer", sv, sizeof(sv));
	api_add("to", "operator", so, sizeof(so));
	api_add("ta", "admin", sa, sizeof(sa));
}

static void server_teardown(void)
{
	itest_cleanup(&srv);
}

/* The actor of the newest audit entry. */
static void newest_actor(char *dst, size_t cap, char *action, size_t acap)
{
	struct itest_resp r;
	json_t *j, *e;

	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/audit?limit=1", &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	e = json_array_get(json_object_get(j, "entries"), 0);
	snprintf(dst, cap, "%s", json_string_value(json_object_get(e, "actor")));
	snprintf(action, acap, "%s", json_string_value(json_object_get(e, "action")));
	json_decref(j);
	itest_resp_fini(&r);
}

/* Every staff route, with the least role this test expects it to need
 * (written down here apart from ws/api.c's table, so a mistake in either
 * shows) and the answer it gives a caller who may use it. %s in path and
 * body is the caller's name, so that each caller acts on its own things. */
static const struct route_case {
	const char *method, *pattern, *path, *body;
	enum staff_role needs;
	int ok;
} routes[] = {
    {"GET", "/api/v1/admin/queues", "/api/v1/admin/queues", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/jobs", "/api/v1/admin/jobs?queue=payments&state=dead", NULL,
     STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/donations/*", "/api/v1/admin/donations/dn_1", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/audit", "/api/v1/admin/audit?limit=5", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/donations.csv", "/api/v1/admin/donations.csv", NULL, STAFF_ADMIN, 200},
    {"GET", "/api/v1/admin/whoami", "/api/v1/admin/whoami", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/shield", "/api/v1/admin/shield", NULL, STAFF_VIEWER, 200},
    {"POST", "/api/v1/admin/shield/raise", "/api/v1/admin/shield/raise", "{}", STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/shield/lower", "/api/v1/admin/shield/lower", "{}", STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/campaigns/*/pause", "/api/v1/admin/campaigns/food/pause", "{}",
     STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/campaigns/*/resume", "/api/v1/admin/campaigns/food/resume", "{}",
     STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/queues/*/pause", "/api/v1/admin/queues/webhooks/pause", "{}",
     STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/queues/*/resume", "/api/v1/admin/queues/webhooks/resume", "{}",
     STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/queues/*/retry-dead", "/api/v1/admin/queues/payments/retry-dead", "{}",
     STAFF_OPERATOR, 200},
    {"POST", "/api/v1/admin/jobs/*/retry", "/api/v1/admin/jobs/999999/retry", "{}", STAFF_OPERATOR,
     404},
    {"DELETE", "/api/v1/admin/jobs/*", "/api/v1/admin/jobs/999999", NULL, STAFF_OPERATOR, 404},
    {"POST", "/api/v1/admin/campaigns/*/offline-donations",
     "/api/v1/admin/campaigns/food/offline-donations",
     "{\"amount_cents\":100,\"method\":\"cash\",\"donor\":{\"name\":\"by %s\"}}", STAFF_OPERATOR,
     201},
    {"POST", "/api/v1/admin/campaigns", "/api/v1/admin/campaigns",
     "{\"slug\":\"made-by-%s\",\"name\":\"X\",\"currency\":\"USD\"}", STAFF_ADMIN, 201},
    {"PATCH", "/api/v1/admin/campaigns/*", "/api/v1/admin/campaigns/food", "{\"goal_cents\":5}",
     STAFF_ADMIN, 200},
    {"POST", "/api/v1/admin/campaigns/*/close", "/api/v1/admin/campaigns/close-%s/close", "{}",
     STAFF_ADMIN, 200},
    {"POST", "/api/v1/admin/donations/*/refund", "/api/v1/admin/donations/dn_999/refund", "{}",
     STAFF_ADMIN, 404},
    {"GET", "/api/v1/admin/tokens", "/api/v1/admin/tokens", NULL, STAFF_ADMIN, 200},
    {"POST", "/api/v1/admin/tokens", "/api/v1/admin/tokens",
     "{\"name\":\"made-by-%s\",\"role\":\"viewer\"}", STAFF_ADMIN, 201},
    {"DELETE", "/api/v1/admin/tokens/*", "/api/v1/admin/tokens/nobody-%s", NULL, STAFF_ADMIN, 404},
    {"GET", "/api/v1/admin/match-pools", "/api/v1/admin/match-pools", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/match-pools/*", "/api/v1/admin/match-pools/nope", NULL, STAFF_VIEWER,
     404},
    {"POST", "/api/v1/admin/match-pools", "/api/v1/admin/match-pools",
     "{\"slug\":\"made-by-%s\",\"name\":\"X\",\"amount_cents\":100,\"campaigns\":[\"food\"]}",
     STAFF_ADMIN, 201},
    {"PATCH", "/api/v1/admin/match-pools/*", "/api/v1/admin/match-pools/nope", "{\"ratio\":2}",
     STAFF_ADMIN, 404},
    {"POST", "/api/v1/admin/match-pools/*/pause", "/api/v1/admin/match-pools/nope/pause", "{}",
     STAFF_OPERATOR, 404},
    {"POST", "/api/v1/admin/match-pools/*/resume", "/api/v1/admin/match-pools/nope/resume", "{}",
     STAFF_OPERATOR, 404},
    {"POST", "/api/v1/admin/match-pools/*/deplete", "/api/v1/admin/match-pools/nope/deplete", "{}",
     STAFF_ADMIN, 404},
    {"GET", "/api/v1/admin/challenges", "/api/v1/admin/challenges", NULL, STAFF_VIEWER, 200},
    {"GET", "/api/v1/admin/challenges/*", "/api/v1/admin/challenges/nope", NULL, STAFF_VIEWER, 404},
    {"POST", "/api/v1/admin/challenges", "/api/v1/admin/challenges",
     "{\"slug\":\"made-by-%s\",\"name\":\"X\",\"kind\":\"gifts\",\"threshold\":5,"
     "\"bonus_cents\":100,\"campaign\":\"food\",\"starts_at\":\"2026-01-01T00:00:00Z\","
     "\"ends_at\":\"2027-01-01T00:00:00Z\"}",
     STAFF_ADMIN, 201},
    {"PUT", "/api/v1/admin/day", "/api/v1/admin/day",
     "{\"name\":\"Day of %s\",\"opens_at\":\"2030-01-01T00:00:00Z\","
     "\"closes_at\":\"2030-01-02T00:00:00Z\"}",
     STAFF_ADMIN, 200},
    {"DELETE", "/api/v1/admin/day", "/api/v1/admin/day", NULL, STAFF_ADMIN, 200},
};

static const char *const method_names[] = {"GET",    "HEAD", "POST",    "PATCH",
                                           "DELETE", "PUT",  "OPTIONS", "OTHER"};

/* The test's table names every route of ws/api.c that needs a token, and
 * nothing else. */
START_TEST(route_table_is_covered)
{
	size_t staff = 0;

	for (size_t i = 0; i < api_n_routes; i++) {
		const struct route *r = &api_routes[i];
		int found = 0;

		if (r->role == STAFF_PUBLIC) {
			ck_assert_msg(strncmp(r->pattern, "/api/v1/admin", 13), "%s is public",
			              r->pattern);
			continue;
		}
		staff++;
		for (size_t k = 0; k < sizeof(routes) / sizeof(routes[0]); k++)
			found |= !strcmp(routes[k].pattern, r->pattern) &&
			         !strcmp(routes[k].method, method_names[r->method]);
		ck_assert_msg(found, "%s %s is not in the test's table", method_names[r->method],
		              r->pattern);
	}
	ck_assert_uint_eq(staff, sizeof(routes) / sizeof(routes[0]));
}
END_TEST

START_TEST(every_route_for_every_role)
{
	static const struct {
		const char *name;
		enum staff_role role;
	} callers[] = {
	    {"tv", STAFF_VIEWER},
	    {"to", STAFF_OPERATOR},
	    {"ta", STAFF_ADMIN},
	    {"admin", STAFF_ADMIN},
	};
	const char *secrets[] = {sv, so, sa, ITEST_TOKEN};
	char path[256], body[256];

	/* Something for each caller to act on. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 2500, "Ada", "ada@example.org"), 202);
	for (size_t c = 0; c < 4; c++) {
		snprintf(path, sizeof(path), "close-%s", callers[c].name);
		ck_assert_int_eq(itest_create_campaign(srv.port, path, "USD", 0), 201);
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route_case *rc = &routes[i];

		/* No token, or one nobody has: 401. */
		snprintf(path, sizeof(path), rc->path, "x");
		for (int k = 0; k < 2; k++) {
			int st =
			    status_of(srv.port, rc->method, path, k ? "tly_nope" : NULL, rc->body);

			ck_assert_msg(st == 401, "%s %s with %s: %d", rc->method, path,
			              k ? "a wrong token" : "no token", st);
		}
		for (size_t c = 0; c < 4; c++) {
			struct itest_resp r;
			int want = callers[c].role >= rc->needs ? rc->ok : 403;

			snprintf(path, sizeof(path), rc->path, callers[c].name);
			if (rc->body)
				snprintf(body, sizeof(body), rc->body, callers[c].name);
			ck_assert_int_eq(call(srv.port, rc->method, path, secrets[c],
			                      rc->body ? body : NULL, &r),
			                 0);
			ck_assert_msg(r.status == want, "%s %s as %s: %d, want %d: %s", rc->method,
			              path, callers[c].name, r.status, want, r.body);
			if (want == 403) {
				json_t *j = expect_error(&r, 403, "forbidden");
				const char *need = json_string_value(
				    json_object_get(json_object_get(j, "error"), "role_needed"));
				const char *msg = json_string_value(
				    json_object_get(json_object_get(j, "error"), "message"));

				ck_assert_str_eq(need, staff_role_names[rc->needs]);
				ck_assert_ptr_nonnull(strstr(msg, staff_role_names[rc->needs]));
				json_decref(j);
			}
			itest_resp_fini(&r);
		}
	}
	/* What a role may not do left no trace. */
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit WHERE actor LIKE 'tv@%'"),
	                 0);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit WHERE actor LIKE 'to@%' AND"
	                                   " action NOT IN ('campaign.pause', 'campaign.resume',"
	                                   " 'queue.pause', 'queue.resume', 'queue.retry-dead',"
	                                   " 'offline_gift', 'shield.raise', 'shield.lower')"),
	                 0);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit WHERE actor = "
	                                   "'to@127.0.0.1' AND action = 'queue.pause'"),
	                 1);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM campaigns WHERE slug IN"
	                                   " ('made-by-tv', 'made-by-to', 'made-by-ta',"
	                                   " 'made-by-admin')"),
	                 2);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM campaigns WHERE status = 'closed'"
	                                   " AND slug IN ('close-ta', 'close-admin')"),
	                 2);
	ck_assert_int_eq(
	    count_sql(srv.db, "SELECT count(*) FROM campaigns WHERE status = 'closed'"), 2);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM staff_tokens WHERE name LIKE "
	                                   "'made-by-%'"),
	                 2);
	ck_assert_int_eq(count_sql(srv.db, "SELECT goal_cents FROM campaigns WHERE slug = 'food'"),
	                 5);
}
END_TEST

START_TEST(whoami_names_each_caller)
{
	static const struct {
		const char *name, *role;
	} want[] = {{"tv", "viewer"}, {"to", "operator"}, {"ta", "admin"}, {"admin", "admin"}};
	const char *secrets[] = {sv, so, sa, ITEST_TOKEN};
	struct itest_resp r;

	for (size_t i = 0; i < 4; i++) {
		json_t *j;

		ck_assert_int_eq(
		    call(srv.port, "GET", "/api/v1/admin/whoami", secrets[i], NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		j = parse(&r);
		ck_assert_str_eq(json_string_value(json_object_get(j, "name")), want[i].name);
		ck_assert_str_eq(json_string_value(json_object_get(j, "role")), want[i].role);
		ck_assert_int_eq(json_object_size(j), 2);
		json_decref(j);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(call(srv.port, "GET", "/api/v1/admin/whoami", NULL, NULL, &r), 0);
	json_decref(expect_error(&r, 401, "unauthorized"));
	itest_resp_fini(&r);
	/* A token's hash, or a secret cut short or with more after it, is no
	 * token. */
	{
		char hash[65], cut[128], more[160];

		stored_hash(srv.db, "tv", hash);
		snprintf(cut, sizeof(cut), "%.*s", (int)strlen(sv) - 1, sv);
		snprintf(more, sizeof(more), "%sx", sv);
		ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", hash, NULL),
		                 401);
		ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", cut, NULL),
		                 401);
		ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", more, NULL),
		                 401);
	}
}
END_TEST

/* Added through the API: shown once, works at once; revoked: stops at once. */
START_TEST(api_add_and_revoke_take_effect_at_once)
{
	char secret[128], hash[65], mine[65];
	struct itest_resp r;
	json_t *j;

	api_add("night-shift", "operator", secret, sizeof(secret));
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", secret, NULL), 200);
	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/queues/receipts/pause", secret, "{}"), 200);
	/* Stored as its hash only. */
	stored_hash(srv.db, "night-shift", hash);
	sha256_hex(secret, mine);
	ck_assert_str_eq(hash, mine);
	ck_assert(!db_files_have(srv.db, secret));
	/* Listed without a secret or a hash; the startup token first. */
	ck_assert_int_eq(call(srv.port, "GET", "/api/v1/admin/tokens", ITEST_TOKEN, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(strstr(r.body, "tly_"));
	ck_assert_ptr_null(strstr(r.body, "secret"));
	ck_assert_ptr_null(strstr(r.body, hash));
	j = parse(&r);
	{
		json_t *v = json_object_get(j, "tokens"), *first = json_array_get(v, 0);

		ck_assert_uint_eq(json_array_size(v), 5);
		ck_assert_str_eq(json_string_value(json_object_get(first, "name")), "admin");
		ck_assert(json_is_true(json_object_get(first, "startup")));
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 4), "name")),
		                 "night-shift");
	}
	json_decref(j);
	itest_resp_fini(&r);

	ck_assert_int_eq(
	    call(srv.port, "DELETE", "/api/v1/admin/tokens/Night-Shift", ITEST_TOKEN, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	j = parse(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "night-shift");
	ck_assert(json_is_string(json_object_get(j, "revoked_at")));
	ck_assert_ptr_null(json_object_get(j, "secret"));
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", secret, NULL), 401);
	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/queues/receipts/resume", secret, "{}"), 401);
	/* Again: 200, nothing new in the audit. */
	{
		long long audit = count_sql(srv.db, "SELECT count(*) FROM audit");

		ck_assert_int_eq(status_of(srv.port, "DELETE", "/api/v1/admin/tokens/night-shift",
		                           ITEST_TOKEN, NULL),
		                 200);
		ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit"), audit);
	}
	/* The name stays taken. */
	ck_assert_int_eq(call(srv.port, "POST", "/api/v1/admin/tokens", ITEST_TOKEN,
	                      "{\"name\":\"night-shift\",\"role\":\"viewer\"}", &r),
	                 0);
	json_decref(expect_error(&r, 409, "token_exists"));
	itest_resp_fini(&r);
	/* Unknown names, and the startup token. */
	ck_assert_int_eq(
	    call(srv.port, "DELETE", "/api/v1/admin/tokens/nobody", ITEST_TOKEN, NULL, &r), 0);
	json_decref(expect_error(&r, 404, "token_not_found"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    call(srv.port, "DELETE", "/api/v1/admin/tokens/a%20b", ITEST_TOKEN, NULL, &r), 0);
	json_decref(expect_error(&r, 404, "token_not_found"));
	itest_resp_fini(&r);
	ck_assert_int_eq(call(srv.port, "DELETE", "/api/v1/admin/tokens/ADMIN", sa, NULL, &r), 0);
	json_decref(expect_error(&r, 409, "startup_token"));
	itest_resp_fini(&r);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", ITEST_TOKEN, NULL),
	                 200);
}
END_TEST

/* The audit names the token that acted, with the client's address. */
START_TEST(audit_names_the_token)
{
	char actor[128], action[64];

	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/campaigns/food/pause", so, "{}"), 200);
	newest_actor(actor, sizeof(actor), action, sizeof(action));
	ck_assert_str_eq(actor, "to@127.0.0.1");
	ck_assert_str_eq(action, "campaign.pause");
	ck_assert_int_eq(status_of(srv.port, "POST", "/api/v1/admin/campaigns", sa,
	                           "{\"slug\":\"by-ta\",\"name\":\"T\",\"currency\":\"USD\"}"),
	                 201);
	newest_actor(actor, sizeof(actor), action, sizeof(action));
	ck_assert_str_eq(actor, "ta@127.0.0.1");
	ck_assert_str_eq(action, "campaign.create");
	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/campaigns/food/resume", ITEST_TOKEN, "{}"),
	    200);
	newest_actor(actor, sizeof(actor), action, sizeof(action));
	ck_assert_str_eq(actor, "admin@127.0.0.1");
	/* The token changes themselves, by whom. */
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit WHERE actor ="
	                                   " 'admin@127.0.0.1' AND action = 'token.create' AND"
	                                   " target = 'to' AND detail = 'role operator'"),
	                 1);
	/* A name of 64 characters fits, with an IPv6-sized address. */
	{
		char name[80], secret[128], want[160];

		memset(name, 'n', 64);
		name[64] = '\0';
		api_add(name, "operator", secret, sizeof(secret));
		ck_assert_int_eq(status_of(srv.port, "POST", "/api/v1/admin/queues/webhooks/pause",
		                           secret, "{}"),
		                 200);
		newest_actor(actor, sizeof(actor), action, sizeof(action));
		snprintf(want, sizeof(want), "%s@127.0.0.1", name);
		ck_assert_str_eq(actor, want);
	}
}
END_TEST

/* Every kind of bad token request: a clear error, nothing written. */
static const struct {
	const char *ctype, *body;
	int status;
	const char *code, *field;
} bad_adds[] = {
    {"application/json", "{\"name\":\"x\"", 400, "invalid_json", NULL},
    {"application/json", "[1]", 400, "invalid_json", NULL},
    {"application/json", "", 400, "invalid_json", NULL},
    {"text/plain", "{\"name\":\"x\",\"role\":\"viewer\"}", 415, "unsupported_media_type", NULL},
    {"application/json", "{}", 422, "validation_failed", "name"},
    {"application/json", "{\"name\":\"x\"}", 422, "validation_failed", "role"},
    {"application/json", "{\"name\":\"x\",\"role\":\"root\"}", 422, "validation_failed", "role"},
    {"application/json", "{\"name\":\"x\",\"role\":\"Viewer\"}", 422, "validation_failed", "role"},
    {"application/json", "{\"name\":\"x\",\"role\":[\"viewer\"]}", 422, "validation_failed",
     "role"},
    {"application/json", "{\"name\":\"x\",\"role\":\"public\"}", 422, "validation_failed", "role"},
    {"application/json", "{\"name\":\"\",\"role\":\"viewer\"}", 422, "validation_failed", "name"},
    {"application/json", "{\"name\":\"a b\",\"role\":\"viewer\"}", 422, "validation_failed",
     "name"},
    {"application/json", "{\"name\":\"a/b\",\"role\":\"viewer\"}", 422, "validation_failed",
     "name"},
    {"application/json", "{\"name\":\".\",\"role\":\"viewer\"}", 422, "validation_failed", "name"},
    {"application/json", "{\"name\":\"\\u00e9t\\u00e9\",\"role\":\"viewer\"}", 422,
     "validation_failed", "name"},
    {"application/json", "{\"name\":\"x\\u0000\",\"role\":\"viewer\"}", 400, "invalid_json", NULL},
    {"application/json", "{\"name\":[\"x\"],\"role\":\"viewer\"}", 422, "validation_failed",
     "name"},
    {"application/json",
     "{\"name\":\"01234567890123456789012345678901234567890123456789012345678901234\","
     "\"role\":\"viewer\"}",
     422, "validation_failed", "name"},
    {"application/json", "{\"name\":\"tv\",\"role\":\"admin\"}", 409, "token_exists", "name"},
    {"application/json", "{\"name\":\"TV\",\"role\":\"viewer\"}", 409, "token_exists", "name"},
    {"application/json", "{\"name\":\"admin\",\"role\":\"admin\"}", 409, "token_exists", "name"},
    {"application/json", "{\"name\":\"Admin\",\"role\":\"viewer\"}", 409, "token_exists", "name"},
};

START_TEST(bad_token_requests_write_nothing)
{
	long long tokens = count_sql(srv.db, "SELECT count(*) FROM staff_tokens");
	long long audit = count_sql(srv.db, "SELECT count(*) FROM audit");
	struct itest_resp r;
	char h[300];
	json_t *j;

	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nContent-Type: %s\r\n", ITEST_TOKEN,
	         bad_adds[_i].ctype);
	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/admin/tokens", h, bad_adds[_i].body,
	                            strlen(bad_adds[_i].body), &r),
	                 0);
	j = expect_error(&r, bad_adds[_i].status, bad_adds[_i].code);
	if (bad_adds[_i].field)
		ck_assert_msg(
		    json_object_get(json_object_get(json_object_get(j, "error"), "fields"),
		                    bad_adds[_i].field),
		    "no %s in %s", bad_adds[_i].field, r.body);
	ck_assert_ptr_null(strstr(r.body, "tly_"));
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM staff_tokens"), tokens);
	ck_assert_int_eq(count_sql(srv.db, "SELECT count(*) FROM audit"), audit);
	/* Still serving, and the old viewer is still a viewer. */
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", sv, NULL), 200);
	ck_assert_int_eq(count_sql(srv.db,
	                           "SELECT count(*) FROM staff_tokens WHERE name = 'tv' AND role = "
	                           "'viewer'"),
	                 1);
}
END_TEST

/* A secret, or the next 401, within deadline_ms: polls whoami (the
 * condition) rather than sleeping a guessed time. Returns the status
 * seen last. */
static int whoami_until(const char *secret, int want, int deadline_ms)
{
	long long end = now_ms() + deadline_ms;
	int st;

	while ((st = status_of(srv.port, "GET", "/api/v1/admin/whoami", secret, NULL)) != want &&
	       now_ms() < end)
		pause_ms(50);
	return st;
}

/* tally token against the database of a running server: the server takes
 * the change within the stated two seconds (here a generous deadline for
 * a sanitizer build on a busy machine), without a restart. */
START_TEST(cli_changes_reach_a_running_server)
{
	char secret[128];
	struct run r;
	long long t0;
	int st;

	tally_token(&r,
	            (const char *[]){"add", "oncall", "--role", "operator", "--db", srv.db, NULL});
	ck_assert_msg(r.status == 0, "%s", r.err);
	snprintf(secret, sizeof(secret), "%.*s", TALLY_STAFF_SECRET_LEN, r.out);
	t0 = now_ms();
	st = whoami_until(secret, 200, 10000);
	ck_assert_msg(st == 200, "the server did not take the token: %d", st);
	fprintf(stderr, "tokens: a CLI-added token worked after %lld ms\n", now_ms() - t0);
	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/queues/receipts/pause", secret, "{}"), 200);
	ck_assert_int_eq(
	    status_of(srv.port, "POST", "/api/v1/admin/campaigns/food/close", secret, "{}"), 403);
	/* The server's own listing shows it. */
	{
		struct itest_resp lr;

		ck_assert_int_eq(call(srv.port, "GET", "/api/v1/admin/tokens", sa, NULL, &lr), 0);
		ck_assert_ptr_nonnull(strstr(lr.body, "\"name\":\"oncall\""));
		itest_resp_fini(&lr);
	}
	tally_token(&r, (const char *[]){"revoke", "oncall", "--db", srv.db, NULL});
	ck_assert_msg(r.status == 0, "%s", r.err);
	t0 = now_ms();
	st = whoami_until(secret, 401, 10000);
	ck_assert_msg(st == 401, "the revoked token still works: %d", st);
	fprintf(stderr, "tokens: a CLI-revoked token stopped after %lld ms\n", now_ms() - t0);
	/* A name the server handed out is taken for the command line too. */
	tally_token(&r, (const char *[]){"add", "TA", "--role", "viewer", "--db", srv.db, NULL});
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	/* And the other way round, while the server runs. */
	tally_token(&r, (const char *[]){"revoke", "ta", "--db", srv.db, NULL});
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(whoami_until(sa, 401, 10000), 401);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", ITEST_TOKEN, NULL),
	                 200);
}
END_TEST

/* Tokens outlive a restart: read at open, revoked ones stay revoked. */
START_TEST(tokens_survive_a_restart)
{
	int st;

	ck_assert_int_eq(
	    status_of(srv.port, "DELETE", "/api/v1/admin/tokens/to", ITEST_TOKEN, NULL), 200);
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(itest_sql_int(srv.db, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", sv, NULL), 200);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", sa, NULL), 200);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", so, NULL), 401);
	ck_assert_int_eq(status_of(srv.port, "GET", "/api/v1/admin/whoami", ITEST_TOKEN, NULL),
	                 200);
}
END_TEST

/* The staff console's websocket takes any valid token and says who it is;
 * a revoked one gets 401. */
static int console_upgrade(const char *bearer, char *head, size_t cap)
{
	char req[600];
	int fd = itest_conn_open(srv.port), n;

	ck_assert_int_ge(fd, 0);
	n = snprintf(req, sizeof(req),
	             "GET /live/console HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.console.v1\r\n"
	             "Authorization: Bearer %s\r\n\r\n",
	             srv.port, bearer);
	ck_assert_int_eq(itest_send(fd, req, (size_t)n), 0);
	ck_assert_int_eq(itest_read_head(fd, head, cap, 10000), 0);
	return fd;
}

START_TEST(console_feed_takes_named_tokens)
{
	char head[2048], *payload = NULL;
	size_t len = 0;
	int fd, op = 0;
	json_t *j;

	fd = console_upgrade(sv, head, sizeof(head));
	ck_assert_msg(strstr(head, " 101 "), "%s", head);
	ck_assert_int_eq(itest_ws_next(fd, 10000, &op, &payload, &len), 0);
	j = json_loads(payload, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "hello");
	ck_assert_str_eq(json_string_value(json_object_get(j, "who")), "tv");
	ck_assert_str_eq(json_string_value(json_object_get(j, "role")), "viewer");
	json_decref(j);
	free(payload);
	close(fd);
	ck_assert_int_eq(
	    status_of(srv.port, "DELETE", "/api/v1/admin/tokens/tv", ITEST_TOKEN, NULL), 200);
	fd = console_upgrade(sv, head, sizeof(head));
	ck_assert_msg(strstr(head, " 401 "), "%s", head);
	close(fd);
}
END_TEST

Suite *tokens_suite(void)
{
	Suite *s = suite_create("tokens");
	TCase *unit = tcase_create("rules");
	TCase *cli = tcase_create("cli");
	TCase *api = tcase_create("api");

	tcase_add_unchecked_fixture(unit, tests_root_setup, tests_root_teardown);
	tcase_add_test(unit, token_names);
	tcase_add_test(unit, role_names);
	tcase_add_test(unit, secrets_and_hashes);
	tcase_add_test(unit, table_in_memory);
	tcase_add_test(unit, token_bodies);
	tcase_add_test(unit, route_table_is_covered);
	suite_add_tcase(s, unit);

	tcase_add_unchecked_fixture(cli, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(cli, cli_setup, cli_teardown);
	tcase_set_timeout(cli, 60);
	tcase_add_test(cli, cli_add_list_revoke);
	tcase_add_test(cli, cli_help);
	tcase_add_loop_test(cli, cli_refusals_write_nothing, 0,
	                    (int)(sizeof(cli_bad) / sizeof(cli_bad[0])));
	suite_add_tcase(s, cli);

	tcase_add_unchecked_fixture(api, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(api, server_setup, server_teardown);
	tcase_set_timeout(api, 90);
	tcase_add_test(api, every_route_for_every_role);
	tcase_add_test(api, whoami_names_each_caller);
	tcase_add_test(api, api_add_and_revoke_take_effect_at_once);
	tcase_add_test(api, audit_names_the_token);
	tcase_add_loop_test(api, bad_token_requests_write_nothing, 0,
	                    (int)(sizeof(bad_adds) / sizeof(bad_adds[0])));
	tcase_add_test(api, cli_changes_reach_a_running_server);
	tcase_add_test(api, tokens_survive_a_restart);
	tcase_add_test(api, console_feed_takes_named_tokens);
	suite_add_tcase(s, api);
	return s;
}
