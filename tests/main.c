/* tests/main.c - runs every suite in one Check runner (fork mode) so the
 * summary line covers the whole suite. CK_RUN_SUITE=name runs one suite,
 * CK_RUN_SUITES="a b" several; --list prints the suites' names (the
 * order they run in), one per line, for tests/run-suites. */
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

/* 1 when name is one of the words (spaces or commas between) of list. */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " ,");

		if (len == n && !strncmp(p, name, n))
			return 1;
		p += len;
		p += strspn(p, " ,");
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		Suite *(*make)(void);
	} suites[] = {
	    {"util", util_suite},
	    {"buf", buf_suite},
	    {"validate", validate_suite},
	    {"db", db_suite},
	    {"engine", engine_suite},
	    {"http", http_suite},
	    {"live", live_suite},
	    {"restart", restart_suite},
	    {"console", console_suite},
	    {"e2e", e2e_suite},
	    {"jobs", jobs_suite},
	    {"acceptor", acceptor_suite},
	    {"watchdog", watchdog_suite},
	    {"storage", storage_suite},
	    {"pacer", pacer_suite},
	    {"privacy", privacy_suite},
	    {"feed", feed_suite},
	    {"tokens", tokens_suite},
	    {"tls", tls_suite},
	    {"logs", logs_suite},
	    {"outage", outage_suite},
	    {"giving", giving_suite},
	    {"reconcile", reconcile_suite},
	    {"export", export_suite},
	    {"gifts", gifts_suite},
	    {"boards", boards_suite},
	    {"day", day_suite},
	    {"shield", shield_suite},
	    {"captcha", captcha_suite},
	};
	const char *only = getenv("CK_RUN_SUITES");
	SRunner *sr = NULL;
	int failed;

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
			printf("%s\n", suites[i].name);
		return fflush(stdout) ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: %s [--list]\n", argv[0]);
		return EXIT_FAILURE;
	}

	/* CK_RUN_SUITE=name / CK_RUN_CASE=name select what runs (Check);
	 * CK_RUN_SUITES="engine live jobs" runs several suites. */
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (only && *only && !listed(only, suites[i].name))
			continue;
		if (!sr)
			sr = srunner_create(suites[i].make());
		else
			srunner_add_suite(sr, suites[i].make());
	}
	if (!sr) {
		fprintf(stderr, "tally-tests: CK_RUN_SUITES=\"%s\" names no suite\n", only);
		return EXIT_FAILURE;
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
