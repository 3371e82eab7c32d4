/*
 * test_xsd: XML against an XSD (validate/xsd.c) on files generated here:
 * typed shredding, error positions and paths, the refusals (DOCTYPE,
 * billion laughs, external entities, remote and outside schema imports),
 * malformed XML, nesting depth, and bounded memory on a generated 1 GB
 * document (16 MB in sanitizer builds, where the memory bound cannot be
 * measured anyway and 200 MB took the whole timeout on a busy 2-core
 * machine; WHARF_LONG_TESTS=1 forces 1 GB there too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "report.h"
#include "util/xmalloc.h"
#include "validate/xsd.h"

static char tmpdir[256];
static char schemas[300];

static const char *ORDERS_XSD =
    "<?xml version=\"1.0\"?>\n"
    "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
    "  <xs:include schemaLocation=\"types.xsd\"/>\n"
    "  <xs:element name=\"orders\">\n"
    "    <xs:complexType><xs:sequence>\n"
    "      <xs:element name=\"order\" maxOccurs=\"unbounded\">\n"
    "        <xs:complexType>\n"
    "          <xs:sequence>\n"
    "            <xs:element name=\"customer\" type=\"xs:string\"/>\n"
    "            <xs:element name=\"address\" type=\"addressT\" minOccurs=\"0\"/>\n"
    "            <xs:element name=\"quantity\" type=\"xs:positiveInteger\"/>\n"
    "            <xs:element name=\"unit_price\" type=\"money\"/>\n"
    "            <xs:element name=\"paid\" type=\"xs:boolean\"/>\n"
    "            <xs:element name=\"note\" type=\"xs:string\" minOccurs=\"0\"/>\n"
    "          </xs:sequence>\n"
    "          <xs:attribute name=\"id\" type=\"xs:long\" use=\"required\"/>\n"
    "          <xs:attribute name=\"channel\" type=\"xs:string\"/>\n"
    "        </xs:complexType>\n"
    "      </xs:element>\n"
    "    </xs:sequence></xs:complexType>\n"
    "  </xs:element>\n"
    "</xs:schema>\n";

static const char *TYPES_XSD =
    "<?xml version=\"1.0\"?>\n"
    "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
    "  <xs:simpleType name=\"money\"><xs:restriction base=\"xs:decimal\">\n"
    "    <xs:fractionDigits value=\"2\"/></xs:restriction></xs:simpleType>\n"
    "  <xs:complexType name=\"addressT\"><xs:sequence>\n"
    "    <xs:element name=\"street\" type=\"xs:string\"/>\n"
    "    <xs:element name=\"city\" type=\"xs:string\"/>\n"
    "  </xs:sequence></xs:complexType>\n"
    "</xs:schema>\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static char *in_tmp(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static int setup_all(void **state)
{
    char *p;
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/wharf-xsd-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(schemas, sizeof schemas, "%s/schemas", tmpdir);
    mkdir(schemas, 0755);
    p = xasprintf("%s/orders.xsd", schemas);
    write_file(p, ORDERS_XSD);
    free(p);
    p = xasprintf("%s/types.xsd", schemas);
    write_file(p, TYPES_XSD);
    free(p);
    return 0;
}

static int teardown_all(void **state)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    (void)state;
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return 0;
}

struct fixture {
    struct wharf_config cfg;
    struct profile *p;
    struct diags d;
    struct xsdv *x;
};

static void add_field(struct profile *p, const char *col, const char *path)
{
    p->xml.fields = xrealloc(p->xml.fields, (p->xml.n_fields + 1) * sizeof *p->xml.fields);
    p->xml.fields[p->xml.n_fields].column = xstrdup(col);
    p->xml.fields[p->xml.n_fields].path = xstrdup(path);
    p->xml.n_fields++;
}

static void fixture_init(struct fixture *fx, const char *schema)
{
    memset(fx, 0, sizeof *fx);
    config_defaults(&fx->cfg, tmpdir);
    free(fx->cfg.schemas_dir);
    fx->cfg.schemas_dir = xstrdup(schemas);
    fx->p = xcalloc(1, sizeof *fx->p);
    profile_defaults(fx->p);
    fx->p->name = xstrdup("orders");
    fx->p->file = xstrdup("profiles/orders.yaml");
    fx->p->format = FORMAT_XML;
    fx->p->xml.schema = xstrdup(schema);
    fx->p->xml.record = xstrdup("/orders/order");
    add_field(fx->p, "order_id", "@id");
    add_field(fx->p, "customer", "customer");
    add_field(fx->p, "city", "address/city");
    add_field(fx->p, "quantity", "quantity");
    add_field(fx->p, "unit_price", "unit_price");
    add_field(fx->p, "paid", "paid");
    add_field(fx->p, "note", "note");
    add_field(fx->p, "channel", "@channel");
}

static void fixture_compile(struct fixture *fx)
{
    fx->x = xsdv_compile(&fx->cfg, fx->p, &fx->d);
    if (!fx->x)
        for (size_t i = 0; i < fx->d.n; i++)
            fprintf(stderr, "diag: %s\n", fx->d.msg[i]);
    assert_non_null(fx->x);
}

static void fixture_free(struct fixture *fx)
{
    xsdv_free(fx->x);
    profile_free(fx->p);
    config_free(&fx->cfg);
    diag_free(&fx->d);
}

/* Rows rendered as text: "kind:value|kind:value...\n" per row. */
struct rows {
    char buf[8192];
    size_t n;
    uint64_t count;
    uint64_t fail_at; /* return -1 at this row (1-based), 0 = never */
};

static int collect(void *ctx, const struct row *row, struct werr *e)
{
    struct rows *r = ctx;
    r->count++;
    if (r->fail_at && r->count == r->fail_at) {
        werr_set(e, "target refused row %llu", (unsigned long long)r->count);
        return -1;
    }
    if (r->n + 600 > sizeof r->buf)
        return 0;
    r->n += (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "L%llu",
                             (unsigned long long)row->line);
    for (size_t i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        switch (v->kind) {
        case VAL_NULL:
            r->n += (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "|null");
            break;
        case VAL_INT:
            r->n +=
                (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "|i:%lld", (long long)v->i);
            break;
        case VAL_REAL:
            r->n += (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "|r:%g", v->d);
            break;
        case VAL_TEXT:
            r->n +=
                (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "|t:%.*s", (int)v->len, v->s);
            break;
        }
    }
    r->n += (size_t)snprintf(r->buf + r->n, sizeof r->buf - r->n, "\n");
    return 0;
}

static int run_doc(struct fixture *fx, const char *name, const char *text, struct report *rep,
                   struct rows *rows, struct validate_result *res, struct werr *e)
{
    char *path = in_tmp(name);
    struct validate_input in = {.path = path, .display = name, .format = FORMAT_XML};
    int rc;
    write_file(path, text);
    report_init(rep, 0);
    rc = xsdv_run(fx->x, &in, &fx->p->limits, rep, rows ? collect : NULL, rows, res, e);
    free(path);
    return rc;
}

static bool report_has(const struct report *rep, const char *code)
{
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->v[i].code, code))
            return true;
    return false;
}

/* ---- tests ---------------------------------------------------------- */

static void test_columns_typed_from_xsd(void **state)
{
    struct fixture fx;
    const struct columns *c;
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    c = xsdv_columns(fx.x);
    assert_int_equal(c->n, 8);
    assert_string_equal(c->v[0].name, "order_id");
    assert_int_equal(c->v[0].type, COL_INTEGER); /* xs:long attribute */
    assert_true(c->v[0].required);
    assert_int_equal(c->v[1].type, COL_TEXT);
    assert_true(c->v[1].required);
    assert_int_equal(c->v[2].type, COL_TEXT); /* address/city, address optional */
    assert_false(c->v[2].required);
    assert_int_equal(c->v[3].type, COL_INTEGER); /* positiveInteger */
    assert_int_equal(c->v[4].type,
                     COL_TEXT); /* money: restriction of decimal (include): exact text */
    assert_int_equal(c->v[5].type, COL_INTEGER); /* boolean */
    assert_int_equal(c->v[6].type, COL_TEXT);
    assert_false(c->v[6].required);
    assert_int_equal(c->v[7].type, COL_TEXT);
    assert_false(c->v[7].required);
    fixture_free(&fx);
}

static void test_valid_document_shreds_typed_rows(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    assert_int_equal(
        run_doc(&fx, "ok.xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<!-- a comment before the root -->\n"
                "<orders>\n"
                "  <order id=\"17\" channel=\"web\">\n"
                "    <customer>Smith &amp; Sons</customer>\n"
                "    <address><street>Main 1</street><city>Lyon</city></address>\n"
                "    <quantity> 3 </quantity>\n"
                "    <unit_price>12.50</unit_price>\n"
                "    <paid>true</paid>\n"
                "    <note><![CDATA[<fragile>]]> handle</note>\n"
                "  </order>\n"
                "  <order id=\"-4\"><customer>Ünïcode ✓</customer><quantity>1</quantity>"
                "<unit_price>-0.5</unit_price><paid>0</paid></order>\n"
                "</orders>\n",
                &rep, &rows, &res, &e),
        0);
    if (rep.total)
        fprintf(stderr, "%s\n", rep.v[0].message);
    assert_int_equal(rep.total, 0);
    assert_false(res.structural);
    assert_int_equal(res.records, 2);
    assert_int_equal(res.valid, 2);
    assert_int_equal(res.invalid, 0);
    assert_string_equal(rows.buf,
                        "L4|i:17|t:Smith & Sons|t:Lyon|i:3|t:12.50|i:1|t:<fragile> handle|t:web\n"
                        "L12|i:-4|t:Ünïcode ✓|null|i:1|t:-0.5|i:0|null|null\n");
    report_free(&rep);

    /* Validation only (fn NULL) counts the same records. */
    assert_int_equal(run_doc(&fx, "ok2.xml",
                             "<orders><order id=\"1\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>false</paid></order></orders>",
                             &rep, NULL, &res, &e),
                     0);
    assert_int_equal(rep.total, 0);
    assert_int_equal(res.records, 1);
    assert_int_equal(res.valid, 1);
    report_free(&rep);
    fixture_free(&fx);
}

/* xs:integer and its unbounded kin: an int64 where the value fits, else its
 * canonical digits as text (never rounded, never refused for size); a
 * default value and leading zeros beyond any fixed buffer included.  xs:long
 * stays a 64-bit integer. */
static void test_wide_integers_exact(void **state)
{
    static const char *WIDE_XSD =
        "<?xml version=\"1.0\"?>\n"
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
        "  <xs:element name=\"r\"><xs:complexType><xs:sequence>\n"
        "    <xs:element name=\"i\" maxOccurs=\"unbounded\"><xs:complexType><xs:sequence>\n"
        "      <xs:element name=\"z\" type=\"xs:integer\"/>\n"
        "      <xs:element name=\"d\" type=\"xs:negativeInteger\"\n"
        "                  default=\"-00012345678901234567890123\"/>\n"
        "      <xs:element name=\"l\" type=\"xs:long\"/>\n"
        "    </xs:sequence>\n"
        "    <xs:attribute name=\"u\" type=\"xs:unsignedLong\"/>\n"
        "    </xs:complexType></xs:element>\n"
        "  </xs:sequence></xs:complexType></xs:element>\n"
        "</xs:schema>\n";
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    const struct columns *c;
    char zeros[201], *doc, *p = xasprintf("%s/wide.xsd", schemas);
    (void)state;
    write_file(p, WIDE_XSD);
    free(p);
    fixture_init(&fx, "wide.xsd");
    for (size_t i = 0; i < fx.p->xml.n_fields; i++) {
        free(fx.p->xml.fields[i].column);
        free(fx.p->xml.fields[i].path);
    }
    fx.p->xml.n_fields = 0;
    free(fx.p->xml.record);
    fx.p->xml.record = xstrdup("/r/i");
    add_field(fx.p, "z", "z");
    add_field(fx.p, "d", "d");
    add_field(fx.p, "l", "l");
    add_field(fx.p, "u", "@u");
    fixture_compile(&fx);
    c = xsdv_columns(fx.x);
    assert_int_equal(c->n, 4);
    assert_int_equal(c->v[0].type, COL_INTEGER);
    assert_int_equal(c->v[0].kind, COLK_WIDEINT);
    assert_int_equal(c->v[1].kind, COLK_WIDEINT);
    assert_int_equal(c->v[2].type, COL_INTEGER);
    assert_int_equal(c->v[2].kind, COLK_PLAIN); /* xs:long: bounded, 64 bits */
    assert_int_equal(c->v[3].kind, COLK_WIDEINT);

    memset(zeros, '0', 200);
    zeros[200] = 0;
    doc = xasprintf("<r>\n"
                    "<i u=\"18446744073709551615\"><z>+0009223372036854775808</z><d/>"
                    "<l>9223372036854775807</l></i>\n"
                    "<i u=\"9223372036854775807\"><z> -0 </z><d>-7</d><l>-9223372036854775808</l>"
                    "</i>\n"
                    "<i><z>-%s123456789012345678901234</z><d>-%s1</d><l>0</l></i>\n"
                    "<i><z>-9223372036854775809</z><d>-9223372036854775808</d><l>1</l></i>\n"
                    "</r>\n",
                    zeros, zeros);
    assert_int_equal(run_doc(&fx, "wide.xml", doc, &rep, &rows, &res, &e), 0);
    free(doc);
    for (size_t i = 0; i < rep.n; i++)
        fprintf(stderr, "%s\n", rep.v[i].message);
    assert_int_equal(rep.total, 0);
    assert_int_equal(res.valid, 4);
    assert_string_equal(rows.buf, "L2|t:9223372036854775808|t:-12345678901234567890123"
                                  "|i:9223372036854775807|t:18446744073709551615\n"
                                  "L3|i:0|i:-7|i:-9223372036854775808|i:9223372036854775807\n"
                                  "L4|t:-123456789012345678901234|i:-1|i:0|null\n"
                                  "L5|t:-9223372036854775809|i:-9223372036854775808|i:1|null\n");
    report_free(&rep);

    /* xs:long beyond 64 bits is still refused */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(run_doc(&fx, "long.xml",
                             "<r><i><z>1</z><d>-1</d><l>9223372036854775808</l></i></r>", &rep,
                             &rows, &res, &e),
                     0);
    assert_int_equal(res.valid, 0);
    assert_int_equal(res.invalid, 1);
    assert_int_equal(rows.count, 0);
    report_free(&rep);
    fixture_free(&fx);
}

static void test_invalid_value_reports_where_and_why(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    const struct problem *pr;
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    assert_int_equal(run_doc(&fx, "bad.xml",
                             "<orders>\n"
                             "<order id=\"1\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1.00</unit_price><paid>1</paid></order>\n"
                             "<order id=\"2\">\n"
                             "  <customer>b</customer>\n"
                             "  <quantity>2</quantity>\n"
                             "  <unit_price>12,50</unit_price>\n"
                             "  <paid>1</paid>\n"
                             "</order>\n"
                             "<order id=\"3\"><customer>c</customer><quantity>0</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid></order>\n"
                             "<order id=\"4\"><customer>d</customer><quantity>4</quantity>"
                             "<unit_price>4</unit_price><paid>1</paid></order>\n"
                             "</orders>\n",
                             &rep, &rows, &res, &e),
                     0);
    assert_int_equal(rep.total, 2);
    pr = &rep.v[0];
    assert_string_equal(pr->code, "xsd");
    assert_string_equal(pr->part, "bad.xml");
    assert_int_equal(pr->line, 6);
    assert_true(pr->column > 0);
    assert_string_equal(pr->field, "/orders/order[2]/unit_price");
    assert_non_null(strstr(pr->message, "'12,50'"));
    assert_non_null(strstr(pr->message, "unit_price"));
    assert_true(pr->message[strlen(pr->message) - 1] != '\n');
    pr = &rep.v[1];
    assert_int_equal(pr->line, 9);
    assert_string_equal(pr->field, "/orders/order[3]/quantity");
    assert_false(res.structural);
    assert_int_equal(res.records, 4);
    assert_int_equal(res.valid, 2);
    assert_int_equal(res.invalid, 2);
    /* only the valid records became rows */
    assert_int_equal(rows.count, 2);
    assert_non_null(strstr(rows.buf, "|i:1|"));
    assert_non_null(strstr(rows.buf, "|i:4|"));
    assert_null(strstr(rows.buf, "|t:b|"));
    report_free(&rep);

    /* A missing required child is reported at the record's end, in it. */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(run_doc(&fx, "missing.xml",
                             "<orders>\n<order id=\"5\"><customer>e</customer>\n"
                             "<unit_price>1</unit_price><paid>1</paid></order>\n</orders>\n",
                             &rep, &rows, &res, &e),
                     0);
    assert_true(rep.total >= 1);
    assert_string_equal(rep.v[0].code, "xsd");
    assert_non_null(strstr(rep.v[0].field, "/orders/order[1]"));
    assert_int_equal(res.invalid, 1);
    assert_int_equal(rows.count, 0);
    report_free(&rep);

    /* The report caps what it keeps and counts everything. */
    {
        FILE *f;
        char *path = in_tmp("many.xml");
        struct validate_input in = {.path = path, .display = "many.xml", .format = FORMAT_XML};
        f = fopen(path, "w");
        assert_non_null(f);
        fputs("<orders>\n", f);
        for (int i = 0; i < 500; i++)
            fprintf(f,
                    "<order id=\"%d\"><customer>x</customer><quantity>q</quantity>"
                    "<unit_price>1</unit_price><paid>1</paid></order>\n",
                    i);
        fputs("</orders>\n", f);
        fclose(f);
        report_init(&rep, 10);
        assert_int_equal(xsdv_run(fx.x, &in, &fx.p->limits, &rep, NULL, NULL, &res, &e), 0);
        assert_int_equal(rep.n, 10);
        assert_int_equal(rep.total, 500);
        assert_int_equal(res.invalid, 500);
        report_free(&rep);
        free(path);
    }
    fixture_free(&fx);
}

static void test_callback_failure_stops_the_run(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {.fail_at = 2};
    struct validate_result res;
    struct werr e = {0};
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    assert_int_equal(run_doc(&fx, "cb.xml",
                             "<orders>"
                             "<order id=\"1\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid></order>"
                             "<order id=\"2\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid></order>"
                             "<order id=\"3\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid></order>"
                             "</orders>",
                             &rep, &rows, &res, &e),
                     -1);
    assert_string_equal(e.msg, "target refused row 2");
    assert_int_equal(rows.count, 2);
    report_free(&rep);
    fixture_free(&fx);
}

static void test_billion_laughs_refused_quickly(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    struct timespec t0, t1;
    double secs;
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(
        run_doc(&fx, "lol.xml",
                "<?xml version=\"1.0\"?>\n"
                "<!DOCTYPE orders [\n"
                " <!ENTITY lol \"lol\">\n"
                " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
                " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
                " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
                " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
                " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
                " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
                " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
                "]>\n"
                "<orders><order id=\"1\"><customer>&lol9;</customer><quantity>1</quantity>"
                "<unit_price>1</unit_price><paid>1</paid></order></orders>\n",
                &rep, &rows, &res, &e),
        0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 1.0);
    assert_true(res.structural);
    assert_int_equal(rep.total, 1); /* the refusal, nothing after it */
    assert_string_equal(rep.v[0].code, "doctype");
    assert_int_equal(rep.v[0].line, 2);
    assert_int_equal(rep.v[0].column, 1);
    assert_int_equal(rows.count, 0);
    assert_int_equal(res.records, 0);
    report_free(&rep);
    fixture_free(&fx);
}

static void test_external_entity_refused_and_not_leaked(void **state)
{
    static const char *docs[] = {
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE orders [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
        "<orders><order id=\"1\"><customer>&xxe;</customer><quantity>1</quantity>"
        "<unit_price>1</unit_price><paid>1</paid></order></orders>\n",
        /* after a PI and comments, and the DTD itself external */
        "<?xml version=\"1.0\"?><?pi x?><!-- <!DOCTYPE in a comment is fine -->"
        "<!DOCTYPE orders SYSTEM \"/etc/passwd\"><orders/>",
        /* a parameter entity pulling a remote DTD */
        "<!DOCTYPE orders [<!ENTITY % r SYSTEM \"http://127.0.0.1:9/x.dtd\"> %r;]><orders/>",
    };
    (void)state;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct fixture fx;
        struct report rep;
        struct rows rows = {0};
        struct validate_result res;
        struct werr e = {0};
        char *text;
        json_t *j;
        char *js;
        fixture_init(&fx, "orders.xsd");
        fixture_compile(&fx);
        assert_int_equal(run_doc(&fx, "xxe.xml", docs[i], &rep, &rows, &res, &e), 0);
        assert_true(res.structural);
        assert_true(report_has(&rep, "doctype"));
        assert_int_equal(rows.count, 0);
        text = report_text(&rep);
        j = report_json(&rep);
        js = json_dumps(j, 0);
        assert_null(strstr(text, "root:"));
        assert_null(strstr(js, "root:"));
        assert_null(strstr(rows.buf, "root:"));
        free(text);
        free(js);
        json_decref(j);
        report_free(&rep);
        fixture_free(&fx);
    }
}

static void expect_compile_refused(const char *name, const char *xsd, const char *needle)
{
    struct fixture fx;
    char *path = xasprintf("%s/%s", schemas, name);
    bool found = false;
    write_file(path, xsd);
    free(path);
    fixture_init(&fx, name);
    fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
    assert_null(fx.x);
    assert_true(fx.d.n >= 1);
    for (size_t i = 0; i < fx.d.n; i++)
        if (strstr(fx.d.msg[i], needle) && strstr(fx.d.msg[i], "xml.schema"))
            found = true;
    if (!found)
        for (size_t i = 0; i < fx.d.n; i++)
            fprintf(stderr, "diag: %s\n", fx.d.msg[i]);
    assert_true(found);
    fixture_free(&fx);
}

static void test_schema_imports_stay_inside_schemas_dir(void **state)
{
    char *outside = in_tmp("outside.xsd");
    (void)state;
    write_file(outside, TYPES_XSD);
    free(outside);
    expect_compile_refused("remote.xsd",
                           "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
                           "  <xs:import namespace=\"http://example.com/x\" "
                           "schemaLocation=\"http://example.com/x.xsd\"/>\n"
                           "  <xs:element name=\"orders\" type=\"xs:string\"/>\n"
                           "</xs:schema>\n",
                           "remote");
    expect_compile_refused("escape.xsd",
                           "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
                           "  <xs:include schemaLocation=\"../outside.xsd\"/>\n"
                           "  <xs:element name=\"orders\" type=\"xs:string\"/>\n"
                           "</xs:schema>\n",
                           "outside the schemas directory");
    expect_compile_refused("abs.xsd",
                           "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
                           "  <xs:include schemaLocation=\"file:///etc/passwd\"/>\n"
                           "  <xs:element name=\"orders\" type=\"xs:string\"/>\n"
                           "</xs:schema>\n",
                           "outside the schemas directory");
    expect_compile_refused("dtd.xsd",
                           "<!DOCTYPE xs:schema [<!ENTITY e SYSTEM \"/etc/passwd\">]>\n"
                           "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
                           "  <xs:element name=\"orders\" type=\"xs:string\"/>\n"
                           "</xs:schema>\n",
                           "DOCTYPE");
}

static void test_profile_mismatch_is_a_diag(void **state)
{
    struct fixture fx;
    bool rec = false, fld = false;
    (void)state;
    fixture_init(&fx, "orders.xsd");
    free(fx.p->xml.fields[1].path);
    fx.p->xml.fields[1].path = xstrdup("custmer");
    fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
    assert_null(fx.x);
    for (size_t i = 0; i < fx.d.n; i++)
        fld |= strstr(fx.d.msg[i], "custmer") != NULL;
    assert_true(fld);
    fixture_free(&fx);

    fixture_init(&fx, "orders.xsd");
    free(fx.p->xml.record);
    fx.p->xml.record = xstrdup("/orders/item");
    fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
    assert_null(fx.x);
    for (size_t i = 0; i < fx.d.n; i++)
        rec |= strstr(fx.d.msg[i], "xml.record") != NULL;
    assert_true(rec);
    fixture_free(&fx);

    fixture_init(&fx, "../schemas/orders.xsd");
    fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
    assert_null(fx.x);
    fixture_free(&fx);
}

static void test_malformed_xml_is_structural_with_line(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    assert_int_equal(run_doc(&fx, "broken.xml",
                             "<orders>\n"
                             "<order id=\"1\"><customer>a</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid></order>\n"
                             "<order id=\"2\">\n"
                             "  <customer>b</custmer>\n"
                             "</order>\n"
                             "</orders>\n",
                             &rep, &rows, &res, &e),
                     0);
    assert_true(res.structural);
    assert_true(rep.total >= 1);
    assert_string_equal(rep.v[0].code, "malformed");
    assert_int_equal(rep.v[0].line, 4);
    assert_true(rep.v[0].column > 0);
    assert_non_null(strstr(rep.v[0].message, "custmer"));
    report_free(&rep);

    /* truncated document */
    assert_int_equal(
        run_doc(&fx, "short.xml", "<orders>\n<order id=\"1\">\n<customer>a", &rep, &rows, &res, &e),
        0);
    assert_true(res.structural);
    assert_string_equal(rep.v[0].code, "malformed");
    assert_true(rep.v[0].line >= 3);
    report_free(&rep);

    /* an undeclared entity (no DTD can declare one) */
    assert_int_equal(run_doc(&fx, "ent.xml", "<orders>&nope;</orders>", &rep, &rows, &res, &e), 0);
    assert_true(res.structural);
    assert_string_equal(rep.v[0].code, "malformed");
    report_free(&rep);

    /* empty file */
    assert_int_equal(run_doc(&fx, "empty.xml", "", &rep, &rows, &res, &e), 0);
    assert_true(res.structural);
    report_free(&rep);
    fixture_free(&fx);
}

static void test_depth_beyond_limit_rejected(void **state)
{
    struct fixture fx;
    struct report rep;
    struct validate_result res;
    struct werr e = {0};
    size_t n = 100000, o = 0;
    char *doc = xmalloc(n * 7 + 64);
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fx.p->limits.max_depth = 20;
    fixture_compile(&fx);
    o += (size_t)sprintf(doc, "<orders>");
    for (size_t i = 0; i < 30; i++)
        o += (size_t)sprintf(doc + o, "<a>");
    for (size_t i = 0; i < 30; i++)
        o += (size_t)sprintf(doc + o, "</a>");
    sprintf(doc + o, "</orders>");
    assert_int_equal(run_doc(&fx, "deep.xml", doc, &rep, NULL, &res, &e), 0);
    assert_true(res.structural);
    assert_true(report_has(&rep, "depth"));
    for (size_t i = 0; i < rep.n; i++)
        if (!strcmp(rep.v[i].code, "depth")) {
            assert_non_null(strstr(rep.v[i].message, "20"));
            assert_non_null(strstr(rep.v[i].field, "/orders/a/a"));
        }
    report_free(&rep);

    /* far deeper than the default: refused, not a crash */
    fx.p->limits.max_depth = 256;
    o = (size_t)sprintf(doc, "<orders>");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(doc + o, "<a>");
    assert_int_equal(run_doc(&fx, "deeper.xml", doc, &rep, NULL, &res, &e), 0);
    assert_true(res.structural);
    assert_true(rep.total >= 1);
    report_free(&rep);
    free(doc);
    fixture_free(&fx);
}

/* limits.max_attributes counts attributes and namespace declarations per
 * start tag, and only there: '=' in comments, CDATA, PIs, text and quoted
 * values does not count. */
static void test_attributes_beyond_limit_rejected(void **state)
{
    struct fixture fx;
    struct report rep;
    struct validate_result res;
    struct werr e = {0};
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fx.p->limits.max_attributes = 2;
    fixture_compile(&fx);
    assert_int_equal(run_doc(&fx, "two.xml",
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<?pi a=1 b=2 c=3?><!-- x=1 y=2 z=3 -->\n"
                             "<orders><order id=\"1\" channel='a=b c=d e=f'>"
                             "<customer>a=b c=d e=f</customer><quantity>1</quantity>"
                             "<unit_price>1</unit_price><paid>1</paid>"
                             "<note><![CDATA[<x a=1 b=2 c=3>]]></note></order></orders>\n",
                             &rep, NULL, &res, &e),
                     0);
    assert_int_equal(rep.total, 0);
    assert_false(res.structural);
    report_free(&rep);

    assert_int_equal(run_doc(&fx, "three.xml",
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<orders>\n"
                             "  <order id=\"1\" channel=\"web\" xmlns:x=\"urn:x\">"
                             "<customer>a</customer><quantity>1</quantity></order></orders>\n",
                             &rep, NULL, &res, &e),
                     0);
    assert_true(res.structural);
    assert_true(report_has(&rep, "limit"));
    assert_int_equal(rep.v[0].line, 3);
    assert_int_equal(rep.v[0].column, 3);
    assert_non_null(strstr(rep.v[0].message, "more than 2 attributes and namespace declarations"));
    report_free(&rep);
    fixture_free(&fx);
}

static void test_namespaced_document(void **state)
{
    struct fixture fx;
    struct report rep;
    struct rows rows = {0};
    struct validate_result res;
    struct werr e = {0};
    char *p = xasprintf("%s/ns.xsd", schemas);
    (void)state;
    write_file(p, "<schema xmlns=\"http://www.w3.org/2001/XMLSchema\" xmlns:o=\"urn:orders\"\n"
                  "        targetNamespace=\"urn:orders\" elementFormDefault=\"qualified\">\n"
                  "  <complexType name=\"orderT\"><sequence>\n"
                  "    <element name=\"customer\" type=\"string\"/>\n"
                  "    <element name=\"quantity\" type=\"int\"/>\n"
                  "    <element name=\"unit_price\" type=\"double\"/>\n"
                  "  </sequence><attribute name=\"id\" type=\"unsignedInt\"/></complexType>\n"
                  "  <element name=\"orders\"><complexType><sequence>\n"
                  "    <element name=\"order\" type=\"o:orderT\" maxOccurs=\"unbounded\"/>\n"
                  "  </sequence></complexType></element>\n"
                  "</schema>\n");
    free(p);
    fixture_init(&fx, "ns.xsd");
    for (size_t i = 0; i < fx.p->xml.n_fields; i++) {
        free(fx.p->xml.fields[i].column);
        free(fx.p->xml.fields[i].path);
    }
    fx.p->xml.n_fields = 0;
    add_field(fx.p, "id", "@id");
    add_field(fx.p, "customer", "customer");
    add_field(fx.p, "quantity", "quantity");
    add_field(fx.p, "unit_price", "unit_price");
    fixture_compile(&fx);
    assert_int_equal(xsdv_columns(fx.x)->v[0].type, COL_INTEGER);
    assert_int_equal(xsdv_columns(fx.x)->v[2].type, COL_INTEGER);
    assert_int_equal(xsdv_columns(fx.x)->v[3].type, COL_REAL);
    assert_int_equal(
        run_doc(&fx, "ns.xml",
                "<o:orders xmlns:o=\"urn:orders\">\n"
                "<o:order id=\"7\"><o:customer>x</o:customer><o:quantity>2</o:quantity>"
                "<o:unit_price>1e3</o:unit_price></o:order>\n"
                "<o:order><o:customer>y</o:customer><o:quantity>z</o:quantity>"
                "<o:unit_price>1</o:unit_price></o:order>\n"
                "</o:orders>\n",
                &rep, &rows, &res, &e),
        0);
    assert_int_equal(res.records, 2);
    assert_int_equal(res.valid, 1);
    assert_int_equal(rep.total, 1);
    assert_string_equal(rep.v[0].field, "/orders/order[2]/quantity");
    assert_string_equal(rows.buf, "L2|i:7|t:x|i:2|r:1000\n");
    report_free(&rep);
    fixture_free(&fx);
}

static void test_text_longer_than_max_field_rejected(void **state)
{
    struct fixture fx;
    struct report rep;
    struct validate_result res;
    struct werr e = {0};
    size_t big = 3 * 1024 * 1024;
    char *doc = xmalloc(big + 256);
    int o;
    (void)state;
    fixture_init(&fx, "orders.xsd");
    fx.p->limits.max_field = 64 * 1024;
    fixture_compile(&fx);
    o = sprintf(doc, "<orders><order id=\"1\"><customer>");
    memset(doc + o, 'x', big);
    strcpy(doc + o + big, "</customer></order></orders>");
    assert_int_equal(run_doc(&fx, "long.xml", doc, &rep, NULL, &res, &e), 0);
    assert_true(res.structural);
    assert_true(report_has(&rep, "limit"));
    assert_string_equal(rep.v[0].field, "/orders/order[1]/customer");
    report_free(&rep);
    free(doc);
    fixture_free(&fx);
}

/* One compiled schema, several threads validating at once (the daemon's
 * worker pool), while another thread compiles. */
struct thr {
    struct xsdv *x;
    const struct profile *p;
    char path[400];
    int ok;
};

static void *thr_run(void *arg)
{
    struct thr *t = arg;
    for (int k = 0; k < 20; k++) {
        struct report rep;
        struct validate_result res;
        struct werr e = {0};
        struct rows rows = {0};
        struct validate_input in = {.path = t->path, .display = "t.xml", .format = FORMAT_XML};
        report_init(&rep, 0);
        if (xsdv_run(t->x, &in, &t->p->limits, &rep, collect, &rows, &res, &e) != 0 ||
            res.valid != 50 || res.invalid != 50 || rep.total != 50 || rows.count != 50 ||
            strcmp(rep.v[0].code, "xsd"))
            t->ok = 0;
        report_free(&rep);
    }
    return NULL;
}

static void *thr_compile(void *arg)
{
    struct thr *t = arg;
    for (int k = 0; k < 20; k++) {
        struct fixture fx;
        fixture_init(&fx, "orders.xsd");
        fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
        if (!fx.x)
            t->ok = 0;
        fixture_free(&fx);
    }
    return NULL;
}

static void test_concurrent_runs_share_one_schema(void **state)
{
    struct fixture fx;
    struct thr t[5];
    pthread_t th[5];
    char *path = in_tmp("t.xml");
    FILE *f = fopen(path, "w");
    (void)state;
    assert_non_null(f);
    fputs("<orders>\n", f);
    for (int i = 0; i < 100; i++)
        fprintf(f,
                "<order id=\"%d\"><customer>c</customer><quantity>%s</quantity>"
                "<unit_price>1.5</unit_price><paid>1</paid></order>\n",
                i, i % 2 ? "1" : "-1");
    fputs("</orders>\n", f);
    fclose(f);
    fixture_init(&fx, "orders.xsd");
    fixture_compile(&fx);
    for (int i = 0; i < 5; i++) {
        t[i].x = fx.x;
        t[i].p = fx.p;
        t[i].ok = 1;
        snprintf(t[i].path, sizeof t[i].path, "%s", path);
        assert_int_equal(pthread_create(&th[i], NULL, i == 4 ? thr_compile : thr_run, &t[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].ok, 1);
    }
    free(path);
    fixture_free(&fx);
}

/* ---- a large document, bounded memory -------------------------------- */

static uint64_t write_large(const char *path, uint64_t bytes)
{
    FILE *f = fopen(path, "w");
    uint64_t n = 0, written = 0;
    assert_non_null(f);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    written += (uint64_t)fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<orders>\n");
    while (written < bytes) {
        n++;
        written += (uint64_t)fprintf(
            f,
            "  <order id=\"%llu\" channel=\"edi\">\n"
            "    <customer>Customer number %llu, Ltd &amp; Co</customer>\n"
            "    <address><street>%llu Long Street</street><city>City %llu</city></address>\n"
            "    <quantity>%llu</quantity>\n"
            "    <unit_price>%llu.%02llu</unit_price>\n"
            "    <paid>%s</paid>\n"
            "  </order>\n",
            (unsigned long long)n, (unsigned long long)n, (unsigned long long)(n % 997),
            (unsigned long long)(n % 101), (unsigned long long)(n % 50 + 1),
            (unsigned long long)(n % 1000), (unsigned long long)(n % 100),
            n % 2 ? "true" : "false");
    }
    fprintf(f, "</orders>\n");
    assert_int_equal(fclose(f), 0);
    return n;
}

struct sums {
    uint64_t rows;
    int64_t ids, qty;
};

static int sum_rows(void *ctx, const struct row *row, struct werr *e)
{
    struct sums *s = ctx;
    (void)e;
    if (row->v[0].kind != VAL_INT || row->v[3].kind != VAL_INT || row->v[4].kind != VAL_TEXT ||
        row->v[1].kind != VAL_TEXT)
        return -1;
    s->rows++;
    s->ids += row->v[0].i;
    s->qty += row->v[3].i;
    return 0;
}

static void test_large_document_bounded_memory(void **state)
{
    const char *lt = getenv("WHARF_LONG_TESTS");
#if defined(__SANITIZE_ADDRESS__)
    /* ASan streams about 1 MB/s on a busy 2-core machine: 200 MB took the
     * whole 300 s timeout.  16 MB still crosses every buffer and chunk
     * boundary many times over; the 1 GB memory bound is the normal build's. */
    uint64_t bytes = lt && !strcmp(lt, "1") ? 1000ULL * 1000 * 1000 : 16ULL * 1000 * 1000;
#else
    uint64_t bytes = 1000ULL * 1000 * 1000;
    (void)lt;
#endif
    char *path = in_tmp("large.xml");
    uint64_t n = write_large(path, bytes);
    int status = 0;
    struct rusage ru;
    pid_t pid;
    (void)state;

    /* Measured in a child so that the peak is the validator's alone. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fixture fx;
        struct report rep;
        struct validate_result res;
        struct werr e = {0};
        struct sums s = {0};
        struct validate_input in = {.path = path, .display = "large.xml", .format = FORMAT_XML};
        int64_t expect_qty = 0;
        fixture_init(&fx, "orders.xsd");
        fx.x = xsdv_compile(&fx.cfg, fx.p, &fx.d);
        if (!fx.x)
            _exit(10);
        report_init(&rep, 0);
        if (xsdv_run(fx.x, &in, &fx.p->limits, &rep, sum_rows, &s, &res, &e) != 0)
            _exit(11);
        if (rep.total || res.structural || res.records != n || res.valid != n || s.rows != n)
            _exit(12);
        for (uint64_t i = 1; i <= n; i++)
            expect_qty += (int64_t)(i % 50 + 1);
        if (s.ids != (int64_t)(n * (n + 1) / 2) || s.qty != expect_qty)
            _exit(13);
        report_free(&rep);
        /* validation alone too */
        report_init(&rep, 0);
        if (xsdv_run(fx.x, &in, &fx.p->limits, &rep, NULL, NULL, &res, &e) != 0 || res.valid != n)
            _exit(14);
        report_free(&rep);
        fixture_free(&fx);
        _exit(0);
    }
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fprintf(stderr, "large: %llu records, peak RSS %ld KiB\n", (unsigned long long)n, ru.ru_maxrss);
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(ru.ru_maxrss < 64 * 1024); /* ASan's shadow and quarantine would not fit */
#endif
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_typed_from_xsd),
        cmocka_unit_test(test_valid_document_shreds_typed_rows),
        cmocka_unit_test(test_wide_integers_exact),
        cmocka_unit_test(test_invalid_value_reports_where_and_why),
        cmocka_unit_test(test_callback_failure_stops_the_run),
        cmocka_unit_test(test_billion_laughs_refused_quickly),
        cmocka_unit_test(test_external_entity_refused_and_not_leaked),
        cmocka_unit_test(test_schema_imports_stay_inside_schemas_dir),
        cmocka_unit_test(test_profile_mismatch_is_a_diag),
        cmocka_unit_test(test_malformed_xml_is_structural_with_line),
        cmocka_unit_test(test_depth_beyond_limit_rejected),
        cmocka_unit_test(test_attributes_beyond_limit_rejected),
        cmocka_unit_test(test_namespaced_document),
        cmocka_unit_test(test_text_longer_than_max_field_rejected),
        cmocka_unit_test(test_concurrent_runs_share_one_schema),
        cmocka_unit_test(test_large_document_bounded_memory),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
