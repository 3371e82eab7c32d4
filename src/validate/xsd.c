/*
 * xsd: XML against an XSD with libxml2, streaming, and the shredding of
 * xml.record / xml.fields into typed rows.
 *
 * Owns a compiled xmlSchema (xsdv_compile, freed by xsdv_free) and the
 * column list derived from the profile's fields and the XSD's simple types.
 *
 * How a part is read (xsdv_run):
 *  1. The file is fed to a SAX2 parser through our own read callback; the
 *     validator is plugged into the same event stream (xmlSchemaSAXPlug, the
 *     engine xmlTextReader uses for its schema validation), so memory stays
 *     bounded and no tree is ever built.  We use SAX rather than the reader
 *     because the reader parses ahead of the node it returns: only SAX keeps
 *     our element stack in step with the validator's errors, which gives each
 *     error its exact element path.
 *  2. The read callback scans the prolog before the parser sees it: a
 *     DOCTYPE is refused there ("doctype"), before any entity can be
 *     declared, let alone expanded.  It also counts the attributes and
 *     namespace declarations of every start tag (struct tagscan): past
 *     limits.max_attributes the part is refused ("limit") with the tag's
 *     line and column before the parser sees the bytes, since libxml2's
 *     duplicate-attribute check is quadratic in their number (200,000
 *     xmlns declarations on one element cost 15 s).
 *  3. Records are the elements at xml.record (local names).  Field text is
 *     collected for the current record only, bounded by limits.max_field.
 *     An element's end is acted on at the next event, after the validator
 *     has reported that element's own end-of-element errors, so a record is
 *     known valid or invalid when it completes.  Only valid records are
 *     handed to fn; the caller rolls the target back when the part has any
 *     error and on_invalid is reject.  Identity constraints (xs:key,
 *     xs:unique) are checked at their scope's end, after the records in it
 *     were handed out; they still make the part invalid.
 *
 * Security: never XML_PARSE_NOENT / DTDLOAD / HUGE, XML_PARSE_NONET always;
 * one process-wide external entity loader refuses everything except, while
 * a schema is being compiled on this thread, files inside schemas_dir that
 * have no DOCTYPE.  Remote imports are refused at compile time.
 *
 * What can fail: compile reports schema problems into struct diags; run
 * returns -1 only when the file cannot be read or fn fails, and otherwise
 * puts every problem into the report (malformed XML sets res->structural).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/uri.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>

#include "config/defaults.h"
#include "util/escape.h"
#include "util/xmalloc.h"
#include "validate/control.h"
#include "validate/xsd.h"

#define XSD_NS          "http://www.w3.org/2001/XMLSchema"
#define PARSE_OPTS      (XML_PARSE_NONET | XML_PARSE_IGNORE_ENC)
#define MAX_SCHEMA_DOCS 64
#define RESOLVE_DEPTH   32
#define PATH_BYTES      1024 /* element path in a message */
#define MSG_BYTES       512
#define READ_BYTES      (256 * 1024) /* read() size; the parser asks for 4000 bytes at a time */

/* ---- the prolog scanner: finds a DOCTYPE before the parser does ------- */

enum { P_OUT, P_LT, P_PI, P_PI_Q, P_BANG, P_COMMENT, P_DONE };

struct prolog {
    int state;
    int nbang;
    char bang[8];
    int dashes;
    uint64_t line, col;
    bool doctype;
};

static void prolog_init(struct prolog *p)
{
    memset(p, 0, sizeof *p);
    p->line = 1;
}

/* Feed bytes; true when "<!DOCTYPE" was found (p->line/col point at it).
 * Stops looking at the first element, or at anything a prolog cannot hold
 * (the parser reports that). */
static bool prolog_feed(struct prolog *p, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && p->state != P_DONE; i++) {
        char c = buf[i];
        switch (p->state) {
        case P_OUT:
            if (c == '<')
                p->state = P_LT;
            break;
        case P_LT:
            p->state = c == '?' ? P_PI : c == '!' ? P_BANG : P_DONE;
            p->nbang = 0;
            break;
        case P_PI:
            if (c == '?')
                p->state = P_PI_Q;
            break;
        case P_PI_Q:
            p->state = c == '>' ? P_OUT : c == '?' ? P_PI_Q : P_PI;
            break;
        case P_BANG:
            p->bang[p->nbang++] = c;
            if (!strncmp(p->bang, "--", (size_t)p->nbang)) {
                if (p->nbang == 2) {
                    p->state = P_COMMENT;
                    p->dashes = 0;
                }
            } else if (!strncasecmp(p->bang, "DOCTYPE", (size_t)p->nbang)) {
                if (p->nbang == 7) {
                    p->doctype = true;
                    p->col = p->col > 8 ? p->col - 8 : 1;
                    return true;
                }
            } else {
                p->state = P_DONE;
            }
            break;
        case P_COMMENT:
            if (c == '-')
                p->dashes++;
            else if (c == '>' && p->dashes >= 2)
                p->state = P_OUT;
            else
                p->dashes = 0;
            break;
        }
        if (c == '\n') {
            p->line++;
            p->col = 0;
        } else {
            p->col++;
        }
    }
    return false;
}

/* ---- the tag scanner: attributes per start tag, before the parser ------ */

enum { S_TEXT, S_LT, S_TAG, S_DQ, S_SQ, S_SKIP, S_BANG, S_COMMENT, S_CDATA, S_PI };

/*
 * Counts the attributes (namespace declarations included) of each start
 * tag by its '=' signs outside quoted values: `<a x="1" xmlns:p='u'>` has
 * two.  Comments, CDATA sections, processing instructions, end tags and
 * declarations are skipped whole.  The input is UTF-8 (the inspect stage
 * normalised it), so the ASCII delimiters are found byte by byte; columns
 * count characters, as the parser's do.
 *
 * Text, quoted values and end tags are skipped with memchr to their
 * delimiter, and the position is not kept per byte: line and col are
 * counted once per buffer, at its end (newlines with memchr, characters
 * after the last one).  A tag's position is counted only when it is needed:
 * when the tag is over the limit, or when it is still open at the end of
 * the buffer (the next buffer may find it over the limit).
 */
struct tagscan {
    int state;
    unsigned marks;     /* '-' or ']' seen in a row (comment, CDATA end); "<!" prefix */
    uint64_t line, col; /* position of the last byte of the previous buffers */
    uint64_t tag_line, tag_col;
    uint64_t attrs;
};

static void tagscan_init(struct tagscan *t)
{
    memset(t, 0, sizeof *t);
    t->line = 1;
}

/* Moves line/col over n bytes: the position of the last of them. */
static void tagscan_count(struct tagscan *t, const char *s, size_t n)
{
    const char *end = s + n, *nl;
    uint64_t chars = 0;
    while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
        t->line++;
        t->col = 0;
        s = nl + 1;
    }
    for (; s < end; s++)
        chars += ((unsigned char)*s & 0xC0) != 0x80;
    t->col += chars;
}

/* The position of the '<' at buf[lt] as tag_line, tag_col; line/col then
 * count buf[0, lt]. */
static void tagscan_mark_tag(struct tagscan *t, const char *buf, size_t lt)
{
    tagscan_count(t, buf, lt + 1);
    t->tag_line = t->line;
    t->tag_col = t->col;
}

/* The next c in buf[i, n), else n. */
static size_t skip_to(const char *buf, size_t i, size_t n, char c)
{
    const char *p = memchr(buf + i, c, n - i);
    return p ? (size_t)(p - buf) : n;
}

/* The bytes that end a run of names and white space inside a tag. */
static const unsigned char tag_stop[256] = {['"'] = 1, ['\''] = 1, ['>'] = 1, ['='] = 1};

/* Feeds bytes; true when a start tag has more than max attributes
 * (t->tag_line / tag_col point at its '<'). */
static bool tagscan_feed(struct tagscan *t, const char *buf, size_t n, uint64_t max)
{
    size_t lt = SIZE_MAX; /* the last '<' in buf */
    for (size_t i = 0; i < n; i++) {
        char c;
        switch (t->state) {
        case S_TEXT:
            if ((i = skip_to(buf, i, n, '<')) == n)
                goto out;
            lt = i;
            t->state = S_LT;
            continue;
        case S_DQ:
            if ((i = skip_to(buf, i, n, '"')) == n)
                goto out;
            t->state = S_TAG;
            continue;
        case S_SQ:
            if ((i = skip_to(buf, i, n, '\'')) == n)
                goto out;
            t->state = S_TAG;
            continue;
        case S_SKIP: /* end tag or declaration: up to its '>' */
            if ((i = skip_to(buf, i, n, '>')) == n)
                goto out;
            t->state = S_TEXT;
            continue;
        case S_TAG: /* names and white space: up to a quote, '>' or '=' */
            while (i < n && !tag_stop[(unsigned char)buf[i]])
                i++;
            if (i == n)
                goto out;
            break;
        }
        c = buf[i];
        switch (t->state) {
        case S_LT:
            t->state = c == '!' ? S_BANG : c == '?' ? S_PI : c == '/' ? S_SKIP : S_TAG;
            t->marks = 0;
            t->attrs = 0;
            break;
        case S_TAG:
            if (c == '"')
                t->state = S_DQ;
            else if (c == '\'')
                t->state = S_SQ;
            else if (c == '>')
                t->state = S_TEXT;
            else if (c == '=' && ++t->attrs > max) {
                if (lt != SIZE_MAX) /* else counted at the end of its buffer */
                    tagscan_mark_tag(t, buf, lt);
                return true;
            }
            break;
        case S_BANG: /* "<!--" comment, "<![CDATA[" section, else a declaration */
            if (t->marks == 0 && c == '[')
                t->state = S_CDATA;
            else if (c == '-' && ++t->marks == 2) {
                t->state = S_COMMENT;
                t->marks = 0;
            } else if (c != '-')
                t->state = c == '>' ? S_TEXT : S_SKIP;
            break;
        case S_COMMENT:
        case S_CDATA:
            if (c == (t->state == S_COMMENT ? '-' : ']'))
                t->marks++;
            else if (c == '>' && t->marks >= 2)
                t->state = S_TEXT;
            else
                t->marks = 0;
            break;
        case S_PI:
            if (c == '>' && t->marks)
                t->state = S_TEXT;
            else
                t->marks = c == '?';
            break;
        }
    }
out:
    if (lt != SIZE_MAX &&
        (t->state == S_LT || t->state == S_TAG || t->state == S_DQ || t->state == S_SQ)) {
        tagscan_mark_tag(t, buf, lt);
        tagscan_count(t, buf + lt + 1, n - lt - 1);
    } else {
        tagscan_count(t, buf, n);
    }
    return false;
}

/* ---- the process-wide entity loader ----------------------------------- */

struct loadctx {
    const char *allow; /* realpath of schemas_dir */
    size_t allow_len;
    int refused;
    char why[MSG_BYTES]; /* the first refusal */
};

static _Thread_local struct loadctx *tl_load;
static pthread_once_t loader_once = PTHREAD_ONCE_INIT;

static void refuse(const char *url, const char *why)
{
    if (tl_load && !tl_load->refused++)
        snprintf(tl_load->why, sizeof tl_load->why, "%s: %s", url ? url : "(none)", why);
}

/* True when the file's prolog holds a DOCTYPE (or it cannot be read). */
static bool file_has_doctype(const char *path)
{
    char buf[4096];
    struct prolog p;
    bool found = true;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    prolog_init(&p);
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (prolog_feed(&p, buf, (size_t)n))
            goto out;
        if (p.state == P_DONE)
            break;
    }
    found = n < 0;
out:
    close(fd);
    return found;
}

static xmlParserInputPtr safe_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    char real[PATH_MAX];
    const char *path = url;
    struct stat st;
    (void)id;
    if (!tl_load || !url) {
        refuse(url, "external entities are not loaded");
        return NULL;
    }
    if (!strncmp(url, "file://", 7)) {
        path = url + 7;
        if (!strncmp(path, "localhost/", 10))
            path += 9;
    } else if (strstr(url, "://") || !strncasecmp(url, "http:", 5) ||
               !strncasecmp(url, "ftp:", 4)) {
        refuse(url, "remote schema documents are refused (copy it into the schemas directory)");
        return NULL;
    }
    if (!realpath(path, real) || stat(real, &st) || !S_ISREG(st.st_mode)) {
        refuse(url, "not a readable file inside the schemas directory");
        return NULL;
    }
    if (strncmp(real, tl_load->allow, tl_load->allow_len) || real[tl_load->allow_len] != '/') {
        refuse(url, "outside the schemas directory");
        return NULL;
    }
    if (file_has_doctype(real)) {
        refuse(url, "a schema document with a DOCTYPE is refused");
        return NULL;
    }
    return xmlNewInputFromFile(ctxt, real);
}

static void loader_install(void)
{
    xmlInitParser();
    xmlSetExternalEntityLoader(safe_loader);
}

/* ---- the compiled validator ------------------------------------------- */

struct xfield {
    char **steps; /* element local names below the record */
    size_t nsteps;
    char *attr; /* attribute local name, NULL for element text */
    bool boolean;
    bool collapse; /* XSD whiteSpace collapse: every type but string/normalizedString */
    char *deflt;   /* the declaration's default= or fixed= value, or NULL */
};

struct xsdv {
    xmlSchemaPtr schema;
    char *schema_file;
    char **rsteps; /* xml.record split on '/' */
    size_t nrsteps;
    char **csteps; /* control.element split on '/', when the profile has one */
    size_t ncsteps;
    struct xfield *f;
    struct columns cols;
};

static void trim_msg(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = 0;
}

static char **split_path(const char *s, size_t *n, bool *ok)
{
    char **v = NULL;
    const char *p = s;
    *n = 0;
    *ok = true;
    while (*p) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (!len || len > 255) {
            *ok = false;
            break;
        }
        v = xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = xstrndup(p, len);
        if (!q)
            break;
        p = q + 1;
        if (!*p)
            *ok = false;
    }
    return v;
}

static void free_steps(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Compile-time error collector (schema parser and the XML parser under it). */
struct cerr {
    struct diags *d;
    const char *file;
    const char *schema;
    int n;
};

static void compile_err(void *ctx, xmlErrorPtr err)
{
    struct cerr *c = ctx;
    char msg[MSG_BYTES];
    if (!err || err->level == XML_ERR_WARNING || c->n >= 20)
        return;
    snprintf(msg, sizeof msg, "%s", err->message ? err->message : "error");
    trim_msg(msg);
    c->n++;
    if (err->file && err->line)
        diag_add(c->d, c->file, 0, 0, "xml.schema", "%s:%d: %s", err->file, err->line, msg);
    else
        diag_add(c->d, c->file, 0, 0, "xml.schema", "%s: %s", c->schema, msg);
}

/* ---- the XSD as a document: finding the simple types of the fields ------
 *
 * A best-effort walk of the schema documents (main, includes, imports):
 * global element -> its type -> content model (sequence/choice/all, groups,
 * complexContent extension) -> child element, and attributes likewise.  When
 * it cannot be sure (xs:any, a type it cannot find) the column is text.  A
 * name that is certainly not declared is a compile error.
 */

struct sdocs {
    xmlDocPtr v[MAX_SCHEMA_DOCS];
    int n;
};

struct tinfo {
    bool found, uncertain, optional;
    bool repeated;      /* maxOccurs > 1 on the element or a particle around it */
    xmlNodePtr ctype;   /* complex type of an element (for the next step) */
    const char *simple; /* builtin simple type local name */
};

static bool is_xs(xmlNodePtr n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           !strcmp((const char *)n->ns->href, XSD_NS) && !strcmp((const char *)n->name, local);
}

static bool attr_is(xmlNodePtr n, const char *name, const char *val)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    bool r = v && !strcmp((const char *)v, val);
    xmlFree(v);
    return r;
}

/* The local part of a QName-valued attribute; *builtin when it is in the
 * XML Schema namespace.  Returns a pointer into the attribute's node text. */
static const char *qname_attr(xmlNodePtr n, const char *name, bool *builtin)
{
    xmlAttrPtr a = xmlHasProp(n, (const xmlChar *)name);
    const char *v, *colon;
    char prefix[128];
    xmlNsPtr ns;
    *builtin = false;
    if (!a || !a->children || !a->children->content)
        return NULL;
    v = (const char *)a->children->content;
    colon = strchr(v, ':');
    if (colon && (size_t)(colon - v) < sizeof prefix) {
        memcpy(prefix, v, (size_t)(colon - v));
        prefix[colon - v] = 0;
        ns = xmlSearchNs(n->doc, n, (const xmlChar *)prefix);
        v = colon + 1;
    } else {
        ns = xmlSearchNs(n->doc, n, NULL);
    }
    *builtin = ns && ns->href && !strcmp((const char *)ns->href, XSD_NS);
    return v;
}

static xmlNodePtr top_decl(struct sdocs *s, const char *kind, const char *name)
{
    for (int i = 0; i < s->n; i++) {
        xmlNodePtr root = xmlDocGetRootElement(s->v[i]);
        for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next)
            if (is_xs(c, kind) && attr_is(c, "name", name))
                return c;
        /* xs:redefine holds definitions too */
        for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next)
            if (is_xs(c, "redefine"))
                for (xmlNodePtr g = c->children; g; g = g->next)
                    if (is_xs(g, kind) && attr_is(g, "name", name))
                        return g;
    }
    return NULL;
}

static void simple_of(struct sdocs *s, xmlNodePtr st, int depth, struct tinfo *t);

/* A type reference (type= or base=) into t. */
static void type_ref(struct sdocs *s, xmlNodePtr n, const char *attr, int depth, struct tinfo *t)
{
    bool builtin;
    const char *local = qname_attr(n, attr, &builtin);
    xmlNodePtr d;
    if (!local) {
        t->simple = "anyType";
        return;
    }
    if (builtin) {
        t->simple = local;
        return;
    }
    if (depth > RESOLVE_DEPTH) {
        t->uncertain = true;
        return;
    }
    if ((d = top_decl(s, "simpleType", local)))
        simple_of(s, d, depth + 1, t);
    else if ((d = top_decl(s, "complexType", local)))
        t->ctype = d;
    else
        t->uncertain = true;
}

static void simple_of(struct sdocs *s, xmlNodePtr st, int depth, struct tinfo *t)
{
    for (xmlNodePtr c = st->children; c; c = c->next) {
        if (is_xs(c, "restriction")) {
            if (xmlHasProp(c, (const xmlChar *)"base")) {
                type_ref(s, c, "base", depth, t);
                return;
            }
            for (xmlNodePtr g = c->children; g; g = g->next)
                if (is_xs(g, "simpleType")) {
                    simple_of(s, g, depth + 1, t);
                    return;
                }
        } else if (is_xs(c, "list") || is_xs(c, "union")) {
            t->simple = "string";
            return;
        }
    }
    t->uncertain = true;
}

/* The text type of a complex type: its simpleContent's base, else text. */
static const char *content_simple(struct sdocs *s, xmlNodePtr ct, int depth)
{
    struct tinfo t = {0};
    if (depth > RESOLVE_DEPTH)
        return "string";
    for (xmlNodePtr c = ct->children; c; c = c->next) {
        if (!is_xs(c, "simpleContent"))
            continue;
        for (xmlNodePtr g = c->children; g; g = g->next) {
            if (!is_xs(g, "extension") && !is_xs(g, "restriction"))
                continue;
            type_ref(s, g, "base", depth + 1, &t);
            if (t.ctype)
                return content_simple(s, t.ctype, depth + 1);
            return t.simple ? t.simple : "string";
        }
    }
    return "string";
}

/* The type of an element declaration. */
static void elem_type(struct sdocs *s, xmlNodePtr el, int depth, struct tinfo *t)
{
    bool builtin;
    const char *ref = qname_attr(el, "ref", &builtin);
    if (ref) {
        xmlNodePtr g = top_decl(s, "element", ref);
        if (!g || depth > RESOLVE_DEPTH) {
            t->uncertain = true;
            return;
        }
        elem_type(s, g, depth + 1, t);
        return;
    }
    if (xmlHasProp(el, (const xmlChar *)"type")) {
        type_ref(s, el, "type", depth, t);
        return;
    }
    for (xmlNodePtr c = el->children; c; c = c->next) {
        if (is_xs(c, "simpleType")) {
            simple_of(s, c, depth + 1, t);
            return;
        }
        if (is_xs(c, "complexType")) {
            t->ctype = c;
            return;
        }
    }
    t->simple = "anyType";
}

static bool decl_named(xmlNodePtr n, const char *name)
{
    bool builtin;
    const char *r;
    if (attr_is(n, "name", name))
        return true;
    r = qname_attr(n, "ref", &builtin);
    return r && !strcmp(r, name);
}

/* maxOccurs above 1 ("unbounded" or a number) on a particle. */
static bool many(xmlNodePtr n)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)"maxOccurs");
    bool r = v && (strcmp((const char *)v, "1") != 0 && strcmp((const char *)v, "0") != 0);
    xmlFree(v);
    return r;
}

/* Find the declaration of child element `name` in a content model. */
static xmlNodePtr find_child(struct sdocs *s, xmlNodePtr model, const char *name, int depth,
                             struct tinfo *t)
{
    if (depth > RESOLVE_DEPTH) {
        t->uncertain = true;
        return NULL;
    }
    for (xmlNodePtr c = model->children; c; c = c->next) {
        xmlNodePtr hit = NULL, sub = c;
        bool builtin;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_xs(c, "element")) {
            if (decl_named(c, name)) {
                if (attr_is(c, "minOccurs", "0") || attr_is(c, "nillable", "true"))
                    t->optional = true;
                t->repeated |= many(c);
                return c;
            }
            continue;
        }
        if (is_xs(c, "any")) {
            t->uncertain = true;
            continue;
        }
        if (is_xs(c, "group")) {
            const char *r = qname_attr(c, "ref", &builtin);
            sub = r ? top_decl(s, "group", r) : c;
            if (!sub) {
                t->uncertain = true;
                continue;
            }
        } else if (is_xs(c, "extension")) {
            const char *b = qname_attr(c, "base", &builtin);
            xmlNodePtr base = b && !builtin ? top_decl(s, "complexType", b) : NULL;
            if (b && !builtin && !base)
                t->uncertain = true;
            if (base && (hit = find_child(s, base, name, depth + 1, t)))
                return hit;
        } else if (!is_xs(c, "sequence") && !is_xs(c, "choice") && !is_xs(c, "all") &&
                   !is_xs(c, "complexContent") && !is_xs(c, "restriction")) {
            continue;
        }
        if ((hit = find_child(s, sub, name, depth + 1, t))) {
            if (is_xs(c, "choice") || attr_is(c, "minOccurs", "0"))
                t->optional = true;
            t->repeated |= many(c) || (sub != c && many(sub));
            return hit;
        }
    }
    return NULL;
}

static xmlNodePtr find_attr(struct sdocs *s, xmlNodePtr ct, const char *name, int depth,
                            struct tinfo *t)
{
    if (depth > RESOLVE_DEPTH) {
        t->uncertain = true;
        return NULL;
    }
    for (xmlNodePtr c = ct->children; c; c = c->next) {
        xmlNodePtr hit, sub = c;
        bool builtin;
        if (is_xs(c, "attribute")) {
            if (decl_named(c, name)) {
                if (!attr_is(c, "use", "required"))
                    t->optional = true;
                return c;
            }
            continue;
        }
        if (is_xs(c, "anyAttribute")) {
            t->uncertain = true;
            continue;
        }
        if (is_xs(c, "attributeGroup")) {
            const char *r = qname_attr(c, "ref", &builtin);
            sub = r ? top_decl(s, "attributeGroup", r) : c;
            if (!sub) {
                t->uncertain = true;
                continue;
            }
        } else if (is_xs(c, "extension") || is_xs(c, "restriction")) {
            const char *b = qname_attr(c, "base", &builtin);
            xmlNodePtr base = b && !builtin ? top_decl(s, "complexType", b) : NULL;
            if (base && (hit = find_attr(s, base, name, depth + 1, t)))
                return hit;
        } else if (!is_xs(c, "simpleContent") && !is_xs(c, "complexContent")) {
            continue;
        }
        if ((hit = find_attr(s, sub, name, depth + 1, t)))
            return hit;
    }
    return NULL;
}

static void attr_type(struct sdocs *s, xmlNodePtr a, struct tinfo *t)
{
    bool builtin;
    const char *ref = qname_attr(a, "ref", &builtin);
    if (ref) {
        xmlNodePtr g = top_decl(s, "attribute", ref);
        if (!g) {
            t->uncertain = true;
            return;
        }
        a = g;
    }
    if (xmlHasProp(a, (const xmlChar *)"type")) {
        type_ref(s, a, "type", 0, t);
        return;
    }
    for (xmlNodePtr c = a->children; c; c = c->next)
        if (is_xs(c, "simpleType")) {
            simple_of(s, c, 1, t);
            return;
        }
    t->simple = "anySimpleType";
}

/* Built-in integer types whose values may exceed an int64: xs:integer is
 * unbounded (XSD 1.0 part 2, 3.3.13), so are its sign-restricted kin, and
 * xs:unsignedLong reaches 2^64 - 1.  Their columns are COLK_WIDEINT. */
static bool wide_int(const char *b)
{
    static const char *wide[] = {"integer",         "nonNegativeInteger",
                                 "positiveInteger", "nonPositiveInteger",
                                 "negativeInteger", "unsignedLong"};
    for (size_t i = 0; b && i < sizeof wide / sizeof wide[0]; i++)
        if (!strcmp(b, wide[i]))
            return true;
    return false;
}

static enum col_type builtin_col(const char *b, bool *boolean)
{
    static const char *ints[] = {"integer",
                                 "int",
                                 "long",
                                 "short",
                                 "byte",
                                 "nonNegativeInteger",
                                 "positiveInteger",
                                 "nonPositiveInteger",
                                 "negativeInteger",
                                 "unsignedLong",
                                 "unsignedInt",
                                 "unsignedShort",
                                 "unsignedByte"};
    *boolean = false;
    if (!b)
        return COL_TEXT;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(b, ints[i]))
            return COL_INTEGER;
    /* xs:decimal is exact (any number of digits): its text is kept, never
     * turned into a double; SQLite has no exact decimal type */
    if (!strcmp(b, "double") || !strcmp(b, "float"))
        return COL_REAL;
    if (!strcmp(b, "boolean")) {
        *boolean = true;
        return COL_INTEGER;
    }
    return COL_TEXT;
}

static void load_docs(struct sdocs *s, const char *main_path)
{
    xmlDocPtr d = xmlReadFile(main_path, NULL, PARSE_OPTS | XML_PARSE_NOBLANKS);
    if (!d)
        return;
    s->v[s->n++] = d;
    for (int i = 0; i < s->n; i++) {
        xmlNodePtr root = xmlDocGetRootElement(s->v[i]);
        for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next) {
            xmlChar *loc, *uri;
            bool seen = false;
            if (!is_xs(c, "include") && !is_xs(c, "import") && !is_xs(c, "redefine"))
                continue;
            if (!(loc = xmlGetNoNsProp(c, (const xmlChar *)"schemaLocation")))
                continue;
            uri = xmlBuildURI(loc, s->v[i]->URL);
            xmlFree(loc);
            if (!uri)
                continue;
            for (int k = 0; k < s->n && !seen; k++)
                seen = s->v[k]->URL && !strcmp((const char *)s->v[k]->URL, (const char *)uri);
            if (!seen && s->n < MAX_SCHEMA_DOCS &&
                (d = xmlReadFile((const char *)uri, NULL, PARSE_OPTS | XML_PARSE_NOBLANKS)))
                s->v[s->n++] = d;
            xmlFree(uri);
        }
    }
}

/* The default= or fixed= value of a declaration (following ref=), or NULL. */
static char *decl_default(struct sdocs *s, xmlNodePtr n, const char *kind)
{
    bool builtin;
    const char *ref;
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)"default");
    char *r;
    if (!v)
        v = xmlGetNoNsProp(n, (const xmlChar *)"fixed");
    if (!v && (ref = qname_attr(n, "ref", &builtin)) && (n = top_decl(s, kind, ref))) {
        v = xmlGetNoNsProp(n, (const xmlChar *)"default");
        if (!v)
            v = xmlGetNoNsProp(n, (const xmlChar *)"fixed");
    }
    if (!v)
        return NULL;
    r = xstrdup((const char *)v);
    xmlFree(v);
    return r;
}

/* A global element others may stand in for (abstract, or the head of a
 * substitution group): a document can carry another element in its place,
 * which the field's name would not match. */
static bool substitutable(struct sdocs *s, xmlNodePtr el)
{
    bool builtin;
    const char *name = qname_attr(el, "ref", &builtin);
    xmlChar *own = NULL;
    bool r = false;
    if (!name) {
        if (!(el->parent && is_xs(el->parent, "schema")))
            return false; /* a local declaration heads no group */
        own = xmlGetNoNsProp(el, (const xmlChar *)"name");
        name = (const char *)own;
    } else if ((el = top_decl(s, "element", name)) == NULL) {
        return false;
    }
    if (!name)
        return false;
    r = attr_is(el, "abstract", "true");
    for (int i = 0; i < s->n && !r; i++) {
        xmlNodePtr root = xmlDocGetRootElement(s->v[i]);
        for (xmlNodePtr c = root ? root->children : NULL; c && !r; c = c->next) {
            const char *head;
            if (is_xs(c, "element") && (head = qname_attr(c, "substitutionGroup", &builtin)))
                r = !strcmp(head, name);
        }
    }
    xmlFree(own);
    return r;
}

/* XSD whiteSpace: string preserves, normalizedString replaces, the rest
 * collapse (leading and trailing white space is not part of the value). */
static bool collapses(const char *simple)
{
    return simple && strcmp(simple, "string") && strcmp(simple, "normalizedString") &&
           strcmp(simple, "anyType") && strcmp(simple, "anySimpleType");
}

/* A complex type whose content is text (simpleContent). */
static bool has_simple_content(xmlNodePtr ct)
{
    for (xmlNodePtr c = ct->children; c; c = c->next)
        if (is_xs(c, "simpleContent"))
            return true;
    return false;
}

#define UNCERTAIN                                                                                  \
    "the XSD reaches it only through xs:any, xs:anyAttribute, a reference wharf cannot resolve "   \
    "or more than 32 levels of types, so its type cannot be known; wharf refuses to guess (map "   \
    "declared elements and attributes only)"

/* Columns and their types; diags for names the XSD lacks and for what wharf
 * cannot shred faithfully (see docs/xsd.md): a field under a repeated
 * element, an element with child elements, a type it cannot resolve. */
static void map_fields(struct xsdv *x, const struct profile *p, struct sdocs *s, struct diags *d)
{
    struct tinfo rec = {0};
    xmlNodePtr el = top_decl(s, "element", x->rsteps[0]);
    bool rec_ok = el != NULL;
    if (el) {
        elem_type(s, el, 0, &rec);
        for (size_t i = 1; i < x->nrsteps && rec_ok; i++) {
            struct tinfo t = {0};
            if (!rec.ctype) {
                rec_ok = false;
                break;
            }
            el = find_child(s, rec.ctype, x->rsteps[i], 0, &t);
            if (!el) {
                rec.uncertain |= t.uncertain;
                rec_ok = false;
                break;
            }
            rec = (struct tinfo){0};
            elem_type(s, el, 0, &rec);
        }
    }
    if (!rec_ok && !rec.uncertain)
        diag_add(d, p->file, 0, 0, "xml.record", "%s is not an element path declared in %s",
                 p->xml.record, p->xml.schema);
    else if (rec.uncertain)
        diag_add(d, p->file, 0, 0, "xml.record", "%s: " UNCERTAIN, p->xml.record);
    else if (rec_ok && !rec.ctype && p->xml.n_fields)
        diag_add(d, p->file, 0, 0, "xml.record",
                 "%s is declared with a simple type in %s: a record must be an element with "
                 "attributes or child elements",
                 p->xml.record, p->xml.schema);
    for (size_t i = 0; i < p->xml.n_fields; i++) {
        struct xfield *f = &x->f[i];
        struct column *col = &x->cols.v[i];
        struct tinfo cur = rec, t = {0};
        bool ok = rec_ok && !rec.uncertain, optional = false;
        xmlNodePtr last = NULL;
        const char *simple = NULL;
        for (size_t k = 0; k < f->nsteps && ok; k++) {
            t = (struct tinfo){0};
            el = cur.ctype ? find_child(s, cur.ctype, f->steps[k], 0, &t) : NULL;
            if (!el) {
                if (t.uncertain)
                    diag_add(d, p->file, 0, 0, "xml.fields", "%s: \"%s\": " UNCERTAIN, col->name,
                             p->xml.fields[i].path);
                else if (cur.ctype)
                    diag_add(d, p->file, 0, 0, "xml.fields",
                             "%s: \"%s\" is not declared under %s in %s", col->name,
                             p->xml.fields[i].path, p->xml.record, p->xml.schema);
                else
                    diag_add(d, p->file, 0, 0, "xml.fields",
                             "%s: \"%s\": %s has a simple type in %s, it has no child elements",
                             col->name, p->xml.fields[i].path, k ? f->steps[k - 1] : p->xml.record,
                             p->xml.schema);
                ok = false;
                break;
            }
            if (t.repeated) {
                diag_add(d, p->file, 0, 0, "xml.fields",
                         "%s: \"%s\": %s may occur more than once in a record (maxOccurs in %s); "
                         "one column holds one value, and wharf neither drops nor joins the "
                         "others: make the repeated element the record (xml.record) instead",
                         col->name, p->xml.fields[i].path, f->steps[k], p->xml.schema);
                ok = false;
                break;
            }
            if (substitutable(s, el)) {
                diag_add(d, p->file, 0, 0, "xml.fields",
                         "%s: \"%s\": %s is abstract or heads a substitution group in %s: a "
                         "document may carry another element in its place, which this field "
                         "would miss; map the member elements' parent or make the record the "
                         "element itself",
                         col->name, p->xml.fields[i].path, f->steps[k], p->xml.schema);
                ok = false;
                break;
            }
            optional |= t.optional;
            last = el;
            cur = (struct tinfo){0};
            elem_type(s, el, 0, &cur);
            if (cur.uncertain) {
                diag_add(d, p->file, 0, 0, "xml.fields", "%s: \"%s\": " UNCERTAIN, col->name,
                         p->xml.fields[i].path);
                ok = false;
            }
        }
        col->type = COL_TEXT;
        if (!ok)
            continue;
        if (f->attr) {
            xmlNodePtr a;
            t = (struct tinfo){0};
            a = cur.ctype ? find_attr(s, cur.ctype, f->attr, 0, &t) : NULL;
            if (!a) {
                if (t.uncertain)
                    diag_add(d, p->file, 0, 0, "xml.fields", "%s: \"%s\": " UNCERTAIN, col->name,
                             p->xml.fields[i].path);
                else
                    diag_add(d, p->file, 0, 0, "xml.fields",
                             "%s: attribute \"%s\" is not declared on %s in %s", col->name, f->attr,
                             p->xml.fields[i].path, p->xml.schema);
                continue;
            }
            optional |= t.optional;
            t = (struct tinfo){0};
            attr_type(s, a, &t);
            if (t.uncertain) {
                diag_add(d, p->file, 0, 0, "xml.fields", "%s: \"%s\": " UNCERTAIN, col->name,
                         p->xml.fields[i].path);
                continue;
            }
            simple = t.simple;
            f->deflt = decl_default(s, a, "attribute");
        } else if (cur.ctype) {
            if (!has_simple_content(cur.ctype)) {
                diag_add(d, p->file, 0, 0, "xml.fields",
                         "%s: \"%s\" is an element with child elements or no text in %s (mixed "
                         "or element content); map its children or attributes instead",
                         col->name, p->xml.fields[i].path, p->xml.schema);
                continue;
            }
            simple = content_simple(s, cur.ctype, 0);
            f->deflt = last ? decl_default(s, last, "element") : NULL;
        } else {
            simple = cur.simple;
            if (simple && !strcmp(simple, "anyType")) {
                diag_add(d, p->file, 0, 0, "xml.fields",
                         "%s: \"%s\" is declared without a type (xs:anyType) in %s: it may hold "
                         "child elements, which a column cannot; give it a simple type",
                         col->name, p->xml.fields[i].path, p->xml.schema);
                continue;
            }
            f->deflt = last ? decl_default(s, last, "element") : NULL;
        }
        col->type = builtin_col(simple, &f->boolean);
        f->collapse = collapses(simple);
        if (f->boolean)
            col->kind = COLK_BOOLEAN;
        else if (simple && !strcmp(simple, "decimal"))
            col->kind = COLK_DECIMAL; /* exact text; PostgreSQL: numeric */
        else if (wide_int(simple))
            col->kind = COLK_WIDEINT; /* int64, or exact digits beyond; PostgreSQL: numeric */
        col->required = !optional;
    }
}

struct xsdv *xsdv_compile(const struct wharf_config *cfg, const struct profile *p, struct diags *d)
{
    struct xsdv *x = NULL;
    struct loadctx lc = {0};
    struct cerr ce = {d, p->file, p->xml.schema, 0};
    struct sdocs docs = {.n = 0};
    xmlSchemaParserCtxtPtr pc = NULL;
    char *path = NULL, real[PATH_MAX];
    size_t before = d->n;
    bool ok;

    pthread_once(&loader_once, loader_install);
    if (!p->xml.schema || !*p->xml.schema) {
        diag_add(d, p->file, 0, 0, "xml.schema", "an XSD is required for XML parts");
        return NULL;
    }
    if (!p->xml.record || p->xml.record[0] != '/') {
        diag_add(d, p->file, 0, 0, "xml.record",
                 "an absolute element path is required (like /orders/order)");
        return NULL;
    }
    if (!(path = config_schema_path(cfg, p->xml.schema))) {
        diag_add(d, p->file, 0, 0, "xml.schema",
                 "\"%s\" must be a relative path inside the schemas directory", p->xml.schema);
        return NULL;
    }
    if (!realpath(cfg->schemas_dir, real)) {
        diag_add(d, p->file, 0, 0, "xml.schema", "schemas directory %s: %s", cfg->schemas_dir,
                 strerror(errno));
        goto out;
    }
    x = xcalloc(1, sizeof *x);
    x->schema_file = path;
    path = NULL;
    x->rsteps = split_path(p->xml.record + 1, &x->nrsteps, &ok);
    if (!ok || !x->nrsteps)
        diag_add(d, p->file, 0, 0, "xml.record", "\"%s\" is not an element path", p->xml.record);
    if (p->control.line == CONTROL_XML && p->control.element) {
        x->csteps = split_path(p->control.element + 1, &x->ncsteps, &ok);
        if (!ok || !x->ncsteps)
            diag_add(d, p->file, 0, 0, "control.element", "\"%s\" is not an element path",
                     p->control.element);
    }
    x->f = xcalloc(p->xml.n_fields ? p->xml.n_fields : 1, sizeof *x->f);
    x->cols.v = xcalloc(p->xml.n_fields ? p->xml.n_fields : 1, sizeof *x->cols.v);
    x->cols.n = p->xml.n_fields;
    for (size_t i = 0; i < p->xml.n_fields; i++) {
        const char *fp = p->xml.fields[i].path, *at;
        struct xfield *f = &x->f[i];
        x->cols.v[i].name = xstrdup(p->xml.fields[i].column);
        at = fp ? strchr(fp, '@') : NULL;
        ok = fp && *fp && fp[0] != '/';
        if (ok && at) {
            ok = at[1] && !strchr(at + 1, '/') && (at == fp || at[-1] == '/');
            f->attr = xstrdup(at + 1);
        }
        if (ok && at != fp) {
            char *el = xstrndup(fp, at ? (size_t)(at - fp - 1) : strlen(fp));
            f->steps = split_path(el, &f->nsteps, &ok);
            free(el);
        }
        if (!ok)
            diag_add(d, p->file, 0, 0, "xml.fields",
                     "%s: \"%s\" is not a path (use child, child/grand, @attr or child/@attr)",
                     x->cols.v[i].name, fp ? fp : "");
    }
    if (d->n > before)
        goto out;

    lc.allow = real;
    lc.allow_len = strlen(real);
    tl_load = &lc;
    xmlSetStructuredErrorFunc(&ce, compile_err);
    pc = xmlSchemaNewParserCtxt(x->schema_file);
    xmlSchemaSetParserStructuredErrors(pc, compile_err, &ce);
    x->schema = xmlSchemaParse(pc);
    if (lc.refused)
        diag_add(d, p->file, 0, 0, "xml.schema", "%s: %s", p->xml.schema, lc.why);
    else if (!x->schema && d->n == before)
        diag_add(d, p->file, 0, 0, "xml.schema", "%s: cannot be compiled", p->xml.schema);
    if (x->schema && !lc.refused) {
        load_docs(&docs, x->schema_file);
        map_fields(x, p, &docs, d);
    }
    xmlSetStructuredErrorFunc(NULL, NULL);
    tl_load = NULL;
out:
    for (int i = 0; i < docs.n; i++)
        xmlFreeDoc(docs.v[i]);
    if (pc)
        xmlSchemaFreeParserCtxt(pc);
    free(path);
    if (d->n > before) {
        xsdv_free(x);
        return NULL;
    }
    return x;
}

void xsdv_free(struct xsdv *x)
{
    if (!x)
        return;
    if (x->schema)
        xmlSchemaFree(x->schema);
    for (size_t i = 0; i < x->cols.n; i++) {
        free(x->cols.v[i].name);
        free_steps(x->f[i].steps, x->f[i].nsteps);
        free(x->f[i].attr);
        free(x->f[i].deflt);
    }
    free(x->cols.v);
    free(x->f);
    free_steps(x->rsteps, x->nrsteps);
    free_steps(x->csteps, x->ncsteps);
    free(x->schema_file);
    free(x);
}

const struct columns *xsdv_columns(const struct xsdv *x)
{
    return x ? &x->cols : NULL;
}

/* ---- one run ----------------------------------------------------------- */

struct fieldrt {
    char *buf; /* NUL-terminated */
    size_t len, cap;
    const xmlChar **step; /* the xfield's steps, interned (intern_names) */
    const xmlChar *attr;  /* its attribute, interned; NULL for element text */
    size_t depth;         /* steps matched along the open path */
    bool capturing, seen, over;
    bool nil;  /* xsi:nil="true" on the field's element */
    bool host; /* the element carrying an attribute field was there */
};

struct run {
    struct xsdv *x;
    const struct validate_input *in;
    struct report *rep;
    row_fn fn;
    void *ctx;
    struct werr *e;
    struct validate_result *res;
    xmlParserCtxtPtr pc;
    int fd;
    int read_errno;
    char *rbuf; /* READ_BYTES read ahead of the parser, rbuf[roff, rlen) not yet served */
    size_t roff, rlen;
    struct prolog pro;
    struct tagscan tags;
    uint64_t max_depth, max_field, max_attributes;
    /* the open elements: names (parser dictionary strings, valid for the
     * whole parse) */
    const xmlChar **names;
    unsigned char *rmatch;   /* rmatch[d]: the path to depth d matches xml.record */
    const xmlChar **rname;   /* xml.record's steps, interned (intern_names) */
    const xmlChar **names_v; /* one allocation behind rname and every fieldrt's step */
    size_t depth;
    bool pending_pop;
    uint64_t text_run; /* bytes of text since the last tag (the validator buffers it) */
    bool halted;       /* stop reporting and acting: doctype, depth, fn failed */
    bool cb_failed;
    /* the current record */
    bool in_record;
    uint64_t rec_no, rec_line, rec_errs;
    char rec_xpath[PATH_BYTES]; /* the record as an XPath, for lineage */
    size_t xpath_pre;           /* its constant part, "(/a/b/c" or "/a/b"; 0: too long */
    size_t ncap;
    struct fieldrt *f;
    struct value *vals;
    /* control: (validate/control.h): the sums of every record, and with
     * control.element the element's own subtree, built while it streams by
     * (bounded by CONTROL_MAX_BYTES) and given to XPath when it closes */
    struct control_tally *ctl;
    size_t *sumcol;        /* per conf->sums[k]: its column, or SIZE_MAX */
    unsigned char *cmatch; /* cmatch[d]: the path to depth d matches control.element */
    xmlDocPtr cdoc;        /* the control element's subtree, while it is open */
    xmlNodePtr cnode;      /* the open element in it */
    size_t cdepth;         /* depth of the control element */
    uint64_t cbytes, cline;
};

static uint64_t cur_line(const struct run *r)
{
    return r->pc && r->pc->input && r->pc->input->line > 0 ? (uint64_t)r->pc->input->line : 0;
}

static uint64_t cur_col(const struct run *r)
{
    return r->pc && r->pc->input && r->pc->input->col > 0 ? (uint64_t)r->pc->input->col : 0;
}

/* "/orders/order[17]/unit_price": the record carries its ordinal. */
static void element_path(const struct run *r, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t d = 1; d <= r->depth && o + 1 < size; d++) {
        int n;
        if (d == r->x->nrsteps && r->rmatch[d])
            n = snprintf(buf + o, size - o, "/%s[%llu]", (const char *)r->names[d],
                         (unsigned long long)r->rec_no);
        else
            n = snprintf(buf + o, size - o, "/%s", (const char *)r->names[d]);
        if (n < 0 || (size_t)n >= size - o) {
            buf[o] = 0;
            if (o + 4 < size)
                memcpy(buf + o, "/...", 5);
            break;
        }
        o += (size_t)n;
    }
}

/* Stop the parse from inside a callback.  Not xmlStopParser: it frees the
 * input buffer while the plugged validator is still to see the same event.
 * Instead no further SAX events are delivered, and the next read fails. */
static void halt(struct run *r)
{
    r->halted = true;
    if (r->pc)
        r->pc->disableSAX = 1;
}

static void on_error(void *ctx, xmlErrorPtr err)
{
    struct run *r = ctx;
    char msg[MSG_BYTES], path[PATH_BYTES];
    uint64_t line, col;
    bool xsd;
    if (!err || err->level == XML_ERR_WARNING || r->halted)
        return;
    snprintf(msg, sizeof msg, "%s", err->message ? err->message : "error");
    trim_msg(msg);
    xsd = err->domain == XML_FROM_SCHEMASV;
    line = err->line > 0 ? (uint64_t)err->line : cur_line(r);
    col = err->int2 > 0 ? (uint64_t)err->int2 : cur_col(r);
    element_path(r, path, sizeof path);
    if (xsd) {
        if (r->in_record)
            r->rec_errs++;
        report_add(r->rep, r->in->display, line, col, path[0] ? path : NULL, NULL, 0, "xsd", "%s",
                   msg);
        return;
    }
    r->res->structural = true;
    report_add(r->rep, r->in->display, line, col, path[0] ? path : NULL, NULL, 0, "malformed", "%s",
               msg);
    if (err->level == XML_ERR_FATAL)
        r->halted = true;
}

static int locator(void *ctx, const char **file, unsigned long *line)
{
    struct run *r = ctx;
    if (file)
        *file = r->in->display;
    if (line)
        *line = (unsigned long)cur_line(r);
    return 0;
}

static void capture(struct run *r, struct fieldrt *fr, const char *s, size_t n)
{
    if (fr->over)
        return;
    if (fr->len + n > r->max_field) {
        char path[PATH_BYTES];
        element_path(r, path, sizeof path);
        n = r->max_field - fr->len;
        fr->over = true;
        r->rec_errs++;
        report_add(r->rep, r->in->display, cur_line(r), cur_col(r), path, NULL, 0, "limit",
                   "value longer than %llu bytes (limits.max_field)",
                   (unsigned long long)r->max_field);
    }
    if (fr->len + n + 1 > fr->cap) {
        fr->cap = (fr->len + n + 1) * 2;
        fr->buf = xrealloc(fr->buf, fr->cap);
    }
    memcpy(fr->buf + fr->len, s, n);
    fr->len += n;
    fr->buf[fr->len] = 0;
}

static const char *trimmed(const char *s, size_t *len)
{
    size_t n = *len;
    while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    *len = n;
    return s;
}

/*
 * A COLK_WIDEINT value (s, n: white space already removed): an int64 when
 * it fits, else its canonical digits as text, never rounded: "-" for a
 * negative number, no "+", no leading zeros ("-000123..." is "-123...", and
 * "-0" is 0), so equal numbers are equal values whatever their spelling.
 * The text is built in fr->buf (s may point into it, or at the
 * declaration's default).  -1 when s is not an optionally signed run of
 * ASCII digits (the validator has refused that already).
 */
static int wide_integer(struct fieldrt *fr, const char *s, size_t n, struct value *v)
{
    char tmp[24];
    size_t i = 0, k, d;
    bool neg = false;
    if (n && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    for (k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return -1;
    while (i + 1 < n && s[i] == '0')
        i++;
    d = n - i;     /* significant digits, at least one */
    if (d <= 18) { /* below 10^18: no overflow, no strtoll */
        int64_t acc = 0;
        for (k = i; k < n; k++)
            acc = acc * 10 + (s[k] - '0');
        v->kind = VAL_INT;
        v->i = neg ? -acc : acc;
        return 0;
    }
    if (d == 19) {
        char *end;
        long long ll;
        tmp[0] = neg ? '-' : '+';
        memcpy(tmp + 1, s + i, d);
        tmp[d + 1] = 0;
        errno = 0;
        ll = strtoll(tmp, &end, 10);
        if (!errno && !*end) {
            v->kind = VAL_INT;
            v->i = ll;
            return 0;
        }
    }
    if (fr->cap < d + neg + 1) { /* never when s is in fr->buf: the text only shrinks */
        fr->buf = xrealloc(fr->buf, d + neg + 1);
        fr->cap = d + neg + 1;
    }
    memmove(fr->buf + neg, s + i, d);
    if (neg)
        fr->buf[0] = '-';
    fr->len = d + neg;
    fr->buf[fr->len] = 0;
    v->kind = VAL_TEXT;
    v->s = fr->buf;
    v->len = fr->len;
    return 0;
}

/*
 * Typed value of a captured field; -1 when the text is not of the type.
 * Absent, or xsi:nil="true": NULL.  An empty element, or an absent attribute
 * on an element that is there, takes the declaration's default or fixed
 * value.  Types other than string and normalizedString lose leading and
 * trailing white space (XSD whiteSpace collapse); xs:decimal keeps its
 * digits as text.
 */
static int typed(const struct column *c, const struct xfield *xf, struct fieldrt *fr,
                 struct value *v)
{
    size_t n = fr->len;
    const char *s = fr->buf ? fr->buf : "";
    char tmp[128], *end;
    memset(v, 0, sizeof *v);
    if (fr->nil)
        return 0; /* VAL_NULL */
    if (!fr->seen && !(xf->attr && fr->host && xf->deflt))
        return 0;
    if ((!fr->seen || (!xf->attr && n == 0)) && xf->deflt) {
        s = xf->deflt;
        n = strlen(s);
    }
    if (xf->collapse)
        s = trimmed(s, &n);
    if (c->type == COL_TEXT) {
        v->kind = VAL_TEXT;
        v->s = s;
        v->len = n;
        return 0;
    }
    if (!n)
        return 0; /* empty (xsi:nil) is NULL */
    if (c->kind == COLK_WIDEINT)
        return wide_integer(fr, s, n, v);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    errno = 0;
    if (xf->boolean) {
        v->kind = VAL_INT;
        if (!strcmp(tmp, "true") || !strcmp(tmp, "1"))
            v->i = 1;
        else if (strcmp(tmp, "false") && strcmp(tmp, "0"))
            return -1;
        return 0;
    }
    if (c->type == COL_INTEGER) {
        long long i = strtoll(tmp, &end, 10);
        if (errno || *end)
            return -1;
        v->kind = VAL_INT;
        v->i = i;
        return 0;
    }
    v->d = strtod(tmp, &end);
    if (*end)
        return -1;
    v->kind = VAL_REAL;
    return 0;
}

/* Decimal digits of v at p (at most 20), no NUL; their count. */
static size_t u64_digits(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* The constant part of record_xpath, once per run: "/orders/order", or
 * "(/batch/orders/order". */
static void record_xpath_init(struct run *r)
{
    size_t o = 0, R = r->x->nrsteps, size = sizeof r->rec_xpath;
    char *b = r->rec_xpath;
    r->xpath_pre = 0;
    if (R > 2)
        b[o++] = '(';
    for (size_t d = 0; d < R && o < size; d++) {
        int n = snprintf(b + o, size - o, "/%s", r->x->rsteps[d]);
        if (n < 0 || (size_t)n >= size - o)
            return;
        o += (size_t)n;
    }
    r->xpath_pre = o;
}

/* The current record as an XPath that selects exactly it: "/orders/order[17]"
 * when records are the root's children (rec_no counts them all), else
 * "(/batch/orders/order)[17]", the 17th in document order.  NULL when it
 * does not fit rec_xpath.  Per record only the ordinal is written, after
 * the prefix record_xpath_init left in the buffer. */
static const char *record_xpath(struct run *r)
{
    char digits[20], *b = r->rec_xpath;
    size_t o = r->xpath_pre, nd = u64_digits(digits, r->rec_no);
    bool paren = r->x->nrsteps > 2;
    if (!o || o + paren + nd + 2 >= sizeof r->rec_xpath)
        return NULL;
    if (paren)
        b[o++] = ')';
    b[o++] = '[';
    memcpy(b + o, digits, nd);
    o += nd;
    b[o++] = ']';
    b[o] = 0;
    return b;
}

/* Every record's summed fields, valid or not, added exactly as written. */
static void control_add(struct run *r)
{
    struct control_tally *t = r->ctl;
    for (size_t k = 0; k < t->conf->n_sums; k++) {
        struct fieldrt *fr;
        const char *s;
        size_t n;
        if (r->sumcol[k] == SIZE_MAX)
            continue;
        fr = &r->f[r->sumcol[k]];
        if (!fr->seen || fr->nil || !fr->buf)
            continue;
        n = fr->len;
        s = trimmed(fr->buf, &n);
        if (n && decimal_add_text(&t->sums[k], s, n) < 0)
            t->unsummable[k]++;
    }
}

static void finish_record(struct run *r)
{
    struct row row = {0};
    r->in_record = false;
    if (r->ctl && r->f)
        control_add(r);
    if (r->fn && !r->rec_errs) {
        for (size_t i = 0; i < r->x->cols.n; i++) {
            if (typed(&r->x->cols.v[i], &r->x->f[i], &r->f[i], &r->vals[i]) < 0) {
                r->rec_errs++;
                report_add(r->rep, r->in->display, r->rec_line, 0, r->x->cols.v[i].name,
                           r->f[i].buf, r->f[i].len, "type", "value does not fit column %s (%s)",
                           r->x->cols.v[i].name,
                           r->x->cols.v[i].type == COL_INTEGER ? "64-bit integer" : "number");
            }
        }
    }
    if (r->rec_errs) {
        r->res->invalid++;
        return;
    }
    r->res->valid++;
    if (!r->fn || r->cb_failed)
        return;
    row.v = r->vals;
    row.n = r->x->cols.n;
    row.line = r->rec_line;
    row.xpath = record_xpath(r);
    if (r->fn(r->ctx, &row, r->e) < 0) {
        r->cb_failed = true;
        halt(r);
    }
}

/* Close the element whose end tag came last (see the top of the file). */
static void control_close(struct run *r);

static void pop(struct run *r)
{
    size_t d = r->depth, R = r->x->nrsteps;
    r->pending_pop = false;
    if (r->cnode) {
        if (d == r->cdepth)
            control_close(r);
        else
            r->cnode = r->cnode->parent;
    }
    if (r->in_record) {
        if (d == R) {
            if (!r->halted)
                finish_record(r);
            r->in_record = false;
        } else if (r->fn && d > R) {
            for (size_t i = 0; i < r->x->cols.n; i++) {
                struct fieldrt *fr = &r->f[i];
                if (fr->depth != d - R)
                    continue;
                if (fr->capturing) {
                    fr->capturing = false;
                    fr->seen = true;
                    r->ncap--;
                }
                fr->depth--;
            }
        }
    }
    r->depth--;
}

static void attrs_into(struct run *r, struct fieldrt *fr, int nattr, const xmlChar **attrs)
{
    for (int a = 0; a < nattr; a++) {
        const xmlChar **at = attrs + 5 * a;
        if (at[0] != fr->attr)
            continue;
        fr->len = 0;
        capture(r, fr, (const char *)at[3], (size_t)(at[4] - at[3]));
        fr->seen = true;
        return;
    }
}

/* xsi:nil="true" (or "1") among the attributes.  The validator has already
 * refused it on an element that is not nillable. */
static bool is_nil(int nattr, const xmlChar **attrs)
{
    for (int a = 0; a < nattr; a++) {
        const xmlChar **at = attrs + 5 * a;
        size_t len = (size_t)(at[4] - at[3]);
        const char *v = (const char *)at[3];
        if (!at[2] || strcmp((const char *)at[2], "http://www.w3.org/2001/XMLSchema-instance") ||
            strcmp((const char *)at[0], "nil"))
            continue;
        while (len && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
            v++, len--;
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\n' ||
                       v[len - 1] == '\r'))
            len--;
        return (len == 4 && !memcmp(v, "true", 4)) || (len == 1 && *v == '1');
    }
    return false;
}

/* The control element's subtree grew past its bound: stop building it. */
static bool control_over(struct run *r, size_t more)
{
    r->cbytes += more;
    if (r->cbytes <= CONTROL_MAX_BYTES)
        return false;
    if (!*r->ctl->problem)
        snprintf(r->ctl->problem, sizeof r->ctl->problem,
                 "the control element %s at line %llu is larger than %d bytes",
                 r->ctl->conf->element, (unsigned long long)r->cline, CONTROL_MAX_BYTES);
    xmlFreeDoc(r->cdoc);
    r->cdoc = NULL;
    r->cnode = NULL;
    return true;
}

/* The attributes of the open element of the control subtree. */
static void control_attrs(struct run *r, int nattr, const xmlChar **attrs)
{
    for (int a = 0; a < nattr && r->cnode; a++) {
        const xmlChar **at = attrs + 5 * a;
        xmlChar *v = xmlStrndup(at[3], (int)(at[4] - at[3]));
        if (!control_over(r, (size_t)(at[4] - at[3]) + 16))
            xmlNewProp(r->cnode, at[0], v);
        xmlFree(v);
    }
}

/*
 * The control element opens at depth d: a document of its own is started,
 * its ancestors as empty elements (so an absolute XPath reads as in the
 * whole document), the element itself with its attributes.  Names are
 * local names; namespaces are not kept.
 */
static void control_open(struct run *r, int nattr, const xmlChar **attrs)
{
    struct control_tally *t = r->ctl;
    xmlNodePtr parent = NULL, n = NULL;
    size_t d = r->depth;
    if (t->found) {
        if (!*t->problem)
            snprintf(t->problem, sizeof t->problem,
                     "a second control element %s at line %llu (the first is at line %llu)",
                     t->conf->element, (unsigned long long)cur_line(r),
                     (unsigned long long)t->line);
        return;
    }
    t->found = true;
    t->line = r->cline = cur_line(r);
    r->cbytes = 0;
    r->cdoc = xmlNewDoc((const xmlChar *)"1.0");
    for (size_t i = 1; i <= d; i++) {
        n = xmlNewDocNode(r->cdoc, NULL, r->names[i], NULL);
        if (parent)
            xmlAddChild(parent, n);
        else
            xmlDocSetRootElement(r->cdoc, n);
        parent = n;
    }
    r->cnode = n;
    r->cdepth = d;
    control_attrs(r, nattr, attrs);
}

/* An element inside the control element. */
static void control_child(struct run *r, const xmlChar *name, int nattr, const xmlChar **attrs)
{
    xmlNodePtr n;
    if (control_over(r, (size_t)xmlStrlen(name) + 16))
        return;
    n = xmlNewDocNode(r->cdoc, NULL, name, NULL);
    xmlAddChild(r->cnode, n);
    r->cnode = n;
    control_attrs(r, nattr, attrs);
}

/* The string value of an XPath on the control element, trimmed; NULL when
 * it selects nothing or is empty. */
static char *control_eval(xmlXPathContextPtr xc, const char *expr)
{
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, xc);
    xmlChar *sv;
    char *out = NULL;
    size_t n;
    if (!o)
        return NULL;
    if (!(o->type == XPATH_NODESET && xmlXPathNodeSetIsEmpty(o->nodesetval)) &&
        (sv = xmlXPathCastToString(o))) {
        n = strlen((const char *)sv);
        const char *t = trimmed((const char *)sv, &n);
        if (n)
            out = xstrndup(t, n);
        xmlFree(sv);
    }
    xmlXPathFreeObject(o);
    return out;
}

/* The control element closed: evaluate count and sums on it alone. */
static void control_close(struct run *r)
{
    struct control_tally *t = r->ctl;
    const struct control_conf *c = t->conf;
    xmlXPathContextPtr xc = xmlXPathNewContext(r->cdoc);
    xmlNodePtr el = r->cnode;
    r->cnode = NULL;
    if (xc) {
        xc->node = el;
        for (int k = -1; k < (int)c->n_sums; k++) {
            const char *expr = k < 0 ? c->count_key : c->sums[k].key;
            char *v;
            if (!expr)
                continue;
            v = control_eval(xc, expr);
            control_tally_stated(t, k, v, v ? strlen(v) : 0);
            if (!v && !*t->problem) {
                char *ee = esc_text(expr);
                snprintf(t->problem, sizeof t->problem,
                         "the control element %s at line %llu: %s (control.%s%s) selects "
                         "nothing or an empty value",
                         c->element, (unsigned long long)t->line, ee, k < 0 ? "count" : "sums.",
                         k < 0 ? "" : c->sums[k].column);
                free(ee);
            }
            free(v);
        }
        xmlXPathFreeContext(xc);
    }
    xmlFreeDoc(r->cdoc);
    r->cdoc = NULL;
}

/*
 * The names sax_start compares, as strings of the parser's dictionary.
 * libxml2 hands every element and attribute local name to the SAX2
 * callbacks from that dictionary (xmlParseQName interns each one), so a
 * name in the document is one of ours exactly when it is the same
 * pointer: no strcmp runs per element or attribute.  Looking a name up
 * that the document never uses only adds it.  -1 when the dictionary
 * cannot grow (out of memory).
 */
static int intern_names(struct run *r)
{
    xmlDictPtr dict = r->pc->dict;
    size_t n = r->x->nrsteps, k = 0;
    for (size_t i = 0; r->f && i < r->x->cols.n; i++)
        n += r->x->f[i].nsteps;
    r->names_v = xcalloc(n ? n : 1, sizeof *r->names_v);
    r->rname = r->names_v;
    for (size_t d = 0; d < r->x->nrsteps; d++)
        if (!(r->names_v[k++] = xmlDictLookup(dict, (const xmlChar *)r->x->rsteps[d], -1)))
            return -1;
    for (size_t i = 0; r->f && i < r->x->cols.n; i++) {
        const struct xfield *xf = &r->x->f[i];
        r->f[i].step = r->names_v + k;
        for (size_t d = 0; d < xf->nsteps; d++)
            if (!(r->names_v[k++] = xmlDictLookup(dict, (const xmlChar *)xf->steps[d], -1)))
                return -1;
        if (xf->attr && !(r->f[i].attr = xmlDictLookup(dict, (const xmlChar *)xf->attr, -1)))
            return -1;
    }
    return 0;
}

static void sax_start(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri,
                      int nns, const xmlChar **ns, int nattr, int ndef, const xmlChar **attrs)
{
    struct run *r = ctx;
    size_t d, R = r->x->nrsteps;
    (void)prefix, (void)uri, (void)nns, (void)ns, (void)ndef;
    if (r->pending_pop)
        pop(r);
    r->text_run = 0;
    if (r->halted)
        return;
    if (r->depth + 1 > r->max_depth) {
        char path[PATH_BYTES];
        element_path(r, path, sizeof path);
        r->res->structural = true;
        report_add(r->rep, r->in->display, cur_line(r), cur_col(r), path, NULL, 0, "depth",
                   "elements nested deeper than %llu (limits.max_depth)",
                   (unsigned long long)r->max_depth);
        halt(r);
        return;
    }
    d = ++r->depth;
    r->names[d] = name;
    r->rmatch[d] = d <= R && r->rmatch[d - 1] && name == r->rname[d - 1];
    if (r->cmatch) {
        size_t C = r->x->ncsteps;
        r->cmatch[d] =
            d <= C && r->cmatch[d - 1] && !strcmp((const char *)name, r->x->csteps[d - 1]);
        if (r->cnode)
            control_child(r, name, nattr, attrs);
        else if (d == C && r->cmatch[d])
            control_open(r, nattr, attrs);
    }
    if (d == R && r->rmatch[d]) {
        r->in_record = true;
        r->rec_no++;
        r->res->records++;
        r->rec_line = cur_line(r);
        r->rec_errs = 0;
        if (!r->fn)
            return;
        r->ncap = 0;
        for (size_t i = 0; i < r->x->cols.n; i++) {
            struct fieldrt *fr = &r->f[i];
            fr->len = 0;
            fr->depth = 0;
            fr->capturing = fr->seen = fr->over = false;
            fr->nil = false;
            fr->host = false;
            if (fr->buf)
                fr->buf[0] = 0;
            if (!r->x->f[i].nsteps && r->x->f[i].attr) {
                fr->host = true;
                attrs_into(r, fr, nattr, attrs);
            }
        }
        return;
    }
    if (!r->in_record || !r->fn || d <= R)
        return;
    for (size_t i = 0; i < r->x->cols.n; i++) {
        struct fieldrt *fr = &r->f[i];
        const struct xfield *xf = &r->x->f[i];
        if (fr->depth != d - R - 1 || d - R > xf->nsteps || fr->seen || name != fr->step[d - R - 1])
            continue;
        fr->depth = d - R;
        if (fr->depth < xf->nsteps)
            continue;
        if (xf->attr) {
            fr->host = true;
            attrs_into(r, fr, nattr, attrs);
        } else {
            fr->capturing = true;
            fr->len = 0;
            fr->nil = is_nil(nattr, attrs);
            r->ncap++;
        }
    }
}

static void sax_end(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri)
{
    struct run *r = ctx;
    (void)name, (void)prefix, (void)uri;
    if (r->pending_pop)
        pop(r);
    r->text_run = 0;
    r->pending_pop = true;
}

static void sax_text(void *ctx, const xmlChar *s, int len)
{
    struct run *r = ctx;
    if (r->pending_pop)
        pop(r);
    if (r->halted)
        return;
    r->text_run += (uint64_t)len;
    if (r->cnode && !control_over(r, (size_t)len))
        xmlNodeAddContentLen(r->cnode, s, len);
    if (r->text_run > r->max_field) {
        char path[PATH_BYTES];
        element_path(r, path, sizeof path);
        r->res->structural = true;
        report_add(r->rep, r->in->display, cur_line(r), cur_col(r), path, NULL, 0, "limit",
                   "text longer than %llu bytes (limits.max_field)",
                   (unsigned long long)r->max_field);
        halt(r);
        return;
    }
    if (!r->ncap)
        return;
    for (size_t i = 0; i < r->x->cols.n; i++)
        if (r->f[i].capturing && r->f[i].depth + r->x->nrsteps == r->depth)
            capture(r, &r->f[i], (const char *)s, (size_t)len);
}

static void sax_end_document(void *ctx)
{
    struct run *r = ctx;
    if (r->pending_pop)
        pop(r);
}

static int io_read(void *ctx, char *buf, int len)
{
    struct run *r = ctx;
    ssize_t n;
    if (r->halted)
        return -1;
    if (r->roff == r->rlen) {
        do
            n = read(r->fd, r->rbuf, READ_BYTES);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            r->read_errno = errno;
            return -1;
        }
        r->roff = 0;
        r->rlen = (size_t)n;
    }
    /* the scanners below see the bytes as the parser gets them, no earlier */
    n = (ssize_t)(r->rlen - r->roff < (size_t)len ? r->rlen - r->roff : (size_t)len);
    memcpy(buf, r->rbuf + r->roff, (size_t)n);
    r->roff += (size_t)n;
    if (r->in->bytes_read)
        *r->in->bytes_read += (uint64_t)n;
    if (r->pro.state != P_DONE && prolog_feed(&r->pro, buf, (size_t)n)) {
        r->res->structural = true;
        report_add(r->rep, r->in->display, r->pro.line, r->pro.col, NULL, NULL, 0, "doctype",
                   "a DOCTYPE is not accepted (DTDs and entities are refused)");
        r->halted = true;
        return -1;
    }
    if (tagscan_feed(&r->tags, buf, (size_t)n, r->max_attributes)) {
        r->res->structural = true;
        report_add(r->rep, r->in->display, r->tags.tag_line, r->tags.tag_col, NULL, NULL, 0,
                   "limit",
                   "an element has more than %llu attributes and namespace declarations "
                   "(limits.max_attributes)",
                   (unsigned long long)r->max_attributes);
        r->halted = true;
        return -1;
    }
    return (int)n;
}

static int io_close(void *ctx)
{
    (void)ctx;
    return 0;
}

int xsdv_run(struct xsdv *x, const struct validate_input *in, const struct limits_conf *lim,
             struct report *rep, row_fn fn, void *ctx, struct validate_result *res, struct werr *e)
{
    struct run r;
    xmlSAXHandler sax;
    xmlSchemaValidCtxtPtr vc = NULL;
    xmlSchemaSAXPlugPtr plug = NULL;
    int rc = -1;

    pthread_once(&loader_once, loader_install);
    memset(res, 0, sizeof *res);
    memset(&r, 0, sizeof r);
    r.x = x;
    r.in = in;
    r.rep = rep;
    r.fn = fn;
    r.ctx = ctx;
    r.e = e;
    r.res = res;
    r.max_depth = lim && lim->max_depth ? lim->max_depth : DEF_MAX_DEPTH;
    r.max_field = lim && lim->max_field ? lim->max_field : DEF_MAX_FIELD;
    r.max_attributes = lim && lim->max_attributes ? lim->max_attributes : DEF_MAX_ATTRIBUTES;
    if (r.max_depth > 100000)
        r.max_depth = 100000;
    prolog_init(&r.pro);
    tagscan_init(&r.tags);
    record_xpath_init(&r);
    if ((r.fd = open(in->path, O_RDONLY | O_CLOEXEC)) < 0) {
        werr_sys(e, "%s: open", in->display);
        return -1;
    }
    r.rbuf = xmalloc(READ_BYTES);
    r.names = xcalloc(r.max_depth + 1, sizeof *r.names);
    r.rmatch = xcalloc(r.max_depth + 1, 1);
    r.rmatch[0] = 1;
    if (fn) {
        r.f = xcalloc(x->cols.n ? x->cols.n : 1, sizeof *r.f);
        r.vals = xcalloc(x->cols.n ? x->cols.n : 1, sizeof *r.vals);
    }
    if ((r.ctl = in->control)) {
        const struct control_conf *cc = r.ctl->conf;
        r.sumcol = xcalloc(cc->n_sums + 1, sizeof *r.sumcol);
        for (size_t k = 0; k < cc->n_sums; k++) {
            r.sumcol[k] = SIZE_MAX;
            for (size_t i = 0; i < x->cols.n; i++)
                if (!strcmp(x->cols.v[i].name, cc->sums[k].column))
                    r.sumcol[k] = i;
            if (r.sumcol[k] == SIZE_MAX && !*r.ctl->problem)
                snprintf(r.ctl->problem, sizeof r.ctl->problem,
                         "control.sums names \"%s\", which is not a column of xml.fields",
                         cc->sums[k].column);
        }
        if (cc->line == CONTROL_XML && x->ncsteps) {
            r.cmatch = xcalloc(r.max_depth + 1, 1);
            r.cmatch[0] = 1;
        }
    }

    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = sax_start;
    sax.endElementNs = sax_end;
    sax.endDocument = sax_end_document;
    sax.characters = sax_text;
    sax.cdataBlock = sax_text;
    sax.ignorableWhitespace = sax_text;

    xmlSetStructuredErrorFunc(&r, on_error);
    r.pc = xmlCreateIOParserCtxt(&sax, &r, io_read, io_close, &r, XML_CHAR_ENCODING_NONE);
    if (!r.pc) {
        werr_set(e, "%s: cannot create an XML parser", in->display);
        goto out;
    }
    xmlCtxtUseOptions(r.pc, PARSE_OPTS);
    if (!r.pc->dict || intern_names(&r) < 0) {
        werr_set(e, "%s: cannot create an XML parser (its name dictionary)", in->display);
        goto out;
    }
    vc = xmlSchemaNewValidCtxt(x->schema);
    if (!vc) {
        werr_set(e, "%s: cannot create a schema validation context", in->display);
        goto out;
    }
    xmlSchemaSetValidStructuredErrors(vc, on_error, &r);
    xmlSchemaValidateSetLocator(vc, locator, &r);
    plug = xmlSchemaSAXPlug(vc, &r.pc->sax, &r.pc->userData);
    if (!plug) {
        werr_set(e, "%s: cannot attach the schema validator", in->display);
        goto out;
    }
    xmlParseDocument(r.pc);
    if (r.pending_pop && !r.halted && !res->structural)
        pop(&r);
    if (r.read_errno) {
        errno = r.read_errno;
        werr_sys(e, "%s: read", in->display);
        goto out;
    }
    if (r.cb_failed)
        goto out;
    if (!r.pc->wellFormed && !res->structural) {
        res->structural = true;
        report_add(rep, in->display, cur_line(&r), cur_col(&r), NULL, NULL, 0, "malformed",
                   "the document is not well-formed XML");
    }
    rc = 0;
out:
    if (plug)
        xmlSchemaSAXUnplug(plug);
    if (vc)
        xmlSchemaFreeValidCtxt(vc);
    if (r.pc)
        xmlFreeParserCtxt(r.pc);
    xmlSetStructuredErrorFunc(NULL, NULL);
    close(r.fd);
    if (r.f)
        for (size_t i = 0; i < x->cols.n; i++)
            free(r.f[i].buf);
    free(r.f);
    free(r.vals);
    free(r.rbuf);
    free(r.names);
    free(r.rmatch);
    free(r.names_v);
    free(r.cmatch);
    free(r.sumcol);
    if (r.cdoc)
        xmlFreeDoc(r.cdoc);
    return rc;
}
