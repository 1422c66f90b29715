/* The notifier (daemon/notify.c) with a real store, writer and event loop: it delivers only
 * what is durable. A notification written by a commit whose meta page is not synced yet must
 * wait: after a power loss that commit (and the breach behind it) could be gone, and the
 * breach would fire again under another notification id. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "notify.h"
#include "policy.h"
#include "store.h"
#include "timeutil.h"
#include "writer.h"

#include <check.h>
#include <event2/event.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmp_dir[PATH_MAX];
static struct voc_store *store;
static struct event_base *base;
static struct voc_writer *writer;
static struct voc_notify *notify;
static struct voc_config cfg;
static struct voc_notifier_config journal = {
    .name = "journal", .type = VOC_NOTIFIER_LOG, .timeout_s = 10, .expire_s = 86400};

static void setup(void)
{
    char dir[] = "/tmp/voc-notify-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
    base = event_base_new();
    struct voc_store_options so = {.path = tmp_dir, .map_size = 8 << 20, .max_map_size = 64 << 20};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    struct voc_writer_options wo = {0};
    ck_assert_int_eq(
        voc_writer_start(&writer, store, base, &wo, calloc(1, sizeof(struct voc_policy))), 0);
    cfg.notifiers = &journal;
    cfg.notifier_count = 1;
    voc_log_set_level(VOC_LOG_ERROR); /* the log notifier's INFO lines are not the point */
}

static void teardown(void)
{
    voc_notify_stop(notify);
    voc_writer_stop(writer);
    voc_notify_free(notify);
    notify = NULL;
    voc_store_close(store);
    event_base_free(base);
    voc_test_rm_rf(tmp_dir);
}

static void run_loop_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static char *status_of(uint64_t id)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    unsigned char key[8];
    voc_key_set_u64(key, id);
    MDB_val v;
    ck_assert_int_eq(voc_txn_get(&txn, VOC_DB_OUTBOX, key, sizeof key, &v), 0);
    json_t *entry = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    voc_txn_abort(&txn);
    ck_assert_ptr_nonnull(entry);
    char *status = strdup(json_string_value(json_object_get(entry, "status")));
    json_decref(entry);
    return status;
}

START_TEST(waits_until_the_outbox_entry_is_durable)
{
    /* A commit of ours, not synced: LMDB's meta page of it is only in the page cache. */
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    json_t *entry = json_pack("{s:s, s:s}", "notifier", "journal", "message", "respond 超时");
    uint64_t id = 0;
    ck_assert_int_eq(voc_notify_outbox_put(&txn, voc_now_us(), 1, 0, entry, &id), 0);
    json_decref(entry);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    uint64_t committed = mdb_txn_id(txn.txn);
    voc_txn_abort(&txn);
    ck_assert_uint_lt(voc_store_durable_txnid(store), committed);

    ck_assert_int_eq(voc_notify_start(&notify, base, store, writer, &cfg), 0);
    run_loop_ms(300);
    char *status = status_of(id);
    ck_assert_str_eq(status, "pending");
    free(status);

    /* On disk now: it goes out (the log notifier always succeeds) and is recorded as sent. */
    ck_assert_int_eq(voc_store_sync(store), 0);
    for (int i = 0; i < 50; i++) {
        run_loop_ms(100);
        status = status_of(id);
        bool sent = strcmp(status, "sent") == 0;
        free(status);
        if (sent)
            return;
    }
    ck_abort_msg("the durable notification was not sent");
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("durable");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, waits_until_the_outbox_entry_is_durable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
