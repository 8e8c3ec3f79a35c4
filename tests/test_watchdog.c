/* tests/test_watchdog.c - base/watchdog.c in process: a loop that spins
 * without turning, or blocks, is reported stalled (log and metrics), and
 * recovered when it turns again; a loop that turns is never reported. */
#include "tests/tests.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STALL_MS 300

enum phase { TURN, STOP_TURNING, TURN_AGAIN, LEAVE };

struct loop {
	struct watchdog *w;
	const char *name;
	int spin; /* while not turning: spin (else block) */
	atomic_int phase;
	atomic_int joined;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void nap_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

static void *loop_main(void *arg)
{
	struct loop *lp = arg;
	struct watch *h = watchdog_join(lp->w, lp->name);

	atomic_store(&lp->joined, h != NULL);
	while (atomic_load(&lp->phase) != LEAVE) {
		if (atomic_load(&lp->phase) == STOP_TURNING) {
			if (lp->spin) {
				volatile unsigned long x = 0;

				while (atomic_load(&lp->phase) == STOP_TURNING)
					x++; /* busy, and no beat */
			} else {
				pthread_mutex_lock(&lp->lock);
				while (atomic_load(&lp->phase) == STOP_TURNING)
					pthread_cond_wait(&lp->cond, &lp->lock);
				pthread_mutex_unlock(&lp->lock);
			}
			continue;
		}
		watch_beat(h);
		nap_ms(5);
	}
	watch_leave(h);
	return NULL;
}

static void set_phase(struct loop *lp, enum phase p)
{
	pthread_mutex_lock(&lp->lock);
	atomic_store(&lp->phase, p);
	pthread_cond_broadcast(&lp->cond);
	pthread_mutex_unlock(&lp->lock);
}

/* Poll (bounded) until the watchdog says want for the loop. */
static int wait_stalled(struct watchdog *w, const char *name, int want)
{
	for (int i = 0; i < 500; i++) {
		if (watchdog_stalled(w, name) == want)
			return 1;
		nap_ms(10);
	}
	return 0;
}

static int metric_has(struct watchdog *w, const char *line)
{
	struct buf b = {0};
	int found;

	ck_assert_int_eq(watchdog_metrics(w, &b), 0);
	ck_assert_int_eq(buf_puts(&b, ""), 0);
	found = strstr(b.p, line) != NULL;
	buf_fini(&b);
	return found;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(s);
	if (fread(s, 1, 65535, f) == 0 && ferror(f))
		ck_abort_msg("cannot read %s", path);
	fclose(f);
	return s;
}

static void stall_and_recover(int spin)
{
	const char *name = spin ? "spinner" : "sleeper";
	char *dir = tests_tmpdir(), path[512], line[128], *log;
	struct loop lp = {.name = name, .spin = spin};
	pthread_t t;

	snprintf(path, sizeof(path), "%s/log", dir);
	ck_assert_int_eq(log_open(path), 0);
	ck_assert_int_eq(pthread_mutex_init(&lp.lock, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&lp.cond, NULL), 0);
	ck_assert_int_eq(watchdog_new(STALL_MS, &lp.w), 0);
	ck_assert_int_eq(watchdog_start(lp.w), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, loop_main, &lp), 0);

	/* Turning for several stall intervals: never reported. */
	for (int i = 0; i < 100 && !atomic_load(&lp.joined); i++)
		nap_ms(10);
	ck_assert_int_eq(atomic_load(&lp.joined), 1);
	nap_ms(3 * STALL_MS); /* the input: a loop that keeps turning this long */
	ck_assert_int_eq(watchdog_stalled(lp.w, name), 0);

	set_phase(&lp, STOP_TURNING);
	ck_assert_msg(wait_stalled(lp.w, name, 1), "the %s was not reported", name);
	snprintf(line, sizeof(line), "tally_loop_stalled{loop=\"%s\"} 1", name);
	ck_assert(metric_has(lp.w, line));
	snprintf(line, sizeof(line), "tally_loop_stalls_total{loop=\"%s\"} 1", name);
	ck_assert(metric_has(lp.w, line));

	set_phase(&lp, TURN_AGAIN);
	ck_assert_msg(wait_stalled(lp.w, name, 0), "the %s did not recover", name);
	snprintf(line, sizeof(line), "tally_loop_stalled{loop=\"%s\"} 0", name);
	ck_assert(metric_has(lp.w, line));

	set_phase(&lp, LEAVE);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	watchdog_free(lp.w);
	log_close();
	log = read_file(path);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"loop.stalled\""));
	ck_assert_ptr_nonnull(strstr(log, spin ? "is spinning" : "is blocked"));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"loop.recovered\""));
	free(log);
	pthread_cond_destroy(&lp.cond);
	pthread_mutex_destroy(&lp.lock);
	tests_rmdir(dir);
}

START_TEST(a_spinning_loop_is_reported_and_recovers)
{
	stall_and_recover(1);
}
END_TEST

START_TEST(a_blocked_loop_is_reported_and_recovers)
{
	stall_and_recover(0);
}
END_TEST

START_TEST(at_most_eight_loops_are_watched)
{
	struct watchdog *w;

	ck_assert_int_eq(watchdog_new(STALL_MS, &w), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_ptr_nonnull(watchdog_join(w, "loop"));
	ck_assert_ptr_null(watchdog_join(w, "ninth"));
	ck_assert_int_eq(watchdog_stalled(w, "ninth"), 0);
	watchdog_free(w);
}
END_TEST

Suite *watchdog_suite(void)
{
	Suite *s = suite_create("watchdog");
	TCase *tc = tcase_create("loops");

	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_spinning_loop_is_reported_and_recovers);
	tcase_add_test(tc, a_blocked_loop_is_reported_and_recovers);
	tcase_add_test(tc, at_most_eight_loops_are_watched);
	suite_add_tcase(s, tc);
	return s;
}
