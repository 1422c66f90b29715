#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "log.h"

#define DEFAULT_MAP_SIZE (256ull << 20)

struct voc_store {
    MDB_env *env;
    MDB_dbi dbi[VOC_DB_COUNT];
    char *path;
    uint64_t map_size;
    uint64_t max_map_size;
    unsigned max_readers;
    bool read_only;
    pthread_rwlock_t growth_lock;
    _Atomic uint64_t durable_txnid; /* see voc_store_durable_txnid */
};

static const char *const db_names[VOC_DB_COUNT] = {
    [VOC_DB_META] = "meta",
    [VOC_DB_CASES] = "cases",
    [VOC_DB_EVENTS] = "events",
    [VOC_DB_REFS] = "refs",
    [VOC_DB_IDX_STATE] = "idx_state",
    [VOC_DB_IDX_CATEGORY] = "idx_category",
    [VOC_DB_IDX_KIND] = "idx_kind",
    [VOC_DB_IDX_CHANNEL] = "idx_channel",
    [VOC_DB_IDX_DEPARTMENT] = "idx_department",
    [VOC_DB_IDX_RECEIVED] = "idx_received",
    [VOC_DB_PLUGIN_STATE] = "plugin_state",
    [VOC_DB_OUTBOX] = "outbox",
    [VOC_DB_OUTBOX_DUE] = "outbox_due",
    [VOC_DB_DEADLINES] = "deadlines",
    [VOC_DB_ALERTS] = "alerts",
};

static const char schema_key[] = "schema_version";

const char *voc_store_db_name(enum voc_db db)
{
    return db_names[db];
}

const char *voc_store_path(const struct voc_store *store)
{
    return store->path;
}

bool voc_store_error_is_full(int error)
{
    return error == MDB_MAP_FULL || error == ENOSPC || error == EDQUOT || error == EIO ||
           error == MDB_TXN_FULL || error == MDB_READERS_FULL;
}

static int mkdir_p(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0750) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(copy, 0750) != 0 && errno != EEXIST ? -1 : 0;
    free(copy);
    return rc;
}

/* Read or write the schema version; refuse versions newer than ours. */
static int check_schema(struct voc_store *store, char *err, size_t errlen)
{
    struct voc_txn txn;
    int rc = store->read_only ? voc_txn_begin_read(store, &txn) : voc_txn_begin_write(store, &txn);
    if (rc) {
        snprintf(err, errlen, "cannot begin transaction: %s", mdb_strerror(rc));
        return -1;
    }
    MDB_val val;
    rc = voc_txn_get(&txn, VOC_DB_META, schema_key, sizeof schema_key - 1, &val);
    if (rc == MDB_NOTFOUND) {
        if (store->read_only) {
            voc_txn_abort(&txn);
            snprintf(err, errlen, "%s holds no vocd store (no schema version)", store->path);
            return -1;
        }
        unsigned char v[4];
        struct voc_key k;
        voc_key_init(&k);
        voc_key_u32(&k, VOC_SCHEMA_VERSION);
        memcpy(v, k.buf, 4);
        voc_txn_put(&txn, VOC_DB_META, schema_key, sizeof schema_key - 1, v, sizeof v);
        rc = voc_txn_commit(&txn);
        if (rc) {
            snprintf(err, errlen, "cannot write schema version: %s", mdb_strerror(rc));
            return -1;
        }
        return 0;
    }
    if (rc) {
        voc_txn_abort(&txn);
        snprintf(err, errlen, "cannot read schema version: %s", mdb_strerror(rc));
        return -1;
    }
    uint32_t version = val.mv_size == 4 ? voc_key_get_u32(val.mv_data) : 0;
    voc_txn_abort(&txn);
    if (version == 0 || version > VOC_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s has store schema version %u but this vocd understands versions up to %u: "
                 "run a newer vocd (nothing was changed)",
                 store->path, version, VOC_SCHEMA_VERSION);
        return -1;
    }
    /* Older versions would be migrated here, in one write transaction. Version 1 is the
     * first, so there is nothing to migrate yet. */
    return 0;
}

int voc_store_open(struct voc_store **out, const struct voc_store_options *opts, char *err,
                   size_t errlen)
{
    struct voc_store *store = calloc(1, sizeof *store);
    if (!store) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_rwlock_init(&store->growth_lock, NULL);
    store->path = strdup(opts->path);
    store->map_size = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    store->max_map_size = opts->max_map_size;
    store->max_readers = opts->max_readers ? opts->max_readers : 126;
    store->read_only = opts->read_only;
    int rc;
    if (!store->read_only && mkdir_p(opts->path) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", opts->path, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&store->env)) || (rc = mdb_env_set_maxdbs(store->env, VOC_DB_COUNT)) ||
        (rc = mdb_env_set_maxreaders(store->env, store->max_readers))) {
        snprintf(err, errlen, "cannot create LMDB environment: %s", mdb_strerror(rc));
        goto fail;
    }
    /* Reopening an environment that already grew: use its size if it is larger than ours,
     * LMDB does this when mapsize is 0 after open, so open with ours and adopt below. */
    if ((rc = mdb_env_set_mapsize(store->env, store->map_size))) {
        snprintf(err, errlen, "cannot set map size: %s", mdb_strerror(rc));
        goto fail;
    }
    /* MDB_NOTLS ties reader slots to transactions instead of threads: the backup thread,
     * the event loop and the writer can each hold a read transaction at the same time. */
    /* MDB_NORDAHEAD: case lookups are random; kernel read-ahead would pull neighbouring
     * pages nobody asked for into memory (measured: RSS 418 -> 161 MB firing 200k clocks). */
    /* MDB_NOMETASYNC: a commit fsyncs its data pages but not the meta page that makes them
     * current; the next commit's fsync (or voc_store_sync) covers it. Integrity is kept
     * either way; the writer acknowledges a batch only after that second fsync, so
     * durability is kept too, at one fsync per batch under load instead of two. */
    unsigned flags =
        MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC | (store->read_only ? MDB_RDONLY : 0);
    rc = mdb_env_open(store->env, opts->path, flags, 0640);
    if (rc) {
        snprintf(err, errlen, "cannot open store %s: %s", opts->path, mdb_strerror(rc));
        goto fail;
    }
    MDB_envinfo info;
    mdb_env_info(store->env, &info);
    if (info.me_mapsize > store->map_size)
        store->map_size = info.me_mapsize;

    int dead = 0;
    mdb_reader_check(store->env, &dead);
    if (dead)
        voc_info("store", "cleared stale readers count=%d", dead);

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(store->env, NULL, store->read_only ? MDB_RDONLY : 0, &txn))) {
        snprintf(err, errlen, "cannot begin transaction: %s", mdb_strerror(rc));
        goto fail;
    }
    for (int i = 0; i < VOC_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], store->read_only ? 0 : MDB_CREATE, &store->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "cannot open database '%s' in %s: %s", db_names[i], opts->path,
                     rc == MDB_NOTFOUND ? "missing (not a vocd store?)" : mdb_strerror(rc));
            goto fail;
        }
    }
    if ((rc = mdb_txn_commit(txn))) {
        snprintf(err, errlen, "cannot open databases: %s", mdb_strerror(rc));
        goto fail;
    }
    if (check_schema(store, err, errlen) != 0)
        goto fail;
    if (!store->read_only && (rc = voc_store_sync(store)) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", opts->path, mdb_strerror(rc));
        goto fail;
    }
    *out = store;
    return 0;
fail:
    voc_store_close(store);
    return -1;
}

void voc_store_close(struct voc_store *store)
{
    if (!store)
        return;
    if (store->env)
        mdb_env_close(store->env);
    pthread_rwlock_destroy(&store->growth_lock);
    free(store->path);
    free(store);
}

static int txn_begin(struct voc_store *store, struct voc_txn *txn, MDB_txn *parent, unsigned flags)
{
    memset(txn, 0, sizeof *txn);
    txn->store = store;
    txn->write = !(flags & MDB_RDONLY);
    txn->child = parent != NULL;
    int rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = mdb_txn_begin(store->env, parent, flags, &txn->txn);
        if (rc != MDB_MAP_RESIZED)
            break;
        /* Another process (a writer daemon beside `vocctl rules replay`) grew the map. */
        mdb_env_set_mapsize(store->env, 0);
    }
    return rc;
}

int voc_txn_begin_read(struct voc_store *store, struct voc_txn *txn)
{
    pthread_rwlock_rdlock(&store->growth_lock);
    int rc = txn_begin(store, txn, NULL, MDB_RDONLY);
    if (rc) {
        pthread_rwlock_unlock(&store->growth_lock);
        return rc;
    }
    txn->locked = true;
    return 0;
}

int voc_txn_begin_write(struct voc_store *store, struct voc_txn *txn)
{
    if (store->read_only)
        return EACCES;
    return txn_begin(store, txn, NULL, 0);
}

int voc_txn_begin_child(struct voc_txn *parent, struct voc_txn *child)
{
    if (parent->error)
        return parent->error;
    return txn_begin(parent->store, child, parent->txn, 0);
}

/* Everything up to txnid is on disk now. */
static void advance_durable(struct voc_store *store, uint64_t txnid)
{
    uint64_t seen = atomic_load(&store->durable_txnid);
    while (seen < txnid && !atomic_compare_exchange_weak(&store->durable_txnid, &seen, txnid))
        ;
}

uint64_t voc_store_durable_txnid(struct voc_store *store)
{
    return atomic_load(&store->durable_txnid);
}

static void txn_release(struct voc_txn *txn)
{
    if (txn->locked)
        pthread_rwlock_unlock(&txn->store->growth_lock);
    txn->txn = NULL;
    txn->locked = false;
}

void voc_txn_abort(struct voc_txn *txn)
{
    if (!txn->txn)
        return;
    mdb_txn_abort(txn->txn);
    txn_release(txn);
}

int voc_txn_commit(struct voc_txn *txn)
{
    if (!txn->txn)
        return txn->error ? txn->error : EINVAL;
    if (txn->error) {
        voc_txn_abort(txn);
        return txn->error;
    }
    int rc;
    if (txn->write && !txn->child) {
        size_t id = mdb_txn_id(txn->txn);
        rc = mdb_txn_commit(txn->txn);
        if (rc == 0) {
            /* LMDB commits a transaction that dirtied nothing without writing or syncing
             * anything, and the last txnid stays where it was. */
            MDB_envinfo ei;
            mdb_env_info(txn->store->env, &ei);
            txn->wrote = ei.me_last_txnid >= id;
            if (txn->wrote)
                advance_durable(txn->store, id - 1);
        }
    } else if (txn->write) {
        rc = mdb_txn_commit(txn->txn);
    } else {
        mdb_txn_abort(txn->txn);
        rc = 0;
    }
    txn_release(txn);
    if (rc)
        txn->error = rc;
    return rc;
}

static int sticky(struct voc_txn *txn, int rc)
{
    if (rc && rc != MDB_NOTFOUND && !txn->error)
        txn->error = rc;
    return rc;
}

int voc_txn_get(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen, MDB_val *val)
{
    if (txn->error)
        return txn->error;
    MDB_val k = {klen, (void *)key};
    return sticky(txn, mdb_get(txn->txn, txn->store->dbi[db], &k, val));
}

int voc_txn_put(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen, const void *val,
                size_t vlen)
{
    if (txn->error)
        return txn->error;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    txn->writes++;
    return sticky(txn, mdb_put(txn->txn, txn->store->dbi[db], &k, &v, 0));
}

int voc_txn_del(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen)
{
    if (txn->error)
        return txn->error;
    MDB_val k = {klen, (void *)key};
    txn->writes++;
    int rc = mdb_del(txn->txn, txn->store->dbi[db], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : sticky(txn, rc);
}

int voc_txn_last(struct voc_txn *txn, enum voc_db db, MDB_val *key, MDB_val *val)
{
    if (txn->error)
        return txn->error;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur);
    if (rc)
        return sticky(txn, rc);
    rc = mdb_cursor_get(cur, key, val, MDB_LAST);
    mdb_cursor_close(cur);
    return sticky(txn, rc);
}

/* Compare the part of key after the prefix with a bound. */
static int cmp_rest(const MDB_val *key, size_t plen, const void *bound, size_t blen)
{
    size_t rlen = key->mv_size - plen;
    size_t n = rlen < blen ? rlen : blen;
    int c = memcmp((const char *)key->mv_data + plen, bound, n);
    if (c)
        return c;
    return rlen < blen ? -1 : rlen > blen ? 1 : 0;
}

int voc_txn_scan(struct voc_txn *txn, enum voc_db db, const void *prefix, size_t plen,
                 const void *from, size_t flen, const void *to, size_t tlen, bool backward,
                 voc_scan_cb cb, void *arg)
{
    if (txn->error)
        return txn->error;
    if (!prefix)
        prefix = ""; /* "no prefix" may come as NULL: memcpy/memcmp must not get NULL */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur);
    if (rc)
        return sticky(txn, rc);
    unsigned char seek[VOC_KEY_MAX];
    MDB_val k, v;
    if (!backward) {
        /* Start at prefix+from. */
        size_t slen = plen + (from ? flen : 0);
        if (slen > sizeof seek) {
            rc = EINVAL;
            goto done;
        }
        memcpy(seek, prefix, plen);
        if (from)
            memcpy(seek + plen, from, flen);
        k.mv_data = seek;
        k.mv_size = slen;
        rc = slen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        /* Start at the last key below prefix+to (or below the end of the prefix range). */
        if (to) {
            if (plen + tlen > sizeof seek) {
                rc = EINVAL;
                goto done;
            }
            memcpy(seek, prefix, plen);
            memcpy(seek + plen, to, tlen);
            k.mv_data = seek;
            k.mv_size = plen + tlen;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            else if (rc == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        } else {
            /* The first key after every key with this prefix: increment the prefix. */
            size_t n = plen;
            memcpy(seek, prefix, plen);
            while (n > 0 && seek[n - 1] == 0xff)
                n--;
            if (n == 0) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            } else {
                seek[n - 1]++;
                k.mv_data = seek;
                k.mv_size = n;
                rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                if (rc == MDB_NOTFOUND)
                    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
                else if (rc == 0)
                    rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
            }
        }
    }
    while (rc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (from && cmp_rest(&k, plen, from, flen) < 0)
            break; /* only reachable going backward */
        if (to && cmp_rest(&k, plen, to, tlen) >= 0) {
            if (!backward)
                break;
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
            continue;
        }
        int c = cb(&k, &v, arg);
        if (c) {
            rc = c > 0 ? 0 : c;
            goto done;
        }
        rc = mdb_cursor_get(cur, &k, &v, backward ? MDB_PREV : MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
done:
    mdb_cursor_close(cur);
    return rc > 0 ? sticky(txn, rc) : rc;
}

int voc_store_grow(struct voc_store *store)
{
    if (store->max_map_size && store->map_size >= store->max_map_size)
        return -1;
    uint64_t next = store->map_size * 2;
    if (store->max_map_size && next > store->max_map_size)
        next = store->max_map_size;
    pthread_rwlock_wrlock(&store->growth_lock);
    int rc = mdb_env_set_mapsize(store->env, next);
    pthread_rwlock_unlock(&store->growth_lock);
    if (rc) {
        voc_error("store", "cannot grow map size=%llu error=\"%s\"", (unsigned long long)next,
                  mdb_strerror(rc));
        return -1;
    }
    voc_info("store", "map grown from=%llu to=%llu", (unsigned long long)store->map_size,
             (unsigned long long)next);
    store->map_size = next;
    return 0;
}

int voc_store_info(struct voc_store *store, struct voc_store_info *info)
{
    memset(info, 0, sizeof *info);
    /* mdb_env_info and mdb_env_stat read the meta pages inside the map: the read
     * transaction holds the growth lock, so the writer cannot remap it meanwhile. */
    struct voc_txn txn;
    if (voc_txn_begin_read(store, &txn) != 0)
        return -1;
    MDB_envinfo ei;
    MDB_stat st;
    mdb_env_info(store->env, &ei);
    mdb_env_stat(store->env, &st);
    info->map_size = ei.me_mapsize;
    info->used_bytes = (uint64_t)(ei.me_last_pgno + 1) * st.ms_psize;
    info->readers_used = ei.me_numreaders;
    info->max_readers = ei.me_maxreaders;
    for (int i = 0; i < VOC_DB_COUNT; i++) {
        MDB_stat dst;
        if (mdb_stat(txn.txn, store->dbi[i], &dst) == 0)
            info->entries[i] = dst.ms_entries;
    }
    voc_txn_abort(&txn);
    return 0;
}

int voc_store_copy_to_fd(struct voc_store *store, int fd)
{
    /* The copy walks the map through its own read transaction, outside voc_txn: hold the
     * growth lock for all of it, or mdb_env_set_mapsize could unmap the pages it reads. */
    pthread_rwlock_rdlock(&store->growth_lock);
    int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&store->growth_lock);
    return rc;
}

int voc_store_sync(struct voc_store *store)
{
    /* Only the writer thread commits and grows the map, and it is the one that syncs, so
     * the meta page read here cannot move. What was committed when the sync began is on
     * disk when it returns. */
    MDB_envinfo ei;
    mdb_env_info(store->env, &ei);
    int rc = mdb_env_sync(store->env, 1);
    if (rc == 0)
        advance_durable(store, ei.me_last_txnid);
    return rc;
}

int voc_store_reader_check(struct voc_store *store)
{
    int dead = 0;
    mdb_reader_check(store->env, &dead);
    return dead;
}
