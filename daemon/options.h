/* Declarative option tables (struct voc_option, <vocd/plugin.h>): one table per config
 * section fills a plain struct, so validation, defaults, `--check` and the docs all come
 * from the same place. Used for the core's own sections and for every plugin's section. */
#ifndef VOC_OPTIONS_H
#define VOC_OPTIONS_H

#include <stdint.h>
#include <stdio.h>
#include <vocd/plugin.h>

#include "diag.h"
#include "yaml_doc.h"

struct voc_options_ctx {
    const char *file;     /* for messages */
    const char *base_dir; /* PATH options are resolved against it */
    struct voc_diag *diag;
};

/* Fill `target` (zeroed by the caller) from the mapping `map` (may be NULL: defaults only).
 * Unknown keys, wrong types and missing required keys are errors in ctx->diag, with the
 * dotted key path `where` as prefix ("plugins[0].sources[1].secret"). Keys named in
 * `skip` (NULL-terminated, may be NULL) are left for the caller. Returns 0 or -1. */
int voc_options_apply(const struct voc_option *table, struct voc_yaml_node *map, void *target,
                      const char *where, const char *const *skip, struct voc_options_ctx *ctx);
/* Free everything voc_options_apply allocated inside target (not target itself). */
void voc_options_free(const struct voc_option *table, void *target);

/* Print the table as Markdown rows `| key | type | default | help |`, nested sections with
 * dotted keys under `prefix` — the reference in docs/configuration.md is this output. */
void voc_options_describe(const struct voc_option *table, const char *prefix, FILE *out);

/* "25MB", "512KiB", "1GB", "1024" -> bytes. Returns 0 or -1. */
int voc_parse_size(const char *text, uint64_t *out);
/* "500ms", "30s", "5m", "24h", "7d", "1h30m", "90" (seconds) -> seconds. Returns 0 or -1. */
int voc_parse_duration(const char *text, double *out);
/* Resolve `path` against `base_dir` unless absolute. Returns a malloc'd string. */
char *voc_path_resolve(const char *base_dir, const char *path);

#endif
