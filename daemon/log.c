#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic int current_level = VOC_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void voc_log_set_level(enum voc_log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum voc_log_level voc_log_get_level(void)
{
    return (enum voc_log_level)atomic_load(&current_level);
}

int voc_log_level_parse(const char *name, enum voc_log_level *out)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, lower[i]) == 0) {
            *out = (enum voc_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *voc_log_level_name(enum voc_log_level level)
{
    return level_names[level];
}

void voc_log(enum voc_log_level level, const char *component, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    char line[4096];
    int n = snprintf(line, sizeof line, "%s %s: ", level_names[level], component);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len >= sizeof line - 1) {
        /* Truncated: mark it so nobody mistakes a cut line for a whole one. */
        len = sizeof line - 5;
        memcpy(line + len, "...", 3);
        len += 3;
    }
    /* Embedded newlines would break "one line per event"; flatten them. */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
