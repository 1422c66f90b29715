/* E-mail parsing (plugins/email/mime_parse.c, mail_text.c) on real-world shaped samples in
 * tests/fixtures/mail/: Chinese charsets in headers and bodies (GB2312 with GBK-only
 * characters, GBK quoted-printable, Big5), HTML-only mail, inline images, RFC 2231 and
 * RFC 2047 file names, replies, bounces, auto-replies; then what must be refused cleanly:
 * broken MIME, MIME bombs (10,000 parts, nesting 1,000), over-size parts — each within a
 * bounded time; and random corruptions of the samples, which must never crash. */
#include <check.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail_text.h"
#include "mime_parse.h"

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/mail/%s", VOC_SOURCE_DIR, name);
    gchar *data = NULL;
    gsize n = 0;
    GError *err = NULL;
    ck_assert_msg(g_file_get_contents(path, &data, &n, &err), "cannot read %s", path);
    *len = n;
    return data;
}

static struct voc_mail_limits limits(void)
{
    struct voc_mail_limits l = {
        .max_size = 25u << 20,
        .max_depth = 32,
        .max_parts = 500,
        .max_attachments = 50,
        .max_attachment_size = 20u << 20,
        .max_text = 256 * 1024,
    };
    return l;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct voc_mail *parse_ok(const char *data, size_t len, const char *envelope_from)
{
    struct voc_mail_limits l = limits();
    struct voc_mail *m = NULL;
    char err[300];
    enum voc_mail_status st = voc_mail_parse(data, len, &l, envelope_from, &m, err, sizeof err);
    ck_assert_msg(st == VOC_MAIL_OK, "parse failed (%d): %s", st, err);
    ck_assert_ptr_nonnull(m);
    return m;
}

static struct voc_mail *parse_fixture(const char *name)
{
    size_t len;
    char *data = fixture(name, &len);
    struct voc_mail *m = parse_ok(data, len, "sender@example.cn");
    g_free(data);
    return m;
}

static enum voc_mail_status parse_status(const char *data, size_t len,
                                         const struct voc_mail_limits *l, char *err, size_t errlen)
{
    struct voc_mail *m = NULL;
    enum voc_mail_status st = voc_mail_parse(data, len, l, NULL, &m, err, errlen);
    if (st == VOC_MAIL_OK)
        voc_mail_free(m);
    else
        ck_assert_ptr_null(m);
    return st;
}

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "'%s' not found in:\n%s", (needle), (hay))
#define assert_lacks(hay, needle)                                                                  \
    ck_assert_msg(strstr((hay), (needle)) == NULL, "'%s' should not be in:\n%s", (needle), (hay))

/* ---- Chinese charsets --------------------------------------------------------------------- */

START_TEST(gb2312_base64_subject_name_and_body)
{
    struct voc_mail *m = parse_fixture("gb2312_base64.eml");
    ck_assert_str_eq(m->subject, "电饭煲无法加热，要求更换");
    ck_assert_str_eq(m->from_name, "张伟");
    ck_assert_str_eq(m->from_addr, "zhangwei@example.cn");
    ck_assert_str_eq(m->message_id, "20261123091455.1A2B3C@example.cn");
    ck_assert_str_eq(m->to, "客户反馈 <feedback@example.com>");
    ck_assert_int_eq(m->kind, VOC_MAIL_NORMAL);
    /* labelled GB2312 but written by a GBK mailer: 堃 exists only in GBK */
    assert_contains(m->text, "客服王堃说会转给质量部");
    assert_contains(m->text, "型号 RC-50，批次 B20261101");
    assert_lacks(m->text, "\r");
    ck_assert(!m->text_lossy);
    ck_assert(!m->text_from_html);
    ck_assert_uint_eq(m->attachment_count, 0);
    ck_assert_uint_eq(m->reference_count, 0);
    voc_mail_free(m);
}
END_TEST

START_TEST(gbk_quoted_printable)
{
    struct voc_mail *m = parse_fixture("gbk_qp.eml");
    /* two adjacent encoded words join without the folding white space */
    ck_assert_str_eq(m->subject, "发货太慢，客服态度差");
    ck_assert_str_eq(m->from_name, "李芳");
    assert_contains(m->text, "订单 20261120-88 已经五天还没发货。\n客服电话一直占线");
    voc_mail_free(m);
}
END_TEST

START_TEST(big5_traditional)
{
    struct voc_mail *m = parse_fixture("big5.eml");
    ck_assert_str_eq(m->subject, "電池續航問題");
    ck_assert_str_eq(m->from_name, "陳先生");
    assert_contains(m->text, "貴公司的產品品質有問題，電池充電後很快就沒電了。");
    ck_assert(!m->text_lossy);
    voc_mail_free(m);
}
END_TEST

START_TEST(raw_8bit_gbk_header_uses_fallback)
{
    /* Old clients put GBK bytes straight into headers, without RFC 2047. */
    gsize n;
    gchar *subject = g_convert("空调漏水", -1, "GBK", "UTF-8", NULL, &n, NULL);
    GString *msg = g_string_new("From: a@example.cn\r\nSubject: ");
    g_string_append_len(msg, subject, (gssize)n);
    g_string_append(msg, "\r\nContent-Type: text/plain\r\n\r\n");
    g_string_append_len(msg, subject, (gssize)n); /* undeclared charset in the body too */
    g_string_append(msg, "\r\n");
    struct voc_mail *m = parse_ok(msg->str, msg->len, NULL);
    ck_assert_str_eq(m->subject, "空调漏水");
    ck_assert_str_eq(m->text, "空调漏水");
    voc_mail_free(m);
    g_free(subject);
    g_string_free(msg, TRUE);
}
END_TEST

START_TEST(charset_conversion_rules)
{
    size_t len;
    bool lossy;
    /* GB2312 label, GBK-only character */
    gsize n;
    gchar *gbk = g_convert("王堃", -1, "GBK", "UTF-8", NULL, &n, NULL);
    char *s = voc_mail_to_utf8(gbk, n, "GB2312", NULL, &len, &lossy);
    ck_assert_str_eq(s, "王堃");
    ck_assert(!lossy);
    free(s);
    /* unknown label: fallbacks */
    s = voc_mail_to_utf8(gbk, n, "x-no-such-charset", NULL, &len, &lossy);
    ck_assert_str_eq(s, "王堃");
    free(s);
    g_free(gbk);
    /* Big5 label */
    gchar *big5 = g_convert("品質", -1, "BIG5", "UTF-8", NULL, &n, NULL);
    s = voc_mail_to_utf8(big5, n, "big5", NULL, &len, &lossy);
    ck_assert_str_eq(s, "品質");
    free(s);
    g_free(big5);
    /* a lying UTF-8 label on GBK bytes still reads as Chinese */
    gbk = g_convert("退货", -1, "GBK", "UTF-8", NULL, &n, NULL);
    s = voc_mail_to_utf8(gbk, n, "utf-8", NULL, &len, &lossy);
    ck_assert_str_eq(s, "退货");
    free(s);
    g_free(gbk);
    /* undecodable bytes: replacement characters, valid UTF-8, flagged */
    const char bad[] = "ok\xff\xfe\x81";
    const char *const only_gbk[] = {"GBK", NULL};
    s = voc_mail_to_utf8(bad, sizeof bad - 1, "us-ascii", only_gbk, &len, &lossy);
    ck_assert(g_utf8_validate(s, (gssize)len, NULL));
    ck_assert(lossy);
    ck_assert(strncmp(s, "ok", 2) == 0);
    assert_contains(s, "\xEF\xBF\xBD");
    free(s);
}
END_TEST

/* Encoded words labelled with the narrow charset names mailers write (gb2312, gbk, big5)
 * often carry characters of the supersets: GBK-only ones such as 堃 and 镕, GB18030 four-byte
 * ones (𠀀 U+20000), Big5-HKSCS ones (㐵). GMime would hand the label to iconv as it is and
 * put '?' for those; vocd widens the labels for headers as it does for bodies. */
static const char wide_headers[] =
    "From: =?gb2312?B?zfWI0pUygjY=?= <wang@example.cn>\r\n"
    "To: =?big5?B?rbu05JJ3pnI=?= <hk@example.com>, plain@example.com\r\n"
    "Cc: =?gbk?Q?=C0=EE=95=32=82=36?= <li@example.cn>\r\n"
    "Subject: =?gb2312?B?zfWI0pUygjai4w==?= =?gbk?B?6UaI?=\r\n =?gbk?B?0g==?= ok\r\n"
    "Message-ID: <wide@example.cn>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "body\r\n"
    "--b\r\n"
    "Content-Type: application/pdf; name=\"=?gb2312?B?sai45pUygjYucGRm?=\"\r\n"
    "Content-Disposition: attachment; filename=\"=?gb2312?B?sai45pUygjYucGRm?=\"\r\n"
    "\r\n"
    "%PDF\r\n"
    "--b--\r\n";

START_TEST(narrow_labels_in_headers_are_widened)
{
    struct voc_mail *m = parse_ok(wide_headers, sizeof wide_headers - 1, "wang@example.cn");
    /* two words of one label joined before decoding: 镕 is split between them */
    ck_assert_str_eq(m->subject, "王堃\xF0\xA0\x80\x80€镕堃 ok");
    ck_assert_str_eq(m->from_name, "王堃\xF0\xA0\x80\x80");
    ck_assert_str_eq(m->from_addr, "wang@example.cn");
    assert_contains(m->to, "香港㐵字 <hk@example.com>");
    assert_contains(m->to, "plain@example.com");
    assert_contains(m->cc, "李\xF0\xA0\x80\x80");
    ck_assert_uint_eq(m->attachment_count, 1);
    ck_assert_str_eq(m->attachments[0].name, "报告\xF0\xA0\x80\x80.pdf");
    voc_mail_free(m);
}
END_TEST

START_TEST(header_widen_rules)
{
    /* nothing to do: no words, UTF-8 words, plain ASCII */
    ck_assert_ptr_null(voc_mail_header_widen("plain text", NULL));
    ck_assert_ptr_null(voc_mail_header_widen(" =?UTF-8?B?5ZOI?= x", NULL));
    ck_assert_ptr_null(voc_mail_header_widen("=?not a word", NULL));
    ck_assert_ptr_null(voc_mail_header_widen(NULL, NULL));
    /* a GBK word becomes a UTF-8 word; text around it stays as it is */
    char *w = voc_mail_header_widen("Re: =?gbk?B?6UY=?= (2)", NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(w, "Re: =?UTF-8?Q?=E9=95=95?= (2)"); /* 镕 */
    free(w);
    /* Q encoding, '_' as space, an RFC 2231 language suffix on the label */
    w = voc_mail_header_widen("=?gb2312*zh?Q?=CD=F5_x?=", NULL);
    ck_assert_str_eq(w, "=?UTF-8?Q?=E7=8E=8B=20x?="); /* "王 x" */
    free(w);
    /* different labels are separate runs; the white space between them is kept for GMime,
     * which drops it between encoded words */
    w = voc_mail_header_widen("=?gbk?B?zfU=?=  =?utf-8?B?5ZOI?=", NULL);
    ck_assert_str_eq(w, "=?UTF-8?Q?=E7=8E=8B?=  =?utf-8?B?5ZOI?=");
    free(w);
    /* bytes no charset can read: replacement characters, never invalid UTF-8 */
    w = voc_mail_header_widen("=?gb2312?B?/w==?=", NULL);
    ck_assert_ptr_nonnull(w);
    free(w);
}
END_TEST

START_TEST(attachment_type_is_sanitised)
{
    static const char msg[] = "From: a@example.cn\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                              "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                              "--b\r\nContent-Type: image/\xff\xfejpeg\r\n"
                              "Content-Disposition: attachment; filename=a.jpg\r\n\r\nJPEG\r\n"
                              "--b\r\nContent-Type: Image/PNG\r\n"
                              "Content-Disposition: attachment; filename=b.png\r\n\r\nPNG\r\n"
                              "--b--\r\n";
    struct voc_mail *m = parse_ok(msg, sizeof msg - 1, NULL);
    ck_assert_uint_eq(m->attachment_count, 2);
    ck_assert_str_eq(m->attachments[0].type, "application/octet-stream");
    ck_assert_str_eq(m->attachments[0].name, "a.jpg");
    ck_assert_str_eq(m->attachments[1].type, "image/png");
    for (size_t i = 0; i < m->attachment_count; i++)
        ck_assert(g_utf8_validate(m->attachments[i].type, -1, NULL));
    voc_mail_free(m);
}
END_TEST

START_TEST(clean_text_cuts_on_character_boundary)
{
    char text[] = "第一行\r\n第二行\r第三行\x01\x00x";
    bool cut;
    size_t n = voc_mail_clean_text(text, sizeof text - 1, 0, &cut);
    ck_assert_str_eq(text, "第一行\n第二行\n第三行x");
    ck_assert(!cut);
    n = voc_mail_clean_text(text, n, 8, &cut); /* 8 bytes = 第一 + 2 bytes of 行 */
    ck_assert(cut);
    ck_assert_str_eq(text, "第一");
    ck_assert_uint_eq(n, 6);
}
END_TEST

/* ---- HTML --------------------------------------------------------------------------------- */

START_TEST(html_only_body_becomes_readable_text)
{
    struct voc_mail *m = parse_fixture("html_only.eml");
    ck_assert(m->text_from_html);
    ck_assert_str_eq(m->subject, "智能门锁建议");
    assert_contains(m->text, "尊敬的客服 您好：");
    assert_contains(m->text, "我对“智能门锁”有两点建议：");
    assert_contains(m->text, "\n- 指纹识别速度<1秒\n- 增加温度 & 湿度提醒");
    assert_contains(m->text, "谢谢！\n刘洋\nTel: 139-0000-1111");
    assert_contains(m->text, "型号 L-200");
    assert_lacks(m->text, "alert");
    assert_lacks(m->text, "not text");
    assert_lacks(m->text, "ignored title");
    assert_lacks(m->text, "hidden");
    assert_lacks(m->text, "color");
    assert_lacks(m->text, "<p");
    assert_lacks(m->text, "<li");
    voc_mail_free(m);
}
END_TEST

START_TEST(html_edge_cases)
{
    static const struct {
        const char *html, *want;
    } cases[] = {
        {"a<br>b<br/><br />c", "a\nb\n\nc"},
        {"<p>one</p><p>two</p>", "one\n\ntwo"},
        {"x &#0; &#x110000; &#xD800; y", "x \xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD y"},
        {"&unknown; &amp &lt;b&gt;", "&unknown; &amp <b>"},
        {"<pre>  keep\n    this</pre>after", "  keep\n    this\nafter"},
        {"1 < 2 and 3 > 2", "1 < 2 and 3 > 2"},
        {"<a href='x>y'>link</a> text", "link text"},
        {"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
        {"before<!-- never closed", "before"},
        {"<script>never closed", ""},
        {"<STYLE>p{}</STYLE><Div>大写</DIV>", "大写"},
        {"<o:p>Outlook</o:p><xml><w:data>96</w:data></xml>", "Outlook"},
        {"text <unfinished tag", "text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *t = voc_html_to_text(cases[i].html, strlen(cases[i].html), 0, &len);
        ck_assert_msg(strcmp(t, cases[i].want) == 0, "html %zu: got '%s' want '%s'", i, t,
                      cases[i].want);
        ck_assert(g_utf8_validate(t, (gssize)len, NULL));
        free(t);
    }
    size_t len;
    char *t = voc_html_to_text("<p>aaaa</p><p>bbbb</p>", 22, 5, &len);
    ck_assert_uint_le(len, 5);
    free(t);
    char cs[32];
    static const char meta[] =
        "<meta http-equiv=Content-Type content=\"text/html; charset=gb2312\">";
    ck_assert(voc_html_sniff_charset(meta, sizeof meta - 1, cs, sizeof cs));
    ck_assert_str_eq(cs, "gb2312");
}
END_TEST

START_TEST(html_malformed_input_stays_linear)
{
    /* attribute soup with quotes that never close, 4 MB: must not go quadratic */
    size_t n = 4u << 20;
    char *html = malloc(n);
    static const char unit[] = "<a \"x<b '>text ";
    for (size_t i = 0; i < n; i++)
        html[i] = unit[i % (sizeof unit - 1)];
    double t0 = now_s();
    size_t len;
    char *t = voc_html_to_text(html, n, 64 * 1024, &len);
    double elapsed = now_s() - t0;
    ck_assert_ptr_nonnull(t);
    ck_assert_msg(elapsed < 2.0, "html_to_text took %.2fs on 4 MB", elapsed);
    free(t);
    free(html);
}
END_TEST

/* ---- structure, attachments --------------------------------------------------------------- */

START_TEST(related_inline_image_and_plain_preferred)
{
    struct voc_mail *m = parse_fixture("related_inline.eml");
    ck_assert(!m->text_from_html); /* alternative: text/plain wins */
    ck_assert_str_eq(m->text, "收到的包裹外箱破损，里面的杯子碎了一个，照片在正文里。");
    ck_assert_uint_eq(m->attachment_count, 1);
    ck_assert_str_eq(m->attachments[0].type, "image/png");
    ck_assert(m->attachments[0].inline_part);
    ck_assert_str_eq(m->attachments[0].name, "attachment-1.png");
    ck_assert_uint_eq(m->attachments[0].size, 73);
    ck_assert(memcmp(m->attachments[0].data, "\x89PNG", 4) == 0);
    ck_assert_uint_eq(m->depth, 3);
    voc_mail_free(m);
}
END_TEST

START_TEST(attachment_names_rfc2231_and_rfc2047)
{
    struct voc_mail *m = parse_fixture("mixed_jpeg_rfc2231.eml");
    ck_assert_str_eq(m->subject, "门把手断裂（附照片）");
    ck_assert_str_eq(m->text, "门把手用了一个月就断了，照片见附件。");
    ck_assert_uint_eq(m->attachment_count, 2);
    /* RFC 2231 continuations, split inside a UTF-8 character */
    ck_assert_str_eq(m->attachments[0].name, "破损照片.jpg");
    ck_assert_str_eq(m->attachments[0].type, "image/jpeg");
    ck_assert_uint_eq(m->attachments[0].size, 1051);
    ck_assert(memcmp(m->attachments[0].data, "\xFF\xD8\xFF\xE0", 4) == 0);
    ck_assert(!m->attachments[0].inline_part);
    /* RFC 2047 inside a quoted parameter, GB2312 (Outlook, Foxmail) */
    ck_assert_str_eq(m->attachments[1].name, "订单截图.txt");
    ck_assert_uint_eq(m->attachments[1].size, 23);
    voc_mail_free(m);
}
END_TEST

START_TEST(attachment_name_is_made_safe)
{
    static const char msg[] =
        "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nx\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=\"C:\\\\Users\\\\me\\\\报告.pdf\"\r\n\r\ny\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\nz\r\n"
        "--b--\r\n";
    struct voc_mail *m = parse_ok(msg, sizeof msg - 1, NULL);
    ck_assert_uint_eq(m->attachment_count, 3);
    ck_assert_str_eq(m->attachments[0].name, "passwd");
    ck_assert_str_eq(m->attachments[1].name, "报告.pdf");
    ck_assert_str_eq(m->attachments[2].name, "attachment-3.pdf");
    voc_mail_free(m);
}
END_TEST

/* ---- threading and automatic mail -------------------------------------------------------- */

START_TEST(reply_references)
{
    struct voc_mail *m = parse_fixture("reply.eml");
    ck_assert_int_eq(m->kind, VOC_MAIL_NORMAL);
    ck_assert_uint_eq(m->reference_count, 1);
    ck_assert_str_eq(m->references[0], "20261123091455.1A2B3C@example.cn");
    ck_assert_str_eq(m->subject, "Re: 电饭煲无法加热，要求更换");
    voc_mail_free(m);

    static const char msg[] = "From: a@example.com\r\nMessage-ID: <self@x>\r\n"
                              "In-Reply-To: <parent@x>\r\n"
                              "References: <root@x> <mid@x>\r\n <parent@x> <self@x>\r\n\r\nhi\r\n";
    m = parse_ok(msg, sizeof msg - 1, NULL);
    ck_assert_uint_eq(m->reference_count, 3); /* parent first, then newest first, no self */
    ck_assert_str_eq(m->references[0], "parent@x");
    ck_assert_str_eq(m->references[1], "mid@x");
    ck_assert_str_eq(m->references[2], "root@x");
    voc_mail_free(m);
}
END_TEST

START_TEST(bounce_dsn)
{
    size_t len;
    char *data = fixture("bounce_dsn.eml", &len);
    struct voc_mail *m = parse_ok(data, len, "");
    g_free(data);
    ck_assert_int_eq(m->kind, VOC_MAIL_BOUNCE);
    ck_assert_str_eq(m->original_message_id, "20261123091455.1A2B3C@example.cn");
    assert_contains(m->original_subject, "[VOC-1]");
    assert_contains(m->text, "550 5.1.1 User unknown");
    ck_assert_uint_eq(m->attachment_count, 0);
    voc_mail_free(m);
}
END_TEST

START_TEST(auto_reply_kinds)
{
    struct voc_mail *m = parse_fixture("auto_reply.eml");
    ck_assert_int_eq(m->kind, VOC_MAIL_AUTO_REPLY);
    assert_contains(m->kind_reason, "Auto-Submitted: auto-replied");
    ck_assert_str_eq(m->references[0], "20261123091455.1A2B3C@example.cn");
    voc_mail_free(m);

    static const struct {
        const char *headers;
        const char *envelope;
        enum voc_mail_kind kind;
    } cases[] = {
        {"Precedence: bulk\r\n", "x@y", VOC_MAIL_AUTO_REPLY},
        {"Precedence: list\r\n", "x@y", VOC_MAIL_NORMAL},
        {"Auto-Submitted: no\r\n", "x@y", VOC_MAIL_NORMAL},
        {"Auto-Submitted: auto-generated; owner-email=\"x@y\"\r\n", "x@y", VOC_MAIL_AUTO_REPLY},
        {"X-Autoreply: yes\r\n", "x@y", VOC_MAIL_AUTO_REPLY},
        {"", "", VOC_MAIL_AUTO_REPLY},                      /* null sender */
        {"Return-Path: <>\r\n", NULL, VOC_MAIL_AUTO_REPLY}, /* Maildir: no envelope */
        {"X-Failed-Recipients: a@b\r\n", "x@y", VOC_MAIL_BOUNCE},
        {"", "x@y", VOC_MAIL_NORMAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512];
        int n = snprintf(msg, sizeof msg, "From: someone@example.com\r\n%sSubject: s\r\n\r\nb\r\n",
                         cases[i].headers);
        m = parse_ok(msg, (size_t)n, cases[i].envelope);
        ck_assert_msg(m->kind == cases[i].kind, "case %zu: kind %d, want %d", i, m->kind,
                      cases[i].kind);
        voc_mail_free(m);
    }
    static const char daemon[] =
        "From: MAILER-DAEMON@mx.example.com\r\nSubject: failure\r\n\r\nb\r\n";
    m = parse_ok(daemon, sizeof daemon - 1, "");
    ck_assert_int_eq(m->kind, VOC_MAIL_BOUNCE);
    voc_mail_free(m);
}
END_TEST

/* ---- refusals ----------------------------------------------------------------------------- */

START_TEST(broken_mime_is_refused_with_a_reason)
{
    struct voc_mail_limits l = limits();
    char err[300];
    size_t len;
    char *data = fixture("broken_unterminated.eml", &len);
    ck_assert_int_eq(parse_status(data, len, &l, err, sizeof err), VOC_MAIL_MALFORMED);
    assert_contains(err, "boundary");
    g_free(data);
    data = fixture("broken_garbage.eml", &len);
    ck_assert_int_eq(parse_status(data, len, &l, err, sizeof err), VOC_MAIL_MALFORMED);
    assert_contains(err, "header");
    g_free(data);
    static const char no_boundary[] =
        "From: a@b\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n";
    ck_assert_int_eq(parse_status(no_boundary, sizeof no_boundary - 1, &l, err, sizeof err),
                     VOC_MAIL_MALFORMED);
    ck_assert_int_eq(parse_status("", 0, &l, err, sizeof err), VOC_MAIL_MALFORMED);
}
END_TEST

static GString *wide_bomb(unsigned parts)
{
    GString *s = g_string_new("From: bomb@example.com\r\nSubject: wide\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (unsigned i = 0; i < parts; i++)
        g_string_append(s, "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    g_string_append(s, "--b--\r\n");
    return s;
}

static GString *deep_bomb(unsigned depth)
{
    GString *s = g_string_new("From: bomb@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
    for (unsigned i = 0; i < depth; i++)
        g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=b%u\r\n\r\n--b%u\r\n", i,
                               i);
    g_string_append(s, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    for (unsigned i = depth; i-- > 0;)
        g_string_append_printf(s, "--b%u--\r\n", i);
    return s;
}

START_TEST(mime_bomb_10000_parts)
{
    struct voc_mail_limits l = limits();
    char err[300];
    GString *s = wide_bomb(10000);
    double t0 = now_s();
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_COMPLEX);
    ck_assert_msg(now_s() - t0 < 1.0, "refusing took %.2fs", now_s() - t0);
    assert_contains(err, "more than 500 MIME parts");
    /* without the pre-scan limit the tree walk refuses it too, still in bounded time */
    l.max_parts = 5000;
    t0 = now_s();
    struct voc_mail *m = NULL;
    ck_assert_int_eq(voc_mail_parse(s->str, s->len, &l, NULL, &m, err, sizeof err),
                     VOC_MAIL_TOO_COMPLEX);
    ck_assert_msg(now_s() - t0 < 5.0, "refusing took %.2fs", now_s() - t0);
    g_string_free(s, TRUE);
}
END_TEST

/* The pre-scan counts Content-Type lines, and a multipart/digest needs none: its parts are
 * message/rfc822 by default. Such a bomb gets past the pre-scan, so GMime does build its tree
 * — the walk then refuses it by the part count, in bounded time and memory. */
START_TEST(mime_bomb_digest_without_content_types)
{
    struct voc_mail_limits l = limits();
    char err[300];
    GString *s = g_string_new("From: bomb@example.com\r\nSubject: digest\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: multipart/digest; boundary=d\r\n\r\n");
    for (int i = 0; i < 10000; i++)
        g_string_append(s, "--d\r\n\r\nSubject: x\r\n\r\nx\r\n");
    g_string_append(s, "--d--\r\n");
    ck_assert_uint_eq(voc_mail_count_content_types(s->str, s->len, 500), 1);
    /* each digest part is a forwarded message, kept as an attachment: that limit comes
     * first ... */
    double t0 = now_s();
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_MANY);
    ck_assert_msg(now_s() - t0 < 5.0, "refusing took %.2fs", now_s() - t0);
    assert_contains(err, "more than 50 attachments");
    /* ... and without it, the part count */
    l.max_attachments = 100000;
    t0 = now_s();
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_COMPLEX);
    ck_assert_msg(now_s() - t0 < 5.0, "refusing took %.2fs", now_s() - t0);
    assert_contains(err, "more than 500 MIME parts");
    g_string_free(s, TRUE);
}
END_TEST

START_TEST(mime_bomb_nesting_1000)
{
    struct voc_mail_limits l = limits();
    char err[300];
    GString *s = deep_bomb(1000);
    double t0 = now_s();
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_COMPLEX);
    ck_assert_msg(now_s() - t0 < 1.0, "refusing took %.2fs", now_s() - t0);
    /* let it through the part count: GMime's own nesting guard and the depth limit hold */
    l.max_parts = 100000;
    t0 = now_s();
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_COMPLEX);
    ck_assert_msg(now_s() - t0 < 5.0, "refusing took %.2fs", now_s() - t0);
    g_string_free(s, TRUE);
    /* and a modest depth over the limit names the limit */
    s = deep_bomb(40);
    ck_assert_int_eq(parse_status(s->str, s->len, &l, err, sizeof err), VOC_MAIL_TOO_COMPLEX);
    assert_contains(err, "deeper than 32");
    g_string_free(s, TRUE);
    /* while a normal depth passes */
    s = deep_bomb(10);
    struct voc_mail *m = parse_ok(s->str, s->len, NULL);
    ck_assert_str_eq(m->text, "deep");
    voc_mail_free(m);
    g_string_free(s, TRUE);
}
END_TEST

START_TEST(size_and_count_limits)
{
    struct voc_mail_limits l = limits();
    char err[300];
    size_t len;
    char *data = fixture("mixed_jpeg_rfc2231.eml", &len);
    l.max_attachments = 1;
    ck_assert_int_eq(parse_status(data, len, &l, err, sizeof err), VOC_MAIL_TOO_MANY);
    assert_contains(err, "more than 1 attachments");
    l = limits();
    l.max_attachment_size = 1000;
    ck_assert_int_eq(parse_status(data, len, &l, err, sizeof err), VOC_MAIL_TOO_LARGE);
    assert_contains(err, "1051 bytes");
    l = limits();
    l.max_size = 100;
    ck_assert_int_eq(parse_status(data, len, &l, err, sizeof err), VOC_MAIL_TOO_LARGE);
    l = limits();
    l.max_text = 30;
    struct voc_mail *m = NULL;
    ck_assert_int_eq(voc_mail_parse(data, len, &l, NULL, &m, err, sizeof err), VOC_MAIL_OK);
    ck_assert(m->text_truncated);
    ck_assert_uint_le(m->text_len, 30);
    ck_assert(g_utf8_validate(m->text, -1, NULL));
    voc_mail_free(m);
    g_free(data);
}
END_TEST

START_TEST(count_content_types)
{
    static const char msg[] = "Content-Type: a\r\nX: y\r\ncontent-type :b\r\n"
                              "body Content-Type: no\r\nCONTENT-TYPE\t: c\r\nContent-Typo: d\r\n";
    ck_assert_uint_eq(voc_mail_count_content_types(msg, sizeof msg - 1, 100), 3);
    ck_assert_uint_eq(voc_mail_count_content_types(msg, sizeof msg - 1, 1), 2);
}
END_TEST

/* Random damage to every sample: whatever comes out, never a crash, a hang or a leak (the
 * sanitizer build checks the last two). */
START_TEST(corrupted_samples_never_crash)
{
    static const char *const names[] = {"gb2312_base64.eml",  "gbk_qp.eml",
                                        "big5.eml",           "html_only.eml",
                                        "related_inline.eml", "mixed_jpeg_rfc2231.eml",
                                        "reply.eml",          "bounce_dsn.eml",
                                        "auto_reply.eml",     "broken_unterminated.eml",
                                        "broken_garbage.eml"};
    GRand *rnd = g_rand_new_with_seed(20261123);
    struct voc_mail_limits l = limits();
    unsigned ok = 0, refused = 0;
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        char *orig = fixture(names[f], &len);
        for (int round = 0; round < 150; round++) {
            char *data = g_memdup2(orig, len);
            size_t n = len;
            int edits = g_rand_int_range(rnd, 1, 12);
            for (int e = 0; e < edits && n > 0; e++) {
                size_t at = (size_t)g_rand_int_range(rnd, 0, (gint32)n);
                switch (g_rand_int_range(rnd, 0, 4)) {
                case 0:
                    data[at] = (char)g_rand_int_range(rnd, 0, 256);
                    break;
                case 1:
                    n = at; /* truncate */
                    break;
                case 2:
                    data[at] = "\r\n-=?:;\"<>\\"[g_rand_int_range(rnd, 0, 12)];
                    break;
                default:
                    memmove(data + at, data + at + 1, n - at - 1); /* delete a byte */
                    n--;
                    break;
                }
            }
            struct voc_mail *m = NULL;
            char err[300];
            if (voc_mail_parse(data, n, &l, "", &m, err, sizeof err) == VOC_MAIL_OK) {
                ck_assert(g_utf8_validate(m->subject, -1, NULL));
                ck_assert(g_utf8_validate(m->text, -1, NULL));
                ck_assert(g_utf8_validate(m->from_name, -1, NULL));
                for (size_t a = 0; a < m->attachment_count; a++)
                    ck_assert(g_utf8_validate(m->attachments[a].name, -1, NULL));
                voc_mail_free(m);
                ok++;
            } else {
                ck_assert(err[0] != '\0');
                refused++;
            }
            g_free(data);
        }
        g_free(orig);
    }
    g_rand_free(rnd);
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_gt(refused, 0);
}
END_TEST

static Suite *email_mime_suite(void)
{
    Suite *s = suite_create("email_mime");
    TCase *tc = tcase_create("charsets");
    tcase_add_test(tc, gb2312_base64_subject_name_and_body);
    tcase_add_test(tc, gbk_quoted_printable);
    tcase_add_test(tc, big5_traditional);
    tcase_add_test(tc, raw_8bit_gbk_header_uses_fallback);
    tcase_add_test(tc, charset_conversion_rules);
    tcase_add_test(tc, clean_text_cuts_on_character_boundary);
    tcase_add_test(tc, narrow_labels_in_headers_are_widened);
    tcase_add_test(tc, header_widen_rules);
    tcase_add_test(tc, attachment_type_is_sanitised);
    suite_add_tcase(s, tc);
    tc = tcase_create("html");
    tcase_add_test(tc, html_only_body_becomes_readable_text);
    tcase_add_test(tc, html_edge_cases);
    tcase_add_test(tc, html_malformed_input_stays_linear);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("structure");
    tcase_add_test(tc, related_inline_image_and_plain_preferred);
    tcase_add_test(tc, attachment_names_rfc2231_and_rfc2047);
    tcase_add_test(tc, attachment_name_is_made_safe);
    tcase_add_test(tc, reply_references);
    tcase_add_test(tc, bounce_dsn);
    tcase_add_test(tc, auto_reply_kinds);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_test(tc, broken_mime_is_refused_with_a_reason);
    tcase_add_test(tc, mime_bomb_10000_parts);
    tcase_add_test(tc, mime_bomb_nesting_1000);
    tcase_add_test(tc, mime_bomb_digest_without_content_types);
    tcase_add_test(tc, size_and_count_limits);
    tcase_add_test(tc, count_content_types);
    tcase_add_test(tc, corrupted_samples_never_crash);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(email_mime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
