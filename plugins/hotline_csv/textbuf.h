/* A growable byte buffer and the two text encodings the hotline_csv plugin writes: JSON
 * strings (the intake record it submits) and CSV fields (the rejects file). */
#ifndef VOC_HOTLINE_TEXTBUF_H
#define VOC_HOTLINE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct voc_textbuf {
    char *data; /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    bool failed; /* sticky: an allocation failed, the content is incomplete */
};

void voc_textbuf_init(struct voc_textbuf *b);
void voc_textbuf_free(struct voc_textbuf *b);
/* Empty it, keeping the allocation. */
void voc_textbuf_reset(struct voc_textbuf *b);
/* Make room for n more bytes. Returns 0 or -1 (and sets failed). */
int voc_textbuf_reserve(struct voc_textbuf *b, size_t n);
void voc_textbuf_add(struct voc_textbuf *b, const void *s, size_t n);
void voc_textbuf_adds(struct voc_textbuf *b, const char *s);
void voc_textbuf_addc(struct voc_textbuf *b, char c);
void voc_textbuf_printf(struct voc_textbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* s (valid UTF-8) as a JSON string literal, quotes included. */
void voc_textbuf_json_string(struct voc_textbuf *b, const char *s, size_t n);
/* One CSV field, always quoted (RFC 4180: inner quotes doubled). */
void voc_textbuf_csv_field(struct voc_textbuf *b, const char *s, size_t n);

#endif
