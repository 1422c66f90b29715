/* Diagnostics collected while loading config, plugins and profiles: every problem is kept
 * as "file:line: message" so `vocd --check` can print all of them, not just the first. */
#ifndef VOC_DIAG_H
#define VOC_DIAG_H

#include <stddef.h>

struct voc_diag {
    char **messages;
    size_t count;
    size_t capacity;
    size_t errors; /* messages that make the load fail (warnings do not) */
};

void voc_diag_init(struct voc_diag *d);
void voc_diag_free(struct voc_diag *d);
/* file may be NULL (no location); line 0 means "the file as a whole". */
void voc_diag_error(struct voc_diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void voc_diag_warn(struct voc_diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Append all messages of src to dst. */
void voc_diag_merge(struct voc_diag *dst, const struct voc_diag *src);
/* Log every message through voc_log (errors as ERROR, warnings as WARN). */
void voc_diag_log(const struct voc_diag *d, const char *component);

#endif
