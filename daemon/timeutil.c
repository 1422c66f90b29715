#include "timeutil.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t (*_Atomic clock_fn)(void *);
static void *_Atomic clock_arg;

int64_t voc_now_us(void)
{
    int64_t (*fn)(void *) = atomic_load(&clock_fn);
    if (fn)
        return fn(atomic_load(&clock_arg));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * VOC_US_PER_S + ts.tv_nsec / 1000;
}

void voc_set_clock(int64_t (*fn)(void *arg), void *arg)
{
    atomic_store(&clock_arg, arg);
    atomic_store(&clock_fn, fn);
}

void voc_format_time(int64_t us, char *buf, size_t len)
{
    int64_t secs = us / VOC_US_PER_S;
    int64_t frac = us % VOC_US_PER_S;
    if (frac < 0) {
        frac += VOC_US_PER_S;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 1000));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int voc_parse_time(const char *text, int64_t *us)
{
    const char *p = text;
    int year, month, day, hour = 0, minute = 0, second = 0;
    if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &month) || *p++ != '-' ||
        digits(&p, 2, &day))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return -1;
    int64_t frac_us = 0;
    int offset_s = 0;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (digits(&p, 2, &hour) || *p++ != ':' || digits(&p, 2, &minute) || *p++ != ':' ||
            digits(&p, 2, &second))
            return -1;
        /* second 60 (leap second) is folded into the next second */
        if (hour > 23 || minute > 59 || second > 60)
            return -1;
        if (*p == '.') {
            p++;
            int n = 0;
            int64_t scale = 100000;
            if (!isdigit((unsigned char)*p))
                return -1;
            while (isdigit((unsigned char)*p)) {
                if (n++ < 6) {
                    frac_us += (*p - '0') * scale;
                    scale /= 10;
                }
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_s = sign * (oh * 3600 + om * 60);
        } else {
            return -1; /* RFC 3339 needs an offset: a local time would be ambiguous */
        }
        if (*p)
            return -1;
    }
    int64_t days = days_from_civil(year, month, day);
    int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
    *us = secs * VOC_US_PER_S + frac_us;
    return 0;
}
