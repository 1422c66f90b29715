#include "row_ids.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Occurrences are counted by the first 64 bits of each row's SHA-256. Two different rows
 * whose hashes share those bits (odds about n^2 / 2^65) only get a higher occurrence number
 * than they would need; their ids still differ by the full hash, and the numbering is the
 * same on every reading of the file, which is all that matters. */
struct voc_row_ids {
    GChecksum *sha;
    uint64_t *keys; /* 0 = empty slot */
    uint32_t *counts;
    size_t cap, used;
};

int voc_row_ids_new(struct voc_row_ids **out)
{
    struct voc_row_ids *ids = calloc(1, sizeof *ids);
    if (!ids)
        return -1;
    ids->cap = 1024;
    ids->sha = g_checksum_new(G_CHECKSUM_SHA256);
    ids->keys = calloc(ids->cap, sizeof *ids->keys);
    ids->counts = calloc(ids->cap, sizeof *ids->counts);
    if (!ids->sha || !ids->keys || !ids->counts) {
        voc_row_ids_free(ids);
        return -1;
    }
    *out = ids;
    return 0;
}

void voc_row_ids_free(struct voc_row_ids *ids)
{
    if (!ids)
        return;
    if (ids->sha)
        g_checksum_free(ids->sha);
    free(ids->keys);
    free(ids->counts);
    free(ids);
}

static size_t slot_of(const struct voc_row_ids *ids, uint64_t key)
{
    /* The key is a hash already: its low bits spread well. */
    size_t i = (size_t)key & (ids->cap - 1);
    while (ids->keys[i] && ids->keys[i] != key)
        i = (i + 1) & (ids->cap - 1);
    return i;
}

static int grow(struct voc_row_ids *ids)
{
    size_t cap = ids->cap * 2;
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint32_t *counts = calloc(cap, sizeof *counts);
    if (!keys || !counts) {
        free(keys);
        free(counts);
        return -1;
    }
    struct voc_row_ids next = {.keys = keys, .counts = counts, .cap = cap};
    for (size_t i = 0; i < ids->cap; i++) {
        if (!ids->keys[i])
            continue;
        size_t j = slot_of(&next, ids->keys[i]);
        keys[j] = ids->keys[i];
        counts[j] = ids->counts[i];
    }
    free(ids->keys);
    free(ids->counts);
    ids->keys = keys;
    ids->counts = counts;
    ids->cap = cap;
    return 0;
}

int voc_row_ids_next(struct voc_row_ids *ids, const void *raw, size_t len, char out[VOC_ROW_ID_MAX])
{
    guint8 digest[32];
    gsize dlen = sizeof digest;
    g_checksum_reset(ids->sha);
    g_checksum_update(ids->sha, raw, (gssize)len);
    g_checksum_get_digest(ids->sha, digest, &dlen);
    if ((ids->used + 1) * 2 > ids->cap && grow(ids) != 0)
        return -1;
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | digest[i];
    if (key == 0)
        key = 1; /* 0 marks an empty slot */
    size_t slot = slot_of(ids, key);
    if (!ids->keys[slot]) {
        ids->keys[slot] = key;
        ids->used++;
    }
    uint32_t n = ++ids->counts[slot];
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "row:", 4);
    for (int i = 0; i < 32; i++) {
        out[4 + 2 * i] = hex[digest[i] >> 4];
        out[5 + 2 * i] = hex[digest[i] & 0xf];
    }
    out[68] = '\0';
    if (n > 1)
        snprintf(out + 68, VOC_ROW_ID_MAX - 68, ":%u", n);
    return 0;
}
