/* A YAML file as a small tree of nodes that remember their line, so every later check can
 * say "file:line: ...". Anchors/aliases and tags are refused: config files do not need them
 * and they make line numbers ambiguous. */
#ifndef VOC_YAML_DOC_H
#define VOC_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

enum voc_yaml_type { VOC_YAML_SCALAR, VOC_YAML_MAP, VOC_YAML_SEQ };

struct voc_yaml_node {
    enum voc_yaml_type type;
    int line;     /* 1-based */
    char *scalar; /* SCALAR: the text */
    bool quoted;  /* SCALAR: written in quotes (so "null"/"~" are strings) */
    /* MAP: keys[i] -> values[i]; SEQ: values[i] */
    struct voc_yaml_node **keys;
    struct voc_yaml_node **values;
    size_t count;
    bool used; /* set by whoever consumed this node; unused map keys are "unknown" */
};

struct voc_yaml_doc {
    char *path;
    struct voc_yaml_node *root; /* NULL for an empty document */
};

/* Parse `path`. Syntax errors go to diag with file:line. Returns 0 or -1. */
int voc_yaml_load_file(const char *path, struct voc_yaml_doc *doc, struct voc_diag *diag);
/* Parse a string (tests); `name` is used as the file name in messages. */
int voc_yaml_load_string(const char *name, const char *text, size_t len, struct voc_yaml_doc *doc,
                         struct voc_diag *diag);
void voc_yaml_doc_free(struct voc_yaml_doc *doc);

/* MAP lookup by key; marks the key used. NULL if absent or node is not a map. */
struct voc_yaml_node *voc_yaml_get(struct voc_yaml_node *map, const char *key);
/* Is the scalar YAML's null ("", "~", "null" unquoted)? */
bool voc_yaml_is_null(const struct voc_yaml_node *node);
const char *voc_yaml_type_name(enum voc_yaml_type type);

#endif
