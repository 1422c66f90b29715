#define _GNU_SOURCE /* strptime */
#include "row_mapper.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXTERNAL_ID 256 /* the core's limit (docs/api.md) */

const char *const voc_row_mapper_default_time_formats[] = {
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", NULL};

/* Where a mapped value goes in the intake record. */
enum slot_kind {
    SLOT_EXTERNAL_ID,
    SLOT_SOURCE,
    SLOT_RECEIVED_AT,
    SLOT_SUBJECT,
    SLOT_TEXT,
    SLOT_EXPECTED,
    SLOT_CUSTOMER,
    SLOT_PRODUCT,
    SLOT_FIELDS,
};

struct target_def {
    const char *name;
    enum slot_kind kind;
    const char *key; /* inside customer/product */
};

static const struct target_def target_defs[] = {
    {"external_id", SLOT_EXTERNAL_ID, NULL},
    {"source", SLOT_SOURCE, NULL},
    {"received_at", SLOT_RECEIVED_AT, NULL},
    {"subject", SLOT_SUBJECT, NULL},
    {"text", SLOT_TEXT, NULL},
    {"expected", SLOT_EXPECTED, NULL},
    {"customer.name", SLOT_CUSTOMER, "name"},
    {"customer.contact", SLOT_CUSTOMER, "contact"},
    {"customer.region", SLOT_CUSTOMER, "region"},
    {"customer.account", SLOT_CUSTOMER, "account"},
    {"product.name", SLOT_PRODUCT, "name"},
    {"product.model", SLOT_PRODUCT, "model"},
    {"product.batch", SLOT_PRODUCT, "batch"},
    {NULL, 0, NULL},
};

static const struct target_def *find_target(const char *name)
{
    for (const struct target_def *t = target_defs; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

struct slot {
    enum slot_kind kind;
    const char *key;    /* customer/product key, or the fields key */
    const char *header; /* for messages */
    size_t column;
};

struct voc_row_mapper {
    const struct voc_row_mapper_config *cfg;
    GTimeZone *tz;
    enum voc_csv_encoding encoding;
    const char *const *formats;
    size_t format_count;
    size_t columns;     /* in the header */
    char **headers;     /* trimmed header cells */
    char **field_keys;  /* per column: the `fields` key when unmapped, else NULL */
    struct slot *slots; /* mapped columns, in a fixed record order */
    size_t slot_count;
    struct voc_textbuf scratch;
};

/* ---- values ------------------------------------------------------------------------------ */

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim ASCII white space and U+3000 (ideographic space, common in Chinese exports). */
static void trim(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len = *n;
    for (;;) {
        if (len && is_ascii_space((unsigned char)p[0])) {
            p++, len--;
        } else if (len >= 3 && memcmp(p, "\xE3\x80\x80", 3) == 0) {
            p += 3, len -= 3;
        } else if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3, len -= 3; /* a stray BOM in a header cell */
        } else {
            break;
        }
    }
    for (;;) {
        if (len && is_ascii_space((unsigned char)p[len - 1]))
            len--;
        else if (len >= 3 && memcmp(p + len - 3, "\xE3\x80\x80", 3) == 0)
            len -= 3;
        else
            break;
    }
    *s = p;
    *n = len;
}

/* A JSON string of the value with CRLF made LF. */
static void put_value(struct voc_row_mapper *m, struct voc_textbuf *json, const char *s, size_t n)
{
    if (!memchr(s, '\r', n)) {
        voc_textbuf_json_string(json, s, n);
        return;
    }
    voc_textbuf_reset(&m->scratch);
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
            voc_textbuf_addc(&m->scratch, s[i]);
    voc_textbuf_json_string(json, m->scratch.data, m->scratch.len);
    if (m->scratch.failed)
        json->failed = true;
}

static void put_digits(char **o, int v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        (*o)[i] = (char)('0' + v % 10);
    *o += width;
}

int voc_hotline_parse_time(const char *text, const char *const *formats, size_t nformats,
                           GTimeZone *tz, char *out, size_t outlen)
{
    for (size_t i = 0; i < nformats; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(text, formats[i], &tm);
        if (!end)
            continue;
        while (is_ascii_space((unsigned char)*end))
            end++;
        if (*end)
            continue;
        GDateTime *dt = g_date_time_new(tz, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                        tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (!dt)
            continue; /* 2026-02-30 gets past strptime */
        int off = (int)(g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE);
        int y, mo, d;
        g_date_time_get_ymd(dt, &y, &mo, &d);
        int hh = g_date_time_get_hour(dt), mi = g_date_time_get_minute(dt),
            ss = g_date_time_get_second(dt);
        g_date_time_unref(dt);
        if (outlen < 26 || y < 0 || y > 9999)
            return -1;
        /* By hand: snprintf was a tenth of the whole import's CPU time. */
        char *o = out;
        put_digits(&o, y, 4);
        *o++ = '-';
        put_digits(&o, mo, 2);
        *o++ = '-';
        put_digits(&o, d, 2);
        *o++ = 'T';
        put_digits(&o, hh, 2);
        *o++ = ':';
        put_digits(&o, mi, 2);
        *o++ = ':';
        put_digits(&o, ss, 2);
        *o++ = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        put_digits(&o, off / 60, 2);
        *o++ = ':';
        put_digits(&o, off % 60, 2);
        *o = '\0';
        return 0;
    }
    return -1;
}

/* ---- setup ------------------------------------------------------------------------------- */

static const char *const *formats_of(const struct voc_row_mapper_config *cfg, size_t *n)
{
    if (cfg->time_format_count) {
        *n = cfg->time_format_count;
        return cfg->time_formats;
    }
    *n = 0;
    while (voc_row_mapper_default_time_formats[*n])
        (*n)++;
    return voc_row_mapper_default_time_formats;
}

int voc_row_mapper_check(const struct voc_row_mapper_config *cfg, char *err, size_t errlen)
{
    bool has_text = false;
    for (size_t i = 0; i < cfg->count; i++) {
        const char *t = cfg->targets[i];
        if (strncmp(t, "fields.", 7) == 0) {
            if (!t[7]) {
                snprintf(err, errlen, "columns: '%s' needs a key after 'fields.'", t);
                return -1;
            }
        } else if (!find_target(t)) {
            snprintf(err, errlen,
                     "columns: '%s' is not an intake field (external_id, source, received_at, "
                     "subject, text, expected, customer.name|contact|region|account, "
                     "product.name|model|batch, fields.<key>)",
                     t);
            return -1;
        }
        if (!cfg->headers[i][0]) {
            snprintf(err, errlen, "columns: '%s' maps to an empty header", t);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(cfg->targets[k], t) == 0) {
                snprintf(err, errlen, "columns: '%s' is mapped twice", t);
                return -1;
            }
        }
        has_text |= strcmp(t, "text") == 0 || strcmp(t, "subject") == 0;
    }
    if (!has_text) {
        snprintf(err, errlen,
                 "columns: map 'text' (or 'subject') to the column with the "
                 "customer's words");
        return -1;
    }
    GTimeZone *tz = g_time_zone_new_identifier(cfg->time_zone);
    if (!tz) {
        snprintf(err, errlen, "time_zone: '%s' is not a known IANA time zone", cfg->time_zone);
        return -1;
    }
    g_time_zone_unref(tz);
    return 0;
}

const char *voc_row_mapper_id_column(const struct voc_row_mapper *m)
{
    for (size_t i = 0; i < m->slot_count; i++)
        if (m->slots[i].kind == SLOT_EXTERNAL_ID)
            return m->slots[i].header;
    return NULL;
}

void voc_row_mapper_free(struct voc_row_mapper *m)
{
    if (!m)
        return;
    if (m->tz)
        g_time_zone_unref(m->tz);
    for (size_t i = 0; i < m->columns; i++) {
        free(m->headers[i]);
        free(m->field_keys[i]);
    }
    free(m->headers);
    free(m->field_keys);
    free(m->slots);
    voc_textbuf_free(&m->scratch);
    free(m);
}

/* Record order of the mapped slots (the JSON reads best in the API in this order). */
static int slot_rank(enum slot_kind k)
{
    return (int)k;
}

static int slot_cmp(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;
    if (slot_rank(x->kind) != slot_rank(y->kind))
        return slot_rank(x->kind) - slot_rank(y->kind);
    return x->column < y->column ? -1 : x->column > y->column;
}

static bool key_taken(struct voc_row_mapper *m, const char *key, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (m->field_keys[i] && strcmp(m->field_keys[i], key) == 0)
            return true;
    for (size_t i = 0; i < m->slot_count; i++)
        if (m->slots[i].kind == SLOT_FIELDS && strcmp(m->slots[i].key, key) == 0)
            return true;
    return false;
}

int voc_row_mapper_new(const struct voc_row_mapper_config *cfg, const struct voc_csv_row *header,
                       enum voc_csv_encoding encoding, struct voc_row_mapper **out, char *err,
                       size_t errlen)
{
    struct voc_row_mapper *m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    m->cfg = cfg;
    m->encoding = encoding;
    m->formats = formats_of(cfg, &m->format_count);
    m->tz = g_time_zone_new_identifier(cfg->time_zone);
    if (!m->tz) {
        snprintf(err, errlen, "time_zone: '%s' is not a known IANA time zone", cfg->time_zone);
        goto fail;
    }
    m->columns = header->count;
    m->headers = calloc(m->columns ? m->columns : 1, sizeof *m->headers);
    m->field_keys = calloc(m->columns ? m->columns : 1, sizeof *m->field_keys);
    m->slots = calloc(cfg->count ? cfg->count : 1, sizeof *m->slots);
    if (!m->headers || !m->field_keys || !m->slots)
        goto oom;
    for (size_t c = 0; c < m->columns; c++) {
        const char *s = header->fields[c];
        size_t n = header->lens[c];
        trim(&s, &n);
        if (!(m->headers[c] = strndup(s, n)))
            goto oom;
    }
    bool *mapped = calloc(m->columns ? m->columns : 1, sizeof *mapped);
    if (!mapped)
        goto oom;
    for (size_t i = 0; i < cfg->count; i++) {
        size_t found = m->columns;
        for (size_t c = 0; c < m->columns; c++) {
            if (strcmp(m->headers[c], cfg->headers[i]) != 0)
                continue;
            if (found != m->columns) {
                snprintf(err, errlen, "the header has two columns named '%s' (mapped to %s)",
                         cfg->headers[i], cfg->targets[i]);
                free(mapped);
                goto fail;
            }
            found = c;
        }
        const struct target_def *t = find_target(cfg->targets[i]);
        if (found == m->columns && t && t->kind == SLOT_EXTERNAL_ID) {
            continue; /* optional: the ids become <file id>:<line> */
        }
        if (found == m->columns) {
            snprintf(err, errlen, "the header has no column '%s' (mapped to %s)", cfg->headers[i],
                     cfg->targets[i]);
            free(mapped);
            goto fail;
        }
        struct slot *s = &m->slots[m->slot_count++];
        s->column = found;
        s->header = cfg->headers[i];
        if (t) {
            s->kind = t->kind;
            s->key = t->key;
        } else {
            s->kind = SLOT_FIELDS;
            s->key = cfg->targets[i] + 7;
        }
        mapped[found] = true;
    }
    qsort(m->slots, m->slot_count, sizeof *m->slots, slot_cmp);
    for (size_t c = 0; c < m->columns; c++) {
        if (mapped[c])
            continue;
        char key[300];
        if (m->headers[c][0])
            snprintf(key, sizeof key, "%s", m->headers[c]);
        else
            snprintf(key, sizeof key, "column_%zu", c + 1);
        /* Two columns with one name keep both values: the second gets a suffix. */
        size_t base = strlen(key);
        for (int k = 2; key_taken(m, key, c); k++)
            snprintf(key + base, sizeof key - base, "_%d", k);
        if (!(m->field_keys[c] = strdup(key))) {
            free(mapped);
            goto oom;
        }
    }
    free(mapped);
    *out = m;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    voc_row_mapper_free(m);
    return -1;
}

/* ---- rows -------------------------------------------------------------------------------- */

static void trimmed(const struct voc_csv_row *row, size_t column, const char **s, size_t *n)
{
    *s = row->fields[column];
    *n = row->lens[column];
    trim(s, n);
}

static const char *column_name(const struct voc_row_mapper *m, size_t column)
{
    return column < m->columns && m->headers[column][0] ? m->headers[column] : "?";
}

static int reject_read_error(struct voc_row_mapper *m, const struct voc_csv_row *row,
                             struct voc_textbuf *reason)
{
    switch (row->error) {
    case VOC_CSV_ROW_INVALID_BYTES:
        voc_textbuf_printf(reason, "invalid %s bytes in column %zu '%s'",
                           m->encoding == VOC_CSV_GB18030 ? "GB18030" : "UTF-8", row->bad_field + 1,
                           column_name(m, row->bad_field));
        break;
    case VOC_CSV_ROW_TOO_LONG:
        voc_textbuf_printf(reason,
                           "row is too long (lines %llu-%llu; a quote that is never closed?)",
                           (unsigned long long)row->start.line, (unsigned long long)row->last_line);
        break;
    case VOC_CSV_ROW_UNTERMINATED:
        voc_textbuf_printf(reason, "the file ends inside a quoted field (lines %llu-%llu)",
                           (unsigned long long)row->start.line, (unsigned long long)row->last_line);
        break;
    case VOC_CSV_ROW_OK:
        break;
    }
    return reason->failed ? -1 : 0;
}

int voc_row_mapper_map(struct voc_row_mapper *m, const struct voc_csv_row *row,
                       const char *fallback_id, struct voc_textbuf *json,
                       struct voc_textbuf *reason)
{
    if (row->error != VOC_CSV_ROW_OK)
        return reject_read_error(m, row, reason);
    if (row->count != m->columns) {
        voc_textbuf_printf(reason, "expected %zu columns, found %zu", m->columns, row->count);
        return reason->failed ? -1 : 0;
    }
    const char *s;
    size_t n;
    char when[48];
    bool has_text = false, has_id = false;
    for (size_t i = 0; i < m->slot_count; i++) {
        const struct slot *sl = &m->slots[i];
        trimmed(row, sl->column, &s, &n);
        if (sl->kind == SLOT_TEXT || sl->kind == SLOT_SUBJECT)
            has_text |= n > 0;
        if (sl->kind == SLOT_EXTERNAL_ID && n > MAX_EXTERNAL_ID) {
            voc_textbuf_printf(reason, "'%s' is longer than %d bytes", sl->header, MAX_EXTERNAL_ID);
            return reason->failed ? -1 : 0;
        }
        if (sl->kind == SLOT_EXTERNAL_ID)
            has_id = n > 0;
        if (sl->kind == SLOT_RECEIVED_AT) {
            if (n == 0) {
                voc_textbuf_printf(reason, "no time in column '%s'", sl->header);
                return reason->failed ? -1 : 0;
            }
            char text[128];
            memcpy(text, s, n < 127 ? n : 127);
            text[n < 127 ? n : 127] = '\0';
            if (n >= sizeof text || voc_hotline_parse_time(text, m->formats, m->format_count, m->tz,
                                                           when, sizeof when) != 0) {
                voc_textbuf_printf(reason, "unparseable time '%s' in column '%s' (formats:", text,
                                   sl->header);
                for (size_t f = 0; f < m->format_count; f++)
                    voc_textbuf_printf(reason, " %s%s", m->formats[f],
                                       f + 1 < m->format_count ? "," : ")");
                return reason->failed ? -1 : 0;
            }
        }
    }
    if (!has_text) {
        for (size_t i = 0; i < m->slot_count; i++) {
            if (m->slots[i].kind == SLOT_TEXT || m->slots[i].kind == SLOT_SUBJECT) {
                voc_textbuf_printf(reason, "empty text (column '%s')", m->slots[i].header);
                break;
            }
        }
        return reason->failed ? -1 : 0;
    }

    voc_textbuf_adds(json, "{\"channel\":");
    voc_textbuf_json_string(json, m->cfg->channel, strlen(m->cfg->channel));
    if (!has_id) {
        voc_textbuf_adds(json, ",\"external_id\":");
        voc_textbuf_json_string(json, fallback_id, strlen(fallback_id));
    }
    enum slot_kind open = SLOT_EXTERNAL_ID; /* the object being written, if any */
    bool in_object = false, first_in_object = true;
    for (size_t i = 0; i < m->slot_count; i++) {
        const struct slot *sl = &m->slots[i];
        trimmed(row, sl->column, &s, &n);
        if (n == 0 || sl->kind == SLOT_FIELDS)
            continue;
        bool nested = sl->kind == SLOT_CUSTOMER || sl->kind == SLOT_PRODUCT;
        if (in_object && (!nested || sl->kind != open)) {
            voc_textbuf_addc(json, '}');
            in_object = false;
        }
        if (nested) {
            if (!in_object) {
                voc_textbuf_adds(json,
                                 sl->kind == SLOT_CUSTOMER ? ",\"customer\":{" : ",\"product\":{");
                in_object = true;
                first_in_object = true;
                open = sl->kind;
            }
            if (!first_in_object)
                voc_textbuf_addc(json, ',');
            first_in_object = false;
            voc_textbuf_json_string(json, sl->key, strlen(sl->key));
            voc_textbuf_addc(json, ':');
            put_value(m, json, s, n);
            continue;
        }
        static const char *const keys[] = {
            [SLOT_EXTERNAL_ID] = ",\"external_id\":",
            [SLOT_SOURCE] = ",\"source\":",
            [SLOT_RECEIVED_AT] = ",\"received_at\":",
            [SLOT_SUBJECT] = ",\"subject\":",
            [SLOT_TEXT] = ",\"text\":",
            [SLOT_EXPECTED] = ",\"expected\":",
        };
        voc_textbuf_adds(json, keys[sl->kind]);
        if (sl->kind == SLOT_RECEIVED_AT)
            voc_textbuf_json_string(json, when, strlen(when));
        else
            put_value(m, json, s, n);
    }
    if (in_object)
        voc_textbuf_addc(json, '}');
    bool first = true;
    for (size_t c = 0; c <= m->columns; c++) {
        /* Unmapped columns by position, then the ones mapped to fields.<key>. */
        if (c < m->columns) {
            if (!m->field_keys[c])
                continue;
            trimmed(row, c, &s, &n);
            if (n == 0)
                continue;
            voc_textbuf_adds(json, first ? ",\"fields\":{" : ",");
            first = false;
            voc_textbuf_json_string(json, m->field_keys[c], strlen(m->field_keys[c]));
            voc_textbuf_addc(json, ':');
            put_value(m, json, s, n);
            continue;
        }
        for (size_t i = 0; i < m->slot_count; i++) {
            const struct slot *sl = &m->slots[i];
            if (sl->kind != SLOT_FIELDS)
                continue;
            trimmed(row, sl->column, &s, &n);
            if (n == 0)
                continue;
            voc_textbuf_adds(json, first ? ",\"fields\":{" : ",");
            first = false;
            voc_textbuf_json_string(json, sl->key, strlen(sl->key));
            voc_textbuf_addc(json, ':');
            put_value(m, json, s, n);
        }
    }
    if (!first)
        voc_textbuf_addc(json, '}');
    voc_textbuf_addc(json, '}');
    return json->failed ? -1 : 1;
}

/* ---- rejects ----------------------------------------------------------------------------- */

void voc_row_mapper_reject_header(const struct voc_row_mapper *m, struct voc_textbuf *out)
{
    voc_textbuf_adds(out, "line,reason");
    for (size_t c = 0; c < m->columns; c++) {
        voc_textbuf_addc(out, ',');
        voc_textbuf_csv_field(out, m->headers[c], strlen(m->headers[c]));
    }
    voc_textbuf_adds(out, "\r\n");
}

void voc_rejects_line(const struct voc_csv_row *row, enum voc_csv_encoding enc, const char *reason,
                      struct voc_textbuf *out)
{
    voc_textbuf_printf(out, "%llu,", (unsigned long long)row->start.line);
    voc_textbuf_csv_field(out, reason, strlen(reason));
    if (row->error == VOC_CSV_ROW_TOO_LONG || row->error == VOC_CSV_ROW_UNTERMINATED) {
        char *text;
        size_t len;
        if (voc_csv_to_utf8_lossy(enc, row->raw, row->raw_len, &text, &len) != 0) {
            out->failed = true;
            return;
        }
        voc_textbuf_addc(out, ',');
        voc_textbuf_csv_field(out, text, len);
        free(text);
    } else {
        for (size_t c = 0; c < row->count; c++) {
            voc_textbuf_addc(out, ',');
            voc_textbuf_csv_field(out, row->fields[c], row->lens[c]);
        }
    }
    voc_textbuf_adds(out, "\r\n");
}
