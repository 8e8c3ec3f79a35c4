/* tests/test_acceptor.c - connections before their request is whole, on the
 * real binary: slow heads wait in the acceptor (not in the API loop), are
 * answered 408 when they take too long and 429 past the limit per address,
 * and never keep a donor waiting. */
#include "tests/itest.h"
#include "tests/tests.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct itest_server srv;

static const char partial[] = "POST /api/v1/campaigns/food/donations HTTP/1.1\r\n"
                              "Host: tally.test\r\n";

static void start(void)
{
	itest_start_with_food(&srv);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

/* A connection that has sent part of a request head; -1 on failure. */
static int slow_head(void)
{
	int fd = itest_conn_open(srv.port);

	if (fd >= 0 && send(fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL) !=
	                   (ssize_t)(sizeof(partial) - 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* What fd is sent within timeout_ms, NUL-terminated, "" when nothing. */
static void read_some(int fd, int timeout_ms, char *out, size_t cap)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	ssize_t n = 0;

	if (poll(&pfd, 1, timeout_ms) == 1)
		n = recv(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = '\0';
}

/* More slow heads than the API loop has header tables for (1,024 before
 * the acceptor waited for whole heads): a donor is answered at once, and a
 * slow head that completes is served too. */
START_TEST(slow_heads_do_not_keep_donors_waiting)
{
	enum { SLOW = 1100 };
	static const char rest[] = "Content-Type: application/json\r\nContent-Length: 85\r\n\r\n"
	                           "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":"
	                           "{\"name\":\"Slow\",\"email\":\"s@example.org\"}}";
	static int fds[SLOW];
	struct itest_resp r;

	for (int i = 0; i < SLOW; i++) {
		fds[i] = slow_head();
		ck_assert_int_ge(fds[i], 0);
	}
	ck_assert_int_eq(itest_donate(srv.port, "food", 700, "Quick", "q@example.org"), 202);
	/* The last part of a slow head arrives: it is served like any. */
	ck_assert_int_eq(itest_conn_request(fds[0], rest, sizeof(rest) - 1, 5000, &r), 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 2);
	for (int i = 0; i < SLOW; i++)
		close(fds[i]);
}
END_TEST

/* A head that does not complete within 5 s is answered 408 (JSON) and
 * closed; nothing is written. */
START_TEST(a_head_too_slow_is_answered_408)
{
	char got[1024];
	int fd = slow_head();

	ck_assert_int_ge(fd, 0);
	read_some(fd, 9000, got, sizeof(got));
	ck_assert_msg(!strncmp(got, "HTTP/1.1 408 ", 13), "got: %s", got);
	ck_assert_ptr_nonnull(strstr(got, "\"code\":\"request_timeout\""));
	ck_assert_int_eq(itest_conn_closed(fd, 3000), 1);
	close(fd);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 0);
}
END_TEST

/* At most 64 connections from one address wait for their heads: the rest
 * are answered 429 at once, and a whole request still goes through. */
START_TEST(waiting_connections_per_address_are_limited)
{
	enum { N = 70, LIMIT = 64 };
	int fds[N], refused = 0;
	char got[1024];

	itest_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	ck_assert_int_eq(itest_start(&srv, "--rate-limit-loopback"), 0);
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
	for (int i = 0; i < N; i++) {
		fds[i] = slow_head();
		ck_assert_int_ge(fds[i], 0);
	}
	/* The 429s come at once; the others wait 5 s for a 408. */
	for (int round = 0; round < 30 && refused < N - LIMIT; round++) {
		struct pollfd pfd[N];

		for (int i = 0; i < N; i++)
			pfd[i] = (struct pollfd){fds[i], POLLIN, 0};
		if (poll(pfd, N, 100) <= 0)
			continue;
		for (int i = 0; i < N; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP)) || fds[i] < 0)
				continue;
			read_some(fds[i], 0, got, sizeof(got));
			ck_assert_msg(!strncmp(got, "HTTP/1.1 429 ", 13), "unexpected answer: %s",
			              got);
			ck_assert_ptr_nonnull(strstr(got, "\"code\":\"too_many_connections\""));
			refused++;
			close(fds[i]);
			fds[i] = -1;
		}
	}
	ck_assert_int_eq(refused, N - LIMIT);
	ck_assert_int_eq(itest_donate(srv.port, "food", 700, "Whole", "w@example.org"), 202);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}
END_TEST

/* A port already taken: tally says so and exits 1, cleanly (it crashed
 * while freeing the live loop it had made but not started). */
START_TEST(a_taken_port_is_refused_cleanly)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), status, out[2];
	char listen_arg[64], *dir = tests_tmpdir(), db[512], got[4096];
	const char *bin = getenv("TALLY_BIN");
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_ptr_nonnull(bin);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", ntohs(sa.sin_port));
	snprintf(db, sizeof(db), "%s/t.db", dir);
	ck_assert_int_eq(pipe(out), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out[1], 2);
		setenv("TALLY_ADMIN_TOKEN", ITEST_TOKEN, 1);
		execl(bin, bin, "--headless", "--listen", listen_arg, "--db", db, "--assets",
		      getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	while (used < sizeof(got) - 1 && (n = read(out[0], got + used, sizeof(got) - 1 - used)) > 0)
		used += (size_t)n;
	got[used] = '\0';
	close(out[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "tally died of signal %d", WTERMSIG(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	ck_assert_ptr_nonnull(strstr(got, "Address already in use"));
	close(fd);
	tests_rmdir(dir);
}
END_TEST

Suite *acceptor_suite(void)
{
	Suite *s = suite_create("acceptor");
	TCase *tc = tcase_create("heads");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, slow_heads_do_not_keep_donors_waiting);
	tcase_add_test(tc, a_head_too_slow_is_answered_408);
	tcase_add_test(tc, waiting_connections_per_address_are_limited);
	tcase_add_test(tc, a_taken_port_is_refused_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
