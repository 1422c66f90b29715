/* The LMDB environment behind one small wrapper: named databases, transactions with a
 * sticky error, prefix scans, map growth, the schema version.
 *
 * Threads: the writer thread owns write transactions; any thread may read. Growing the map
 * (mdb_env_set_mapsize) needs every transaction of this process closed, so read
 * transactions hold a shared lock and growth takes it exclusively. Readers are short (one
 * HTTP request), so growth waits for at most one of them. */
#ifndef VOC_STORE_H
#define VOC_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bump when the on-disk layout changes; older layouts are migrated at open, newer ones are
 * refused. */
#define VOC_SCHEMA_VERSION 1

enum voc_db {
    VOC_DB_META,         /* schema_version, ... */
    VOC_DB_CASES,        /* id(u64) -> case record JSON */
    VOC_DB_EVENTS,       /* id(u64) seq(u32) -> event JSON */
    VOC_DB_REFS,         /* channel\0 ref\0 -> id(u64): idempotency + threading */
    VOC_DB_IDX_STATE,    /* value\0 received(u64) id(u64) -> "" */
    VOC_DB_IDX_CATEGORY, /* same shape */
    VOC_DB_IDX_KIND,
    VOC_DB_IDX_CHANNEL,
    VOC_DB_IDX_DEPARTMENT,
    VOC_DB_IDX_RECEIVED, /* received(u64) id(u64) -> "" */
    VOC_DB_PLUGIN_STATE, /* plugin\0 key\0 -> bytes */
    VOC_DB_OUTBOX,       /* seq(u64) -> notification JSON */
    VOC_DB_OUTBOX_DUE,   /* next attempt(u64) seq(u64) -> "": what the notifier sends next */
    VOC_DB_DEADLINES,    /* due(u64) id(u64) clock(u16) kind(u8) -> "": SLA timers */
    VOC_DB_ALERTS,       /* due(u64) id(u64) clock(u16) -> "": clocks in warning/breached */
    VOC_DB_COUNT
};

struct voc_store;

struct voc_store_options {
    const char *path;      /* folder; created if missing (not in read_only mode) */
    uint64_t map_size;     /* initial; 0 = 256 MiB */
    uint64_t max_map_size; /* growth stops here; 0 = no limit */
    unsigned max_readers;  /* 0 = 126 */
    bool read_only;        /* e.g. `vocctl rules replay` beside a running daemon */
};

/* Open (and create) the environment and all databases, check the schema version.
 * Returns 0, or -1 with a human-readable reason in err. */
int voc_store_open(struct voc_store **out, const struct voc_store_options *opts, char *err,
                   size_t errlen);
void voc_store_close(struct voc_store *store);

struct voc_txn {
    struct voc_store *store;
    MDB_txn *txn;
    int error; /* first LMDB error inside this transaction (sticky); 0 = fine */
    bool write;
    bool locked;     /* read txn holding the shared growth lock */
    bool child;      /* a child of a write transaction (its commit never reaches disk) */
    uint64_t writes; /* puts and deletes so far: tells whether a refused job wrote */
    /* Set by voc_txn_commit of a top-level write transaction: the commit changed something
     * and so wrote (and fsynced) pages. LMDB skips both for a transaction that changed
     * nothing — such a commit makes no earlier commit durable (see writer.c). */
    bool wrote;
};

int voc_txn_begin_read(struct voc_store *store, struct voc_txn *txn);
int voc_txn_begin_write(struct voc_store *store, struct voc_txn *txn);
/* A child of a write transaction: its changes vanish with voc_txn_abort(child) and join
 * the parent with voc_txn_commit(child). */
int voc_txn_begin_child(struct voc_txn *parent, struct voc_txn *child);
/* Commits (write) or ends (read). Returns 0 or the LMDB error; the txn is gone either way.
 * A txn with a sticky error is aborted and its error returned. */
int voc_txn_commit(struct voc_txn *txn);
void voc_txn_abort(struct voc_txn *txn);

/* 0 found (val points into the map, valid until the txn ends), MDB_NOTFOUND, or an error
 * (also made sticky). */
int voc_txn_get(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen, MDB_val *val);
int voc_txn_put(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen, const void *val,
                size_t vlen);
/* Deleting an absent key is not an error. */
int voc_txn_del(struct voc_txn *txn, enum voc_db db, const void *key, size_t klen);

/* Iterate keys starting with `prefix` whose remainder lies in [from, to) (byte order;
 * from/to may be NULL = unbounded), forward or backward. The callback returns 0 to go on,
 * 1 to stop, < 0 to stop with that error. Returns 0, the callback's error, or an LMDB
 * error. */
typedef int (*voc_scan_cb)(const MDB_val *key, const MDB_val *val, void *arg);
int voc_txn_scan(struct voc_txn *txn, enum voc_db db, const void *prefix, size_t plen,
                 const void *from, size_t flen, const void *to, size_t tlen, bool backward,
                 voc_scan_cb cb, void *arg);
/* The last key of a database (largest). 0 found, MDB_NOTFOUND, or an error. */
int voc_txn_last(struct voc_txn *txn, enum voc_db db, MDB_val *key, MDB_val *val);

/* Grow the map after MDB_MAP_FULL (no transaction of this thread may be open).
 * Returns 0 when it grew, -1 when max_map_size is reached. */
int voc_store_grow(struct voc_store *store);
/* Is this error "the store cannot take writes now" (full map or disk, I/O) rather than a
 * bug? Such errors become 503 + Retry-After. */
bool voc_store_error_is_full(int error);

/* Map size, pages in use, reader slots, entries per database. Reads the map, so it takes
 * the shared growth lock like a read transaction. */
struct voc_store_info {
    uint64_t map_size;
    uint64_t used_bytes;
    uint64_t entries[VOC_DB_COUNT];
    unsigned readers_used;
    unsigned max_readers;
};
int voc_store_info(struct voc_store *store, struct voc_store_info *info);
const char *voc_store_path(const struct voc_store *store);
const char *voc_store_db_name(enum voc_db db);
/* Write a compacted copy of the environment to fd (online; one read transaction). Holds
 * the shared growth lock for the whole copy, so the map cannot move under it: a writer
 * that needs to grow the map waits for the copy to finish. */
int voc_store_copy_to_fd(struct voc_store *store, int fd);
/* Flush everything committed so far to disk (the meta page of the last commit: the store
 * is opened with MDB_NOMETASYNC, see writer.c). Returns 0 or an errno. */
int voc_store_sync(struct voc_store *store);
/* The newest transaction id known to be on disk, meta page included: advanced by
 * voc_store_sync, and by every commit that wrote (its data fsync also flushes the meta page
 * the commit before it wrote). Any thread. Lets tests check that nothing is acknowledged
 * before it is durable. */
uint64_t voc_store_durable_txnid(struct voc_store *store);
/* Clear stale reader slots left by dead processes; returns how many were cleared. */
int voc_store_reader_check(struct voc_store *store);

#endif
