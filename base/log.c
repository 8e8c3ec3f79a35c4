/* base/log.c - JSON-lines logger shared by all threads. */
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;
static char *log_path;
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int log_open(const char *path)
{
	int fd;

	if (!path)
		return 0;
	fd = open_path(path);
	if (fd < 0)
		return fd;
	free(log_path);
	log_path = strdup(path);
	if (!log_path) {
		close(fd);
		return -ENOMEM;
	}
	log_fd = fd;
	return 0;
}

int log_reopen(void)
{
	int fd, rc = 0;

	pthread_mutex_lock(&log_lock);
	if (log_path) {
		fd = open_path(log_path);
		if (fd < 0) {
			rc = fd;
		} else {
			if (log_fd != STDERR_FILENO)
				close(log_fd);
			log_fd = fd;
		}
	}
	pthread_mutex_unlock(&log_lock);
	return rc;
}

void log_set_level(enum log_level level)
{
	log_min = level;
}

void log_event(enum log_level level, const char *event, json_t *fields)
{
	char ts[32];
	json_t *o;
	char *line;

	if (level < log_min) {
		json_decref(fields);
		return;
	}
	o = json_object();
	if (!o) {
		json_decref(fields);
		return;
	}
	if (json_object_set_new(o, "ts",
	                        json_string(util_rfc3339(util_now_ms(), ts, sizeof(ts)))) ||
	    json_object_set_new(o, "level", json_string(level_names[level])) ||
	    json_object_set_new(o, "event", json_string(event)) ||
	    (fields && json_object_update(o, fields))) {
		json_decref(fields);
		json_decref(o);
		return;
	}
	json_decref(fields);
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!line)
		return;
	pthread_mutex_lock(&log_lock);
	{
		size_t len = strlen(line);

		line[len] = '\n';
		/* A failed log write has nowhere better to be reported. */
		if (write(log_fd, line, len + 1) < 0)
			errno = 0;
		line[len] = '\0';
	}
	pthread_mutex_unlock(&log_lock);
	free(line);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* JSON needs UTF-8: a message cut mid-character, or bytes from a peer,
	 * would make the line vanish; show them as '?' instead. */
	if (util_utf8_len(msg, strlen(msg)) < 0)
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	log_event(level, event, json_pack("{s:s}", "msg", msg));
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	free(log_path);
	log_path = NULL;
	pthread_mutex_unlock(&log_lock);
}
