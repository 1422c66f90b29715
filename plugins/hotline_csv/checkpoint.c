#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FORMAT_V1                                                                                  \
    "v1 offset=%" SCNu64 " line=%" SCNu64 " after_cr=%d rejects_len=%" SCNu64 " rows=%" SCNu64     \
    " created=%" SCNu64 " existing=%" SCNu64 " rejects=%" SCNu64 "%n"

size_t voc_csv_checkpoint_encode(const struct voc_csv_checkpoint *c, char *buf)
{
    int n = snprintf(buf, VOC_CSV_CHECKPOINT_MAX,
                     "v1 offset=%" PRIu64 " line=%" PRIu64 " after_cr=%d rejects_len=%" PRIu64
                     " rows=%" PRIu64 " created=%" PRIu64 " existing=%" PRIu64 " rejects=%" PRIu64,
                     c->pos.offset, c->pos.line, c->pos.after_cr ? 1 : 0, c->rejects_len, c->rows,
                     c->created, c->existing, c->rejects);
    return n < 0 ? 0 : (size_t)n;
}

int voc_csv_checkpoint_decode(const void *buf, size_t len, struct voc_csv_checkpoint *out)
{
    char text[VOC_CSV_CHECKPOINT_MAX];
    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, buf, len);
    text[len] = '\0';
    struct voc_csv_checkpoint c = {0};
    int after_cr = 0, used = -1;
    if (sscanf(text, FORMAT_V1, &c.pos.offset, &c.pos.line, &after_cr, &c.rejects_len, &c.rows,
               &c.created, &c.existing, &c.rejects, &used) != 8 ||
        used != (int)len || c.pos.line == 0 || (after_cr != 0 && after_cr != 1))
        return -1;
    c.pos.after_cr = after_cr == 1;
    *out = c;
    return 0;
}
