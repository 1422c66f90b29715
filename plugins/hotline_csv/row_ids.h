/* The external_id of a row that has no ticket number of its own: made from the row's bytes,
 * so the same row gets the same id in whatever file it turns up — a file imported while
 * still being written and imported again once finished, yesterday's export with today's
 * rows appended. Identical rows within one file stay apart by an occurrence number.
 * Pure code (GLib's SHA-256), no I/O. */
#ifndef VOC_HOTLINE_ROW_IDS_H
#define VOC_HOTLINE_ROW_IDS_H

#include <stddef.h>

/* "row:" + 64 hex digits, then ":<n>" from the second occurrence on. */
#define VOC_ROW_ID_MAX 96

/* The occurrences seen so far in one file (about 20 bytes per distinct row). */
struct voc_row_ids;

int voc_row_ids_new(struct voc_row_ids **out);
void voc_row_ids_free(struct voc_row_ids *ids);

/* The id of the next row with these raw bytes (as in the file, without its line break):
 * "row:<sha256>" the first time, "row:<sha256>:2" the second, ... Rows must be passed in
 * file order, every one of them, from the first data row on, for the numbers to come out
 * the same on every reading. Returns 0, or -1 when out of memory. */
int voc_row_ids_next(struct voc_row_ids *ids, const void *raw, size_t len,
                     char out[VOC_ROW_ID_MAX]);

#endif
