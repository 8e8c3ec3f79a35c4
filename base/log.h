/* base/log.h - structured logging: one JSON object per line.
 *
 * Lines go to stderr (headless) or to a log file (console mode, where the
 * terminal belongs to curses). Any thread may log; a mutex keeps lines whole.
 */
#ifndef TALLY_BASE_LOG_H
#define TALLY_BASE_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Send lines to path (append, created 0640), or to stderr when path is NULL.
 * Returns 0 or -errno. Call before other threads start. */
int log_open(const char *path);

/* Reopen the log file (after SIGHUP / rotation). Safe from any thread but not
 * from a signal handler. Returns 0 or -errno. */
int log_reopen(void);

/* Drop lines below level. */
void log_set_level(enum log_level level);

/* Write {"ts","level","event", ...fields}. Steals the reference to fields
 * (which may be NULL). */
void log_event(enum log_level level, const char *event, json_t *fields);

/* Write {"ts","level","event","msg"} with a printf-formatted message. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Close the log file. */
void log_close(void);

#endif
