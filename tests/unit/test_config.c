/*
 * test_config: wharf.yaml and profile loading — the bundled examples load
 * clean; every kind of mistake gives its exact file:line:column message;
 * several mistakes are all reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/durable.h"
#include "util/xmalloc.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wharf-test-config.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    struct werr e;
    (void)state;
    rmtree(dir, &e);
    return 0;
}

static char *write_file(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load a profile from text; return the diags joined by newlines. */
static char *load_profile_text(const char *name, const char *text, struct profile **out)
{
    struct wharf_config cfg;
    struct diags d = {0};
    char *path = write_file(name, text), *joined = xstrdup("");
    config_defaults(&cfg, dir);
    free(cfg.schemas_dir);
    cfg.schemas_dir = xstrdup(dir); /* s.json and orders.schema.json live there */
    free(write_file("s.json", "{\"fields\": []}"));
    free(write_file("orders.schema.json", "{\"fields\": []}"));
    struct profile *p = profile_load(&cfg, path, &d);
    for (size_t i = 0; i < d.n; i++) {
        char *j = xasprintf("%s%s\n", joined, d.msg[i]);
        free(joined);
        joined = j;
    }
    if (out)
        *out = p;
    else
        profile_free(p);
    diag_free(&d);
    config_free(&cfg);
    free(path);
    return joined;
}

static const char *GOOD = "name: acme\n"
                          "source:\n"
                          "  type: spool\n"
                          "  path: var/drop/acme\n"
                          "  pattern: \"orders_*.csv*\"\n"
                          "  complete_when: { stable_for: 10s, done_file: \"{name}.done\" }\n"
                          "  after: { move: var/done }\n"
                          "schedule: { every: 30s }\n"
                          "expect: [ { days: mon-fri, by: \"07:00\", timezone: Europe/Berlin } ]\n"
                          "encoding: windows-1252\n"
                          "format: csv\n"
                          "csv:\n"
                          "  dialect: { delimiter: \";\", quote: \"\\\"\", header: true }\n"
                          "  schema: orders.schema.json\n"
                          "target: { type: sqlite, path: var/w.db, table: orders, mode: upsert, "
                          "key: [order_id] }\n"
                          "on_invalid: split\n"
                          "max_invalid: 5%\n"
                          "duplicates: reject\n"
                          "limits: { max_bytes: 1GiB, max_line: 64KB }\n";

static void test_good_profile(void **state)
{
    struct profile *p = NULL;
    (void)state;
    char *msgs = load_profile_text("acme.yaml", GOOD, &p);
    assert_string_equal(msgs, "");
    assert_non_null(p);
    assert_string_equal(p->name, "acme");
    assert_int_equal(p->source.type, SOURCE_SPOOL);
    assert_int_equal(p->source.stable_for_ms, 10000);
    assert_string_equal(p->source.done_file, "{name}.done");
    assert_int_equal(p->source.after, AFTER_MOVE);
    assert_string_equal(p->source.after_dir, "var/done");
    assert_int_equal(p->schedule.every_ms, 30000);
    assert_int_equal(p->n_expect, 1);
    assert_int_equal(p->expect[0].days, 0x3e); /* mon..fri */
    assert_int_equal(p->expect[0].by_minutes, 7 * 60);
    assert_true(p->csv.dialect_pinned);
    assert_int_equal(p->csv.delimiter, ';');
    assert_int_equal(p->target.mode, LOAD_UPSERT);
    assert_int_equal(p->target.key.n, 1);
    assert_int_equal(p->on_invalid, ON_INVALID_SPLIT);
    assert_true(p->max_invalid_pct > 4.99 && p->max_invalid_pct < 5.01);
    assert_int_equal(p->duplicates, DUP_REJECT);
    assert_int_equal(p->limits.max_bytes, 1ULL << 30);
    assert_int_equal(p->limits.max_line, 64000);
    assert_int_equal(p->limits.max_attributes, 256); /* the default */
    profile_free(p);
    free(msgs);
}

static void test_bundled_profiles(void **state)
{
    struct wharf_config cfg;
    struct profile_set set = {0};
    struct diags d = {0};
    (void)state;
    config_defaults(&cfg, NULL);
    free(cfg.profiles_dir);
    cfg.profiles_dir = xasprintf("%s/profiles", WHARF_SOURCE_DIR);
    free(cfg.schemas_dir);
    cfg.schemas_dir = xasprintf("%s/schemas", WHARF_SOURCE_DIR);
    assert_int_equal(profiles_load(&cfg, NULL, 0, &set, &d), 0);
    assert_int_equal(d.n, 0);
    assert_true(set.n >= 3);
    assert_non_null(profiles_find(&set, "acme-orders"));
    profiles_free(&set);
    diag_free(&d);
    config_free(&cfg);
}

/* Each mistake and its exact message. */
static void test_each_mistake(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"source:\n  type: spool\n  path: x\n  complete_when: { stable_for: 10 sec }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:4:32: source.complete_when.stable_for: \"10 sec\" is not a duration (use 10s, "
         "5m, 1h)"},
        {"source: { type: spool, path: x, patern: \"*.csv\" }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:33: source.patern: unknown key (valid here: type, path, pattern, recursive, "
         "ignore, complete_when, after, host, port, user, key_file, passphrase_file, "
         "password_file, known_hosts, timeout, connections, max_transfers, parallel, "
         "parallel_min)"},
        {"source: { type: ftp, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: s.json "
         "}\n",
         "p.yaml:1:17: source.type: \"ftp\" is not valid (use spool | sftp)"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: \"x; drop\" }\n"
         "csv: { schema: s.json }\n",
         "p.yaml:2:30: target.table: \"x; drop\" is not a table name (letters, digits, _; at most "
         "63; not sqlite_* or wharf_*)"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "limits: { max_bytes: 10 MB }\n",
         "p.yaml:4:22: limits.max_bytes: \"10 MB\" is not a size (use 512, 64KB, 10MB, 1GiB)"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "limits: { max_attributes: 0 }\n",
         "p.yaml:4:27: limits.max_attributes: \"0\" is not a whole number from 1 to 100000"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "schedule: { every: 30s, timezone: Mars/Olympus }\n",
         "p.yaml:4:35: schedule.timezone: \"Mars/Olympus\" is not a known timezone (e.g. UTC, "
         "Europe/Berlin)"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "expect: [ { days: someday, by: \"7am\" } ]\n",
         "p.yaml:4:19: expect[0].days: \"someday\" is not a set of days (use mon-fri, sat,sun, "
         "daily)"},
        {"source: { type: sftp, path: /in, host: h, user: u, password: hunter2 }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:52: source.password: secrets are never inline; use password_file"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "encoding: klingon-8\n",
         "p.yaml:4:11: encoding: \"klingon-8\" is not a known charset (use auto, utf-8, "
         "windows-1252, iso-8859-15, utf-16, ...)"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "on_invalid: [reject]\n",
         "p.yaml:4:13: on_invalid: expected a scalar, found a list"},
        {"source: [ x ]\n", "p.yaml:1:9: source: expected a mapping, found a list"},
        {"source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\ncsv: { schema: "
         "s.json }\n"
         "target: { path: y.db, table: u }\n",
         "p.yaml:4:1: target: duplicate key (first given at line 2)"},
        {"source: { type: spool, path: x\n", "p.yaml:2:1: YAML syntax error"},
        {"source: { type: sftp, path: /in, host: h, user: u, key_file: k, parallel: 0 }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:75: source.parallel: \"0\" is not a whole number from 1 to 16"},
        {"source: { type: sftp, path: /in, host: h, user: u, key_file: k, parallel: many }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:75: source.parallel: \"many\" is not a whole number from 1 to 16"},
        {"source: { type: sftp, path: /in, host: h, user: u, key_file: k, parallel: 4,\n"
         "  parallel_min: 64KB }\ntarget: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:2:17: source.parallel_min: \"64KB\" is below 1MB"},
        {"source: { type: sftp, path: /in, host: h, user: u, key_file: k, parallel_min: lots }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:79: source.parallel_min: \"lots\" is not a size (use 512, 64KB, 10MB, 1GiB)"},
        {"source: { type: spool, path: x, parallel: 2 }\n"
         "target: { path: w.db, table: t }\ncsv: { schema: s.json }\n",
         "p.yaml:1:43: source.parallel: only valid with type: sftp"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msgs = load_profile_text("p.yaml", cases[i].yaml, NULL);
        char *want = xasprintf("%s/%s", dir, cases[i].msg);
        if (getenv("SHOW"))
            printf("%s", msgs);
        if (!getenv("SHOW") && !strstr(msgs, want))
            fail_msg("case %zu: want\n  %s\ngot\n  %s", i, want, msgs);
        free(want);
        free(msgs);
    }
}

/* encoding: { auto: [...] } (issue 20): canonical names kept in order; each
 * mistake named at file:line:col. */
static void test_encoding_auto_list(void **state)
{
    static const char *head = "source: { type: spool, path: x }\ntarget: { path: w.db, table: t }\n"
                              "csv: { schema: s.json }\n";
    static const struct {
        const char *yaml;
        const char *msg;
    } bad[] = {
        {"encoding: { auto: [utf-8, shift_jis] }\n",
         "p.yaml:4:27: encoding.auto[1]: \"shift_jis\" cannot be detected automatically "
         "(detection tells only: UTF-8, UTF-16, UTF-32, WINDOWS-1252, ISO-8859-1, ISO-8859-15, "},
        {"encoding: { auto: [shift_jis] }\n", "if the partner always sends it, pin it: encoding: "
                                              "shift_jis"},
        {"encoding: { auto: [latin1, iso-8859-1] }\n",
         "p.yaml:4:28: encoding.auto[1]: \"iso-8859-1\" is listed twice (as ISO-8859-1)"},
        {"encoding: { auto: [] }\n", "p.yaml:4:19: encoding.auto: must list at least one charset"},
        {"encoding: { auto: windows-1252 }\n",
         "p.yaml:4:19: encoding.auto: expected a list, found a scalar"},
        {"encoding: { detect: [utf-8] }\n", "p.yaml:4:13: encoding.detect: unknown key (valid "
                                            "here: auto)"},
        {"encoding: { auto: [utf-8, [x]] }\n",
         "p.yaml:4:27: encoding.auto[1]: expected a scalar, found a list"},
    };
    struct profile *p = NULL;
    char *text, *msgs;
    (void)state;
    text = xasprintf("%sencoding: { auto: [utf8, cp1252, Latin-9, koi8-r] }\n", head);
    msgs = load_profile_text("p.yaml", text, &p);
    assert_string_equal(msgs, "");
    assert_string_equal(p->encoding, "auto");
    assert_int_equal(p->n_encoding_auto, 4);
    assert_string_equal(p->encoding_auto[0], "UTF-8");
    assert_string_equal(p->encoding_auto[1], "WINDOWS-1252");
    assert_string_equal(p->encoding_auto[2], "ISO-8859-15");
    assert_string_equal(p->encoding_auto[3], "KOI8-R");
    profile_free(p);
    free(msgs);
    free(text);
    /* plain auto: the default list (NULL) */
    text = xasprintf("%sencoding: auto\n", head);
    msgs = load_profile_text("p.yaml", text, &p);
    assert_string_equal(msgs, "");
    assert_null(p->encoding_auto);
    profile_free(p);
    free(msgs);
    free(text);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = xasprintf("%s%s", head, bad[i].yaml);
        msgs = load_profile_text("p.yaml", text, NULL);
        if (!strstr(msgs, bad[i].msg))
            fail_msg("case %zu: want\n  %s\ngot\n  %s", i, bad[i].msg, msgs);
        free(msgs);
        free(text);
    }
}

static void test_three_mistakes_all_reported(void **state)
{
    (void)state;
    char *msgs = load_profile_text("three.yaml",
                                   "source:\n"
                                   "  type: spool\n"
                                   "  path: x\n"
                                   "  complete_when: { stable_for: soon }\n"
                                   "shedule: { every: 30s }\n"
                                   "target: { path: w.db, table: t, mode: merge }\n"
                                   "csv: { schema: s.json }\n",
                                   NULL);
    if (getenv("SHOW"))
        printf("%s", msgs);
    int lines = 0;
    for (char *p = msgs; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_non_null(strstr(msgs, "three.yaml:4:32: source.complete_when.stable_for"));
    assert_non_null(strstr(msgs, "three.yaml:5:1: shedule: unknown key"));
    assert_non_null(strstr(msgs, "three.yaml:6:39: target.mode: \"merge\" is not valid (use "
                                 "append | replace | upsert)"));
    free(msgs);
}

static void test_wharf_yaml(void **state)
{
    struct wharf_config cfg;
    struct diags d = {0};
    (void)state;
    char *path = write_file("wharf.yaml", "state_dir: /srv/wharf\nworkers: 4\n"
                                          "ledger: { type: sqlite, path: /srv/l.db }\n");
    assert_int_equal(config_load(path, &cfg, &d), 0);
    assert_string_equal(cfg.state_dir, "/srv/wharf");
    assert_string_equal(cfg.work_dir, "/srv/wharf/work");
    assert_string_equal(cfg.ledger_path, "/srv/l.db");
    assert_int_equal(cfg.workers, 4);
    config_free(&cfg);
    free(path);
    path = write_file("bad.yaml", "state_dir: /srv/wharf\nworkers: many\nledgr: {}\n");
    assert_int_equal(config_load(path, &cfg, &d), -1);
    assert_int_equal(d.n, 2);
    assert_non_null(strstr(d.msg[0], "bad.yaml:2:10: workers: \"many\" is not a whole number"));
    assert_non_null(strstr(d.msg[1], "bad.yaml:3:1: ledgr: unknown key"));
    config_free(&cfg);
    diag_free(&d);
    free(path);
}

static void test_missing_schema_reported(void **state)
{
    (void)state;
    char *msgs = load_profile_text("m.yaml",
                                   "source: { type: spool, path: x }\n"
                                   "target: { path: w.db, table: t }\n"
                                   "csv: { schema: nope.json }\n",
                                   NULL);
    assert_non_null(
        strstr(msgs, "m.yaml:3:16: csv.schema: \"nope.json\" not found in schemas_dir"));
    free(msgs);
    msgs = load_profile_text("m.yaml",
                             "source: { type: spool, path: x }\n"
                             "target: { path: w.db, table: t }\n"
                             "csv: { schema: ../../etc/passwd }\n",
                             NULL);
    assert_non_null(strstr(msgs, "csv.schema: \"../../etc/passwd\" must be a relative path"));
    free(msgs);
}

static void test_schema_path_confined(void **state)
{
    struct wharf_config cfg;
    (void)state;
    config_defaults(&cfg, NULL);
    char *ok = config_schema_path(&cfg, "sub/orders.xsd");
    assert_string_equal(ok, "schemas/sub/orders.xsd");
    free(ok);
    assert_null(config_schema_path(&cfg, "../etc/passwd"));
    assert_null(config_schema_path(&cfg, "/etc/passwd"));
    assert_null(config_schema_path(&cfg, "a/../../b"));
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_profile),
        cmocka_unit_test(test_bundled_profiles),
        cmocka_unit_test(test_each_mistake),
        cmocka_unit_test(test_encoding_auto_list),
        cmocka_unit_test(test_three_mistakes_all_reported),
        cmocka_unit_test(test_wharf_yaml),
        cmocka_unit_test(test_missing_schema_reported),
        cmocka_unit_test(test_schema_path_confined),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
