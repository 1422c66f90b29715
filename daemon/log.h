/* One line per event on stderr: `LEVEL component: message key=value ...`.
 * Safe to call from any thread: each line is formatted in full and written with
 * one write(2), so lines from the writer thread never interleave with the loop's. */
#ifndef VOC_LOG_H
#define VOC_LOG_H

enum voc_log_level { VOC_LOG_DEBUG, VOC_LOG_INFO, VOC_LOG_WARN, VOC_LOG_ERROR };

/* Set the lowest level that is written. */
void voc_log_set_level(enum voc_log_level level);
enum voc_log_level voc_log_get_level(void);
/* Parse "debug" | "info" | "warn" | "error"; returns -1 if unknown. */
int voc_log_level_parse(const char *name, enum voc_log_level *out);
const char *voc_log_level_name(enum voc_log_level level);

/* `component` is a short lowercase word (store, http, writer, rules, ...).
 * `fmt` is the message followed by key=value pairs; values with spaces should be quoted
 * by the caller with %s and voc_log_quote() is not needed for plain tokens. */
void voc_log(enum voc_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define voc_debug(comp, ...) voc_log(VOC_LOG_DEBUG, comp, __VA_ARGS__)
#define voc_info(comp, ...) voc_log(VOC_LOG_INFO, comp, __VA_ARGS__)
#define voc_warn(comp, ...) voc_log(VOC_LOG_WARN, comp, __VA_ARGS__)
#define voc_error(comp, ...) voc_log(VOC_LOG_ERROR, comp, __VA_ARGS__)

#endif
