#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(target, opt, type) ((type *)((char *)(target) + (opt)->offset))
#define COUNT(target, opt) ((size_t *)((char *)(target) + (opt)->count_offset))

int voc_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t factor;
    } units[] = {
        {"", 1},           {"B", 1},
        {"K", 1000},       {"KB", 1000},           {"KiB", 1024},
        {"M", 1000000},    {"MB", 1000000},        {"MiB", 1024 * 1024},
        {"G", 1000000000}, {"GB", 1000000000},     {"GiB", 1024ull * 1024 * 1024},
        {"T", 1000000000000ull}, {"TB", 1000000000000ull}, {"TiB", 1024ull * 1024 * 1024 * 1024},
    };
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    double value = strtod(p, &end);
    if (errno || value < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = value * (double)units[i].factor;
            if (bytes > 1.8e19)
                return -1;
            *out = (uint64_t)bytes;
            return 0;
        }
    }
    return -1;
}

int voc_parse_duration(const char *text, double *out)
{
    const char *p = text;
    double total = 0;
    int parts = 0;
    while (*p) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        char *end;
        errno = 0;
        double value = strtod(p, &end);
        if (errno || end == p || value < 0)
            return -1;
        p = end;
        double factor;
        if (strncmp(p, "ms", 2) == 0) {
            factor = 0.001;
            p += 2;
        } else if (*p == 's') {
            factor = 1;
            p++;
        } else if (*p == 'm') {
            factor = 60;
            p++;
        } else if (*p == 'h') {
            factor = 3600;
            p++;
        } else if (*p == 'd') {
            factor = 86400;
            p++;
        } else if (*p == 'w') {
            factor = 7 * 86400;
            p++;
        } else if (*p == '\0' && parts == 0) {
            factor = 1; /* a bare number is seconds */
        } else {
            return -1;
        }
        total += value * factor;
        parts++;
    }
    if (parts == 0 || !isfinite(total))
        return -1;
    *out = total;
    return 0;
}

char *voc_path_resolve(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir || !base_dir[0])
        return strdup(path);
    size_t len = strlen(base_dir) + 1 + strlen(path) + 1;
    char *full = malloc(len);
    if (full)
        snprintf(full, len, "%s/%s", base_dir, path);
    return full;
}

static const char *type_word(enum voc_option_type type)
{
    switch (type) {
    case VOC_OPT_STRING:
    case VOC_OPT_PATH:
        return "a string";
    case VOC_OPT_INT:
        return "an integer";
    case VOC_OPT_BOOL:
        return "true or false";
    case VOC_OPT_SIZE:
        return "a size like 25MB";
    case VOC_OPT_DURATION:
        return "a duration like 30s or 24h";
    case VOC_OPT_ENUM:
        return "one of the listed words";
    case VOC_OPT_STRING_LIST:
        return "a list of strings";
    case VOC_OPT_STRING_MAP:
        return "a mapping of strings";
    case VOC_OPT_TABLE:
    case VOC_OPT_TABLE_MAP:
        return "a mapping";
    case VOC_OPT_TABLE_LIST:
        return "a list of mappings";
    }
    return "?";
}

static void join_path(char *buf, size_t len, const char *where, const char *name)
{
    if (where && where[0])
        snprintf(buf, len, "%s.%s", where, name);
    else
        snprintf(buf, len, "%s", name);
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcmp(s, yes[i]) == 0)
            return (*out = true);
    for (int i = 0; no[i]; i++)
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    return false;
}

static int apply_one(const struct voc_option *opt, struct voc_yaml_node *node, const char *text,
                     int line, void *target, const char *key, struct voc_options_ctx *ctx);

/* A scalar value given either as YAML node or (for defaults) as text. */
static int apply_scalar(const struct voc_option *opt, const char *text, int line, void *target,
                        const char *key, struct voc_options_ctx *ctx)
{
    switch (opt->type) {
    case VOC_OPT_STRING: {
        char *copy = strdup(text);
        if (!copy)
            return -1;
        free(*FIELD(target, opt, char *));
        *FIELD(target, opt, char *) = copy;
        return 0;
    }
    case VOC_OPT_PATH: {
        char *copy = voc_path_resolve(ctx->base_dir, text);
        if (!copy)
            return -1;
        free(*FIELD(target, opt, char *));
        *FIELD(target, opt, char *) = copy;
        return 0;
    }
    case VOC_OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end) {
            voc_diag_error(ctx->diag, ctx->file, line, "%s: '%s' is not an integer", key, text);
            return -1;
        }
        if (opt->min < opt->max && (v < opt->min || v > opt->max)) {
            voc_diag_error(ctx->diag, ctx->file, line, "%s: %lld is outside %lld..%lld", key, v,
                           opt->min, opt->max);
            return -1;
        }
        *FIELD(target, opt, long long) = v;
        return 0;
    }
    case VOC_OPT_BOOL:
        if (!parse_bool(text, FIELD(target, opt, bool))) {
            voc_diag_error(ctx->diag, ctx->file, line, "%s: '%s' is not true or false", key,
                           text);
            return -1;
        }
        return 0;
    case VOC_OPT_SIZE:
        if (voc_parse_size(text, FIELD(target, opt, uint64_t)) != 0) {
            voc_diag_error(ctx->diag, ctx->file, line,
                           "%s: '%s' is not a size (use e.g. 512KiB, 25MB, 1GB)", key, text);
            return -1;
        }
        return 0;
    case VOC_OPT_DURATION:
        if (voc_parse_duration(text, FIELD(target, opt, double)) != 0) {
            voc_diag_error(ctx->diag, ctx->file, line,
                           "%s: '%s' is not a duration (use e.g. 500ms, 30s, 5m, 24h, 7d)", key,
                           text);
            return -1;
        }
        return 0;
    case VOC_OPT_ENUM:
        for (int i = 0; opt->choices[i]; i++) {
            if (strcmp(opt->choices[i], text) == 0) {
                *FIELD(target, opt, int) = i;
                return 0;
            }
        }
        {
            char list[256] = "";
            for (int i = 0; opt->choices[i]; i++) {
                if (i)
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, opt->choices[i], sizeof list - strlen(list) - 1);
            }
            voc_diag_error(ctx->diag, ctx->file, line, "%s: '%s' is not one of: %s", key, text,
                           list);
        }
        return -1;
    default:
        return -1;
    }
}

static int apply_string_list(const struct voc_option *opt, struct voc_yaml_node *node,
                             void *target, const char *key, struct voc_options_ctx *ctx)
{
    char ***items = FIELD(target, opt, char **);
    size_t *count = COUNT(target, opt);
    if (node->type == VOC_YAML_SCALAR) {
        /* A single value stands for a one-item list: `to: ops@example.com`. */
        *items = calloc(1, sizeof **items);
        if (!*items || !((*items)[0] = strdup(node->scalar)))
            return -1;
        *count = 1;
        return 0;
    }
    if (node->type != VOC_YAML_SEQ) {
        voc_diag_error(ctx->diag, ctx->file, node->line, "%s must be %s", key,
                       type_word(opt->type));
        return -1;
    }
    *items = calloc(node->count ? node->count : 1, sizeof **items);
    if (!*items)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < node->count; i++) {
        struct voc_yaml_node *item = node->values[i];
        if (item->type != VOC_YAML_SCALAR) {
            voc_diag_error(ctx->diag, ctx->file, item->line, "%s[%zu] must be a string", key, i);
            rc = -1;
            continue;
        }
        (*items)[(*count)++] = strdup(item->scalar);
    }
    return rc;
}

static int apply_string_map(const struct voc_option *opt, struct voc_yaml_node *node,
                            void *target, const char *key, struct voc_options_ctx *ctx)
{
    if (node->type != VOC_YAML_MAP) {
        voc_diag_error(ctx->diag, ctx->file, node->line, "%s must be %s", key,
                       type_word(opt->type));
        return -1;
    }
    struct voc_kv **items = FIELD(target, opt, struct voc_kv *);
    size_t *count = COUNT(target, opt);
    *items = calloc(node->count ? node->count : 1, sizeof **items);
    if (!*items)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < node->count; i++) {
        node->keys[i]->used = true;
        struct voc_yaml_node *value = node->values[i];
        if (value->type != VOC_YAML_SCALAR) {
            voc_diag_error(ctx->diag, ctx->file, value->line, "%s.%s must be a string", key,
                           node->keys[i]->scalar);
            rc = -1;
            continue;
        }
        (*items)[*count].key = strdup(node->keys[i]->scalar);
        (*items)[*count].value = strdup(value->scalar);
        (*count)++;
    }
    return rc;
}

static int apply_table_list(const struct voc_option *opt, struct voc_yaml_node *node,
                            void *target, const char *key, struct voc_options_ctx *ctx)
{
    bool is_map = opt->type == VOC_OPT_TABLE_MAP;
    if (node->type != (is_map ? VOC_YAML_MAP : VOC_YAML_SEQ)) {
        voc_diag_error(ctx->diag, ctx->file, node->line, "%s must be %s", key,
                       type_word(opt->type));
        return -1;
    }
    void **items = FIELD(target, opt, void *);
    size_t *count = COUNT(target, opt);
    *items = calloc(node->count ? node->count : 1, opt->sub_size);
    if (!*items)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < node->count; i++) {
        char *element = (char *)*items + i * opt->sub_size;
        char where[256];
        if (is_map) {
            node->keys[i]->used = true;
            snprintf(where, sizeof where, "%s.%s", key, node->keys[i]->scalar);
            *(char **)element = strdup(node->keys[i]->scalar);
        } else {
            snprintf(where, sizeof where, "%s[%zu]", key, i);
        }
        (*count)++;
        struct voc_yaml_node *value = node->values[i];
        if (value->type != VOC_YAML_MAP) {
            voc_diag_error(ctx->diag, ctx->file, value->line, "%s must be a mapping", where);
            rc = -1;
            continue;
        }
        if (voc_options_apply(opt->sub, value, element, where, NULL, ctx) != 0)
            rc = -1;
    }
    return rc;
}

static int apply_one(const struct voc_option *opt, struct voc_yaml_node *node, const char *text,
                     int line, void *target, const char *key, struct voc_options_ctx *ctx)
{
    if (!node && opt->type == VOC_OPT_STRING_LIST) {
        /* A default for a list is its single item. */
        char ***items = FIELD(target, opt, char **);
        *items = calloc(1, sizeof **items);
        if (!*items || !((*items)[0] = strdup(text)))
            return -1;
        *COUNT(target, opt) = 1;
        return 0;
    }
    if (!node && opt->type >= VOC_OPT_STRING_MAP)
        return 0; /* maps and sections have no textual default (see <vocd/plugin.h>) */
    switch (opt->type) {
    case VOC_OPT_STRING_LIST:
        return apply_string_list(opt, node, target, key, ctx);
    case VOC_OPT_STRING_MAP:
        return apply_string_map(opt, node, target, key, ctx);
    case VOC_OPT_TABLE:
        if (node->type != VOC_YAML_MAP) {
            voc_diag_error(ctx->diag, ctx->file, node->line, "%s must be a mapping", key);
            return -1;
        }
        return voc_options_apply(opt->sub, node, (char *)target + opt->offset, key, NULL, ctx);
    case VOC_OPT_TABLE_LIST:
    case VOC_OPT_TABLE_MAP:
        return apply_table_list(opt, node, target, key, ctx);
    default:
        if (node && node->type != VOC_YAML_SCALAR) {
            voc_diag_error(ctx->diag, ctx->file, node->line, "%s must be %s, not %s", key,
                           type_word(opt->type), voc_yaml_type_name(node->type));
            return -1;
        }
        return apply_scalar(opt, node ? node->scalar : text, node ? node->line : line, target,
                            key, ctx);
    }
}

static bool in_list(const char *const *list, const char *word)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], word) == 0)
            return true;
    return false;
}

int voc_options_apply(const struct voc_option *table, struct voc_yaml_node *map, void *target,
                      const char *where, const char *const *skip, struct voc_options_ctx *ctx)
{
    int rc = 0;
    int map_line = map ? map->line : 0;
    for (const struct voc_option *opt = table; opt->name; opt++) {
        char key[256];
        join_path(key, sizeof key, where, opt->name);
        struct voc_yaml_node *node = voc_yaml_get(map, opt->name);
        if (node && voc_yaml_is_null(node) && opt->type != VOC_OPT_STRING)
            node = NULL; /* `key:` with nothing = take the default */
        if (node) {
            if (apply_one(opt, node, NULL, 0, target, key, ctx) != 0)
                rc = -1;
        } else if (opt->type == VOC_OPT_TABLE) {
            /* Nested sections exist even when absent so their defaults apply. */
            if (voc_options_apply(opt->sub, NULL, (char *)target + opt->offset, key, NULL, ctx))
                rc = -1;
        } else if (opt->flags & VOC_OPT_REQUIRED) {
            voc_diag_error(ctx->diag, ctx->file, map_line, "%s is required", key);
            rc = -1;
        } else if (opt->default_value) {
            if (apply_one(opt, NULL, opt->default_value, map_line, target, key, ctx) != 0)
                rc = -1;
        }
    }
    if (!map)
        return rc;
    for (size_t i = 0; i < map->count; i++) {
        struct voc_yaml_node *k = map->keys[i];
        if (k->used || in_list(skip, k->scalar))
            continue;
        char key[256];
        join_path(key, sizeof key, where, k->scalar);
        /* Suggest the option the user probably meant: same first letter and length +-2. */
        const char *hint = NULL;
        for (const struct voc_option *opt = table; opt->name; opt++) {
            size_t a = strlen(opt->name), b = strlen(k->scalar);
            if (opt->name[0] == k->scalar[0] && (a > b ? a - b : b - a) <= 2) {
                hint = opt->name;
                break;
            }
        }
        if (hint)
            voc_diag_error(ctx->diag, ctx->file, k->line, "unknown key '%s' (did you mean '%s'?)",
                           key, hint);
        else
            voc_diag_error(ctx->diag, ctx->file, k->line, "unknown key '%s'", key);
        rc = -1;
    }
    return rc;
}

void voc_options_free(const struct voc_option *table, void *target)
{
    for (const struct voc_option *opt = table; opt->name; opt++) {
        switch (opt->type) {
        case VOC_OPT_STRING:
        case VOC_OPT_PATH:
            free(*FIELD(target, opt, char *));
            *FIELD(target, opt, char *) = NULL;
            break;
        case VOC_OPT_STRING_LIST: {
            char **items = *FIELD(target, opt, char **);
            for (size_t i = 0; items && i < *COUNT(target, opt); i++)
                free(items[i]);
            free(items);
            *FIELD(target, opt, char **) = NULL;
            *COUNT(target, opt) = 0;
            break;
        }
        case VOC_OPT_STRING_MAP: {
            struct voc_kv *items = *FIELD(target, opt, struct voc_kv *);
            for (size_t i = 0; items && i < *COUNT(target, opt); i++) {
                free(items[i].key);
                free(items[i].value);
            }
            free(items);
            *FIELD(target, opt, struct voc_kv *) = NULL;
            *COUNT(target, opt) = 0;
            break;
        }
        case VOC_OPT_TABLE:
            voc_options_free(opt->sub, (char *)target + opt->offset);
            break;
        case VOC_OPT_TABLE_LIST:
        case VOC_OPT_TABLE_MAP: {
            char *items = *FIELD(target, opt, char *);
            for (size_t i = 0; items && i < *COUNT(target, opt); i++) {
                char *element = items + i * opt->sub_size;
                if (opt->type == VOC_OPT_TABLE_MAP)
                    free(*(char **)element);
                voc_options_free(opt->sub, element);
            }
            free(items);
            *FIELD(target, opt, char *) = NULL;
            *COUNT(target, opt) = 0;
            break;
        }
        default:
            break;
        }
    }
}

static const char *describe_type(const struct voc_option *opt)
{
    switch (opt->type) {
    case VOC_OPT_STRING:
        return "string";
    case VOC_OPT_PATH:
        return "path";
    case VOC_OPT_INT:
        return "integer";
    case VOC_OPT_BOOL:
        return "boolean";
    case VOC_OPT_SIZE:
        return "size";
    case VOC_OPT_DURATION:
        return "duration";
    case VOC_OPT_ENUM:
        return "word";
    case VOC_OPT_STRING_LIST:
        return "list of strings";
    case VOC_OPT_STRING_MAP:
        return "mapping of strings";
    case VOC_OPT_TABLE:
        return "section";
    case VOC_OPT_TABLE_LIST:
        return "list of sections";
    case VOC_OPT_TABLE_MAP:
        return "named sections";
    }
    return "?";
}

void voc_options_describe(const struct voc_option *table, const char *prefix, FILE *out)
{
    for (const struct voc_option *opt = table; opt->name; opt++) {
        char key[256];
        join_path(key, sizeof key, prefix, opt->name);
        char def[128] = "";
        if (opt->flags & VOC_OPT_REQUIRED)
            snprintf(def, sizeof def, "required");
        else if (opt->default_value)
            snprintf(def, sizeof def, "`%s`", opt->default_value);
        fprintf(out, "| `%s` | %s | %s | ", key, describe_type(opt), def);
        /* A '|' in the help would end the Markdown cell. */
        for (const char *h = opt->help ? opt->help : ""; *h; h++) {
            if (*h == '|')
                fputc('\\', out);
            fputc(*h, out);
        }
        if (opt->type == VOC_OPT_ENUM) {
            fprintf(out, " (");
            for (int i = 0; opt->choices[i]; i++)
                fprintf(out, "%s`%s`", i ? ", " : "", opt->choices[i]);
            fprintf(out, ")");
        }
        if (opt->type == VOC_OPT_INT && opt->min < opt->max)
            fprintf(out, " (%lld..%lld)", opt->min, opt->max);
        fprintf(out, " |\n");
        if (opt->sub) {
            char sub[300];
            if (opt->type == VOC_OPT_TABLE_LIST)
                snprintf(sub, sizeof sub, "%s[]", key);
            else if (opt->type == VOC_OPT_TABLE_MAP)
                snprintf(sub, sizeof sub, "%s.NAME", key);
            else
                snprintf(sub, sizeof sub, "%s", key);
            voc_options_describe(opt->sub, sub, out);
        }
    }
}
