/* tests/tests.h - the suites of the one test runner (tests/main.c). Each
 * tests/test_<module>.c defines <module>_suite(). */
#ifndef TALLY_TESTS_H
#define TALLY_TESTS_H

#include <check.h>

/* SQL that takes a database of schema 8 back to what schema 7 had, so a
 * test can make the database of an older release (then set user_version). */
#define TESTS_UNDO_SCHEMA_8                                                                        \
	"ALTER TABLE campaigns DROP COLUMN category;"                                              \
	"ALTER TABLE campaigns DROP COLUMN matched_cents;"                                         \
	"ALTER TABLE campaigns DROP COLUMN bonus_cents;"                                           \
	"ALTER TABLE donations DROP COLUMN source;"                                                \
	"ALTER TABLE donations DROP COLUMN method;"                                                \
	"ALTER TABLE donations DROP COLUMN note;"                                                  \
	"ALTER TABLE donations DROP COLUMN received_at;"                                           \
	"ALTER TABLE donations DROP COLUMN fee_cents;"                                             \
	"ALTER TABLE donations DROP COLUMN pool_id;"                                               \
	"ALTER TABLE donations DROP COLUMN matched_cents;"                                         \
	"ALTER TABLE donations DROP COLUMN match_released;"                                        \
	"DROP TABLE match_pools; DROP TABLE challenges; DROP TABLE challenge_awards;"              \
	"DROP TABLE giving_day;"

Suite *util_suite(void);
Suite *buf_suite(void);
Suite *validate_suite(void);
Suite *db_suite(void);
Suite *engine_suite(void);
Suite *console_suite(void);
Suite *http_suite(void);
Suite *live_suite(void);
Suite *boards_suite(void);
Suite *restart_suite(void);
Suite *e2e_suite(void);
Suite *jobs_suite(void);
Suite *acceptor_suite(void);
Suite *watchdog_suite(void);
Suite *storage_suite(void);
Suite *pacer_suite(void);
Suite *privacy_suite(void);
Suite *feed_suite(void);
Suite *tokens_suite(void);
Suite *tls_suite(void);
Suite *logs_suite(void);
Suite *outage_suite(void);
Suite *giving_suite(void);
Suite *reconcile_suite(void);
Suite *shield_suite(void);
Suite *export_suite(void);
Suite *gifts_suite(void);
Suite *day_suite(void);
Suite *captcha_suite(void);

/* A fresh temporary directory for this test (mkdtemp under $TMPDIR or
 * /tmp); removed with tests_rmdir. */
char *tests_tmpdir(void);
void tests_rmdir(char *dir);

/* Unchecked fixture pair: point TMPDIR at a root made for the test case
 * and remove it afterwards, with whatever the tests left in it. */
void tests_root_setup(void);
void tests_root_teardown(void);

#endif
