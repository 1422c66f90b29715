#include "writer.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "casedb.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "textnorm.h"
#include "timeutil.h"

struct job_list {
    struct voc_job *head, *tail;
    size_t length;
};

struct voc_writer {
    struct voc_store *store;
    size_t queue_limit;
    size_t batch_max;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job_list queue; /* loop -> writer */
    struct job_list done;  /* writer -> loop */
    bool stopping;
    size_t unsynced;                /* jobs taken by the writer and not yet handed back */
    struct voc_policy *policy;      /* writer-owned */
    struct voc_policy *policy_next; /* handed over, swapped before the next batch */
    bool policy_pending;
    _Atomic int64_t next_deadline_us;
    struct voc_rules_totals retired_rules; /* counters of profiles already swapped out */
    struct voc_textnorm *textnorm;
    void (*on_batch)(void *arg);
    void *on_batch_arg;

    uint64_t next_case_id; /* writer thread only */

    int done_fd; /* eventfd: "done list not empty" */
    struct event *done_event;
    struct voc_writer_stats stats;
};

static void list_push(struct job_list *l, struct voc_job *job)
{
    job->next = NULL;
    if (l->tail)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
    l->length++;
}

/* Detach the first n jobs (n = 0: all). */
static struct voc_job *list_take(struct job_list *l, size_t n, size_t *taken)
{
    struct voc_job *head = l->head, *last = NULL, *j = head;
    size_t count = 0;
    while (j && (n == 0 || count < n)) {
        last = j;
        j = j->next;
        count++;
    }
    if (!last) {
        *taken = 0;
        return NULL;
    }
    l->head = j;
    if (!j)
        l->tail = NULL;
    last->next = NULL;
    l->length -= count;
    *taken = count;
    return head;
}

static void fail_all(struct voc_job *jobs, int error)
{
    for (struct voc_job *j = jobs; j; j = j->next) {
        j->outcome = VOC_JOB_UNAVAILABLE;
        if (error == MDB_MAP_FULL)
            voc_err_set(&j->err, 503, "unavailable",
                        "the case store is full (store.max_map_size reached); try again later");
        else
            voc_err_set(&j->err, 503, "unavailable", "the case store cannot write: %s",
                        mdb_strerror(error));
    }
}

static void add_rules_totals(struct voc_rules_totals *t, struct voc_policy *policy)
{
    if (!policy || !policy->rules)
        return;
    struct voc_rules_stats *s = voc_rules_stats(policy->rules);
    t->calls += atomic_load(&s->calls);
    t->errors += atomic_load(&s->errors);
    t->instr_limit += atomic_load(&s->instr_limit);
    t->memory_limit += atomic_load(&s->memory_limit);
}

void voc_writer_rules_totals(struct voc_writer *w, struct voc_rules_totals *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->retired_rules;
    /* The current policy is only freed by the writer after taking this lock. */
    add_rules_totals(out, w->policy);
    pthread_mutex_unlock(&w->lock);
}

/* What run_batch() did with a batch. */
enum batch_result {
    BATCH_COMMITTED, /* outcomes set, transaction committed and written */
    BATCH_EMPTY,     /* outcomes set, committed, but nothing changed: nothing was written */
    BATCH_FAILED,    /* every job failed as unavailable (fail_all) */
    BATCH_MAP_FULL,  /* grow the map and run it again */
    BATCH_ISOLATE,   /* a job refused after writing: run again, each job in a child txn */
};

/* Run one batch in one write transaction.
 *
 * Jobs normally run directly in the batch transaction: a nested transaction per job costs
 * LMDB a multi-megabyte dirty list, which dominated the writer's time. That is only sound
 * if a job that refuses (returns -1) has written nothing yet — true of every job vocd has,
 * since validation, lifecycle and guards all come before the first write. The transaction
 * counts its writes, so a job that breaks that rule is caught, and the batch is run again
 * with `isolate`, every job in its own child transaction. */
static enum batch_result run_batch(struct voc_writer *w, struct voc_job *jobs, size_t count,
                                   bool isolate)
{
    struct voc_txn txn;
    int rc = voc_txn_begin_write(w->store, &txn);
    if (rc) {
        fail_all(jobs, rc);
        return BATCH_FAILED;
    }
    /* What the jobs count shows only if this run of the batch commits (metrics.h). */
    voc_metrics_stage_begin();
    uint64_t next_id = w->next_case_id;
    struct voc_write_ctx ctx = {.policy = w->policy,
                                .next_case_id = &next_id,
                                .now_us = voc_now_us(),
                                .writer = w,
                                .textnorm = w->textnorm};
    for (struct voc_job *j = jobs; j; j = j->next) {
        struct voc_txn child;
        memset(&j->err, 0, sizeof j->err);
        if (isolate) {
            rc = voc_txn_begin_child(&txn, &child);
            if (rc)
                goto store_error;
        }
        struct voc_txn *job_txn = isolate ? &child : &txn;
        ctx.txn = job_txn;
        uint64_t id_before = next_id;
        uint64_t writes_before = job_txn->writes;
        size_t counted_before = voc_metrics_stage_mark();
        int job_rc = j->run(j, &ctx);
        if (job_txn->error) {
            rc = job_txn->error;
            if (isolate)
                voc_txn_abort(&child);
            goto store_error;
        }
        if (job_rc == 0) {
            if (isolate && (rc = voc_txn_commit(&child)) != 0)
                goto store_error;
            j->outcome = VOC_JOB_COMMITTED;
            continue;
        }
        if (!isolate && txn.writes != writes_before) {
            voc_warn("writer", "a job refused after writing; re-running the batch isolated");
            voc_txn_abort(&txn);
            voc_metrics_stage_abort();
            return BATCH_ISOLATE;
        }
        if (isolate)
            voc_txn_abort(&child);
        voc_metrics_stage_drop(counted_before); /* a refused job changed nothing */
        next_id = id_before;
        j->outcome = VOC_JOB_REFUSED;
        if (!j->err.code)
            voc_err_set(&j->err, 500, "internal", "the write was refused without a reason");
    }
    int64_t next_deadline = voc_sla_next_deadline(&txn);
    int64_t t0 = voc_now_us();
    rc = voc_txn_commit(&txn);
    if (rc)
        goto commit_error;
    voc_metrics_stage_commit();
    atomic_fetch_add(&w->stats.commit_us_total, (uint64_t)(voc_now_us() - t0));
    w->next_case_id = next_id;
    atomic_store(&w->next_deadline_us, next_deadline);
    atomic_fetch_add(&w->stats.batches, 1);
    atomic_fetch_add(&w->stats.jobs, count);
    if (count > atomic_load(&w->stats.batch_size_max))
        atomic_store(&w->stats.batch_size_max, count);
    return txn.wrote ? BATCH_COMMITTED : BATCH_EMPTY;
store_error:
    voc_txn_abort(&txn);
commit_error:
    voc_metrics_stage_abort();
    if (rc == MDB_MAP_FULL)
        return BATCH_MAP_FULL;
    voc_error("writer", "batch failed jobs=%zu error=\"%s\"", count, mdb_strerror(rc));
    fail_all(jobs, rc);
    return BATCH_FAILED;
}

/* Give finished jobs back to the event loop (writer thread). */
static void hand_back(struct voc_writer *w, struct voc_job *jobs, size_t count)
{
    if (!jobs)
        return;
    for (struct voc_job *j = jobs; j; j = j->next) {
        if (j->outcome == VOC_JOB_REFUSED)
            atomic_fetch_add(&w->stats.refused, 1);
        else if (j->outcome == VOC_JOB_UNAVAILABLE)
            atomic_fetch_add(&w->stats.unavailable, 1);
    }
    pthread_mutex_lock(&w->lock);
    bool was_empty = w->done.head == NULL;
    for (struct voc_job *j = jobs, *next; j; j = next) {
        next = j->next;
        list_push(&w->done, j);
    }
    w->unsynced -= count;
    pthread_mutex_unlock(&w->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t ignored = write(w->done_fd, &one, sizeof one);
        (void)ignored;
    }
}

/* Make the last commit durable (its meta page) and hand its jobs back. */
static void sync_and_hand_back(struct voc_writer *w, struct voc_job **jobs, size_t *count)
{
    if (!*jobs)
        return;
    int rc = voc_store_sync(w->store);
    if (rc) {
        /* Committed but perhaps not on disk: do not claim it is. The client retries;
         * external ids make a retried create idempotent. */
        voc_error("writer", "fsync failed error=\"%s\" jobs=%zu", mdb_strerror(rc), *count);
        for (struct voc_job *j = *jobs; j; j = j->next) {
            if (j->outcome == VOC_JOB_COMMITTED) {
                j->outcome = VOC_JOB_UNAVAILABLE;
                voc_err_set(&j->err, 503, "unavailable", "the case store cannot sync: %s",
                            mdb_strerror(rc));
            }
        }
    }
    hand_back(w, *jobs, *count);
    *jobs = NULL;
    *count = 0;
}

/* Group commit only pays if groups are big. Replies go out in bursts (one per commit), so
 * requests come back in bursts; taking the queue the moment the first of a burst arrives
 * splits it, and split groups never merge again — measured: 64 clients settled into
 * batches of 10. So while the queue is still growing, wait a little (slices of 200 µs, at
 * most 1 ms) before taking it. A lone request waits one slice. Called with the lock held. */
static void coalesce(struct voc_writer *w)
{
    enum { SLICE_US = 200, MAX_WAIT_US = 1000 };
    if (!w->queue.head || w->stopping || w->queue.length >= w->batch_max)
        return;
    for (int waited = 0; waited < MAX_WAIT_US; waited += SLICE_US) {
        size_t before = w->queue.length;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SLICE_US * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (w->queue.length == before && !w->stopping &&
               pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0)
            ;
        if (w->queue.length == before || w->queue.length >= w->batch_max || w->stopping)
            return;
    }
}

static void *writer_main(void *arg)
{
    struct voc_writer *w = arg;
    /* The previous batch: committed, waiting for the fsync that makes its meta page
     * durable — the next batch's commit, or an explicit sync when no batch follows. */
    struct voc_job *unsynced = NULL;
    size_t unsynced_count = 0;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->queue.head && !w->stopping && !w->policy_pending) {
            if (unsynced) {
                pthread_mutex_unlock(&w->lock);
                sync_and_hand_back(w, &unsynced, &unsynced_count);
                pthread_mutex_lock(&w->lock);
                continue;
            }
            pthread_cond_wait(&w->wake, &w->lock);
        }
        coalesce(w);
        struct voc_policy *old_policy = NULL;
        if (w->policy_pending) {
            old_policy = w->policy;
            add_rules_totals(&w->retired_rules, old_policy);
            w->policy = w->policy_next;
            w->policy_next = NULL;
            w->policy_pending = false;
        }
        size_t count;
        struct voc_job *jobs = list_take(&w->queue, w->batch_max, &count);
        atomic_store(&w->stats.queue_length, w->queue.length);
        if (!jobs && w->stopping) {
            pthread_mutex_unlock(&w->lock);
            voc_policy_free(old_policy);
            sync_and_hand_back(w, &unsynced, &unsynced_count);
            break;
        }
        w->unsynced += count;
        pthread_mutex_unlock(&w->lock);
        voc_policy_free(old_policy);
        if (!jobs) {
            pthread_mutex_lock(&w->lock);
            continue;
        }

        bool isolate = false;
        enum batch_result result;
        while ((result = run_batch(w, jobs, count, isolate)) == BATCH_MAP_FULL ||
               result == BATCH_ISOLATE) {
            if (result == BATCH_ISOLATE) {
                isolate = true;
                continue;
            }
            atomic_fetch_add(&w->stats.retries, 1);
            if (voc_store_grow(w->store) != 0) {
                voc_error("writer", "store full: cannot grow the map further jobs=%zu", count);
                fail_all(jobs, MDB_MAP_FULL);
                result = BATCH_FAILED;
                break;
            }
        }
        if (result == BATCH_COMMITTED) {
            /* This commit's fsync came after the previous batch's meta page was written:
             * the previous batch is durable now. */
            hand_back(w, unsynced, unsynced_count);
            unsynced = jobs;
            unsynced_count = count;
        } else if (result == BATCH_EMPTY) {
            /* Refusals, idempotent repeats, nothing due: LMDB wrote and synced nothing, so
             * the previous batch is not durable yet — and this batch's answers may rest on
             * it (a repeated create answers with the id the previous batch wrote). Sync
             * once and hand both back; with nothing unsynced, all is on disk already. */
            if (unsynced) {
                struct voc_job *tail = unsynced;
                while (tail->next)
                    tail = tail->next;
                tail->next = jobs;
                unsynced_count += count;
                sync_and_hand_back(w, &unsynced, &unsynced_count);
            } else {
                hand_back(w, jobs, count);
            }
        } else {
            sync_and_hand_back(w, &unsynced, &unsynced_count);
            hand_back(w, jobs, count);
        }
        pthread_mutex_lock(&w->lock);
    }
    voc_metrics_stage_free(); /* the loop ends only by the break above, unlocked */
    return NULL;
}

/* Event loop: run done() of everything the writer finished. */
static void drain_done(struct voc_writer *w)
{
    pthread_mutex_lock(&w->lock);
    size_t count;
    struct voc_job *jobs = list_take(&w->done, 0, &count);
    pthread_mutex_unlock(&w->lock);
    for (struct voc_job *j = jobs, *next; j; j = next) {
        next = j->next;
        j->done(j);
    }
    if (count && w->on_batch)
        w->on_batch(w->on_batch_arg);
}

static void on_done_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t ignored = read(fd, &n, sizeof n);
    (void)ignored;
    drain_done(arg);
}

int voc_writer_start(struct voc_writer **out, struct voc_store *store, struct event_base *base,
                     const struct voc_writer_options *opts, struct voc_policy *policy)
{
    struct voc_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->store = store;
    w->queue_limit = opts->queue_limit ? opts->queue_limit : 10000;
    w->batch_max = opts->batch_max ? opts->batch_max : 1000;
    w->policy = policy;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->done_fd < 0)
        goto fail;
    char *norm_err = NULL;
    if (voc_textnorm_new(&w->textnorm, &norm_err) != 0) {
        voc_error("writer", "text normalisation unavailable error=\"%s\"",
                  norm_err ? norm_err : "?");
        free(norm_err);
        goto fail;
    }

    struct voc_txn txn;
    if (voc_txn_begin_read(store, &txn) != 0)
        goto fail;
    uint64_t last = 0;
    int rc = voc_casedb_last_id(&txn, &last);
    atomic_store(&w->next_deadline_us, voc_sla_next_deadline(&txn));
    voc_txn_abort(&txn);
    if (rc)
        goto fail;
    w->next_case_id = last + 1;

    w->done_event = event_new(base, w->done_fd, EV_READ | EV_PERSIST, on_done_ready, w);
    if (!w->done_event || event_add(w->done_event, NULL) != 0)
        goto fail;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        goto fail;
    *out = w;
    return 0;
fail:
    voc_textnorm_free(w->textnorm);
    if (w->done_event)
        event_free(w->done_event);
    if (w->done_fd >= 0)
        close(w->done_fd);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return -1;
}

int voc_writer_submit(struct voc_writer *w, struct voc_job *job)
{
    pthread_mutex_lock(&w->lock);
    if (w->stopping || w->queue.length >= w->queue_limit) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    list_push(&w->queue, job);
    atomic_store(&w->stats.queue_length, w->queue.length);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void voc_writer_set_policy(struct voc_writer *w, struct voc_policy *policy)
{
    pthread_mutex_lock(&w->lock);
    /* A policy handed over but not yet taken is replaced: free it here. */
    struct voc_policy *unused = w->policy_pending ? w->policy_next : NULL;
    w->policy_next = policy;
    w->policy_pending = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    voc_policy_free(unused);
}

int64_t voc_writer_next_deadline(struct voc_writer *w)
{
    return atomic_load(&w->next_deadline_us);
}

void voc_writer_on_batch(struct voc_writer *w, void (*fn)(void *arg), void *arg)
{
    w->on_batch = fn;
    w->on_batch_arg = arg;
}

bool voc_writer_idle(struct voc_writer *w)
{
    pthread_mutex_lock(&w->lock);
    bool idle = !w->queue.head && w->unsynced == 0 && !w->done.head;
    pthread_mutex_unlock(&w->lock);
    return idle;
}

void voc_writer_stop(struct voc_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    drain_done(w);
    voc_policy_free(w->policy);
    voc_policy_free(w->policy_next);
    voc_textnorm_free(w->textnorm);
    event_free(w->done_event);
    close(w->done_fd);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

struct voc_writer_stats *voc_writer_stats(struct voc_writer *w)
{
    return &w->stats;
}

size_t voc_writer_queue_limit(const struct voc_writer *w)
{
    return w->queue_limit;
}
