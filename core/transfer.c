/* core/transfer.c - the curl plumbing the job handlers share (see
 * transfer.h). */
#include "core/transfer.h"

#include <stdarg.h>
#include <stdio.h>

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;

	/* Processor and receiver answers are small; keep at most 64 KiB. */
	if (t->resp.len + size * n > 65536)
		return size * n;
	return buf_append(&t->resp, data, size * n) ? 0 : size * n;
}

int transfer_setup(struct transfer *t, CURL *e, const char *url)
{
	t->errbuf[0] = '\0';
	return curl_easy_setopt(e, CURLOPT_URL, url) || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
	       curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) ||
	       curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) ||
	       curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
}

CURL *transfer_easy(struct transfer *t, const char *url)
{
	CURL *e = curl_easy_init();

	if (e && transfer_setup(t, e, url)) {
		curl_easy_cleanup(e);
		return NULL;
	}
	return e;
}

int transfer_reset(struct transfer *t, CURL *e, const char *url)
{
	curl_easy_reset(e);
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	t->resp.len = 0;
	return transfer_setup(t, e, url);
}

int transfer_header(struct transfer *t, const char *fmt, ...)
{
	char line[512];
	struct curl_slist *l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = curl_slist_append(t->headers, line);
	if (!l)
		return -1;
	t->headers = l;
	return 0;
}

long transfer_code(CURL *e)
{
	long code = 0;

	if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		return 0;
	return code;
}

const char *transfer_error(const struct transfer *t, CURLcode rc)
{
	return t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
}

void transfer_fini(struct transfer *t)
{
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	buf_fini(&t->resp);
}
