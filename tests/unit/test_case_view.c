/* How a case is shown (daemon/case_view.[ch]): the masking the viewer role gets, of
 * customer.contact and of addresses and numbers that channels put in fields and event
 * data. */
#include "case_view.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void assert_masked_emails(const char *in, const char *want, bool want_found)
{
    bool found;
    char *out = voc_mask_emails(in, &found);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strcmp(out, want) == 0, "'%s' -> '%s', want '%s'", in, out, want);
    ck_assert_msg(found == want_found, "'%s': found=%d", in, found);
    free(out);
}

START_TEST(emails_in_text)
{
    assert_masked_emails("zhang@example.com", "z***@example.com", true);
    assert_masked_emails("张伟 <zhangwei@example.com>", "张伟 <z***@example.com>", true);
    assert_masked_emails("a@x.cn, Bo <bo.li+voc@mail.example.org>",
                         "a***@x.cn, Bo <b***@mail.example.org>", true);
    assert_masked_emails("写信给 zhang@example.com.", "写信给 z***@example.com.", true);
    /* A multi-byte first character stays whole. */
    assert_masked_emails("张三@例子.中国", "张***@例子.中国", true);
    /* Not addresses. */
    assert_masked_emails("no address here", "no address here", false);
    assert_masked_emails("@example.com", "@example.com", false);
    assert_masked_emails("user@localhost", "user@localhost", false);
    assert_masked_emails("a @ b", "a @ b", false);
    assert_masked_emails("", "", false);
    /* Message ids have the same shape and are masked too (when unsure, mask). */
    assert_masked_emails("<CAF123abc@mail.gmail.com>", "<C***@mail.gmail.com>", true);
}
END_TEST

START_TEST(phones)
{
    ck_assert(voc_looks_like_phone("13812345678"));
    ck_assert(voc_looks_like_phone("+86 138-1234-5678"));
    ck_assert(voc_looks_like_phone("(021) 6123 4567"));
    ck_assert(voc_looks_like_phone("400.820.8820"));
    ck_assert(!voc_looks_like_phone("2026-10-01"));       /* a date */
    ck_assert(!voc_looks_like_phone("123456"));           /* too short */
    ck_assert(!voc_looks_like_phone("1234567890123456")); /* longer than E.164 */
    ck_assert(!voc_looks_like_phone("WO-20261123-0042")); /* letters: an order number */
    ck_assert(!voc_looks_like_phone("电话13812345678"));
    ck_assert(!voc_looks_like_phone(""));
}
END_TEST

static json_t *view_of(const char *json)
{
    json_error_t err;
    json_t *v = json_loads(json, 0, &err);
    ck_assert_msg(v != NULL, "%s", err.text);
    return v;
}

static const char *at(json_t *root, const char *pointer)
{
    /* a tiny JSON pointer: /a/b/0/c */
    json_t *v = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", pointer);
    for (char *save = NULL, *part = strtok_r(buf, "/", &save); part;
         part = strtok_r(NULL, "/", &save)) {
        if (json_is_array(v))
            v = json_array_get(v, strtoul(part, NULL, 10));
        else
            v = json_object_get(v, part);
    }
    ck_assert_msg(json_is_string(v), "%s is not a string", pointer);
    return json_string_value(v);
}

/* What the e-mail plugin stores, and what a webhook may map. */
START_TEST(viewer_masks_fields_and_event_data)
{
    json_t *view = view_of(
        "{\"customer\": {\"name\": \"张伟\", \"contact\": \"zhangwei@example.com\"},"
        " \"subject\": \"发票 zhangwei@example.com\","
        " \"fields\": {\"from\": \"张伟 <zhangwei@example.com>\","
        "   \"envelope_from\": \"bounce-42@example.com\","
        "   \"to\": \"service@vendor.cn\", \"cc\": \"Li <li@example.com>, wang@example.com\","
        "   \"recipients\": [\"service@vendor.cn\", \"audit@vendor.cn\"],"
        "   \"Phone\": 13812345678, \"mobile\": \"WeChat zw1988\","
        "   \"date\": \"2026-11-23\", \"order\": \"WO-20261123-0042\", \"count\": 12345678,"
        "   \"callback\": \"+86 138 1234 5678\","
        "   \"nested\": {\"list\": [\"ask ops@example.com\", 1, null, true],"
        "               \"reply_to\": \"none given\"}},"
        " \"events\": ["
        "   {\"seq\": 1, \"type\": \"received\", \"data\": {}},"
        "   {\"seq\": 2, \"type\": \"message\", \"note\": \"正文\","
        "    \"data\": {\"from\": \"zhangwei@example.com\", \"from_name\": \"张伟\","
        "               \"subject\": \"Re: 发票\"}},"
        "   {\"seq\": 3, \"type\": \"note\", \"note\": \"x\"}]}");
    voc_case_mask_for_viewer(view);
    ck_assert_str_eq(at(view, "/customer/contact"), "z***@example.com");
    ck_assert_str_eq(at(view, "/customer/name"), "张伟");
    ck_assert_str_eq(at(view, "/fields/from"), "张伟 <z***@example.com>");
    ck_assert_str_eq(at(view, "/fields/envelope_from"), "b***@example.com");
    ck_assert_str_eq(at(view, "/fields/to"), "s***@vendor.cn");
    ck_assert_str_eq(at(view, "/fields/cc"), "Li <l***@example.com>, w***@example.com");
    ck_assert_str_eq(at(view, "/fields/recipients/0"), "s***@vendor.cn");
    ck_assert_str_eq(at(view, "/fields/recipients/1"), "a***@vendor.cn");
    ck_assert_str_eq(at(view, "/fields/Phone"), "138****5678"); /* a number under a contact key */
    ck_assert_str_eq(at(view, "/fields/mobile"), "W***");       /* no address, no phone */
    ck_assert_str_eq(at(view, "/fields/callback"), "+86****5678");
    ck_assert_str_eq(at(view, "/fields/nested/list/0"), "ask o***@example.com");
    ck_assert_str_eq(at(view, "/fields/nested/reply_to"), "n***");
    /* Left alone: dates, order numbers, plain numbers, names, and the case's own texts
     * (only customer.contact is masked there). */
    ck_assert_str_eq(at(view, "/fields/date"), "2026-11-23");
    ck_assert_str_eq(at(view, "/fields/order"), "WO-20261123-0042");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(view, "fields"), "count")),
                     12345678);
    ck_assert_str_eq(at(view, "/events/1/data/from"), "z***@example.com");
    ck_assert_str_eq(at(view, "/events/1/data/from_name"), "张伟");
    ck_assert_str_eq(at(view, "/events/1/data/subject"), "Re: 发票");
    ck_assert_str_eq(at(view, "/events/1/note"), "正文");
    ck_assert_str_eq(at(view, "/subject"), "发票 zhangwei@example.com");
    /* Nothing of the address survives anywhere in fields or event data. */
    char *text = json_dumps(json_object_get(view, "fields"), 0);
    ck_assert_ptr_null(strstr(text, "zhangwei@"));
    ck_assert_ptr_null(strstr(text, "13812345678"));
    ck_assert_ptr_null(strstr(text, "1234 5678"));
    free(text);
    text = json_dumps(json_object_get(view, "events"), 0);
    ck_assert_ptr_null(strstr(text, "zhangwei@"));
    free(text);
    json_decref(view);
}
END_TEST

/* The view shares values with the stored record it was built from: masking must not
 * change the record. */
START_TEST(record_untouched)
{
    json_t *record = view_of("{\"id\": 1, \"customer\": {\"contact\": \"a@b.cn\"},"
                             " \"fields\": {\"from\": \"a@b.cn\"}}");
    json_t *events =
        view_of("[{\"seq\": 1, \"type\": \"message\", \"data\": {\"from\": \"a@b.cn\"}}]");
    json_t *view = voc_case_view(record, events, 0);
    voc_case_mask_for_viewer(view);
    ck_assert_str_eq(at(view, "/fields/from"), "a***@b.cn");
    ck_assert_str_eq(at(view, "/events/0/data/from"), "a***@b.cn");
    ck_assert_str_eq(at(view, "/customer/contact"), "a***@b.cn");
    ck_assert_str_eq(at(record, "/fields/from"), "a@b.cn");
    ck_assert_str_eq(at(record, "/customer/contact"), "a@b.cn");
    ck_assert_str_eq(at(events, "/0/data/from"), "a@b.cn");
    json_decref(view);
    json_decref(record);
    json_decref(events);
}
END_TEST

static Suite *case_view_suite(void)
{
    Suite *s = suite_create("case_view");
    TCase *tc = tcase_create("masking");
    tcase_add_test(tc, emails_in_text);
    tcase_add_test(tc, phones);
    tcase_add_test(tc, viewer_masks_fields_and_event_data);
    tcase_add_test(tc, record_untouched);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(case_view_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
