#include "casedb.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "keys.h"
#include "timeutil.h"

/* Index keys are stored with this bias so negative times (never produced, but possible
 * from a hand-made record) still sort correctly as unsigned big-endian. */
#define TIME_BIAS ((uint64_t)1 << 63)

static uint64_t biased(int64_t us)
{
    return (uint64_t)us + TIME_BIAS;
}

int64_t voc_casedb_received_us(const json_t *record)
{
    int64_t us = 0;
    const char *s = voc_json_str(record, "received_at");
    if (s)
        voc_parse_time(s, &us);
    return us;
}

static void id_key(struct voc_key *k, uint64_t id)
{
    voc_key_init(k);
    voc_key_u64(k, id);
}

int voc_casedb_get(struct voc_txn *txn, uint64_t id, json_t **record)
{
    struct voc_key k;
    id_key(&k, id);
    MDB_val v;
    int rc = voc_txn_get(txn, VOC_DB_CASES, k.buf, k.len, &v);
    if (rc)
        return rc;
    json_error_t jerr;
    *record = json_loadb(v.mv_data, v.mv_size, 0, &jerr);
    return *record ? 0 : EILSEQ;
}

/* The index entries of a record: (db, key) pairs. */
struct index_entry {
    enum voc_db db;
    struct voc_key key;
};

#define MAX_INDEX_ENTRIES 48

static void add_entry(struct index_entry *e, size_t *n, enum voc_db db, const char *value,
                      uint64_t received, uint64_t id)
{
    if (!value || !value[0] || *n >= MAX_INDEX_ENTRIES)
        return;
    struct index_entry *x = &e[(*n)++];
    x->db = db;
    voc_key_init(&x->key);
    voc_key_str(&x->key, value);
    voc_key_u64(&x->key, received);
    voc_key_u64(&x->key, id);
}

static size_t index_entries(const json_t *record, struct index_entry *e)
{
    size_t n = 0;
    if (!record)
        return 0;
    uint64_t id = (uint64_t)voc_json_int(record, "id", 0);
    uint64_t received = biased(voc_casedb_received_us(record));
    json_t *c = json_object_get(record, "classification");
    add_entry(e, &n, VOC_DB_IDX_STATE, voc_json_str(record, "state"), received, id);
    add_entry(e, &n, VOC_DB_IDX_CHANNEL, voc_json_str(record, "channel"), received, id);
    add_entry(e, &n, VOC_DB_IDX_CATEGORY, voc_json_str(c, "category"), received, id);
    add_entry(e, &n, VOC_DB_IDX_KIND, voc_json_str(c, "kind"), received, id);
    add_entry(e, &n, VOC_DB_IDX_DEPARTMENT, voc_json_str(c, "department"), received, id);
    size_t i;
    json_t *collab;
    json_array_foreach(json_object_get(c, "collaborators"), i, collab)
        add_entry(e, &n, VOC_DB_IDX_DEPARTMENT, json_string_value(collab), received, id);
    struct index_entry *x = &e[n++];
    x->db = VOC_DB_IDX_RECEIVED;
    voc_key_init(&x->key);
    voc_key_u64(&x->key, received);
    voc_key_u64(&x->key, id);
    return n;
}

static bool has_entry(const struct index_entry *set, size_t n, const struct index_entry *e)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].db == e->db && set[i].key.len == e->key.len &&
            memcmp(set[i].key.buf, e->key.buf, e->key.len) == 0)
            return true;
    return false;
}

int voc_casedb_put(struct voc_txn *txn, const json_t *old, const json_t *record)
{
    uint64_t id = (uint64_t)voc_json_int(record, "id", 0);
    if (id == 0)
        return EINVAL;
    size_t len;
    char *text = voc_json_dump(record, &len);
    if (!text)
        return ENOMEM;
    struct voc_key k;
    id_key(&k, id);
    voc_txn_put(txn, VOC_DB_CASES, k.buf, k.len, text, len);
    free(text);

    static _Thread_local struct index_entry before[MAX_INDEX_ENTRIES + 1],
        after[MAX_INDEX_ENTRIES + 1];
    size_t nb = index_entries(old, before), na = index_entries(record, after);
    for (size_t i = 0; i < nb; i++)
        if (!has_entry(after, na, &before[i]))
            voc_txn_del(txn, before[i].db, before[i].key.buf, before[i].key.len);
    for (size_t i = 0; i < na; i++)
        if (!has_entry(before, nb, &after[i]))
            voc_txn_put(txn, after[i].db, after[i].key.buf, after[i].key.len, "", 0);
    return txn->error;
}

int voc_casedb_event_put(struct voc_txn *txn, uint64_t id, uint32_t seq, const json_t *event)
{
    size_t len;
    char *text = voc_json_dump(event, &len);
    if (!text)
        return ENOMEM;
    struct voc_key k;
    id_key(&k, id);
    voc_key_u32(&k, seq);
    int rc = voc_txn_put(txn, VOC_DB_EVENTS, k.buf, k.len, text, len);
    free(text);
    return rc;
}

static int collect_event(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)key;
    json_error_t jerr;
    json_t *event = json_loadb(val->mv_data, val->mv_size, 0, &jerr);
    if (!event)
        return -EILSEQ;
    json_array_append_new(arg, event);
    return 0;
}

int voc_casedb_events(struct voc_txn *txn, uint64_t id, json_t **events)
{
    struct voc_key k;
    id_key(&k, id);
    *events = json_array();
    int rc = voc_txn_scan(txn, VOC_DB_EVENTS, k.buf, k.len, NULL, 0, NULL, 0, false,
                          collect_event, *events);
    if (rc) {
        json_decref(*events);
        *events = NULL;
        return rc < 0 ? -rc : rc;
    }
    return 0;
}

static void ref_key(struct voc_key *k, const char *channel, const char *ref)
{
    voc_key_init(k);
    voc_key_str(k, channel);
    /* References longer than a key can hold are hashed by nobody: they are cut like index
     * strings, and the API limits external_id to 256 bytes so this never bites there. */
    voc_key_str(k, ref);
}

int voc_casedb_ref_get(struct voc_txn *txn, const char *channel, const char *ref, uint64_t *id)
{
    struct voc_key k;
    ref_key(&k, channel, ref);
    MDB_val v;
    int rc = voc_txn_get(txn, VOC_DB_REFS, k.buf, k.len, &v);
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return EILSEQ;
    *id = voc_key_get_u64(v.mv_data);
    return 0;
}

int voc_casedb_ref_put(struct voc_txn *txn, const char *channel, const char *ref, uint64_t id)
{
    struct voc_key k;
    ref_key(&k, channel, ref);
    unsigned char v[8];
    voc_key_set_u64(v, id);
    return voc_txn_put(txn, VOC_DB_REFS, k.buf, k.len, v, sizeof v);
}

int voc_casedb_last_id(struct voc_txn *txn, uint64_t *id)
{
    MDB_val k, v;
    int rc = voc_txn_last(txn, VOC_DB_CASES, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *id = 0;
        return 0;
    }
    if (rc)
        return rc;
    *id = k.mv_size == 8 ? voc_key_get_u64(k.mv_data) : 0;
    return 0;
}

void voc_cursor_format(int64_t received_us, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIx64 "-%" PRIx64, biased(received_us), id);
}

int voc_cursor_parse(const char *text, int64_t *received_us, uint64_t *id)
{
    char *dash;
    errno = 0;
    unsigned long long r = strtoull(text, &dash, 16);
    if (errno || dash == text || *dash != '-')
        return -1;
    char *end;
    unsigned long long i = strtoull(dash + 1, &end, 16);
    if (errno || end == dash + 1 || *end)
        return -1;
    *received_us = (int64_t)(r - TIME_BIAS);
    *id = i;
    return 0;
}

struct list_state {
    struct voc_txn *txn;
    const struct voc_case_query *q;
    struct voc_case_page *page;
    size_t prefix_len;
    size_t scanned;
    bool page_full;
    int error;
};

static bool field_matches(const json_t *obj, const char *key, const char *want)
{
    if (!want)
        return true;
    const char *have = voc_json_str(obj, key);
    return have && strcmp(have, want) == 0;
}

static bool department_matches(const json_t *c, const char *want)
{
    if (!want || field_matches(c, "department", want))
        return true;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(c, "collaborators"), i, d)
        if (json_is_string(d) && strcmp(json_string_value(d), want) == 0)
            return true;
    return false;
}

static int list_visit(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    struct list_state *s = arg;
    const struct voc_case_query *q = s->q;
    const unsigned char *tail = (const unsigned char *)key->mv_data + key->mv_size - 16;
    uint64_t received = voc_key_get_u64(tail);
    uint64_t id = voc_key_get_u64(tail + 8);
    if (json_array_size(s->page->records) == q->limit) {
        /* The page is full and the index goes on: the next page starts after its last. */
        s->page_full = true;
        return 1;
    }
    if (q->max_scan && s->scanned++ >= q->max_scan) {
        s->page->more = true;
        return 1;
    }
    /* Where the next page starts if we stop after this entry. */
    s->page->next_received_us = (int64_t)(received - TIME_BIAS);
    s->page->next_id = id;
    json_t *record;
    int rc = voc_casedb_get(s->txn, id, &record);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc) {
        s->error = rc;
        return -1;
    }
    json_t *c = json_object_get(record, "classification");
    bool ok = field_matches(record, "state", q->state) &&
              field_matches(record, "channel", q->channel) &&
              field_matches(c, "category", q->category) && field_matches(c, "kind", q->kind) &&
              department_matches(c, q->department) &&
              (!q->accept || q->accept(record, q->accept_arg));
    if (ok)
        json_array_append_new(s->page->records, record);
    else
        json_decref(record);
    return 0;
}

int voc_casedb_list(struct voc_txn *txn, const struct voc_case_query *q,
                    struct voc_case_page *page)
{
    memset(page, 0, sizeof *page);
    page->records = json_array();
    /* Scan the most selective index we have a value for; the others are checked on the
     * record. Within one index value, keys run by received time, so since/until and the
     * cursor are a key range. */
    enum voc_db db = VOC_DB_IDX_RECEIVED;
    const char *value = NULL;
    if (q->department) {
        db = VOC_DB_IDX_DEPARTMENT;
        value = q->department;
    } else if (q->category) {
        db = VOC_DB_IDX_CATEGORY;
        value = q->category;
    } else if (q->state) {
        db = VOC_DB_IDX_STATE;
        value = q->state;
    } else if (q->kind) {
        db = VOC_DB_IDX_KIND;
        value = q->kind;
    } else if (q->channel) {
        db = VOC_DB_IDX_CHANNEL;
        value = q->channel;
    }
    struct voc_key prefix;
    voc_key_init(&prefix);
    if (value)
        voc_key_str(&prefix, value);

    unsigned char from[8], to[16];
    size_t tlen = 0;
    bool has_from = q->since_us != INT64_MIN;
    if (has_from)
        voc_key_set_u64(from, biased(q->since_us));
    if (q->has_cursor) {
        voc_key_set_u64(to, biased(q->cursor_received_us));
        voc_key_set_u64(to + 8, q->cursor_id);
        tlen = 16;
        if (q->until_us != INT64_MAX && q->until_us < q->cursor_received_us) {
            voc_key_set_u64(to, biased(q->until_us));
            tlen = 8;
        }
    } else if (q->until_us != INT64_MAX) {
        voc_key_set_u64(to, biased(q->until_us));
        tlen = 8;
    }
    struct list_state s = {.txn = txn, .q = q, .page = page, .prefix_len = prefix.len};
    int rc = voc_txn_scan(txn, db, prefix.buf, prefix.len, has_from ? from : NULL, 8,
                          tlen ? to : NULL, tlen, true, list_visit, &s);
    if (s.error || rc) {
        json_decref(page->records);
        page->records = NULL;
        return s.error ? s.error : (rc < 0 ? EIO : rc);
    }
    if (s.page_full) {
        page->more = true;
        json_t *last = json_array_get(page->records, q->limit - 1);
        page->next_received_us = voc_casedb_received_us(last);
        page->next_id = (uint64_t)voc_json_int(last, "id", 0);
    }
    return 0;
}
