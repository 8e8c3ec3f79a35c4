/* tally_console.h - the in-process console's source (see tally_console.c). */
#ifndef TALLY_TALLY_CONSOLE_H
#define TALLY_TALLY_CONSOLE_H

struct console_source;
struct engine;
struct local_source;
struct server;

/* The source of the console that runs in tally's own terminal, reading
 * server s's console feed and acting on engine e; server_name is shown in
 * its header. Returns 0 or a negative errno. */
int tally_console_new(struct engine *e, struct server *s, const char *server_name,
                      struct local_source **out);

/* Fill src to read and act through ls (which must outlive its use). */
void tally_console_source(struct local_source *ls, struct console_source *src);

/* Free ls (NULL is fine); the console no longer runs. */
void tally_console_free(struct local_source *ls);

#endif
