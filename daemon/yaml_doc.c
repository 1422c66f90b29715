#include "yaml_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Files and documents larger than this are certainly not config; refuse before parsing. */
#define YAML_MAX_BYTES (4u << 20)
/* Depth bound so a hostile file cannot exhaust the stack of later recursive walks. */
#define YAML_MAX_DEPTH 64

static void node_free(struct voc_yaml_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->count; i++) {
        if (n->keys)
            node_free(n->keys[i]);
        node_free(n->values[i]);
    }
    free(n->keys);
    free(n->values);
    free(n->scalar);
    free(n);
}

static struct voc_yaml_node *node_new(enum voc_yaml_type type, int line)
{
    struct voc_yaml_node *n = calloc(1, sizeof *n);
    if (n) {
        n->type = type;
        n->line = line;
    }
    return n;
}

static int node_append(struct voc_yaml_node *parent, struct voc_yaml_node *key,
                       struct voc_yaml_node *value)
{
    struct voc_yaml_node **values = realloc(parent->values, (parent->count + 1) * sizeof *values);
    if (!values)
        return -1;
    parent->values = values;
    if (parent->type == VOC_YAML_MAP) {
        struct voc_yaml_node **keys = realloc(parent->keys, (parent->count + 1) * sizeof *keys);
        if (!keys)
            return -1;
        parent->keys = keys;
        parent->keys[parent->count] = key;
    }
    parent->values[parent->count++] = value;
    return 0;
}

struct builder {
    yaml_parser_t parser;
    const char *name;
    struct voc_diag *diag;
};

static struct voc_yaml_node *build_node(struct builder *b, yaml_event_t *ev, int depth);

/* Reads events until the end of the current collection and fills `n`. */
static int build_collection(struct builder *b, struct voc_yaml_node *n, int depth)
{
    yaml_event_type_t end = n->type == VOC_YAML_MAP ? YAML_MAPPING_END_EVENT
                                                    : YAML_SEQUENCE_END_EVENT;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&b->parser, &ev)) {
            voc_diag_error(b->diag, b->name, (int)b->parser.problem_mark.line + 1, "%s",
                           b->parser.problem ? b->parser.problem : "YAML syntax error");
            return -1;
        }
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return 0;
        }
        struct voc_yaml_node *key = NULL;
        if (n->type == VOC_YAML_MAP) {
            key = build_node(b, &ev, depth + 1);
            yaml_event_delete(&ev);
            if (!key)
                return -1;
            if (key->type != VOC_YAML_SCALAR) {
                voc_diag_error(b->diag, b->name, key->line, "mapping keys must be plain words");
                node_free(key);
                return -1;
            }
            for (size_t i = 0; i < n->count; i++) {
                if (strcmp(n->keys[i]->scalar, key->scalar) == 0) {
                    voc_diag_error(b->diag, b->name, key->line,
                                   "duplicate key '%s' (first at line %d)", key->scalar,
                                   n->keys[i]->line);
                    node_free(key);
                    return -1;
                }
            }
            if (!yaml_parser_parse(&b->parser, &ev)) {
                voc_diag_error(b->diag, b->name, (int)b->parser.problem_mark.line + 1, "%s",
                               b->parser.problem ? b->parser.problem : "YAML syntax error");
                node_free(key);
                return -1;
            }
        }
        struct voc_yaml_node *value = build_node(b, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!value || node_append(n, key, value) != 0) {
            node_free(key);
            node_free(value);
            return -1;
        }
    }
}

static struct voc_yaml_node *build_node(struct builder *b, yaml_event_t *ev, int depth)
{
    int line = (int)ev->start_mark.line + 1;
    if (depth > YAML_MAX_DEPTH) {
        voc_diag_error(b->diag, b->name, line, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        return NULL;
    }
    struct voc_yaml_node *n = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor) {
            voc_diag_error(b->diag, b->name, line, "anchors are not supported in config");
            return NULL;
        }
        if (ev->data.scalar.tag) {
            voc_diag_error(b->diag, b->name, line, "YAML tags (%s) are not supported in config",
                           (const char *)ev->data.scalar.tag);
            return NULL;
        }
        n = node_new(VOC_YAML_SCALAR, line);
        if (!n)
            return NULL;
        n->scalar = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        if (!n->scalar) {
            node_free(n);
            return NULL;
        }
        if (strlen(n->scalar) != ev->data.scalar.length) {
            voc_diag_error(b->diag, b->name, line, "NUL byte in a value");
            node_free(n);
            return NULL;
        }
        return n;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if ((ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor) ||
            (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor)) {
            voc_diag_error(b->diag, b->name, line, "anchors are not supported in config");
            return NULL;
        }
        if ((ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.tag) ||
            (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.tag)) {
            voc_diag_error(b->diag, b->name, line, "YAML tags are not supported in config");
            return NULL;
        }
        n = node_new(ev->type == YAML_MAPPING_START_EVENT ? VOC_YAML_MAP : VOC_YAML_SEQ, line);
        if (!n)
            return NULL;
        if (build_collection(b, n, depth) != 0) {
            node_free(n);
            return NULL;
        }
        return n;
    case YAML_ALIAS_EVENT:
        voc_diag_error(b->diag, b->name, line, "aliases are not supported in config");
        return NULL;
    default:
        voc_diag_error(b->diag, b->name, line, "unexpected YAML structure");
        return NULL;
    }
}

static int load_from_parser(struct builder *b, struct voc_yaml_doc *doc)
{
    int rc = -1;
    yaml_event_t ev;
    int started = 0;
    for (;;) {
        if (!yaml_parser_parse(&b->parser, &ev)) {
            voc_diag_error(b->diag, b->name, (int)b->parser.problem_mark.line + 1, "%s",
                           b->parser.problem ? b->parser.problem : "YAML syntax error");
            return -1;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (started++) {
                voc_diag_error(b->diag, b->name, (int)ev.start_mark.line + 1,
                               "only one YAML document per file");
                yaml_event_delete(&ev);
                return -1;
            }
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        default:
            doc->root = build_node(b, &ev, 0);
            if (!doc->root) {
                yaml_event_delete(&ev);
                return -1;
            }
            break;
        }
        yaml_event_delete(&ev);
    }
    return rc;
}

int voc_yaml_load_string(const char *name, const char *text, size_t len, struct voc_yaml_doc *doc,
                         struct voc_diag *diag)
{
    memset(doc, 0, sizeof *doc);
    doc->path = strdup(name);
    if (!doc->path)
        return -1;
    struct builder b = {.name = name, .diag = diag};
    if (!yaml_parser_initialize(&b.parser)) {
        voc_diag_error(diag, name, 0, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    int rc = load_from_parser(&b, doc);
    yaml_parser_delete(&b.parser);
    if (rc != 0) {
        voc_yaml_doc_free(doc);
        doc->path = NULL;
    }
    return rc;
}

int voc_yaml_load_file(const char *path, struct voc_yaml_doc *doc, struct voc_diag *diag)
{
    memset(doc, 0, sizeof *doc);
    FILE *f = fopen(path, "rb");
    if (!f) {
        voc_diag_error(diag, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *text = malloc(YAML_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, YAML_MAX_BYTES + 1, f) : 0;
    int read_failed = ferror(f);
    fclose(f);
    if (!text || read_failed) {
        voc_diag_error(diag, path, 0, "cannot read");
        free(text);
        return -1;
    }
    if (len > YAML_MAX_BYTES) {
        voc_diag_error(diag, path, 0, "larger than %u bytes", YAML_MAX_BYTES);
        free(text);
        return -1;
    }
    int rc = voc_yaml_load_string(path, text, len, doc, diag);
    free(text);
    return rc;
}

void voc_yaml_doc_free(struct voc_yaml_doc *doc)
{
    node_free(doc->root);
    free(doc->path);
    doc->root = NULL;
    doc->path = NULL;
}

struct voc_yaml_node *voc_yaml_get(struct voc_yaml_node *map, const char *key)
{
    if (!map || map->type != VOC_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++) {
        if (strcmp(map->keys[i]->scalar, key) == 0) {
            map->keys[i]->used = true;
            return map->values[i];
        }
    }
    return NULL;
}

bool voc_yaml_is_null(const struct voc_yaml_node *node)
{
    if (!node || node->type != VOC_YAML_SCALAR || node->quoted)
        return false;
    return node->scalar[0] == '\0' || strcmp(node->scalar, "~") == 0 ||
           strcmp(node->scalar, "null") == 0;
}

const char *voc_yaml_type_name(enum voc_yaml_type type)
{
    switch (type) {
    case VOC_YAML_SCALAR:
        return "a value";
    case VOC_YAML_MAP:
        return "a mapping";
    case VOC_YAML_SEQ:
        return "a list";
    }
    return "?";
}
