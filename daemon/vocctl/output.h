/* vocctl's human output: aligned tables sized to their content in terminal columns
 * (East Asian wide characters count 2), texts cut with "…", times in local time (TZ
 * respected), and a generic rendering of JSON objects for answers without a fixed layout. */
#ifndef VOC_CTL_OUTPUT_H
#define VOC_CTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Width of a UTF-8 text in terminal columns. Invalid bytes count 1. */
size_t voc_ctl_width(const char *s);
/* Copy with control characters (C0, DEL, C1) replaced by spaces, so that text from
 * customers cannot move the cursor or send escape sequences to the terminal; with
 * keep_newlines, '\n' stays. Invalid UTF-8 bytes become '?'. malloc'd, NULL when out of
 * memory. */
char *voc_ctl_clean(const char *s, bool keep_newlines);
/* Copy cut to at most `max` columns, ending in "…" when cut. malloc'd. */
char *voc_ctl_clip(const char *s, size_t max);
/* Print s and pad with spaces to `width` columns. */
void voc_ctl_pad(FILE *out, const char *s, size_t width);

enum {
    VOC_CTL_COL_RIGHT = 1, /* right-aligned (numbers) */
    VOC_CTL_COL_FLEX = 2,  /* may be narrowed (with "…") to fit the terminal */
};

struct voc_ctl_table;

/* A table with `ncols` columns named `headers`. NULL when out of memory. */
struct voc_ctl_table *voc_ctl_table_new(size_t ncols, const char *const *headers);
/* Column options: flags above, and max_width (0 = none; longer cells are cut). */
void voc_ctl_table_column(struct voc_ctl_table *t, size_t col, int flags, size_t max_width);
/* Start a row; then one voc_ctl_table_cell per column (missing cells stay empty). */
void voc_ctl_table_row(struct voc_ctl_table *t);
/* The next cell of the current row; NULL or "" prints as "-". */
void voc_ctl_table_cell(struct voc_ctl_table *t, const char *text);
void voc_ctl_table_cellf(struct voc_ctl_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t voc_ctl_table_rows(const struct voc_ctl_table *t);
/* Print header and rows, each line prefixed by `indent`. Returns 0, or -1 when a cell
 * could not be stored (out of memory), after printing that. */
int voc_ctl_table_print(struct voc_ctl_table *t, FILE *out, const char *indent);
void voc_ctl_table_free(struct voc_ctl_table *t);

/* Time flags for voc_ctl_local_time. */
enum {
    VOC_CTL_TIME_SECONDS = 1, /* HH:MM:SS instead of HH:MM */
    VOC_CTL_TIME_ZONE = 2,    /* append the UTC offset, +0800 */
};
/* An RFC 3339 time from the API as local time "YYYY-MM-DD HH:MM"; NULL gives "-", text
 * that is not a time is copied as is. */
void voc_ctl_local_time(const char *rfc3339, int flags, char *buf, size_t len);
/* Seconds as "45s", "2h 30m", "3d 4h" (the two largest units), negative with "-". */
void voc_ctl_duration(double seconds, char *buf, size_t len);
/* Bytes as "512 B", "1.2 MiB". */
void voc_ctl_bytes(double bytes, char *buf, size_t len);

/* One "label  value" line, labels padded to `label_width` columns, after `indent`. */
void voc_ctl_kv(FILE *out, const char *indent, size_t label_width, const char *label,
                const char *value);

/* A JSON value as one line of text: strings cleaned (times in local time), numbers,
 * yes/no, null as "-", arrays of scalars joined with ", ", anything else compact JSON.
 * A number under a key ending in "_s" is a duration. malloc'd. */
char *voc_ctl_scalar(const char *key, const json_t *value);
/* A JSON answer without a fixed layout (reports, breaches): objects as aligned
 * "key: value" lines, nested objects indented, arrays of objects as tables. */
int voc_ctl_render_json(FILE *out, const json_t *value);

#endif
