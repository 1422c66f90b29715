/* The e-mail plugin's file side: the content-addressed attachment store
 * (plugins/email/attachments.c) and the Maildir queue (plugins/email/maildir.c) on a real
 * event loop in a temporary folder: new/ -> cur/ only after the owner says "durable",
 * rejected/ with the reason for permanent failures, untouched for temporary ones. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attachments.h"
#include "maildir.h"
#include "worker.h"

static char *tmpdir(void)
{
    char *d = g_dir_make_tmp("voc-email-XXXXXX", NULL);
    ck_assert_ptr_nonnull(d);
    return d;
}

static void rm_rf(const char *path)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    g_free(cmd);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- attachments -------------------------------------------------------------------------- */

START_TEST(attachment_put_is_content_addressed)
{
    char *root_parent = tmpdir();
    char *root = g_strdup_printf("%s/email/attachments", root_parent);
    ck_assert_int_eq(voc_attach_init(root), 0);
    char hex[65], err[256];
    bool stored;
    ck_assert_int_eq(voc_attach_put(root, "abc", 3, hex, &stored, err, sizeof err), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert(stored);
    char path[1024];
    ck_assert_int_eq(voc_attach_path(root, hex, path, sizeof path), 0);
    ck_assert(g_str_has_suffix(path, "/ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    gchar *content = NULL;
    gsize n = 0;
    ck_assert(g_file_get_contents(path, &content, &n, NULL));
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(content, "abc", 3) == 0);
    g_free(content);
    /* same content again: nothing written */
    ck_assert_int_eq(voc_attach_put(root, "abc", 3, hex, &stored, err, sizeof err), 0);
    ck_assert(!stored);
    /* a damaged copy (wrong size) is replaced */
    ck_assert(g_file_set_contents(path, "ab", 2, NULL));
    ck_assert_int_eq(voc_attach_put(root, "abc", 3, hex, &stored, err, sizeof err), 0);
    ck_assert(stored);
    /* no temporary files left behind */
    char *dir = g_path_get_dirname(path);
    GDir *gd = g_dir_open(dir, 0, NULL);
    const char *name;
    int files = 0;
    while ((name = g_dir_read_name(gd))) {
        ck_assert_msg(name[0] != '.', "left over: %s", name);
        files++;
    }
    ck_assert_int_eq(files, 1);
    g_dir_close(gd);
    g_free(dir);
    /* empty content is a valid attachment */
    ck_assert_int_eq(voc_attach_put(root, "", 0, hex, &stored, err, sizeof err), 0);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(voc_attach_path(root, "not-hex", path, sizeof path), -1);
    ck_assert_int_eq(voc_attach_path(root, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                                     path, sizeof path),
                     -1);
    rm_rf(root_parent);
    g_free(root);
    g_free(root_parent);
}
END_TEST

START_TEST(attachment_put_reports_errors)
{
    /* the store root is a file, not a folder: even root cannot write below it */
    char *parent = tmpdir();
    char *root = g_strdup_printf("%s/not-a-dir", parent);
    ck_assert(g_file_set_contents(root, "x", 1, NULL));
    char hex[65], err[256];
    errno = 0;
    ck_assert_int_eq(voc_attach_put(root, "x", 1, hex, NULL, err, sizeof err), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_msg(strstr(err, "cannot create") != NULL, "%s", err);
    rm_rf(parent);
    g_free(root);
    g_free(parent);
}
END_TEST

/* ---- Maildir ------------------------------------------------------------------------------ */

struct md_harness {
    struct event_base *base;
    struct voc_maildir *md;
    GPtrArray *seen;  /* names handed over */
    GPtrArray *data;  /* their content */
    /* what to answer for each delivery, in order; beyond: DELIVERED */
    enum voc_maildir_outcome answers[8];
    size_t answer_count;
    bool defer; /* keep the items and answer later from the test */
    struct voc_maildir_item *held[8];
    size_t held_count;
};

static void md_deliver(void *arg, struct voc_maildir_item *item, const char *name,
                       const char *data, size_t len)
{
    struct md_harness *h = arg;
    size_t i = h->seen->len;
    g_ptr_array_add(h->seen, g_strdup(name));
    g_ptr_array_add(h->data, g_strndup(data, len));
    if (h->defer) {
        h->held[h->held_count++] = item;
        return;
    }
    enum voc_maildir_outcome o = i < h->answer_count ? h->answers[i] : VOC_MAILDIR_DELIVERED;
    voc_maildir_done(h->md, item, o, o == VOC_MAILDIR_REJECTED ? "554 5.6.0 broken" : "later");
}

static void md_log(void *arg, int level, const char *message)
{
    (void)arg;
    (void)level;
    (void)message;
}

static void put_message(const char *root, const char *name, const char *content)
{
    char *tmp = g_strdup_printf("%s/tmp/%s", root, name);
    char *dst = g_strdup_printf("%s/new/%s", root, name);
    ck_assert(g_file_set_contents(tmp, content, -1, NULL));
    ck_assert_int_eq(rename(tmp, dst), 0);
    g_free(tmp);
    g_free(dst);
}

static void run_loop(struct md_harness *h, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
    event_base_loopexit(h->base, &tv);
    event_base_dispatch(h->base);
}

static struct md_harness *md_open(const char *root, double rescan)
{
    struct md_harness *h = g_new0(struct md_harness, 1);
    h->base = event_base_new();
    h->seen = g_ptr_array_new_with_free_func(g_free);
    h->data = g_ptr_array_new_with_free_func(g_free);
    struct voc_maildir_options o = {.root = root, .rescan_s = rescan, .max_inflight = 4,
                                    .max_size = 1000, .deliver = md_deliver, .log = md_log,
                                    .arg = h};
    char err[256];
    ck_assert_int_eq(voc_maildir_open(h->base, &o, &h->md, err, sizeof err), 0);
    return h;
}

static void md_close(struct md_harness *h)
{
    voc_maildir_free(h->md);
    event_base_free(h->base);
    g_ptr_array_free(h->seen, TRUE);
    g_ptr_array_free(h->data, TRUE);
    g_free(h);
}

START_TEST(maildir_moves_only_after_durable)
{
    char *parent = tmpdir();
    char *root = g_strdup_printf("%s/Maildir", parent);
    struct md_harness *h = md_open(root, 30);
    h->defer = true;
    /* the folders were created */
    char *p = g_strdup_printf("%s/tmp", root);
    ck_assert(exists(p));
    g_free(p);
    put_message(root, "1700000002.M2.host", "Subject: two\r\n\r\n2\r\n");
    put_message(root, "1700000001.M1.host", "Subject: one\r\n\r\n1\r\n");
    run_loop(h, 0.3);
    ck_assert_uint_eq(h->seen->len, 2);
    ck_assert_str_eq(g_ptr_array_index(h->seen, 0), "1700000001.M1.host"); /* oldest first */
    ck_assert_str_eq(g_ptr_array_index(h->data, 0), "Subject: one\r\n\r\n1\r\n");
    /* handed over, not durable yet: still in new/ */
    p = g_strdup_printf("%s/new/1700000001.M1.host", root);
    ck_assert(exists(p));
    g_free(p);
    /* a rescan while they are in flight does not hand them over twice */
    run_loop(h, 0.1);
    ck_assert_uint_eq(h->seen->len, 2);
    voc_maildir_done(h->md, h->held[0], VOC_MAILDIR_DELIVERED, NULL);
    voc_maildir_done(h->md, h->held[1], VOC_MAILDIR_REJECTED, "554 5.6.0 malformed");
    p = g_strdup_printf("%s/cur/1700000001.M1.host:2,S", root);
    ck_assert(exists(p));
    g_free(p);
    p = g_strdup_printf("%s/new/1700000001.M1.host", root);
    ck_assert(!exists(p));
    g_free(p);
    p = g_strdup_printf("%s/rejected/1700000002.M2.host.reason", root);
    gchar *reason = NULL;
    ck_assert(g_file_get_contents(p, &reason, NULL, NULL));
    ck_assert_str_eq(reason, "554 5.6.0 malformed\n");
    g_free(reason);
    g_free(p);
    md_close(h);
    rm_rf(parent);
    g_free(root);
    g_free(parent);
}
END_TEST

START_TEST(maildir_retry_waits_for_rescan)
{
    char *parent = tmpdir();
    struct md_harness *h = md_open(parent, 0.4);
    h->answers[0] = VOC_MAILDIR_RETRY;
    h->answer_count = 1;
    put_message(parent, "1700000003.M3.host", "Subject: three\r\n\r\n3\r\n");
    run_loop(h, 0.2);
    ck_assert_uint_eq(h->seen->len, 1);
    char *p = g_strdup_printf("%s/new/1700000003.M3.host", parent);
    ck_assert(exists(p)); /* left for a retry */
    /* a new arrival during the quiet time is not taken either */
    put_message(parent, "1700000004.M4.host", "Subject: four\r\n\r\n4\r\n");
    run_loop(h, 0.1);
    ck_assert_uint_eq(h->seen->len, 1);
    /* the rescan takes both */
    run_loop(h, 0.6);
    ck_assert_uint_ge(h->seen->len, 3);
    ck_assert(!exists(p));
    g_free(p);
    p = g_strdup_printf("%s/cur/1700000003.M3.host:2,S", parent);
    ck_assert(exists(p));
    g_free(p);
    md_close(h);
    rm_rf(parent);
    g_free(parent);
}
END_TEST

START_TEST(maildir_rejects_oversize_unread)
{
    char *parent = tmpdir();
    struct md_harness *h = md_open(parent, 30);
    GString *big = g_string_new("Subject: big\r\n\r\n");
    while (big->len <= 1000)
        g_string_append(big, "0123456789");
    put_message(parent, "1700000005.M5.host", big->str);
    g_string_free(big, TRUE);
    run_loop(h, 0.2);
    ck_assert_uint_eq(h->seen->len, 0);
    char *p = g_strdup_printf("%s/rejected/1700000005.M5.host.reason", parent);
    gchar *reason = NULL;
    ck_assert(g_file_get_contents(p, &reason, NULL, NULL));
    ck_assert(strstr(reason, "size limit of 1000 bytes") != NULL);
    g_free(reason);
    g_free(p);
    md_close(h);
    rm_rf(parent);
    g_free(parent);
}
END_TEST

/* ---- worker ------------------------------------------------------------------------------- */

struct job {
    struct voc_worker_item item;
    int n;
    pthread_t ran_on;
    bool done;
};

struct wstate {
    struct event_base *base;
    int finished;
    int order[16];
    int discarded;
};

static void job_run(struct voc_worker_item *it, void *arg)
{
    (void)arg;
    struct job *j = (struct job *)it;
    j->ran_on = pthread_self();
    g_usleep(2000);
}

static void job_done(struct voc_worker_item *it, void *arg)
{
    struct wstate *w = arg;
    struct job *j = (struct job *)it;
    j->done = true;
    w->order[w->finished++] = j->n;
    if (w->finished == 8)
        event_base_loopbreak(w->base);
}

static void job_discard(struct voc_worker_item *it, void *arg)
{
    struct wstate *w = arg;
    (void)it;
    w->discarded++;
}

START_TEST(worker_runs_off_the_loop_in_order)
{
    struct wstate ws = {.base = event_base_new()};
    struct voc_worker *w;
    ck_assert_int_eq(voc_worker_start(ws.base, job_run, job_done, &ws, &w), 0);
    struct job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (struct job){.n = i};
        voc_worker_submit(w, &jobs[i].item);
    }
    struct timeval limit = {10, 0};
    event_base_loopexit(ws.base, &limit);
    event_base_dispatch(ws.base);
    ck_assert_int_eq(ws.finished, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(ws.order[i], i);
        ck_assert(!pthread_equal(jobs[i].ran_on, pthread_self()));
    }
    /* jobs queued at stop are handed back, never half-run into `done` */
    struct job late[3];
    for (int i = 0; i < 3; i++) {
        late[i] = (struct job){.n = 100 + i};
        voc_worker_submit(w, &late[i].item);
    }
    voc_worker_stop(w, job_discard);
    ck_assert_int_eq(ws.finished, 8);
    ck_assert_int_eq(ws.discarded, 3);
    event_base_free(ws.base);
}
END_TEST

static Suite *email_store_suite(void)
{
    Suite *s = suite_create("email_store");
    TCase *tc = tcase_create("attachments");
    tcase_add_test(tc, attachment_put_is_content_addressed);
    tcase_add_test(tc, attachment_put_reports_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("maildir");
    tcase_add_test(tc, maildir_moves_only_after_durable);
    tcase_add_test(tc, maildir_retry_waits_for_rescan);
    tcase_add_test(tc, maildir_rejects_oversize_unread);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    tc = tcase_create("worker");
    tcase_add_test(tc, worker_runs_off_the_loop_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(email_store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
