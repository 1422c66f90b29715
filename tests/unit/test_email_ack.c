/* The acknowledgement mail's pure parts (plugins/email/ack.c): which clock's due time is
 * promised, how it is written in the site's time zone, the templates, and which sender
 * addresses and Message-IDs may go into the mail's envelope and headers. */
#include <check.h>
#include <glib.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ack.h"

static json_t *view(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    ck_assert_msg(v != NULL, "bad fixture: %s", e.text);
    return v;
}

#define CLOCKS                                                                                     \
    "{\"clocks\":["                                                                                \
    "{\"name\":\"classify\",\"status\":\"met\",\"due_at\":\"2026-10-09T01:00:00.000Z\"},"          \
    "{\"name\":\"respond\",\"status\":\"running\",\"due_at\":\"2026-10-09T09:30:00.000Z\"},"       \
    "{\"name\":\"plan\",\"status\":\"warning\",\"due_at\":\"2026-10-10T09:00:00.000Z\"},"          \
    "{\"name\":\"resolve\",\"status\":\"paused\",\"due_at\":null}]}"

START_TEST(due_is_the_first_running_clock_or_the_named_one)
{
    json_t *v = view(CLOCKS);
    int64_t due = 0;
    ck_assert(voc_ack_due(v, NULL, &due)); /* classify is met: respond is the first running */
    ck_assert_int_eq(due, INT64_C(1791538200) * 1000000);
    ck_assert(voc_ack_due(v, "plan", &due)); /* warning still runs */
    ck_assert_int_eq(due, INT64_C(1791622800) * 1000000);
    ck_assert(!voc_ack_due(v, "classify", &due)); /* stopped: promises nothing */
    ck_assert(!voc_ack_due(v, "resolve", &due));  /* paused, no due time */
    ck_assert(!voc_ack_due(v, "nope", &due));
    json_decref(v);
    v = view("{\"clocks\":[]}");
    ck_assert(!voc_ack_due(v, NULL, &due));
    json_decref(v);
    v = view("{\"clocks\":[{\"name\":\"x\",\"status\":\"running\",\"due_at\":\"garbage\"}]}");
    ck_assert(!voc_ack_due(v, NULL, &due));
    json_decref(v);
    ck_assert(!voc_ack_due(NULL, NULL, &due));
}
END_TEST

START_TEST(due_time_in_the_site_time_zone)
{
    GTimeZone *shanghai = g_time_zone_new_identifier("Asia/Shanghai");
    ck_assert_ptr_nonnull(shanghai);
    char *text =
        voc_ack_format_time(INT64_C(1791538200) * 1000000, shanghai, "%Y-%m-%d %H:%M (UTC%:z)");
    ck_assert_str_eq(text, "2026-10-09 17:30 (UTC+08:00)");
    g_free(text);
    GTimeZone *utc = g_time_zone_new_utc();
    text = voc_ack_format_time(INT64_C(1791538200) * 1000000, utc, "%d.%m.%Y %H:%M");
    ck_assert_str_eq(text, "09.10.2026 09:30");
    g_free(text);
    g_time_zone_unref(utc);
    g_time_zone_unref(shanghai);
}
END_TEST

START_TEST(templates)
{
    struct voc_ack_values v = {
        .case_id = 42, .subject = "电饭煲 {due}", .name = "张三", .due = "2026-10-09 17:30"};
    char *out = voc_ack_render("[{case}] {name}：{subject} / {due} {unknown} {case", &v);
    /* a value is never expanded again; unknown and unclosed braces stay as written */
    ck_assert_str_eq(out, "[42] 张三：电饭煲 {due} / 2026-10-09 17:30 {unknown} {case");
    g_free(out);
    v.due = NULL;
    v.name = NULL;
    out = voc_ack_render("{name}{due}|{}|{{case}}", &v);
    ck_assert_str_eq(out, "|{}|{42}");
    g_free(out);
    out = voc_ack_render("", &v);
    ck_assert_str_eq(out, "");
    g_free(out);
}
END_TEST

START_TEST(addresses_and_message_ids)
{
    ck_assert(voc_ack_address_ok("customer@example.cn"));
    ck_assert(voc_ack_address_ok("a.b+tag@mail.example.com"));
    ck_assert(!voc_ack_address_ok(""));
    ck_assert(!voc_ack_address_ok(NULL));
    ck_assert(!voc_ack_address_ok("no-at-sign"));
    ck_assert(!voc_ack_address_ok("@example.com"));
    ck_assert(!voc_ack_address_ok("a@"));
    ck_assert(!voc_ack_address_ok("a@b@c"));
    ck_assert(!voc_ack_address_ok("a@b.c\r\nRCPT TO:<x@y>"));
    ck_assert(!voc_ack_address_ok("a b@example.com"));
    ck_assert(!voc_ack_address_ok("<a@example.com>"));
    ck_assert(!voc_ack_address_ok("a@example.com, b@example.com"));
    ck_assert(!voc_ack_address_ok("用户@example.cn"));
    ck_assert(voc_ack_message_id_ok("abc.123@example.com"));
    ck_assert(!voc_ack_message_id_ok("<abc@example.com>"));
    ck_assert(!voc_ack_message_id_ok("abc@example.com\r\nBcc: x@y"));
    ck_assert(!voc_ack_message_id_ok(""));
    char long_id[1000];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    ck_assert(!voc_ack_message_id_ok(long_id));
}
END_TEST

static Suite *email_ack_suite(void)
{
    Suite *s = suite_create("email_ack");
    TCase *tc = tcase_create("ack");
    tcase_add_test(tc, due_is_the_first_running_clock_or_the_named_one);
    tcase_add_test(tc, due_time_in_the_site_time_zone);
    tcase_add_test(tc, templates);
    tcase_add_test(tc, addresses_and_message_ids);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(email_ack_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
