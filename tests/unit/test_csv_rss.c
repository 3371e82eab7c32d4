/*
 * test_csv_rss: validation runs in bounded memory whatever the file size.
 * A generated 50 MB CSV (one quoted multi-line field every 1000 rows, CRLF
 * endings) goes through csvv_run; every row must arrive typed, and the
 * process' peak RSS may grow by no more than a few MB over the run (the
 * input block, the record buffer and the field array).  Then the same file
 * with `unique` on the id and one repeat at the very end: the unique set
 * may add its budget (KEYSET_BUDGET) and no more, spilling to disk, and
 * the repeat must still be found with the line of its first occurrence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/durable.h"
#include "util/xmalloc.h"
#include "validate/keyset.h"
#include "validate/tableschema.h"

#define TARGET_BYTES  (50u * 1024 * 1024)
#define RSS_GROWTH_KB (16 * 1024)

static long peak_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

struct count {
    uint64_t rows;
    int64_t sum;
};

static int count_row(void *ctx, const struct row *row, struct werr *e)
{
    struct count *c = ctx;
    (void)e;
    c->rows++;
    c->sum += row->v[0].i;
    return 0;
}

static void test_bounded(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-rss-XXXXXX";
    struct werr e = {0};
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/big.csv", dir);
    FILE *f = fopen(path, "wb");
    uint64_t rows = 0, bytes = 0;
    int64_t sum = 0;
    assert_non_null(f);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    bytes += (uint64_t)fprintf(f, "id,amount,day,note\r\n");
    while (bytes < TARGET_BYTES) {
        rows++;
        /* the first id is the largest: ids that only grow would be kept as
         * ranges by the unique set, which never spill */
        unsigned long long id = rows == 1 ? 1000000000000ULL : (unsigned long long)rows;
        sum += (int64_t)id;
        if (rows % 1000 == 0)
            bytes += (uint64_t)fprintf(
                f, "%llu,%llu.25,2024-03-%02llu,\"multi\r\nline, \"\"q\"\"\"\r\n", id,
                (unsigned long long)rows % 9973, (unsigned long long)(rows % 28 + 1));
        else
            bytes +=
                (uint64_t)fprintf(f, "%llu,%llu.5,2024-02-%02llu,plain text note %llu\r\n", id,
                                  (unsigned long long)rows % 9973,
                                  (unsigned long long)(rows % 28 + 1), (unsigned long long)rows);
    }
    /* the repeat of line 3's id (found only by the final merge of the spilled runs) */
    bytes += (uint64_t)fprintf(f, "2,0.5,2024-02-01,again\r\n");
    assert_int_equal(fclose(f), 0);

    struct profile *p = xcalloc(1, sizeof *p);
    struct diags d = {0};
    struct wharf_config cfg;
    const char *fields = "[{name: id, type: integer}, {name: amount, type: number},"
                         " {name: day, type: date}, {name: note, constraints: {maxLength: 64}}]";
    profile_defaults(p);
    p->name = xstrdup("rss");
    p->csv.inline_fields = node_parse("inline", fields, strlen(fields), &d);
    config_defaults(&cfg, dir);
    struct tschema *s = tschema_compile(&cfg, p, &d);
    assert_non_null(s);

    struct validate_input in = {.path = path,
                                .display = "big.csv",
                                .format = FORMAT_CSV,
                                .delimiter = ',',
                                .quote = '"',
                                .header = true};
    struct report rep;
    struct validate_result res;
    struct count c = {0};
    report_init(&rep, 10);
    long before = peak_kb();
    assert_int_equal(csvv_run(s, p, &in, &rep, count_row, &c, NULL, &res, &e), 0);
    long after = peak_kb();
    if (rep.n)
        fail_msg("unexpected problem: line %llu %s", (unsigned long long)rep.v[0].line,
                 rep.v[0].message);
    assert_int_equal(res.records, rows + 1);
    assert_int_equal(res.valid, rows + 1);
    assert_int_equal(c.rows, rows + 1);
    assert_int_equal(c.sum, sum + 2);
    if (after - before > RSS_GROWTH_KB)
        fail_msg("peak RSS grew by %ld KiB over a %llu-byte file (bound %d KiB)", after - before,
                 (unsigned long long)bytes, RSS_GROWTH_KB);
    report_free(&rep);
    tschema_free(s);
    profile_free(p);

    /* the same with unique ids */
    const char *ufields = "[{name: id, type: integer, constraints: {unique: true}},"
                          " {name: amount, type: number}, {name: day, type: date},"
                          " {name: note, constraints: {maxLength: 64}}]";
    p = xcalloc(1, sizeof *p);
    profile_defaults(p);
    p->name = xstrdup("rss");
    p->csv.inline_fields = node_parse("inline", ufields, strlen(ufields), &d);
    s = tschema_compile(&cfg, p, &d);
    assert_non_null(s);
    memset(&c, 0, sizeof c);
    report_init(&rep, 10);
    before = peak_kb();
    assert_int_equal(csvv_run(s, p, &in, &rep, count_row, &c, NULL, &res, &e), 0);
    after = peak_kb();
    assert_int_equal(rep.total, 1);
    assert_string_equal(rep.v[0].code, "unique");
    assert_string_equal(rep.v[0].message, "is not unique (first seen on line 3)");
    assert_string_equal(rep.v[0].value, "2");
    assert_true(res.late_duplicates);
    assert_int_equal(res.valid, rows);
    assert_int_equal(res.invalid, 1);
#if !defined(__SANITIZE_ADDRESS__) /* ASan's shadow and quarantine would not fit */
    if (after - before > RSS_GROWTH_KB + (long)(KEYSET_BUDGET / 1024))
        fail_msg("with unique: peak RSS grew by %ld KiB (bound %ld KiB)", after - before,
                 RSS_GROWTH_KB + (long)(KEYSET_BUDGET / 1024));
#else
    (void)after;
    (void)before;
#endif

    report_free(&rep);
    tschema_free(s);
    profile_free(p);
    config_free(&cfg);
    diag_free(&d);
    unlink(path);
    rmdir(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
