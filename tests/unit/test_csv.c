/*
 * test_csv: the tokenizer on hand-made inputs: quoting, embedded delimiters
 * and line breaks, line endings, structural errors and resynchronisation,
 * limits, and block boundaries (records straddling the 256 KiB read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/xmalloc.h"
#include "validate/csv.h"

/* The records of a text, rendered as one string:
 *   "L<line>[<err>]{f1|f2|...}" per record, blank records as "L<line>blank" */
static char *tokenize(const char *text, size_t len, char delim, char quote, uint64_t max_line,
                      uint64_t max_field)
{
    FILE *t = tmpfile();
    struct werr e;
    struct csv_record rec;
    size_t cap = 1024, n = 0;
    char *out = xmalloc(cap);
    int rc;
    assert_non_null(t);
    assert_int_equal(fwrite(text, 1, len, t), len);
    fflush(t);
    rewind(t);
    struct csv_reader *r = csv_open_fd(fileno(t), delim, quote, max_line, max_field);
    out[0] = 0;
    while ((rc = csv_next(r, &rec, &e)) == 1) {
        char head[128];
        int hl;
        if (rec.blank)
            hl = snprintf(head, sizeof head, "L%llublank", (unsigned long long)rec.line);
        else
            hl = snprintf(head, sizeof head, "L%llu", (unsigned long long)rec.line);
        if (rec.err)
            hl += snprintf(head + hl, sizeof head - (size_t)hl, "[%s@%zu]", csv_error_code(rec.err),
                           rec.err_field);
        size_t need = (size_t)hl + 4;
        for (size_t i = 0; i < rec.n; i++)
            need += rec.f[i].len + 1;
        while (n + need + 1 > cap) {
            cap *= 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + n, head, (size_t)hl);
        n += (size_t)hl;
        if (!rec.blank && rec.n) {
            out[n++] = '{';
            for (size_t i = 0; i < rec.n; i++) {
                if (i)
                    out[n++] = '|';
                memcpy(out + n, rec.f[i].p, rec.f[i].len);
                n += rec.f[i].len;
            }
            out[n++] = '}';
        }
        out[n] = 0;
    }
    assert_int_equal(rc, 0);
    csv_close(r);
    fclose(t);
    return out;
}

#define CHECK(text, expect)                                                                        \
    do {                                                                                           \
        char *got = tokenize(text, sizeof(text) - 1, ',', '"', 0, 0);                              \
        assert_string_equal(got, expect);                                                          \
        free(got);                                                                                 \
    } while (0)

static void test_simple(void **state)
{
    (void)state;
    CHECK("a,b,c\n1,2,3\n", "L1{a|b|c}L2{1|2|3}");
    CHECK("a,b,c\n1,2,3", "L1{a|b|c}L2{1|2|3}");
    CHECK("a,,\n", "L1{a||}");
    CHECK("x\n", "L1{x}");
    CHECK("", "");
}

static void test_line_endings(void **state)
{
    (void)state;
    CHECK("a,b\r\n1,2\r\n", "L1{a|b}L2{1|2}");
    CHECK("a,b\r1,2\r", "L1{a|b}L2{1|2}");
    CHECK("a,b\r\n1,2\n3,4\r5,6", "L1{a|b}L2{1|2}L3{3|4}L4{5|6}");
}

static void test_quotes(void **state)
{
    (void)state;
    CHECK("\"a,b\",c\n", "L1{a,b|c}");
    CHECK("\"say \"\"hi\"\"\",x\n", "L1{say \"hi\"|x}");
    CHECK("\"\",\"\"\n", "L1{|}");
    CHECK("1,\"two\nlines\"\n2,x\n", "L1{1|two\nlines}L3{2|x}");
    CHECK("1,\"crlf\r\ninside\"\r\n2,x\r\n", "L1{1|crlf\r\ninside}L3{2|x}");
    CHECK("\"a\"\n", "L1{a}");
}

static void test_other_dialect(void **state)
{
    (void)state;
    char *got = tokenize("a;'b;c';'it''s'\n", 16, ';', '\'', 0, 0);
    assert_string_equal(got, "L1{a|b;c|it's}");
    free(got);
    /* no quoting at all: quotes are plain text */
    got = tokenize("a\t\"b\"\n", 6, '\t', 0, 0, 0);
    assert_string_equal(got, "L1{a|\"b\"}");
    free(got);
}

static void test_blank_rows(void **state)
{
    (void)state;
    CHECK("a\n\nb\n", "L1{a}L2blankL3{b}");
    CHECK("a\r\n\r\nb\r\n", "L1{a}L2blankL3{b}");
    CHECK("a\n\n", "L1{a}L2blank");
    /* a quoted empty field is not a blank row */
    CHECK("a\n\"\"\n", "L1{a}L2{}");
}

static void test_stray_quote(void **state)
{
    (void)state;
    CHECK("a,b\"c,d\n1,2,3\n", "L1[stray_quote@2]{a|b\"c|d}L2{1|2|3}");
    CHECK("\"ab\"c,d\n1,2\n", "L1[stray_quote@1]{abc|d}L2{1|2}");
}

static void test_unclosed_quote_resync(void **state)
{
    (void)state;
    /* The lone quote on line 2 swallows the rest; the reader reports it and
     * reads on from line 3. */
    CHECK("a,b\n1,\"oops\n2,x\n3,y\n",
          "L1{a|b}L2[unclosed_quote@2]{1|oops\n2,x\n3,y\n}L3{2|x}L4{3|y}");
    /* without a line break inside the quote there is nothing to resume */
    CHECK("a,\"b", "L1[unclosed_quote@2]{a|b}");
    CHECK("x\r\n1,\"q\r\n2,z\r\n", "L1{x}L2[unclosed_quote@2]{1|q\r\n2,z\r\n}L3{2|z}");
}

static void test_limits(void **state)
{
    (void)state;
    const char text[] = "a,b\n0123456789,x\nc,d\n";
    char *got = tokenize(text, sizeof text - 1, ',', '"', 8, 4);
    assert_string_equal(got, "L1{a|b}L2[line_too_long@1]L3{c|d}");
    free(got);
    const char t2[] = "a,b\n12345,x\nc,d\n";
    got = tokenize(t2, sizeof t2 - 1, ',', '"', 100, 4);
    assert_string_equal(got, "L1{a|b}L2[field_too_long@1]{1234|x}L3{c|d}");
    free(got);
    /* too long inside quotes: skip to the next line break */
    const char t3[] = "\"aaaaaaaaaaaaaaa\nb\nc\n";
    got = tokenize(t3, sizeof t3 - 1, ',', '"', 8, 8);
    assert_string_equal(got, "L1[line_too_long@1]L2{b}L3{c}");
    free(got);
}

static void test_encoding(void **state)
{
    (void)state;
    CHECK("caf\xc3\xa9,x\n", "L1{caf\xc3\xa9|x}");
    CHECK("a,caf\xe9\nb,c\n", "L1[invalid_encoding@2]{a|caf\xe9}L2{b|c}");
    assert_true(csv_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(csv_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(csv_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(csv_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(csv_utf8_valid("\xe2\x82", 2));         /* truncated */
}

/* Records straddling the read block: a quoted field with a CRLF split right
 * at CSV_BLOCK, and the CR of a record terminator as the block's last byte. */
static void test_block_boundaries(void **state)
{
    (void)state;
    for (int shift = -3; shift <= 3; shift++) {
        size_t pad = CSV_BLOCK - 4 + (size_t)(shift + 3);
        size_t len = pad + 64;
        char *text = xmalloc(len + 1);
        size_t n = 0;
        memset(text, 'p', pad);
        n = pad;
        n += (size_t)sprintf(text + n, "\r\n\"q\r\nz\",\"\"\"\"\r\nlast\r\n");
        char *got = tokenize(text, n, ',', '"', CSV_BLOCK * 2, CSV_BLOCK * 2);
        /* first record: the pad; then the quoted pair; then "last" */
        const char *after = strchr(got, '}');
        assert_non_null(after);
        assert_int_equal((size_t)(after - got), pad + 3);
        assert_string_equal(after + 1, "L2{q\r\nz|\"}L4{last}");
        free(got);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_other_dialect),
        cmocka_unit_test(test_blank_rows),
        cmocka_unit_test(test_stray_quote),
        cmocka_unit_test(test_unclosed_quote_resync),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_block_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
