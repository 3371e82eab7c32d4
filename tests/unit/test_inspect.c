/*
 * test_inspect: the inspect stage on files made here, in a temp dir that is
 * removed afterwards: every compression kind, zip and tar archives, unsafe
 * members, a gzip bomb, truncated streams, BOMs, legacy charsets, NUL bytes,
 * declared charsets, XML and CSV dialects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "config/config.h"
#include "inspect/encoding.h"
#include "inspect/inspect.h"
#include "report.h"
#include "util/durable.h"
#include "util/sha256.h"
#include "util/xmalloc.h"

static char tmp[256];
static int seq;

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", tmp, name);
}

static void put(const char *name, const void *data, size_t len)
{
    char *p = path_in(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(p);
}

static void puts_file(const char *name, const char *text)
{
    put(name, text, strlen(text));
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

static struct profile *made[64];
static size_t n_made;

/* A default profile, freed in teardown. */
static struct profile *profile_new(void)
{
    struct profile *p = xcalloc(1, sizeof *p);
    assert_true(n_made < 64);
    made[n_made++] = p;
    profile_defaults(p);
    p->name = xstrdup("test");
    p->file = xstrdup("test");
    return p;
}

static void set_encoding(struct profile *p, const char *enc)
{
    free(p->encoding);
    p->encoding = xstrdup(enc);
}

struct run {
    struct inspection in;
    struct report rep;
    struct werr e;
    int rc;
    char *parts;
};

static void run(struct run *r, const struct profile *p, const char *name)
{
    char *orig = path_in(name);
    memset(r, 0, sizeof *r);
    r->parts = xasprintf("%s/parts-%d", tmp, ++seq);
    report_init(&r->rep, 0);
    r->rc = inspect_run(p, NULL, orig, NULL, name, r->parts, &r->in, &r->rep, &r->e);
    if (r->rc < 0)
        fail_msg("inspect_run failed: %s", r->e.msg);
    free(orig);
}

static void run_done(struct run *r)
{
    inspection_free(&r->in);
    report_free(&r->rep);
    free(r->parts);
}

static const struct problem *find_problem(const struct report *rep, const char *code,
                                          const char *needle)
{
    size_t i;
    for (i = 0; i < rep->n; i++)
        if (!strcmp(rep->v[i].code, code) && (!needle || strstr(rep->v[i].message, needle)))
            return &rep->v[i];
    return NULL;
}

static void assert_problem(const struct report *rep, const char *code, const char *needle)
{
    if (!find_problem(rep, code, needle)) {
        char *t = report_text(rep);
        fail_msg("no %s problem mentioning '%s' in:\n%s", code, needle ? needle : "", t);
    }
}

static void assert_file_is(const char *path, const char *text)
{
    size_t n;
    char *got = slurp(path, &n);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(got, text, n);
    free(got);
}

static const struct part *part_named(const struct inspection *in, const char *name)
{
    size_t i;
    for (i = 0; i < in->n; i++)
        if (!strcmp(in->parts[i].name, name))
            return &in->parts[i];
    fail_msg("no part named %s", name);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmp, sizeof tmp, "%s/wharf-inspect-XXXXXX", base);
    assert_non_null(mkdtemp(tmp));
    return 0;
}

static int teardown(void **state)
{
    struct werr e;
    (void)state;
    while (n_made)
        profile_free(made[--n_made]);
    return rmtree(tmp, &e);
}

static const char *CSV_UTF8 = "id,name,city\n1,Müller,Köln\n2,Łukasz,Gdańsk\n3,Zoë,Aix\n";

/* ---- plain files ---- */

static void test_plain_utf8_no_copy(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    char hex[SHA256_HEX_LEN];
    char *orig = path_in("plain.csv");
    (void)state;
    puts_file("plain.csv", CSV_UTF8);
    run(&r, p, "plain.csv");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.n, 1);
    assert_string_equal(r.in.container, "none");
    assert_string_equal(r.in.compression, "none");
    /* no copy: raw and utf8 are the original */
    assert_string_equal(r.in.parts[0].raw_path, orig);
    assert_string_equal(r.in.parts[0].utf8_path, orig);
    assert_int_equal(sha256_file(orig, hex, NULL, &r.e), 0);
    assert_string_equal(r.in.parts[0].raw_sha256, hex);
    assert_string_equal(r.in.parts[0].utf8_sha256, hex);
    assert_int_equal(r.in.parts[0].raw_bytes, strlen(CSV_UTF8));
    assert_string_equal(r.in.parts[0].encoding.method, "utf-8");
    assert_string_equal(r.in.parts[0].encoding.charset, "UTF-8");
    assert_int_equal(r.in.parts[0].format, FORMAT_CSV);
    assert_int_equal(r.in.parts[0].dialect.delimiter, ',');
    assert_int_equal(r.in.parts[0].dialect.quote, '"');
    assert_true(r.in.parts[0].dialect.header);
    assert_true(r.in.parts[0].dialect.sniffed);
    assert_string_equal(r.in.parts[0].dialect.eol, "LF");
    run_done(&r);
    free(orig);
}

static void test_ascii(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    puts_file("ascii.csv", "a|b|c\n1|2|3\n4|5|6\n");
    run(&r, p, "ascii.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "ascii");
    assert_string_equal(r.in.parts[0].encoding.charset, "UTF-8");
    assert_int_equal(r.in.parts[0].dialect.delimiter, '|');
    run_done(&r);
}

/* ---- compression ---- */

static void test_every_compression(void **state)
{
    static const struct {
        const char *tool, *ext, *name;
    } k[] = {{"gzip", "gz", "gzip"},
             {"bzip2", "bz2", "bzip2"},
             {"xz", "xz", "xz"},
             {"zstd -q", "zst", "zstd"}};
    struct profile *p = profile_new();
    char hex[SHA256_HEX_LEN];
    size_t i;
    (void)state;
    puts_file("c.csv", CSV_UTF8);
    sha256_hex(CSV_UTF8, strlen(CSV_UTF8), hex);
    for (i = 0; i < sizeof k / sizeof k[0]; i++) {
        struct run r;
        char name[32];
        snprintf(name, sizeof name, "c.csv.%s", k[i].ext);
        sh("%s -c '%s/c.csv' > '%s/%s'", k[i].tool, tmp, tmp, name);
        run(&r, p, name);
        assert_int_equal(r.rc, 0);
        assert_string_equal(r.in.compression, k[i].name);
        assert_string_equal(r.in.container, "none");
        assert_int_equal(r.in.n, 1);
        assert_string_equal(r.in.parts[0].name, "c.csv");
        assert_string_equal(r.in.parts[0].raw_sha256, hex);
        assert_int_equal(r.in.parts[0].raw_bytes, strlen(CSV_UTF8));
        assert_file_is(r.in.parts[0].utf8_path, CSV_UTF8);
        assert_int_equal(r.in.parts[0].format, FORMAT_CSV);
        run_done(&r);
    }
}

static void test_truncated_gzip(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    char *big = xmalloc(200000), *gz;
    size_t i, n;
    (void)state;
    srand(7);
    for (i = 0; i < 200000; i++)
        big[i] = (char)('a' + rand() % 26);
    put("t.csv", big, 200000);
    sh("gzip -c '%s/t.csv' > '%s/t.csv.gz'", tmp, tmp);
    {
        char *gzp = path_in("t.csv.gz");
        gz = slurp(gzp, &n);
        free(gzp);
    }
    put("t.csv.gz", gz, n / 2);
    run(&r, p, "t.csv.gz");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "corrupt_archive", "truncated");
    run_done(&r);
    free(big);
    free(gz);
}

/* A gzip of 1 GiB of zeros (~1 MB), streamed through zlib. */
static void make_bomb(const char *name, uint64_t *gz_size)
{
    static unsigned char zeros[1 << 16], out[1 << 16];
    char *p = path_in(name);
    FILE *f = fopen(p, "wb");
    z_stream z;
    uint64_t left = 1ULL << 30;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
    *gz_size = 0;
    while (1) {
        int flush = left ? Z_NO_FLUSH : Z_FINISH, rc;
        size_t chunk = left > sizeof zeros ? sizeof zeros : (size_t)left;
        z.next_in = zeros;
        z.avail_in = (uInt)chunk;
        left -= chunk;
        flush = left ? Z_NO_FLUSH : Z_FINISH;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            rc = deflate(&z, flush);
            assert_true(rc != Z_STREAM_ERROR);
            fwrite(out, 1, sizeof out - z.avail_out, f);
            *gz_size += sizeof out - z.avail_out;
        } while (z.avail_out == 0);
        if (flush == Z_FINISH)
            break;
    }
    deflateEnd(&z);
    fclose(f);
    free(p);
}

static uint64_t dir_bytes(const char *dir)
{
    char cmd[512], out[64] = "";
    FILE *f;
    snprintf(cmd, sizeof cmd, "du -sb --apparent-size '%s' | cut -f1", dir);
    f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, sizeof out, f));
    pclose(f);
    return strtoull(out, NULL, 10);
}

static void test_gzip_bomb(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    uint64_t gz, cap = 16ULL << 20;
    (void)state;
    make_bomb("bomb.csv.gz", &gz);
    assert_true(gz < 2 * 1024 * 1024);

    /* the byte cap */
    p->limits.max_bytes = cap;
    p->limits.max_ratio = 1e9;
    run(&r, p, "bomb.csv.gz");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "archive_limit", "max_bytes");
    assert_int_equal(r.in.n, 1);
    assert_true(r.in.parts[0].rejected);
    assert_true(r.in.parts[0].raw_bytes <= cap);
    assert_true(r.in.parts[0].raw_bytes > cap - (1 << 20)); /* it did expand up to the cap */
    assert_true(dir_bytes(r.parts) <= cap + 4096);
    run_done(&r);

    /* the ratio, with the default byte cap (10 GiB) */
    p->limits.max_bytes = 10ULL << 30;
    p->limits.max_ratio = 20;
    run(&r, p, "bomb.csv.gz");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "archive_limit", "max_ratio");
    assert_true(r.in.parts[0].raw_bytes <= 20 * gz);
    assert_true(dir_bytes(r.parts) <= 20 * gz + 4096);
    run_done(&r);
}

/* ---- archives ---- */

struct member {
    const char *name;
    const char *data;    /* NULL for a symlink */
    const char *symlink; /* target, or NULL */
    const char *hardlink;
};

static void make_archive(const char *name, bool zip, const struct member *m, size_t n)
{
    struct archive *a = archive_write_new();
    char *p = path_in(name);
    size_t i;
    if (zip)
        archive_write_set_format_zip(a);
    else
        archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, p), ARCHIVE_OK);
    for (i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        if (m[i].symlink) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].symlink);
            archive_entry_set_size(e, 0);
        } else if (m[i].hardlink) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].hardlink);
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(m[i].data));
        }
        assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
        if (m[i].data)
            archive_write_data(a, m[i].data, strlen(m[i].data));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    free(p);
}

static void test_zip_of_three_csvs(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    const struct part *a, *b, *c;
    (void)state;
    sh("mkdir -p '%s/z' && cd '%s/z' && printf 'a,b\\n1,2\\n' > one.csv && "
       "printf 'x;y;z\\r\\n1;2;3\\r\\n' > two.csv && printf 'k\\tv\\nq\\t1\\n' > three.csv && "
       "gzip three.csv && zip -q ../three.zip one.csv two.csv three.csv.gz",
       tmp, tmp);
    run(&r, p, "three.zip");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.container, "zip");
    assert_int_equal(r.in.n, 3);
    a = part_named(&r.in, "one.csv");
    b = part_named(&r.in, "two.csv");
    c = part_named(&r.in, "three.csv"); /* .gz member expanded, suffix dropped */
    assert_string_equal(a->compression, "none");
    assert_string_equal(c->compression, "gzip");
    assert_file_is(a->utf8_path, "a,b\n1,2\n");
    assert_file_is(c->utf8_path, "k\tv\nq\t1\n");
    assert_int_equal(a->dialect.delimiter, ',');
    assert_int_equal(b->dialect.delimiter, ';');
    assert_string_equal(b->dialect.eol, "CRLF");
    assert_int_equal(c->dialect.delimiter, '\t');
    assert_false(a->rejected || b->rejected || c->rejected);
    /* each part has its own hash */
    assert_string_not_equal(a->raw_sha256, b->raw_sha256);
    run_done(&r);
}

static void test_tar_gz(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    sh("mkdir -p '%s/t' && cd '%s/t' && printf 'a,b\\n1,2\\n' > one.csv && mkdir -p d && "
       "printf '<?xml version=\"1.0\"?><orders><order id=\"1\"/></orders>' > d/two.xml && "
       "tar czf ../both.tar.gz one.csv d",
       tmp, tmp);
    run(&r, p, "both.tar.gz");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.container, "tar");
    assert_string_equal(r.in.compression, "gzip");
    assert_int_equal(r.in.n, 2);
    assert_int_equal(part_named(&r.in, "one.csv")->format, FORMAT_CSV);
    assert_int_equal(part_named(&r.in, "d/two.xml")->format, FORMAT_XML);
    assert_string_equal(part_named(&r.in, "d/two.xml")->xml_root, "orders");
    run_done(&r);
}

static void test_zip_unsafe_members(void **state)
{
    static const struct member m[] = {
        {"ok.csv", "a,b\n1,2\n", NULL, NULL},
        {"../x.csv", "a,b\n1,2\n", NULL, NULL},
        {"/tmp/abs.csv", "a,b\n1,2\n", NULL, NULL},
        {"link.csv", NULL, "/etc/passwd", NULL},
    };
    struct profile *p = profile_new();
    struct run r;
    char *escaped = xasprintf("%s/x.csv", tmp);
    (void)state;
    make_archive("unsafe.zip", true, m, 4);

    run(&r, p, "unsafe.zip");
    assert_int_equal(r.rc, 1); /* all-or-nothing */
    assert_problem(&r.rep, "unsafe_member", "'..'");
    assert_problem(&r.rep, "unsafe_member", "absolute path");
    assert_problem(&r.rep, "unsafe_member", "symbolic link");
    assert_int_equal(r.rep.n, 3);
    assert_int_equal(access(escaped, F_OK), -1);
    run_done(&r);

    p->archive_parts_independent = true;
    run(&r, p, "unsafe.zip");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.n, 4);
    assert_false(part_named(&r.in, "ok.csv")->rejected);
    assert_true(part_named(&r.in, "../x.csv")->rejected);
    assert_true(part_named(&r.in, "/tmp/abs.csv")->rejected);
    assert_true(part_named(&r.in, "link.csv")->rejected);
    assert_null(part_named(&r.in, "link.csv")->raw_path);
    assert_int_equal(r.rep.n, 3);
    run_done(&r);
    free(escaped);
}

static void test_tar_links_and_duplicates(void **state)
{
    static const struct member m[] = {
        {"a.csv", "a,b\n1,2\n", NULL, NULL},
        {"a.csv", "a,b\n3,4\n", NULL, NULL},
        {"h.csv", NULL, NULL, "a.csv"},
    };
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    make_archive("dup.tar", false, m, 3);
    run(&r, p, "dup.tar");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.in.container, "tar");
    assert_problem(&r.rep, "unsafe_member", "same name");
    assert_problem(&r.rep, "unsafe_member", "hard link");
    run_done(&r);
}

static void test_max_entries(void **state)
{
    static const struct member m[] = {{"1.csv", "a\n1\n", NULL, NULL},
                                      {"2.csv", "a\n1\n", NULL, NULL},
                                      {"3.csv", "a\n1\n", NULL, NULL},
                                      {"4.csv", "a\n1\n", NULL, NULL}};
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    make_archive("many.zip", true, m, 4);
    p->limits.max_entries = 3;
    run(&r, p, "many.zip");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "archive_limit", "max_entries");
    run_done(&r);
    p->limits.max_entries = 4;
    run(&r, p, "many.zip");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.n, 4);
    run_done(&r);
}

/* ---- encodings ---- */

static void test_utf16le_bom_spreadsheet(void **state)
{
    /* what "Unicode text" export of a spreadsheet writes: UTF-16LE, BOM, TAB, CRLF */
    static const char *text =
        "Artikel\tPreis\tOrt\r\nKäse\t3,50 €\tMünchen\r\nBrot\t2,10 €\tKöln\r\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    puts_file("u16.txt", text);
    sh("cd '%s' && printf '\\377\\376' > sheet.txt && iconv -f UTF-8 -t UTF-16LE u16.txt >> "
       "sheet.txt",
       tmp);
    run(&r, p, "sheet.txt");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "bom");
    assert_string_equal(r.in.parts[0].encoding.charset, "UTF-16LE");
    assert_string_not_equal(r.in.parts[0].utf8_path, r.in.parts[0].raw_path);
    assert_file_is(r.in.parts[0].utf8_path, text);
    assert_int_equal(r.in.parts[0].dialect.delimiter, '\t');
    assert_string_equal(r.in.parts[0].dialect.eol, "CRLF");
    assert_true(r.in.parts[0].dialect.header);
    run_done(&r);
}

static void test_windows1252_semicolon_crlf(void **state)
{
    static const char *text = "Kunde;Straße;Betrag;Währung\r\n"
                              "Müller GmbH;Königsallee 1;12,50 €;EUR\r\n"
                              "Jürgen Weiß;Öhringer Weg 3;7,00 €;EUR\r\n"
                              "Bäckerei Groß;Übersee 9;1.250,99 €;EUR\r\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    puts_file("w-utf8.csv", text);
    sh("iconv -f UTF-8 -t WINDOWS-1252 '%s/w-utf8.csv' > '%s/w1252.csv'", tmp, tmp);
    run(&r, p, "w1252.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "detector");
    assert_string_equal(r.in.parts[0].encoding.charset, "WINDOWS-1252");
    assert_true(r.in.parts[0].encoding.confidence >= 0.5);
    assert_file_is(r.in.parts[0].utf8_path, text);
    assert_int_equal(r.in.parts[0].dialect.delimiter, ';');
    assert_string_equal(r.in.parts[0].dialect.eol, "CRLF");
    assert_true(r.in.parts[0].dialect.header);
    run_done(&r);

    /* declared: the same result, method "declared" */
    set_encoding(p, "windows-1252");
    run(&r, p, "w1252.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "declared");
    assert_file_is(r.in.parts[0].utf8_path, text);
    run_done(&r);
}

static void test_latin1_ambiguity_noted(void **state)
{
    static const char *text = "name;ort\nMüller;Köln\nSchäfer;Düsseldorf\nGroß;Straße\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    puts_file("l-utf8.csv", text);
    sh("iconv -f UTF-8 -t ISO-8859-1 '%s/l-utf8.csv' > '%s/latin1.csv'", tmp, tmp);
    run(&r, p, "latin1.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.charset, "WINDOWS-1252");
    assert_non_null(strstr(r.in.parts[0].encoding.note, "0x80-0x9F"));
    assert_non_null(strstr(r.in.parts[0].encoding.note, "agree"));
    assert_file_is(r.in.parts[0].utf8_path, text);
    run_done(&r);
}

static void test_utf8_bom_not_in_output(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    puts_file("bom.csv", "\xEF\xBB\xBFid,name\n1,Zoë\n");
    run(&r, p, "bom.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "bom");
    assert_string_equal(r.in.parts[0].encoding.charset, "UTF-8");
    assert_file_is(r.in.parts[0].utf8_path, "id,name\n1,Zoë\n");
    assert_int_equal(r.in.parts[0].raw_bytes, 18);
    assert_int_equal(r.in.parts[0].utf8_bytes, 15);
    assert_string_not_equal(r.in.parts[0].raw_sha256, r.in.parts[0].utf8_sha256);
    run_done(&r);
}

static void test_declared_utf8_invalid(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    size_t cap = 1 << 16, len = 0, i, bad;
    char *buf = xmalloc(cap), want[64];
    (void)state;
    len += (size_t)sprintf(buf, "id,name\n");
    for (i = 2; i < 812; i++)
        len += (size_t)sprintf(buf + len, "%zu,Zoë %zu\n", i, i);
    len += (size_t)sprintf(buf + len, "812,caf");
    bad = len;
    buf[len++] = (char)0xE9; /* Latin-1 é */
    len += (size_t)sprintf(buf + len, "\n813,ok\n");
    put("bad.csv", buf, len);
    set_encoding(p, "utf-8");
    run(&r, p, "bad.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "invalid_encoding", "line 812");
    snprintf(want, sizeof want, "byte offset %zu", bad);
    assert_problem(&r.rep, "invalid_encoding", want);
    assert_int_equal(find_problem(&r.rep, "invalid_encoding", NULL)->line, 812);
    run_done(&r);
    free(buf);
}

static void test_nul_byte(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("nul.csv", "a,b\n1,2\n3,\0\n", 12);
    run(&r, p, "nul.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "nul_byte", "line 3");
    run_done(&r);
}

static void test_uncertain(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    unsigned char buf[4000];
    size_t i;
    (void)state;
    srand(11);
    for (i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(0x80 + rand() % 0x80); /* high bytes, no text */
    put("noise.csv", buf, sizeof buf);
    run(&r, p, "noise.csv");
    assert_int_equal(r.rc, 1);
    /* 0x81 is undefined in Windows-1252, 0x80-0x9F are C1 controls in ISO-8859 */
    assert_problem(&r.rep, "invalid_encoding", "nor text in any charset");
    assert_problem(&r.rep, "invalid_encoding", "C1 control in ISO-8859-15");
    run_done(&r);
}

static void set_auto(struct profile *p, const char *const *list, size_t n)
{
    for (size_t i = 0; i < p->n_encoding_auto; i++)
        free(p->encoding_auto[i]);
    free(p->encoding_auto);
    p->encoding_auto = xcalloc(n, sizeof *p->encoding_auto);
    for (size_t i = 0; i < n; i++)
        p->encoding_auto[i] = xstrdup(list[i]);
    p->n_encoding_auto = n;
}

/* Issue 20, finding 5: three rows, `;`, CRLF, Windows-1252: uchardet said
 * ISO-8859-3 and the rows were loaded as "Müller GmbH \u0080", "Ĝrsted". */
static void test_issue20_three_rows_windows1252(void **state)
{
    static const unsigned char raw[] = "M\xFCller GmbH \x80\r\nFran\xE7ois S\xE0rl\r\n"
                                       "\xD8rsted A/S\r\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("issue20.csv", raw, sizeof raw - 1);
    run(&r, p, "issue20.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.method, "detector");
    assert_string_equal(r.in.parts[0].encoding.charset, "WINDOWS-1252");
    assert_true(r.in.parts[0].encoding.confidence >= 0.5);
    assert_non_null(strstr(r.in.parts[0].encoding.note, "ISO-8859-1"));
    assert_file_is(r.in.parts[0].utf8_path, "Müller GmbH €\r\nFrançois Sàrl\r\nØrsted A/S\r\n");
    run_done(&r);
}

/* ISO-8859-15's Œ reads as ¼ in Windows-1252: "¼uvre" is no word. */
static void test_iso8859_15_told_by_the_text(void **state)
{
    static const unsigned char raw[] = "\xBCuvre compl\xE8te;12\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("oeuvre.csv", raw, sizeof raw - 1);
    run(&r, p, "oeuvre.csv");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.in.parts[0].encoding.charset, "ISO-8859-15");
    assert_file_is(r.in.parts[0].utf8_path, "Œuvre complète;12\n");
    run_done(&r);
}

/* 0xBC alone: ¼ (Windows-1252) or Œ (ISO-8859-15)?  Nothing tells. */
static void test_uncertain_shows_both_readings(void **state)
{
    static const unsigned char raw[] = "\xBC Liter \xD6l\n";
    static const char *const two[] = {"WINDOWS-1252", "WINDOWS-1250"};
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("quarter.csv", raw, sizeof raw - 1);
    run(&r, p, "quarter.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "encoding_uncertain", "encoding uncertain");
    assert_problem(&r.rep, "encoding_uncertain", "\"¼ Liter Öl\" as WINDOWS-1252");
    assert_problem(&r.rep, "encoding_uncertain", "\"Œ Liter Öl\" as ISO-8859-15");
    assert_problem(&r.rep, "encoding_uncertain", "runbooks/encoding-changed.md");
    assert_int_equal(find_problem(&r.rep, "encoding_uncertain", NULL)->line, 1);
    run_done(&r);

    /* è (Windows-1252) or č (Windows-1250): both letters, both words */
    set_auto(p, two, 2);
    puts_file("creme.csv", "id;name\n1;Cr\xE8me br\xFBl\xE9"
                           "e\n");
    run(&r, p, "creme.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "encoding_uncertain", "WINDOWS-1252 and WINDOWS-1250");
    assert_problem(&r.rep, "encoding_uncertain", "line 2 reads \"1;Crème brûlée\" as WINDOWS-1252");
    assert_problem(&r.rep, "encoding_uncertain", "\"1;Crčme brűlée\" as WINDOWS-1250");
    assert_int_equal(find_problem(&r.rep, "encoding_uncertain", NULL)->line, 2);
    run_done(&r);
}

/* Detection chooses only among the profile's charsets. */
static void test_auto_list_restricts(void **state)
{
    static const char *const latin9[] = {"UTF-8", "ISO-8859-15"};
    static const char *const legacy[] = {"WINDOWS-1252"};
    static const unsigned char raw[] = "Preis;12,50 \x80\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("euro.csv", raw, sizeof raw - 1);
    set_auto(p, latin9, 2);
    run(&r, p, "euro.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "invalid_encoding", "byte 0x80 is a C1 control in ISO-8859-15");
    run_done(&r);

    /* valid UTF-8, but the list does not have it */
    set_auto(p, legacy, 1);
    puts_file("zoe.csv", "id,name\n1,Zoë\n");
    run(&r, p, "zoe.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "encoding_uncertain", "utf-8 is not among");
    run_done(&r);

    /* UTF-16 without a BOM is only guessed when listed */
    set_auto(p, latin9, 2);
    put("u16.csv",
        "i\0d\0,\0n\0a\0m\0e\0\n\0"
        "1\0,\0Z\0o\0\xEB\0\n\0",
        28);
    run(&r, p, "u16.csv");
    assert_int_equal(r.rc, 1);
    run_done(&r);
}

/* A pinned ISO-8859 charset never turns 0x80-0x9F into C1 controls. */
static void test_declared_latin1_c1_rejected(void **state)
{
    static const unsigned char raw[] = "a;b\n1;ok\n2;12 \x80\n";
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    put("c1.csv", raw, sizeof raw - 1);
    set_encoding(p, "iso-8859-1");
    run(&r, p, "c1.csv");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "invalid_encoding", "byte 0x80 at line 3 is the C1 control U+0080");
    run_done(&r);
    set_encoding(p, "windows-1252");
    run(&r, p, "c1.csv");
    assert_int_equal(r.rc, 0);
    assert_file_is(r.in.parts[0].utf8_path, "a;b\n1;ok\n2;12 €\n");
    run_done(&r);
}

/* ---- formats ---- */

static void test_xml_and_mismatch(void **state)
{
    static const char *xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
                             "<!-- export -->\n<orders><order id=\"1\">Müller</order></orders>\n";
    struct profile *p = profile_new();
    struct run r;
    size_t n;
    char *out;
    (void)state;
    puts_file("x-utf8.xml", xml);
    sh("iconv -f UTF-8 -t ISO-8859-1 '%s/x-utf8.xml' > '%s/x.xml'", tmp, tmp);
    run(&r, p, "x.xml");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.parts[0].format, FORMAT_XML);
    assert_string_equal(r.in.parts[0].xml_root, "orders");
    assert_string_equal(r.in.parts[0].encoding.charset, "ISO-8859-1");
    out = slurp(r.in.parts[0].utf8_path, &n);
    assert_non_null(strstr(out, "encoding=\"UTF-8\""));
    assert_non_null(strstr(out, "Müller"));
    free(out);
    run_done(&r);

    p->format = FORMAT_CSV;
    run(&r, p, "x.xml");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "format_mismatch", "<orders>");
    run_done(&r);

    p->format = FORMAT_XML;
    puts_file("not.xml", "a,b\n1,2\n");
    run(&r, p, "not.xml");
    assert_int_equal(r.rc, 1);
    assert_problem(&r.rep, "format_mismatch", "XML");
    run_done(&r);
}

static void test_dialect_sniff_and_pin(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    (void)state;
    /* commas inside quotes must not win over ; */
    puts_file("q.csv", "\"a,1\";\"b,2\";c\r\n\"x,y\";\"p,q\";3\r\n\"m,n\";\"o,p\";4\r\n");
    run(&r, p, "q.csv");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.parts[0].dialect.delimiter, ';');
    assert_int_equal(r.in.parts[0].dialect.quote, '"');
    run_done(&r);

    /* no header: the first record is data */
    puts_file("nohead.csv", "1,2024-01-05,3.5\n2,2024-01-06,4.5\n");
    run(&r, p, "nohead.csv");
    assert_false(r.in.parts[0].dialect.header);
    run_done(&r);

    p->csv.dialect_pinned = true;
    p->csv.delimiter = '|';
    p->csv.quote = '\'';
    p->csv.header = false;
    run(&r, p, "q.csv");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.in.parts[0].dialect.delimiter, '|');
    assert_int_equal(r.in.parts[0].dialect.quote, '\'');
    assert_false(r.in.parts[0].dialect.sniffed);
    assert_string_equal(r.in.parts[0].dialect.eol, "CRLF");
    run_done(&r);
}

static void test_json_evidence(void **state)
{
    struct profile *p = profile_new();
    struct run r;
    json_t *j, *part;
    (void)state;
    puts_file("j.csv", CSV_UTF8);
    sh("gzip -c '%s/j.csv' > '%s/j.csv.gz'", tmp, tmp);
    run(&r, p, "j.csv.gz");
    assert_int_equal(r.rc, 0);
    j = inspection_json(&r.in);
    assert_string_equal(json_string_value(json_object_get(j, "compression")), "gzip");
    part = json_array_get(json_object_get(j, "parts"), 0);
    assert_non_null(part);
    assert_string_equal(json_string_value(json_object_get(part, "raw_sha256")),
                        r.in.parts[0].raw_sha256);
    assert_string_equal(json_string_value(json_object_get(part, "format")), "csv");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(part, "encoding"), "method")), "utf-8");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(part, "dialect"), "delimiter")), ",");
    json_decref(j);
    run_done(&r);
}

/* A plain file's raw_sha256 is the take's hash when the caller gives it (the
 * file is not hashed again), the file's own otherwise; a compressed file's
 * part is always hashed as it is unpacked.  The rest of the evidence is the
 * same either way. */
static void test_known_sha256(void **state)
{
    static const char known[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct profile *p = profile_new();
    struct run a, b, c;
    char *orig = path_in("k.csv"), *gz = path_in("k.csv.gz"), want[SHA256_HEX_LEN];
    (void)state;
    puts_file("k.csv", CSV_UTF8);
    sh("gzip -c '%s/k.csv' > '%s/k.csv.gz'", tmp, tmp);
    struct werr e;
    assert_int_equal(sha256_file(orig, want, NULL, &e), 0);
    run(&a, p, "k.csv");
    assert_string_equal(a.in.parts[0].raw_sha256, want);
    memset(&b, 0, sizeof b);
    b.parts = xasprintf("%s/parts-%d", tmp, ++seq);
    report_init(&b.rep, 0);
    assert_int_equal(inspect_run(p, NULL, orig, known, "k.csv", b.parts, &b.in, &b.rep, &b.e), 0);
    assert_string_equal(b.in.parts[0].raw_sha256, known);
    assert_string_equal(b.in.parts[0].utf8_sha256, known); /* UTF-8 already: the same bytes */
    json_t *ja = inspection_json(&a.in), *jb = inspection_json(&b.in);
    json_object_del(json_array_get(json_object_get(ja, "parts"), 0), "raw_sha256");
    json_object_del(json_array_get(json_object_get(jb, "parts"), 0), "raw_sha256");
    json_object_del(json_array_get(json_object_get(ja, "parts"), 0), "utf8_sha256");
    json_object_del(json_array_get(json_object_get(jb, "parts"), 0), "utf8_sha256");
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    memset(&c, 0, sizeof c);
    c.parts = xasprintf("%s/parts-%d", tmp, ++seq);
    report_init(&c.rep, 0);
    assert_int_equal(inspect_run(p, NULL, gz, known, "k.csv.gz", c.parts, &c.in, &c.rep, &c.e), 0);
    assert_string_equal(c.in.parts[0].raw_sha256, want); /* the unpacked bytes, hashed */
    run_done(&a);
    run_done(&b);
    run_done(&c);
    free(orig);
    free(gz);
}

static void test_utf8_validator(void **state)
{
    (void)state;
    assert_true(utf8_valid("plain ascii text, long enough for the fast path", 48));
    assert_true(utf8_valid("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9));
    assert_false(utf8_valid("\xC0\xAF", 2));         /* overlong */
    assert_false(utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(utf8_valid("abc\xE2\x82", 5));      /* cut short */
    assert_false(utf8_valid("\x80", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_plain_utf8_no_copy),
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_every_compression),
        cmocka_unit_test(test_truncated_gzip),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_zip_of_three_csvs),
        cmocka_unit_test(test_tar_gz),
        cmocka_unit_test(test_zip_unsafe_members),
        cmocka_unit_test(test_tar_links_and_duplicates),
        cmocka_unit_test(test_max_entries),
        cmocka_unit_test(test_utf16le_bom_spreadsheet),
        cmocka_unit_test(test_windows1252_semicolon_crlf),
        cmocka_unit_test(test_issue20_three_rows_windows1252),
        cmocka_unit_test(test_iso8859_15_told_by_the_text),
        cmocka_unit_test(test_uncertain_shows_both_readings),
        cmocka_unit_test(test_auto_list_restricts),
        cmocka_unit_test(test_declared_latin1_c1_rejected),
        cmocka_unit_test(test_latin1_ambiguity_noted),
        cmocka_unit_test(test_utf8_bom_not_in_output),
        cmocka_unit_test(test_declared_utf8_invalid),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_uncertain),
        cmocka_unit_test(test_xml_and_mismatch),
        cmocka_unit_test(test_dialect_sniff_and_pin),
        cmocka_unit_test(test_json_evidence),
        cmocka_unit_test(test_known_sha256),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
