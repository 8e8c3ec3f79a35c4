/* tests/main.c - runs every suite in one Check runner (fork mode) so the
 * summary line covers the whole suite. CK_RUN_SUITE=name runs one suite. */
#include "tests/tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tests_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir = malloc(strlen(base) + 32);

	if (!dir)
		return NULL;
	sprintf(dir, "%s/tally-test-XXXXXX", base);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

void tests_rmdir(char *dir)
{
	char cmd[600];

	if (!dir)
		return;
	if (strlen(dir) < 500 && strstr(dir, "tally-test-")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", dir);
	}
	free(dir);
}

/* Per-test directories live under one root made in the runner process
 * (an unchecked fixture), so even a failed test, whose checked teardown
 * never runs, leaves nothing behind. */
static char *root_dir;
static char *saved_tmpdir;

void tests_root_setup(void)
{
	const char *t = getenv("TMPDIR");

	saved_tmpdir = t ? strdup(t) : NULL;
	root_dir = tests_tmpdir();
	if (root_dir)
		setenv("TMPDIR", root_dir, 1);
}

void tests_root_teardown(void)
{
	if (saved_tmpdir)
		setenv("TMPDIR", saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(saved_tmpdir);
	saved_tmpdir = NULL;
	tests_rmdir(root_dir);
	root_dir = NULL;
}

int main(void)
{
	static Suite *(*const suites[])(void) = {
	    util_suite, buf_suite,  validate_suite, db_suite,      engine_suite,
	    http_suite, live_suite, restart_suite,  console_suite, e2e_suite, jobs_suite,
	};
	SRunner *sr = srunner_create(suites[0]());
	int failed;

	/* CK_RUN_SUITE=name / CK_RUN_CASE=name select what runs. */
	for (size_t i = 1; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
