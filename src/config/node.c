/*
 * node: libyaml document -> struct node tree.  Aliases are followed once by
 * libyaml's document API; we refuse documents with more than a fixed number
 * of nodes so an alias bomb in a profile cannot exhaust memory.
 */
#include "config/node.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "util/xmalloc.h"

#define NODE_MAX_DEPTH 64
#define NODE_MAX_COUNT 100000

struct build {
    yaml_document_t *doc;
    struct diags *d;
    const char *file;
    size_t count;
    bool too_big;
    bool dup;
};

static struct node *convert(struct build *b, yaml_node_t *y, int depth)
{
    struct node *n;
    if (!y || depth > NODE_MAX_DEPTH || ++b->count > NODE_MAX_COUNT) {
        b->too_big = true;
        return NULL;
    }
    n = xcalloc(1, sizeof *n);
    n->line = (int)y->start_mark.line + 1;
    n->col = (int)y->start_mark.column + 1;
    n->file = b->file;
    switch (y->type) {
    case YAML_SCALAR_NODE:
        n->kind = NODE_SCALAR;
        n->value = xstrndup((char *)y->data.scalar.value, y->data.scalar.length);
        n->quoted = y->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    y->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_NODE: {
        yaml_node_item_t *it;
        n->kind = NODE_SEQ;
        n->items = xcalloc((size_t)(y->data.sequence.items.top - y->data.sequence.items.start) + 1,
                           sizeof *n->items);
        for (it = y->data.sequence.items.start; it < y->data.sequence.items.top; it++) {
            struct node *c = convert(b, yaml_document_get_node(b->doc, *it), depth + 1);
            if (!c)
                break;
            n->items[n->n++] = c;
        }
        break;
    }
    case YAML_MAPPING_NODE: {
        yaml_node_pair_t *p;
        size_t cap = (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start) + 1;
        n->kind = NODE_MAP;
        n->items = xcalloc(cap, sizeof *n->items);
        n->keys = xcalloc(cap, sizeof *n->keys);
        n->keynodes = xcalloc(cap, sizeof *n->keynodes);
        for (p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
            struct node *k = convert(b, yaml_document_get_node(b->doc, p->key), depth + 1);
            struct node *v =
                k ? convert(b, yaml_document_get_node(b->doc, p->value), depth + 1) : NULL;
            if (!k || !v) {
                node_free(k);
                node_free(v);
                break;
            }
            const char *kname = k->kind == NODE_SCALAR ? k->value : "?";
            for (size_t j = 0; j < n->n; j++)
                if (!strcmp(n->keys[j], kname)) {
                    /* a later value would silently win: refuse instead */
                    diag_add(b->d, b->file, k->line, k->col, kname,
                             "duplicate key (first given at line %d)", n->keynodes[j]->line);
                    b->dup = true;
                }
            n->keys[n->n] = xstrdup(kname);
            n->keynodes[n->n] = k;
            n->items[n->n++] = v;
        }
        break;
    }
    default:
        n->kind = NODE_SCALAR;
        n->value = xstrdup("");
    }
    return n;
}

struct node *node_parse(const char *display, const char *text, size_t len, struct diags *d)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct node *root = NULL;
    char *file = xstrdup(display);

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        diag_add(d, display, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                 NULL, "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        free(file);
        return NULL;
    }
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (!top) {
        root = xcalloc(1, sizeof *root);
        root->kind = NODE_MAP;
        root->line = root->col = 1;
        root->file = file;
    } else {
        struct build b = {.doc = &doc, .d = d, .file = file};
        root = convert(&b, top, 0);
        if (b.dup) {
            node_free(root);
            root = NULL;
        }
        if (b.too_big) {
            diag_add(d, display, 1, 1, NULL,
                     "document too large or too deeply nested (limits: %d levels, %d nodes)",
                     NODE_MAX_DEPTH, NODE_MAX_COUNT);
            node_free(root);
            root = NULL;
        }
    }
    if (root)
        root->file_owned = file;
    else
        free(file);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return root;
}

static bool is_json_name(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && !strcasecmp(path + n - 5, ".json");
}

/*
 * A .json file is JSON, not YAML: comments, unquoted keys, single quotes,
 * trailing commas and repeated keys are errors even though YAML would take
 * them.  jansson decides (and says where); then, because jansson keeps no
 * positions, libyaml reads the same text into the tree for file:line:col
 * diagnostics.  Strict JSON is YAML but for one thing: YAML refuses tabs
 * where JSON allows them as whitespace.  A tab can only be whitespace in
 * valid JSON (inside strings it must be escaped), so tabs become spaces,
 * which keeps every position.
 */
static bool json_strict(const char *path, char *buf, size_t len, struct diags *d)
{
    json_error_t err;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        diag_add(d, path, err.line > 0 ? err.line : 1, err.column > 0 ? err.column : 1, NULL,
                 "JSON syntax error: %s (a .json file is strict JSON: no comments, quoted keys, "
                 "no trailing commas; use .yaml for YAML)",
                 err.text);
        return false;
    }
    json_decref(j);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\t')
            buf[i] = ' ';
    return true;
}

struct node *node_load(const char *path, struct diags *d)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len = 0, cap = 65536, n;
    struct node *root;
    if (!f) {
        diag_add(d, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    buf = xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            if (cap >= (16u << 20)) {
                diag_add(d, path, 0, 0, NULL, "file larger than 16 MiB");
                fclose(f);
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    fclose(f);
    if (is_json_name(path)) {
        root = json_strict(path, buf, len, d) ? node_parse(path, buf, len, d) : NULL;
    } else {
        root = node_parse(path, buf, len, d);
    }
    free(buf);
    return root;
}

void node_free(struct node *n)
{
    size_t i;
    if (!n)
        return;
    for (i = 0; i < n->n; i++) {
        node_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
        if (n->keynodes)
            node_free(n->keynodes[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->keynodes);
    free(n->value);
    free(n->file_owned);
    free(n);
}

struct node *node_get(const struct node *map, const char *key)
{
    size_t i;
    if (!map || map->kind != NODE_MAP)
        return NULL;
    for (i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

const char *node_kind_name(enum node_kind k)
{
    return k == NODE_SCALAR ? "a scalar" : k == NODE_SEQ ? "a list" : "a mapping";
}

void node_set_file(struct node *n, const char *file)
{
    if (!n)
        return;
    n->file = file;
    for (size_t i = 0; i < n->n; i++) {
        node_set_file(n->items[i], file);
        if (n->keynodes)
            node_set_file(n->keynodes[i], file);
    }
}
