/* Cases, their append-only events, references and listing indexes, on top of the store.
 * A case record is JSON (intake fields + id, state, classification, counters); every
 * write through voc_casedb_put keeps the indexes in step with the record in the same
 * transaction, so an index never points at a state the record does not have. */
#ifndef VOC_CASEDB_H
#define VOC_CASEDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* 0 and a new reference, MDB_NOTFOUND, or a store error. */
int voc_casedb_get(struct voc_txn *txn, uint64_t id, json_t **record);
/* Write `record` (its "id" field is the key). `old` is the record as it was (NULL for a
 * new case): only the index entries that changed are touched. */
int voc_casedb_put(struct voc_txn *txn, const json_t *old, const json_t *record);

int voc_casedb_event_put(struct voc_txn *txn, uint64_t id, uint32_t seq, const json_t *event);
/* All events of a case in order, as a new array. */
int voc_casedb_events(struct voc_txn *txn, uint64_t id, json_t **events);

/* References: (channel, ref) -> case id. external_id is one; e-mail Message-IDs and event
 * refs are others. */
int voc_casedb_ref_get(struct voc_txn *txn, const char *channel, const char *ref, uint64_t *id);
int voc_casedb_ref_put(struct voc_txn *txn, const char *channel, const char *ref, uint64_t id);

/* Highest case id in the store (0 when empty). */
int voc_casedb_last_id(struct voc_txn *txn, uint64_t *id);

/* Microseconds of the record's received_at (it is stored canonical). */
int64_t voc_casedb_received_us(const json_t *record);

struct voc_case_query {
    const char *state, *category, *kind, *channel, *department; /* exact; NULL = any */
    int64_t since_us;  /* inclusive; INT64_MIN = none */
    int64_t until_us;  /* exclusive; INT64_MAX = none */
    bool has_cursor;   /* continue below (cursor_received_us, cursor_id) */
    int64_t cursor_received_us;
    uint64_t cursor_id;
    size_t limit;
    size_t max_scan; /* index entries to look at before returning a short page; 0 = no cap */
    /* Further filter (role, text search, breached); NULL = accept all. */
    bool (*accept)(const json_t *record, void *arg);
    void *accept_arg;
};

struct voc_case_page {
    json_t *records; /* array, newest received first */
    bool more;       /* a next page may exist: continue from next_* */
    int64_t next_received_us;
    uint64_t next_id;
};

int voc_casedb_list(struct voc_txn *txn, const struct voc_case_query *q,
                    struct voc_case_page *page);

/* Opaque page cursor text <-> position. */
void voc_cursor_format(int64_t received_us, uint64_t id, char *buf, size_t len);
int voc_cursor_parse(const char *text, int64_t *received_us, uint64_t *id);

#endif
