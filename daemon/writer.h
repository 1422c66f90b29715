/* The group-commit writer: one thread owns every write transaction.
 *
 * Jobs arrive from the event loop through a bounded queue. The writer takes all waiting
 * jobs (up to batch_max), runs each inside its own child transaction of one write
 * transaction, commits once (one fsync for the whole batch), and only then hands the jobs
 * back to the event loop, where their done() answers the client. So the loop never waits
 * for the disk, and nothing is acknowledged before it is durable.
 *
 * The store skips the meta page's fsync (MDB_NOMETASYNC): a batch is handed back after the
 * next batch's commit fsynced (which flushes it), or after an explicit sync when the writer
 * goes idle or when the next batch changed nothing (LMDB then writes and syncs nothing).
 *
 * A job whose run() fails is rolled back alone (its child transaction) and the rest of the
 * batch commits. When the map is full the whole batch is rolled back, the map grows, and the
 * batch runs again — run() must therefore depend only on its inputs and the store. When the
 * store cannot take writes at all (map at max_map_size, disk full, I/O error) every job of
 * the batch fails as "unavailable" (503 + Retry-After). */
#ifndef VOC_WRITER_H
#define VOC_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apierror.h"
#include "store.h"

struct event_base;
struct voc_policy;
struct voc_writer;

/* What a job's run() gets: the job's own child transaction and writer-owned state. */
struct voc_write_ctx {
    struct voc_txn *txn;
    struct voc_policy *policy; /* the current rules and calendars, never NULL */
    uint64_t *next_case_id;  /* id allocator; rolled back with the batch */
    int64_t now_us;          /* one timestamp for the whole batch */
    struct voc_textnorm *textnorm; /* the writer thread's own normaliser */
    struct voc_writer *writer;
};

enum voc_job_outcome {
    VOC_JOB_COMMITTED = 1, /* run() returned 0 and the batch is durable */
    VOC_JOB_REFUSED,       /* run() returned -1 and set job->err; nothing of it was written */
    VOC_JOB_UNAVAILABLE,   /* the store failed; job->err says why (503) */
};

struct voc_job {
    /* Writer thread, inside the job's child transaction. 0 = keep, -1 = roll back (set
     * err). Store errors are noticed through the transaction's sticky error. */
    int (*run)(struct voc_job *job, struct voc_write_ctx *ctx);
    /* Event loop thread, once, after the outcome is final. Owns (frees) the job. */
    void (*done)(struct voc_job *job);
    enum voc_job_outcome outcome;
    struct voc_err err;
    struct voc_job *next; /* queue link, the writer's */
};

struct voc_writer_options {
    size_t queue_limit;
    size_t batch_max;
};

struct voc_writer_stats {
    _Atomic uint64_t batches;
    _Atomic uint64_t jobs;
    _Atomic uint64_t refused;
    _Atomic uint64_t unavailable;
    _Atomic uint64_t retries;        /* batches re-run after the map grew */
    _Atomic uint64_t commit_us_total;
    _Atomic uint64_t batch_size_max;
    _Atomic size_t queue_length;
};

/* Start the thread. The initial id allocator position is read from the store. */
int voc_writer_start(struct voc_writer **out, struct voc_store *store, struct event_base *base,
                     const struct voc_writer_options *opts, struct voc_policy *policy);
/* Queue a job (event loop thread). Returns 0, or -1 when the queue is full or the writer
 * is stopping: the job was not taken (done() will not be called). */
int voc_writer_submit(struct voc_writer *w, struct voc_job *job);
/* Hand a new policy to the writer; it swaps between two batches and frees the old one. */
void voc_writer_set_policy(struct voc_writer *w, struct voc_policy *policy);

/* The earliest SLA deadline in the store after the last commit (INT64_MAX: none). The
 * writer reads it inside every write transaction, so it is never stale by more than the
 * batch being written. */
int64_t voc_writer_next_deadline(struct voc_writer *w);
/* Called on the event loop after each batch's done() callbacks (e.g. to re-arm the SLA
 * timer). */
void voc_writer_on_batch(struct voc_writer *w, void (*fn)(void *arg), void *arg);
/* Is there nothing queued and nothing being written? (event loop thread) */
bool voc_writer_idle(struct voc_writer *w);
/* Finish every queued job, stop the thread, run the remaining done() callbacks, free. */
void voc_writer_stop(struct voc_writer *w);

struct voc_writer_stats *voc_writer_stats(struct voc_writer *w);

/* Lua rule counters since start, summed over every profile the writer has run (a reload
 * must not reset what /metrics shows). */
struct voc_rules_totals {
    uint64_t calls, errors, instr_limit, memory_limit;
};
void voc_writer_rules_totals(struct voc_writer *w, struct voc_rules_totals *out);
size_t voc_writer_queue_limit(const struct voc_writer *w);

#endif
