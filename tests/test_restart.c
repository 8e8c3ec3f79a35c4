/* tests/test_restart.c - durability of the real binary: totals survive a
 * clean restart, and every donation acknowledged with 202 survives SIGKILL
 * exactly once, even in the middle of a load; the files it keeps are
 * private (modes under umask 022, the admin token file's check). */
#include "tests/itest.h"
#include "tests/tests.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct itest_server srv;

static void start(void)
{
	itest_start_with_food(&srv);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

static json_int_t api_total(const char *field)
{
	struct itest_resp r;
	json_int_t v = -1;
	json_t *j;

	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_unpack(j, "{s:I}", field, &v);
	json_decref(j);
	itest_resp_fini(&r);
	return v;
}

static void assert_integrity(void)
{
	char sql[] = "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'";

	ck_assert_int_eq(itest_sql_int(srv.db, sql), 1);
}

/* The seq of the leaderboard's snapshot on a new subscription. */
static long long board_seq(void)
{
	int fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);
	long long seq = -1;
	char *m, *p;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"leaderboard\"}"),
	                 0);
	m = itest_ws_wait_for(fd, "snapshot", 3000);
	ck_assert_ptr_nonnull(m);
	p = strstr(m, "\"seq\":");
	if (p)
		seq = atoll(p + 6);
	free(m);
	close(fd);
	return seq;
}

START_TEST(totals_survive_restart)
{
	long long sum = 0, seq_before;
	int st;
	char *m;
	int fd;

	for (int i = 1; i <= 40; i++) {
		char email[64];

		snprintf(email, sizeof(email), "d%d@example.org", i % 7);
		ck_assert_int_eq(itest_donate(srv.port, "food", 100 * i, "Donor", email), 202);
		sum += 100 * i;
	}
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(api_total("total_cents"), sum);
	ck_assert_int_eq(api_total("donor_count"), 7);
	seq_before = board_seq();
	ck_assert_int_gt(seq_before, 0);
	st = itest_signal(&srv, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status %d", st);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(api_total("total_cents"), sum);
	ck_assert_int_eq(api_total("donor_count"), 7);
	ck_assert_int_eq(api_total("donation_count"), 40);
	/* Live seqs never go back, across restarts too (clients resume with
	 * "since"). */
	ck_assert_int_ge(board_seq(), seq_before);
	fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	m = itest_ws_wait_for(fd, "snapshot", 3000);
	ck_assert_ptr_nonnull(m);
	{
		char want[64];

		snprintf(want, sizeof(want), "\"total_cents\":%lld", sum);
		ck_assert_ptr_nonnull(strstr(m, want));
	}
	free(m);
	close(fd);
	assert_integrity();
}
END_TEST

START_TEST(acknowledged_gift_survives_sigkill)
{
	struct itest_resp r;
	const char *id = NULL;
	json_t *j;
	char sql[128];
	int st;

	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations",
	                                 "{\"amount_cents\":3100,\"currency\":\"USD\",\"donor\":"
	                                 "{\"name\":\"Ada\",\"email\":\"ada@example.org\"}}",
	                                 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 202);
	st = itest_signal(&srv, SIGKILL);
	ck_assert(WIFSIGNALED(st));
	j = json_loads(r.body, 0, NULL);
	ck_assert_int_eq(json_unpack(j, "{s:s}", "id", &id), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM donations WHERE id = %s", id + 3);
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_sql_int(srv.db, sql), 1);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	/* Pending until its capture (run again after the restart) is done. */
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(api_total("total_cents"), 3100);
}
END_TEST

/* A load thread: posts donations until told to stop or the server dies,
 * recording the ids that were acknowledged. */
struct load {
	pthread_mutex_t lock;
	int port;
	atomic_int stop;
	long long ids[20000];
	long long amounts[20000];
	int n;
};

static void *load_main(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		char body[256];
		struct itest_resp r;
		long long cents;
		json_t *j;
		const char *id;
		int n;

		pthread_mutex_lock(&l->lock);
		n = l->n;
		pthread_mutex_unlock(&l->lock);
		cents = 100 + (n % 50) * 10;
		snprintf(body, sizeof(body),
		         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"L\","
		         "\"email\":\"l%d@example.org\"}}",
		         cents, n % 100);
		if (itest_post_json(l->port, "/api/v1/campaigns/food/donations", body, 0, &r))
			break;
		if (r.status == 202 && (j = json_loads(r.body, 0, NULL))) {
			pthread_mutex_lock(&l->lock);
			if (!json_unpack(j, "{s:s}", "id", &id) && l->n < 20000) {
				l->ids[l->n] = atoll(id + 3);
				l->amounts[l->n++] = cents;
			}
			pthread_mutex_unlock(&l->lock);
			json_decref(j);
		}
		itest_resp_fini(&r);
	}
	return NULL;
}

/* Start three load threads on l (reset first). */
static void load_start(struct load *l, pthread_t t[3])
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->port = srv.port;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, load_main, l), 0);
}

/* Stop and join them; at least one donation must have been acknowledged. */
static void load_stop(struct load *l, pthread_t t[3])
{
	atomic_store(&l->stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_gt(l->n, 0);
	pthread_mutex_destroy(&l->lock);
}

START_TEST(sigkill_during_load_loses_nothing)
{
	static struct load l;

	for (int round = 0; round < 10; round++) {
		pthread_t t[3];
		struct timespec ts = {0, 150000000L + round * 20000000L};
		int st;

		load_start(&l, t);
		nanosleep(&ts, NULL);
		st = itest_signal(&srv, SIGKILL);
		ck_assert(WIFSIGNALED(st));
		load_stop(&l, t);
		/* Every acknowledged id is in the database exactly once. */
		for (int i = 0; i < l.n; i++) {
			char sql[128];

			snprintf(sql, sizeof(sql), "SELECT count(*) FROM donations WHERE id = %lld",
			         l.ids[i]);
			long long n = itest_sql_int(srv.db, sql);

			ck_assert_msg(n == 1, "round %d: donation %lld: count %lld", round,
			              l.ids[i], n);
		}
		ck_assert_int_eq(itest_start(&srv, NULL), 0);
		assert_integrity();
		/* Captures cut short by the kill run again: once they are all
		 * done, every gift counts exactly once. */
		ck_assert_int_eq(itest_settle(srv.port), 0);
		ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"
		                                       " WHERE status <> 'succeeded'"),
		                 0);
		ck_assert_int_eq(api_total("pending_cents"), 0);
		ck_assert_int_eq(api_total("total_cents"),
		                 itest_sql_int(srv.db, "SELECT coalesce(sum(amount_cents),0) FROM "
		                                       "donations WHERE status = 'succeeded'"));
		ck_assert_int_eq(api_total("donation_count"),
		                 itest_sql_int(srv.db, "SELECT count(*) FROM donations"));
		ck_assert_int_eq(api_total("donor_count"),
		                 itest_sql_int(srv.db, "SELECT count(DISTINCT lower(donor_email)) "
		                                       "FROM donations"));
	}
}
END_TEST

START_TEST(one_tally_per_database)
{
	struct itest_server second;
	char *log;
	FILE *f;
	char line[512];
	int found = 0;

	memset(&second, 0, sizeof(second));
	second.dir = strdup(srv.dir); /* same folder, same t.db */
	ck_assert_int_ne(itest_start(&second, NULL), 0);
	log = second.log;
	f = fopen(log, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, "another tally process is using this database") != NULL;
	fclose(f);
	ck_assert_msg(found, "no clear message in %s", log);
	free(second.dir);
	/* The first one is unharmed. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 100, "A", "a@example.org"), 202);
}
END_TEST

START_TEST(sigterm_answers_what_it_accepted)
{
	static struct load l;
	pthread_t t[3];
	struct timespec ts = {0, 300000000L};
	int st;

	load_start(&l, t);
	nanosleep(&ts, NULL);
	st = itest_signal(&srv, SIGTERM);
	load_stop(&l, t);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	/* Every 202 is in the database, and nothing was committed without one
	 * being sent (the drain answers everything it accepted). */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), l.n);
}
END_TEST

START_TEST(status_and_limits_survive_restart)
{
	struct itest_resp r;
	json_t *j;
	int st;

	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Restart with a higher minimum gift: the configured range applies. */
	ck_assert_int_eq(itest_start(&srv, "--min-cents 500 --max-cents 9000"), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r),
	                 0);
	j = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "paused");
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_donate(srv.port, "food", 1000, "A", "a@example.org"), 409);
	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/resume", "{}", 1, &r), 0);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_donate(srv.port, "food", 400, "A", "a@example.org"), 422);
	ck_assert_int_eq(itest_donate(srv.port, "food", 9001, "A", "a@example.org"), 422);
	ck_assert_int_eq(itest_donate(srv.port, "food", 500, "A", "a@example.org"), 202);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 1);
}
END_TEST

START_TEST(retry_after_pause_and_restart_replays)
{
	const char *body =
	    "{\"amount_cents\":4100,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	    "\"email\":\"ada@example.org\"}}";
	const char *hdr =
	    "Content-Type: application/json\r\nIdempotency-Key: gift-before-pause\r\n";
	struct itest_resp a, b;
	char hv[16];
	int st;

	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdr, body,
	                            strlen(body), &a),
	                 0);
	ck_assert_int_eq(a.status, 202);
	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &b), 0);
	itest_resp_fini(&b);
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	/* The key is no longer in memory and the campaign is paused: the first
	 * answer still stands. */
	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdr, body,
	                            strlen(body), &b),
	                 0);
	ck_assert_int_eq(b.status, 202);
	ck_assert_str_eq(b.body, a.body);
	ck_assert_ptr_nonnull(itest_header(&b, "idempotent-replayed", hv, sizeof(hv)));
	itest_resp_fini(&b);
	/* A new gift is refused while paused. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 100, "B", "b@example.org"), 409);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 1);
	itest_resp_fini(&a);
}
END_TEST

struct poster {
	int port;
	int status;
	char retry_after[16];
};

static void *post_main(void *arg)
{
	struct poster *ps = arg;
	struct itest_resp r;

	if (itest_post_json(ps->port, "/api/v1/campaigns/food/donations",
	                    "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":\"Q\","
	                    "\"email\":\"q@example.org\"}}",
	                    0, &r) == 0) {
		ps->status = r.status;
		if (!itest_header(&r, "retry-after", ps->retry_after, sizeof(ps->retry_after)))
			ps->retry_after[0] = '\0';
		itest_resp_fini(&r);
	}
	return NULL;
}

START_TEST(full_queue_answers_503)
{
	enum { N = 6 };
	struct poster ps[N];
	pthread_t t[N];
	struct timespec ts = {0, 300000000L};
	sqlite3 *lock;
	int ok = 0, busy = 0, st;

	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, "--queue 2"), 0);
	/* Hold the database so the writer cannot commit: its first batch
	 * waits, two more donations fit the queue, the rest must be refused. */
	ck_assert_int_eq(sqlite3_open(srv.db, &lock), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < N; i++) {
		memset(&ps[i], 0, sizeof(ps[i]));
		ps[i].port = srv.port;
		ck_assert_int_eq(pthread_create(&t[i], NULL, post_main, &ps[i]), 0);
		nanosleep(&(struct timespec){0, 50000000L}, NULL);
	}
	nanosleep(&ts, NULL);
	ck_assert_int_eq(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(lock);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++) {
		if (ps[i].status == 202) {
			ok++;
		} else {
			ck_assert_int_eq(ps[i].status, 503);
			ck_assert_int_ge(atoi(ps[i].retry_after), 1);
			busy++;
		}
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_le(ok, 3);
	ck_assert_int_ge(busy, 3);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), ok);
}
END_TEST

/* ---- the files tally keeps ---- */

/* Start $TALLY_BIN --headless on a free port with DIR/t.db, the extra
 * args (space separated, may be NULL) and, unlike itest_start, no
 * TALLY_ADMIN_TOKEN (so it uses a token file), under umask 022; its
 * stderr goes to s->log. Returns 0 once it serves, 1 once it has exited
 * (*status its wait status), -1 when neither within 10 s (times
 * itest_slowdown). */
static int start_plain(struct itest_server *s, const char *extra, int *status)
{
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	const char *assets = getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets";
	char *argv[24], *copy = extra ? strdup(extra) : NULL, line[512];
	int argc = 0;

	snprintf(s->db, sizeof(s->db), "%s/t.db", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/stderr", s->dir);
	argv[argc++] = (char *)bin;
	argv[argc++] = "--headless";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--db";
	argv[argc++] = s->db;
	argv[argc++] = "--assets";
	argv[argc++] = (char *)assets;
	for (char *tok = copy ? strtok(copy, " ") : NULL; tok && argc < 22; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(126);
		umask(022);
		unsetenv("TALLY_ADMIN_TOKEN");
		execv(bin, argv);
		_exit(127);
	}
	free(copy);
	for (int i = 0; i < 400 * itest_slowdown(); i++) {
		FILE *f;

		if (waitpid(s->pid, status, WNOHANG) == s->pid) {
			s->pid = 0;
			return 1;
		}
		f = fopen(s->log, "r");
		while (f && fgets(line, sizeof(line), f)) {
			char *p = strstr(line, "tally: serving http://");

			if (p && (p = strrchr(p, ':')) != NULL)
				s->port = atoi(p + 1);
		}
		if (f)
			fclose(f);
		if (s->port > 0)
			return 0;
		usleep(25000);
	}
	return -1;
}

/* 1 when the file at path has a line containing needle. */
static int file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

/* Every entry of dir (and of its folders) other than the test's own
 * "stderr" must be closed to others; returns how many were checked. */
static int assert_closed_to_others(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char path[1024];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, "stderr"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert_msg(!(st.st_mode & S_IRWXO), "%s is mode %04o: open to others", path,
		              (unsigned)(st.st_mode & 07777));
		n++;
		if (S_ISDIR(st.st_mode))
			n += assert_closed_to_others(path);
	}
	closedir(d);
	return n;
}

/* Under umask 022 (which leaves new files readable by everyone), the
 * files tally creates hold donors' names and emails or the admin token:
 * the database and its -wal and -shm, the token and the lock are 0600;
 * the log, the receipt outbox and its receipts are closed to others. */
START_TEST(files_private_under_umask_022)
{
	static const char *const private[] = {"t.db", "t.db-wal", "t.db-shm", "t.db.token",
	                                      "t.db.lock"};
	static const char campaign[] =
	    "{\"slug\":\"food\",\"name\":\"Food\",\"currency\":\"USD\",\"goal_cents\":1000}";
	struct itest_server s;
	struct itest_resp r;
	char path[700], token[128], headers[256], extra[700];
	FILE *f;
	int st = 0, found = 0;

	memset(&s, 0, sizeof(s));
	s.dir = tests_tmpdir();
	ck_assert_ptr_nonnull(s.dir);
	snprintf(extra, sizeof(extra), "--log %s/tally.log", s.dir);
	ck_assert_int_eq(start_plain(&s, extra, &st), 0);
	/* The token it generated lets us in. */
	snprintf(path, sizeof(path), "%s/t.db.token", s.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(token, sizeof(token), f));
	fclose(f);
	token[strcspn(token, "\n")] = '\0';
	snprintf(headers, sizeof(headers),
	         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", token);
	ck_assert_int_eq(itest_http(s.port, "POST", "/api/v1/admin/campaigns", headers, campaign,
	                            strlen(campaign), &r),
	                 0);
	ck_assert_int_eq(r.status, 201);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_donate(s.port, "food", 2500, "Ada", "ada@example.org"), 202);
	/* Barrier: the receipt lands in the outbox once captured. */
	snprintf(path, sizeof(path), "%s/t.db-outbox/receipt-dn_1.eml", s.dir);
	for (int i = 0; i < 400 && !found; i++) {
		found = access(path, F_OK) == 0;
		if (!found)
			usleep(25000);
	}
	ck_assert_msg(found, "no receipt at %s", path);
	for (size_t i = 0; i < sizeof(private) / sizeof(private[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", s.dir, private[i]);
		ck_assert_msg(mode_of(path) == 0600, "%s is mode %04o, not 0600", path,
		              mode_of(path));
	}
	/* t.db*, token, lock, tally.log, the outbox and its receipt. */
	ck_assert_int_ge(assert_closed_to_others(s.dir), 8);
	st = itest_signal(&s, SIGTERM);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status %d", st);
	snprintf(path, sizeof(path), "%s/t.db", s.dir);
	ck_assert_int_eq(mode_of(path), 0600);
	itest_cleanup(&s);
}
END_TEST

/* Write text into DIR/name with the given mode (whatever the umask). */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode, char *path,
                       size_t cap)
{
	int fd;

	snprintf(path, cap, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/* A token file only its owner can read is used. */
START_TEST(token_file_0600_accepted)
{
	struct itest_server s;
	struct itest_resp r;
	char path[700], extra[720];
	int st = 0;

	memset(&s, 0, sizeof(s));
	s.dir = tests_tmpdir();
	ck_assert_ptr_nonnull(s.dir);
	write_file(s.dir, "admin.token", ITEST_TOKEN "\n", 0600, path, sizeof(path));
	snprintf(extra, sizeof(extra), "--token-file %s", path);
	ck_assert_msg(start_plain(&s, extra, &st) == 0, "did not start (status %d)", st);
	ck_assert_int_eq(itest_admin_get(s.port, "/api/v1/admin/queues", &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(mode_of(path), 0600);
	itest_cleanup(&s);
}
END_TEST

/* Whoever reads the token file is an admin: one open to group or others
 * stops the start with a message that says what to do, and nothing is
 * written (no database). */
START_TEST(token_file_open_to_others_refused)
{
	static const mode_t modes[] = {0644, 0640, 0604};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct itest_server s;
		char path[700], extra[720], want[64];
		int st = 0;

		memset(&s, 0, sizeof(s));
		s.dir = tests_tmpdir();
		ck_assert_ptr_nonnull(s.dir);
		write_file(s.dir, "admin.token", ITEST_TOKEN "\n", modes[i], path, sizeof(path));
		snprintf(extra, sizeof(extra), "--token-file %s", path);
		ck_assert_int_eq(start_plain(&s, extra, &st), 1);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
		snprintf(want, sizeof(want), "is open to group or others (mode %04o)",
		         (unsigned)modes[i]);
		ck_assert_msg(file_has(s.log, want), "no '%s' in %s", want, s.log);
		ck_assert_msg(file_has(s.log, "chmod 600"), "no 'chmod 600' hint in %s", s.log);
		ck_assert_int_eq(access(s.db, F_OK), -1);
		ck_assert_int_eq(mode_of(path), modes[i]); /* not changed behind our back */
		itest_cleanup(&s);
	}
}
END_TEST

Suite *restart_suite(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("durability");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, totals_survive_restart);
	tcase_add_test(tc, acknowledged_gift_survives_sigkill);
	tcase_add_test(tc, sigkill_during_load_loses_nothing);
	tcase_add_test(tc, one_tally_per_database);
	tcase_add_test(tc, sigterm_answers_what_it_accepted);
	tcase_add_test(tc, status_and_limits_survive_restart);
	tcase_add_test(tc, retry_after_pause_and_restart_replays);
	tcase_add_test(tc, full_queue_answers_503);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, files_private_under_umask_022);
	tcase_add_test(tc, token_file_0600_accepted);
	tcase_add_test(tc, token_file_open_to_others_refused);
	suite_add_tcase(s, tc);
	return s;
}
