/*
 * users: the console's users file (see users.h).  Hashing and checking are
 * libcrypt's (crypt_gensalt_rn, crypt_r).
 */
#include "console/users.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/durable.h"
#include "util/xmalloc.h"

#define LINE_MAX_USERS 1024

const char *role_name(enum user_role r)
{
    return r == ROLE_OPERATOR ? "operator" : "viewer";
}

int role_parse(const char *s, enum user_role *out)
{
    if (!strcmp(s, "viewer"))
        *out = ROLE_VIEWER;
    else if (!strcmp(s, "operator"))
        *out = ROLE_OPERATOR;
    else
        return -1;
    return 0;
}

bool user_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '.' || s[n] == '_' || s[n] == '-'))
            return false;
    return n >= 1 && n <= 64;
}

static char *make_hash(const char *password, struct werr *e)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    char *h = NULL, *out = NULL;
    /* yescrypt; bcrypt when this libcrypt has no yescrypt */
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt) ||
        crypt_gensalt_rn("$2b$", 12, NULL, 0, salt, sizeof salt))
        h = crypt_r(password, salt, cd);
    if (!h || h[0] == '*')
        werr_sys(e, "libcrypt could not hash the password");
    else
        out = xstrdup(h);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return out;
}

/* Reads path into lines; a missing file is no lines.  -1 on a read error. */
static int read_lines(const char *path, char ***lines, size_t *n, struct werr *e)
{
    char buf[LINE_MAX_USERS];
    FILE *f = fopen(path, "re");
    *lines = NULL;
    *n = 0;
    if (!f) {
        if (errno == ENOENT)
            return 0;
        werr_sys(e, "%s", path);
        return -1;
    }
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = 0;
        *lines = xrealloc(*lines, (*n + 1) * sizeof **lines);
        (*lines)[(*n)++] = xstrdup(buf);
    }
    fclose(f);
    return 0;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static bool line_is(const char *line, const char *user)
{
    size_t k = strlen(user);
    return !strncmp(line, user, k) && line[k] == ':';
}

int users_set(const char *path, const char *user, const char *password, enum user_role role,
              struct werr *e)
{
    char **lines;
    size_t n;
    struct dfile f = {0};
    int r = -1;
    char *hash, *mine;
    if (!user_name_valid(user)) {
        werr_set(e, "\"%s\": a user name is 1 to 64 letters, digits, '.', '_' or '-'", user);
        return -1;
    }
    if (read_lines(path, &lines, &n, e) < 0)
        return -1;
    if (!(hash = make_hash(password, e))) {
        free_lines(lines, n);
        return -1;
    }
    mine = xasprintf("%s:%s:%s\n", user, role_name(role), hash);
    free(hash);
    if (dfile_open(&f, path, 0600, false, e) < 0)
        goto out;
    bool done = false;
    for (size_t i = 0; i < n; i++) {
        const char *w = lines[i];
        if (line_is(w, user)) {
            if (done)
                continue;
            w = mine;
            done = true;
        }
        if (dfile_write(&f, w, strlen(w), e) < 0 || (w != mine && dfile_write(&f, "\n", 1, e) < 0))
            goto out;
    }
    if (!done && dfile_write(&f, mine, strlen(mine), e) < 0)
        goto out;
    r = dfile_commit(&f, NULL, e);
out:
    if (r < 0)
        dfile_abort(&f);
    free(mine);
    free_lines(lines, n);
    return r;
}

int users_check(const char *path, const char *user, const char *password, enum user_role *role,
                struct werr *e)
{
    char **lines;
    size_t n;
    int r = 0;
    /* an unknown user costs a hash too, so timing does not say who exists */
    const char *hash = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";
    char role_s[16] = "";
    if (read_lines(path, &lines, &n, e) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!line_is(lines[i], user) || !user_name_valid(user))
            continue;
        const char *rs = lines[i] + strlen(user) + 1, *c = strchr(rs, ':');
        if (!c || (size_t)(c - rs) >= sizeof role_s)
            continue;
        memcpy(role_s, rs, (size_t)(c - rs));
        role_s[c - rs] = 0;
        hash = c + 1;
        break;
    }
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *h = crypt_r(password, hash, cd);
    if (h && h[0] != '*' && strlen(h) == strlen(hash) && !strcmp(h, hash) && role_s[0] &&
        role_parse(role_s, role) == 0)
        r = 1;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    free_lines(lines, n);
    return r;
}
