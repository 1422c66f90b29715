#include "mime_parse.h"

#include <ctype.h>
#include <glib.h>
#include <gmime/gmime.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail_text.h"

/* References followed for threading; a References header can list hundreds. */
#define MAX_REFERENCES 50
/* Longest kept header text (subject, names, address lists) */
#define MAX_HEADER_TEXT (16 * 1024)
/* Longest kept attachment name, in bytes */
#define MAX_NAME 255

struct parse_ctx {
    const struct voc_mail_limits *lim;
    struct voc_mail *m;
    GMimeParserOptions *opts;
    /* the first parser warning that makes the message unacceptable */
    enum voc_mail_status fatal;
    const char *fatal_reason;
    GString *plain;
    GString *html;
    bool want_attachments;
    enum voc_mail_status status;
    char *err;
    size_t errlen;
};

static bool library_ready;

void voc_mail_library_init(void)
{
    if (library_ready)
        return;
    g_mime_init();
    library_ready = true;
}

static enum voc_mail_status fail(struct parse_ctx *c, enum voc_mail_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum voc_mail_status fail(struct parse_ctx *c, enum voc_mail_status st, const char *fmt, ...)
{
    if (c->status == VOC_MAIL_OK) {
        c->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return c->status;
}

/* GMime reports what it had to guess at. Most of it is everyday sloppiness and is taken as
 * GMime repairs it; these mean the structure cannot be trusted (content would be lost or
 * read differently by another program), so the message is refused with the reason. */
static void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                              gpointer user_data)
{
    (void)offset;
    (void)item;
    struct parse_ctx *c = user_data;
    if (c->fatal != VOC_MAIL_OK)
        return;
    switch (code) {
    case GMIME_CRIT_INVALID_HEADER_NAME:
        c->fatal = VOC_MAIL_MALFORMED;
        c->fatal_reason = "malformed headers (a header line without a valid field name)";
        break;
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        c->fatal = VOC_MAIL_MALFORMED;
        c->fatal_reason = "malformed MIME: a multipart without a boundary parameter";
        break;
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        c->fatal = VOC_MAIL_MALFORMED;
        c->fatal_reason = "malformed MIME: a part without headers or content";
        break;
    case GMIME_WARN_TRUNCATED_MESSAGE:
        c->fatal = VOC_MAIL_MALFORMED;
        c->fatal_reason = "malformed MIME: a multipart boundary is never closed "
                          "(truncated message)";
        break;
    case GMIME_WARN_MALFORMED_MULTIPART:
        c->fatal = VOC_MAIL_MALFORMED;
        c->fatal_reason = "malformed MIME: a multipart without any part";
        break;
    case GMIME_CRIT_NESTING_OVERFLOW:
        c->fatal = VOC_MAIL_TOO_COMPLEX;
        c->fatal_reason = "MIME structure nested too deeply";
        break;
    default:
        break;
    }
}

unsigned voc_mail_count_content_types(const char *data, size_t len, unsigned stop_after)
{
    unsigned count = 0;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos > 12 && (data[pos] == 'c' || data[pos] == 'C') &&
            strncasecmp(data + pos, "content-type", 12) == 0) {
            size_t k = pos + 12;
            while (k < len && (data[k] == ' ' || data[k] == '\t'))
                k++;
            if (k < len && data[k] == ':' && ++count > stop_after)
                return count;
        }
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            break;
        pos = (size_t)(nl - data) + 1;
    }
    return count;
}

/* ---- small string helpers ----------------------------------------------------------------- */

/* The raw value of header `name` of obj with its encoded words re-encoded losslessly
 * (voc_mail_header_widen: GMime would hand "gb2312" to iconv as GBK), for GMime to decode
 * or parse again. NULL when the header is absent or GMime's own decoding loses nothing. */
static char *widened_header(struct parse_ctx *c, GMimeObject *obj, const char *name)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(obj);
    GMimeHeader *h = list ? g_mime_header_list_get_header(list, name) : NULL;
    const char *raw = h ? g_mime_header_get_raw_value(h) : NULL;
    return raw ? voc_mail_header_widen(raw, c->lim->fallback_charsets) : NULL;
}

/* A copy that is valid UTF-8 on one line, trimmed, cut at max bytes. */
static char *clean_line(const char *s, size_t max)
{
    if (!s)
        return g_strdup("");
    gchar *valid = g_utf8_make_valid(s, -1);
    size_t w = 0;
    for (size_t r = 0; valid[r]; r++) {
        unsigned char ch = (unsigned char)valid[r];
        if (ch == '\r' || ch == '\n' || ch == '\t')
            ch = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            continue;
        if (ch == ' ' && (w == 0 || valid[w - 1] == ' '))
            continue;
        valid[w++] = (char)ch;
    }
    while (w > 0 && valid[w - 1] == ' ')
        w--;
    if (w > max) {
        w = max;
        while (w > 0 && ((unsigned char)valid[w] & 0xC0) == 0x80)
            w--;
    }
    valid[w] = '\0';
    return valid;
}

static void add_reference(struct voc_mail *m, const char *id)
{
    if (!id || !id[0] || m->reference_count >= MAX_REFERENCES)
        return;
    for (size_t i = 0; i < m->reference_count; i++)
        if (strcmp(m->references[i], id) == 0)
            return;
    if (m->message_id && strcmp(m->message_id, id) == 0)
        return; /* a message never answers itself */
    m->references = g_renew(char *, m->references, m->reference_count + 1);
    m->references[m->reference_count++] = clean_line(id, 995);
}

static void add_reference_list(struct parse_ctx *c, const char *header, bool newest_first)
{
    if (!header)
        return;
    GMimeReferences *refs = g_mime_references_parse(c->opts, header);
    if (!refs)
        return;
    int n = g_mime_references_length(refs);
    for (int i = 0; i < n; i++) {
        int k = newest_first ? n - 1 - i : i;
        add_reference(c->m, g_mime_references_get_message_id(refs, k));
    }
    g_mime_references_free(refs);
}

static char *lower_token(const char *v)
{
    char *t = g_ascii_strdown(v ? v : "", -1);
    g_strstrip(t);
    char *semi = strpbrk(t, "; \t(");
    if (semi)
        *semi = '\0';
    return t;
}

static bool local_part_is(const char *addr, const char *name)
{
    size_t n = strlen(name);
    return addr && strncasecmp(addr, name, n) == 0 && (addr[n] == '@' || addr[n] == '\0');
}

/* ---- classification ---------------------------------------------------------------------- */

static void set_kind(struct voc_mail *m, enum voc_mail_kind kind, const char *reason)
{
    if (m->kind != VOC_MAIL_NORMAL)
        return;
    m->kind = kind;
    m->kind_reason = clean_line(reason, 200);
}

static void classify(struct parse_ctx *c, GMimeMessage *msg, const char *envelope_from)
{
    GMimeObject *top = GMIME_OBJECT(msg);
    struct voc_mail *m = c->m;
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    if (body) {
        GMimeContentType *ct = g_mime_object_get_content_type(body);
        if (g_mime_content_type_is_type(ct, "multipart", "report")) {
            char *rt = lower_token(g_mime_content_type_get_parameter(ct, "report-type"));
            if (strcmp(rt, "delivery-status") == 0 || strcmp(rt, "global-delivery-status") == 0)
                set_kind(m, VOC_MAIL_BOUNCE, "Content-Type: multipart/report; delivery-status");
            else if (strcmp(rt, "disposition-notification") == 0)
                set_kind(m, VOC_MAIL_AUTO_REPLY,
                         "Content-Type: multipart/report; disposition-notification");
            g_free(rt);
        }
    }
    if (g_mime_object_get_header(top, "X-Failed-Recipients"))
        set_kind(m, VOC_MAIL_BOUNCE, "X-Failed-Recipients");

    const char *null_sender = NULL;
    if (envelope_from) {
        if (!envelope_from[0])
            null_sender = "null envelope sender";
    } else {
        const char *rp = g_mime_object_get_header(top, "Return-Path");
        if (rp) {
            char *t = g_strstrip(g_strdup(rp));
            if (strcmp(t, "<>") == 0)
                null_sender = "Return-Path: <>";
            g_free(t);
        }
    }
    if (null_sender &&
        (local_part_is(m->from_addr, "mailer-daemon") || local_part_is(m->from_addr, "postmaster")))
        set_kind(m, VOC_MAIL_BOUNCE, null_sender);

    const char *as = g_mime_object_get_header(top, "Auto-Submitted");
    if (as) {
        char *t = lower_token(as);
        if (t[0] && strcmp(t, "no") != 0) {
            char reason[120];
            snprintf(reason, sizeof reason, "Auto-Submitted: %s", t);
            set_kind(m, VOC_MAIL_AUTO_REPLY, reason);
        }
        g_free(t);
    }
    const char *prec = g_mime_object_get_header(top, "Precedence");
    if (prec) {
        char *t = lower_token(prec);
        if (strcmp(t, "bulk") == 0 || strcmp(t, "junk") == 0 || strcmp(t, "auto_reply") == 0) {
            char reason[120];
            snprintf(reason, sizeof reason, "Precedence: %s", t);
            set_kind(m, VOC_MAIL_AUTO_REPLY, reason);
        }
        g_free(t);
    }
    static const char *const auto_headers[] = {"X-Autoreply", "X-Autorespond", "X-Auto-Reply",
                                               NULL};
    for (int i = 0; auto_headers[i]; i++) {
        const char *v = g_mime_object_get_header(top, auto_headers[i]);
        if (v) {
            char *t = lower_token(v);
            if (strcmp(t, "no") != 0 && strcmp(t, "false") != 0)
                set_kind(m, VOC_MAIL_AUTO_REPLY, auto_headers[i]);
            g_free(t);
        }
    }
    if (null_sender)
        set_kind(m, VOC_MAIL_AUTO_REPLY, null_sender);
}

/* ---- content ------------------------------------------------------------------------------ */

static GByteArray *part_bytes(GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    GByteArray *ba = g_byte_array_new();
    if (!w)
        return ba;
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(ba);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_mime_data_wrapper_write_to_stream(w, mem);
    g_object_unref(mem);
    return ba;
}

static void note_original(struct parse_ctx *c, GMimeMessage *orig)
{
    if (!orig || c->m->original_message_id)
        return;
    const char *id = g_mime_message_get_message_id(orig);
    if (id)
        c->m->original_message_id = clean_line(id, 995);
    if (!c->m->original_subject && g_mime_message_get_subject(orig))
        c->m->original_subject = clean_line(g_mime_message_get_subject(orig), MAX_HEADER_TEXT);
}

/* text/rfc822-headers in a delivery report: the returned message's header block. */
static void parse_original_headers(struct parse_ctx *c, GMimePart *part)
{
    GByteArray *ba = part_bytes(part);
    g_byte_array_append(ba, (const guint8 *)"\n\n", 2);
    GMimeStream *s = g_mime_stream_mem_new_with_buffer((const char *)ba->data, ba->len);
    GMimeParser *p = g_mime_parser_new_with_stream(s);
    GMimeParserOptions *quiet = g_mime_parser_options_clone(c->opts);
    g_mime_parser_options_set_warning_callback(quiet, NULL, NULL);
    GMimeMessage *orig = g_mime_parser_construct_message(p, quiet);
    note_original(c, orig);
    if (orig)
        g_object_unref(orig);
    g_mime_parser_options_free(quiet);
    g_object_unref(p);
    g_object_unref(s);
    g_byte_array_free(ba, TRUE);
}

static const char *extension_for(const char *type)
{
    static const struct {
        const char *type, *ext;
    } map[] = {{"image/jpeg", ".jpg"},      {"image/png", ".png"},      {"image/gif", ".gif"},
               {"image/webp", ".webp"},     {"image/heic", ".heic"},    {"image/bmp", ".bmp"},
               {"application/pdf", ".pdf"}, {"text/plain", ".txt"},     {"text/html", ".html"},
               {"video/mp4", ".mp4"},       {"audio/mpeg", ".mp3"},     {"audio/amr", ".amr"},
               {"message/rfc822", ".eml"},  {"application/zip", ".zip"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].ext;
    return ".bin";
}

/* A file name that is safe to show and to offer for download: the last path component,
 * valid UTF-8, no control characters, at most MAX_NAME bytes. */
static char *safe_name(const char *name, const char *type, size_t index)
{
    char *clean = NULL;
    if (name && name[0]) {
        const char *base = name;
        for (const char *p = name; *p; p++)
            if (*p == '/' || *p == '\\')
                base = p + 1;
        clean = clean_line(base, MAX_NAME);
        if (strcmp(clean, ".") == 0 || strcmp(clean, "..") == 0)
            clean[0] = '\0';
    }
    if (!clean || !clean[0]) {
        g_free(clean);
        clean = g_strdup_printf("attachment-%zu%s", index + 1, extension_for(type));
    }
    return clean;
}

static enum voc_mail_status add_attachment(struct parse_ctx *c, const char *name, const char *type,
                                           GByteArray *content, bool inline_part)
{
    struct voc_mail *m = c->m;
    if (m->attachment_count >= c->lim->max_attachments) {
        g_byte_array_free(content, TRUE);
        return fail(c, VOC_MAIL_TOO_MANY, "more than %u attachments", c->lim->max_attachments);
    }
    if (c->lim->max_attachment_size && content->len > c->lim->max_attachment_size) {
        fail(c, VOC_MAIL_TOO_LARGE,
             "attachment %zu (%s) has %u bytes, over the limit of %llu bytes",
             m->attachment_count + 1, type, content->len,
             (unsigned long long)c->lim->max_attachment_size);
        g_byte_array_free(content, TRUE);
        return c->status;
    }
    m->attachments = g_renew(struct voc_mail_attachment, m->attachments, m->attachment_count + 1);
    struct voc_mail_attachment *a = &m->attachments[m->attachment_count];
    a->name = safe_name(name, type, m->attachment_count);
    a->type = g_strdup(type);
    a->size = content->len;
    a->data = g_byte_array_free(content, FALSE);
    a->inline_part = inline_part;
    m->attachment_count++;
    return VOC_MAIL_OK;
}

static void append_text(struct parse_ctx *c, GString *to, const char *text, size_t len)
{
    /* keep a little more than the limit so the final cut happens on clean text */
    size_t cap = c->lim->max_text ? c->lim->max_text + 4096 : 0;
    if (cap && to->len >= cap)
        return;
    if (to->len)
        g_string_append_c(to, '\n');
    if (cap && to->len + len > cap)
        len = cap - to->len;
    g_string_append_len(to, text, (gssize)len);
}

static void take_text(struct parse_ctx *c, GMimePart *part, bool html)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    GByteArray *ba = part_bytes(part);
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    char sniffed[64];
    if (html && (!charset || !charset[0]) &&
        voc_html_sniff_charset((const char *)ba->data, ba->len, sniffed, sizeof sniffed))
        charset = sniffed;
    size_t len = 0;
    bool lossy = false;
    char *utf8 = voc_mail_to_utf8((const char *)ba->data, ba->len, charset,
                                  c->lim->fallback_charsets, &len, &lossy);
    g_byte_array_free(ba, TRUE);
    if (!utf8) {
        fail(c, VOC_MAIL_NOMEM, "out of memory");
        return;
    }
    c->m->text_lossy |= lossy;
    if (html) {
        size_t tl = 0;
        char *text =
            voc_html_to_text(utf8, len, c->lim->max_text ? c->lim->max_text + 4096 : 0, &tl);
        if (text)
            append_text(c, c->html, text, tl);
        free(text);
    } else {
        append_text(c, c->plain, utf8, len);
    }
    free(utf8);
}

static bool is_signature(GMimeContentType *ct)
{
    return g_mime_content_type_is_type(ct, "application", "pgp-signature") ||
           g_mime_content_type_is_type(ct, "application", "pkcs7-signature") ||
           g_mime_content_type_is_type(ct, "application", "x-pkcs7-signature");
}

static enum voc_mail_status walk(struct parse_ctx *c, GMimeObject *obj, unsigned depth,
                                 bool in_report);

/* The file name of a part when its Content-Disposition filename or Content-Type name holds
 * encoded words GMime would decode with loss (widened_header); NULL: take GMime's. */
static char *part_filename(struct parse_ctx *c, GMimeObject *obj)
{
    char *name = NULL;
    char *wide = widened_header(c, obj, "Content-Disposition");
    if (wide) {
        GMimeContentDisposition *d = g_mime_content_disposition_parse(c->opts, wide);
        const char *v = d ? g_mime_content_disposition_get_parameter(d, "filename") : NULL;
        name = v ? strdup(v) : NULL;
        if (d)
            g_object_unref(d);
        free(wide);
    }
    if (!name && (wide = widened_header(c, obj, "Content-Type"))) {
        GMimeContentType *t = g_mime_content_type_parse(c->opts, wide);
        const char *v = t ? g_mime_content_type_get_parameter(t, "name") : NULL;
        name = v ? strdup(v) : NULL;
        if (t)
            g_object_unref(t);
        free(wide);
    }
    return name;
}

/* "type/subtype" in lower case, or application/octet-stream when the header's type is not a
 * valid token pair (8-bit bytes, spaces, quotes): the type goes into the case as JSON and
 * into logs, and a sender's junk must not turn into invalid UTF-8 there. g_free'd. */
static char *mime_type_of(GMimeContentType *ct)
{
    char *type = g_mime_content_type_get_mime_type(ct);
    char *lower = g_ascii_strdown(type ? type : "", -1);
    g_free(type);
    const char *slash = strchr(lower, '/');
    bool ok = slash && slash != lower && slash[1] && strlen(lower) <= 127;
    for (const char *p = lower; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
             strchr("!#$&^_.+-", *p) != NULL || (p == slash);
    if (ok && strchr(slash + 1, '/'))
        ok = false;
    if (ok)
        return lower;
    g_free(lower);
    return g_strdup("application/octet-stream");
}

static enum voc_mail_status walk_leaf(struct parse_ctx *c, GMimePart *part, bool in_report)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *disp = g_mime_object_get_disposition(obj);
    bool attachment = disp && g_ascii_strcasecmp(disp, "attachment") == 0;
    char *wide_name = part_filename(c, obj);
    const char *filename = wide_name ? wide_name : g_mime_part_get_filename(part);

    enum voc_mail_status st = VOC_MAIL_OK;
    if (in_report && (g_mime_content_type_is_type(ct, "text", "rfc822-headers") ||
                      g_mime_content_type_is_type(ct, "message", "rfc822-headers"))) {
        parse_original_headers(c, part);
    } else if (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
               g_mime_content_type_is_type(ct, "message", "global-delivery-status") ||
               g_mime_content_type_is_type(ct, "message", "disposition-notification") ||
               is_signature(ct)) {
        /* nothing to keep */
    } else if (!attachment && !filename && g_mime_content_type_is_type(ct, "text", "plain")) {
        take_text(c, part, false);
        st = c->status;
    } else if (!attachment && !filename && g_mime_content_type_is_type(ct, "text", "html")) {
        take_text(c, part, true);
        st = c->status;
    } else if (c->want_attachments) {
        char *type = mime_type_of(ct);
        bool inline_part = !attachment && (disp || g_mime_object_get_content_id(obj));
        st = add_attachment(c, filename, type, part_bytes(part), inline_part);
        g_free(type);
    }
    free(wide_name);
    return st;
}

/* A forwarded message (message/rfc822) is kept whole, as an .eml attachment; its parts still
 * count against the limits. */
static enum voc_mail_status walk_message_part(struct parse_ctx *c, GMimeMessagePart *mp,
                                              unsigned depth, bool in_report)
{
    GMimeMessage *inner = g_mime_message_part_get_message(mp);
    if (in_report)
        note_original(c, inner);
    if (inner && g_mime_message_get_mime_part(inner)) {
        bool want = c->want_attachments;
        GString *plain = c->plain, *html = c->html;
        /* walk for the limits only: the inner text is not the sender's text */
        c->want_attachments = false;
        c->plain = g_string_new(NULL);
        c->html = g_string_new(NULL);
        walk(c, g_mime_message_get_mime_part(inner), depth + 1, false);
        g_string_free(c->plain, TRUE);
        g_string_free(c->html, TRUE);
        c->plain = plain;
        c->html = html;
        c->want_attachments = want;
        if (c->status != VOC_MAIL_OK)
            return c->status;
    }
    if (in_report || !c->want_attachments || !inner)
        return VOC_MAIL_OK;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
    GByteArray *ba = g_byte_array_new();
    GByteArray *src = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_byte_array_append(ba, src->data, src->len);
    g_object_unref(mem);
    const char *subject = g_mime_message_get_subject(inner);
    char *name = NULL;
    if (subject && subject[0])
        name = g_strdup_printf("%s.eml", subject);
    const char *filename =
        g_mime_object_get_content_disposition_parameter(GMIME_OBJECT(mp), "filename");
    enum voc_mail_status st =
        add_attachment(c, filename ? filename : name, "message/rfc822", ba, false);
    g_free(name);
    return st;
}

static enum voc_mail_status walk(struct parse_ctx *c, GMimeObject *obj, unsigned depth,
                                 bool in_report)
{
    struct voc_mail *m = c->m;
    if (++m->part_count > c->lim->max_parts)
        return fail(c, VOC_MAIL_TOO_COMPLEX, "more than %u MIME parts", c->lim->max_parts);
    if (depth > m->depth)
        m->depth = depth;
    if (depth > c->lim->max_depth)
        return fail(c, VOC_MAIL_TOO_COMPLEX, "MIME parts nested deeper than %u levels",
                    c->lim->max_depth);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        bool report = g_mime_content_type_is_type(ct, "multipart", "report");
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            if (walk(c, g_mime_multipart_get_part(mp, i), depth + 1, report) != VOC_MAIL_OK)
                return c->status;
        return VOC_MAIL_OK;
    }
    if (GMIME_IS_MESSAGE_PART(obj))
        return walk_message_part(c, GMIME_MESSAGE_PART(obj), depth, in_report);
    if (GMIME_IS_PART(obj))
        return walk_leaf(c, GMIME_PART(obj), in_report);
    return VOC_MAIL_OK; /* message/partial and other containers carry nothing to show */
}

/* An address header of msg, parsed from its raw value with the encoded words widened (see
 * widened_header). New reference, NULL when absent. */
static InternetAddressList *address_header(struct parse_ctx *c, GMimeMessage *msg, const char *name,
                                           InternetAddressList *parsed)
{
    char *wide = widened_header(c, GMIME_OBJECT(msg), name);
    InternetAddressList *list = wide ? internet_address_list_parse(c->opts, wide) : NULL;
    free(wide);
    if (!list && parsed)
        list = g_object_ref(parsed);
    return list;
}

static void read_headers(struct parse_ctx *c, GMimeMessage *msg)
{
    struct voc_mail *m = c->m;
    GMimeObject *top = GMIME_OBJECT(msg);
    char *subject = widened_header(c, top, "Subject");
    if (subject) {
        char *decoded = g_mime_utils_header_decode_text(c->opts, subject);
        m->subject = clean_line(decoded, MAX_HEADER_TEXT);
        g_free(decoded);
        free(subject);
    } else {
        m->subject = clean_line(g_mime_message_get_subject(msg), MAX_HEADER_TEXT);
    }
    InternetAddressList *from = address_header(c, msg, "From", g_mime_message_get_from(msg));
    if (!from || internet_address_list_length(from) == 0) {
        if (from)
            g_object_unref(from);
        from = address_header(c, msg, "Sender", g_mime_message_get_sender(msg));
    }
    InternetAddress *first = NULL;
    if (from && internet_address_list_length(from) > 0) {
        first = internet_address_list_get_address(from, 0);
        if (INTERNET_ADDRESS_IS_GROUP(first)) {
            InternetAddressList *members =
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(first));
            first = members && internet_address_list_length(members) > 0
                        ? internet_address_list_get_address(members, 0)
                        : NULL;
        }
    }
    m->from_name = clean_line(first ? internet_address_get_name(first) : NULL, MAX_HEADER_TEXT);
    m->from_addr =
        clean_line(first && INTERNET_ADDRESS_IS_MAILBOX(first)
                       ? internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(first))
                       : NULL,
                   998);
    if (from)
        g_object_unref(from);
    InternetAddressList *to = address_header(c, msg, "To", g_mime_message_get_to(msg));
    InternetAddressList *cc = address_header(c, msg, "Cc", g_mime_message_get_cc(msg));
    char *s = to ? internet_address_list_to_string(to, NULL, FALSE) : NULL;
    m->to = clean_line(s, MAX_HEADER_TEXT);
    g_free(s);
    s = cc ? internet_address_list_to_string(cc, NULL, FALSE) : NULL;
    m->cc = clean_line(s, MAX_HEADER_TEXT);
    g_free(s);
    if (to)
        g_object_unref(to);
    if (cc)
        g_object_unref(cc);
    m->date = clean_line(g_mime_object_get_header(top, "Date"), 200);
    const char *id = g_mime_message_get_message_id(msg);
    if (id && id[0])
        m->message_id = clean_line(id, 995);
    add_reference_list(c, g_mime_object_get_header(top, "In-Reply-To"), false);
    add_reference_list(c, g_mime_object_get_header(top, "References"), true);
}

enum voc_mail_status voc_mail_parse(const char *data, size_t len,
                                    const struct voc_mail_limits *limits, const char *envelope_from,
                                    struct voc_mail **out, char *err, size_t errlen)
{
    voc_mail_library_init();
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    struct parse_ctx c = {.lim = limits, .err = err, .errlen = errlen};
    if (limits->max_size && len > limits->max_size) {
        fail(&c, VOC_MAIL_TOO_LARGE, "message has %zu bytes, over the limit of %llu bytes", len,
             (unsigned long long)limits->max_size);
        return c.status;
    }
    /* Refuse MIME bombs before GMime builds a tree for them: every MIME object but the
     * default text body needs a Content-Type line. */
    if (voc_mail_count_content_types(data, len, limits->max_parts) > limits->max_parts) {
        fail(&c, VOC_MAIL_TOO_COMPLEX, "more than %u MIME parts", limits->max_parts);
        return c.status;
    }
    c.m = g_new0(struct voc_mail, 1);
    c.opts = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(c.opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(c.opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(c.opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(c.opts, TRUE);
    {
        /* Raw 8-bit header text: UTF-8 if it is valid, else the configured charsets. */
        const char *defaults[] = {"UTF-8", "GB18030", NULL};
        const char *const *fb = limits->fallback_charsets && limits->fallback_charsets[0]
                                    ? limits->fallback_charsets
                                    : defaults;
        g_mime_parser_options_set_fallback_charsets(c.opts, (const char **)fb);
    }
    g_mime_parser_options_set_warning_callback(c.opts, on_parser_warning, &c);
    c.plain = g_string_new(NULL);
    c.html = g_string_new(NULL);

    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, c.opts);
    if (c.fatal != VOC_MAIL_OK) {
        fail(&c, c.fatal, "%s", c.fatal_reason);
        goto done;
    }
    if (!msg) {
        fail(&c, VOC_MAIL_MALFORMED, "not an e-mail message (no header block)");
        goto done;
    }
    read_headers(&c, msg);
    classify(&c, msg, envelope_from);
    c.want_attachments = c.m->kind == VOC_MAIL_NORMAL;
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    if (body && walk(&c, body, 1, false) != VOC_MAIL_OK)
        goto done;
    if (c.fatal != VOC_MAIL_OK) { /* warnings raised while content was decoded */
        fail(&c, c.fatal, "%s", c.fatal_reason);
        goto done;
    }
    GString *chosen = c.plain;
    size_t visible = 0;
    for (size_t i = 0; i < c.plain->len; i++)
        if (!g_ascii_isspace(c.plain->str[i]))
            visible++;
    if (visible == 0 && c.html->len) {
        chosen = c.html;
        c.m->text_from_html = true;
    }
    c.m->text_len =
        voc_mail_clean_text(chosen->str, chosen->len, limits->max_text, &c.m->text_truncated);
    c.m->text = g_strndup(chosen->str, c.m->text_len);
done:
    if (msg)
        g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(stream);
    g_mime_parser_options_free(c.opts);
    g_string_free(c.plain, TRUE);
    g_string_free(c.html, TRUE);
    if (c.status != VOC_MAIL_OK) {
        voc_mail_free(c.m);
        return c.status;
    }
    *out = c.m;
    return VOC_MAIL_OK;
}

void voc_mail_free(struct voc_mail *m)
{
    if (!m)
        return;
    g_free(m->subject);
    g_free(m->from_name);
    g_free(m->from_addr);
    g_free(m->to);
    g_free(m->cc);
    g_free(m->date);
    g_free(m->message_id);
    for (size_t i = 0; i < m->reference_count; i++)
        g_free(m->references[i]);
    g_free(m->references);
    g_free(m->kind_reason);
    g_free(m->original_message_id);
    g_free(m->original_subject);
    g_free(m->text);
    for (size_t i = 0; i < m->attachment_count; i++) {
        g_free(m->attachments[i].name);
        g_free(m->attachments[i].type);
        g_free(m->attachments[i].data);
    }
    g_free(m->attachments);
    g_free(m);
}
