/*
 * driver: the pieces of wharf that the command line cannot time alone,
 * linked against a build's libwharfcore.a (bench/run compiles it).
 *
 *   driver validate DIR PROFILE FILE [RUNS]
 *       compile PROFILE's validator (DIR is the work dir holding profiles/
 *       and schemas/) and run it over FILE with no row callback (fn=NULL):
 *       XSD / Table Schema validation only, nothing shredded or loaded.
 *   driver fetch DIR PROFILE DEST
 *       open PROFILE's source (type: sftp), list it and fetch its first drop
 *       into DEST through source_sftp_ops (libssh2, SHA-256 on the fly,
 *       fsync, rename).
 *   driver sha256 FILE
 *       util/sha256.h's sha256_file over FILE (the sealing path's hash).
 *
 * Each prints one line "seconds=S bytes=N peak_rss_kb=K ..." on stdout and
 * exits 0 when the operation succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "report.h"
#include "source/source.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sha256.h"
#include "validate/validate.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void diags_print(const struct diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "driver: %s\n", d->msg[i]);
}

/* Config and one profile from DIR (its profiles/ and schemas/). */
static struct profile *load(const char *dir, const char *name, struct wharf_config *cfg)
{
    struct diags d = {0};
    char path[4096];
    struct profile *p;
    if (chdir(dir) != 0) {
        perror(dir);
        return NULL;
    }
    if (config_load(NULL, cfg, &d) != 0) {
        diags_print(&d);
        diag_free(&d);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s.yaml", cfg->profiles_dir, name);
    p = profile_load(cfg, path, &d);
    if (!p)
        diags_print(&d);
    diag_free(&d);
    return p;
}

static int cmd_validate(const char *dir, const char *name, const char *file, int runs)
{
    struct wharf_config cfg = {0};
    struct profile *p = load(dir, name, &cfg);
    struct diags d = {0};
    struct validator *v;
    int rc = 1;
    if (!p)
        return 1;
    v = validator_compile(&cfg, p, &d);
    if (!v) {
        diags_print(&d);
        goto out;
    }
    for (int i = 0; i < runs; i++) {
        struct validate_input in = {.path = file,
                                    .display = file,
                                    .format = p->format,
                                    .delimiter = ',',
                                    .quote = '"',
                                    .header = true};
        struct report rep;
        struct validate_result res = {0};
        struct werr e = {0};
        double t0 = now(), t1;
        report_init(&rep, 100);
        if (validator_run(v, &in, &rep, NULL, NULL, NULL, &res, &e) != 0) {
            fprintf(stderr, "driver: validate: %s\n", e.msg);
            report_free(&rep);
            goto out;
        }
        t1 = now();
        printf("seconds=%.6f records=%llu valid=%llu invalid=%llu peak_rss_kb=%ld\n", t1 - t0,
               (unsigned long long)res.records, (unsigned long long)res.valid,
               (unsigned long long)res.invalid, peak_rss_kb());
        report_free(&rep);
        if (res.invalid || res.structural) {
            fprintf(stderr, "driver: validate: %llu invalid records\n",
                    (unsigned long long)res.invalid);
            goto out;
        }
    }
    rc = 0;
out:
    validator_free(v);
    diag_free(&d);
    profile_free(p);
    config_free(&cfg);
    return rc;
}

static int cmd_fetch(const char *dir, const char *name, const char *dest)
{
    struct wharf_config cfg = {0};
    struct profile *p = load(dir, name, &cfg);
    struct source s = {0};
    struct drop_list l = {0};
    struct werr e = {0};
    char sha[SHA256_HEX_LEN];
    uint64_t bytes = 0;
    double t0, t1;
    int rc = 1;
    if (!p)
        return 1;
    if (source_open(&s, &cfg, p, &e) != 0) {
        fprintf(stderr, "driver: open: %s\n", e.msg);
        goto out;
    }
    if (s.ops->list(&s, &l, &e) != 0 || l.n == 0) {
        fprintf(stderr, "driver: list: %s\n", l.n ? e.msg : "no drop");
        goto close;
    }
    t0 = now();
    if (s.ops->fetch(&s, &l.v[0], dest, sha, &bytes, &e) != 0) {
        fprintf(stderr, "driver: fetch: %s\n", e.msg);
        goto close;
    }
    t1 = now();
    printf("seconds=%.6f bytes=%llu sha256=%s peak_rss_kb=%ld\n", t1 - t0,
           (unsigned long long)bytes, sha, peak_rss_kb());
    rc = 0;
close:
    drop_list_free(&l);
    source_close(&s);
out:
    profile_free(p);
    config_free(&cfg);
    return rc;
}

static int cmd_sha256(const char *file)
{
    char hex[SHA256_HEX_LEN];
    uint64_t size = 0;
    struct werr e = {0};
    double t0 = now(), t1;
    if (sha256_file(file, hex, &size, &e) != 0) {
        fprintf(stderr, "driver: sha256: %s\n", e.msg);
        return 1;
    }
    t1 = now();
    printf("seconds=%.6f bytes=%llu sha256=%s peak_rss_kb=%ld\n", t1 - t0, (unsigned long long)size,
           hex, peak_rss_kb());
    return 0;
}

int main(int argc, char **argv)
{
    log_init(1, LOG_WARN);
    if (argc >= 5 && strcmp(argv[1], "validate") == 0)
        return cmd_validate(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 1);
    if (argc == 5 && strcmp(argv[1], "fetch") == 0)
        return cmd_fetch(argv[2], argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "sha256") == 0)
        return cmd_sha256(argv[2]);
    fprintf(stderr, "usage: driver validate DIR PROFILE FILE [RUNS] | fetch DIR PROFILE DEST | "
                    "sha256 FILE\n");
    return 2;
}
