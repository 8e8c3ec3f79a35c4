/* tally_token.h - the `tally token` command (see tally_token.c). */
#ifndef TALLY_TALLY_TOKEN_H
#define TALLY_TALLY_TOKEN_H

/* Run `tally token ...`: argv[0] is "token". Returns the exit status: 0
 * done, 1 refused or failed (a taken or unknown name, the database), 2 bad
 * usage (an unknown role, a bad name, a missing argument). */
int tally_token_main(int argc, char **argv);

#endif
