#include "notify_format.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "timeutil.h"

/* Subjects longer than this are cut: mail clients show a line, not a paragraph. */
#define SUBJECT_LINE_MAX 200
/* RFC 2047: an encoded word is at most 75 characters, a header line should stay within 76. */
#define ENCODED_WORD_MAX 75
#define HEADER_LINE_MAX 76
#define ENCODED_WORD_OVERHEAD 12 /* "=?UTF-8?B?" "?=" */
/* RFC 2045: base64 body lines of 76 characters (57 input bytes). */
#define BASE64_LINE_BYTES 57

int voc_notify_sign(const char *secret, size_t secret_len, const char *timestamp, const void *body,
                    size_t body_len, char out[VOC_NOTIFY_SIG_LEN])
{
    static const char digits[] = "0123456789abcdef";
    static const unsigned char empty_key[1];
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    int rc = -1;
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!mctx)
        goto fail;
    /* OpenSSL reads a NULL key as "keep the previous one": never hand it one. The MAC covers
     * timestamp, '.', body without building that string. */
    if (!EVP_MAC_init(mctx, secret_len ? (const unsigned char *)secret : empty_key, secret_len,
                      params))
        goto fail;
    if (!EVP_MAC_update(mctx, (const unsigned char *)timestamp, strlen(timestamp)) ||
        !EVP_MAC_update(mctx, (const unsigned char *)".", 1) ||
        (body_len && !EVP_MAC_update(mctx, body, body_len)))
        goto fail;
    if (!EVP_MAC_final(mctx, mac, &mac_len, sizeof mac) || mac_len != 32)
        goto fail;
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < mac_len; i++) {
        out[7 + 2 * i] = digits[mac[i] >> 4];
        out[7 + 2 * i + 1] = digits[mac[i] & 0xf];
    }
    out[7 + 2 * mac_len] = '\0';
    rc = 0;
fail:
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(hmac);
    return rc;
}

int64_t voc_notify_backoff_us(unsigned failures, double jitter)
{
    int64_t base = VOC_NOTIFY_BACKOFF_FIRST_US;
    for (unsigned i = 1; i < failures && base < VOC_NOTIFY_BACKOFF_CAP_US; i++)
        base *= 2;
    if (base > VOC_NOTIFY_BACKOFF_CAP_US)
        base = VOC_NOTIFY_BACKOFF_CAP_US;
    if (jitter < 0)
        jitter = 0;
    if (jitter >= 1)
        jitter = 0.999999;
    int64_t delay = (int64_t)((double)base * (0.8 + 0.4 * jitter));
    return delay > VOC_NOTIFY_BACKOFF_CAP_US ? VOC_NOTIFY_BACKOFF_CAP_US : delay;
}

json_t *voc_notify_payload(const json_t *entry, const json_t *summary, const json_t *event,
                           unsigned attempt)
{
    json_t *p = json_object();
    json_t *id = json_object_get(entry, "id");
    json_object_set_new(p, "id", id ? json_copy(id) : json_null());
    const char *notifier = voc_json_str(entry, "notifier");
    const char *message = voc_json_str(entry, "message");
    const char *created = voc_json_str(entry, "created_at");
    json_object_set_new(p, "notifier", notifier ? json_string(notifier) : json_null());
    json_object_set_new(p, "message", json_string(message ? message : ""));
    json_object_set_new(p, "created_at", created ? json_string(created) : json_null());
    json_object_set_new(p, "attempt", json_integer(attempt));
    json_object_set_new(p, "case", summary ? json_deep_copy(summary) : json_null());
    json_object_set_new(p, "event", event ? json_deep_copy(event) : json_null());
    return p;
}

char *voc_notify_subject(uint64_t case_id, const char *message)
{
    const char *line = message ? message : "";
    while (*line == ' ' || *line == '\t' || *line == '\r' || *line == '\n')
        line++;
    size_t len = strcspn(line, "\r\n");
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    len = voc_utf8_cut(line, len, SUBJECT_LINE_MAX);
    size_t cap = len + 48;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int n = snprintf(out, cap, "[VOC-%llu]%s", (unsigned long long)case_id, len ? " " : "");
    memcpy(out + n, line, len);
    out[n + len] = '\0';
    /* Control characters (a tab, an escape) have no business in a subject line. */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

static bool plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    /* Text that looks like an encoded word would be decoded by the reader: encode it. */
    return strstr(s, "=?") == NULL;
}

/* A growing string. */
struct sbuf {
    char *data;
    size_t len, cap;
    bool failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

static char *sb_finish(struct sbuf *b, size_t *len)
{
    if (b->failed) {
        free(b->data);
        return NULL;
    }
    if (!b->data)
        sb_add(b, "", 0);
    if (b->failed)
        return NULL;
    if (len)
        *len = b->len;
    return b->data;
}

static void sb_base64(struct sbuf *b, const unsigned char *in, size_t n)
{
    /* Callers pass at most one body line (57 bytes) or one encoded word's worth. */
    char out[4 * ((BASE64_LINE_BYTES + 2) / 3) + 1];
    if (n > BASE64_LINE_BYTES)
        n = BASE64_LINE_BYTES;
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    sb_add(b, out, (size_t)w);
}

char *voc_mime_header(const char *name, const char *value)
{
    struct sbuf b = {0};
    sb_str(&b, name);
    sb_str(&b, ": ");
    size_t vlen = strlen(value);
    if (plain_ascii(value) && strlen(name) + 2 + vlen <= 998) {
        sb_add(&b, value, vlen);
        sb_str(&b, "\r\n");
        return sb_finish(&b, NULL);
    }
    /* The first line already holds "Name: ", continuation lines one blank. */
    size_t used = strlen(name) + 2;
    size_t room = used < HEADER_LINE_MAX ? HEADER_LINE_MAX - used : 0;
    size_t off = 0;
    bool first = true;
    while (off < vlen || first) {
        if (room > ENCODED_WORD_MAX)
            room = ENCODED_WORD_MAX;
        if (room < ENCODED_WORD_OVERHEAD + 8)
            room = ENCODED_WORD_OVERHEAD + 8;
        size_t max_raw = (room - ENCODED_WORD_OVERHEAD) / 4 * 3;
        size_t take = voc_utf8_cut(value + off, vlen - off, max_raw);
        if (take == 0 && off < vlen) {
            /* A malformed sequence longer than a word: move on by bytes rather than stall. */
            take = max_raw < vlen - off ? max_raw : vlen - off;
        }
        if (!first)
            sb_str(&b, "\r\n ");
        sb_str(&b, "=?UTF-8?B?");
        sb_base64(&b, (const unsigned char *)value + off, take);
        sb_str(&b, "?=");
        off += take;
        first = false;
        room = HEADER_LINE_MAX - 1;
    }
    sb_str(&b, "\r\n");
    return sb_finish(&b, NULL);
}

void voc_mime_date(int64_t us, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(us / VOC_US_PER_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Fixed English names: strftime would follow the locale. */
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void text_field(struct sbuf *b, const char *label, const json_t *value)
{
    if (!value || json_is_null(value))
        return;
    if (json_is_string(value)) {
        if (!json_string_length(value))
            return;
        sb_printf(b, "%s: %s\n", label, json_string_value(value));
    } else if (json_is_integer(value)) {
        sb_printf(b, "%s: %lld\n", label, (long long)json_integer_value(value));
    } else if (json_is_boolean(value)) {
        sb_printf(b, "%s: %s\n", label, json_is_true(value) ? "yes" : "no");
    }
}

char *voc_notify_email_text(const json_t *payload)
{
    struct sbuf b = {0};
    const char *message = voc_json_str(payload, "message");
    sb_str(&b, message && *message ? message : "(no message)");
    sb_str(&b, "\n\n");
    json_t *c = json_object_get(payload, "case");
    if (json_is_object(c)) {
        sb_printf(&b, "Case %lld\n", voc_json_int(c, "id", 0));
        static const char *const fields[][2] = {
            {"subject", "Subject"},   {"state", "State"},
            {"channel", "Channel"},   {"received_at", "Received"},
            {"kind", "Kind"},         {"category", "Category"},
            {"severity", "Severity"}, {"department", "Department"},
            {"priority", "Priority"}, {"breached", "SLA breached"}};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            text_field(&b, fields[i][1], json_object_get(c, fields[i][0]));
        sb_str(&b, "\n");
    }
    json_t *e = json_object_get(payload, "event");
    if (json_is_object(e)) {
        sb_printf(&b, "Event %lld: %s at %s\n", voc_json_int(e, "seq", 0),
                  voc_json_str(e, "type") ? voc_json_str(e, "type") : "?",
                  voc_json_str(e, "at") ? voc_json_str(e, "at") : "?");
        json_t *data = json_object_get(e, "data");
        const char *key;
        json_t *v;
        json_object_foreach (data, key, v)
            text_field(&b, key, v);
        sb_str(&b, "\n");
    }
    sb_printf(&b, "-- \nvocd notification %lld, attempt %lld, queued %s\n",
              voc_json_int(payload, "id", 0), voc_json_int(payload, "attempt", 0),
              voc_json_str(payload, "created_at") ? voc_json_str(payload, "created_at") : "?");
    return sb_finish(&b, NULL);
}

char *voc_mail_angle_addr(const char *text)
{
    if (!text)
        return NULL;
    /* A line break anywhere would smuggle a command into the SMTP dialogue. */
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    const char *start = strrchr(text, '<');
    const char *end;
    if (start) {
        start++;
        end = strchr(start, '>');
        if (!end)
            return NULL;
    } else {
        start = text;
        while (*start == ' ' || *start == '\t')
            start++;
        end = start + strlen(start);
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
    }
    size_t n = (size_t)(end - start);
    if (n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)start[i] <= 0x20 || start[i] == '<' || start[i] == '>')
            return NULL; /* a space or CR/LF in an address would break the SMTP command */
    char *out = malloc(n + 3);
    if (!out)
        return NULL;
    out[0] = '<';
    memcpy(out + 1, start, n);
    out[n + 1] = '>';
    out[n + 2] = '\0';
    return out;
}

/* An address header: as written when it is plain ASCII, else just the address (a display
 * name with other characters would need encoding word by word, and the address is what
 * matters). */
static void address_list(struct sbuf *b, const char *name, const char *const *list, size_t n)
{
    sb_str(b, name);
    sb_str(b, ": ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(b, ",\r\n ");
        if (plain_ascii(list[i])) {
            sb_str(b, list[i]);
        } else {
            char *addr = voc_mail_angle_addr(list[i]);
            sb_str(b, addr ? addr : "<>");
            free(addr);
        }
    }
    sb_str(b, "\r\n");
}

bool voc_mail_message_id_ok(const char *id)
{
    if (!id || !id[0] || strlen(id) > VOC_MAIL_MAX_MESSAGE_ID)
        return false;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '<' || *p == '>')
            return false;
    return true;
}

char *voc_notify_mail_build(const struct voc_notify_mail *m, size_t *len)
{
    struct sbuf b = {0};
    address_list(&b, "From", &m->from, 1);
    address_list(&b, "To", m->to, m->to_count);
    char *subject = voc_mime_header("Subject", m->subject ? m->subject : "");
    if (!subject) {
        free(b.data);
        return NULL;
    }
    sb_str(&b, subject);
    free(subject);
    char date[48];
    voc_mime_date(m->date_us, date, sizeof date);
    sb_printf(&b, "Date: %s\r\n", date);
    sb_printf(&b, "Message-ID: <%s>\r\n", m->message_id);
    /* So the customer's mail client files the answer under the message it answers. */
    if (m->in_reply_to && voc_mail_message_id_ok(m->in_reply_to))
        sb_printf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", m->in_reply_to, m->in_reply_to);
    sb_str(&b, "MIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: base64\r\n"
               "Auto-Submitted: auto-generated\r\n");
    sb_printf(&b, "X-Voc-Case: %llu\r\nX-Voc-Notification: %llu\r\n\r\n",
              (unsigned long long)m->case_id, (unsigned long long)m->notification_id);
    /* The text with CRLF line ends, then base64: safe for any line length and any byte. */
    struct sbuf text = {0};
    for (const char *p = m->text ? m->text : ""; *p; p++) {
        if (*p == '\n' && (p == m->text || p[-1] != '\r'))
            sb_add(&text, "\r\n", 2);
        else
            sb_add(&text, p, 1);
    }
    if (text.failed) {
        free(text.data);
        free(b.data);
        return NULL;
    }
    for (size_t off = 0; off < text.len; off += BASE64_LINE_BYTES) {
        size_t n = text.len - off < BASE64_LINE_BYTES ? text.len - off : BASE64_LINE_BYTES;
        sb_base64(&b, (const unsigned char *)text.data + off, n);
        sb_str(&b, "\r\n");
    }
    free(text.data);
    return sb_finish(&b, len);
}
