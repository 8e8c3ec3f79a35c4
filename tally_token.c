/* tally_token.c - `tally token add|list|revoke`: named staff tokens with
 * roles, managed on the database file (core/tokendb.c), whether a server
 * runs on it or not. `add` prints the new secret on stdout and nothing
 * else there, so a script can capture it; everything else goes to stderr.
 */
#include "tally_token.h"
#include "core/tokendb.h"
#include "core/validate.h"
#include "base/err.h"
#include "base/util.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: tally token add NAME --role viewer|operator|admin [--db PATH]\n"
	           "       tally token list [--db PATH]\n"
	           "       tally token revoke NAME [--db PATH]\n"
	           "\n"
	           "Named staff tokens for the admin API (Authorization: Bearer SECRET), kept in\n"
	           "the database whether tally runs on it or not; a running tally takes a change\n"
	           "within about 2 s.\n"
	           "\n"
	           "  add NAME     make a token; its secret is printed on stdout, once (only\n"
	           "               its SHA-256 is stored). NAME: 1-64 of A-Z a-z 0-9 . _ -\n"
	           "               (names are unique in any case and never reused)\n"
	           "  --role ROLE  viewer: reads every staff listing, acts on nothing;\n"
	           "               operator: also pauses and resumes campaigns and queues,\n"
	           "               retries and discards jobs; admin: everything (campaigns,\n"
	           "               refunds, staff tokens)\n"
	           "  list         name, role, created and revoked times (never a secret)\n"
	           "  revoke NAME  the token stops working\n"
	           "  --db PATH    the database (default ./tally.db)\n"
	           "\n"
	           "The startup token (TALLY_ADMIN_TOKEN or the token file) is the admin named\n"
	           "\"admin\": it is not stored, not listed here and not revoked here.\n"
	           "Exit status: 0 done, 1 refused or failed, 2 bad usage.\n");
}

/* Who runs this, for the audit: "cli:USER". */
static void actor(char *dst, size_t cap)
{
	const struct passwd *pw = getpwuid(geteuid());

	snprintf(dst, cap, "cli:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
}

static void list_header(int *shown)
{
	if (!*shown)
		printf("NAME\tROLE\tCREATED\tREVOKED\n");
	*shown = 1;
}

static int list_cb(void *ud, const struct staff_token *t)
{
	char created[32], revoked[32];

	list_header(ud);
	printf("%s\t%s\t%s\t%s\n", t->name, staff_role_names[t->role],
	       util_rfc3339(t->created_at, created, sizeof(created)),
	       t->revoked_at ? util_rfc3339(t->revoked_at, revoked, sizeof(revoked)) : "-");
	return 0;
}

static int cmd_add(const char *db, const char *name, const char *role_name)
{
	char secret[TALLY_STAFF_SECRET_SIZE], who[TALLY_ACTOR_SIZE], err[512] = "";
	int role = role_name ? staff_role_by_name(role_name) : -1;
	int rc;

	if (role < 0) {
		fprintf(stderr, "tally token add: --role wants viewer, operator or admin%s%s%s\n",
		        role_name ? ", got '" : "", role_name ? role_name : "",
		        role_name ? "'" : "");
		return 2;
	}
	actor(who, sizeof(who));
	rc = tokendb_add(db, name, (enum staff_role)role, who, secret, sizeof(secret), err,
	                 sizeof(err));
	if (rc == TALLY_ETOKEN_EXISTS) {
		fprintf(stderr, "tally token add: %s: %s\n", name, tally_strerror(rc));
		return 1;
	}
	if (rc) {
		fprintf(stderr, "tally token add: %s\n", err[0] ? err : tally_strerror(rc));
		return 1;
	}
	printf("%s\n", secret);
	explicit_bzero(secret, sizeof(secret));
	if (fflush(stdout)) {
		perror("tally token add: stdout");
		return 1;
	}
	fprintf(stderr,
	        "tally token add: %s (%s) added to %s; its secret, above, is shown only now\n",
	        name, role_name, db);
	return 0;
}

static int cmd_revoke(const char *db, const char *name)
{
	char who[TALLY_ACTOR_SIZE], err[512] = "", at[32];
	struct staff_token t;
	int rc, changed = 0;

	actor(who, sizeof(who));
	rc = tokendb_revoke(db, name, who, &t, &changed, err, sizeof(err));
	if (rc == TALLY_ENOTOKEN || rc == TALLY_ESTARTUP) {
		fprintf(stderr, "tally token revoke: %s: %s\n", name, tally_strerror(rc));
		return 1;
	}
	if (rc) {
		fprintf(stderr, "tally token revoke: %s\n", err[0] ? err : tally_strerror(rc));
		return 1;
	}
	fprintf(stderr, "tally token revoke: %s %s revoked at %s\n", t.name,
	        changed ? "is" : "was already", util_rfc3339(t.revoked_at, at, sizeof(at)));
	return 0;
}

static int cmd_list(const char *db)
{
	char err[512] = "";
	int rc, shown = 0;

	rc = tokendb_list(db, list_cb, &shown, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "tally token list: %s\n", err[0] ? err : tally_strerror(rc));
		return 1;
	}
	list_header(&shown);
	if (fflush(stdout)) {
		perror("tally token list: stdout");
		return 1;
	}
	return 0;
}

int tally_token_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"role", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = "tally.db", *role = NULL, *cmd, *name = NULL;
	int c, want_name;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "tally token: %s wants a value (see tally token --help)\n",
			        argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr,
			        "tally token: unknown option '%s' (see tally token --help)\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	want_name = !strcmp(cmd, "add") || !strcmp(cmd, "revoke");
	if (!want_name && strcmp(cmd, "list")) {
		fprintf(stderr, "tally token: unknown command '%s': add, list or revoke\n", cmd);
		return 2;
	}
	if (want_name) {
		if (optind >= argc) {
			fprintf(stderr, "tally token %s: which token? (tally token %s NAME)\n", cmd,
			        cmd);
			return 2;
		}
		name = argv[optind++];
		if (!validate_token_name(name, strlen(name))) {
			fprintf(stderr,
			        "tally token %s: '%s' is not a token name: 1-64 of A-Z, a-z, 0-9, "
			        "'.', '_' and '-' (not \".\" or \"..\")\n",
			        cmd, name);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tally token %s: unexpected argument '%s'\n", cmd, argv[optind]);
		return 2;
	}
	if (role && strcmp(cmd, "add")) {
		fprintf(stderr, "tally token %s: --role is for add\n", cmd);
		return 2;
	}
	if (!strcmp(cmd, "add"))
		return cmd_add(db, name, role);
	if (!strcmp(cmd, "revoke"))
		return cmd_revoke(db, name);
	return cmd_list(db);
}
