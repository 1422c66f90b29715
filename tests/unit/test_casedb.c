/* The case database (daemon/casedb.[ch]) on a temporary store: records, events in order,
 * references, index maintenance when a case changes, and list paging over ~500 cases
 * compared with a brute-force filter of the same records. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "casedb.h"
#include "keys.h"
#include "timeutil.h"

#include <check.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char tmp_dir[PATH_MAX];
static struct voc_store *store;

static void setup(void)
{
    char dir[] = "/tmp/voc-casedb-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
    struct voc_store_options opts = {.path = tmp_dir};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &opts, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    voc_store_close(store);
    store = NULL;
    voc_test_rm_rf(tmp_dir);
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    ck_assert_msg(v != NULL, "bad JSON in test: %s", jerr.text);
    return v;
}

/* Number of keys under (value, received, id) in an index, found by a prefix scan. */
static int count_cb(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)key;
    (void)val;
    (*(int *)arg)++;
    return 0;
}

static int index_count(struct voc_txn *txn, enum voc_db db, const char *value)
{
    struct voc_key k;
    voc_key_init(&k);
    if (value)
        voc_key_str(&k, value);
    int n = 0;
    ck_assert_int_eq(voc_txn_scan(txn, db, k.buf, k.len, NULL, 0, NULL, 0, false, count_cb, &n), 0);
    return n;
}

START_TEST(records_events_refs)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    uint64_t last = 99;
    ck_assert_int_eq(voc_casedb_last_id(&txn, &last), 0);
    ck_assert_uint_eq(last, 0);
    json_t *rec = parse("{\"id\": 7, \"state\": \"new\", \"channel\": \"hotline\", "
                        "\"received_at\": \"2026-11-23T01:15:00.000Z\", \"text\": \"坏了\"}");
    ck_assert_int_eq(voc_casedb_put(&txn, NULL, rec), 0);
    json_t *no_id = parse("{\"state\": \"new\"}");
    ck_assert_int_ne(voc_casedb_put(&txn, NULL, no_id), 0);
    json_decref(no_id);
    /* Events are kept in seq order whatever order they are written in (big-endian seq). */
    static const uint32_t seqs[] = {3, 1, 256, 2, 255};
    for (int i = 0; i < 5; i++) {
        json_t *e = json_pack("{s:s, s:i}", "type", "note", "seq", (int)seqs[i]);
        ck_assert_int_eq(voc_casedb_event_put(&txn, 7, seqs[i], e), 0);
        json_decref(e);
    }
    json_t *other = json_pack("{s:s}", "type", "received");
    voc_casedb_event_put(&txn, 8, 1, other); /* another case's event stays out */
    json_decref(other);
    ck_assert_int_eq(voc_casedb_ref_put(&txn, "email", "<a@b>", 7), 0);
    ck_assert_int_eq(voc_casedb_ref_put(&txn, "hotline", "<a@b>", 9), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);

    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    json_t *back = NULL;
    ck_assert_int_eq(voc_casedb_get(&txn, 7, &back), 0);
    ck_assert(json_equal(back, rec));
    json_decref(back);
    ck_assert_int_eq(voc_casedb_get(&txn, 8, &back), MDB_NOTFOUND);
    json_t *events = NULL;
    ck_assert_int_eq(voc_casedb_events(&txn, 7, &events), 0);
    ck_assert_uint_eq(json_array_size(events), 5);
    static const int order[] = {1, 2, 3, 255, 256};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(events, i), "seq")),
                         order[i]);
    json_decref(events);
    ck_assert_int_eq(voc_casedb_events(&txn, 99, &events), 0);
    ck_assert_uint_eq(json_array_size(events), 0);
    json_decref(events);

    uint64_t id = 0;
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", "<a@b>", &id), 0);
    ck_assert_uint_eq(id, 7);
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "hotline", "<a@b>", &id), 0);
    ck_assert_uint_eq(id, 9); /* namespaced by channel */
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", "<a@b", &id), MDB_NOTFOUND);
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "emai", "l<a@b>", &id), MDB_NOTFOUND);
    ck_assert_int_eq(voc_casedb_last_id(&txn, &last), 0);
    ck_assert_uint_eq(last, 7);
    ck_assert_int_eq(voc_casedb_received_us(rec), INT64_C(1795396500000000));
    voc_txn_abort(&txn);
    json_decref(rec);
}
END_TEST

START_TEST(index_maintenance)
{
    json_t *v1 = parse("{\"id\": 5, \"state\": \"new\", \"channel\": \"web\", "
                       "\"received_at\": \"2026-11-23T01:15:00.000Z\", \"classification\": "
                       "{\"kind\": \"complaint\", \"category\": \"产品质量\", \"department\": "
                       "\"质量部\", \"collaborators\": [\"生产部\", \"研发部\"]}}");
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_casedb_put(&txn, NULL, v1), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);

    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_STATE, "new"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CHANNEL, "web"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_KIND, "complaint"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CATEGORY, "产品质量"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "质量部"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "生产部"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "研发部"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_RECEIVED, NULL), 1);
    voc_txn_abort(&txn);

    /* State, category and department change; a collaborator leaves; received moves. */
    json_t *v2 = json_deep_copy(v1);
    json_object_set_new(v2, "state", json_string("assigned"));
    json_object_set_new(v2, "received_at", json_string("2026-11-24T00:00:00.000Z"));
    json_t *c = json_object_get(v2, "classification");
    json_object_set_new(c, "category", json_string("服务态度"));
    json_object_set_new(c, "department", json_string("客服部"));
    json_object_set_new(c, "collaborators", json_pack("[s]", "生产部"));
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_casedb_put(&txn, v1, v2), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);

    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_STATE, "new"), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_STATE, "assigned"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CATEGORY, "产品质量"), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CATEGORY, "服务态度"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "质量部"), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "研发部"), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "客服部"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, "生产部"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_KIND, "complaint"), 1);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CHANNEL, "web"), 1);
    /* Exactly one key per index value, at the new received time. */
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_RECEIVED, NULL), 1);
    MDB_val k, v;
    ck_assert_int_eq(voc_txn_last(&txn, VOC_DB_IDX_RECEIVED, &k, &v), 0);
    ck_assert_uint_eq(k.mv_size, 16);
    ck_assert_uint_eq(voc_key_get_u64((unsigned char *)k.mv_data + 8), 5);
    voc_txn_abort(&txn);

    /* Clearing the classification removes its index entries. */
    json_t *v3 = json_deep_copy(v2);
    json_object_set_new(v3, "classification", json_null());
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_casedb_put(&txn, v2, v3), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_DEPARTMENT, NULL), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_CATEGORY, NULL), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_KIND, NULL), 0);
    ck_assert_int_eq(index_count(&txn, VOC_DB_IDX_STATE, NULL), 1);
    voc_txn_abort(&txn);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
}
END_TEST

START_TEST(cursors)
{
    static const struct {
        int64_t us;
        uint64_t id;
    } cases[] = {
        {0, 1}, {INT64_C(1795396500123000), 42}, {-1, 7}, {INT64_MAX, UINT64_MAX}, {INT64_MIN, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        voc_cursor_format(cases[i].us, cases[i].id, buf, sizeof buf);
        int64_t us;
        uint64_t id;
        ck_assert_int_eq(voc_cursor_parse(buf, &us, &id), 0);
        ck_assert_int_eq(us, cases[i].us);
        ck_assert_uint_eq(id, cases[i].id);
    }
    static const char *const bad[] = {"",     "abc",  "-1",    "12-",
                                      "12-x", "zz-1", "1-2-3", "10000000000000000000-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        uint64_t id;
        ck_assert_msg(voc_cursor_parse(bad[i], &us, &id) == -1, "'%s' accepted", bad[i]);
    }
}
END_TEST

/* ---- listing ------------------------------------------------------------------------------ */

#define NCASES 500

static const char *const states[] = {"new", "assigned", "resolved", "closed"};
static const char *const categories[] = {"产品质量", "服务态度", "交付及时性"};
static const char *const departments[] = {"质量部", "客服部", "物流部"};
static const char *const kinds[] = {"complaint", "suggestion"};
static const char *const channels[] = {"email", "hotline", "web"};

static json_t *records[NCASES + 1]; /* by id */
static const int64_t t0 = INT64_C(1795396500000000);

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_cases(void)
{
    rng_state = 500;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    for (int id = 1; id <= NCASES; id++) {
        /* Minutes apart, with ties (several cases in the same millisecond). */
        int64_t received = t0 + (int64_t)(rng() % 200) * 60 * VOC_US_PER_S;
        char when[40];
        voc_format_time(received, when, sizeof when);
        json_t *collab = json_array();
        if (rng() % 4 == 0)
            json_array_append_new(collab, json_string(departments[rng() % 3]));
        json_t *c = json_pack("{s:s, s:s, s:s, s:o}", "kind", kinds[rng() % 2], "category",
                              categories[rng() % 3], "department", departments[rng() % 3],
                              "collaborators", collab);
        records[id] = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "id", (json_int_t)id, "state",
                                states[rng() % 4], "channel", channels[rng() % 3], "received_at",
                                when, "subject", "x", "classification", c);
        ck_assert_int_eq(voc_casedb_put(&txn, NULL, records[id]), 0);
    }
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
}

static void free_cases(void)
{
    for (int id = 1; id <= NCASES; id++) {
        json_decref(records[id]);
        records[id] = NULL;
    }
}

static bool str_is(const json_t *o, const char *key, const char *want)
{
    if (!want)
        return true;
    const char *have = json_string_value(json_object_get(o, key));
    return have && strcmp(have, want) == 0;
}

/* The oracle: does record r belong in the result of q (ignoring paging)? */
static bool oracle_match(const json_t *r, const struct voc_case_query *q)
{
    const json_t *c = json_object_get(r, "classification");
    bool dept = !q->department || str_is(c, "department", q->department);
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get(c, "collaborators"), i, d)
        dept |= strcmp(json_string_value(d), q->department ? q->department : "") == 0;
    int64_t us = voc_casedb_received_us(r);
    return str_is(r, "state", q->state) && str_is(r, "channel", q->channel) &&
           str_is(c, "category", q->category) && str_is(c, "kind", q->kind) && dept &&
           us >= q->since_us && us < q->until_us && (!q->accept || q->accept(r, q->accept_arg));
}

/* Newer first; equal times: higher id first (the index order). */
static bool before(int a, int b)
{
    int64_t ta = voc_casedb_received_us(records[a]), tb = voc_casedb_received_us(records[b]);
    return ta > tb || (ta == tb && a > b);
}

static int last_expected; /* cases the oracle found for the last check_paging */

/* Page through q with `limit`; every expected case exactly once, in order. Returns pages. */
static int check_paging(struct voc_case_query q, size_t limit, size_t max_scan)
{
    int expected[NCASES], ne = 0;
    for (int id = 1; id <= NCASES; id++)
        if (oracle_match(records[id], &q))
            expected[ne++] = id;
    for (int i = 1; i < ne; i++)
        for (int j = i; j > 0 && before(expected[j], expected[j - 1]); j--) {
            int t = expected[j];
            expected[j] = expected[j - 1];
            expected[j - 1] = t;
        }

    q.limit = limit;
    q.max_scan = max_scan;
    q.has_cursor = false;
    int got = 0, pages = 0;
    for (;;) {
        struct voc_txn txn;
        ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
        struct voc_case_page page;
        ck_assert_int_eq(voc_casedb_list(&txn, &q, &page), 0);
        voc_txn_abort(&txn);
        pages++;
        ck_assert_uint_le(json_array_size(page.records), limit);
        size_t i;
        json_t *r;
        json_array_foreach (page.records, i, r) {
            int id = (int)json_integer_value(json_object_get(r, "id"));
            ck_assert_msg(got < ne, "more cases than expected (extra id %d)", id);
            ck_assert_msg(id == expected[got], "position %d: id %d, want %d (page %d)", got, id,
                          expected[got], pages);
            got++;
        }
        json_decref(page.records);
        if (!page.more)
            break;
        /* Go on through the text form of the cursor, like the API does. */
        char cursor[64];
        voc_cursor_format(page.next_received_us, page.next_id, cursor, sizeof cursor);
        q.has_cursor = true;
        ck_assert_int_eq(voc_cursor_parse(cursor, &q.cursor_received_us, &q.cursor_id), 0);
        ck_assert_msg(pages < 10000, "paging does not end");
    }
    ck_assert_msg(got == ne, "%d cases listed, want %d", got, ne);
    last_expected = ne;
    return pages;
}

static struct voc_case_query all(void)
{
    return (struct voc_case_query){.since_us = INT64_MIN, .until_us = INT64_MAX};
}

static bool odd_ids(const json_t *record, void *arg)
{
    ck_assert_ptr_eq(arg, (void *)odd_ids);
    return json_integer_value(json_object_get(record, "id")) % 2 == 1;
}

START_TEST(list_paging)
{
    fill_cases();
    struct voc_case_query q = all();
    int pages = check_paging(q, 37, 0);
    ck_assert_int_eq(pages, (NCASES + 36) / 37);
    check_paging(q, 1000, 0);
    check_paging(q, 1, 0);
    check_paging(q, NCASES, 0);

    for (int s = 0; s < 4; s++) {
        q = all();
        q.state = states[s];
        check_paging(q, 25, 0);
    }
    q = all();
    q.department = "物流部"; /* department or collaborator */
    check_paging(q, 20, 0);
    ck_assert_int_gt(last_expected, 150);
    q = all();
    q.kind = "suggestion";
    check_paging(q, 33, 0);
    q = all();
    q.channel = "email";
    check_paging(q, 50, 0);
    q = all();
    q.category = "服务态度";
    check_paging(q, 10, 0);
    q = all();
    q.state = "no such state";
    ck_assert_int_eq(check_paging(q, 10, 0), 1);
    free_cases();
}
END_TEST

START_TEST(list_bounds_and_filters)
{
    fill_cases();
    struct voc_case_query q = all();
    /* since inclusive, until exclusive: pick bounds that sit exactly on case times. */
    q.since_us = t0 + 50 * 60 * VOC_US_PER_S;
    q.until_us = t0 + 120 * 60 * VOC_US_PER_S;
    check_paging(q, 17, 0);
    ck_assert_int_gt(last_expected, 100);
    ck_assert_int_lt(last_expected, 250);
    q.since_us = INT64_MIN;
    check_paging(q, 17, 0);
    q = all();
    q.since_us = t0 + 150 * 60 * VOC_US_PER_S;
    check_paging(q, 17, 0);
    q.since_us = t0 + 1000 * 60 * VOC_US_PER_S;
    check_paging(q, 17, 0);
    ck_assert_int_eq(last_expected, 0);

    /* Everything at once. */
    q = all();
    q.state = "assigned";
    q.department = "质量部";
    q.category = "产品质量";
    q.kind = "complaint";
    q.channel = "hotline";
    q.since_us = t0 + 10 * 60 * VOC_US_PER_S;
    q.until_us = t0 + 190 * 60 * VOC_US_PER_S;
    check_paging(q, 3, 0);
    ck_assert_int_gt(last_expected, 0);
    q.department = NULL;
    q.accept = odd_ids;
    q.accept_arg = (void *)odd_ids;
    check_paging(q, 4, 0);
    ck_assert_int_gt(last_expected, 0);
    q = all();
    q.state = "resolved";
    q.channel = "web";
    q.until_us = t0 + 100 * 60 * VOC_US_PER_S;
    check_paging(q, 5, 0);
    ck_assert_int_gt(last_expected, 10);

    /* A cursor beyond until: until still wins. */
    q = all();
    q.until_us = t0 + 60 * 60 * VOC_US_PER_S;
    q.has_cursor = true;
    q.cursor_received_us = t0 + 150 * 60 * VOC_US_PER_S;
    q.cursor_id = 1;
    q.limit = 1000;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    struct voc_case_page page;
    ck_assert_int_eq(voc_casedb_list(&txn, &q, &page), 0);
    voc_txn_abort(&txn);
    size_t i;
    json_t *r;
    int want = 0;
    for (int id = 1; id <= NCASES; id++)
        want += voc_casedb_received_us(records[id]) < q.until_us;
    ck_assert_int_eq((int)json_array_size(page.records), want);
    json_array_foreach (page.records, i, r)
        ck_assert_int_lt(voc_casedb_received_us(r), q.until_us);
    ck_assert(!page.more);
    json_decref(page.records);
    free_cases();
}
END_TEST

/* With max_scan, pages can come back short (even empty) but with more = true; following
 * them still covers everything exactly once. */
START_TEST(list_max_scan)
{
    fill_cases();
    struct voc_case_query q = all();
    q.state = "closed";
    q.department = "客服部"; /* scans the department index, filters state on the record */
    int pages = check_paging(q, 10, 7);
    ck_assert_int_gt(last_expected, 20);
    ck_assert_int_gt(pages, 5);
    q = all();
    q.accept = odd_ids;
    q.accept_arg = (void *)odd_ids;
    check_paging(q, 9, 1);
    check_paging(q, 50, 13);
    q = all();
    check_paging(q, 20, 20);
    check_paging(q, 20, 21);

    /* One short page by itself: no more than max_scan entries looked at. */
    q = all();
    q.kind = "no such kind";
    q.state = "closed"; /* state index chosen, kind filtered: nothing matches */
    q.limit = 10;
    q.max_scan = 5;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    struct voc_case_page page;
    ck_assert_int_eq(voc_casedb_list(&txn, &q, &page), 0);
    voc_txn_abort(&txn);
    ck_assert_uint_eq(json_array_size(page.records), 0);
    ck_assert(page.more);
    json_decref(page.records);
    free_cases();
}
END_TEST

static Suite *casedb_suite(void)
{
    Suite *s = suite_create("casedb");
    TCase *tc = tcase_create("casedb");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, records_events_refs);
    tcase_add_test(tc, index_maintenance);
    tcase_add_test(tc, cursors);
    tcase_add_test(tc, list_paging);
    tcase_add_test(tc, list_bounds_and_filters);
    tcase_add_test(tc, list_max_scan);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(casedb_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
