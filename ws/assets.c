/* ws/assets.c - static files, read into memory at start and served with
 * strong ETags. The folder is small (widgets, pages); serving from memory
 * keeps the service thread free of file I/O. */
#include "ws/internal.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSET_MAX_SIZE (4 * 1024 * 1024)
#define ASSET_MAX_COUNT 256

struct asset {
	char path[256]; /* "/widget.js" */
	const char *ctype;
	char etag[40];
	char *data;
	size_t len;
};

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

static int read_file(int dirfd, const char *name, char **data, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got = 0;
	char *p;

	if (fd < 0)
		return -errno;
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

int assets_load(const char *dir, struct assets **out, char *err, size_t errcap)
{
	struct assets *a = calloc(1, sizeof(*a));
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->v = calloc(ASSET_MAX_COUNT, sizeof(*a->v));
	d = opendir(dir);
	if (!a->v || !d) {
		rc = a->v ? -errno : -ENOMEM;
		snprintf(err, errcap, "assets folder %s: %s", dir, strerror(-rc));
		goto fail;
	}
	while ((de = readdir(d)) && a->n < ASSET_MAX_COUNT) {
		struct asset *x = &a->v[a->n];
		const char *ctype = ctype_of(de->d_name);

		if (de->d_name[0] == '.' || !ctype || strlen(de->d_name) > 200)
			continue;
		rc = read_file(dirfd(d), de->d_name, &x->data, &x->len);
		if (rc == -EINVAL)
			continue; /* not a regular file, or too large */
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
	}
	closedir(d);
	*out = a;
	return 0;
fail:
	if (d)
		closedir(d);
	assets_free(a);
	return rc ? rc : -EIO;
}

void assets_free(struct assets *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].data);
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
		b = http_body(p);
		if (p->if_none_match[0] && strstr(p->if_none_match, x->etag))
			return http_send(p, 304, x->ctype, h, 2) ? -1 : 1;
		if (buf_append(b, x->data, x->len))
			return -1;
		return http_send(p, 200, x->ctype, h, 2) ? -1 : 1;
	}
	return 0;
}
