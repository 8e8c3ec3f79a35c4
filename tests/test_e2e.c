/* tests/test_e2e.c - end-to-end tests through real outside programs: the
 * real tally --demo console in tmux, and the widget in headless Chromium
 * (the console against a fake source runs in the console suite). Each runs a script and asserts it
 * passed; the script prints what failed. */
#include "tests/tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static void run(const char *cmd)
{
	int st = system(cmd);

	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' failed (status %d)",
	              cmd, st);
}

START_TEST(tally_console_in_tmux)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "bash tests/tally_tmux.sh '%s' '%s'",
	         env_or("TALLY_BIN", "build/release/tally"), env_or("TALLY_ASSETS", "assets"));
	run(cmd);
}
END_TEST

START_TEST(widget_in_chromium)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "bash tests/browser/run '%s' '%s'",
	         env_or("TALLY_BIN", "build/release/tally"), env_or("TALLY_ASSETS", "assets"));
	run(cmd);
}
END_TEST

Suite *e2e_suite(void)
{
	Suite *s = suite_create("e2e");
	TCase *tui = tcase_create("terminal");
	TCase *web = tcase_create("browser");

	tcase_set_timeout(tui, 120);
	tcase_add_test(tui, tally_console_in_tmux);
	suite_add_tcase(s, tui);
	tcase_set_timeout(web, 240);
	tcase_add_test(web, widget_in_chromium);
	suite_add_tcase(s, web);
	return s;
}
