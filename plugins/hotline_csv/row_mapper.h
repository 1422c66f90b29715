/* One CSV row -> one intake record (JSON text, docs/api.md), or the reason it cannot be one.
 *
 * The config maps intake fields to CSV headers (`columns: {text: 问题描述, ...}`); columns
 * not mapped go to `fields` under their header name. Times are read with the configured
 * strptime formats as wall-clock times in the configured IANA zone. Values are trimmed
 * (ASCII white space and U+3000), CRLF inside a value becomes LF, empty values are left out.
 * Pure code: no I/O. */
#ifndef VOC_HOTLINE_ROW_MAPPER_H
#define VOC_HOTLINE_ROW_MAPPER_H

#include <glib.h>
#include <stddef.h>

#include "csv_reader.h"
#include "textbuf.h"

struct voc_row_mapper_config {
    const char *const *targets; /* intake field: "text", "customer.name", "fields.x" ... */
    const char *const *headers; /* the CSV header each comes from */
    size_t count;
    const char *const *time_formats; /* NULL/0 = the defaults below */
    size_t time_format_count;
    const char *time_zone; /* IANA name, e.g. Asia/Shanghai */
    const char *channel;
};

/* Used when no time_format is configured. */
extern const char *const voc_row_mapper_default_time_formats[];

struct voc_row_mapper;

/* Is the mapping usable whatever the file (known targets, text or subject mapped, a real
 * time zone)? Returns 0, or -1 with a message in err. */
int voc_row_mapper_check(const struct voc_row_mapper_config *cfg, char *err, size_t errlen);

/* A mapper for one file, from its header row (read in `encoding`, named in messages).
 * Returns 0, or -1 with a message in err (a mapped header missing or ambiguous, out of
 * memory). The config must outlive it. */
int voc_row_mapper_new(const struct voc_row_mapper_config *cfg, const struct voc_csv_row *header,
                       enum voc_csv_encoding encoding, struct voc_row_mapper **out, char *err,
                       size_t errlen);
void voc_row_mapper_free(struct voc_row_mapper *m);
/* The header external_id comes from in this file, or NULL when it is not mapped or the file
 * has no such column (every other mapped column must be there; that one is optional, and
 * the rows then get their fallback ids, row_ids.h). */
const char *voc_row_mapper_id_column(const struct voc_row_mapper *m);

/* The intake record for a data row (appended to json), or why not (appended to reason).
 * `fallback_id` (JSON-safe text, e.g. from voc_row_ids_next) is the external_id when no
 * external_id column is mapped or the cell is empty. Returns 1 (record), 0 (reject),
 * -1 (out of memory). */
int voc_row_mapper_map(struct voc_row_mapper *m, const struct voc_csv_row *row,
                       const char *fallback_id, struct voc_textbuf *json,
                       struct voc_textbuf *reason);

/* The rejects file: a header line ("line,reason,<the file's headers>") and one line per
 * rejected row (its line number, the reason, then its fields; a row that could not be split
 * into fields gets its whole text, as UTF-8, in one field). CRLF line ends, as Excel writes. */
void voc_row_mapper_reject_header(const struct voc_row_mapper *m, struct voc_textbuf *out);
void voc_rejects_line(const struct voc_csv_row *row, enum voc_csv_encoding enc, const char *reason,
                      struct voc_textbuf *out);

/* "2026-03-05 09:07" in zone -> "2026-03-05T09:07:00+08:00" (out: 32+ bytes).
 * Returns 0, or -1 when no format matches or the date does not exist. */
int voc_hotline_parse_time(const char *text, const char *const *formats, size_t nformats,
                           GTimeZone *tz, char *out, size_t outlen);

#endif
