#define _GNU_SOURCE /* asprintf, vasprintf */
#include "output.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "timeutil.h"
#include "vocctl.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one column */
#define COLUMN_GAP 2
/* A flexible column is not narrowed below this to fit the terminal: a few characters and
 * "…" still say what the text was about. */
#define MIN_FLEX_WIDTH 10
/* Cells of tables built from arbitrary JSON (reports, breaches). */
#define GENERIC_CELL_MAX 40

/* One character of s: its length in bytes (invalid byte: 1, *cp = -1). */
static size_t next_char(const char *s, utf8proc_int32_t *cp)
{
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, -1, cp);
    if (n <= 0) {
        *cp = -1;
        return 1;
    }
    return (size_t)n;
}

static size_t char_width(utf8proc_int32_t cp)
{
    if (cp < 0)
        return 1;
    int w = utf8proc_charwidth(cp);
    return w > 0 ? (size_t)w : 0;
}

size_t voc_ctl_width(const char *s)
{
    size_t width = 0;
    while (s && *s) {
        utf8proc_int32_t cp;
        s += next_char(s, &cp);
        width += char_width(cp);
    }
    return width;
}

char *voc_ctl_clean(const char *s, bool keep_newlines)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    while (*s) {
        utf8proc_int32_t cp;
        size_t n = next_char(s, &cp);
        if (cp < 0) {
            out[o++] = '?';
        } else if (cp == '\n' && keep_newlines) {
            out[o++] = '\n';
        } else if (cp == '\r' && keep_newlines) {
            /* CRLF texts: the '\n' does the line break */
        } else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            out[o++] = ' ';
        } else {
            memcpy(out + o, s, n);
            o += n;
        }
        s += n;
    }
    out[o] = '\0';
    return out;
}

char *voc_ctl_clip(const char *s, size_t max)
{
    if (voc_ctl_width(s) <= max)
        return strdup(s);
    size_t len = strlen(s);
    char *out = malloc(len + sizeof ELLIPSIS);
    if (!out)
        return NULL;
    size_t o = 0;
    size_t width = 0;
    /* Keep whole characters while one column is left for the ellipsis. */
    while (*s && max > 0) {
        utf8proc_int32_t cp;
        size_t n = next_char(s, &cp);
        size_t w = char_width(cp);
        if (width + w > max - 1)
            break;
        memcpy(out + o, s, n);
        o += n;
        width += w;
        s += n;
    }
    if (max > 0) {
        memcpy(out + o, ELLIPSIS, sizeof ELLIPSIS - 1);
        o += sizeof ELLIPSIS - 1;
    }
    out[o] = '\0';
    return out;
}

void voc_ctl_pad(FILE *out, const char *s, size_t width)
{
    fputs(s, out);
    for (size_t w = voc_ctl_width(s); w < width; w++)
        fputc(' ', out);
}

/* ---- tables ---- */

struct voc_ctl_table {
    size_t ncols;
    char **headers;
    int *flags;
    size_t *max_width;
    size_t *width;
    char **cells; /* rows * ncols, cleaned */
    size_t rows;
    size_t cap_rows;
    size_t next_col;
    bool failed;
};

struct voc_ctl_table *voc_ctl_table_new(size_t ncols, const char *const *headers)
{
    struct voc_ctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof *t->headers);
    t->flags = calloc(ncols, sizeof *t->flags);
    t->max_width = calloc(ncols, sizeof *t->max_width);
    t->width = calloc(ncols, sizeof *t->width);
    if (!t->headers || !t->flags || !t->max_width || !t->width)
        goto fail;
    for (size_t c = 0; c < ncols; c++)
        if (!(t->headers[c] = voc_ctl_clean(headers[c], false)))
            goto fail;
    t->next_col = ncols;
    return t;
fail:
    voc_ctl_table_free(t);
    return NULL;
}

void voc_ctl_table_column(struct voc_ctl_table *t, size_t col, int flags, size_t max_width)
{
    if (col < t->ncols) {
        t->flags[col] = flags;
        t->max_width[col] = max_width;
    }
}

void voc_ctl_table_row(struct voc_ctl_table *t)
{
    if (t->failed)
        return;
    if (t->rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof *grown);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->cells = grown;
        t->cap_rows = cap;
    }
    memset(t->cells + t->rows * t->ncols, 0, t->ncols * sizeof *t->cells);
    t->rows++;
    t->next_col = 0;
}

void voc_ctl_table_cell(struct voc_ctl_table *t, const char *text)
{
    if (t->failed || t->rows == 0 || t->next_col >= t->ncols)
        return;
    char *clean = voc_ctl_clean(text && *text ? text : "-", false);
    if (!clean) {
        t->failed = true;
        return;
    }
    t->cells[(t->rows - 1) * t->ncols + t->next_col++] = clean;
}

void voc_ctl_table_cellf(struct voc_ctl_table *t, const char *fmt, ...)
{
    char *text;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    voc_ctl_table_cell(t, text);
    free(text);
}

size_t voc_ctl_table_rows(const struct voc_ctl_table *t)
{
    return t->rows;
}

static size_t terminal_columns(FILE *out)
{
    struct winsize ws;
    int fd = fileno(out);
    if (fd < 0 || !isatty(fd) || ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
        return 0;
    return ws.ws_col;
}

static void size_columns(struct voc_ctl_table *t, FILE *out, size_t indent)
{
    for (size_t c = 0; c < t->ncols; c++) {
        size_t w = voc_ctl_width(t->headers[c]);
        for (size_t r = 0; r < t->rows; r++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t cw = voc_ctl_width(cell ? cell : "-");
            if (cw > w)
                w = cw;
        }
        if (t->max_width[c] && w > t->max_width[c])
            w = t->max_width[c];
        t->width[c] = w;
    }
    /* On a terminal, narrow the widest flexible column step by step until the table fits
     * (or nothing flexible is left to narrow); piped output keeps the natural widths. */
    size_t term = terminal_columns(out);
    if (term == 0)
        return;
    for (;;) {
        size_t total = indent;
        for (size_t c = 0; c < t->ncols; c++)
            total += t->width[c] + (c ? COLUMN_GAP : 0);
        if (total <= term)
            return;
        size_t widest = t->ncols;
        for (size_t c = 0; c < t->ncols; c++)
            if ((t->flags[c] & VOC_CTL_COL_FLEX) && t->width[c] > MIN_FLEX_WIDTH &&
                (widest == t->ncols || t->width[c] > t->width[widest]))
                widest = c;
        if (widest == t->ncols)
            return;
        t->width[widest]--;
    }
}

static int print_line(struct voc_ctl_table *t, FILE *out, const char *indent, char *const *cells)
{
    fputs(indent, out);
    for (size_t c = 0; c < t->ncols; c++) {
        const char *text = cells[c] ? cells[c] : "-";
        char *clipped = voc_ctl_clip(text, t->width[c]);
        if (!clipped)
            return -1;
        size_t w = voc_ctl_width(clipped);
        bool last = c + 1 == t->ncols;
        if (c)
            fputs("  ", out);
        if (t->flags[c] & VOC_CTL_COL_RIGHT) {
            for (size_t i = w; i < t->width[c]; i++)
                fputc(' ', out);
            fputs(clipped, out);
        } else if (last) {
            fputs(clipped, out); /* no trailing blanks */
        } else {
            voc_ctl_pad(out, clipped, t->width[c]);
        }
        free(clipped);
    }
    fputc('\n', out);
    return 0;
}

int voc_ctl_table_print(struct voc_ctl_table *t, FILE *out, const char *indent)
{
    if (t->failed) {
        voc_ctl_error("out of memory");
        return -1;
    }
    size_columns(t, out, voc_ctl_width(indent));
    if (print_line(t, out, indent, t->headers) != 0)
        goto oom;
    for (size_t r = 0; r < t->rows; r++)
        if (print_line(t, out, indent, t->cells + r * t->ncols) != 0)
            goto oom;
    return 0;
oom:
    voc_ctl_error("out of memory");
    return -1;
}

void voc_ctl_table_free(struct voc_ctl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->cells && i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    for (size_t c = 0; t->headers && c < t->ncols; c++)
        free(t->headers[c]);
    free(t->cells);
    free(t->headers);
    free(t->flags);
    free(t->max_width);
    free(t->width);
    free(t);
}

/* ---- numbers and times ---- */

void voc_ctl_local_time(const char *rfc3339, int flags, char *buf, size_t len)
{
    int64_t us;
    if (!rfc3339) {
        snprintf(buf, len, "-");
        return;
    }
    if (voc_parse_time(rfc3339, &us) != 0) {
        snprintf(buf, len, "%s", rfc3339);
        return;
    }
    /* Floor division: times before 1970 must not round towards zero. */
    int64_t secs = us / VOC_US_PER_S - (us % VOC_US_PER_S < 0);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, len, "%s", rfc3339);
        return;
    }
    const char *fmt =
        (flags & VOC_CTL_TIME_SECONDS)
            ? ((flags & VOC_CTL_TIME_ZONE) ? "%Y-%m-%d %H:%M:%S %z" : "%Y-%m-%d %H:%M:%S")
            : ((flags & VOC_CTL_TIME_ZONE) ? "%Y-%m-%d %H:%M %z" : "%Y-%m-%d %H:%M");
    if (strftime(buf, len, fmt, &tm) == 0)
        snprintf(buf, len, "%s", rfc3339);
}

void voc_ctl_duration(double seconds, char *buf, size_t len)
{
    if (!isfinite(seconds)) {
        snprintf(buf, len, "-");
        return;
    }
    const char *sign = seconds < 0 ? "-" : "";
    unsigned long long s = (unsigned long long)llround(fabs(seconds));
    static const struct {
        const char *unit;
        unsigned long long size;
    } units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
    /* The two largest non-zero units: "3d 4h" says enough, "3d 4h 12m 5s" is noise. */
    char out[64] = "";
    int shown = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && shown < 2; i++) {
        unsigned long long n = s / units[i].size;
        s %= units[i].size;
        if (n == 0) {
            if (shown)
                break;
            continue;
        }
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%llu%s", shown ? " " : "", n, units[i].unit);
        shown++;
    }
    snprintf(buf, len, "%s%s", sign, shown ? out : "0s");
}

void voc_ctl_bytes(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f B", bytes);
    else
        snprintf(buf, len, "%.1f %s", bytes, units[u]);
}

void voc_ctl_kv(FILE *out, const char *indent, size_t label_width, const char *label,
                const char *value)
{
    char *clean = voc_ctl_clean(value ? value : "-", false);
    fputs(indent, out);
    voc_ctl_pad(out, label, label_width);
    fprintf(out, "  %s\n", clean && *clean ? clean : "-");
    free(clean);
}

/* ---- generic JSON ---- */

static bool looks_like_instant(const char *s)
{
    /* "2026-11-23T01:15:00..." only: bare dates (report periods) are days, not instants,
     * and must not move to another day in local time. */
    int64_t us;
    return strlen(s) >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') &&
           voc_parse_time(s, &us) == 0;
}

static bool is_duration_key(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    return n > 2 && strcmp(key + n - 2, "_s") == 0;
}

static char *format_number(const char *key, const json_t *v)
{
    char buf[64];
    if (is_duration_key(key)) {
        voc_ctl_duration(json_number_value(v), buf, sizeof buf);
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        /* Ratios and averages: four decimals at most, no trailing zeros. */
        snprintf(buf, sizeof buf, "%.4f", json_real_value(v));
        char *dot = strchr(buf, '.');
        if (dot) {
            char *end = buf + strlen(buf);
            while (end > dot + 1 && end[-1] == '0')
                *--end = '\0';
            if (end == dot + 1)
                *dot = '\0';
        }
    }
    return strdup(buf);
}

static bool all_scalars(const json_t *array)
{
    size_t i;
    const json_t *v;
    json_array_foreach(array, i, v) {
        if (json_is_object(v) || json_is_array(v))
            return false;
    }
    return true;
}

static bool all_objects(const json_t *array)
{
    size_t i;
    const json_t *v;
    if (json_array_size(array) == 0)
        return false;
    json_array_foreach(array, i, v) {
        if (!json_is_object(v))
            return false;
    }
    return true;
}

char *voc_ctl_scalar(const char *key, const json_t *value)
{
    char buf[64];
    switch (json_typeof(value)) {
    case JSON_STRING: {
        const char *s = json_string_value(value);
        if (looks_like_instant(s)) {
            voc_ctl_local_time(s, 0, buf, sizeof buf);
            return strdup(buf);
        }
        return voc_ctl_clean(s, false);
    }
    case JSON_INTEGER:
    case JSON_REAL:
        return format_number(key, value);
    case JSON_TRUE:
        return strdup("yes");
    case JSON_FALSE:
        return strdup("no");
    case JSON_NULL:
        return strdup("-");
    case JSON_ARRAY:
        if (all_scalars(value)) {
            char *joined = strdup("");
            size_t i;
            const json_t *v;
            json_array_foreach(value, i, v) {
                char *item = voc_ctl_scalar(key, v);
                char *next = NULL;
                if (!joined || !item || asprintf(&next, "%s%s%s", joined, i ? ", " : "", item) < 0)
                    next = NULL;
                free(item);
                free(joined);
                joined = next;
            }
            return joined;
        }
        break;
    case JSON_OBJECT:
        break;
    }
    char *dump = json_dumps(value, JSON_COMPACT);
    char *clean = dump ? voc_ctl_clean(dump, false) : NULL;
    free(dump);
    return clean;
}

/* An array of objects as a table: the columns are the keys in order of first appearance;
 * columns holding only numbers are right-aligned. */
static int render_table(FILE *out, const json_t *rows, const char *indent)
{
    json_t *keys = json_array();
    json_t *seen = json_object();
    json_t *numeric = json_object();
    struct voc_ctl_table *t = NULL;
    const char **headers = NULL;
    int ret = -1;
    if (!keys || !seen || !numeric)
        goto fail;
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)row, k, v) {
            if (!json_object_get(seen, k)) {
                json_object_set_new(seen, k, json_true());
                json_object_set_new(numeric, k, json_true());
                json_array_append_new(keys, json_string(k));
            }
            if (!json_is_number(v) && !json_is_null(v))
                json_object_set_new(numeric, k, json_false());
        }
    }
    size_t ncols = json_array_size(keys);
    headers = calloc(ncols ? ncols : 1, sizeof *headers);
    if (!headers)
        goto fail;
    for (size_t c = 0; c < ncols; c++)
        headers[c] = json_string_value(json_array_get(keys, c));
    t = voc_ctl_table_new(ncols, headers);
    if (!t)
        goto fail;
    for (size_t c = 0; c < ncols; c++)
        voc_ctl_table_column(t, c,
                             json_is_true(json_object_get(numeric, headers[c])) ? VOC_CTL_COL_RIGHT
                                                                                : VOC_CTL_COL_FLEX,
                             GENERIC_CELL_MAX);
    json_array_foreach(rows, i, row) {
        voc_ctl_table_row(t);
        for (size_t c = 0; c < ncols; c++) {
            const json_t *v = json_object_get(row, headers[c]);
            char *text = v ? voc_ctl_scalar(headers[c], v) : NULL;
            voc_ctl_table_cell(t, text);
            free(text);
        }
    }
    ret = voc_ctl_table_print(t, out, indent);
fail:
    if (ret != 0 && !t)
        voc_ctl_error("out of memory");
    voc_ctl_table_free(t);
    free(headers);
    json_decref(keys);
    json_decref(seen);
    json_decref(numeric);
    return ret;
}

static int render_object(FILE *out, const json_t *obj, size_t depth)
{
    char indent[64];
    size_t n = depth * 2 < sizeof indent - 1 ? depth * 2 : sizeof indent - 1;
    memset(indent, ' ', n);
    indent[n] = '\0';
    size_t label_width = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        size_t w = voc_ctl_width(key);
        if (w > label_width)
            label_width = w;
    }
    json_object_foreach((json_t *)obj, key, v) {
        char *label = voc_ctl_clean(key, false);
        if (!label)
            return -1;
        if (json_is_object(v) && json_object_size(v) > 0) {
            fprintf(out, "%s%s:\n", indent, label);
            if (render_object(out, v, depth + 1) != 0) {
                free(label);
                return -1;
            }
        } else if (json_is_array(v) && all_objects(v)) {
            fprintf(out, "%s%s:\n", indent, label);
            char sub[66];
            snprintf(sub, sizeof sub, "%s  ", indent);
            if (render_table(out, v, sub) != 0) {
                free(label);
                return -1;
            }
        } else {
            char *text = json_is_array(v) && json_array_size(v) == 0 ? strdup("(none)")
                                                                     : voc_ctl_scalar(key, v);
            voc_ctl_kv(out, indent, label_width, label, text);
            free(text);
        }
        free(label);
    }
    return 0;
}

int voc_ctl_render_json(FILE *out, const json_t *value)
{
    if (json_is_array(value)) {
        if (json_array_size(value) == 0) {
            fprintf(out, "(none)\n");
            return 0;
        }
        if (all_objects(value))
            return render_table(out, value, "");
        char *text = voc_ctl_scalar(NULL, value);
        fprintf(out, "%s\n", text ? text : "");
        free(text);
        return 0;
    }
    if (json_is_object(value))
        return render_object(out, value, 0);
    char *text = voc_ctl_scalar(NULL, value);
    fprintf(out, "%s\n", text ? text : "");
    free(text);
    return 0;
}
