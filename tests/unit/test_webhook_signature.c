/* The webhook channel's request signature (plugins/webhook/signature.[ch]): HMAC-SHA256 over
 * "<timestamp>.<raw body>", the timestamp window, and every way a header can be wrong.
 * The expected MACs were computed independently with
 *   printf %s '1700000000.{"text":"坏了"}' | openssl dgst -sha256 -hmac whsec-test */
#include "signature.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "whsec-test"
#define BODY "{\"text\":\"坏了\"}"
#define TS 1700000000
#define VECTOR "e296ea0e454d31cc6b85ef64b2c30b33aab7aeef657d294d1419b652799b1c6a"

static struct voc_webhook_key *key_of(const char *secret)
{
    struct voc_webhook_key *key = NULL;
    ck_assert_int_eq(voc_webhook_key_new(secret, strlen(secret), &key), 0);
    return key;
}

static enum voc_webhook_sig_status verify_full(const char *secret, const char *sig,
                                               const char *ts, const char *body, int64_t now,
                                               int64_t *skew)
{
    struct voc_webhook_key *key = key_of(secret);
    enum voc_webhook_sig_status st =
        voc_webhook_verify(key, sig, ts, body, strlen(body), now, 300, skew);
    voc_webhook_key_free(key);
    return st;
}

static enum voc_webhook_sig_status verify_at(const char *sig, const char *ts, const char *body,
                                             int64_t now)
{
    return verify_full(SECRET, sig, ts, body, now, NULL);
}

START_TEST(sign_matches_openssl)
{
    unsigned char mac[VOC_WEBHOOK_MAC_LEN];
    char hex[2 * VOC_WEBHOOK_MAC_LEN + 1];
    struct voc_webhook_key *key = key_of(SECRET);
    ck_assert_int_eq(voc_webhook_sign(key, "1700000000", BODY, strlen(BODY), mac), 0);
    voc_webhook_hex(mac, hex);
    ck_assert_str_eq(hex, VECTOR);
    /* A key signs any number of messages: each starts afresh, none leaks into the next. */
    ck_assert_int_eq(voc_webhook_sign(key, "1", "x", 1, mac), 0);
    ck_assert_int_eq(voc_webhook_sign(key, "1700000000", BODY, strlen(BODY), mac), 0);
    voc_webhook_hex(mac, hex);
    ck_assert_str_eq(hex, VECTOR);
    voc_webhook_key_free(key);
    /* An empty body signs "<ts>." */
    key = key_of("k");
    ck_assert_int_eq(voc_webhook_sign(key, "1700000000", "", 0, mac), 0);
    voc_webhook_hex(mac, hex);
    ck_assert_str_eq(hex, "5c2999a43333a6877f49c8003f235c4f6de40f85b1b7414b70bd470a8db53d97");
    voc_webhook_key_free(key);
}
END_TEST

START_TEST(valid_signature_accepted)
{
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000", BODY, TS), VOC_WEBHOOK_SIG_OK);
    /* Upper-case hex, upper-case prefix and blanks around the values are the same MAC. */
    char upper[80] = "SHA256=";
    for (const char *c = VECTOR; *c; c++)
        upper[strlen(upper)] = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
    ck_assert_int_eq(verify_at(upper, "1700000000", BODY, TS), VOC_WEBHOOK_SIG_OK);
    ck_assert_int_eq(verify_at("  sha256=" VECTOR " ", " 1700000000 ", BODY, TS),
                     VOC_WEBHOOK_SIG_OK);
}
END_TEST

START_TEST(changed_body_or_secret_refused)
{
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000", "{\"text\":\"坏了!\"}", TS),
                     VOC_WEBHOOK_SIG_MISMATCH);
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000", "", TS),
                     VOC_WEBHOOK_SIG_MISMATCH);
    ck_assert_int_eq(verify_full("other", "sha256=" VECTOR, "1700000000", BODY, TS, NULL),
                     VOC_WEBHOOK_SIG_MISMATCH);
    /* One flipped bit anywhere in the MAC, first byte or last. */
    char sig[80];
    snprintf(sig, sizeof sig, "sha256=%s", VECTOR);
    sig[7] = sig[7] == '0' ? '1' : '0';
    ck_assert_int_eq(verify_at(sig, "1700000000", BODY, TS), VOC_WEBHOOK_SIG_MISMATCH);
    snprintf(sig, sizeof sig, "sha256=%s", VECTOR);
    sig[strlen(sig) - 1] = sig[strlen(sig) - 1] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(verify_at(sig, "1700000000", BODY, TS), VOC_WEBHOOK_SIG_MISMATCH);
}
END_TEST

START_TEST(replay_with_new_timestamp_refused)
{
    /* The captured signature with a fresh timestamp: inside the window, but the MAC covered
     * the old timestamp. */
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000100", BODY, TS + 100),
                     VOC_WEBHOOK_SIG_MISMATCH);
    /* Leading zeros are other digits: the sender signed what it sent. */
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "01700000000", BODY, TS),
                     VOC_WEBHOOK_SIG_MISMATCH);
}
END_TEST

START_TEST(timestamp_window_is_inclusive_both_ways)
{
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000", BODY, TS + 300),
                     VOC_WEBHOOK_SIG_OK);
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000", BODY, TS - 300),
                     VOC_WEBHOOK_SIG_OK);
    int64_t s = 0;
    ck_assert_int_eq(verify_full(SECRET, "sha256=" VECTOR, "1700000000", BODY, TS + 301, &s),
                     VOC_WEBHOOK_TS_EXPIRED);
    ck_assert_int_eq(s, -301);
    ck_assert_int_eq(verify_full(SECRET, "sha256=" VECTOR, "1700000000", BODY, TS - 301, &s),
                     VOC_WEBHOOK_TS_EXPIRED);
    ck_assert_int_eq(s, 301);
    /* Milliseconds instead of seconds are far outside any window. */
    ck_assert_int_eq(verify_at("sha256=" VECTOR, "1700000000000", BODY, TS),
                     VOC_WEBHOOK_TS_EXPIRED);
}
END_TEST

START_TEST(missing_and_malformed_headers)
{
    ck_assert_int_eq(verify_at(NULL, "1700000000", BODY, TS), VOC_WEBHOOK_SIG_MISSING);
    ck_assert_int_eq(verify_at("sha256=" VECTOR, NULL, BODY, TS), VOC_WEBHOOK_TS_MISSING);
    static const char *const bad_sigs[] = {
        "",
        VECTOR,                       /* no prefix */
        "sha1=" VECTOR,               /* other algorithm */
        "sha256=",                    /* no digits */
        "sha256=e296ea0e454d31cc",    /* short */
        "sha256=" VECTOR "00",        /* long */
        "sha256=" VECTOR " junk",     /* trailing text */
        "sha256=g296ea0e454d31cc6b85ef64b2c30b33aab7aeef657d294d1419b652799b1c6a", /* non-hex */
        "sha256 =" VECTOR,
    };
    for (size_t i = 0; i < sizeof bad_sigs / sizeof bad_sigs[0]; i++)
        ck_assert_msg(verify_at(bad_sigs[i], "1700000000", BODY, TS) == VOC_WEBHOOK_SIG_MALFORMED,
                      "signature '%s' should be malformed", bad_sigs[i]);
    static const char *const bad_ts[] = {"", " ", "-1700000000", "+1700000000", "17e8",
                                         "1700000000.5", "0x65", "1234567890123456", "abc"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
        ck_assert_msg(verify_at("sha256=" VECTOR, bad_ts[i], BODY, TS) == VOC_WEBHOOK_TS_MALFORMED,
                      "timestamp '%s' should be malformed", bad_ts[i]);
}
END_TEST

START_TEST(parse_timestamp)
{
    int64_t v = -1;
    ck_assert_int_eq(voc_webhook_parse_timestamp("0", &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(voc_webhook_parse_timestamp("\t1763900000 ", &v), 0);
    ck_assert_int_eq(v, 1763900000);
    ck_assert_int_eq(voc_webhook_parse_timestamp("999999999999999", &v), 0);
    ck_assert_int_eq(v, 999999999999999LL);
    ck_assert_int_eq(voc_webhook_parse_timestamp("1 2", &v), -1);
}
END_TEST

START_TEST(every_status_has_words)
{
    for (int st = VOC_WEBHOOK_SIG_OK; st <= VOC_WEBHOOK_SIG_ERROR; st++) {
        ck_assert_ptr_nonnull(voc_webhook_sig_reason((enum voc_webhook_sig_status)st));
        ck_assert_str_ne(voc_webhook_sig_code((enum voc_webhook_sig_status)st), "unknown");
    }
    ck_assert_ptr_nonnull(strstr(voc_webhook_sig_reason(VOC_WEBHOOK_SIG_MISMATCH), "X-Voc-Timestamp"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webhook_signature");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sign_matches_openssl);
    tcase_add_test(tc, valid_signature_accepted);
    tcase_add_test(tc, changed_body_or_secret_refused);
    tcase_add_test(tc, replay_with_new_timestamp_refused);
    tcase_add_test(tc, timestamp_window_is_inclusive_both_ways);
    tcase_add_test(tc, missing_and_malformed_headers);
    tcase_add_test(tc, parse_timestamp);
    tcase_add_test(tc, every_status_has_words);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
