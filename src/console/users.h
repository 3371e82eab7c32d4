/*
 * users: the console's users file, one user a line:
 *
 *   alice:operator:$y$j9T$...
 *   bob:viewer:$2b$12$...
 *
 * The hash is made by the system's libcrypt (crypt_gensalt "$y$" yescrypt,
 * "$2b$" bcrypt where yescrypt is missing) and checked with crypt_r; wharf
 * never hashes a password itself.  The file is written 0600, durably.
 */
#ifndef WHARF_USERS_H
#define WHARF_USERS_H

#include <stdbool.h>

#include "util/err.h"

enum user_role { ROLE_VIEWER, ROLE_OPERATOR };

const char *role_name(enum user_role r);
int role_parse(const char *s, enum user_role *out);
/* [A-Za-z0-9._-], 1..64 characters. */
bool user_name_valid(const char *s);
/* Adds or replaces user in path with a fresh hash of password. */
int users_set(const char *path, const char *user, const char *password, enum user_role role,
              struct werr *e);
/* 1 when user exists with that password (*role set), 0 when not (unknown
 * user or wrong password: the same cost either way), -1 when the file
 * cannot be read (e). */
int users_check(const char *path, const char *user, const char *password, enum user_role *role,
                struct werr *e);

#endif
