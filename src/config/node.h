/*
 * node: a YAML or JSON document as a small tree that remembers where each
 * node came from, so every error can name file:line:column.  Loaded with
 * libyaml's document API; a file named *.json must first be strict JSON
 * (jansson), since YAML would accept comments and unquoted keys.
 *
 * Ownership: node_load returns a tree the caller frees with node_free.
 */
#ifndef WHARF_NODE_H
#define WHARF_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/diag.h"

enum node_kind { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct node {
    enum node_kind kind;
    char *value;            /* scalar text */
    bool quoted;            /* scalar was quoted (so "123" is a string) */
    size_t n;               /* children of a seq or map */
    struct node **items;    /* seq items or map values */
    char **keys;            /* map keys */
    struct node **keynodes; /* map key nodes, for positions */
    int line, col;          /* 1-based */
    const char *file;       /* shared, owned by the root */
    char *file_owned;
};

/* Parse a file (strict JSON when its name ends in .json, else YAML).
 * Returns NULL and adds a diag on a syntax error.  An empty YAML document
 * gives an empty map. */
struct node *node_load(const char *path, struct diags *d);
struct node *node_parse(const char *display, const char *text, size_t len, struct diags *d);
void node_free(struct node *n);
/* Map lookup; NULL when absent. */
struct node *node_get(const struct node *map, const char *key);
const char *node_kind_name(enum node_kind k);
/* Point every node of a subtree at file (when detaching it from its root). */
void node_set_file(struct node *n, const char *file);

#endif
