/* tally.c - the program: parses the command line and composes the engine
 * (core/, db/), the network server (ws/) and the console (tui/).
 *
 * Threads: the signal thread (sigwait), the db writer, the job workers,
 * the lws service thread, the demo feeder, and in console mode the main
 * thread runs curses (the full map: THREADS in core/engine.h).
 */
#include "core/demo.h"
#include "core/engine.h"
#include "core/jobs.h"
#include "core/captcha.h"
#include "core/shield.h"
#include "core/work.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "tui/console.h"
#include "tui/remote.h"
#include "ws/proxy.h"
#include "ws/server.h"
#include "tally_console.h"
#include "tally_token.h"
#include "ws/tls_ctx.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TALLY_VERSION
#define TALLY_VERSION "0.1.0"
#endif
#ifndef TALLY_ASSETS_DIR
#define TALLY_ASSETS_DIR "/usr/local/share/tally/assets"
#endif

struct options {
	int headless, demo;
	char listen_addr[64];
	int port;
	const char *db_path;
	const char *assets_dir;
	const char *log_path;
	const char *token_file;
	const char *tls_cert, *tls_key; /* --tls-cert, --tls-key; NULL: plain HTTP */
	long mock_latency_ms;           /* -1: not given */
	double rate_limit, rate_burst;
	int rate_limit_loopback;
	struct proxies *trusted;     /* --trusted-proxy; NULL when none */
	long alert_paused_min;       /* --alert-paused-min: 15; 0 off */
	struct server_config live;   /* the live settings (--live) */
	struct shield_config shield; /* the card-testing shield (--shield) */
	/* The CAPTCHA verifier (--captcha*); its secret is read after the
	 * options (load_captcha_secret). */
	struct captcha_config captcha;
	const char *captcha_secret_file;
	char captcha_secret[512];
	int captcha_opts; /* a --captcha-* option was given */
	struct engine_config engine;
	/* The job queues, composed here: policies and handlers (work.c). */
	struct work_config work;
	struct jobs_config jobs;
	char install_id[40]; /* filled by engine_open */
	char outbox[4200];   /* default: DB-outbox */
};

static volatile sig_atomic_t console_stop;
/* Set by the signal thread; main checks it before serving, so a signal
 * during a slow start-up is not lost. */
static atomic_int stop_requested;
static _Atomic(struct server *) the_server;

static void usage(FILE *f)
{
	fprintf(f, "usage: tally [options]\n"
	           "       tally console --connect http[s]://HOST:PORT [--token-file PATH]\n"
	           "                     [--ca-file PATH]\n"
	           "       tally token add NAME --role viewer|operator|admin [--db PATH]\n"
	           "       tally token list [--db PATH]\n"
	           "       tally token revoke NAME [--db PATH]\n"
	           "\n"
	           "A giving-day donation engine: records donations durably in SQLite, streams\n"
	           "live campaign totals to browser widgets and shows a staff console.\n"
	           "\n"
	           "  --headless            server only; JSON log lines on stderr\n"
	           "  --demo                seed demo campaigns and a stream of donations\n"
	           "  --listen ADDR:PORT    address to serve (default 127.0.0.1:8080)\n"
	           "  --tls-cert PATH       serve HTTPS and wss:// on that port: the server's\n"
	           "                        certificate (PEM, then any intermediates);\n"
	           "                        with --tls-key, both or neither\n"
	           "  --tls-key PATH        its private key (PEM, unencrypted, mode 0600);\n"
	           "                        TLS 1.2 and 1.3 only, plain HTTP gets a 400\n"
	           "  --db PATH             SQLite database (default ./tally.db)\n"
	           "  --assets DIR          widget and page files (default ./assets if present,\n"
	           "                        else " TALLY_ASSETS_DIR ")\n"
	           "  --log PATH            log file (console mode default: ./tally.log)\n"
	           "  --sync full|normal    SQLite synchronous level (default full)\n"
	           "  --min-cents N         smallest donation (default 100)\n"
	           "  --max-cents N         largest donation (default 100000000, at most 10^12)\n"
	           "  --fee PERCENT%%+FIXED processing fee donors may cover (cover_fee), such as\n"
	           "                        2.2%%+30: ceil(gift x percent) + fixed minor units\n"
	           "                        (default 0%%+0: not offered)\n"
	           "  --queue N             intake queue bound before 503 (default 65536)\n"
	           "  --processor mock|stripe  payment processor (default mock; stripe reads\n"
	           "                        STRIPE_SECRET_KEY)\n"
	           "  --stripe-url URL      Stripe API base (default https://api.stripe.com)\n"
	           "  --mock-latency-ms N   mock processor latency (default 0; --demo 120)\n"
	           "  --mock-fail-rate P    mock: share of transient failures, 0 to 1\n"
	           "  --smtp-url URL        send receipts over SMTP (smtp://HOST:PORT); without\n"
	           "                        it they are written to --outbox as .eml files\n"
	           "  --smtp-from ADDR      receipts' sender (default receipts@localhost)\n"
	           "  --outbox DIR          receipt folder (default DB-outbox)\n"
	           "  --org-name TEXT       organisation name signed under receipts\n"
	           "  --tax-note TEXT       tax note printed on receipts\n"
	           "  --webhook URL         send signed donation events to URL (repeatable,\n"
	           "                        up to 8); its secret is the next --webhook-secret\n"
	           "                        or TALLY_WEBHOOK_SECRET\n"
	           "  --webhook-secret S    HMAC secret of the preceding --webhook\n"
	           "  --jobs Q:K=V,...      queue settings; Q is payments, receipts or webhooks,\n"
	           "                        K is workers, inflight, attempts, backoff-ms,\n"
	           "                        backoff-max-ms, nice (of its threads; receipts\n"
	           "                        and webhooks 19) or timeout-ms (an attempt's time\n"
	           "                        limit, 10000), e.g. --jobs payments:inflight=512;\n"
	           "                        webhooks also per-endpoint (attempts at once for\n"
	           "                        one endpoint, 8; the rest wait)\n"
	           "  --job-retention-s N   delete done jobs after N s (default 86400; 0 keeps)\n"
	           "  --token-file PATH     admin token file (default DB.token)\n"
	           "  --rate-limit N        writes (POST/PATCH) per second per client address;\n"
	           "                        429 beyond it (default off)\n"
	           "  --rate-burst N        bucket size for --rate-limit (default 2 x N)\n"
	           "  --rate-limit-loopback also limit 127.0.0.1 and ::1 (exempt by default),\n"
	           "                        writes and live connections per address\n"
	           "  --trusted-proxy CIDR  a reverse proxy (127.0.0.1/32, 10.0.0.0/8, ::1/128;\n"
	           "                        repeatable): from it, the client is the right-most\n"
	           "                        X-Forwarded-For address it does not trust\n"
	           "  --shield off|NAME=N,...  the card-testing shield (on by default): window-s\n"
	           "                        (600), address-declines (10), address-ratio (50 %%),\n"
	           "                        email-declines (5), card-declines (3),\n"
	           "                        card-attempts (20), block-s (900),\n"
	           "                        campaign-declines (60 a minute), campaign-ratio\n"
	           "                        (50 %%), up-s (600), up-min-cents (500)\n"
	           "  --captcha turnstile|hcaptcha|recaptcha  check a CAPTCHA token\n"
	           "                        (captcha_token) on gifts while a campaign's\n"
	           "                        shield is up; the secret key is TALLY_CAPTCHA_SECRET\n"
	           "                        or the first line of --captcha-secret-file\n"
	           "  --captcha-secret-file PATH  the CAPTCHA's secret key (mode 0600)\n"
	           "  --captcha-url URL     the siteverify URL (default: the provider's)\n"
	           "  --captcha-always      every gift needs a CAPTCHA token, shield up or not\n"
	           "                        (127.0.0.1 and ::1 never do)\n"
	           "  --captcha-timeout-ms N  a verification's time limit (default 2000, 100 to\n"
	           "                        30000); past it the gift gets 503\n"
	           "  --live K=N,...        live viewers: viewers (all, default what the file\n"
	           "                        limit allows), per-address (256), wall-per-s\n"
	           "                        (donation events per channel per second, 5),\n"
	           "                        coalesce-ms (100), ping-s (30), timeout-s (45),\n"
	           "                        slow-s (10), nice (of the live thread, 10)\n"
	           "  --alert-paused-min N  a campaign paused longer than N minutes is an\n"
	           "                        alert in every staff console's header (default\n"
	           "                        15; 0 turns it off; at most 10080, a week)\n"
	           "  --help, --version\n"
	           "\n"
	           "Environment: TALLY_ADMIN_TOKEN is the admin bearer token; when unset, one is\n"
	           "generated on first start and kept next to the database (mode 0600). It is\n"
	           "the admin named \"admin\"; `tally token` makes named tokens with roles\n"
	           "(viewer, operator, admin): see tally token --help.\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A KEY=N setting of a comma-separated list. */
struct kv_key {
	const char *key;
	long min, max;
};

/* Walk list (modified) "KEY=N,...": for each pair, the index of its key in
 * keys and its value, checked against the key's range, go to set. Returns
 * 0, or -EINVAL at the first unknown key or bad value. */
static int each_kv(char *list, const struct kv_key *keys, size_t n,
                   void (*set)(void *ctx, size_t k, long v), void *ctx)
{
	char *save = NULL, *kv;

	for (kv = strtok_r(list, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		size_t k;
		long v;

		if (!eq)
			return -EINVAL;
		*eq = '\0';
		for (k = 0; k < n && strcmp(kv, keys[k].key); k++)
			;
		if (k == n || parse_long(eq + 1, keys[k].min, keys[k].max, &v))
			return -EINVAL;
		set(ctx, k, v);
	}
	return 0;
}

static const struct kv_key job_keys[] = {{"workers", 1, 16},
                                         {"inflight", 1, 4096},
                                         {"attempts", 1, 100},
                                         {"backoff-ms", 1, 86400000},
                                         {"backoff-max-ms", 1, 604800000},
                                         {"nice", 0, 19},
                                         {"timeout-ms", 10, 3600000},
                                         {"per-endpoint", 1, 4096}};

/* What one --jobs sets: the queue's policy, and per-endpoint (-1 when not
 * given), which only the webhooks queue has. */
struct jobs_arg {
	struct job_policy *p;
	long per_endpoint;
};

static void set_job_key(void *ctx, size_t k, long v)
{
	struct jobs_arg *a = ctx;
	struct job_policy *p = a->p;

	switch (k) {
	case 0:
		p->workers = (int)v;
		break;
	case 1:
		p->inflight = (int)v;
		break;
	case 2:
		p->max_attempts = (int)v;
		break;
	case 3:
		p->backoff_ms = v;
		break;
	case 4:
		p->backoff_max_ms = v;
		break;
	case 5:
		p->nice = (int)v;
		break;
	case 6:
		p->timeout_ms = v;
		break;
	default:
		a->per_endpoint = v;
	}
}

/* --jobs QUEUE:key=value,... */
static int parse_jobs(const char *arg, struct jobs_config *cfg)
{
	char copy[256], *q;
	struct job_policy *p;
	struct jobs_arg a = {NULL, -1};
	int qi;

	if (snprintf(copy, sizeof(copy), "%s", arg) >= (int)sizeof(copy))
		goto bad;
	q = strchr(copy, ':');
	if (!q)
		goto bad;
	*q++ = '\0';
	qi = job_queue_by_name(copy);
	if (qi < 0)
		goto bad;
	p = &cfg->policy[qi];
	a.p = p;
	if (each_kv(q, job_keys, UTIL_ARRAY_LEN(job_keys), set_job_key, &a))
		goto bad;
	if (a.per_endpoint >= 0 && qi != JOB_WEBHOOKS) {
		fprintf(stderr, "tally: --jobs per-endpoint is a webhooks setting; got '%s'\n",
		        arg);
		return -EINVAL;
	}
	if (a.per_endpoint >= 0)
		cfg->per_endpoint = (int)a.per_endpoint;
	if (p->backoff_max_ms < p->backoff_ms)
		p->backoff_max_ms = p->backoff_ms;
	return 0;
bad:
	fprintf(stderr,
	        "tally: --jobs wants QUEUE:KEY=N,... with QUEUE payments, receipts or webhooks "
	        "and KEY workers (1-16), inflight (1-4096), attempts (1-100), backoff-ms, "
	        "backoff-max-ms, nice (0-19), timeout-ms (10-3600000) or, for webhooks, "
	        "per-endpoint (1-4096); got '%s'\n",
	        arg);
	return -EINVAL;
}

static const struct kv_key live_keys[] = {
    {"viewers", 1, 1000000}, {"per-address", 1, 1000000},
    {"wall-per-s", 1, 1000}, {"coalesce-ms", 10, 10000},
    {"ping-s", 1, 3600},     {"timeout-s", 2, 7200},
    {"slow-s", 1, 3600},     {"nice", 0, 19},
};

static void set_live_key(void *ctx, size_t k, long v)
{
	struct server_config *c = ctx;
	int *fields[] = {NULL,
	                 &c->live_per_address,
	                 &c->live_wall_per_s,
	                 &c->coalesce_ms,
	                 &c->live_ping_s,
	                 &c->live_timeout_s,
	                 &c->live_slow_s,
	                 &c->live_nice};

	if (k == 0)
		c->max_viewers = v;
	else
		*fields[k] = (int)v;
}

/* --live KEY=N,... into the server's live settings. */
static int parse_live(const char *arg, struct server_config *c)
{
	char copy[256];

	if (snprintf(copy, sizeof(copy), "%s", arg) >= (int)sizeof(copy) ||
	    each_kv(copy, live_keys, UTIL_ARRAY_LEN(live_keys), set_live_key, c))
		goto bad;
	if (c->live_timeout_s && c->live_ping_s && c->live_timeout_s <= c->live_ping_s)
		goto bad;
	return 0;
bad:
	fprintf(stderr,
	        "tally: --live wants KEY=N,... with KEY viewers, per-address, wall-per-s, "
	        "coalesce-ms (10-10000), ping-s, timeout-s (above ping-s), slow-s or nice "
	        "(0-19); got '%s'\n",
	        arg);
	return -EINVAL;
}

static int parse_listen(const char *s, struct options *o)
{
	const char *colon = strrchr(s, ':');
	long port;
	size_t len;

	if (!colon || colon == s || parse_long(colon + 1, 0, 65535, &port))
		return -EINVAL;
	len = (size_t)(colon - s);
	if (s[0] == '[' && colon[-1] == ']') {
		s++;
		len -= 2;
	}
	if (len >= sizeof(o->listen_addr))
		return -EINVAL;
	memcpy(o->listen_addr, s, len);
	o->listen_addr[len] = '\0';
	o->port = (int)port;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_LISTEN = 256,
		OPT_DB,
		OPT_ASSETS,
		OPT_LOG,
		OPT_SYNC,
		OPT_MIN,
		OPT_MAX,
		OPT_QUEUE,
		OPT_PROC,
		OPT_LAT,
		OPT_TOKEN,
		OPT_RATE,
		OPT_BURST,
		OPT_RATE_LO,
		OPT_FAIL,
		OPT_STRIPE,
		OPT_SMTP,
		OPT_FROM,
		OPT_OUTBOX,
		OPT_ORG,
		OPT_TAX,
		OPT_HOOK,
		OPT_HOOK_SECRET,
		OPT_JOBS,
		OPT_RETENTION,
		OPT_LIVE,
		OPT_PROXY,
		OPT_TLS_CERT,
		OPT_TLS_KEY,
		OPT_ALERT_PAUSED,
		OPT_FEE,
		OPT_SHIELD,
		OPT_CAPTCHA,
		OPT_CAPTCHA_SECRET,
		OPT_CAPTCHA_URL,
		OPT_CAPTCHA_ALWAYS,
		OPT_CAPTCHA_TIMEOUT
	};
	static const struct option longopts[] = {
	    {"headless", no_argument, NULL, 'H'},
	    {"demo", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"db", required_argument, NULL, OPT_DB},
	    {"assets", required_argument, NULL, OPT_ASSETS},
	    {"log", required_argument, NULL, OPT_LOG},
	    {"sync", required_argument, NULL, OPT_SYNC},
	    {"min-cents", required_argument, NULL, OPT_MIN},
	    {"max-cents", required_argument, NULL, OPT_MAX},
	    {"fee", required_argument, NULL, OPT_FEE},
	    {"queue", required_argument, NULL, OPT_QUEUE},
	    {"processor", required_argument, NULL, OPT_PROC},
	    {"mock-latency-ms", required_argument, NULL, OPT_LAT},
	    {"token-file", required_argument, NULL, OPT_TOKEN},
	    {"rate-limit", required_argument, NULL, OPT_RATE},
	    {"rate-burst", required_argument, NULL, OPT_BURST},
	    {"rate-limit-loopback", no_argument, NULL, OPT_RATE_LO},
	    {"mock-fail-rate", required_argument, NULL, OPT_FAIL},
	    {"stripe-url", required_argument, NULL, OPT_STRIPE},
	    {"smtp-url", required_argument, NULL, OPT_SMTP},
	    {"smtp-from", required_argument, NULL, OPT_FROM},
	    {"outbox", required_argument, NULL, OPT_OUTBOX},
	    {"org-name", required_argument, NULL, OPT_ORG},
	    {"tax-note", required_argument, NULL, OPT_TAX},
	    {"webhook", required_argument, NULL, OPT_HOOK},
	    {"webhook-secret", required_argument, NULL, OPT_HOOK_SECRET},
	    {"jobs", required_argument, NULL, OPT_JOBS},
	    {"job-retention-s", required_argument, NULL, OPT_RETENTION},
	    {"live", required_argument, NULL, OPT_LIVE},
	    {"trusted-proxy", required_argument, NULL, OPT_PROXY},
	    {"shield", required_argument, NULL, OPT_SHIELD},
	    {"captcha", required_argument, NULL, OPT_CAPTCHA},
	    {"captcha-secret-file", required_argument, NULL, OPT_CAPTCHA_SECRET},
	    {"captcha-url", required_argument, NULL, OPT_CAPTCHA_URL},
	    {"captcha-always", no_argument, NULL, OPT_CAPTCHA_ALWAYS},
	    {"captcha-timeout-ms", required_argument, NULL, OPT_CAPTCHA_TIMEOUT},
	    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
	    {"alert-paused-min", required_argument, NULL, OPT_ALERT_PAUSED},
	    {NULL, 0, NULL, 0},
	};
	struct work_config *w = &o->work;
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			o->headless = 1;
			break;
		case 'D':
			o->demo = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("tally %s\n", TALLY_VERSION);
			exit(0);
		case OPT_LISTEN:
			if (parse_listen(optarg, o)) {
				fprintf(stderr, "tally: --listen wants ADDR:PORT, got '%s'\n",
				        optarg);
				return -EINVAL;
			}
			break;
		case OPT_DB:
			o->db_path = optarg;
			break;
		case OPT_ASSETS:
			o->assets_dir = optarg;
			break;
		case OPT_LOG:
			o->log_path = optarg;
			break;
		case OPT_SYNC:
			if (!strcmp(optarg, "full")) {
				o->engine.synchronous = "FULL";
			} else if (!strcmp(optarg, "normal")) {
				o->engine.synchronous = "NORMAL";
			} else {
				fprintf(stderr, "tally: --sync wants full or normal\n");
				return -EINVAL;
			}
			break;
		case OPT_MIN:
		case OPT_MAX:
			/* At most 10^12 minor units a gift, so that no sum of
			 * gifts can overflow (see TALLY_AMOUNT_MAX). */
			if (parse_long(optarg, 1, TALLY_AMOUNT_MAX, &v)) {
				fprintf(stderr,
				        "tally: %s wants 1 to %lld minor units of the currency "
				        "(cents), got '%s'\n",
				        c == OPT_MIN ? "--min-cents" : "--max-cents",
				        (long long)TALLY_AMOUNT_MAX, optarg);
				return -EINVAL;
			}
			if (c == OPT_MIN)
				o->engine.limits.min_cents = v;
			else
				o->engine.limits.max_cents = v;
			break;
		case OPT_FEE:
			if (fee_parse(optarg, &o->engine.fee)) {
				fprintf(
				    stderr,
				    "tally: --fee wants PERCENT%%+FIXED such as 2.2%%+30 (percent "
				    "0 "
				    "to %d with at most 2 decimals, fixed 0 to %d minor units), "
				    "got '%s'\n",
				    FEE_BP_MAX / 100, FEE_FIXED_MAX, optarg);
				return -EINVAL;
			}
			break;
		case OPT_QUEUE:
			if (parse_long(optarg, 1, 10000000, &v)) {
				fprintf(stderr, "tally: --queue wants 1 to 10000000\n");
				return -EINVAL;
			}
			o->engine.max_queue = (size_t)v;
			break;
		case OPT_PROC:
			if (strcmp(optarg, "mock") && strcmp(optarg, "stripe")) {
				fprintf(stderr, "tally: --processor wants mock or stripe\n");
				return -EINVAL;
			}
			w->processor = optarg;
			break;
		case OPT_FAIL: {
			char *end;

			errno = 0;
			w->mock_fail_rate = strtod(optarg, &end);
			if (errno || *end || !*optarg || w->mock_fail_rate < 0 ||
			    w->mock_fail_rate > 1) {
				fprintf(stderr, "tally: --mock-fail-rate wants 0 to 1\n");
				return -EINVAL;
			}
			break;
		}
		case OPT_STRIPE:
			w->stripe_url = optarg;
			break;
		case OPT_SMTP:
			w->smtp_url = optarg;
			break;
		case OPT_FROM:
			w->smtp_from = optarg;
			break;
		case OPT_OUTBOX:
			w->outbox = optarg;
			break;
		case OPT_ORG:
			w->org_name = optarg;
			break;
		case OPT_TAX:
			w->tax_note = optarg;
			break;
		case OPT_HOOK:
			if (w->n_webhooks == JOB_MAX_ENDPOINTS) {
				fprintf(stderr, "tally: at most %d --webhook\n", JOB_MAX_ENDPOINTS);
				return -EINVAL;
			}
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) {
				fprintf(stderr,
				        "tally: --webhook wants an http:// or https:// URL\n");
				return -EINVAL;
			}
			w->webhook_url[w->n_webhooks] = optarg;
			w->webhook_secret[w->n_webhooks++] = getenv("TALLY_WEBHOOK_SECRET");
			break;
		case OPT_HOOK_SECRET:
			if (!w->n_webhooks || !*optarg) {
				fprintf(stderr, "tally: --webhook-secret follows its --webhook\n");
				return -EINVAL;
			}
			w->webhook_secret[w->n_webhooks - 1] = optarg;
			break;
		case OPT_JOBS:
			if (parse_jobs(optarg, &o->jobs))
				return -EINVAL;
			break;
		case OPT_RETENTION:
			if (parse_long(optarg, 0, 365L * 86400, &v)) {
				fprintf(stderr, "tally: --job-retention-s wants 0 to 31536000\n");
				return -EINVAL;
			}
			o->engine.job_retention_ms = v * 1000;
			break;
		case OPT_LAT:
			if (parse_long(optarg, 0, 60000, &o->mock_latency_ms)) {
				fprintf(stderr, "tally: --mock-latency-ms wants 0 to 60000\n");
				return -EINVAL;
			}
			break;
		case OPT_TOKEN:
			o->token_file = optarg;
			break;
		case OPT_ALERT_PAUSED:
			if (parse_long(optarg, 0, CONSOLE_ALERT_PAUSED_MAX, &o->alert_paused_min)) {
				fprintf(
				    stderr,
				    "tally: --alert-paused-min wants 0 (off) to %d minutes, got "
				    "'%s'\n",
				    CONSOLE_ALERT_PAUSED_MAX, optarg);
				return -EINVAL;
			}
			break;
		case OPT_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = optarg;
			break;
		case OPT_RATE:
		case OPT_BURST:
			if (parse_long(optarg, 1, 1000000, &v)) {
				fprintf(stderr, "tally: %s wants 1 to 1000000\n",
				        c == OPT_RATE ? "--rate-limit" : "--rate-burst");
				return -EINVAL;
			}
			if (c == OPT_RATE)
				o->rate_limit = (double)v;
			else
				o->rate_burst = (double)v;
			break;
		case OPT_RATE_LO:
			o->rate_limit_loopback = 1;
			break;
		case OPT_LIVE:
			if (parse_live(optarg, &o->live))
				return -EINVAL;
			break;
		case OPT_CAPTCHA: {
			int pr = captcha_provider_by_name(optarg);

			if (pr < 0) {
				fprintf(
				    stderr,
				    "tally: --captcha wants turnstile, hcaptcha or recaptcha, got "
				    "'%s'\n",
				    optarg);
				return -EINVAL;
			}
			o->captcha.provider = (enum captcha_provider)pr;
			break;
		}
		case OPT_CAPTCHA_SECRET:
			o->captcha_secret_file = optarg;
			o->captcha_opts = 1;
			break;
		case OPT_CAPTCHA_URL:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) {
				fprintf(
				    stderr,
				    "tally: --captcha-url wants an http:// or https:// URL, got "
				    "'%s'\n",
				    optarg);
				return -EINVAL;
			}
			o->captcha.url = optarg;
			o->captcha_opts = 1;
			break;
		case OPT_CAPTCHA_ALWAYS:
			o->shield.captcha_always = 1;
			o->captcha_opts = 1;
			break;
		case OPT_CAPTCHA_TIMEOUT:
			if (parse_long(optarg, 100, CAPTCHA_TIMEOUT_MS_MAX, &v)) {
				fprintf(stderr,
				        "tally: --captcha-timeout-ms wants 100 to %d "
				        "(milliseconds), got "
				        "'%s'\n",
				        CAPTCHA_TIMEOUT_MS_MAX, optarg);
				return -EINVAL;
			}
			o->captcha.timeout_ms = (int)v;
			o->captcha_opts = 1;
			break;
		case OPT_SHIELD: {
			char serr[384];

			if (shield_config_parse(&o->shield, optarg, serr, sizeof(serr))) {
				fprintf(stderr, "tally: %s\n", serr);
				return -EINVAL;
			}
			break;
		}
		case OPT_PROXY: {
			char perr[256];

			if (!o->trusted && proxies_new(&o->trusted)) {
				fprintf(stderr, "tally: out of memory\n");
				return -ENOMEM;
			}
			if (proxies_add(o->trusted, optarg, perr, sizeof(perr))) {
				fprintf(stderr, "tally: %s\n", perr);
				return -EINVAL;
			}
			break;
		}
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tally: unexpected argument '%s' (see tally --help)\n",
		        argv[optind]);
		return -EINVAL;
	}
	for (int i = 0; i < w->n_webhooks; i++)
		if (!w->webhook_secret[i] || !*w->webhook_secret[i]) {
			char url[256];

			fprintf(stderr,
			        "tally: --webhook %s needs a secret (--webhook-secret or "
			        "TALLY_WEBHOOK_SECRET)\n",
			        util_url_redact(w->webhook_url[i], url, sizeof(url)));
			return -EINVAL;
		}
	if (o->mock_latency_ms >= 0)
		w->mock_latency_ms = (int)o->mock_latency_ms;
	else if (o->demo)
		w->mock_latency_ms = 120;
	if (!strcmp(w->processor, "stripe")) {
		w->stripe_key = getenv("STRIPE_SECRET_KEY");
		if (!w->stripe_key || !*w->stripe_key) {
			fprintf(stderr, "tally: --processor stripe needs STRIPE_SECRET_KEY\n");
			return -EINVAL;
		}
	}
	if (o->captcha_opts && o->captcha.provider == CAPTCHA_NONE) {
		fprintf(stderr, "tally: the --captcha-* options need --captcha PROVIDER\n");
		return -EINVAL;
	}
	if (o->shield.captcha_always && !o->shield.enabled) {
		fprintf(stderr, "tally: --captcha-always needs the shield (it decides which gifts "
		                "are exempt): drop --shield off\n");
		return -EINVAL;
	}
	o->shield.captcha = o->captcha.provider != CAPTCHA_NONE;
	if (o->engine.limits.min_cents > o->engine.limits.max_cents) {
		fprintf(stderr, "tally: --min-cents is larger than --max-cents\n");
		return -EINVAL;
	}
	return 0;
}

/* Put why the admin token cannot be had into err; returns rc. */
__attribute__((format(printf, 4, 5))) static int token_fail(int rc, char *err, size_t errcap,
                                                            const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap); /* a long path may be cut short */
	va_end(ap);
	return rc;
}

/* A file holding a secret: what the messages call it, what its reader
 * could do, and the variable that replaces it. */
struct secret_kind {
	const char *what, *risk, *env;
};

static const struct secret_kind admin_token_kind = {
    "admin token file", "anyone who reads it is an admin", "TALLY_ADMIN_TOKEN"};
static const struct secret_kind captcha_secret_kind = {
    "CAPTCHA secret file", "anyone who reads it can pass as this site to the CAPTCHA provider",
    "TALLY_CAPTCHA_SECRET"};

/* Read the secret from the file at path: its first line. Whoever reads
 * the file has the secret, so a file open to group or others is refused,
 * as ssh refuses a private key that others can read. Returns 0, -ENOENT
 * when there is no such file (err untouched), or a negative errno with a
 * message in err. */
static int read_secret_file(const char *path, const struct secret_kind *k, char *tok, size_t cap,
                            char *err, size_t errcap)
{
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		return rc == -ENOENT
		           ? rc
		           : token_fail(rc, err, errcap, "%s %s: %s", k->what, path, strerror(-rc));
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		return token_fail(rc, err, errcap, "%s %s: %s", k->what, path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return token_fail(-EINVAL, err, errcap, "%s %s is not a regular file", k->what,
		                  path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return token_fail(-EPERM, err, errcap,
		                  "%s %s is open to group or others (mode %04o): %s. "
		                  "Refusing to start; run 'chmod 600 %s' (or set %s)",
		                  k->what, path, (unsigned)(st.st_mode & 07777), k->risk, path,
		                  k->env);
	}
	n = read(fd, tok, cap - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (n <= 0)
		return token_fail(rc ? rc : -EINVAL, err, errcap, "%s %s: %s", k->what, path,
		                  rc ? strerror(-rc) : "empty");
	tok[n] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	if (!tok[0])
		return token_fail(-EINVAL, err, errcap, "%s %s: empty first line", k->what, path);
	return 0;
}

static int read_token_file(const char *path, char *tok, size_t cap, char *err, size_t errcap)
{
	return read_secret_file(path, &admin_token_kind, tok, cap, err, errcap);
}

/* The CAPTCHA's secret key (--captcha): $TALLY_CAPTCHA_SECRET, else the
 * first line of --captcha-secret-file. Returns 0 (nothing to do without
 * --captcha), or -EINVAL with the reason on stderr. */
static int load_captcha_secret(struct options *o)
{
	const char *env = getenv("TALLY_CAPTCHA_SECRET");
	char err[640];
	int rc;

	if (o->captcha.provider == CAPTCHA_NONE)
		return 0;
	if (env && *env) {
		if (strlen(env) >= sizeof(o->captcha_secret)) {
			fprintf(stderr, "tally: TALLY_CAPTCHA_SECRET is longer than %zu bytes\n",
			        sizeof(o->captcha_secret) - 1);
			return -EINVAL;
		}
		snprintf(o->captcha_secret, sizeof(o->captcha_secret), "%s", env);
	} else if (!o->captcha_secret_file) {
		fprintf(
		    stderr,
		    "tally: --captcha %s needs its secret key: --captcha-secret-file PATH (mode "
		    "0600) or TALLY_CAPTCHA_SECRET\n",
		    captcha_provider_name(o->captcha.provider));
		return -EINVAL;
	} else {
		rc = read_secret_file(o->captcha_secret_file, &captcha_secret_kind,
		                      o->captcha_secret, sizeof(o->captcha_secret), err,
		                      sizeof(err));
		if (rc == -ENOENT)
			snprintf(err, sizeof(err), "%s %s: no such file", captcha_secret_kind.what,
			         o->captcha_secret_file);
		if (rc) {
			fprintf(stderr, "tally: %s\n", err);
			return -EINVAL;
		}
	}
	o->captcha.secret = o->captcha_secret;
	return 0;
}

/* The admin token: $TALLY_ADMIN_TOKEN, else the token file (created with a
 * random token, mode 0600, on first start; read_token_file). Returns 0, or
 * a negative errno with a message in err. */
static int load_token(const struct options *o, char *tok, size_t cap, char *path, size_t pcap,
                      char *err, size_t errcap)
{
	const char *env = getenv("TALLY_ADMIN_TOKEN");
	unsigned char raw[24];
	ssize_t n;
	int fd, rc;

	path[0] = '\0';
	if (env && *env) {
		if (strlen(env) >= cap)
			return token_fail(-ENAMETOOLONG, err, errcap,
			                  "TALLY_ADMIN_TOKEN is longer than %zu bytes", cap - 1);
		snprintf(tok, cap, "%s", env);
		return 0;
	}
	if (o->token_file)
		snprintf(path, pcap, "%s", o->token_file);
	else
		snprintf(path, pcap, "%s.token", o->db_path);
	rc = read_token_file(path, tok, cap, err, errcap);
	if (rc != -ENOENT)
		return rc;
	if (util_random(raw, sizeof(raw)))
		return token_fail(-EIO, err, errcap, "admin token: no random bytes");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(tok + 2 * i, cap - 2 * i, "%02x", raw[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		return token_fail(rc, err, errcap, "admin token file %s: %s", path, strerror(-rc));
	}
	n = write(fd, tok, strlen(tok));
	if (n != (ssize_t)strlen(tok) || write(fd, "\n", 1) != 1) {
		close(fd);
		return token_fail(-EIO, err, errcap, "admin token file %s: cannot write it", path);
	}
	if (close(fd)) {
		rc = -errno;
		return token_fail(rc, err, errcap, "admin token file %s: %s", path, strerror(-rc));
	}
	return 0;
}

static void *signal_main(void *arg)
{
	sigset_t *set = arg;
	int sig, named = util_thread_name("signals");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	for (;;) {
		if (sigwait(set, &sig))
			continue;
		if (sig == SIGHUP) {
			if (log_reopen())
				log_msg(LOG_ERROR, "log.reopen_failed",
				        "cannot reopen the log file");
			continue;
		}
		if (sig == SIGUSR2) /* sent by main to end this thread */
			break;
		log_msg(LOG_INFO, "signal", "received %s, draining", strsignal(sig));
		atomic_store(&stop_requested, 1);
		console_stop = 1;
		{
			struct server *s = atomic_load(&the_server);

			if (s)
				server_stop(s);
		}
	}
	return NULL;
}

static void *server_thread(void *arg)
{
	struct server *s = arg;
	int named = util_thread_name("api");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	if (server_run(s))
		console_stop = 1;
	return NULL;
}

/* ./assets in a source tree; else the folder installed with the binary:
 * the compiled-in PREFIX, or share/tally/assets beside the binary's bin/
 * (for an install under another PREFIX than the build's). */
static const char *default_assets(void)
{
	static char beside[PATH_MAX];
	struct stat st;
	ssize_t n;
	char *slash;

	if (stat("assets/widget.html", &st) == 0)
		return "assets";
	if (stat(TALLY_ASSETS_DIR "/widget.html", &st) == 0)
		return TALLY_ASSETS_DIR;
	n = readlink("/proc/self/exe", beside, sizeof(beside) - 32);
	if (n > 0) {
		beside[n] = '\0';
		slash = strrchr(beside, '/');
		if (slash) {
			strcpy(slash, "/../share/tally/assets");
			if (stat(beside, &st) == 0)
				return beside;
		}
	}
	return TALLY_ASSETS_DIR;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			log_msg(LOG_WARN, "rlimit", "cannot raise the open-file limit");
	}
}

/* Set up what the job queues do (work.c) and how (policies), and libcurl,
 * which the handlers use: the engine gets them ready-made. */
static int compose_jobs(struct options *o, char *err, size_t errcap)
{
	int rc;

	if (!o->work.outbox) {
		snprintf(o->outbox, sizeof(o->outbox), "%s-outbox", o->db_path);
		o->work.outbox = o->outbox;
	}
	o->work.install_id = o->install_id;
	rc = work_setup(&o->work, &o->jobs, err, errcap);
	if (rc)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errcap, "curl_global_init failed");
		return -EIO;
	}
	o->engine.jobs = &o->jobs;
	o->engine.install_id = o->install_id;
	return 0;
}

/* ---- tally console --connect URL: the console of a server elsewhere ---- */

static void console_signal(int sig)
{
	(void)sig;
	console_stop = 1;
}

static void console_usage(FILE *f)
{
	fprintf(f, "usage: tally console --connect http[s]://HOST:PORT [--token-file PATH]\n"
	           "                     [--ca-file PATH]\n"
	           "  Attach the staff console to a running tally. The staff token comes\n"
	           "  from TALLY_ADMIN_TOKEN or the first line of --token-file (mode 0600).\n"
	           "  https:// (a tally started with --tls-cert) is TLS 1.2 or later; the\n"
	           "  server's certificate must name HOST and be signed by a CA the system\n"
	           "  trusts, or by one in --ca-file (PEM: for a self-signed certificate,\n"
	           "  the certificate itself). There is no way to skip the check.\n");
}

static int console_main(int argc, char **argv)
{
	static const struct option longs[] = {{"connect", required_argument, NULL, 'c'},
	                                      {"token-file", required_argument, NULL, 't'},
	                                      {"ca-file", required_argument, NULL, 'a'},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {NULL, 0, NULL, 0}};
	const char *url = NULL, *token_file = NULL, *ca_file = NULL;
	const char *env = getenv("TALLY_ADMIN_TOKEN");
	char token[300], err[512];
	struct console_source src;
	struct sigaction sa;
	struct remote *r = NULL;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'c':
			url = optarg;
			break;
		case 't':
			token_file = optarg;
			break;
		case 'a':
			ca_file = optarg;
			break;
		case 'h':
			console_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "tally console: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			console_usage(stderr);
			return 2;
		}
	}
	if (!url || optind < argc) {
		console_usage(stderr);
		return 2;
	}
	if (token_file) {
		rc = read_token_file(token_file, token, sizeof(token), err, sizeof(err));
		if (rc == -ENOENT)
			snprintf(err, sizeof(err), "token file %s: no such file", token_file);
		if (rc) {
			fprintf(stderr, "tally console: %s\n", err);
			return 1;
		}
	} else if (env && *env && strlen(env) < sizeof(token)) {
		snprintf(token, sizeof(token), "%s", env);
	} else {
		fprintf(stderr, "tally console: a staff token is needed: set TALLY_ADMIN_TOKEN or "
		                "give --token-file\n");
		return 1;
	}
	if (remote_new(url, token, ca_file, &r, err, sizeof(err))) {
		fprintf(stderr, "tally console: %s\n", err);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = console_signal;
	if (sigemptyset(&sa.sa_mask) || sigaction(SIGINT, &sa, NULL) ||
	    sigaction(SIGTERM, &sa, NULL) || sigaction(SIGHUP, &sa, NULL) ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "tally console: cannot set up signals: %s\n", strerror(errno));
		remote_free(r);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "tally console: curl_global_init failed\n");
		remote_free(r);
		return 1;
	}
	rc = remote_start(r);
	if (rc) {
		fprintf(stderr, "tally console: cannot start the reader: %s\n", strerror(-rc));
	} else {
		remote_source(r, &src);
		rc = console_run(&src, &console_stop);
		if (rc)
			fprintf(stderr, "tally console: %s\n", strerror(-rc));
	}
	remote_free(r);
	curl_global_cleanup();
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct server_config scfg;
	struct engine *engine = NULL;
	struct server *server = NULL;
	struct shield *shield = NULL;
	struct captcha *captcha = NULL;
	struct demo *demo = NULL;
	struct tls_ctx *tls = NULL;
	pthread_t sig_thread, srv_thread;
	sigset_t set;
	char err[512], token[256], token_path[PATH_MAX];
	int rc, console, exit_code = 1, curl_inited = 0;

	/* Before any thread: the console draws UTF-8 names by the locale. */
	setlocale(LC_CTYPE, "");
	if (argc > 1 && !strcmp(argv[1], "token"))
		return tally_token_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "console"))
		return console_main(argc - 1, argv + 1);
	memset(&o, 0, sizeof(o));
	engine_config_defaults(&o.engine);
	jobs_config_defaults(&o.jobs);
	work_config_defaults(&o.work);
	shield_config_defaults(&o.shield);
	captcha_config_defaults(&o.captcha);
	o.work.outbox = NULL; /* DB-outbox unless --outbox */
	snprintf(o.listen_addr, sizeof(o.listen_addr), "127.0.0.1");
	o.port = 8080;
	o.db_path = "tally.db";
	o.mock_latency_ms = -1;
	o.alert_paused_min = 15;
	o.live.live_nice = -1; /* the live loop's default */
	if (parse_args(argc, argv, &o) || load_captcha_secret(&o)) {
		proxies_free(o.trusted);
		return 2;
	}
	/* TLS is checked before anything is opened or served: a bad
	 * certificate or key is one line naming the file, and exit 1. */
	if (!o.tls_cert != !o.tls_key) {
		fprintf(stderr,
		        "tally: %s without %s: give both (the certificate and its key), "
		        "or neither\n",
		        o.tls_cert ? "--tls-cert" : "--tls-key",
		        o.tls_cert ? "--tls-key" : "--tls-cert");
		proxies_free(o.trusted);
		return 1;
	}
	if (o.tls_cert && tls_ctx_new(o.tls_cert, o.tls_key, &tls, err, sizeof(err))) {
		fprintf(stderr, "tally: %s\n", err);
		proxies_free(o.trusted);
		return 1;
	}
	o.engine.db_path = o.db_path;
	if (!o.assets_dir)
		o.assets_dir = default_assets();
	console = !o.headless && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	if (console && !o.log_path)
		o.log_path = "tally.log";
	rc = log_open(o.log_path);
	if (rc) {
		fprintf(stderr, "tally: cannot open log %s: %s\n", o.log_path, strerror(-rc));
		tls_ctx_free(tls);
		return 1;
	}
	raise_fd_limit();
	if (tls) {
		log_event(LOG_INFO, "tls.ready",
		          json_pack("{s:s,s:s,s:s}", "cert", o.tls_cert, "subject",
		                    tls_ctx_subject(tls), "not_after", tls_ctx_not_after(tls)));
		if (tls_ctx_expired(tls))
			log_msg(LOG_WARN, "tls.cert_expired",
			        "the certificate %s expired %s: clients will refuse it", o.tls_cert,
			        tls_ctx_not_after(tls));
	}

	/* Every thread inherits this mask; only the signal thread takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "tally: cannot set up signal handling\n");
		tls_ctx_free(tls);
		return 1;
	}
	rc = pthread_create(&sig_thread, NULL, signal_main, &set);
	if (rc) {
		fprintf(stderr, "tally: cannot start the signal thread: %s\n", strerror(rc));
		tls_ctx_free(tls);
		return 1;
	}

	rc = load_token(&o, token, sizeof(token), token_path, sizeof(token_path), err, sizeof(err));
	if (rc) {
		fprintf(stderr, "tally: %s\n", err);
		log_msg(LOG_ERROR, "admin_token.failed", "%s", err);
		goto out;
	}
	if (token_path[0])
		fprintf(stderr, "tally: admin token is in %s\n", token_path);

	log_event(LOG_INFO, "start",
	          json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:b,s:b,s:I,s:I}", "version", TALLY_VERSION,
	                    "db", o.db_path, "listen", o.listen_addr, "port", o.port, "assets",
	                    o.assets_dir, "synchronous", o.engine.synchronous, "demo", o.demo,
	                    "console", console, "min_cents", (json_int_t)o.engine.limits.min_cents,
	                    "max_cents", (json_int_t)o.engine.limits.max_cents));
	{
		const struct work_config *w = &o.work;
		char smtp[512];
		/* The SMTP URL may hold a login: the log gets it without. */
		const char *smtp_url =
		    w->smtp_url ? util_url_redact(w->smtp_url, smtp, sizeof(smtp)) : NULL;

		log_event(LOG_INFO, "jobs.config",
		          json_pack("{s:s,s:i,s:f,s:s?,s:s,s:i,s:i,s:i,s:i,s:i}", "processor",
		                    w->processor, "mock_latency_ms", w->mock_latency_ms,
		                    "mock_fail_rate", w->mock_fail_rate, "smtp", smtp_url, "outbox",
		                    w->outbox ? w->outbox : "(DB-outbox)", "webhooks",
		                    w->n_webhooks, "payments_inflight",
		                    o.jobs.policy[JOB_PAYMENTS].inflight, "receipts_inflight",
		                    o.jobs.policy[JOB_RECEIPTS].inflight, "webhooks_inflight",
		                    o.jobs.policy[JOB_WEBHOOKS].inflight, "webhooks_per_endpoint",
		                    o.jobs.per_endpoint));
	}
	rc = compose_jobs(&o, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "tally: %s\n", err);
		log_msg(LOG_ERROR, "jobs.setup_failed", "%s", err);
		goto out;
	}
	curl_inited = 1;
	rc = shield_new(&o.shield, &shield);
	if (rc) {
		fprintf(stderr, "tally: the shield: %s\n", strerror(-rc));
		goto out;
	}
	/* Before the engine starts the payments workers that read it. */
	o.engine.shield = o.work.shield = shield;
	if (o.captcha.provider != CAPTCHA_NONE) {
		char url[256];

		rc = captcha_new(&o.captcha, &captcha, err, sizeof(err));
		explicit_bzero(o.captcha_secret, sizeof(o.captcha_secret)); /* copied */
		if (rc) {
			fprintf(stderr, "tally: %s\n", err);
			log_msg(LOG_ERROR, "captcha.setup_failed", "%s", err);
			goto out;
		}
		log_event(LOG_INFO, "captcha.config",
		          json_pack("{s:s,s:s,s:i,s:b}", "provider",
		                    captcha_provider_name(o.captcha.provider), "url",
		                    util_url_redact(o.captcha.url
		                                        ? o.captcha.url
		                                        : captcha_default_url(o.captcha.provider),
		                                    url, sizeof(url)),
		                    "timeout_ms", o.captcha.timeout_ms, "always",
		                    o.shield.captcha_always));
	}
	o.engine.admin_token = token;
	rc = engine_open(&o.engine, &engine, err, sizeof(err));
	/* The engine keeps the startup token's SHA-256 only. */
	explicit_bzero(token, sizeof(token));
	o.engine.admin_token = NULL;
	if (rc) {
		fprintf(stderr, "tally: %s\n", err);
		log_msg(LOG_ERROR, "engine.open_failed", "%s", err);
		goto out;
	}
	memset(&scfg, 0, sizeof(scfg));
	scfg.listen_addr = o.listen_addr;
	scfg.port = o.port;
	scfg.assets_dir = o.assets_dir;
	scfg.coalesce_ms = 100;
	scfg.rate_limit = o.rate_limit;
	scfg.rate_burst = o.rate_burst;
	scfg.rate_limit_loopback = o.rate_limit_loopback;
	scfg.trusted = o.trusted;
	scfg.max_viewers = o.live.max_viewers;
	scfg.live_per_address = o.live.live_per_address;
	scfg.live_wall_per_s = o.live.live_wall_per_s;
	scfg.live_ping_s = o.live.live_ping_s;
	scfg.live_timeout_s = o.live.live_timeout_s;
	scfg.live_slow_s = o.live.live_slow_s;
	scfg.live_nice = o.live.live_nice;
	scfg.tls = tls;
	scfg.alert_paused_min = (int)o.alert_paused_min;
	scfg.captcha = captcha;
	if (o.live.coalesce_ms)
		scfg.coalesce_ms = o.live.coalesce_ms;
	rc = server_new(&scfg, engine, &server, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "tally: %s\n", err);
		log_msg(LOG_ERROR, "server.start_failed", "%s", err);
		goto out;
	}
	atomic_store(&the_server, server);
	if (atomic_load(&stop_requested))
		server_stop(server);
	if (o.demo) {
		rc = demo_start(engine, &demo);
		if (rc) {
			fprintf(stderr, "tally: cannot start the demo: %s\n", tally_strerror(rc));
			goto out;
		}
	}
	{
		struct engine_stats es;
		struct server_stats ss;

		engine_get_stats(engine, &es);
		server_get_stats(server, &ss);
		log_event(
		    LOG_INFO, "ready",
		    json_pack("{s:I,s:i}", "campaigns", (json_int_t)es.campaigns, "port", ss.port));
		if (!console)
			fprintf(stderr, "tally: serving %s://%s:%d/\n", tls ? "https" : "http",
			        o.listen_addr, ss.port);
	}
	if (console) {
		struct local_source *ls = NULL;
		struct console_source src;
		struct server_stats ss;
		char name[96];

		server_get_stats(server, &ss);
		snprintf(name, sizeof(name), "%s:%d", o.listen_addr, ss.port);
		rc = tally_console_new(engine, server, name, &ls);
		if (rc) {
			fprintf(stderr, "tally: console: %s\n", strerror(-rc));
			goto out;
		}
		tally_console_source(ls, &src);
		rc = pthread_create(&srv_thread, NULL, server_thread, server);
		if (rc) {
			fprintf(stderr, "tally: cannot start the server thread: %s\n",
			        strerror(rc));
			tally_console_free(ls);
			goto out;
		}
		rc = console_run(&src, &console_stop);
		tally_console_free(ls);
		server_stop(server);
		if (pthread_join(srv_thread, NULL))
			log_msg(LOG_WARN, "stop", "server thread did not join");
		if (rc) {
			fprintf(stderr, "tally: console: %s\n", strerror(-rc));
			goto out;
		}
	} else if (server_run(server)) {
		goto out;
	}
	exit_code = 0;
out:
	demo_stop(demo);
	/* The signal thread goes first (it may hold the server pointer); then
	 * the engine, whose writer commits what is queued and may still post
	 * answers and events to the server; the server last. */
	if (pthread_kill(sig_thread, SIGUSR2) == 0 && pthread_join(sig_thread, NULL))
		log_msg(LOG_WARN, "stop", "signal thread did not join");
	atomic_store(&the_server, NULL);
	/* The verifier answers what it still holds "unavailable" into the
	 * server's queue: after the loop stopped, before server_free. */
	captcha_free(captcha);
	engine_free(engine);
	server_free(server);
	shield_free(shield); /* after the engine's workers and the server */
	tls_ctx_free(tls);   /* after the server that used it */
	proxies_free(o.trusted);
	if (curl_inited)
		curl_global_cleanup();
	log_msg(LOG_INFO, "stop", "exit %d", exit_code);
	log_close();
	return exit_code;
}
