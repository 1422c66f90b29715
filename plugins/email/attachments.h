/* Content-addressed attachment store: <root>/ab/cdef… named by the SHA-256 of the content.
 * A file is written to a temporary name, fsync'ed and renamed, and its folder fsync'ed,
 * before the put returns: a case that is made durable after the put never points at a
 * missing or half-written file. The same content is stored once. */
#ifndef VOC_ATTACHMENTS_H
#define VOC_ATTACHMENTS_H

#include <stdbool.h>
#include <stddef.h>

/* Create root (and its parents) if missing. Returns 0, or -1 with errno set. */
int voc_attach_init(const char *root);

/* Store `len` bytes. Fills hex (65 bytes: 64 hex digits + NUL). *stored (may be NULL)
 * says whether a new file was written (false: the content was already there). Returns 0,
 * or -1 with errno set (ENOSPC, EDQUOT, EIO ...) and a reason in err. */
int voc_attach_put(const char *root, const void *data, size_t len, char hex[65], bool *stored,
                   char *err, size_t errlen);

/* The path a stored hash lives at. Returns 0, or -1 when buf is too small or hex is not 64
 * hex digits. */
int voc_attach_path(const char *root, const char *hex, char *buf, size_t buflen);

#endif
