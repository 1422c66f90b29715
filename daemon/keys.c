#include "keys.h"

#include <string.h>

void voc_key_init(struct voc_key *k)
{
    k->len = 0;
    k->overflow = false;
}

void voc_key_bytes(struct voc_key *k, const void *p, size_t n)
{
    if (k->overflow || n > VOC_KEY_MAX - k->len) {
        k->overflow = true;
        return;
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
}

void voc_key_set_u64(void *p, uint64_t v)
{
    unsigned char *b = p;
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

void voc_key_u64(struct voc_key *k, uint64_t v)
{
    unsigned char b[8];
    voc_key_set_u64(b, v);
    voc_key_bytes(k, b, sizeof b);
}

void voc_key_u32(struct voc_key *k, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    voc_key_bytes(k, b, sizeof b);
}

void voc_key_str(struct voc_key *k, const char *s)
{
    size_t n = strlen(s);
    if (n > VOC_KEY_STR_MAX) {
        n = VOC_KEY_STR_MAX;
        /* Do not cut inside a UTF-8 sequence: back up over continuation bytes. */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    voc_key_bytes(k, s, n);
    voc_key_bytes(k, "", 1);
}

uint64_t voc_key_get_u64(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

uint32_t voc_key_get_u32(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
