/* Business calendars (see calendar.h).
 *
 * How the arithmetic stays cheap: at build time the zone's UTC offsets are copied out of
 * GLib into a small sorted table (GLib's own lookup scans its transitions linearly, and
 * zones with DST rules have ~2000 of them). Every day that needs care — a holiday, a make-up
 * day, a day touched by an offset change — goes into one sorted "special days" list. Between
 * two special days every week has the same working time, so long targets skip whole weeks at
 * once and only the days near the start, the end and the special days are looked at one by
 * one. A call does one binary search into each table and then walks forward.
 *
 * Local wall-clock time is handled as "local seconds": seconds since 1970-01-01 00:00 as if
 * the local clock were UTC, so local day d starts at local second d * 86400.
 */
#include "calendar.h"

#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_S INT64_C(1000000)
#define S_PER_DAY INT64_C(86400)

/* Offset changes are read from the tz database for [1900-01-01, 2200-01-01) UTC. GLib
 * extends zones with DST rules up to the year ~3000, but deadlines that far out do not
 * matter and the table (and its build time) would grow tenfold. */
#define ZONE_LO_S INT64_C(-2208988800)
#define ZONE_HI_S INT64_C(7258118400)
/* Instants are clamped to [1900-01-01, 10000-01-01): day numbers then fit in int32 and
 * microsecond sums of whole spans cannot overflow. */
#define DOMAIN_LO_US (ZONE_LO_S * US_PER_S)
#define DOMAIN_HI_US (INT64_C(253402300800) * US_PER_S)
#define YEAR_MIN 1900
#define YEAR_MAX 9999

struct range {
    int32_t start, end; /* seconds since local midnight; end <= 86400 */
};

struct day_hours {
    uint32_t count;
    int64_t total_s; /* nominal working seconds (a day without offset change) */
    struct range r[VOC_CALENDAR_MAX_RANGES];
};

/* From UTC second from_s on (until the next piece), local = UTC + off_s. */
struct zone_piece {
    int64_t from_s;
    int32_t off_s;
};

enum { DAY_HOLIDAY = 1, DAY_EXTRA = 2, DAY_ZONE = 4 };

struct special_day {
    int32_t day; /* local day number: days since 1970-01-01 */
    uint8_t kind;
};

struct voc_calendar {
    char *name;
    char *time_zone;
    bool always;              /* 24x7: no zone, no hours */
    struct day_hours week[7]; /* by enum voc_weekday */
    struct day_hours extra;   /* hours of make-up days */
    int64_t week_us;          /* working time of a week without special days */
    struct zone_piece *zone;  /* zone[0].from_s == INT64_MIN */
    size_t zone_count;
    int64_t max_abs_off_s;       /* |offset| never exceeds this */
    struct special_day *special; /* sorted by day, unique */
    size_t special_count;
};

static char name_24x7[] = VOC_CALENDAR_24X7;
static char zone_utc[] = "UTC";
static const struct voc_calendar calendar_24x7 = {
    .name = name_24x7,
    .time_zone = zone_utc,
    .always = true,
};

/* ---- small arithmetic ---------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int32_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* 1970-01-01 was a Thursday. */
static int weekday_of(int32_t day)
{
    int w = (int)((day + 3) % 7);
    return w < 0 ? w + 7 : w;
}

/* ---- error messages --------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void format_hhmm(int32_t s, char buf[8])
{
    snprintf(buf, 8, "%02d:%02d", (int)(s / 3600) % 100, (int)(s % 3600 / 60));
}

static void format_day(int32_t day, char buf[16])
{
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(buf, 16, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
}

/* ---- parsing ---------------------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* "H:MM" or "HH:MM", 00:00..24:00, into seconds since midnight. */
static const char *parse_hhmm(const char *p, int32_t *out)
{
    int h = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 2) {
        h = h * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || *p != ':')
        return NULL;
    p++;
    if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9'))
        return NULL;
    int m = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (*p >= '0' && *p <= '9')
        return NULL;
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return NULL;
    *out = (int32_t)(h * 3600 + m * 60);
    return p;
}

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Parse "09:00-18:00" or "08:30-12:00, 13:00-17:30" into sorted, disjoint ranges. Touching
 * ranges are joined, so the day's ranges never share an end point. */
static int parse_hours(const char *text, struct day_hours *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_ws(text);
    if (*p == '\0') {
        set_err(msg, msglen, "no ranges (leave the day out for no work)");
        return -1;
    }
    for (;;) {
        const char *item = p;
        size_t item_len = strcspn(item, ",");
        int32_t start, end;
        const char *q = parse_hhmm(p, &start);
        if (q) {
            q = skip_ws(q);
            q = *q == '-' ? parse_hhmm(skip_ws(q + 1), &end) : NULL;
        }
        if (q) {
            q = skip_ws(q);
            if (*q != ',' && *q != '\0')
                q = NULL;
        }
        if (!q) {
            set_err(msg, msglen, "bad range \"%.*s\": expected HH:MM-HH:MM, e.g. 09:00-18:00",
                    (int)min64((int64_t)item_len, 64), item);
            return -1;
        }
        char a[8], b[8];
        format_hhmm(start, a);
        format_hhmm(end, b);
        if (start == 24 * 3600) {
            set_err(msg, msglen, "range %s-%s starts at 24:00; the day ends there", a, b);
            return -1;
        }
        if (end == start) {
            set_err(msg, msglen, "range %s-%s is empty", a, b);
            return -1;
        }
        if (end < start) {
            set_err(msg, msglen,
                    "range %s-%s ends before it starts (a range cannot cross midnight: "
                    "end the day at 24:00 and start the next at 00:00)",
                    a, b);
            return -1;
        }
        if (out->count == VOC_CALENDAR_MAX_RANGES) {
            set_err(msg, msglen, "more than %d ranges", VOC_CALENDAR_MAX_RANGES);
            return -1;
        }
        out->r[out->count++] = (struct range){start, end};
        if (*q == '\0')
            break;
        p = skip_ws(q + 1);
    }
    qsort(out->r, out->count, sizeof out->r[0], range_cmp);
    uint32_t n = 0;
    for (uint32_t i = 0; i < out->count; i++) {
        if (n > 0 && out->r[i].start < out->r[n - 1].end) {
            char a1[8], b1[8], a2[8], b2[8];
            format_hhmm(out->r[n - 1].start, a1);
            format_hhmm(out->r[n - 1].end, b1);
            format_hhmm(out->r[i].start, a2);
            format_hhmm(out->r[i].end, b2);
            set_err(msg, msglen, "ranges %s-%s and %s-%s overlap", a1, b1, a2, b2);
            return -1;
        }
        if (n > 0 && out->r[i].start == out->r[n - 1].end)
            out->r[n - 1].end = out->r[i].end;
        else
            out->r[n++] = out->r[i];
    }
    out->count = n;
    for (uint32_t i = 0; i < n; i++)
        out->total_s += out->r[i].end - out->r[i].start;
    return 0;
}

/* Strict "YYYY-MM-DD" with a real day of the month. */
static int parse_date(const char *s, int32_t *day)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9'))
            return -1;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < YEAR_MIN || y > YEAR_MAX || m < 1 || m > 12 || d < 1)
        return -1;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    *day = days_from_civil(y, m, d);
    return 0;
}

static int day_cmp(const void *a, const void *b)
{
    const int32_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

/* Parse and sort a date list; a date listed twice is almost always a typo for another date,
 * so it is an error rather than silently merged. */
static int parse_dates(const char *calname, const char *key, const char *const *list, size_t count,
                       int32_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (count == 0)
        return 0;
    if (!list) {
        set_err(err, errlen, "calendar \"%s\": %s: list missing", calname, key);
        return -1;
    }
    int32_t *days = malloc(count * sizeof *days);
    if (!days) {
        set_err(err, errlen, "calendar \"%s\": out of memory", calname);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (parse_date(list[i], &days[i]) != 0) {
            set_err(err, errlen,
                    "calendar \"%s\": %s: \"%.40s\" is not a date (YYYY-MM-DD, years %d-%d)",
                    calname, key, list[i] ? list[i] : "(null)", YEAR_MIN, YEAR_MAX);
            goto fail;
        }
    }
    qsort(days, count, sizeof *days, day_cmp);
    for (size_t i = 1; i < count; i++) {
        if (days[i] == days[i - 1]) {
            char buf[16];
            format_day(days[i], buf);
            set_err(err, errlen, "calendar \"%s\": %s: %s is listed twice", calname, key, buf);
            goto fail;
        }
    }
    *out = days;
    return 0;
fail:
    free(days);
    return -1;
}

/* ---- zone table -------------------------------------------------------------------------- */

struct zone_vec {
    struct zone_piece *v;
    size_t n, cap;
};

static int zone_push(struct zone_vec *z, int64_t from_s, int32_t off_s)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 16;
        struct zone_piece *grown = realloc(z->v, cap * sizeof *grown);
        if (!grown)
            return -1;
        z->v = grown;
        z->cap = cap;
    }
    z->v[z->n++] = (struct zone_piece){from_s, off_s};
    return 0;
}

/* Copy the offsets GLib knows for the window into a table. GLib has no call that lists
 * transitions, but its interval index only grows with time, so each transition is found by
 * galloping forward from the previous one and bisecting to the second. Consecutive intervals
 * with the same offset (a renamed abbreviation, a DST flag flip) are merged: only the offset
 * matters for the arithmetic. */
static int zone_build(GTimeZone *tz, struct zone_vec *z)
{
    int iv = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, ZONE_LO_S);
    if (zone_push(z, INT64_MIN, g_time_zone_get_offset(tz, iv)) != 0)
        return -1;
    int64_t t = ZONE_LO_S;
    /* Each round moves to a later interval, so at most one round per interval. */
    for (;;) {
        int64_t lo = t, hi = t, step = S_PER_DAY;
        bool found = false;
        while (hi < ZONE_HI_S) {
            hi = min64(lo + step, ZONE_HI_S);
            if (g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, hi) != iv) {
                found = true;
                break;
            }
            lo = hi;
            step *= 2;
        }
        if (!found)
            return 0;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, mid) == iv)
                lo = mid;
            else
                hi = mid;
        }
        iv = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, hi);
        int32_t off = g_time_zone_get_offset(tz, iv);
        if (off != z->v[z->n - 1].off_s && zone_push(z, hi, off) != 0)
            return -1;
        t = hi;
    }
}

/* Index of the piece that contains UTC second t. */
static size_t zone_find(const struct voc_calendar *cal, int64_t t)
{
    size_t lo = 0, hi = cal->zone_count; /* zone[lo].from_s <= t < zone[hi].from_s */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->zone[mid].from_s <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The first UTC second at which the wall clock shows `local_s` or later: a time in a gap
 * maps to the jump, a repeated time to its first occurrence. The mapping never goes
 * backwards, so ranges stay ordered and disjoint through any offset change.
 * *hint must be a piece at or before the answer's; it is moved to the answer's piece, which
 * is then a valid hint for any later local time. Within piece k the wall clock reads
 * u + off_k, so the first u of piece k that reaches local_s is max(from_k, local_s - off_k);
 * the earliest piece where that u still lies inside the piece is the answer. */
static int64_t local_to_utc(const struct voc_calendar *cal, int64_t local_s, size_t *hint)
{
    size_t k = *hint;
    for (;;) {
        int64_t u = max64(local_s - cal->zone[k].off_s, cal->zone[k].from_s);
        if (k + 1 == cal->zone_count || u < cal->zone[k + 1].from_s) {
            *hint = k;
            return u;
        }
        k++;
    }
}

/* ---- special days ------------------------------------------------------------------------ */

struct special_vec {
    struct special_day *v;
    size_t n, cap;
};

static int special_push(struct special_vec *s, int32_t day, uint8_t kind)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct special_day *grown = realloc(s->v, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->v = grown;
        s->cap = cap;
    }
    s->v[s->n++] = (struct special_day){day, kind};
    return 0;
}

static int special_cmp(const void *a, const void *b)
{
    const struct special_day *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

/* Index of the first special day >= day. */
static size_t special_find(const struct voc_calendar *cal, int32_t day)
{
    size_t lo = 0, hi = cal->special_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->special[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- construction ------------------------------------------------------------------------ */

static const char *const weekday_keys[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

int voc_calendar_weekday_parse(const char *key)
{
    for (int i = 0; key && i < 7; i++) {
        if (strcmp(key, weekday_keys[i]) == 0)
            return i;
    }
    return -1;
}

int voc_calendar_new(const struct voc_calendar_spec *spec, struct voc_calendar **out, char *err,
                     size_t errlen)
{
    struct voc_calendar *cal = NULL;
    GTimeZone *tz = NULL;
    int32_t *holidays = NULL, *extras = NULL;
    struct zone_vec zone = {0};
    struct special_vec special = {0};
    char msg[256];

    const char *name = spec->name;
    if (!name || !*name) {
        set_err(err, errlen, "calendar name is missing");
        goto fail;
    }
    if (strcmp(name, VOC_CALENDAR_24X7) == 0) {
        set_err(err, errlen,
                "calendar \"%s\": the name is reserved for the built-in always-working "
                "calendar",
                name);
        goto fail;
    }
    if (!spec->time_zone || !*spec->time_zone) {
        set_err(err, errlen, "calendar \"%s\": time_zone is missing (e.g. Asia/Shanghai)", name);
        goto fail;
    }

    cal = calloc(1, sizeof *cal);
    if (!cal)
        goto oom;
    cal->name = strdup(name);
    cal->time_zone = strdup(spec->time_zone);
    if (!cal->name || !cal->time_zone)
        goto oom;

    bool has_weekly = false;
    int first_weekly = -1;
    for (int i = 0; i < 7; i++) {
        if (!spec->hours[i])
            continue;
        if (parse_hours(spec->hours[i], &cal->week[i], msg, sizeof msg) != 0) {
            set_err(err, errlen, "calendar \"%s\": hours.%s: %s", name, weekday_keys[i], msg);
            goto fail;
        }
        has_weekly = true;
        if (first_weekly < 0)
            first_weekly = i;
        cal->week_us += cal->week[i].total_s * US_PER_S;
    }
    if (spec->extra_workday_hours) {
        if (parse_hours(spec->extra_workday_hours, &cal->extra, msg, sizeof msg) != 0) {
            set_err(err, errlen, "calendar \"%s\": extra_workday_hours: %s", name, msg);
            goto fail;
        }
    } else if (first_weekly >= 0) {
        cal->extra = cal->week[first_weekly]; /* Monday's, when Monday has hours */
    }

    if (parse_dates(name, "holidays", spec->holidays, spec->holiday_count, &holidays, err,
                    errlen) != 0 ||
        parse_dates(name, "extra_workdays", spec->extra_workdays, spec->extra_workday_count,
                    &extras, err, errlen) != 0)
        goto fail;
    for (size_t i = 0, j = 0; i < spec->holiday_count && j < spec->extra_workday_count;) {
        if (holidays[i] == extras[j]) {
            char buf[16];
            format_day(holidays[i], buf);
            set_err(err, errlen, "calendar \"%s\": %s is both a holiday and an extra workday", name,
                    buf);
            goto fail;
        }
        if (holidays[i] < extras[j])
            i++;
        else
            j++;
    }
    if (!has_weekly && spec->extra_workday_count == 0) {
        set_err(err, errlen,
                "calendar \"%s\": no working time at all: give hours for at least one weekday "
                "or list extra_workdays",
                name);
        goto fail;
    }
    if (spec->extra_workday_count > 0 && cal->extra.count == 0) {
        set_err(err, errlen,
                "calendar \"%s\": extra_workdays need extra_workday_hours when no weekday has "
                "hours",
                name);
        goto fail;
    }

    /* GLib >= 2.68 returns NULL for an identifier it cannot load (older ones silently gave
     * UTC, which would have shifted every deadline). */
    tz = g_time_zone_new_identifier(spec->time_zone);
    if (!tz) {
        set_err(err, errlen,
                "calendar \"%s\": unknown time zone \"%.64s\" (use an IANA name such as "
                "Asia/Shanghai or Europe/Berlin)",
                name, spec->time_zone);
        goto fail;
    }
    if (zone_build(tz, &zone) != 0)
        goto oom;
    for (size_t k = 0; k < zone.n; k++) {
        int64_t a = zone.v[k].off_s < 0 ? -(int64_t)zone.v[k].off_s : zone.v[k].off_s;
        cal->max_abs_off_s = max64(cal->max_abs_off_s, a);
    }

    for (size_t i = 0; i < spec->holiday_count; i++) {
        if (special_push(&special, holidays[i], DAY_HOLIDAY) != 0)
            goto oom;
    }
    for (size_t i = 0; i < spec->extra_workday_count; i++) {
        if (special_push(&special, extras[i], DAY_EXTRA) != 0)
            goto oom;
    }
    /* A day near an offset change may have more or less working time than its nominal
     * hours, so week skipping must stop there. One spare day on each side costs nothing
     * and saves reasoning about clocks that jump across midnight. */
    for (size_t k = 1; k < zone.n; k++) {
        int64_t t = zone.v[k].from_s;
        int64_t o1 = zone.v[k - 1].off_s, o2 = zone.v[k].off_s;
        int32_t d1 = (int32_t)floor_div(t + min64(o1, o2), S_PER_DAY) - 1;
        int32_t d2 = (int32_t)floor_div(t + max64(o1, o2), S_PER_DAY) + 1;
        for (int32_t d = d1; d <= d2; d++) {
            if (special_push(&special, d, DAY_ZONE) != 0)
                goto oom;
        }
    }
    if (special.n) /* qsort(NULL, 0, ...) is undefined: a UTC calendar without holidays */
        qsort(special.v, special.n, sizeof special.v[0], special_cmp);
    size_t n = 0;
    for (size_t i = 0; i < special.n; i++) {
        if (n > 0 && special.v[n - 1].day == special.v[i].day)
            special.v[n - 1].kind |= special.v[i].kind;
        else
            special.v[n++] = special.v[i];
    }
    special.n = n;

    cal->zone = zone.v;
    cal->zone_count = zone.n;
    cal->special = special.v;
    cal->special_count = special.n;
    g_time_zone_unref(tz);
    free(holidays);
    free(extras);
    *out = cal;
    return 0;

oom:
    set_err(err, errlen, "calendar \"%s\": out of memory", name ? name : "");
fail:
    if (tz)
        g_time_zone_unref(tz);
    free(holidays);
    free(extras);
    free(zone.v);
    free(special.v);
    voc_calendar_free(cal);
    return -1;
}

void voc_calendar_free(struct voc_calendar *cal)
{
    if (!cal || cal == &calendar_24x7)
        return;
    free(cal->name);
    free(cal->time_zone);
    free(cal->zone);
    free(cal->special);
    free(cal);
}

const struct voc_calendar *voc_calendar_24x7(void)
{
    return &calendar_24x7;
}

const char *voc_calendar_name(const struct voc_calendar *cal)
{
    return cal->name;
}

const char *voc_calendar_time_zone(const struct voc_calendar *cal)
{
    return cal->time_zone;
}

/* ---- arithmetic --------------------------------------------------------------------------- */

/* A forward walk over local days. */
struct walk {
    int32_t day;    /* current local day */
    size_t special; /* first special day >= day */
    size_t piece;   /* zone hint for local_to_utc */
};

/* The local day whose wall clock shows instant t_us; *piece gets the zone piece of t. */
static int32_t local_day_of(const struct voc_calendar *cal, int64_t t_us, size_t *piece)
{
    int64_t t = floor_div(t_us, US_PER_S);
    *piece = zone_find(cal, t);
    return (int32_t)floor_div(t + cal->zone[*piece].off_s, S_PER_DAY);
}

/* Start at the local day that contains instant t_us. Intervals of earlier days all end by
 * the start of that day, which is at or before t, so nothing is missed. */
static void walk_init(struct walk *w, const struct voc_calendar *cal, int64_t t_us)
{
    size_t k;
    w->day = local_day_of(cal, t_us, &k);
    /* Every working time of the day maps to at least day_start - max offset. */
    int64_t earliest = (int64_t)w->day * S_PER_DAY - cal->max_abs_off_s - 1;
    while (k > 0 && cal->zone[k].from_s > earliest)
        k--;
    w->piece = k;
    w->special = special_find(cal, w->day);
}

/* Kind of the current day (0 = an ordinary weekday); advances the special-day cursor. */
static uint8_t walk_kind(struct walk *w, const struct voc_calendar *cal)
{
    while (w->special < cal->special_count && cal->special[w->special].day < w->day)
        w->special++;
    if (w->special < cal->special_count && cal->special[w->special].day == w->day)
        return cal->special[w->special].kind;
    return 0;
}

/* The next special day at or after the current one (INT32_MAX if none); call after
 * walk_kind(), so on an ordinary day it lies strictly ahead. */
static int64_t walk_next_special(const struct walk *w, const struct voc_calendar *cal)
{
    return w->special < cal->special_count ? cal->special[w->special].day : INT32_MAX;
}

static const struct day_hours *day_hours_of(const struct voc_calendar *cal, int32_t day,
                                            uint8_t kind)
{
    if (kind & DAY_HOLIDAY)
        return NULL;
    if (kind & DAY_EXTRA)
        return &cal->extra;
    return &cal->week[weekday_of(day)];
}

/* Ordinary days from the current one up to the next special day or `limit`: every run of
 * seven of them has exactly week_us of working time. */
static int64_t plain_days(const struct walk *w, const struct voc_calendar *cal, int64_t limit)
{
    return min64(walk_next_special(w, cal), limit) - w->day;
}

int64_t voc_calendar_add(const struct voc_calendar *cal, int64_t start_us, int64_t working_us)
{
    if (working_us < 0)
        working_us = 0;
    if (cal->always)
        return start_us > INT64_MAX - working_us ? INT64_MAX : start_us + working_us;
    if (start_us >= DOMAIN_HI_US)
        return INT64_MAX;
    start_us = max64(start_us, DOMAIN_LO_US);

    struct walk w;
    walk_init(&w, cal, start_us);
    const int32_t first_day = w.day;
    const int64_t last_day = (int64_t)first_day + VOC_CALENDAR_HORIZON_DAYS;
    int64_t left = working_us;

    while (w.day <= last_day) {
        uint8_t kind = walk_kind(&w, cal);
        /* Whole ordinary days after the start day: skip full weeks while more than a week of
         * target is left (or every such day when weekdays have no hours at all). */
        if (kind == 0 && w.day > first_day) {
            int64_t span = plain_days(&w, cal, last_day + 1);
            int64_t skip = 0;
            if (cal->week_us == 0) {
                skip = span;
            } else {
                int64_t weeks = min64(span / 7, (left - 1) / cal->week_us);
                if (weeks > 0) {
                    skip = weeks * 7;
                    left -= weeks * cal->week_us;
                }
            }
            if (skip > 0) {
                w.day = (int32_t)(w.day + skip);
                continue;
            }
        }
        const struct day_hours *h = day_hours_of(cal, w.day, kind);
        int64_t base = (int64_t)w.day * S_PER_DAY;
        for (uint32_t i = 0; h && i < h->count; i++) {
            int64_t a = local_to_utc(cal, base + h->r[i].start, &w.piece) * US_PER_S;
            int64_t b = local_to_utc(cal, base + h->r[i].end, &w.piece) * US_PER_S;
            if (b <= start_us)
                continue;
            int64_t from = max64(a, start_us);
            if (b - from >= left) {
                int64_t due = from + left;
                return due >= DOMAIN_HI_US ? INT64_MAX : due;
            }
            left -= b - from;
        }
        w.day++;
    }
    return INT64_MAX;
}

int64_t voc_calendar_working_between(const struct voc_calendar *cal, int64_t from_us, int64_t to_us)
{
    if (to_us <= from_us)
        return 0;
    if (cal->always)
        return from_us < 0 && to_us > INT64_MAX + from_us ? INT64_MAX : to_us - from_us;
    from_us = max64(from_us, DOMAIN_LO_US);
    to_us = min64(to_us, DOMAIN_HI_US);
    if (to_us <= from_us)
        return 0;

    struct walk w;
    walk_init(&w, cal, from_us);
    size_t end_piece;
    const int32_t end_day = local_day_of(cal, to_us, &end_piece);
    const int32_t first_day = w.day;
    /* Days strictly between the first and the last are whole; the last is looked at one by
     * one, and so is the day after it, in case the clock fell back across midnight. */
    const int64_t last_day = (int64_t)end_day + 1;
    int64_t total = 0;

    while (w.day <= last_day) {
        uint8_t kind = walk_kind(&w, cal);
        if (kind == 0 && w.day > first_day) {
            int64_t span = plain_days(&w, cal, end_day);
            int64_t skip = cal->week_us == 0 ? span : span / 7 * 7;
            if (skip > 0) {
                total += skip / 7 * cal->week_us;
                w.day = (int32_t)(w.day + skip);
                continue;
            }
        }
        const struct day_hours *h = day_hours_of(cal, w.day, kind);
        int64_t base = (int64_t)w.day * S_PER_DAY;
        for (uint32_t i = 0; h && i < h->count; i++) {
            int64_t a = local_to_utc(cal, base + h->r[i].start, &w.piece) * US_PER_S;
            int64_t b = local_to_utc(cal, base + h->r[i].end, &w.piece) * US_PER_S;
            int64_t lo = max64(a, from_us), hi = min64(b, to_us);
            if (hi > lo)
                total += hi - lo;
        }
        w.day++;
    }
    return total;
}
