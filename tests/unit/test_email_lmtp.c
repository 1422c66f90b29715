/* The LMTP server state machine (plugins/email/lmtp_session.c) driven by strings, without
 * sockets: RFC 2033 replies per recipient, pipelining (input after DATA waits until the
 * outcome is known), dot-unstuffing, the size limit at MAIL and at the end of DATA, command
 * order errors, line limits, and byte-by-byte feeding giving the same result as one chunk. */
#include <check.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp_session.h"

struct harness {
    struct voc_lmtp_session *s;
    GString *out;
    GPtrArray *messages; /* copies of the message data */
    GPtrArray *senders;
    size_t last_rcpt_count;
    bool closed;
    int sync_code; /* >0: reply from inside the callback */
};

static void h_write(void *arg, const char *bytes, size_t len)
{
    struct harness *h = arg;
    g_string_append_len(h->out, bytes, (gssize)len);
}

static void h_message(void *arg, const struct voc_lmtp_message *msg)
{
    struct harness *h = arg;
    g_ptr_array_add(h->messages, g_strndup(msg->data, msg->len));
    g_ptr_array_add(h->senders, g_strdup(msg->sender));
    h->last_rcpt_count = msg->recipient_count;
    if (h->sync_code)
        voc_lmtp_reply(h->s, h->sync_code, "2.0.0", "stored");
}

static void h_close(void *arg)
{
    struct harness *h = arg;
    h->closed = true;
}

static struct harness *h_new(uint64_t max_size)
{
    struct harness *h = g_new0(struct harness, 1);
    h->out = g_string_new(NULL);
    h->messages = g_ptr_array_new_with_free_func(g_free);
    h->senders = g_ptr_array_new_with_free_func(g_free);
    struct voc_lmtp_config cfg = {.hostname = "mx.test", .max_size = max_size,
                                  .max_recipients = 3, .max_errors = 10};
    struct voc_lmtp_callbacks cb = {h_write, h_message, h_close};
    h->s = voc_lmtp_new(&cfg, &cb, h);
    ck_assert_ptr_nonnull(h->s);
    return h;
}

static void h_free(struct harness *h)
{
    voc_lmtp_free(h->s);
    g_string_free(h->out, TRUE);
    g_ptr_array_free(h->messages, TRUE);
    g_ptr_array_free(h->senders, TRUE);
    g_free(h);
}

/* Feed everything that the session will take; returns what it left. */
static size_t feed(struct harness *h, const char *text)
{
    size_t len = strlen(text);
    size_t used = voc_lmtp_feed(h->s, text, len);
    return len - used;
}

/* The reply lines written since the last call, then forget them. */
static char *take_output(struct harness *h)
{
    char *s = g_strdup(h->out->str);
    g_string_truncate(h->out, 0);
    return s;
}

#define expect_output(h, want)                                                               \
    do {                                                                                     \
        char *got_ = take_output(h);                                                         \
        ck_assert_msg(strcmp(got_, (want)) == 0, "output:\n%s\nwant:\n%s", got_, (want));    \
        g_free(got_);                                                                        \
    } while (0)

START_TEST(greeting_and_lhlo)
{
    struct harness *h = h_new(1000);
    voc_lmtp_greet(h->s);
    expect_output(h, "220 mx.test LMTP vocd ready\r\n");
    feed(h, "EHLO client\r\n");
    expect_output(h, "500 5.5.1 this is an LMTP server: use LHLO\r\n");
    feed(h, "MAIL FROM:<a@b>\r\n");
    expect_output(h, "503 5.5.1 send LHLO first\r\n");
    feed(h, "lhlo client.example\r\n");
    expect_output(h, "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
                     "250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 1000\r\n");
    feed(h, "NOOP\r\nVRFY x\r\nHELP\r\nBDAT 10\r\nWHAT\r\n");
    char *out = take_output(h);
    ck_assert(g_str_has_prefix(out, "250 2.0.0 OK\r\n252 2.5.2"));
    ck_assert(strstr(out, "214 2.0.0") && strstr(out, "502 5.5.1") && strstr(out, "500 5.5.2"));
    g_free(out);
    h_free(h);
}
END_TEST

START_TEST(pipelined_transaction_with_async_outcome)
{
    struct harness *h = h_new(0);
    const char *input = "LHLO c\r\nMAIL FROM:<alice@example.cn> BODY=8BITMIME SIZE=100\r\n"
                        "RCPT TO:<feedback@example.com>\r\nRCPT TO:<voc@example.com>\r\n"
                        "DATA\r\n"
                        "Subject: t\r\n\r\n..leading dot\r\n..\r\nnot the end: .\r\n"
                        ".\r\n"
                        "MAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n";
    size_t left = feed(h, input);
    /* paused right after the first message: the rest waits */
    ck_assert(voc_lmtp_paused(h->s));
    ck_assert_uint_eq(h->messages->len, 1);
    ck_assert_str_eq(g_ptr_array_index(h->messages, 0),
                     "Subject: t\r\n\r\n.leading dot\r\n.\r\nnot the end: .\r\n");
    ck_assert_str_eq(g_ptr_array_index(h->senders, 0), "alice@example.cn");
    ck_assert_uint_eq(h->last_rcpt_count, 2);
    char *out = take_output(h);
    ck_assert(g_str_has_suffix(out, "250 2.1.0 sender OK\r\n250 2.1.5 recipient OK\r\n"
                                    "250 2.1.5 recipient OK\r\n354 end data with "
                                    "<CR><LF>.<CR><LF>\r\n"));
    g_free(out);
    /* nothing is answered for the data until the outcome is known */
    voc_lmtp_reply(h->s, 250, "2.0.0", "case 7 created");
    expect_output(h, "250 2.0.0 <feedback@example.com> case 7 created\r\n"
                     "250 2.0.0 <voc@example.com> case 7 created\r\n");
    ck_assert(!voc_lmtp_paused(h->s));
    const char *rest = input + strlen(input) - left;
    left = feed(h, rest);
    ck_assert(voc_lmtp_paused(h->s));
    ck_assert_str_eq(g_ptr_array_index(h->senders, 1), ""); /* null sender */
    ck_assert_str_eq(g_ptr_array_index(h->messages, 1), "second\r\n");
    voc_lmtp_reply(h->s, 451, "4.3.0", "try later");
    rest = rest + strlen(rest) - left;
    feed(h, rest);
    out = take_output(h);
    ck_assert(strstr(out, "451 4.3.0 <x@y> try later\r\n221 2.0.0 mx.test closing\r\n"));
    g_free(out);
    ck_assert(h->closed);
    ck_assert(voc_lmtp_finished(h->s));
    h_free(h);
}
END_TEST

/* The same conversation fed in one piece and one byte at a time must read the same. */
START_TEST(byte_by_byte_equals_one_chunk)
{
    const char *input = "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                        "H: v\r\n\r\nline\r\n.dot\r\n\r\r\n.\rx\r\n.\r\nRSET\r\nQUIT\r\n";
    struct harness *a = h_new(0), *b = h_new(0);
    a->sync_code = b->sync_code = 250;
    ck_assert_uint_eq(feed(a, input), 0);
    for (const char *p = input; *p; p++)
        ck_assert_uint_eq(voc_lmtp_feed(b->s, p, 1), 1);
    ck_assert_str_eq(a->out->str, b->out->str);
    ck_assert_uint_eq(a->messages->len, 1);
    ck_assert_uint_eq(b->messages->len, 1);
    ck_assert_str_eq(g_ptr_array_index(a->messages, 0), g_ptr_array_index(b->messages, 0));
    ck_assert_str_eq(g_ptr_array_index(a->messages, 0), "H: v\r\n\r\nline\r\ndot\r\n\r\r\n\rx\r\n");
    ck_assert(a->closed && b->closed);
    h_free(a);
    h_free(b);
}
END_TEST

START_TEST(bare_lf_never_ends_data)
{
    struct harness *h = h_new(0);
    h->sync_code = 250;
    feed(h, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
            "one\n.\nMAIL FROM:<evil@x>\r\n.\r\n");
    ck_assert_uint_eq(h->messages->len, 1);
    ck_assert_str_eq(g_ptr_array_index(h->messages, 0), "one\n.\nMAIL FROM:<evil@x>\r\n");
    h_free(h);
}
END_TEST

START_TEST(size_limits)
{
    struct harness *h = h_new(20);
    feed(h, "LHLO c\r\nMAIL FROM:<a@b> SIZE=21\r\n");
    char *out = take_output(h);
    ck_assert(g_str_has_suffix(out, "552 5.3.4 message size 21 exceeds the limit of 20 bytes\r\n"));
    g_free(out);
    /* declared small, sent big: read to the end, refused per recipient, never handed over */
    feed(h, "MAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"
            "0123456789012345678901234567890\r\n.\r\nNOOP\r\n");
    out = take_output(h);
    ck_assert(g_str_has_suffix(out, "552 5.3.4 <c@d> message exceeds the size limit of 20 bytes\r\n"
                                    "552 5.3.4 <e@f> message exceeds the size limit of 20 bytes\r\n"
                                    "250 2.0.0 OK\r\n"));
    g_free(out);
    ck_assert_uint_eq(h->messages->len, 0);
    h_free(h);
}
END_TEST

START_TEST(command_order_and_syntax)
{
    struct harness *h = h_new(0);
    feed(h, "LHLO c\r\n");
    g_free(take_output(h));
    feed(h, "RCPT TO:<a@b>\r\n");
    expect_output(h, "503 5.5.1 need MAIL before RCPT\r\n");
    feed(h, "DATA\r\n");
    expect_output(h, "503 5.5.1 no valid recipients\r\n");
    feed(h, "MAIL FROM:a@b\r\n");
    expect_output(h, "501 5.1.7 bad sender address syntax\r\n");
    h_free(h);

    h = h_new(0);
    feed(h, "LHLO c\r\nMAIL FROM:<a@b> RET=FULL\r\nMAIL FROM:<\"odd>name\"@b>\r\n"
            "MAIL FROM:<x@y>\r\nRCPT TO:<>\r\nRCPT TO:<a@b> NOTIFY=NEVER\r\n"
            "RCPT TO:<1@b>\r\nRCPT TO:<2@b>\r\nRCPT TO:<3@b>\r\nRCPT TO:<4@b>\r\n");
    char *out = take_output(h);
    ck_assert_msg(strstr(out, "555 5.5.4 unsupported MAIL parameter\r\n"
                              "250 2.1.0 sender OK\r\n"
                              "503 5.5.1 nested MAIL command\r\n"
                              "501 5.1.3 bad recipient address syntax\r\n"
                              "555 5.5.4 unsupported RCPT parameter\r\n"
                              "250 2.1.5 recipient OK\r\n250 2.1.5 recipient OK\r\n"
                              "250 2.1.5 recipient OK\r\n452 4.5.3 too many recipients\r\n"),
                  "%s", out);
    g_free(out);
    /* RSET forgets the transaction */
    feed(h, "RSET\r\nDATA\r\n");
    expect_output(h, "250 2.0.0 OK\r\n503 5.5.1 no valid recipients\r\n");
    ck_assert(!h->closed);
    h_free(h);
}
END_TEST

START_TEST(long_lines_and_error_limit)
{
    struct harness *h = h_new(0);
    GString *line = g_string_new("NOOP ");
    while (line->len < 5000)
        g_string_append_c(line, 'x');
    g_string_append(line, "\r\nNOOP\r\n");
    feed(h, line->str);
    expect_output(h, "500 5.5.2 line too long\r\n250 2.0.0 OK\r\n");
    g_string_free(line, TRUE);
    /* the tenth bad command ends the session */
    size_t left = feed(h, "A\r\nB\r\nC\r\nD\r\nE\r\nF\r\nG\r\nH\r\nI\r\nNOOP\r\n");
    char *out = take_output(h);
    ck_assert_msg(g_str_has_suffix(out, "421 4.7.0 mx.test too many errors, closing\r\n"), "%s",
                  out);
    g_free(out);
    ck_assert(h->closed);
    ck_assert_uint_eq(left, strlen("NOOP\r\n")); /* nothing read after the end */
    h_free(h);

    h = h_new(0);
    voc_lmtp_shutdown(h->s, "idle timeout");
    expect_output(h, "421 4.3.2 mx.test idle timeout\r\n");
    ck_assert(h->closed);
    h_free(h);
}
END_TEST

static Suite *email_lmtp_suite(void)
{
    Suite *s = suite_create("email_lmtp");
    TCase *tc = tcase_create("protocol");
    tcase_add_test(tc, greeting_and_lhlo);
    tcase_add_test(tc, pipelined_transaction_with_async_outcome);
    tcase_add_test(tc, byte_by_byte_equals_one_chunk);
    tcase_add_test(tc, bare_lf_never_ends_data);
    tcase_add_test(tc, size_limits);
    tcase_add_test(tc, command_order_and_syntax);
    tcase_add_test(tc, long_lines_and_error_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(email_lmtp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
