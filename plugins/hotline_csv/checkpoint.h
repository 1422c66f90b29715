/* The progress record of one file import, stored as plugin state (key "file/<sha256>") in
 * the same LMDB transaction as the cases of its rows.
 *
 * It names a point in the file before which every row has a durable outcome: its case is
 * committed, or its line in the rejects file is on disk (the rejects file's length at that
 * point is kept, so a restart cuts off lines written after it). Text, so that
 * `mdb_dump` shows something a person can read. */
#ifndef VOC_HOTLINE_CHECKPOINT_H
#define VOC_HOTLINE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "csv_reader.h"

struct voc_csv_checkpoint {
    struct voc_csv_pos pos; /* resume reading here */
    uint64_t rejects_len;   /* bytes of the rejects file that belong before pos */
    uint64_t rows;          /* data rows before pos ... */
    uint64_t created;       /* ... that made a new case */
    uint64_t existing;      /* ... whose case was there already (same external_id) */
    uint64_t rejects;       /* ... that went to the rejects file */
};

#define VOC_CSV_CHECKPOINT_MAX 256

/* Into buf (VOC_CSV_CHECKPOINT_MAX bytes); returns the length. */
size_t voc_csv_checkpoint_encode(const struct voc_csv_checkpoint *c, char *buf);
/* Returns 0, or -1 when buf is not a checkpoint of this version. */
int voc_csv_checkpoint_decode(const void *buf, size_t len, struct voc_csv_checkpoint *out);

#endif
