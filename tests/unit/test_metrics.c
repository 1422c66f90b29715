/* Metrics staging (daemon/metrics.c): what a writer batch counts shows only when it commits;
 * a refused job's counts are dropped, an aborted batch's forgotten, other threads unaffected. */
#include "metrics.h"

#include <check.h>
#include <event2/buffer.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct voc_metric *counter;
static struct voc_histogram *histogram;

static void setup(void)
{
    counter = voc_metric_register("test_total", NULL, VOC_METRIC_COUNTER, "test");
    static const double bounds[] = {1, 10};
    histogram = voc_histogram_register("test_seconds", NULL, "test", bounds, 2);
}

static void teardown(void)
{
    voc_metrics_stage_free();
    voc_metrics_reset();
}

/* The histogram's _count line, from the rendered text. */
static long observations(void)
{
    struct evbuffer *out = evbuffer_new();
    voc_metrics_render(out);
    size_t len = evbuffer_get_length(out);
    char *text = calloc(1, len + 1);
    evbuffer_remove(out, text, len);
    evbuffer_free(out);
    const char *at = strstr(text, "test_seconds_count ");
    ck_assert_ptr_nonnull(at);
    long n = strtol(at + strlen("test_seconds_count "), NULL, 10);
    free(text);
    return n;
}

static void *add_ten(void *arg)
{
    (void)arg;
    voc_metric_add(counter, 10);
    return NULL;
}

START_TEST(commit_applies_drop_and_abort_forget)
{
    voc_metrics_stage_begin();
    voc_metric_add(counter, 1);
    voc_histogram_observe(histogram, 0.5);
    size_t mark = voc_metrics_stage_mark();
    voc_metric_add(counter, 5); /* a refused job */
    voc_histogram_observe(histogram, 5);
    ck_assert_int_eq(voc_metric_value(counter), 0);
    voc_metrics_stage_drop(mark);
    voc_metrics_stage_commit();
    ck_assert_int_eq(voc_metric_value(counter), 1);
    ck_assert_int_eq(observations(), 1);

    voc_metrics_stage_begin();
    voc_metric_add(counter, 2);
    voc_histogram_observe(histogram, 0.5);
    voc_metrics_stage_abort();
    ck_assert_int_eq(voc_metric_value(counter), 1);
    ck_assert_int_eq(observations(), 1);

    /* Not staging: at once. */
    voc_metric_add(counter, 3);
    ck_assert_int_eq(voc_metric_value(counter), 4);
}
END_TEST

START_TEST(other_threads_count_at_once)
{
    voc_metrics_stage_begin();
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, add_ten, NULL), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(voc_metric_value(counter), 10);
    voc_metric_add(counter, 1);
    ck_assert_int_eq(voc_metric_value(counter), 10);
    voc_metrics_stage_commit();
    ck_assert_int_eq(voc_metric_value(counter), 11);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("staging");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, commit_applies_drop_and_abort_forget);
    tcase_add_test(tc, other_threads_count_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
