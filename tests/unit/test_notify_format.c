/* The pure parts of notification delivery (daemon/notify_format.[ch]): the signature (known
 * answers computed with Python's hmac module), the retry schedule, the JSON payload, the
 * subject line, RFC 2047 encoded words and the RFC 5322 message. */
#include "notify_format.h"
#include "timeutil.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static char *b64_decode(const char *in, size_t len, size_t *out_len)
{
    unsigned char *out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    ck_assert_int_ge(n, 0);
    /* EVP_DecodeBlock counts padding bytes as data: take them off. */
    while (len > 0 && in[len - 1] == '=') {
        len--;
        n--;
    }
    out[n] = '\0';
    *out_len = (size_t)n;
    return (char *)out;
}

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra = c < 0x80             ? 0
                       : (c & 0xE0) == 0xC0 ? 1
                       : (c & 0xF0) == 0xE0 ? 2
                       : (c & 0xF8) == 0xF0 ? 3
                                            : 9;
        if (extra == 9 || i + extra >= len)
            return false;
        for (size_t k = 1; k <= extra; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

/* Decode "Name: =?UTF-8?B?..?=\r\n =?UTF-8?B?..?=\r\n" back to the text, checking every
 * word and line against the RFC's limits on the way. */
static char *decode_header(const char *header, const char *name)
{
    size_t nlen = strlen(name);
    ck_assert_int_eq(strncmp(header, name, nlen), 0);
    ck_assert_int_eq(strncmp(header + nlen, ": ", 2), 0);
    /* line lengths */
    for (const char *line = header; *line;) {
        const char *end = strstr(line, "\r\n");
        ck_assert_ptr_nonnull(end);
        ck_assert_int_le(end - line, 76);
        line = end + 2;
    }
    char *text = calloc(1, strlen(header) + 1);
    size_t tlen = 0;
    const char *p = header + nlen + 2;
    while (*p) {
        if (*p == '\r' || *p == '\n' || *p == ' ') {
            p++;
            continue;
        }
        ck_assert_int_eq(strncmp(p, "=?UTF-8?B?", 10), 0);
        const char *end = strstr(p + 10, "?=");
        ck_assert_ptr_nonnull(end);
        ck_assert_int_le(end + 2 - p, 75);
        size_t n;
        char *raw = b64_decode(p + 10, (size_t)(end - p - 10), &n);
        /* Each word holds whole characters (RFC 2047, 5 (3)). */
        ck_assert_msg(utf8_valid((unsigned char *)raw, n), "word splits a character");
        memcpy(text + tlen, raw, n);
        tlen += n;
        free(raw);
        p = end + 2;
    }
    text[tlen] = '\0';
    return text;
}

/* ---- signature ---- */

START_TEST(sign_known_answers)
{
    char sig[VOC_NOTIFY_SIG_LEN];
    const char *body = "{\"id\":1}";
    ck_assert_int_eq(voc_notify_sign("s3cret", 6, "1700000000", body, strlen(body), sig), 0);
    ck_assert_str_eq(sig,
                     "sha256=ee0658aa4e37018df69c24227df01e0f680eb3b87c7f1f9bd936e283cfe01d9b");
    /* An empty key and body are valid inputs, not "keep the previous key". */
    ck_assert_int_eq(voc_notify_sign("", 0, "1700000000", "", 0, sig), 0);
    ck_assert_str_eq(sig,
                     "sha256=c1da1b6c6b8e9da7f4bbb90f7cab0820f271ad19ccbf80c88479c4e14f37d1c6");
    /* The timestamp is covered: another one gives another MAC. */
    ck_assert_int_eq(voc_notify_sign("s3cret", 6, "1700000001", body, strlen(body), sig), 0);
    ck_assert_str_ne(sig,
                     "sha256=ee0658aa4e37018df69c24227df01e0f680eb3b87c7f1f9bd936e283cfe01d9b");
}
END_TEST

/* ---- backoff ---- */

START_TEST(backoff_doubles_and_caps)
{
    /* jitter 0.5 = the middle: exactly the base */
    ck_assert_int_eq(voc_notify_backoff_us(1, 0.5), 1000000);
    ck_assert_int_eq(voc_notify_backoff_us(2, 0.5), 2000000);
    ck_assert_int_eq(voc_notify_backoff_us(3, 0.5), 4000000);
    ck_assert_int_eq(voc_notify_backoff_us(9, 0.5), 256000000);
    /* 512 s is above the cap of 5 min */
    ck_assert_int_eq(voc_notify_backoff_us(10, 0.5), 300000000);
    ck_assert_int_eq(voc_notify_backoff_us(1000000, 0.5), 300000000);
    /* +-20 %, never above the cap */
    ck_assert_int_eq(voc_notify_backoff_us(1, 0.0), 800000);
    ck_assert_int_le(voc_notify_backoff_us(1, 0.999999), 1200000);
    ck_assert_int_ge(voc_notify_backoff_us(1, 0.999999), 1199990);
    ck_assert_int_eq(voc_notify_backoff_us(10, 0.0), 240000000);
    ck_assert_int_eq(voc_notify_backoff_us(10, 0.999), 300000000);
    /* out-of-range jitter is clamped, not trusted */
    ck_assert_int_eq(voc_notify_backoff_us(1, -3.0), 800000);
    ck_assert_int_le(voc_notify_backoff_us(1, 7.0), 1200000);
    /* 0 failures is treated like the first */
    ck_assert_int_eq(voc_notify_backoff_us(0, 0.5), 1000000);
}
END_TEST

/* ---- payload ---- */

START_TEST(payload_fields)
{
    json_t *entry = json_loads(
        "{\"id\":7,\"case_id\":42,\"event_seq\":3,\"notifier\":\"ops-hook\",\"message\":\"超时\","
        "\"created_at\":\"2026-11-23T01:15:00.123Z\",\"status\":\"pending\",\"attempts\":2,"
        "\"next_attempt_at\":\"2026-11-23T01:15:04.000Z\"}",
        0, NULL);
    json_t *summary = json_loads("{\"id\":42,\"state\":\"classified\",\"breached\":true}", 0, NULL);
    json_t *event =
        json_loads("{\"seq\":3,\"type\":\"clock_breached\",\"data\":{\"clock\":\"x\"}}", 0, NULL);
    json_t *p = voc_notify_payload(entry, summary, event, 3);
    json_t *want =
        json_loads("{\"id\":7,\"notifier\":\"ops-hook\",\"message\":\"超时\","
                   "\"created_at\":\"2026-11-23T01:15:00.123Z\",\"attempt\":3,"
                   "\"case\":{\"id\":42,\"state\":\"classified\",\"breached\":true},"
                   "\"event\":{\"seq\":3,\"type\":\"clock_breached\",\"data\":{\"clock\":\"x\"}}}",
                   0, NULL);
    ck_assert(json_equal(p, want));
    /* Bookkeeping of the outbox is not part of what receivers see. */
    ck_assert_ptr_null(json_object_get(p, "status"));
    ck_assert_ptr_null(json_object_get(p, "attempts"));
    /* The payload is a copy: changing it leaves the inputs alone. */
    json_object_set_new(json_object_get(p, "case"), "state", json_string("x"));
    ck_assert_str_eq(json_string_value(json_object_get(summary, "state")), "classified");
    json_decref(p);
    json_decref(want);

    /* No case, no event: null, not missing */
    p = voc_notify_payload(entry, NULL, NULL, 1);
    ck_assert(json_is_null(json_object_get(p, "case")));
    ck_assert(json_is_null(json_object_get(p, "event")));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "attempt")), 1);
    json_decref(p);
    json_decref(entry);
    json_decref(summary);
    json_decref(event);
}
END_TEST

/* ---- subject ---- */

START_TEST(subject_first_line)
{
    char *s = voc_notify_subject(12, "respond 超时\nsecond line");
    ck_assert_str_eq(s, "[VOC-12] respond 超时");
    free(s);
    s = voc_notify_subject(12, "  \r\n  lead blanks\tand tab  \r\nmore");
    ck_assert_str_eq(s, "[VOC-12] lead blanks and tab");
    free(s);
    s = voc_notify_subject(3, "");
    ck_assert_str_eq(s, "[VOC-3]");
    free(s);
    s = voc_notify_subject(3, NULL);
    ck_assert_str_eq(s, "[VOC-3]");
    free(s);

    /* 100 three-byte characters = 300 bytes: cut to at most 200 on a boundary */
    char long_text[301 + 1] = "";
    for (int i = 0; i < 100; i++)
        strcat(long_text, "漏");
    s = voc_notify_subject(5, long_text);
    size_t prefix = strlen("[VOC-5] ");
    ck_assert_int_eq(strncmp(s, "[VOC-5] ", prefix), 0);
    ck_assert_uint_eq(strlen(s) - prefix, 198); /* 66 whole characters */
    ck_assert(utf8_valid((unsigned char *)s, strlen(s)));
    free(s);
}
END_TEST

/* ---- RFC 2047 ---- */

START_TEST(header_ascii_stays_plain)
{
    char *h = voc_mime_header("Subject", "[VOC-1] plain words");
    ck_assert_str_eq(h, "Subject: [VOC-1] plain words\r\n");
    free(h);
    /* Something a reader would decode as an encoded word must be encoded itself. */
    h = voc_mime_header("Subject", "a =?x?= b");
    ck_assert_int_eq(strncmp(h, "Subject: =?UTF-8?B?", 19), 0);
    char *back = decode_header(h, "Subject");
    ck_assert_str_eq(back, "a =?x?= b");
    free(back);
    free(h);
}
END_TEST

START_TEST(header_utf8_b_encoded)
{
    const char *subject =
        "[VOC-12] 严重投诉: 冰箱批量漏水 — a customer's fridge leaks, 第二批次也有问题，"
        "请质量部立即处理并在24小时内回复客户 😀 end";
    char *h = voc_mime_header("Subject", subject);
    ck_assert_int_eq(strncmp(h, "Subject: =?UTF-8?B?", 19), 0);
    ck_assert_ptr_nonnull(strstr(h, "\r\n =?UTF-8?B?")); /* long: folded over lines */
    /* ends with exactly one CRLF, no bare LF anywhere */
    size_t len = strlen(h);
    ck_assert_int_eq(strcmp(h + len - 2, "\r\n"), 0);
    for (size_t i = 0; i < len; i++)
        if (h[i] == '\n')
            ck_assert_int_eq(h[i - 1], '\r');
    char *back = decode_header(h, "Subject");
    ck_assert_str_eq(back, subject);
    free(back);
    free(h);

    /* A short one: one word on the first line */
    h = voc_mime_header("Subject", "[VOC-7] 超时");
    ck_assert_str_eq(h, "Subject: =?UTF-8?B?W1ZPQy03XSDotoXml7Y=?=\r\n");
    free(h);
}
END_TEST

START_TEST(mime_date_format)
{
    char buf[48];
    voc_mime_date(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
    voc_mime_date(INT64_C(1790000000) * VOC_US_PER_S + 999999, buf, sizeof buf);
    ck_assert_str_eq(buf, "Mon, 21 Sep 2026 14:13:20 +0000");
}
END_TEST

START_TEST(angle_addresses)
{
    char *a = voc_mail_angle_addr("VOC Daemon <voc@example.com>");
    ck_assert_str_eq(a, "<voc@example.com>");
    free(a);
    a = voc_mail_angle_addr("  ops@example.com ");
    ck_assert_str_eq(a, "<ops@example.com>");
    free(a);
    ck_assert_ptr_null(voc_mail_angle_addr(""));
    ck_assert_ptr_null(voc_mail_angle_addr("two words@example.com"));
    ck_assert_ptr_null(voc_mail_angle_addr("x@example.com\r\nRCPT TO:<evil@example.com>"));
    ck_assert_ptr_null(voc_mail_angle_addr("Name <unterminated@example.com"));
    ck_assert_ptr_null(voc_mail_angle_addr(NULL));
}
END_TEST

/* ---- the whole message ---- */

static const char *header_value(const char *msg, const char *name, char *buf, size_t len)
{
    char needle[64], at_line[70];
    snprintf(needle, sizeof needle, "%s: ", name);
    snprintf(at_line, sizeof at_line, "\r\n%s", needle);
    const char *p = NULL;
    if (strncmp(msg, needle, strlen(needle)) == 0) {
        p = msg;
    } else if ((p = strstr(msg, at_line))) {
        p += 2;
    }
    if (!p)
        return NULL;
    p += strlen(needle);
    const char *end = strstr(p, "\r\n");
    snprintf(buf, len, "%.*s", (int)(end - p), p);
    return buf;
}

START_TEST(mail_message)
{
    json_t *payload = json_loads(
        "{\"id\":9,\"notifier\":\"ops-mail\",\"message\":\"respond 超时: 工单 12\\n请处理\","
        "\"created_at\":\"2026-11-23T01:15:00.123Z\",\"attempt\":1,"
        "\"case\":{\"id\":12,\"state\":\"classified\",\"subject\":\"冰箱漏水\",\"priority\":1,"
        "\"breached\":true},"
        "\"event\":{\"seq\":3,\"type\":\"clock_breached\",\"at\":\"2026-11-23T01:15:00.100Z\","
        "\"data\":{\"clock\":\"respond\",\"target_s\":2}}}",
        0, NULL);
    char *text = voc_notify_email_text(payload);
    ck_assert_ptr_nonnull(strstr(text, "respond 超时: 工单 12\n请处理\n"));
    ck_assert_ptr_nonnull(strstr(text, "Case 12\n"));
    ck_assert_ptr_nonnull(strstr(text, "Subject: 冰箱漏水\n"));
    ck_assert_ptr_nonnull(strstr(text, "SLA breached: yes\n"));
    ck_assert_ptr_nonnull(strstr(text, "Event 3: clock_breached at 2026-11-23T01:15:00.100Z\n"));
    ck_assert_ptr_nonnull(strstr(text, "clock: respond\n"));
    ck_assert_ptr_nonnull(strstr(text, "vocd notification 9, attempt 1"));

    const char *to[] = {"ops@example.com", "Quality <q@example.com>"};
    char *subject = voc_notify_subject(12, "respond 超时: 工单 12\n请处理");
    struct voc_notify_mail m = {.from = "VOC <voc@example.com>",
                                .to = to,
                                .to_count = 2,
                                .subject = subject,
                                .text = text,
                                .message_id = "vocd-notification-9.1@example.com",
                                .date_us = INT64_C(1790000000) * VOC_US_PER_S,
                                .case_id = 12,
                                .notification_id = 9};
    size_t len;
    char *msg = voc_notify_mail_build(&m, &len);
    ck_assert_uint_eq(len, strlen(msg));
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\n')
            ck_assert_int_eq(msg[i - 1], '\r');        /* CRLF only */
        ck_assert_int_lt((unsigned char)msg[i], 0x80); /* 7-bit on the wire */
    }
    char buf[512];
    ck_assert_str_eq(header_value(msg, "From", buf, sizeof buf), "VOC <voc@example.com>");
    ck_assert_ptr_nonnull(strstr(msg, "To: ops@example.com,\r\n Quality <q@example.com>\r\n"));
    ck_assert_str_eq(header_value(msg, "Date", buf, sizeof buf), "Mon, 21 Sep 2026 14:13:20 +0000");
    ck_assert_str_eq(header_value(msg, "Message-ID", buf, sizeof buf),
                     "<vocd-notification-9.1@example.com>");
    ck_assert_str_eq(header_value(msg, "Content-Type", buf, sizeof buf),
                     "text/plain; charset=UTF-8");
    ck_assert_str_eq(header_value(msg, "Content-Transfer-Encoding", buf, sizeof buf), "base64");
    ck_assert_str_eq(header_value(msg, "Auto-Submitted", buf, sizeof buf), "auto-generated");
    ck_assert_str_eq(header_value(msg, "X-Voc-Case", buf, sizeof buf), "12");

    /* Subject decodes to the UTF-8 line */
    const char *subj = strstr(msg, "\r\nSubject: ") + 2;
    const char *subj_end = subj;
    do
        subj_end = strstr(subj_end, "\r\n") + 2;
    while (*subj_end == ' ');
    char *header = strndup(subj, (size_t)(subj_end - subj));
    char *decoded = decode_header(header, "Subject");
    ck_assert_str_eq(decoded, "[VOC-12] respond 超时: 工单 12");
    free(decoded);
    free(header);

    /* Body: base64 lines of at most 76, decoding to the text with CRLF line ends */
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    char *joined = calloc(1, strlen(body) + 1);
    size_t jl = 0;
    for (const char *line = body; *line;) {
        const char *end = strstr(line, "\r\n");
        ck_assert_ptr_nonnull(end);
        ck_assert_int_le(end - line, 76);
        size_t n;
        char *part = b64_decode(line, (size_t)(end - line), &n);
        memcpy(joined + jl, part, n);
        jl += n;
        free(part);
        line = end + 2;
    }
    joined[jl] = '\0';
    ck_assert_ptr_nonnull(strstr(joined, "respond 超时: 工单 12\r\n请处理\r\n\r\nCase 12\r\n"));
    ck_assert_ptr_null(strstr(joined, "\r\r"));
    free(joined);
    free(msg);
    free(subject);
    free(text);
    json_decref(payload);
}
END_TEST

START_TEST(mail_non_ascii_display_name)
{
    /* A display name that would need encoding is left out; the address stays. */
    const char *to[] = {"质量部 <q@example.com>"};
    struct voc_notify_mail m = {.from = "voc@example.com",
                                .to = to,
                                .to_count = 1,
                                .subject = "[VOC-1]",
                                .text = "",
                                .message_id = "x@example.com",
                                .case_id = 1,
                                .notification_id = 1};
    size_t len;
    char *msg = voc_notify_mail_build(&m, &len);
    ck_assert_ptr_nonnull(strstr(msg, "\r\nTo: <q@example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(msg, "\r\nSubject: [VOC-1]\r\n"));
    free(msg);
}
END_TEST

static Suite *notify_format_suite(void)
{
    Suite *s = suite_create("notify_format");
    TCase *tc = tcase_create("notify_format");
    tcase_add_test(tc, sign_known_answers);
    tcase_add_test(tc, backoff_doubles_and_caps);
    tcase_add_test(tc, payload_fields);
    tcase_add_test(tc, subject_first_line);
    tcase_add_test(tc, header_ascii_stays_plain);
    tcase_add_test(tc, header_utf8_b_encoded);
    tcase_add_test(tc, mime_date_format);
    tcase_add_test(tc, angle_addresses);
    tcase_add_test(tc, mail_message);
    tcase_add_test(tc, mail_non_ascii_display_name);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notify_format_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
