/*
 * lock: the state directory lock (see lock.h).
 */
#include "daemon/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/xmalloc.h"

int statelock_acquire(const struct wharf_config *cfg, struct werr *e)
{
    char *path = xasprintf("%s/wharf.pid", cfg->state_dir);
    char buf[32];
    int fd = -1;

    if (mkdirs(cfg->state_dir, 0750, e) < 0)
        goto fail;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        werr_sys(e, "%s", path);
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n = errno == EWOULDBLOCK ? pread(fd, buf, sizeof buf - 1, 0) : -1;
        if (n >= 0) {
            buf[n] = 0;
            buf[strcspn(buf, "\n")] = 0;
            werr_set(e, "another wharf (pid %s) holds %s; one server per state directory",
                     *buf ? buf : "?", cfg->state_dir);
            close(fd);
            free(path);
            return -2;
        }
        werr_sys(e, "%s: lock", path);
        goto fail;
    }
    snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0) {
        werr_sys(e, "%s: write", path);
        goto fail;
    }
    free(path);
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    free(path);
    return -1;
}
