#include "mail_text.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- charsets ----------------------------------------------------------------------------- */

/* Mail labels Chinese text with the name of the smallest standard, but the bytes come from
 * Windows code pages that are supersets (GB2312 mail carries GBK characters such as 堃 or
 * 镕; Big5 mail carries CP950 and HKSCS extensions). Decoding with the literal label would
 * fail or drop those characters, so each label maps to the superset first. */
static const struct {
    const char *label;
    const char *first;
    const char *second;
} charset_map[] = {
    {"gb2312", "GB18030", NULL},
    {"gbk", "GB18030", NULL},
    {"x-gbk", "GB18030", NULL},
    {"cp936", "GB18030", NULL},
    {"ms936", "GB18030", NULL},
    {"windows-936", "GB18030", NULL},
    {"euc-cn", "GB18030", NULL},
    {"x-euc-cn", "GB18030", NULL},
    {"gb_2312-80", "GB18030", NULL},
    {"csgb2312", "GB18030", NULL},
    {"chinese", "GB18030", NULL},
    {"gb18030", "GB18030", NULL},
    {"big5", "CP950", "BIG5-HKSCS"},
    {"x-big5", "CP950", "BIG5-HKSCS"},
    {"big-5", "CP950", "BIG5-HKSCS"},
    {"cn-big5", "CP950", "BIG5-HKSCS"},
    {"csbig5", "CP950", "BIG5-HKSCS"},
    {"cp950", "CP950", "BIG5-HKSCS"},
    {"big5-hkscs", "BIG5-HKSCS", "CP950"},
    {"us-ascii", "UTF-8", NULL},
    {"ascii", "UTF-8", NULL},
    {"utf8", "UTF-8", NULL},
    {"utf-8", "UTF-8", NULL},
    {"iso-8859-1", "WINDOWS-1252", NULL},
    {"latin1", "WINDOWS-1252", NULL},
    {"ks_c_5601-1987", "CP949", NULL},
    {"euc-kr", "CP949", NULL},
    {"shift_jis", "CP932", NULL},
    {"x-sjis", "CP932", NULL},
};

/* Convert with iconv. strict: fail (NULL) on the first undecodable byte. Not strict: put
 * U+FFFD for it and go on. Returns NULL also when iconv does not know `from`. */
static char *iconv_convert(const char *from, const char *in, size_t len, bool strict,
                           size_t *out_len, bool *replaced)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return NULL;
    size_t cap = len * 2 + 16;
    char *out = malloc(cap);
    if (!out) {
        iconv_close(cd);
        return NULL;
    }
    char *inp = (char *)in;
    size_t inleft = len;
    size_t used = 0;
    while (inleft > 0) {
        if (cap - used < 16) {
            size_t ncap = cap * 2;
            char *n = realloc(out, ncap);
            if (!n)
                goto fail;
            out = n;
            cap = ncap;
        }
        char *outp = out + used;
        size_t outleft = cap - used - 1;
        size_t rc = iconv(cd, &inp, &inleft, &outp, &outleft);
        used = (size_t)(outp - out);
        if (rc != (size_t)-1)
            break;
        if (errno == E2BIG)
            continue;
        if (strict)
            goto fail;
        /* EILSEQ or EINVAL (truncated sequence): one replacement, skip one byte. */
        if (cap - used < 8)
            continue; /* grow first; the same byte is retried */
        memcpy(out + used, "\xEF\xBF\xBD", 3);
        used += 3;
        inp++;
        inleft--;
        if (replaced)
            *replaced = true;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    /* flush shift state (stateful encodings such as ISO-2022-JP) */
    {
        char *outp = out + used;
        size_t outleft = cap - used - 1;
        iconv(cd, NULL, NULL, &outp, &outleft);
        used = (size_t)(outp - out);
    }
    iconv_close(cd);
    out[used] = '\0';
    *out_len = used;
    return out;
fail:
    iconv_close(cd);
    free(out);
    return NULL;
}

static char *copy_utf8(const char *in, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    if (len)
        memcpy(out, in, len);
    out[len] = '\0';
    *out_len = len;
    return out;
}

static bool is_utf8(const char *name)
{
    return strcasecmp(name, "UTF-8") == 0 || strcasecmp(name, "UTF8") == 0;
}

/* Try one charset strictly; UTF-8 is validated, not converted. */
static char *try_strict(const char *name, const char *in, size_t len, size_t *out_len)
{
    if (is_utf8(name))
        return g_utf8_validate_len(in, len, NULL) ? copy_utf8(in, len, out_len) : NULL;
    return iconv_convert(name, in, len, true, out_len, NULL);
}

char *voc_mail_to_utf8(const char *data, size_t len, const char *charset,
                       const char *const *fallbacks, size_t *out_len, bool *lossy)
{
    static const char *const default_fallbacks[] = {"UTF-8", "GB18030", NULL};
    if (lossy)
        *lossy = false;
    if (!fallbacks || !fallbacks[0])
        fallbacks = default_fallbacks;
    const char *first = NULL, *second = NULL;
    if (charset && charset[0]) {
        for (size_t i = 0; i < sizeof charset_map / sizeof charset_map[0]; i++) {
            if (strcasecmp(charset, charset_map[i].label) == 0) {
                first = charset_map[i].first;
                second = charset_map[i].second;
                break;
            }
        }
        if (!first)
            first = charset; /* glibc's iconv knows the other MIME names as they are */
    }
    char *out;
    if (first && (out = try_strict(first, data, len, out_len)))
        return out;
    if (second && (out = try_strict(second, data, len, out_len)))
        return out;
    if (g_utf8_validate_len(data, len, NULL))
        return copy_utf8(data, len, out_len);
    for (size_t i = 0; fallbacks[i]; i++)
        if ((out = try_strict(fallbacks[i], data, len, out_len)))
            return out;
    /* Nothing decodes cleanly: keep what can be read. */
    const char *lossy_from = NULL;
    if (first && !is_utf8(first))
        lossy_from = first;
    for (size_t i = 0; !lossy_from && fallbacks[i]; i++)
        if (!is_utf8(fallbacks[i]))
            lossy_from = fallbacks[i];
    if (lossy_from) {
        bool replaced = false;
        out = iconv_convert(lossy_from, data, len, false, out_len, &replaced);
        if (out) {
            if (lossy)
                *lossy = replaced;
            return out;
        }
    }
    gchar *valid = g_utf8_make_valid(data, (gssize)len);
    if (!valid)
        return NULL;
    if (lossy)
        *lossy = true;
    out = copy_utf8(valid, strlen(valid), out_len);
    g_free(valid);
    return out;
}

/* ---- encoded words -------------------------------------------------------------------- */

/* One RFC 2047 word at s ("=?charset[*lang]?B|Q?text?="): its end, label and payload, or
 * false when s does not start one. */
struct encoded_word {
    const char *end;
    const char *label;
    size_t label_len;
    char encoding;
    const char *text;
    size_t text_len;
};

static bool parse_word(const char *s, struct encoded_word *w)
{
    if (s[0] != '=' || s[1] != '?')
        return false;
    const char *label = s + 2;
    const char *q = strchr(label, '?');
    if (!q || q == label || (q[1] != 'B' && q[1] != 'b' && q[1] != 'Q' && q[1] != 'q') ||
        q[2] != '?')
        return false;
    for (const char *c = label; c < q; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return false;
    const char *text = q + 3;
    const char *close = strstr(text, "?=");
    if (!close)
        return false;
    for (const char *c = text; c < close; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return false; /* an encoded word has no white space inside */
    const char *star = memchr(label, '*', (size_t)(q - label)); /* RFC 2231 language */
    w->label = label;
    w->label_len = (size_t)((star ? star : q) - label);
    w->encoding = (char)(q[1] | 0x20);
    w->text = text;
    w->text_len = (size_t)(close - text);
    w->end = close + 2;
    return true;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void append_payload(GByteArray *out, const struct encoded_word *w)
{
    if (w->encoding == 'b') {
        /* g_base64_decode_step is lenient about padding and stray characters, as mailers
         * need it to be. */
        guchar *buf = g_malloc(w->text_len * 3 / 4 + 4);
        gint state = 0;
        guint save = 0;
        gsize n = g_base64_decode_step(w->text, w->text_len, buf, &state, &save);
        g_byte_array_append(out, buf, (guint)n);
        g_free(buf);
        return;
    }
    for (size_t i = 0; i < w->text_len; i++) {
        char c = w->text[i];
        int hi, lo;
        if (c == '_') {
            g_byte_array_append(out, (const guint8 *)" ", 1);
        } else if (c == '=' && i + 2 < w->text_len && (hi = hex_digit(w->text[i + 1])) >= 0 &&
                   (lo = hex_digit(w->text[i + 2])) >= 0) {
            guint8 b = (guint8)(hi << 4 | lo);
            g_byte_array_append(out, &b, 1);
            i += 2;
        } else {
            g_byte_array_append(out, (const guint8 *)&c, 1);
        }
    }
}

static bool label_is(const struct encoded_word *w, const char *name)
{
    return strlen(name) == w->label_len && g_ascii_strncasecmp(w->label, name, w->label_len) == 0;
}

static bool is_plain_label(const struct encoded_word *w)
{
    return label_is(w, "utf-8") || label_is(w, "utf8") || label_is(w, "us-ascii");
}

char *voc_mail_header_widen(const char *raw, const char *const *fallbacks)
{
    if (!raw || !strstr(raw, "=?"))
        return NULL;
    GString *out = g_string_new(NULL);
    bool changed = false;
    const char *p = raw;
    while (*p) {
        struct encoded_word w;
        if (!parse_word(p, &w)) {
            g_string_append_c(out, *p++);
            continue;
        }
        if (is_plain_label(&w)) {
            g_string_append_len(out, p, w.end - p);
            p = w.end;
            continue;
        }
        /* A run of words with this label, separated by white space only (or nothing, as
         * some mailers write them). */
        GByteArray *bytes = g_byte_array_new();
        append_payload(bytes, &w);
        const char *after = w.end;
        for (;;) {
            const char *n = after;
            while (*n == ' ' || *n == '\t' || *n == '\r' || *n == '\n')
                n++;
            struct encoded_word next;
            if (!parse_word(n, &next) || next.label_len != w.label_len ||
                g_ascii_strncasecmp(next.label, w.label, w.label_len) != 0)
                break;
            append_payload(bytes, &next);
            after = next.end;
        }
        char label[64];
        size_t ll = w.label_len < sizeof label - 1 ? w.label_len : sizeof label - 1;
        memcpy(label, w.label, ll);
        label[ll] = '\0';
        size_t len = 0;
        char *utf8 =
            voc_mail_to_utf8((const char *)bytes->data, bytes->len, label, fallbacks, &len, NULL);
        g_byte_array_free(bytes, TRUE);
        if (!utf8) {
            g_string_free(out, TRUE);
            return NULL;
        }
        /* Q rather than B: GMime joins the payloads of adjacent words of one charset before
         * decoding them, and the '=' padding of a B word would end the joined base64. Only
         * letters and digits stay as they are, so the word is safe in a phrase and in a
         * quoted parameter alike. */
        g_string_append(out, "=?UTF-8?Q?");
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)utf8[i];
            if (g_ascii_isalnum(ch))
                g_string_append_c(out, (char)ch);
            else
                g_string_append_printf(out, "=%02X", ch);
        }
        g_string_append(out, "?=");
        free(utf8);
        changed = true;
        p = after;
    }
    if (!changed) {
        g_string_free(out, TRUE);
        return NULL;
    }
    char *result = strdup(out->str);
    g_string_free(out, TRUE);
    return result;
}

size_t voc_mail_clean_text(char *text, size_t len, size_t max, bool *truncated)
{
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        unsigned char c = (unsigned char)text[r];
        if (c == '\r') {
            text[w++] = '\n';
            if (r + 1 < len && text[r + 1] == '\n')
                r++;
        } else if (c < 0x20 && c != '\t' && c != '\n') {
            continue;
        } else if (c == 0x7f) {
            continue;
        } else {
            text[w++] = (char)c;
        }
    }
    /* trailing white space and blank lines */
    while (w > 0 && (text[w - 1] == '\n' || text[w - 1] == ' ' || text[w - 1] == '\t'))
        w--;
    if (truncated)
        *truncated = false;
    if (max && w > max) {
        w = max;
        while (w > 0 && ((unsigned char)text[w] & 0xC0) == 0x80)
            w--;
        if (truncated)
            *truncated = true;
    }
    text[w] = '\0';
    return w;
}

/* ---- HTML -------------------------------------------------------------------------------- */

struct text_out {
    char *buf;
    size_t len, cap, max;
    bool full;
    int pending_nl;     /* line breaks owed before the next visible character */
    bool pending_space; /* a collapsed run of white space before the next character */
    bool oom;
};

static void out_raw(struct text_out *o, const char *s, size_t n)
{
    if (o->full || o->oom)
        return;
    if (o->max && o->len + n > o->max) {
        o->full = true;
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t ncap = o->cap ? o->cap : 256;
        while (ncap < o->len + n + 1)
            ncap *= 2;
        char *nb = realloc(o->buf, ncap);
        if (!nb) {
            o->oom = true;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_visible(struct text_out *o, const char *s, size_t n)
{
    if (o->pending_nl && o->len) {
        int k = o->pending_nl > 2 ? 2 : o->pending_nl;
        out_raw(o, "\n\n", (size_t)k);
    } else if (o->pending_space && o->len && o->buf[o->len - 1] != '\n') {
        out_raw(o, " ", 1);
    }
    o->pending_nl = 0;
    o->pending_space = false;
    out_raw(o, s, n);
}

static void out_break(struct text_out *o, int lines)
{
    if (o->pending_nl < lines)
        o->pending_nl = lines;
    o->pending_space = false;
}

/* Text content: collapse white space unless inside <pre>. */
static void out_text(struct text_out *o, const char *s, size_t n, bool pre)
{
    size_t i = 0;
    while (i < n && !o->full) {
        unsigned char c = (unsigned char)s[i];
        if (pre) {
            if (c == '\r') {
                i++;
                continue;
            }
            if (c == '\n') {
                o->pending_nl++;
                i++;
                continue;
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            o->pending_space = true;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n) {
            unsigned char d = (unsigned char)s[j];
            if (d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '\f')
                break;
            j++;
        }
        out_visible(o, s + i, j - i);
        i = j;
    }
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"nbsp", 0x20},     {"amp", '&'},       {"lt", '<'},        {"gt", '>'},
    {"quot", '"'},      {"apos", '\''},     {"ldquo", 0x201C},  {"rdquo", 0x201D},
    {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013},  {"middot", 0x00B7}, {"bull", 0x2022},   {"copy", 0x00A9},
    {"reg", 0x00AE},    {"trade", 0x2122},  {"yen", 0x00A5},    {"euro", 0x20AC},
    {"pound", 0x00A3},  {"cent", 0x00A2},   {"times", 0x00D7},  {"divide", 0x00F7},
    {"laquo", 0x00AB},  {"raquo", 0x00BB},  {"deg", 0x00B0},    {"plusmn", 0x00B1},
    {"sect", 0x00A7},   {"para", 0x00B6},   {"ensp", 0x20},     {"emsp", 0x20},
    {"thinsp", 0x20},   {"zwnj", 0x200C},   {"zwj", 0x200D},    {"shy", 0xAD},
    {"larr", 0x2190},   {"rarr", 0x2192},   {"uarr", 0x2191},   {"darr", 0x2193},
    {"hearts", 0x2665}, {"le", 0x2264},     {"ge", 0x2265},     {"ne", 0x2260},
    {"frac12", 0x00BD}, {"sup2", 0x00B2},   {"micro", 0x00B5},  {"iexcl", 0x00A1},
};

static size_t utf8_encode(uint32_t cp, char *buf)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the entity at s[0] == '&'. Returns bytes consumed (0 = not an entity) and the
 * code point. */
static size_t decode_entity(const char *s, size_t n, uint32_t *cp)
{
    if (n < 3)
        return 0;
    size_t i = 1;
    if (s[1] == '#') {
        i = 2;
        int base = 10;
        if (i < n && (s[i] == 'x' || s[i] == 'X')) {
            base = 16;
            i++;
        }
        size_t start = i;
        uint32_t v = 0;
        while (i < n && i - start < 8 &&
               (base == 16 ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]))) {
            int d = isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                 : (tolower((unsigned char)s[i]) - 'a' + 10);
            v = v * (uint32_t)base + (uint32_t)d;
            i++;
        }
        if (i == start)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        *cp = v;
        return i;
    }
    while (i < n && i < 10 && isalnum((unsigned char)s[i]))
        i++;
    if (i >= n || s[i] != ';' || i == 1)
        return 0;
    for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++) {
        if (strlen(entities[k].name) == i - 1 && memcmp(entities[k].name, s + 1, i - 1) == 0) {
            *cp = entities[k].cp;
            return i + 1;
        }
    }
    return 0;
}

/* Case-insensitive search for "</name" from p; returns its offset or n. */
static size_t find_close_tag(const char *s, size_t p, size_t n, const char *name)
{
    size_t nl = strlen(name);
    while (p + 2 + nl <= n) {
        const char *lt = memchr(s + p, '<', n - p);
        if (!lt)
            return n;
        size_t at = (size_t)(lt - s);
        if (at + 2 + nl <= n && s[at + 1] == '/' && strncasecmp(s + at + 2, name, nl) == 0)
            return at;
        p = at + 1;
    }
    return n;
}

enum tag_effect {
    TAG_NONE,
    TAG_BREAK1,
    TAG_BREAK2,
    TAG_BR,
    TAG_CELL,
    TAG_ITEM,
    TAG_SKIP,
    TAG_PRE,
    TAG_HR
};

static enum tag_effect tag_kind(const char *name, bool closing)
{
    static const char *const skip[] = {"script", "style", "title", "template", "xml", NULL};
    static const char *const para[] = {"p",  "h1", "h2",    "h3",         "h4",
                                       "h5", "h6", "table", "blockquote", NULL};
    static const char *const block[] = {
        "div",     "tr",     "ul",     "ol",         "dl",     "dt",    "dd",       "section",
        "article", "header", "footer", "address",    "center", "form",  "fieldset", "caption",
        "body",    "nav",    "figure", "figcaption", "main",   "aside", NULL};
    for (int i = 0; skip[i]; i++)
        if (strcmp(name, skip[i]) == 0)
            return closing ? TAG_NONE : TAG_SKIP;
    if (strcmp(name, "br") == 0)
        return TAG_BR;
    if (strcmp(name, "hr") == 0)
        return TAG_HR;
    if (strcmp(name, "li") == 0)
        return closing ? TAG_BREAK1 : TAG_ITEM;
    if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
        return TAG_CELL;
    if (strcmp(name, "pre") == 0)
        return TAG_PRE;
    for (int i = 0; para[i]; i++)
        if (strcmp(name, para[i]) == 0)
            return TAG_BREAK2;
    for (int i = 0; block[i]; i++)
        if (strcmp(name, block[i]) == 0)
            return TAG_BREAK1;
    return TAG_NONE;
}

char *voc_html_to_text(const char *s, size_t n, size_t max_out, size_t *out_len)
{
    struct text_out o = {.max = max_out};
    bool pre = false;
    /* Once a quote character is known to have no partner further on, later tags stop
     * looking for one: keeps malformed attribute soup linear. */
    bool no_more_quote[2] = {false, false};
    size_t i = 0;
    while (i < n && !o.full && !o.oom) {
        size_t run = i;
        while (run < n && s[run] != '<' && s[run] != '&')
            run++;
        if (run > i)
            out_text(&o, s + i, run - i, pre);
        i = run;
        if (i >= n)
            break;
        if (s[i] == '&') {
            uint32_t cp;
            size_t used = decode_entity(s + i, n - i, &cp);
            if (used == 0) {
                out_text(&o, "&", 1, pre);
                i++;
                continue;
            }
            char buf[4];
            size_t bl = utf8_encode(cp, buf);
            if (cp == 0x20 || cp == 0xA0)
                out_text(&o, " ", 1, pre);
            else
                out_visible(&o, buf, bl);
            i += used;
            continue;
        }
        /* '<' */
        if (i + 3 < n && memcmp(s + i, "<!--", 4) == 0) {
            const char *end = NULL;
            for (size_t k = i + 4; k + 3 <= n; k++) {
                const char *dash = memchr(s + k, '-', n - k);
                if (!dash || (size_t)(dash - s) + 3 > n)
                    break;
                k = (size_t)(dash - s);
                if (s[k + 1] == '-' && s[k + 2] == '>') {
                    end = s + k + 3;
                    break;
                }
            }
            i = end ? (size_t)(end - s) : n;
            continue;
        }
        bool closing = i + 1 < n && s[i + 1] == '/';
        size_t name_at = i + (closing ? 2 : 1);
        if (name_at >= n ||
            !(isalpha((unsigned char)s[name_at]) || s[name_at] == '!' || s[name_at] == '?')) {
            out_text(&o, "<", 1, pre);
            i++;
            continue;
        }
        char name[17];
        size_t nl = 0;
        size_t k = name_at;
        while (k < n && (isalnum((unsigned char)s[k]) || s[k] == ':' || s[k] == '-')) {
            if (nl < sizeof name - 1)
                name[nl++] = (char)tolower((unsigned char)s[k]);
            k++;
        }
        name[nl] = '\0';
        /* find the end of the tag, honouring quoted attribute values */
        size_t end = n;
        while (k < n) {
            char c = s[k];
            if (c == '>') {
                end = k;
                break;
            }
            if ((c == '"' || c == '\'') && !no_more_quote[c == '\'']) {
                const char *q = memchr(s + k + 1, c, n - k - 1);
                if (q) {
                    k = (size_t)(q - s) + 1;
                    continue;
                }
                no_more_quote[c == '\''] = true;
            }
            k++;
        }
        if (end == n)
            break; /* an unfinished tag at the end carries no text */
        bool self_closing = end > i && s[end - 1] == '/';
        i = end + 1;
        switch (tag_kind(name, closing)) {
        case TAG_SKIP:
            if (!self_closing) {
                size_t close = find_close_tag(s, i, n, name);
                if (close >= n) {
                    i = n;
                } else {
                    const char *gt = memchr(s + close, '>', n - close);
                    i = gt ? (size_t)(gt - s) + 1 : n;
                }
            }
            break;
        case TAG_BR:
            o.pending_nl++;
            if (!o.len)
                o.pending_nl = 0;
            o.pending_space = false;
            break;
        case TAG_HR:
            out_break(&o, 1);
            out_visible(&o, "----", 4);
            out_break(&o, 1);
            break;
        case TAG_BREAK1:
            out_break(&o, 1);
            break;
        case TAG_BREAK2:
            out_break(&o, 2);
            break;
        case TAG_ITEM:
            out_break(&o, 1);
            out_visible(&o, "- ", 2);
            break;
        case TAG_CELL:
            if (!closing)
                o.pending_space = true;
            break;
        case TAG_PRE:
            out_break(&o, 1);
            pre = !closing;
            break;
        case TAG_NONE:
            break;
        }
    }
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    out_raw(&o, "", 0);
    if (!o.buf) {
        o.buf = malloc(1);
        if (!o.buf)
            return NULL;
    }
    o.buf[o.len] = '\0';
    /* lines may end in a space left by a cell separator */
    size_t len = voc_mail_clean_text(o.buf, o.len, 0, NULL);
    if (out_len)
        *out_len = len;
    return o.buf;
}

bool voc_html_sniff_charset(const char *html, size_t len, char *buf, size_t buflen)
{
    size_t n = len < 2048 ? len : 2048;
    for (size_t i = 0; i + 8 < n; i++) {
        if (strncasecmp(html + i, "charset", 7) != 0)
            continue;
        size_t k = i + 7;
        while (k < n && (html[k] == ' ' || html[k] == '\t'))
            k++;
        if (k >= n || html[k] != '=')
            continue;
        k++;
        while (k < n && (html[k] == ' ' || html[k] == '"' || html[k] == '\''))
            k++;
        size_t l = 0;
        while (k + l < n && l + 1 < buflen &&
               (isalnum((unsigned char)html[k + l]) || html[k + l] == '-' || html[k + l] == '_' ||
                html[k + l] == ':' || html[k + l] == '.'))
            l++;
        if (l == 0)
            continue;
        memcpy(buf, html + k, l);
        buf[l] = '\0';
        return true;
    }
    return false;
}
