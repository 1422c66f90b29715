/* The LMDB wrapper (daemon/store.[ch]) on a temporary folder: schema version, read-only
 * opening, map growth, child transactions, sticky errors, and prefix/range scans checked
 * against a brute-force oracle. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "keys.h"
#include "store.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX];

static void setup(void)
{
    char dir[] = "/tmp/voc-store-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
}

static void teardown(void)
{
    voc_test_rm_rf(tmp_dir);
}

static struct voc_store *open_store(const char *sub, uint64_t map_size, uint64_t max_map_size)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, sub);
    struct voc_store_options opts = {
        .path = path, .map_size = map_size, .max_map_size = max_map_size};
    struct voc_store *store = NULL;
    char err[512] = "";
    ck_assert_msg(voc_store_open(&store, &opts, err, sizeof err) == 0, "open %s: %s", path, err);
    return store;
}

static void put(struct voc_store *store, enum voc_db db, const char *key, const char *value)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_txn_put(&txn, db, key, strlen(key), value, strlen(value)), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
}

/* Value of key as a string, or NULL when absent. */
static char *get(struct voc_store *store, enum voc_db db, const char *key)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    MDB_val v;
    int rc = voc_txn_get(&txn, db, key, strlen(key), &v);
    char *out = rc == 0 ? strndup(v.mv_data, v.mv_size) : NULL;
    ck_assert_msg(rc == 0 || rc == MDB_NOTFOUND, "get: %s", mdb_strerror(rc));
    voc_txn_abort(&txn);
    return out;
}

START_TEST(schema_version_written)
{
    struct voc_store *store = open_store("db", 0, 0);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    MDB_val v;
    ck_assert_int_eq(voc_txn_get(&txn, VOC_DB_META, "schema_version", 14, &v), 0);
    ck_assert_uint_eq(v.mv_size, 4);
    ck_assert_uint_eq(voc_key_get_u32(v.mv_data), VOC_SCHEMA_VERSION);
    voc_txn_abort(&txn);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/db", tmp_dir);
    ck_assert_str_eq(voc_store_path(store), path);
    for (int i = 0; i < VOC_DB_COUNT; i++)
        ck_assert_ptr_nonnull(voc_store_db_name((enum voc_db)i));
    ck_assert_str_eq(voc_store_db_name(VOC_DB_CASES), "cases");
    voc_store_close(store);
    /* Reopening keeps it. */
    store = open_store("db", 0, 0);
    voc_store_close(store);
}
END_TEST

/* Write a schema version with plain LMDB calls, as a future vocd would have. */
static void write_raw_schema(const char *path, const void *value, size_t len)
{
    MDB_env *env;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 32), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    MDB_val k = {14, "schema_version"}, v = {len, (void *)value};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(newer_schema_refused)
{
    voc_store_close(open_store("db", 0, 0));
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/db", tmp_dir);
    unsigned char v2[4];
    struct voc_key k;
    voc_key_init(&k);
    voc_key_u32(&k, VOC_SCHEMA_VERSION + 1);
    memcpy(v2, k.buf, 4);
    write_raw_schema(path, v2, 4);

    struct voc_store_options opts = {.path = path};
    struct voc_store *store = NULL;
    char err[512] = "";
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), -1);
    ck_assert_ptr_null(store);
    char want[128];
    snprintf(want, sizeof want,
             "has store schema version %u but this vocd understands versions "
             "up to %u",
             VOC_SCHEMA_VERSION + 1, VOC_SCHEMA_VERSION);
    ck_assert_msg(strstr(err, want) != NULL, "error text: %s", err);
    ck_assert_msg(strstr(err, path) != NULL, "the error names the store: %s", err);
    ck_assert_msg(strstr(err, "nothing was changed") != NULL, "%s", err);

    /* Read-only is refused the same way, and the version on disk was not touched. */
    opts.read_only = true;
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    MDB_env *env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 32);
    ck_assert_int_eq(mdb_env_open(env, path, MDB_RDONLY, 0640), 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val key = {14, "schema_version"}, val;
    ck_assert_int_eq(mdb_get(txn, dbi, &key, &val), 0);
    ck_assert_uint_eq(voc_key_get_u32(val.mv_data), VOC_SCHEMA_VERSION + 1);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    /* A malformed version (wrong length) is no better. */
    write_raw_schema(path, "\x01", 1);
    opts.read_only = false;
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "schema version 0") != NULL, "%s", err);
}
END_TEST

START_TEST(read_only)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/missing", tmp_dir);
    struct voc_store_options opts = {.path = path, .read_only = true};
    struct voc_store *store = NULL;
    char err[512] = "";
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), -1);
    ck_assert_msg(err[0] != '\0', "no reason given");
    struct stat st;
    ck_assert_msg(stat(path, &st) != 0, "read-only open created %s", path);

    /* An LMDB environment that is not a vocd store. */
    snprintf(path, sizeof path, "%s/foreign", tmp_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    MDB_env *env;
    mdb_env_create(&env);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    mdb_env_close(env);
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a vocd store") != NULL, "%s", err);

    /* A real store opened read-only: reads work, writes are refused. */
    struct voc_store *rw = open_store("db", 0, 0);
    put(rw, VOC_DB_META, "k", "v");
    voc_store_close(rw);
    snprintf(path, sizeof path, "%s/db", tmp_dir);
    ck_assert_int_eq(voc_store_open(&store, &opts, err, sizeof err), 0);
    char *v = get(store, VOC_DB_META, "k");
    ck_assert_str_eq(v, "v");
    free(v);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), EACCES);
    voc_store_close(store);
}
END_TEST

START_TEST(child_transactions)
{
    struct voc_store *store = open_store("db", 0, 0);
    struct voc_txn parent, child;
    ck_assert_int_eq(voc_txn_begin_write(store, &parent), 0);
    ck_assert_int_eq(voc_txn_put(&parent, VOC_DB_META, "p", 1, "1", 1), 0);

    ck_assert_int_eq(voc_txn_begin_child(&parent, &child), 0);
    ck_assert_int_eq(voc_txn_put(&child, VOC_DB_META, "aborted", 7, "x", 1), 0);
    ck_assert_int_eq(voc_txn_del(&child, VOC_DB_META, "p", 1), 0);
    MDB_val v;
    ck_assert_int_eq(voc_txn_get(&child, VOC_DB_META, "p", 1, &v), MDB_NOTFOUND);
    voc_txn_abort(&child);
    /* The parent still has its own write and not the child's. */
    ck_assert_int_eq(voc_txn_get(&parent, VOC_DB_META, "p", 1, &v), 0);
    ck_assert_int_eq(voc_txn_get(&parent, VOC_DB_META, "aborted", 7, &v), MDB_NOTFOUND);
    ck_assert_int_eq(parent.error, 0);

    ck_assert_int_eq(voc_txn_begin_child(&parent, &child), 0);
    ck_assert_int_eq(voc_txn_put(&child, VOC_DB_META, "kept", 4, "y", 1), 0);
    ck_assert_int_eq(voc_txn_commit(&child), 0);
    ck_assert_int_eq(voc_txn_get(&parent, VOC_DB_META, "kept", 4, &v), 0);
    ck_assert_int_eq(voc_txn_commit(&parent), 0);

    char *s = get(store, VOC_DB_META, "p");
    ck_assert_str_eq(s, "1");
    free(s);
    s = get(store, VOC_DB_META, "kept");
    ck_assert_str_eq(s, "y");
    free(s);
    ck_assert_ptr_null(get(store, VOC_DB_META, "aborted"));

    /* Aborting the parent takes committed children with it. */
    ck_assert_int_eq(voc_txn_begin_write(store, &parent), 0);
    ck_assert_int_eq(voc_txn_begin_child(&parent, &child), 0);
    voc_txn_put(&child, VOC_DB_META, "gone", 4, "z", 1);
    ck_assert_int_eq(voc_txn_commit(&child), 0);
    voc_txn_abort(&parent);
    ck_assert_ptr_null(get(store, VOC_DB_META, "gone"));
    voc_store_close(store);
}
END_TEST

START_TEST(sticky_errors)
{
    struct voc_store *store = open_store("db", 0, 0);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_txn_put(&txn, VOC_DB_META, "before", 6, "1", 1), 0);
    /* Deleting an absent key and missing a get are not errors. */
    ck_assert_int_eq(voc_txn_del(&txn, VOC_DB_META, "absent", 6), 0);
    MDB_val v;
    ck_assert_int_eq(voc_txn_get(&txn, VOC_DB_META, "absent", 6, &v), MDB_NOTFOUND);
    ck_assert_int_eq(txn.error, 0);
    /* A key longer than LMDB allows is. */
    char huge[VOC_KEY_MAX + 100];
    memset(huge, 'k', sizeof huge);
    int rc = voc_txn_put(&txn, VOC_DB_META, huge, sizeof huge, "x", 1);
    ck_assert_int_ne(rc, 0);
    ck_assert_int_eq(txn.error, rc);
    /* Every later call answers the first error, and commit aborts. */
    ck_assert_int_eq(voc_txn_put(&txn, VOC_DB_META, "after", 5, "2", 1), rc);
    ck_assert_int_eq(voc_txn_get(&txn, VOC_DB_META, "before", 6, &v), rc);
    ck_assert_int_eq(voc_txn_commit(&txn), rc);
    ck_assert_ptr_null(get(store, VOC_DB_META, "before"));
    ck_assert_ptr_null(get(store, VOC_DB_META, "after"));
    /* A child of a failed parent cannot begin. */
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    voc_txn_put(&txn, VOC_DB_META, huge, sizeof huge, "x", 1);
    struct voc_txn child;
    ck_assert_int_eq(voc_txn_begin_child(&txn, &child), txn.error);
    voc_txn_abort(&txn);
    /* A committed or aborted txn cannot be committed again. */
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert_int_ne(voc_txn_commit(&txn), 0);

    ck_assert(voc_store_error_is_full(MDB_MAP_FULL));
    ck_assert(voc_store_error_is_full(ENOSPC));
    ck_assert(voc_store_error_is_full(EIO));
    ck_assert(!voc_store_error_is_full(MDB_NOTFOUND));
    ck_assert(!voc_store_error_is_full(EINVAL));
    voc_store_close(store);
}
END_TEST

/* Fill a 64 KiB map until LMDB says MDB_MAP_FULL, grow, and go on. */
START_TEST(map_growth)
{
    struct voc_store *store = open_store("db", 64 << 10, 0);
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    uint64_t first_size = info.map_size;
    ck_assert_uint_le(first_size, 64 << 10);
    char value[4096];
    memset(value, 'v', sizeof value);
    int grown = 0, full = 0;
    for (int i = 0; i < 200; i++) {
        struct voc_key k;
        voc_key_init(&k);
        voc_key_u32(&k, (uint32_t)i);
        for (;;) {
            struct voc_txn txn;
            ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
            voc_txn_put(&txn, VOC_DB_CASES, k.buf, k.len, value, sizeof value);
            int rc = voc_txn_commit(&txn);
            if (rc == 0)
                break;
            ck_assert_msg(rc == MDB_MAP_FULL, "write %d: %s", i, mdb_strerror(rc));
            full++;
            ck_assert_int_eq(voc_store_grow(store), 0);
            grown++;
        }
    }
    ck_assert_int_gt(full, 0);
    ck_assert_int_eq(grown, full);
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_ge(info.map_size, 200 * 4096);
    ck_assert_uint_eq(info.entries[VOC_DB_CASES], 200);
    ck_assert_uint_gt(info.used_bytes, 200 * 4096);
    voc_store_close(store);

    /* Reopened with the small size, the store adopts the size it grew to. */
    store = open_store("db", 64 << 10, 0);
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_ge(info.map_size, 200 * 4096);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    for (uint32_t i = 0; i < 200; i++) {
        struct voc_key k;
        voc_key_init(&k);
        voc_key_u32(&k, i);
        MDB_val v;
        ck_assert_int_eq(voc_txn_get(&txn, VOC_DB_CASES, k.buf, k.len, &v), 0);
        ck_assert_uint_eq(v.mv_size, sizeof value);
    }
    voc_txn_abort(&txn);
    voc_store_close(store);
}
END_TEST

START_TEST(growth_stops_at_max)
{
    struct voc_store *store = open_store("db", 64 << 10, 128 << 10);
    ck_assert_int_eq(voc_store_grow(store), 0);
    struct voc_store_info info;
    voc_store_info(store, &info);
    ck_assert_uint_eq(info.map_size, 128 << 10);
    ck_assert_int_eq(voc_store_grow(store), -1);
    ck_assert_int_eq(voc_store_grow(store), -1);
    voc_store_info(store, &info);
    ck_assert_uint_eq(info.map_size, 128 << 10);
    /* A value that does not fit stays MDB_MAP_FULL. */
    static char big[256 << 10];
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    voc_txn_put(&txn, VOC_DB_CASES, "k", 1, big, sizeof big);
    ck_assert_int_eq(voc_txn_commit(&txn), MDB_MAP_FULL);
    voc_store_close(store);

    /* Growth is capped at the maximum, not doubled past it. */
    store = open_store("db2", 64 << 10, 96 << 10);
    ck_assert_int_eq(voc_store_grow(store), 0);
    voc_store_info(store, &info);
    ck_assert_uint_eq(info.map_size, 96 << 10);
    ck_assert_int_eq(voc_store_grow(store), -1);
    voc_store_close(store);
}
END_TEST

/* ---- scans ---------------------------------------------------------------------------- */

struct collected {
    unsigned char keys[4096][16];
    size_t lens[4096];
    size_t n;
    size_t stop_after; /* 0 = never */
    int fail_with;     /* returned by the callback at stop_after when set */
};

static int collect(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    struct collected *c = arg;
    ck_assert_uint_le(key->mv_size, sizeof c->keys[0]);
    memcpy(c->keys[c->n], key->mv_data, key->mv_size);
    c->lens[c->n++] = key->mv_size;
    if (c->stop_after && c->n == c->stop_after)
        return c->fail_with ? c->fail_with : 1;
    return 0;
}

static int bytes_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static uint64_t rng_state = 11;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Bytes from a small alphabet with the edge values, so prefixes collide and 0xff runs
 * (the backward scan's "next prefix") happen often. */
static void random_bytes(unsigned char *out, size_t n)
{
    static const unsigned char alphabet[] = {0x00, 0x01, 0x7f, 0xfe, 0xff};
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rng() % sizeof alphabet];
}

START_TEST(scan_against_oracle)
{
    struct voc_store *store = open_store("db", 0, 0);
    static unsigned char keys[600][6];
    static size_t lens[600];
    size_t nkeys = 0;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    for (int i = 0; i < 600; i++) {
        size_t len = 1 + rng() % 6;
        unsigned char k[6];
        random_bytes(k, len);
        bool dup = false;
        for (size_t j = 0; j < nkeys && !dup; j++)
            dup = lens[j] == len && memcmp(keys[j], k, len) == 0;
        if (dup)
            continue;
        memcpy(keys[nkeys], k, len);
        lens[nkeys++] = len;
        ck_assert_int_eq(voc_txn_put(&txn, VOC_DB_REFS, k, len, "", 0), 0);
    }
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    /* Sort the oracle (insertion sort, byte order like LMDB's default comparison). */
    for (size_t i = 1; i < nkeys; i++)
        for (size_t j = i; j > 0 && bytes_cmp(keys[j - 1], lens[j - 1], keys[j], lens[j]) > 0;
             j--) {
            unsigned char t[6];
            memcpy(t, keys[j], 6);
            memcpy(keys[j], keys[j - 1], 6);
            memcpy(keys[j - 1], t, 6);
            size_t tl = lens[j];
            lens[j] = lens[j - 1];
            lens[j - 1] = tl;
        }

    static struct collected got;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    for (int q = 0; q < 3000; q++) {
        unsigned char prefix[3], from[3], to[3];
        size_t plen = rng() % 4, flen = 1 + rng() % 3, tlen = 1 + rng() % 3;
        random_bytes(prefix, plen);
        random_bytes(from, flen);
        random_bytes(to, tlen);
        bool use_from = rng() % 2, use_to = rng() % 2, backward = rng() % 2;
        memset(&got, 0, sizeof got);
        int rc = voc_txn_scan(&txn, VOC_DB_REFS, prefix, plen, use_from ? from : NULL, flen,
                              use_to ? to : NULL, tlen, backward, collect, &got);
        ck_assert_int_eq(rc, 0);

        size_t want_n = 0;
        for (size_t i = 0; i < nkeys; i++) {
            size_t idx = backward ? nkeys - 1 - i : i;
            const unsigned char *k = keys[idx];
            size_t len = lens[idx];
            if (len < plen || memcmp(k, prefix, plen) != 0)
                continue;
            if (use_from && bytes_cmp(k + plen, len - plen, from, flen) < 0)
                continue;
            if (use_to && bytes_cmp(k + plen, len - plen, to, tlen) >= 0)
                continue;
            ck_assert_msg(want_n < got.n, "query %d: scan stopped after %zu keys", q, got.n);
            ck_assert_msg(got.lens[want_n] == len && memcmp(got.keys[want_n], k, len) == 0,
                          "query %d (plen %zu from %d to %d %s): key %zu differs", q, plen,
                          use_from, use_to, backward ? "backward" : "forward", want_n);
            want_n++;
        }
        ck_assert_msg(got.n == want_n, "query %d: %zu keys, want %zu", q, got.n, want_n);
    }
    voc_txn_abort(&txn);
    voc_store_close(store);
}
END_TEST

START_TEST(scan_prefixes_and_bounds)
{
    struct voc_store *store = open_store("db", 0, 0);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    static const char *const words[] = {"a", "ab", "b"};
    for (int w = 0; w < 3; w++)
        for (uint64_t i = 1; i <= 20; i++) {
            struct voc_key k;
            voc_key_init(&k);
            voc_key_str(&k, words[w]);
            voc_key_u64(&k, i);
            voc_txn_put(&txn, VOC_DB_IDX_STATE, k.buf, k.len, "", 0);
        }
    ck_assert_int_eq(voc_txn_commit(&txn), 0);

    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    struct voc_key prefix;
    voc_key_init(&prefix);
    voc_key_str(&prefix, "a");
    static struct collected c;

    /* Forward and backward over one prefix: "ab" keys never show up under "a". */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, NULL, 0,
                                  false, collect, &c),
                     0);
    ck_assert_uint_eq(c.n, 20);
    for (size_t i = 0; i < c.n; i++)
        ck_assert_uint_eq(voc_key_get_u64(c.keys[i] + 2), i + 1);
    memset(&c, 0, sizeof c);
    voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, NULL, 0, true, collect,
                 &c);
    ck_assert_uint_eq(c.n, 20);
    for (size_t i = 0; i < c.n; i++)
        ck_assert_uint_eq(voc_key_get_u64(c.keys[i] + 2), 20 - i);

    /* [5, 10) both ways. */
    unsigned char from[8], to[8];
    voc_key_set_u64(from, 5);
    voc_key_set_u64(to, 10);
    memset(&c, 0, sizeof c);
    voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, from, 8, to, 8, false, collect,
                 &c);
    ck_assert_uint_eq(c.n, 5);
    ck_assert_uint_eq(voc_key_get_u64(c.keys[0] + 2), 5);
    ck_assert_uint_eq(voc_key_get_u64(c.keys[4] + 2), 9);
    memset(&c, 0, sizeof c);
    voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, from, 8, to, 8, true, collect, &c);
    ck_assert_uint_eq(c.n, 5);
    ck_assert_uint_eq(voc_key_get_u64(c.keys[0] + 2), 9);
    ck_assert_uint_eq(voc_key_get_u64(c.keys[4] + 2), 5);

    /* A bound beyond every key. */
    voc_key_set_u64(to, 1000);
    memset(&c, 0, sizeof c);
    voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, to, 8, true, collect, &c);
    ck_assert_uint_eq(c.n, 20);
    ck_assert_uint_eq(voc_key_get_u64(c.keys[0] + 2), 20);

    /* The callback stops the scan (1 = fine, < 0 = that error). */
    memset(&c, 0, sizeof c);
    c.stop_after = 3;
    ck_assert_int_eq(voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, NULL, 0,
                                  false, collect, &c),
                     0);
    ck_assert_uint_eq(c.n, 3);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    c.fail_with = -77;
    ck_assert_int_eq(voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, NULL, 0,
                                  true, collect, &c),
                     -77);
    ck_assert_uint_eq(c.n, 2);

    /* An absent prefix, and the whole database (empty prefix). */
    voc_key_init(&prefix);
    voc_key_str(&prefix, "c");
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(voc_txn_scan(&txn, VOC_DB_IDX_STATE, prefix.buf, prefix.len, NULL, 0, NULL, 0,
                                  true, collect, &c),
                     0);
    ck_assert_uint_eq(c.n, 0);
    memset(&c, 0, sizeof c);
    voc_txn_scan(&txn, VOC_DB_IDX_STATE, "", 0, NULL, 0, NULL, 0, true, collect, &c);
    ck_assert_uint_eq(c.n, 60);
    ck_assert_int_eq(c.keys[0][0], 'b');
    ck_assert_int_eq(c.keys[59][0], 'a');

    MDB_val k, v;
    ck_assert_int_eq(voc_txn_last(&txn, VOC_DB_IDX_STATE, &k, &v), 0);
    ck_assert_int_eq(((unsigned char *)k.mv_data)[0], 'b');
    ck_assert_uint_eq(voc_key_get_u64((unsigned char *)k.mv_data + 2), 20);
    ck_assert_int_eq(voc_txn_last(&txn, VOC_DB_OUTBOX, &k, &v), MDB_NOTFOUND);
    ck_assert_int_eq(txn.error, 0);
    voc_txn_abort(&txn);
    voc_store_close(store);
}
END_TEST

/* The online copy is a working store. */
START_TEST(backup_copy)
{
    struct voc_store *store = open_store("db", 0, 0);
    put(store, VOC_DB_CASES, "case", "{\"id\":1}");
    char copy_dir[PATH_MAX + 16];
    snprintf(copy_dir, sizeof copy_dir, "%s/copy", tmp_dir);
    ck_assert_int_eq(mkdir(copy_dir, 0700), 0);
    char file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/data.mdb", copy_dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(voc_store_copy_to_fd(store, fd), 0);
    close(fd);
    voc_store_close(store);

    store = open_store("copy", 0, 0);
    char *v = get(store, VOC_DB_CASES, "case");
    ck_assert_str_eq(v, "{\"id\":1}");
    free(v);
    ck_assert_int_eq(voc_store_reader_check(store), 0);
    voc_store_close(store);
}
END_TEST

/* A commit that changed nothing writes and syncs nothing: it must not claim anything is
 * durable. A commit that wrote flushed the meta page of the commit before it (its fsync
 * comes after); voc_store_sync flushes its own. */
START_TEST(durable_txnid)
{
    struct voc_store *store = open_store("db", 0, 0);
    uint64_t d0 = voc_store_durable_txnid(store);
    ck_assert_uint_gt(d0, 0); /* open wrote the schema version and synced */

    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    size_t id = mdb_txn_id(txn.txn);
    ck_assert_uint_eq(id, d0 + 1);
    ck_assert_int_eq(voc_txn_put(&txn, VOC_DB_CASES, "a", 1, "1", 1), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert(txn.wrote);
    ck_assert_uint_eq(voc_store_durable_txnid(store), id - 1);

    /* Nothing changed (a delete of an absent key counts as a write but dirties nothing). */
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_txn_del(&txn, VOC_DB_CASES, "absent", 6), 0);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert(!txn.wrote);
    ck_assert_uint_eq(voc_store_durable_txnid(store), id - 1);

    /* A child's commit only joins its parent. */
    struct voc_txn child;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    ck_assert_int_eq(voc_txn_begin_child(&txn, &child), 0);
    ck_assert_int_eq(voc_txn_put(&child, VOC_DB_CASES, "b", 1, "2", 1), 0);
    ck_assert_int_eq(voc_txn_commit(&child), 0);
    ck_assert(!child.wrote);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert(txn.wrote);
    ck_assert_uint_eq(voc_store_durable_txnid(store), id);

    ck_assert_int_eq(voc_store_sync(store), 0);
    ck_assert_uint_eq(voc_store_durable_txnid(store), id + 1);
    voc_store_close(store);
}
END_TEST

struct copy_run {
    struct voc_store *store;
    int fd;
    int rc;
    _Atomic int finished; /* 1 once the copy returned */
};

static void *copy_thread(void *arg)
{
    struct copy_run *c = arg;
    c->rc = voc_store_copy_to_fd(c->store, c->fd);
    close(c->fd);
    atomic_store(&c->finished, 1);
    return NULL;
}

struct grow_run {
    struct voc_store *store;
    int rc;
    _Atomic int finished;
};

static void *grow_thread(void *arg)
{
    struct grow_run *g = arg;
    g->rc = voc_store_grow(g->store);
    atomic_store(&g->finished, 1);
    return NULL;
}

/* Growing the map (mdb_env_set_mapsize) unmaps what an online copy is reading: growth
 * waits for a running copy. The copy writes into a pipe that the test reads only later,
 * so it is certainly still running when growth is asked for. */
START_TEST(growth_waits_for_copy)
{
    struct voc_store *store = open_store("db", 4 << 20, 0);
    char value[2048];
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        memset(value, 'a' + i % 26, sizeof value);
        struct voc_txn txn;
        ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
        voc_txn_put(&txn, VOC_DB_CASES, key, strlen(key), value, sizeof value);
        ck_assert_int_eq(voc_txn_commit(&txn), 0);
    }
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct copy_run c = {.store = store, .fd = p[1]};
    pthread_t ct, gt;
    ck_assert_int_eq(pthread_create(&ct, NULL, copy_thread, &c), 0);
    /* The first bytes prove the copy is under way; the pipe (64 KiB) then fills up. */
    char buf[65536];
    ssize_t n = read(p[0], buf, 1);
    ck_assert_int_eq(n, 1);
    size_t total = 1;
    struct grow_run g = {.store = store};
    ck_assert_int_eq(pthread_create(&gt, NULL, grow_thread, &g), 0);
    usleep(200 * 1000);
    ck_assert_msg(!atomic_load(&g.finished), "the map grew while a copy was reading it");
    ck_assert(!atomic_load(&c.finished));
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        total += (size_t)n;
    close(p[0]);
    pthread_join(ct, NULL);
    pthread_join(gt, NULL);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(g.rc, 0);
    ck_assert_uint_gt(total, 600 * sizeof value);
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_eq(info.map_size, 8 << 20);
    voc_store_close(store);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, schema_version_written);
    tcase_add_test(tc, newer_schema_refused);
    tcase_add_test(tc, read_only);
    tcase_add_test(tc, child_transactions);
    tcase_add_test(tc, sticky_errors);
    tcase_add_test(tc, map_growth);
    tcase_add_test(tc, growth_stops_at_max);
    tcase_add_test(tc, scan_against_oracle);
    tcase_add_test(tc, scan_prefixes_and_bounds);
    tcase_add_test(tc, backup_copy);
    tcase_add_test(tc, durable_txnid);
    tcase_add_test(tc, growth_waits_for_copy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
