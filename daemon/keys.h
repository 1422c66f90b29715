/* Composite LMDB keys built by one helper: big-endian integers (so byte order = numeric
 * order) and NUL-terminated strings (so "ab" sorts before "abc\0..." and a prefix scan on
 * "ab\0" never matches "abc"). */
#ifndef VOC_KEYS_H
#define VOC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LMDB's default maximum key size. */
#define VOC_KEY_MAX 511
/* Strings in index keys are cut (at a UTF-8 boundary) to this many bytes; readers that
 * need the exact value compare against the record. */
#define VOC_KEY_STR_MAX 400

struct voc_key {
    unsigned char buf[VOC_KEY_MAX];
    size_t len;
    bool overflow; /* something did not fit: do not use the key */
};

void voc_key_init(struct voc_key *k);
void voc_key_u64(struct voc_key *k, uint64_t v);
void voc_key_u32(struct voc_key *k, uint32_t v);
/* Appends s (cut to VOC_KEY_STR_MAX) and a NUL. */
void voc_key_str(struct voc_key *k, const char *s);
void voc_key_bytes(struct voc_key *k, const void *p, size_t n);

uint64_t voc_key_get_u64(const void *p);
uint32_t voc_key_get_u32(const void *p);
void voc_key_set_u64(void *p, uint64_t v);

#endif
