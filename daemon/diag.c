#include "diag.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void voc_diag_init(struct voc_diag *d)
{
    memset(d, 0, sizeof *d);
}

void voc_diag_free(struct voc_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->messages[i]);
    free(d->messages);
    memset(d, 0, sizeof *d);
}

static void diag_push(struct voc_diag *d, char *msg)
{
    if (d->count == d->capacity) {
        size_t cap = d->capacity ? d->capacity * 2 : 8;
        char **grown = realloc(d->messages, cap * sizeof *grown);
        if (!grown) {
            free(msg);
            return;
        }
        d->messages = grown;
        d->capacity = cap;
    }
    d->messages[d->count++] = msg;
}

static void diag_add(struct voc_diag *d, int is_error, const char *file, int line, const char *fmt,
                     va_list ap)
{
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    char prefix[512] = "";
    if (file && line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", file, line);
    else if (file)
        snprintf(prefix, sizeof prefix, "%s: ", file);
    size_t len = strlen(prefix) + strlen(is_error ? "" : "warning: ") + strlen(body) + 1;
    char *msg = malloc(len);
    if (!msg)
        return;
    snprintf(msg, len, "%s%s%s", prefix, is_error ? "" : "warning: ", body);
    diag_push(d, msg);
    if (is_error)
        d->errors++;
}

void voc_diag_error(struct voc_diag *d, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, 1, file, line, fmt, ap);
    va_end(ap);
}

void voc_diag_warn(struct voc_diag *d, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, 0, file, line, fmt, ap);
    va_end(ap);
}

void voc_diag_merge(struct voc_diag *dst, const struct voc_diag *src)
{
    for (size_t i = 0; i < src->count; i++) {
        char *copy = strdup(src->messages[i]);
        if (copy)
            diag_push(dst, copy);
    }
    dst->errors += src->errors;
}

void voc_diag_log(const struct voc_diag *d, const char *component)
{
    for (size_t i = 0; i < d->count; i++) {
        int warning = strstr(d->messages[i], "warning: ") != NULL;
        voc_log(warning ? VOC_LOG_WARN : VOC_LOG_ERROR, component, "%s", d->messages[i]);
    }
}
