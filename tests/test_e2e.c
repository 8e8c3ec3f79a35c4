/* tests/test_e2e.c - end-to-end tests through real outside programs: the
 * real tally --demo console in tmux, and the widget in headless Chromium
 * (the console against a fake source runs in the console suite). Each runs a script and asserts it
 * passed; the script prints what failed. And /metrics through promtool,
 * Prometheus's own checker, and INSTALL's systemd unit through
 * systemd-analyze (verify, and security for its sandbox). */
#include "tests/itest.h"
#include "tests/tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The same console attached to a headless server, and what only a remote
 * console meets: a second console, a bad token, the server gone and back. */
START_TEST(remote_console_in_tmux)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "bash tests/tally_tmux.sh '%s' '%s' remote",
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

/* INSTALL's unit parses and keeps its sandbox (tests/install_unit.sh). */
START_TEST(install_unit_verified_and_hardened)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "bash tests/install_unit.sh '%s' INSTALL",
	         env_or("TALLY_BIN", "build/release/tally"));
	run(cmd);
}
END_TEST

/* ---- /metrics as Prometheus reads it ---- */

static struct itest_server msrv;

static void metrics_setup(void)
{
	itest_start_with_food(&msrv);
}

static void metrics_teardown(void)
{
	itest_cleanup(&msrv);
}

#define FAMILIES_MAX 96

struct families {
	char name[FAMILIES_MAX][128];
	char type[FAMILIES_MAX][16];
	int help[FAMILIES_MAX], samples[FAMILIES_MAX];
	int n;
};

static int family_find(struct families *f, const char *name, size_t len)
{
	for (int i = 0; i < f->n; i++)
		if (strlen(f->name[i]) == len && !strncmp(f->name[i], name, len))
			return i;
	ck_assert_int_lt(f->n, FAMILIES_MAX);
	ck_assert_uint_lt(len, sizeof(f->name[0]));
	memcpy(f->name[f->n], name, len);
	f->name[f->n][len] = '\0';
	return f->n++;
}

/* The family of a sample: its name, less _bucket/_sum/_count when the
 * family so named is a histogram. */
static int sample_family(struct families *f, const char *line)
{
	static const char *const parts[] = {"_bucket", "_sum", "_count"};
	size_t len = strcspn(line, "{ ");

	for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
		size_t pl = strlen(parts[k]);

		if (len > pl && !strncmp(line + len - pl, parts[k], pl)) {
			for (int i = 0; i < f->n; i++)
				if (strlen(f->name[i]) == len - pl &&
				    !strncmp(f->name[i], line, len - pl) &&
				    !strcmp(f->type[i], "histogram"))
					return i;
		}
	}
	return family_find(f, line, len);
}

/* What promtool 2.42 lets pass but the text format forbids: every
 * family has HELP and TYPE before its first sample and its samples come
 * in one piece, and no HELP or TYPE comes twice. Returns the families. */
static int check_families(const char *body)
{
	static struct families f;
	int current = -1;

	memset(&f, 0, sizeof(f));
	for (const char *line = body; *line;) {
		size_t len = strcspn(line, "\n");
		char text[512];
		int i;

		ck_assert_uint_lt(len, sizeof(text));
		memcpy(text, line, len);
		text[len] = '\0';
		line += len + (line[len] == '\n');
		if (!strncmp(text, "# HELP ", 7)) {
			i = family_find(&f, text + 7, strcspn(text + 7, " "));
			ck_assert_msg(!f.help[i]++, "second HELP for %s", f.name[i]);
			ck_assert_msg(!f.samples[i], "HELP for %s after its samples", f.name[i]);
		} else if (!strncmp(text, "# TYPE ", 7)) {
			const char *t = text + 7 + strcspn(text + 7, " ");

			i = family_find(&f, text + 7, strcspn(text + 7, " "));
			ck_assert_msg(!f.type[i][0], "second TYPE for %s", f.name[i]);
			ck_assert_msg(!f.samples[i], "TYPE for %s after its samples", f.name[i]);
			snprintf(f.type[i], sizeof(f.type[i]), "%s", *t ? t + 1 : "");
		} else if (text[0] && text[0] != '#') {
			i = sample_family(&f, text);
			ck_assert_msg(f.help[i] && f.type[i][0], "%s has no HELP or TYPE",
			              f.name[i]);
			ck_assert_msg(i == current || !f.samples[i], "%s comes in two pieces: '%s'",
			              f.name[i], text);
			f.samples[i]++;
			current = i;
		}
	}
	return f.n;
}

START_TEST(metrics_pass_promtool)
{
	struct itest_resp r;
	char path[600], out[600], cmd[1400], complaints[1024];
	size_t said;
	FILE *fp;
	int fd, st;

	ck_assert_msg(system("command -v promtool >/dev/null 2>&1") == 0,
	              "promtool is missing: scripts/deps --check installs it (Debian's "
	              "prometheus package)");
	/* Every family with samples: a gift captured, receipted, and a viewer. */
	ck_assert_int_eq(itest_donate(msrv.port, "food", 2500, "Ada", "ada@example.org"), 202);
	ck_assert_int_eq(itest_settle(msrv.port), 0);
	fd = itest_ws_connect(msrv.port, "/live", "tally.live.v1", NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_http(msrv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	close(fd);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "tally_jobs_done_total{queue=\"payments\"} 1\n"));

	snprintf(path, sizeof(path), "%s/metrics.txt", msrv.dir);
	snprintf(out, sizeof(out), "%s/promtool.out", msrv.dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(r.body, 1, r.len, fp), r.len);
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s' 2>&1", path, out);
	st = system(cmd);
	/* Silence and 0 are success: promtool prints each complaint. */
	fp = fopen(out, "r");
	ck_assert_ptr_nonnull(fp);
	said = fread(complaints, 1, sizeof(complaints) - 1, fp);
	complaints[said] = '\0';
	fclose(fp);
	ck_assert_msg(st == 0 && said == 0, "promtool check metrics (status %d): %s", st,
	              complaints);
	ck_assert_int_ge(check_families(r.body), 20);
	itest_resp_fini(&r);
}
END_TEST

Suite *e2e_suite(void)
{
	Suite *s = suite_create("e2e");
	TCase *tui = tcase_create("terminal");
	TCase *web = tcase_create("browser");
	TCase *metrics = tcase_create("metrics");
	TCase *unit = tcase_create("unit");

	tcase_set_timeout(tui, 120);
	tcase_add_test(tui, tally_console_in_tmux);
	tcase_add_test(tui, remote_console_in_tmux);
	suite_add_tcase(s, tui);
	tcase_set_timeout(web, 240);
	tcase_add_test(web, widget_in_chromium);
	suite_add_tcase(s, web);
	tcase_add_unchecked_fixture(metrics, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(metrics, metrics_setup, metrics_teardown);
	tcase_set_timeout(metrics, 30);
	tcase_add_test(metrics, metrics_pass_promtool);
	suite_add_tcase(s, metrics);
	tcase_set_timeout(unit, 30);
	tcase_add_test(unit, install_unit_verified_and_hardened);
	suite_add_tcase(s, unit);
	return s;
}
