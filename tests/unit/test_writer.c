/* The group-commit writer (daemon/writer.[ch]) with a real libevent loop and a store in a
 * temporary folder. Jobs are the test's own: put one key, maybe refuse, maybe wait at a
 * gate so that the jobs submitted meanwhile pile up into one batch. Every done() checks
 * that it runs on the loop thread and that what it reports is already durable (or absent). */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "keys.h"
#include "policy.h"
#include "store.h"
#include "writer.h"

#include <check.h>
#include <event2/event.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX];
static struct voc_store *store;
static struct event_base *base;
static struct voc_writer *writer;
static pthread_t loop_thread;
static struct voc_policy *policy; /* no profile, no calendars; the writer owns it */

/* What the done() callbacks saw, by job index. */
#define MAX_JOBS 256
static struct {
    bool done;
    enum voc_job_outcome outcome;
    struct voc_err err;
    uint64_t id;
    int runs;
} seen[MAX_JOBS];
static int done_count, done_wanted;

/* The gate: a job that holds the writer thread until the test opens it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_entered, gate_open;
/* A second gate (`hold`) that keeps the writer busy later, so that it cannot reach its
 * idle-time sync while the test looks at what was acknowledged before. */
static bool hold_entered, hold_open;

struct test_job {
    struct voc_job base;
    int index;
    size_t value_len;
    bool refuse;
    bool refuse_silently; /* -1 without setting err */
    bool gate;
    bool hold;
    bool noop; /* writes nothing and succeeds, like an idempotent repeat */
    bool take_id;
    uint64_t id;
    int runs;
    uint64_t txnid; /* of the write transaction it last ran in */
};

static void job_key(int index, struct voc_key *k)
{
    voc_key_init(k);
    voc_key_str(k, "job");
    voc_key_u32(k, (uint32_t)index);
}

static int job_run(struct voc_job *base_job, struct voc_write_ctx *ctx)
{
    struct test_job *job = (struct test_job *)base_job;
    job->runs++;
    ck_assert_ptr_eq(ctx->writer, writer);
    ck_assert_ptr_eq(ctx->policy, policy);
    if (job->gate) {
        pthread_mutex_lock(&gate_lock);
        gate_entered = true;
        pthread_cond_broadcast(&gate_cond);
        while (!gate_open)
            pthread_cond_wait(&gate_cond, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
    }
    if (job->hold) {
        pthread_mutex_lock(&gate_lock);
        hold_entered = true;
        pthread_cond_broadcast(&gate_cond);
        while (!hold_open)
            pthread_cond_wait(&gate_cond, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
    }
    job->txnid = mdb_txn_id(ctx->txn->txn);
    if (job->noop)
        return 0;
    if (job->take_id)
        job->id = (*ctx->next_case_id)++;
    struct voc_key k;
    job_key(job->index, &k);
    char *value = malloc(job->value_len ? job->value_len : 1);
    memset(value, 'a' + job->index % 26, job->value_len);
    voc_txn_put(ctx->txn, VOC_DB_PLUGIN_STATE, k.buf, k.len, value, job->value_len);
    free(value);
    if (job->refuse) {
        if (!job->refuse_silently)
            voc_err_set(&job->base.err, 409, "conflict", "job %d refused", job->index);
        return -1;
    }
    return 0;
}

/* Is the job's key in the store now (a fresh read transaction sees only commits)? */
static bool key_stored(int index, size_t *len)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    struct voc_key k;
    job_key(index, &k);
    MDB_val v;
    int rc = voc_txn_get(&txn, VOC_DB_PLUGIN_STATE, k.buf, k.len, &v);
    ck_assert_msg(rc == 0 || rc == MDB_NOTFOUND, "%s", mdb_strerror(rc));
    if (rc == 0 && len)
        *len = v.mv_size;
    voc_txn_abort(&txn);
    return rc == 0;
}

static void job_done(struct voc_job *base_job)
{
    struct test_job *job = (struct test_job *)base_job;
    ck_assert_msg(pthread_equal(pthread_self(), loop_thread), "done() off the loop thread");
    ck_assert_int_lt(job->index, MAX_JOBS);
    ck_assert_msg(!seen[job->index].done, "done() twice for job %d", job->index);
    seen[job->index].done = true;
    seen[job->index].outcome = base_job->outcome;
    seen[job->index].err = base_job->err;
    seen[job->index].id = job->id;
    seen[job->index].runs = job->runs;
    size_t len = 0;
    bool stored = key_stored(job->index, &len);
    if (base_job->outcome == VOC_JOB_COMMITTED) {
        /* Durable means the commit's meta page is on disk too (MDB_NOMETASYNC): every
         * commit up to this job's own. A job that wrote nothing may rest on the commit
         * before its transaction (a repeated create answers with an earlier id). */
        uint64_t needed = job->noop ? job->txnid - 1 : job->txnid;
        ck_assert_msg(voc_store_durable_txnid(store) >= needed,
                      "job %d acknowledged before transaction %llu was synced (durable: %llu)",
                      job->index, (unsigned long long)needed,
                      (unsigned long long)voc_store_durable_txnid(store));
    }
    if (job->noop) {
        ck_assert(!stored);
    } else if (base_job->outcome == VOC_JOB_COMMITTED) {
        ck_assert_msg(stored, "job %d reported committed before its write is durable", job->index);
        ck_assert_uint_eq(len, job->value_len);
    } else {
        ck_assert_msg(!stored, "job %d failed but its write is there", job->index);
    }
    free(job);
    if (++done_count == done_wanted)
        event_base_loopbreak(base);
}

static struct test_job *new_job(int index)
{
    struct test_job *job = calloc(1, sizeof *job);
    job->base.run = job_run;
    job->base.done = job_done;
    job->index = index;
    job->value_len = 16;
    return job;
}

static void submit(struct test_job *job)
{
    ck_assert_int_eq(voc_writer_submit(writer, &job->base), 0);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
    event_base_loopbreak(base);
}

/* Run the loop until `total` done() calls have happened. */
static void run_until_done(int total)
{
    done_wanted = total;
    if (done_count >= total)
        return;
    bool timed_out = false;
    struct event *t = evtimer_new(base, timeout_cb, &timed_out);
    struct timeval tv = {60, 0};
    evtimer_add(t, &tv);
    event_base_loop(base, 0);
    event_free(t);
    ck_assert_msg(!timed_out, "only %d of %d jobs finished", done_count, total);
    ck_assert_int_eq(done_count, total);
}

/* Submit a gate job (index 0) and wait until the writer thread sits in it. */
static void close_gate(void)
{
    gate_entered = gate_open = false;
    struct test_job *g = new_job(0);
    g->gate = true;
    submit(g);
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void open_hold(void)
{
    pthread_mutex_lock(&gate_lock);
    hold_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void start(uint64_t map_size, uint64_t max_map_size, size_t queue_limit, size_t batch_max)
{
    struct voc_store_options so = {
        .path = tmp_dir, .map_size = map_size, .max_map_size = max_map_size};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    struct voc_writer_options wo = {.queue_limit = queue_limit, .batch_max = batch_max};
    policy = calloc(1, sizeof *policy);
    ck_assert_int_eq(voc_writer_start(&writer, store, base, &wo, policy), 0);
}

static void setup(void)
{
    char dir[] = "/tmp/voc-writer-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    loop_thread = pthread_self();
    memset(seen, 0, sizeof seen);
    done_count = done_wanted = 0;
    hold_entered = hold_open = false;
}

static void teardown(void)
{
    open_gate();
    open_hold();
    voc_writer_stop(writer);
    writer = NULL;
    voc_store_close(store);
    store = NULL;
    event_base_free(base);
    base = NULL;
    voc_test_rm_rf(tmp_dir);
}

START_TEST(group_commit)
{
    start(0, 0, 0, 0);
    close_gate();
    ck_assert(!voc_writer_idle(writer));
    for (int i = 1; i < 100; i++)
        submit(new_job(i));
    ck_assert_uint_eq(voc_writer_stats(writer)->queue_length, 99);
    open_gate();
    run_until_done(100);
    struct voc_writer_stats *st = voc_writer_stats(writer);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i].outcome, VOC_JOB_COMMITTED);
    ck_assert_uint_eq(st->jobs, 100);
    /* The gate's batch, then the 99 that queued behind it, together. */
    ck_assert_uint_eq(st->batches, 2);
    ck_assert_uint_lt(st->batches, st->jobs);
    ck_assert_uint_eq(st->batch_size_max, 99);
    ck_assert_uint_eq(st->refused, 0);
    ck_assert_uint_eq(st->retries, 0);
    ck_assert_uint_eq(st->queue_length, 0);
    ck_assert(voc_writer_idle(writer));
}
END_TEST

START_TEST(batch_max)
{
    start(0, 0, 0, 10);
    close_gate();
    for (int i = 1; i <= 50; i++)
        submit(new_job(i));
    open_gate();
    run_until_done(51);
    struct voc_writer_stats *st = voc_writer_stats(writer);
    ck_assert_uint_eq(st->batches, 6);
    ck_assert_uint_eq(st->batch_size_max, 10);
    ck_assert_uint_eq(st->jobs, 51);
}
END_TEST

START_TEST(refused_job_rolls_back_alone)
{
    start(0, 0, 0, 0);
    close_gate();
    struct test_job *a = new_job(1), *b = new_job(2), *c = new_job(3), *d = new_job(4);
    b->refuse = true;
    d->refuse = true;
    d->refuse_silently = true;
    submit(a);
    submit(b);
    submit(c);
    submit(d);
    open_gate();
    run_until_done(5);
    ck_assert_int_eq(seen[1].outcome, VOC_JOB_COMMITTED);
    ck_assert_int_eq(seen[2].outcome, VOC_JOB_REFUSED);
    ck_assert_int_eq(seen[2].err.status, 409);
    ck_assert_str_eq(seen[2].err.code, "conflict");
    ck_assert_str_eq(seen[2].err.message, "job 2 refused");
    ck_assert_int_eq(seen[3].outcome, VOC_JOB_COMMITTED);
    /* Refused without a reason is a bug in the job: 500. */
    ck_assert_int_eq(seen[4].outcome, VOC_JOB_REFUSED);
    ck_assert_int_eq(seen[4].err.status, 500);
    ck_assert_str_eq(seen[4].err.code, "internal");
    ck_assert(key_stored(1, NULL));
    ck_assert(!key_stored(2, NULL));
    ck_assert(key_stored(3, NULL));
    ck_assert(!key_stored(4, NULL));
    struct voc_writer_stats *st = voc_writer_stats(writer);
    ck_assert_uint_eq(st->refused, 2);
    ck_assert_uint_eq(st->batches, 2); /* one batch for all four */
}
END_TEST

START_TEST(id_allocator)
{
    /* The allocator starts after the highest case id in the store. */
    struct voc_store_options so = {.path = tmp_dir};
    char err[256];
    ck_assert(voc_store_open(&store, &so, err, sizeof err) == 0);
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    struct voc_key k;
    voc_key_init(&k);
    voc_key_u64(&k, 41);
    voc_txn_put(&txn, VOC_DB_CASES, k.buf, k.len, "{}", 2);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    struct voc_writer_options wo = {0};
    policy = calloc(1, sizeof *policy);
    ck_assert_int_eq(voc_writer_start(&writer, store, base, &wo, policy), 0);

    close_gate();
    struct test_job *a = new_job(1), *b = new_job(2), *c = new_job(3);
    a->take_id = b->take_id = c->take_id = true;
    b->refuse = true;
    submit(a);
    submit(b);
    submit(c);
    open_gate();
    run_until_done(4);
    ck_assert_uint_eq(seen[1].id, 42);
    ck_assert_uint_eq(seen[2].id, 43);
    ck_assert_int_eq(seen[2].outcome, VOC_JOB_REFUSED);
    ck_assert_uint_eq(seen[3].id, 43); /* the refused job's id is given out again */

    struct test_job *e = new_job(5);
    e->take_id = true;
    submit(e);
    run_until_done(5);
    ck_assert_uint_eq(seen[5].id, 44);
}
END_TEST

START_TEST(queue_limit)
{
    start(0, 0, 5, 0);
    ck_assert_uint_eq(voc_writer_queue_limit(writer), 5);
    close_gate(); /* taken by the writer: the queue is empty again */
    for (int i = 1; i <= 5; i++)
        submit(new_job(i));
    struct test_job *extra = new_job(6);
    ck_assert_int_eq(voc_writer_submit(writer, &extra->base), -1);
    free(extra); /* not taken: its done() will never run */
    ck_assert_uint_eq(voc_writer_stats(writer)->queue_length, 5);
    open_gate();
    run_until_done(6);
    ck_assert(!seen[6].done);
    for (int i = 0; i <= 5; i++)
        ck_assert_int_eq(seen[i].outcome, VOC_JOB_COMMITTED);
    /* Room again once the queue drained. */
    submit(new_job(7));
    run_until_done(7);
    ck_assert_int_eq(seen[7].outcome, VOC_JOB_COMMITTED);
}
END_TEST

START_TEST(map_full_retry)
{
    start(64 << 10, 0, 0, 0);
    close_gate();
    for (int i = 1; i <= 40; i++) {
        struct test_job *j = new_job(i);
        j->value_len = 8 << 10;
        submit(j);
    }
    open_gate();
    run_until_done(41);
    struct voc_writer_stats *st = voc_writer_stats(writer);
    for (int i = 1; i <= 40; i++) {
        ck_assert_int_eq(seen[i].outcome, VOC_JOB_COMMITTED);
        ck_assert_int_ge(seen[i].runs, 1);
    }
    ck_assert_uint_gt(st->retries, 0);
    ck_assert_int_gt(seen[1].runs, 1); /* the batch ran again after the map grew */
    ck_assert_uint_eq(st->unavailable, 0);
    ck_assert_uint_eq(st->batches, 2); /* a retried batch is still one batch */
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_ge(info.map_size, 40 * (8 << 10));
}
END_TEST

START_TEST(max_map_size_reached)
{
    start(64 << 10, 128 << 10, 0, 0);
    struct test_job *big = new_job(1);
    big->value_len = 256 << 10;
    submit(big);
    run_until_done(1);
    ck_assert_int_eq(seen[1].outcome, VOC_JOB_UNAVAILABLE);
    ck_assert_int_eq(seen[1].err.status, 503);
    ck_assert_str_eq(seen[1].err.code, "unavailable");
    ck_assert_msg(strstr(seen[1].err.message, "full") != NULL, "%s", seen[1].err.message);
    struct voc_writer_stats *st = voc_writer_stats(writer);
    ck_assert_uint_eq(st->unavailable, 1);
    ck_assert_uint_gt(st->retries, 0);

    /* The whole batch shares the fate of the job that did not fit... */
    close_gate();
    struct test_job *small = new_job(2);
    big = new_job(3);
    big->value_len = 256 << 10;
    submit(small);
    submit(big);
    open_gate();
    run_until_done(4);
    ck_assert_int_eq(seen[2].outcome, VOC_JOB_UNAVAILABLE);
    ck_assert_int_eq(seen[3].outcome, VOC_JOB_UNAVAILABLE);
    ck_assert_uint_eq(st->unavailable, 3);
    /* ...and the store goes on taking what fits. */
    submit(new_job(4));
    run_until_done(5);
    ck_assert_int_eq(seen[4].outcome, VOC_JOB_COMMITTED);
}
END_TEST

/* done() waits for the loop: nothing runs on the writer thread, even long after commit. */
START_TEST(done_only_on_loop)
{
    start(0, 0, 0, 0);
    for (int i = 0; i < 10; i++)
        submit(new_job(i));
    for (int tries = 0; tries < 200 && voc_writer_stats(writer)->jobs < 10; tries++)
        usleep(10000);
    ck_assert_uint_eq(voc_writer_stats(writer)->jobs, 10);
    ck_assert(key_stored(9, NULL));  /* durable... */
    ck_assert_int_eq(done_count, 0); /* ...but nobody was told yet */
    ck_assert(!voc_writer_idle(writer));
    run_until_done(10);
    ck_assert(voc_writer_idle(writer));
}
END_TEST

/* LMDB commits a transaction that changed nothing without writing or syncing. A batch of
 * such jobs must not count as the fsync that makes the batch before it durable. */
START_TEST(empty_batch_does_not_confirm_previous)
{
    start(0, 0, 0, 3);
    close_gate(); /* batch A: job 0 writes */
    struct test_job *n1 = new_job(1), *n2 = new_job(2), *r3 = new_job(3), *h = new_job(4);
    n1->noop = n2->noop = true;
    r3->refuse = true; /* writes, then refuses: rolled back, the batch is empty */
    h->hold = true;    /* batch C: keeps the writer from its idle-time sync */
    submit(n1);
    submit(n2);
    submit(r3);
    submit(h);
    uint64_t durable_before = voc_store_durable_txnid(store);
    open_gate();
    /* C was queued before A finished, so the writer never went idle (no idle-time sync):
     * A and the empty batch B are answered while C is still pending, and only a sync
     * after B can have made A durable. done() checks it for every job. */
    run_until_done(4);
    ck_assert_int_eq(seen[0].outcome, VOC_JOB_COMMITTED);
    ck_assert_int_eq(seen[1].outcome, VOC_JOB_COMMITTED);
    ck_assert_int_eq(seen[2].outcome, VOC_JOB_COMMITTED);
    ck_assert_int_eq(seen[3].outcome, VOC_JOB_REFUSED);
    ck_assert(key_stored(0, NULL));
    ck_assert(!key_stored(3, NULL));
    ck_assert_uint_gt(voc_store_durable_txnid(store), durable_before);
    open_hold();
    run_until_done(5);
    ck_assert_int_eq(seen[4].outcome, VOC_JOB_COMMITTED);
    ck_assert_uint_eq(voc_writer_stats(writer)->batches, 3);
}
END_TEST

/* An empty batch with nothing unsynced before it is answered at once. */
START_TEST(empty_batch_alone)
{
    start(0, 0, 0, 0);
    struct test_job *n = new_job(1);
    n->noop = true;
    submit(n);
    run_until_done(1);
    ck_assert_int_eq(seen[1].outcome, VOC_JOB_COMMITTED);
    ck_assert(voc_writer_idle(writer));
}
END_TEST

/* Stopping finishes queued jobs and runs their done() before returning. */
START_TEST(stop_finishes_queue)
{
    start(0, 0, 0, 0);
    close_gate();
    for (int i = 1; i <= 20; i++)
        submit(new_job(i));
    open_gate();
    done_wanted = 21;
    voc_writer_stop(writer);
    writer = NULL;
    ck_assert_int_eq(done_count, 21);
    for (int i = 0; i <= 20; i++)
        ck_assert_int_eq(seen[i].outcome, VOC_JOB_COMMITTED);
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, group_commit);
    tcase_add_test(tc, batch_max);
    tcase_add_test(tc, refused_job_rolls_back_alone);
    tcase_add_test(tc, id_allocator);
    tcase_add_test(tc, queue_limit);
    tcase_add_test(tc, map_full_retry);
    tcase_add_test(tc, max_map_size_reached);
    tcase_add_test(tc, done_only_on_loop);
    tcase_add_test(tc, stop_finishes_queue);
    tcase_add_test(tc, empty_batch_does_not_confirm_previous);
    tcase_add_test(tc, empty_batch_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(writer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
