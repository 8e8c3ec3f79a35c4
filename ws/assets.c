/* ws/assets.c - static files, read into memory at start and served with
 * strong ETags. The folder is small (widgets, pages); serving from memory
 * keeps the service thread free of file I/O. A symlink in the folder is
 * followed only to a file inside it.
 *
 * DESIGN: each HTML page gets its Content-Security-Policy at load: scripts
 * from this origin plus the page's own inline scripts, by their SHA-256
 * (computed here, so editing a page never breaks its policy); styles from
 * this origin and inline (widget.js injects its stylesheet); fetch and
 * websockets to this origin. Pages may be framed by this origin only,
 * except the embeddable ones (widget.html), which any site may frame.
 */
#include "ws/internal.h"
#include "base/log.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSET_MAX_SIZE (4 * 1024 * 1024)
#define ASSET_MAX_COUNT 256
#define ASSET_MAX_INLINE_SCRIPTS 4 /* per page: keeps the policy header short */

struct asset {
	char path[256]; /* "/widget.js" */
	const char *ctype;
	char etag[40];
	char *data;
	size_t len;
	char *csp; /* an HTML page's Content-Security-Policy (owned); else NULL */
};

/* Pages other sites may show in an iframe. */
static const char *const embeddable[] = {"/widget.html"};

struct assets {
	struct asset *v;
	size_t n;
};

static const struct {
	const char *ext, *ctype;
} ctypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *ctype_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < UTIL_ARRAY_LEN(ctypes); i++)
		if (!strcmp(dot, ctypes[i].ext))
			return ctypes[i].ctype;
	return NULL;
}

/* Open name in the folder dirfd, whose real path is root: a symlink is
 * followed only when it leads to a file inside the folder (else -EXDEV).
 * Returns the descriptor or a negative errno. */
static int open_inside(const char *root, int dirfd, const char *name)
{
	size_t n = strlen(root);
	char path[PATH_MAX], *real;
	struct stat st;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (!S_ISLNK(st.st_mode))
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	else if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, name) >= sizeof(path))
		return -ENAMETOOLONG;
	else if (!(real = realpath(path, NULL)))
		return -errno;
	else if (strncmp(real, root, n) || (real[n] != '/' && n > 1)) {
		free(real);
		return -EXDEV;
	} else {
		fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(real);
	}
	return fd < 0 ? -errno : fd;
}

static int read_file(const char *root, int dirfd, const char *name, char **data, size_t *len)
{
	int fd = open_inside(root, dirfd, name);
	struct stat st;
	size_t got = 0;
	char *p;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > ASSET_MAX_SIZE) {
		close(fd);
		return -EINVAL;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int rc = r < 0 ? -errno : -EIO;

			free(p);
			close(fd);
			return rc;
		}
		got += (size_t)r;
	}
	close(fd);
	*data = p;
	*len = got;
	return 0;
}

/* The first case-insensitive occurrence of needle in [p, end), or NULL. */
static const char *find_ci(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; (size_t)(end - p) >= n; p++)
		if (!strncasecmp(p, needle, n))
			return p;
	return NULL;
}

/* 1 when the start tag [p, end) has a src attribute. */
static int has_src(const char *p, const char *end)
{
	for (const char *a = p; (a = find_ci(a, end, "src")); a += 3) {
		const char *v = a + 3;

		while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
			v++;
		if ((a[-1] == ' ' || a[-1] == '\t' || a[-1] == '\n' || a[-1] == '\r') && v < end &&
		    *v == '=')
			return 1;
	}
	return 0;
}

/* Append " 'sha256-BASE64'" for the text of one inline script, hashed as a
 * browser does: after the HTML parser turned CR LF and CR into LF. Returns
 * 0 or -ENOMEM. */
static int hash_script(const char *text, size_t len, struct buf *csp)
{
	unsigned char md[EVP_MAX_MD_SIZE], b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned int mdlen = 0;
	char *norm = malloc(len + 1);
	size_t n = 0;
	int rc;

	if (!norm)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		norm[n++] = text[i] == '\r' ? '\n' : text[i];
	}
	rc = EVP_Digest(norm, n, md, &mdlen, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
	free(norm);
	if (rc)
		return rc;
	EVP_EncodeBlock(b64, md, (int)mdlen);
	return buf_printf(csp, " 'sha256-%s'", (const char *)b64);
}

/* Build the policy of the HTML page x into x->csp. Returns 0, -ENOMEM, or
 * -EINVAL (with err) when the page has an unclosed or too many inline
 * scripts. */
static int page_policy(struct asset *x, char *err, size_t errcap)
{
	const char *p = x->data, *end = x->data + x->len, *tag;
	struct buf csp = {0};
	int frame_any = 0, scripts = 0, rc = 0;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(embeddable); i++)
		frame_any |= !strcmp(x->path, embeddable[i]);
	rc |= buf_puts(&csp, "default-src 'none'; script-src 'self'");
	while (!rc && (tag = find_ci(p, end, "<script"))) {
		const char *name_end = tag + 7, *gt, *close;

		p = name_end;
		if (name_end < end && *name_end != '>' && *name_end != ' ' && *name_end != '\t' &&
		    *name_end != '\n' && *name_end != '\r' && *name_end != '/')
			continue; /* <scripts>, not a script */
		gt = memchr(name_end, '>', (size_t)(end - name_end));
		close = gt ? find_ci(gt + 1, end, "</script") : NULL;
		if (!close) {
			snprintf(err, errcap, "%s: a <script> is not closed", x->path + 1);
			rc = -EINVAL;
			break;
		}
		p = close + 8;
		if (has_src(name_end, gt))
			continue;
		if (++scripts > ASSET_MAX_INLINE_SCRIPTS) {
			snprintf(err, errcap, "%s: more than %d inline scripts", x->path + 1,
			         ASSET_MAX_INLINE_SCRIPTS);
			rc = -EINVAL;
			break;
		}
		rc = hash_script(gt + 1, (size_t)(close - gt - 1), &csp);
	}
	rc = rc ? rc
	        : buf_printf(&csp,
	                     "; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
	                     "img-src 'self' data:; base-uri 'none'; form-action 'none'%s",
	                     frame_any ? "" : "; frame-ancestors 'self'");
	if (rc) {
		buf_fini(&csp);
		return rc;
	}
	x->csp = csp.p; /* the buffer, NUL-terminated, now owned by x */
	return 0;
}

int assets_load(const char *dir, struct assets **out, char *err, size_t errcap)
{
	struct assets *a = calloc(1, sizeof(*a));
	struct dirent *de;
	char *root = NULL;
	DIR *d;
	int rc = 0;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->v = calloc(ASSET_MAX_COUNT, sizeof(*a->v));
	d = opendir(dir);
	if (d)
		root = realpath(dir, NULL);
	if (!a->v || !d || !root) {
		rc = a->v ? -errno : -ENOMEM;
		snprintf(err, errcap, "assets folder %s: %s", dir, strerror(-rc));
		goto fail;
	}
	while ((de = readdir(d)) && a->n < ASSET_MAX_COUNT) {
		struct asset *x = &a->v[a->n];
		const char *ctype = ctype_of(de->d_name);

		if (de->d_name[0] == '.' || !ctype || strlen(de->d_name) > 200)
			continue;
		rc = read_file(root, dirfd(d), de->d_name, &x->data, &x->len);
		if (rc == -EINVAL)
			continue; /* not a regular file, or too large */
		if (rc == -EXDEV) {
			log_msg(LOG_WARN, "assets.refused",
			        "%s/%s leads outside the assets folder: not served", dir,
			        de->d_name);
			rc = 0;
			continue;
		}
		if (rc) {
			snprintf(err, errcap, "reading %s/%s: %s", dir, de->d_name, strerror(-rc));
			goto fail;
		}
		x->path[0] = '/';
		memcpy(x->path + 1, de->d_name, strlen(de->d_name) + 1);
		x->ctype = ctype;
		snprintf(x->etag, sizeof(x->etag), "\"%016llx\"",
		         (unsigned long long)util_hash(x->data, x->len));
		a->n++;
		if (!strncmp(ctype, "text/html", 9) && (rc = page_policy(x, err, errcap))) {
			if (rc != -EINVAL)
				snprintf(err, errcap, "%s/%s: %s", dir, de->d_name, strerror(-rc));
			goto fail;
		}
	}
	closedir(d);
	free(root);
	*out = a;
	return 0;
fail:
	if (d)
		closedir(d);
	free(root);
	assets_free(a);
	return rc ? rc : -EIO;
}

void assets_free(struct assets *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].data);
		free(a->v[i].csp);
	}
	free(a->v);
	free(a);
}

int assets_serve(struct assets *a, struct http_pss *p)
{
	const char *path = strcmp(p->path, "/") ? p->path : "/index.html";
	struct http_header h[2] = {
	    {"etag:", NULL},
	    {"cache-control:", "no-cache"},
	};

	for (size_t i = 0; a && i < a->n; i++) {
		struct asset *x = &a->v[i];
		struct buf *b;

		if (strcmp(x->path, path))
			continue;
		h[0].value = x->etag;
		p->cors = 1; /* widgets load from any page */
		p->csp = x->csp;
		b = http_body(p);
		if (p->if_none_match[0] && strstr(p->if_none_match, x->etag))
			return http_send(p, 304, x->ctype, h, 2) ? -1 : 1;
		if (buf_append(b, x->data, x->len))
			return -1;
		return http_send(p, 200, x->ctype, h, 2) ? -1 : 1;
	}
	return 0;
}
