/* tests/test_storage.c - the real binary on a disk that fills up (a small
 * tmpfs): donations are answered 503 storage_unavailable with Retry-After
 * and nothing is recorded for them, /readyz says not ready, the log says
 * so once, and service comes back by itself when space returns; every
 * 202 is in the database. Needs root for the mount: skipped, saying so,
 * without it. */
#include "tests/itest.h"
#include "tests/tests.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static struct itest_server srv;
static char disk[600], filler[700], db[700];
static int mounted;

static void setup(void)
{
	char *dir = tests_tmpdir();

	ck_assert_ptr_nonnull(dir);
	snprintf(disk, sizeof(disk), "%s/disk", dir);
	free(dir);
	ck_assert_int_eq(mkdir(disk, 0700), 0);
	mounted = mount("tally-test", disk, "tmpfs", 0, "size=2m") == 0;
	snprintf(filler, sizeof(filler), "%s/filler", disk);
	snprintf(db, sizeof(db), "%s/t.db", disk);
}

static void teardown(void)
{
	itest_cleanup(&srv);
	if (mounted && umount(disk))
		fprintf(stderr, "test_storage: umount %s: %s\n", disk, strerror(errno));
	mounted = 0;
}

/* Fill the disk: returns the bytes written. */
static long fill(void)
{
	static char block[4096];
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long total = 0;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	while ((n = write(fd, block, sizeof(block))) > 0)
		total += n;
	ck_assert_int_eq(errno, ENOSPC);
	close(fd);
	return total;
}

static int donate(struct itest_resp *r)
{
	static const char body[] = "{\"amount_cents\":1000,\"currency\":\"USD\","
	                           "\"donor\":{\"name\":\"Full\",\"email\":\"f@example.org\"}}";

	return itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, r);
}

static int count_in_log(const char *needle)
{
	FILE *f = fopen(srv.log, "r");
	char line[4096];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

START_TEST(a_full_disk_answers_503_and_recovers)
{
	char extra[800], ra[32];
	int accepted = 0, refused = 0;
	struct itest_resp r;

	if (!mounted) {
		fprintf(stderr, "test_storage: skipped: cannot mount a tmpfs (not root?)\n");
		return;
	}
	snprintf(extra, sizeof(extra), "--db %s", db);
	ck_assert_int_eq(itest_start(&srv, extra), 0);
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
	ck_assert_int_eq(donate(&r), 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	accepted++;

	ck_assert_int_gt(fill(), 0);
	/* The WAL may still have room it grew into: give until a batch needs
	 * a new block. */
	for (int i = 0; i < 400 && !refused; i++) {
		ck_assert_int_eq(donate(&r), 0);
		if (r.status == 202) {
			accepted++;
		} else {
			ck_assert_msg(r.status == 503, "status %d: %s", r.status, r.body);
			ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"storage_unavailable\""));
			ck_assert_ptr_nonnull(itest_header(&r, "Retry-After", ra, sizeof(ra)));
			refused++;
		}
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(refused, 1);
	/* Still failing: more 503s, and /readyz says so. */
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(donate(&r), 0);
		ck_assert_int_eq(r.status, 503);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(itest_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"storage_unavailable\""));
	itest_resp_fini(&r);

	/* Space returns: service resumes by itself. */
	ck_assert_int_eq(unlink(filler), 0);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(donate(&r), 0);
		ck_assert_msg(r.status == 202 || r.status == 503, "status %d", r.status);
		if (r.status == 202) {
			accepted++;
			itest_resp_fini(&r);
			break;
		}
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(itest_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	/* Every 202 is recorded, nothing else is. */
	ck_assert_int_eq(itest_sql_int(db, "SELECT count(*) FROM donations"), accepted);
	/* One line when commits began failing, one when they came back. */
	ck_assert_int_eq(count_in_log("\"event\":\"db.commits_failing\""), 1);
	ck_assert_int_eq(count_in_log("\"event\":\"db.commits_recovered\""), 1);
}
END_TEST

Suite *storage_suite(void)
{
	Suite *s = suite_create("storage");
	TCase *tc = tcase_create("disk");

	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_full_disk_answers_503_and_recovers);
	suite_add_tcase(s, tc);
	return s;
}
