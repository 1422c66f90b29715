/* Business calendars: exact due times around weekends, holidays, make-up days, breaks and
 * DST, the validation messages, and a property check against an independent oracle that
 * walks the calendar day by day with GLib's own local-time conversion. Expected instants are
 * written as local times with their UTC offset, so each one reads like a wall clock. */
#include "calendar.h"

#include <check.h>
#include <glib.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECOND INT64_C(1000000)
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* ---- helpers ------------------------------------------------------------------------------ */

/* "2026-10-09T17:00:00+08:00" -> microseconds since the epoch. */
static int64_t at(const char *iso)
{
    GDateTime *dt = g_date_time_new_from_iso8601(iso, NULL);
    ck_assert_msg(dt != NULL, "bad time in test: %s", iso);
    int64_t us = g_date_time_to_unix(dt) * SECOND + g_date_time_get_microsecond(dt);
    g_date_time_unref(dt);
    return us;
}

struct stamp {
    char s[64];
};

/* An instant as UTC text, for failure messages. */
static struct stamp show(int64_t us)
{
    struct stamp st;
    if (us == INT64_MAX) {
        snprintf(st.s, sizeof st.s, "never");
        return st;
    }
    GDateTime *dt = g_date_time_new_from_unix_utc(us / SECOND);
    gchar *txt = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    snprintf(st.s, sizeof st.s, "%s+%" PRId64 "us", txt, us % SECOND);
    g_free(txt);
    g_date_time_unref(dt);
    return st;
}

#define assert_add(cal, start_iso, working, want_iso)                                              \
    do {                                                                                           \
        int64_t got_ = voc_calendar_add((cal), at(start_iso), (working));                          \
        int64_t want_ = at(want_iso);                                                              \
        ck_assert_msg(got_ == want_, "add(%s, %" PRId64 "us) = %s, want %s", start_iso,            \
                      (int64_t)(working), show(got_).s, want_iso);                                 \
    } while (0)

#define assert_between(cal, from_iso, to_iso, want)                                                \
    do {                                                                                           \
        int64_t got_ = voc_calendar_working_between((cal), at(from_iso), at(to_iso));              \
        ck_assert_msg(got_ == (want), "between(%s, %s) = %" PRId64 "us, want %" PRId64 "us",       \
                      from_iso, to_iso, got_, (int64_t)(want));                                    \
    } while (0)

static struct voc_calendar *make(const struct voc_calendar_spec *spec)
{
    char err[256] = "";
    struct voc_calendar *cal = NULL;
    int rc = voc_calendar_new(spec, &cal, err, sizeof err);
    ck_assert_msg(rc == 0, "voc_calendar_new(%s): %s", spec->name, err);
    ck_assert_ptr_nonnull(cal);
    return cal;
}

#define NINE_TO_SIX "09:00-18:00"

static const char *const contract_holidays[] = {"2026-10-01", "2026-10-02"};
static const char *const contract_extra[] = {"2026-10-10"};

/* The `workdays` calendar of the CONTRACT.md config example. */
static struct voc_calendar_spec workdays_spec(void)
{
    struct voc_calendar_spec s = {
        .name = "workdays",
        .time_zone = "Asia/Shanghai",
        .hours = {NINE_TO_SIX, NINE_TO_SIX, NINE_TO_SIX, NINE_TO_SIX, NINE_TO_SIX},
        .holidays = contract_holidays,
        .holiday_count = 2,
        .extra_workdays = contract_extra,
        .extra_workday_count = 1,
    };
    return s;
}

static struct voc_calendar_spec berlin_spec(const char *name, const char *weekday, const char *sat,
                                            const char *sun)
{
    struct voc_calendar_spec s = {
        .name = name,
        .time_zone = "Europe/Berlin",
        .hours = {weekday, weekday, weekday, weekday, weekday, sat, sun},
    };
    return s;
}

/* ---- fixed cases ---------------------------------------------------------------------------- */

START_TEST(weekend_skip)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    /* Fri 17:00 + 2 h: one hour on Friday, one on Monday. */
    assert_add(cal, "2026-09-25T17:00:00+08:00", 2 * HOUR, "2026-09-28T10:00:00+08:00");
    /* Saturday noon counts from Monday 09:00. */
    assert_add(cal, "2026-09-26T12:00:00+08:00", 30 * MINUTE, "2026-09-28T09:30:00+08:00");
    assert_between(cal, "2026-09-25T17:00:00+08:00", "2026-09-28T10:00:00+08:00", 2 * HOUR);
    ck_assert_str_eq(voc_calendar_name(cal), "workdays");
    ck_assert_str_eq(voc_calendar_time_zone(cal), "Asia/Shanghai");
    voc_calendar_free(cal);
}
END_TEST

START_TEST(holiday_skip)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    /* Wed 09-30 17:00: Thu and Fri are national holidays, then the weekend. */
    assert_add(cal, "2026-09-30T17:00:00+08:00", 2 * HOUR, "2026-10-05T10:00:00+08:00");
    assert_add(cal, "2026-10-01T10:00:00+08:00", HOUR, "2026-10-05T10:00:00+08:00");
    assert_between(cal, "2026-10-01T00:00:00+08:00", "2026-10-03T00:00:00+08:00", 0);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(makeup_saturday)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    /* Sat 10-10 is a working day with Monday's hours. */
    assert_add(cal, "2026-10-09T17:00:00+08:00", 2 * HOUR, "2026-10-10T10:00:00+08:00");
    assert_between(cal, "2026-10-10T00:00:00+08:00", "2026-10-11T00:00:00+08:00", 9 * HOUR);
    /* An ordinary Saturday is still off. */
    assert_between(cal, "2026-10-17T00:00:00+08:00", "2026-10-18T00:00:00+08:00", 0);
    voc_calendar_free(cal);

    /* Explicit hours for make-up days. */
    spec.extra_workday_hours = "10:00-15:00";
    cal = make(&spec);
    assert_add(cal, "2026-10-09T17:00:00+08:00", 2 * HOUR, "2026-10-10T11:00:00+08:00");
    /* 1 h Friday + 5 h Saturday + 1 h Monday. */
    assert_add(cal, "2026-10-09T17:00:00+08:00", 7 * HOUR, "2026-10-12T10:00:00+08:00");
    voc_calendar_free(cal);

    /* No Monday hours: make-up days take the first weekday that has hours (Tuesday). */
    struct voc_calendar_spec tue = {
        .name = "tue-wed",
        .time_zone = "Asia/Shanghai",
        .hours = {[VOC_TUE] = "10:00-12:00", [VOC_WED] = "08:00-18:00"},
        .extra_workdays = contract_extra,
        .extra_workday_count = 1,
    };
    cal = make(&tue);
    assert_between(cal, "2026-10-10T00:00:00+08:00", "2026-10-11T00:00:00+08:00", 2 * HOUR);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(lunch_break)
{
    const char *h = "08:30-12:00,13:00-17:30";
    struct voc_calendar_spec spec = {
        .name = "lunch",
        .time_zone = "Asia/Shanghai",
        .hours = {h, h, h, h, h},
    };
    struct voc_calendar *cal = make(&spec);
    assert_add(cal, "2026-09-28T11:00:00+08:00", 2 * HOUR, "2026-09-28T14:00:00+08:00");
    assert_add(cal, "2026-09-28T11:00:00+08:00", HOUR, "2026-09-28T12:00:00+08:00");
    /* Inside the break: counting starts at 13:00. */
    assert_add(cal, "2026-09-28T12:30:00+08:00", HOUR, "2026-09-28T14:00:00+08:00");
    assert_add(cal, "2026-09-28T12:00:00+08:00", 0, "2026-09-28T13:00:00+08:00");
    /* Half an hour today, half an hour from 08:30 tomorrow. */
    assert_add(cal, "2026-09-28T17:00:00+08:00", HOUR, "2026-09-29T09:00:00+08:00");
    assert_between(cal, "2026-09-28T11:00:00+08:00", "2026-09-28T14:00:00+08:00", 2 * HOUR);
    assert_between(cal, "2026-09-28T00:00:00+08:00", "2026-09-29T00:00:00+08:00", 8 * HOUR);
    /* Ranges may be written in any order and with spaces. */
    struct voc_calendar_spec spaced = spec;
    spaced.hours[VOC_MON] = " 13:00 - 17:30 , 8:30-12:00 ";
    struct voc_calendar *cal2 = make(&spaced);
    assert_add(cal2, "2026-09-28T12:30:00+08:00", HOUR, "2026-09-28T14:00:00+08:00");
    voc_calendar_free(cal2);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(boundaries)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    /* Exactly at 18:00 Friday: nothing left that day. */
    assert_add(cal, "2026-09-25T18:00:00+08:00", HOUR, "2026-09-28T10:00:00+08:00");
    /* A target that ends at 18:00 is due at 18:00, not the next morning. */
    assert_add(cal, "2026-09-25T17:00:00+08:00", HOUR, "2026-09-25T18:00:00+08:00");
    assert_add(cal, "2026-09-28T09:00:00+08:00", 9 * HOUR, "2026-09-28T18:00:00+08:00");
    assert_add(cal, "2026-09-28T09:00:00+08:00", 9 * HOUR + 1, "2026-09-29T09:00:00.000001+08:00");
    assert_add(cal, "2026-09-28T09:00:00+08:00", 0, "2026-09-28T09:00:00+08:00");
    assert_add(cal, "2026-09-28T08:59:00+08:00", HOUR, "2026-09-28T10:00:00+08:00");
    assert_add(cal, "2026-09-28T18:00:00+08:00", 0, "2026-09-29T09:00:00+08:00");
    /* Sub-second starts keep their microseconds. */
    assert_add(cal, "2026-09-28T10:00:00.250000+08:00", HOUR, "2026-09-28T11:00:00.25+08:00");
    /* Negative targets are treated as zero. */
    assert_add(cal, "2026-09-26T10:00:00+08:00", -HOUR, "2026-09-28T09:00:00+08:00");
    voc_calendar_free(cal);
}
END_TEST

START_TEST(holiday_at_night)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    assert_add(cal, "2026-10-01T23:00:00+08:00", HOUR, "2026-10-05T10:00:00+08:00");
    assert_add(cal, "2026-10-02T03:00:00+08:00", 9 * HOUR, "2026-10-05T18:00:00+08:00");
    /* A full week from Monday 10-05 09:00 runs into the make-up Saturday. */
    assert_add(cal, "2026-10-05T09:00:00+08:00", 6 * 9 * HOUR, "2026-10-10T18:00:00+08:00");
    voc_calendar_free(cal);
}
END_TEST

START_TEST(always_24x7)
{
    const struct voc_calendar *cal = voc_calendar_24x7();
    ck_assert_str_eq(voc_calendar_name(cal), "24x7");
    ck_assert_str_eq(voc_calendar_name(cal), VOC_CALENDAR_24X7);
    int64_t t = at("2026-10-01T03:00:00+08:00");
    ck_assert_int_eq(voc_calendar_add(cal, t, 2 * HOUR), t + 2 * HOUR);
    ck_assert_int_eq(voc_calendar_add(cal, t, 0), t);
    ck_assert_int_eq(voc_calendar_working_between(cal, t, t + 5 * DAY), 5 * DAY);
    ck_assert_int_eq(voc_calendar_working_between(cal, t + 1, t), 0);
    ck_assert_int_eq(voc_calendar_add(cal, INT64_MAX - 5, 10), INT64_MAX);
    ck_assert_int_eq(voc_calendar_working_between(cal, INT64_MIN, INT64_MAX), INT64_MAX);
    voc_calendar_free((struct voc_calendar *)cal); /* ignored */
    ck_assert_str_eq(voc_calendar_name(voc_calendar_24x7()), "24x7");
}
END_TEST

START_TEST(between_matches_add)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    int64_t start = at("2026-09-25T17:00:00+08:00");
    static const int64_t targets[] = {0,        1,         30 * MINUTE, HOUR,
                                      9 * HOUR, 10 * HOUR, 45 * HOUR,   100 * HOUR + 17};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int64_t due = voc_calendar_add(cal, start, targets[i]);
        ck_assert_int_eq(voc_calendar_working_between(cal, start, due), targets[i]);
    }
    /* A pause over the weekend costs only the working hours in it. */
    assert_between(cal, "2026-09-25T17:30:00+08:00", "2026-09-28T09:45:00+08:00", 75 * MINUTE);
    /* Backwards or empty spans are zero. */
    assert_between(cal, "2026-09-28T12:00:00+08:00", "2026-09-28T10:00:00+08:00", 0);
    assert_between(cal, "2026-09-28T12:00:00+08:00", "2026-09-28T12:00:00+08:00", 0);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(dst_berlin_spring)
{
    /* 2026-03-29 (a Sunday) 02:00 CET -> 03:00 CEST. */
    const char *all = "00:00-24:00";
    struct voc_calendar_spec s_all = berlin_spec("allday", all, all, all);
    struct voc_calendar *cal = make(&s_all);
    assert_between(cal, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23 * HOUR);
    assert_between(cal, "2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", 24 * HOUR);
    assert_between(cal, "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00",
                   (7 * 24 - 1) * HOUR);
    assert_add(cal, "2026-03-29T00:00:00+01:00", 23 * HOUR, "2026-03-30T00:00:00+02:00");
    assert_add(cal, "2026-03-28T23:00:00+01:00", 3 * HOUR, "2026-03-29T03:00:00+02:00");
    voc_calendar_free(cal);

    /* A Sunday range across the gap has 3 h that day, 4 h on other Sundays. */
    struct voc_calendar_spec s_night = berlin_spec("night", NULL, NULL, "01:00-05:00");
    cal = make(&s_night);
    assert_between(cal, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 3 * HOUR);
    assert_between(cal, "2026-03-22T00:00:00+01:00", "2026-03-23T00:00:00+01:00", 4 * HOUR);
    assert_add(cal, "2026-03-28T12:00:00+01:00", 2 * HOUR, "2026-03-29T04:00:00+02:00");
    assert_add(cal, "2026-03-28T12:00:00+01:00", 3 * HOUR, "2026-03-29T05:00:00+02:00");
    assert_add(cal, "2026-03-28T12:00:00+01:00", 3 * HOUR + SECOND, "2026-04-05T01:00:01+02:00");
    voc_calendar_free(cal);

    /* A range starting inside the gap starts when the clocks jump to 03:00; a range that
     * lies wholly inside the gap is empty that day. */
    struct voc_calendar_spec s_gap = berlin_spec("gap", NULL, NULL, "02:15-02:45,02:50-04:00");
    cal = make(&s_gap);
    assert_between(cal, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", HOUR);
    assert_between(cal, "2026-03-22T00:00:00+01:00", "2026-03-23T00:00:00+01:00", 100 * MINUTE);
    assert_add(cal, "2026-03-28T12:00:00+01:00", 0, "2026-03-29T03:00:00+02:00");
    assert_add(cal, "2026-03-28T12:00:00+01:00", 30 * MINUTE, "2026-03-29T03:30:00+02:00");
    voc_calendar_free(cal);

    /* 02:00 is where the gap starts: 01:00-02:00 is an hour, and so is 03:00-04:00. */
    struct voc_calendar_spec s_edge = berlin_spec("edge", NULL, NULL, "01:00-02:00,03:00-04:00");
    cal = make(&s_edge);
    assert_between(cal, "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00", HOUR);
    assert_between(cal, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 2 * HOUR);
    assert_add(cal, "2026-03-28T12:00:00+01:00", HOUR, "2026-03-29T03:00:00+02:00");
    assert_add(cal, "2026-03-28T12:00:00+01:00", 90 * MINUTE, "2026-03-29T03:30:00+02:00");
    voc_calendar_free(cal);

    /* Office hours around the DST weekend. */
    struct voc_calendar_spec s_office = berlin_spec("office", NINE_TO_SIX, NULL, NULL);
    cal = make(&s_office);
    assert_add(cal, "2026-03-27T17:00:00+01:00", 2 * HOUR, "2026-03-30T10:00:00+02:00");
    assert_between(cal, "2026-03-27T17:00:00+01:00", "2026-03-30T10:00:00+02:00", 2 * HOUR);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(dst_berlin_autumn)
{
    /* 2026-10-25 (a Sunday) 03:00 CEST -> 02:00 CET: 02:00-03:00 happens twice. */
    const char *all = "00:00-24:00";
    struct voc_calendar_spec s_all = berlin_spec("allday", all, all, all);
    struct voc_calendar *cal = make(&s_all);
    assert_between(cal, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25 * HOUR);
    assert_between(cal, "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00",
                   (7 * 24 + 1) * HOUR);
    assert_add(cal, "2026-10-25T00:00:00+02:00", 24 * HOUR, "2026-10-25T23:00:00+01:00");
    assert_add(cal, "2026-10-25T00:00:00+02:00", 25 * HOUR, "2026-10-26T00:00:00+01:00");
    /* Counting through the repeated hour lands in its second occurrence. */
    assert_add(cal, "2026-10-25T02:30:00+02:00", HOUR, "2026-10-25T02:30:00+01:00");
    voc_calendar_free(cal);

    struct voc_calendar_spec s_night = berlin_spec("night", NULL, NULL, "01:00-05:00");
    cal = make(&s_night);
    assert_between(cal, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 5 * HOUR);
    assert_add(cal, "2026-10-24T12:00:00+02:00", 2 * HOUR, "2026-10-25T02:00:00+01:00");
    assert_add(cal, "2026-10-24T12:00:00+02:00", 5 * HOUR, "2026-10-25T05:00:00+01:00");
    voc_calendar_free(cal);

    /* Boundaries inside the repeated hour mean their first occurrence: from the first
     * 02:30 until the clock shows 03:30 is two hours. */
    struct voc_calendar_spec s_rep = berlin_spec("repeat", NULL, NULL, "02:30-03:30");
    cal = make(&s_rep);
    assert_between(cal, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 2 * HOUR);
    assert_add(cal, "2026-10-24T12:00:00+02:00", 0, "2026-10-25T02:30:00+02:00");
    assert_add(cal, "2026-10-24T12:00:00+02:00", HOUR, "2026-10-25T02:30:00+01:00");
    voc_calendar_free(cal);

    /* 03:00 comes once, an hour after the first 02:00 ends: 01:00-03:00 is three hours. */
    struct voc_calendar_spec s_edge = berlin_spec("edge", NULL, NULL, "01:00-03:00,03:00-04:00");
    s_edge.hours[VOC_SAT] = "03:00-04:00";
    cal = make(&s_edge);
    assert_between(cal, "2026-10-25T00:00:00+02:00", "2026-10-25T03:00:00+01:00", 3 * HOUR);
    assert_between(cal, "2026-10-25T03:00:00+01:00", "2026-10-26T00:00:00+01:00", HOUR);
    assert_add(cal, "2026-10-24T12:00:00+02:00", 3 * HOUR, "2026-10-25T03:00:00+01:00");
    voc_calendar_free(cal);

    struct voc_calendar_spec s_office = berlin_spec("office", NINE_TO_SIX, NULL, NULL);
    cal = make(&s_office);
    assert_add(cal, "2026-10-23T17:00:00+02:00", 2 * HOUR, "2026-10-26T10:00:00+01:00");
    voc_calendar_free(cal);
}
END_TEST

START_TEST(long_target)
{
    struct voc_calendar_spec spec = workdays_spec();
    struct voc_calendar *cal = make(&spec);
    /* 30 days = 720 h = 80 working days of 9 h from Mon 09-07: 10-01/02 are off, Sat 10-10
     * works, so the 80th working day is Mon 12-28. */
    assert_add(cal, "2026-09-07T09:00:00+08:00", 30 * DAY, "2026-12-28T18:00:00+08:00");
    assert_between(cal, "2026-09-07T09:00:00+08:00", "2026-12-28T18:00:00+08:00", 30 * DAY);
    voc_calendar_free(cal);

    /* Berlin office hours, 30 days from Tue 09-01 across the October DST change: 80 working
     * days, the 80th being Mon 12-21. */
    struct voc_calendar_spec s_office = berlin_spec("office", NINE_TO_SIX, NULL, NULL);
    cal = make(&s_office);
    assert_add(cal, "2026-09-01T09:00:00+02:00", 30 * DAY, "2026-12-21T18:00:00+01:00");
    /* A year of office hours: 2027 has 261 weekdays. */
    assert_between(cal, "2027-01-01T00:00:00+01:00", "2028-01-01T00:00:00+01:00", 261 * 9 * HOUR);
    voc_calendar_free(cal);
}
END_TEST

START_TEST(before_1970)
{
    /* Day numbers are negative before the epoch; weekdays must still come out right. */
    static const char *const hol[] = {"1969-12-31"};
    struct voc_calendar_spec spec = workdays_spec();
    spec.holidays = hol;
    spec.holiday_count = 1;
    struct voc_calendar *cal = make(&spec);
    /* Mon 1969-12-29 .. Sun 1970-01-04: four working days. */
    assert_between(cal, "1969-12-29T00:00:00+08:00", "1970-01-05T00:00:00+08:00", 36 * HOUR);
    assert_add(cal, "1969-12-26T17:00:00+08:00", 2 * HOUR, "1969-12-29T10:00:00+08:00");
    voc_calendar_free(cal);
}
END_TEST

START_TEST(far_away_and_never)
{
    /* Only one working day, years away: found, and beyond it nothing is ever due. */
    static const char *const extra[] = {"2030-06-03"};
    struct voc_calendar_spec spec = {
        .name = "rare",
        .time_zone = "Asia/Shanghai",
        .extra_workday_hours = NINE_TO_SIX,
        .extra_workdays = extra,
        .extra_workday_count = 1,
    };
    struct voc_calendar *cal = make(&spec);
    assert_add(cal, "2026-01-01T00:00:00+08:00", HOUR, "2030-06-03T10:00:00+08:00");
    ck_assert_int_eq(voc_calendar_add(cal, at("2026-01-01T00:00:00+08:00"), 10 * HOUR), INT64_MAX);
    ck_assert_int_eq(voc_calendar_add(cal, at("2031-01-01T00:00:00+08:00"), 0), INT64_MAX);
    assert_between(cal, "2020-01-01T00:00:00+08:00", "2040-01-01T00:00:00+08:00", 9 * HOUR);
    voc_calendar_free(cal);

    /* More than ten years away is "never". */
    static const char *const later[] = {"2037-01-05"};
    spec.extra_workdays = later;
    cal = make(&spec);
    ck_assert_int_eq(voc_calendar_add(cal, at("2026-01-01T00:00:00+08:00"), HOUR), INT64_MAX);
    assert_add(cal, "2027-01-05T00:00:00+08:00", HOUR, "2037-01-05T10:00:00+08:00");
    voc_calendar_free(cal);

    /* Extreme inputs stay bounded and do not overflow. */
    struct voc_calendar_spec w = workdays_spec();
    cal = make(&w);
    ck_assert_int_eq(voc_calendar_add(cal, INT64_MAX - 1, HOUR), INT64_MAX);
    ck_assert_int_eq(voc_calendar_add(cal, 0, INT64_MAX), INT64_MAX);
    int64_t all = voc_calendar_working_between(cal, INT64_MIN, INT64_MAX);
    ck_assert(all > 0);
    int64_t early = voc_calendar_add(cal, INT64_MIN, 0);
    ck_assert(early > INT64_MIN && early < 0);
    voc_calendar_free(cal);
}
END_TEST

/* ---- validation ------------------------------------------------------------------------------ */

struct bad_case {
    const char *what;
    void (*edit)(struct voc_calendar_spec *);
    const char *message;
};

static void no_name(struct voc_calendar_spec *s)
{
    s->name = NULL;
}
static void reserved_name(struct voc_calendar_spec *s)
{
    s->name = "24x7";
}
static void no_zone(struct voc_calendar_spec *s)
{
    s->time_zone = "";
}
static void unknown_zone(struct voc_calendar_spec *s)
{
    s->time_zone = "Mars/Olympus_Mons";
}
static void zone_case(struct voc_calendar_spec *s)
{
    s->time_zone = "asia/shanghai";
}
static void syntax_no_minutes(struct voc_calendar_spec *s)
{
    s->hours[VOC_MON] = "9-18";
}
static void syntax_bad_minute(struct voc_calendar_spec *s)
{
    s->hours[VOC_TUE] = "09:00-18:60";
}
static void syntax_bad_hour(struct voc_calendar_spec *s)
{
    s->hours[VOC_WED] = "25:00-26:00";
}
static void syntax_trailing(struct voc_calendar_spec *s)
{
    s->hours[VOC_THU] = "09:00-18:00;";
}
static void syntax_empty_item(struct voc_calendar_spec *s)
{
    s->hours[VOC_FRI] = "09:00-12:00,";
}
static void syntax_empty(struct voc_calendar_spec *s)
{
    s->hours[VOC_SAT] = "";
}
static void end_before_start(struct voc_calendar_spec *s)
{
    s->hours[VOC_MON] = "18:00-09:00";
}
static void empty_range(struct voc_calendar_spec *s)
{
    s->hours[VOC_MON] = "09:00-09:00";
}
static void start_at_24(struct voc_calendar_spec *s)
{
    s->hours[VOC_MON] = "24:00-24:00";
}
static void overlap(struct voc_calendar_spec *s)
{
    s->hours[VOC_MON] = "13:00-17:30,08:30-13:30";
}
static void bad_extra_hours(struct voc_calendar_spec *s)
{
    s->extra_workday_hours = "9am-6pm";
}
static void bad_date(struct voc_calendar_spec *s)
{
    static const char *const d[] = {"2026-10-01", "2026-02-30"};
    s->holidays = d;
    s->holiday_count = 2;
}
static void bad_date_format(struct voc_calendar_spec *s)
{
    static const char *const d[] = {"2026/10/10"};
    s->extra_workdays = d;
}
static void bad_month(struct voc_calendar_spec *s)
{
    static const char *const d[] = {"2026-13-01"};
    s->holidays = d;
    s->holiday_count = 1;
}
static void twice(struct voc_calendar_spec *s)
{
    static const char *const d[] = {"2026-10-02", "2026-10-01", "2026-10-02"};
    s->holidays = d;
    s->holiday_count = 3;
}
static void both(struct voc_calendar_spec *s)
{
    static const char *const d[] = {"2026-10-01", "2026-10-10"};
    s->holidays = d;
    s->holiday_count = 2;
}
static void nothing(struct voc_calendar_spec *s)
{
    memset(s->hours, 0, sizeof s->hours);
    s->extra_workday_count = 0;
}
static void extras_without_hours(struct voc_calendar_spec *s)
{
    memset(s->hours, 0, sizeof s->hours);
}

static const struct bad_case bad_cases[] = {
    {"no name", no_name, "calendar name is missing"},
    {"reserved name", reserved_name, "calendar \"24x7\": the name is reserved"},
    {"no zone", no_zone, "calendar \"workdays\": time_zone is missing"},
    {"unknown zone", unknown_zone,
     "calendar \"workdays\": unknown time zone \"Mars/Olympus_Mons\""},
    {"zone case", zone_case, "unknown time zone \"asia/shanghai\""},
    {"no minutes", syntax_no_minutes,
     "calendar \"workdays\": hours.mon: bad range \"9-18\": expected HH:MM-HH:MM"},
    {"minute 60", syntax_bad_minute, "hours.tue: bad range \"09:00-18:60\""},
    {"hour 25", syntax_bad_hour, "hours.wed: bad range \"25:00-26:00\""},
    {"trailing", syntax_trailing, "hours.thu: bad range \"09:00-18:00;\""},
    {"empty item", syntax_empty_item, "hours.fri: bad range \"\""},
    {"empty", syntax_empty, "hours.sat: no ranges (leave the day out for no work)"},
    {"end before start", end_before_start, "hours.mon: range 18:00-09:00 ends before it starts"},
    {"empty range", empty_range, "hours.mon: range 09:00-09:00 is empty"},
    {"start at 24", start_at_24, "hours.mon: range 24:00-24:00 starts at 24:00"},
    {"overlap", overlap, "hours.mon: ranges 08:30-13:30 and 13:00-17:30 overlap"},
    {"extra hours", bad_extra_hours, "extra_workday_hours: bad range \"9am-6pm\""},
    {"bad date", bad_date, "holidays: \"2026-02-30\" is not a date (YYYY-MM-DD"},
    {"bad date format", bad_date_format, "extra_workdays: \"2026/10/10\" is not a date"},
    {"bad month", bad_month, "holidays: \"2026-13-01\" is not a date"},
    {"twice", twice, "holidays: 2026-10-02 is listed twice"},
    {"both", both, "calendar \"workdays\": 2026-10-10 is both a holiday and an extra workday"},
    {"nothing", nothing, "calendar \"workdays\": no working time at all"},
    {"extras without hours", extras_without_hours,
     "extra_workdays need extra_workday_hours when no weekday has hours"},
};

START_TEST(invalid_specs)
{
    const struct bad_case *c = &bad_cases[_i];
    struct voc_calendar_spec spec = workdays_spec();
    c->edit(&spec);
    char err[256] = "";
    struct voc_calendar *cal = (struct voc_calendar *)0x1; /* must stay untouched */
    int rc = voc_calendar_new(&spec, &cal, err, sizeof err);
    ck_assert_msg(rc == -1, "%s: accepted", c->what);
    ck_assert_ptr_eq(cal, (struct voc_calendar *)0x1);
    ck_assert_msg(strstr(err, c->message) != NULL, "%s: message \"%s\" lacks \"%s\"", c->what, err,
                  c->message);
    /* Without an error buffer it still fails cleanly. */
    ck_assert_int_eq(voc_calendar_new(&spec, &cal, NULL, 0), -1);
}
END_TEST

START_TEST(weekday_keys)
{
    ck_assert_int_eq(voc_calendar_weekday_parse("mon"), VOC_MON);
    ck_assert_int_eq(voc_calendar_weekday_parse("sun"), VOC_SUN);
    ck_assert_int_eq(voc_calendar_weekday_parse("Mon"), -1);
    ck_assert_int_eq(voc_calendar_weekday_parse("monday"), -1);
    ck_assert_int_eq(voc_calendar_weekday_parse(NULL), -1);
}
END_TEST

/* ---- property check against an oracle ---------------------------------------------------------
 */

/* The oracle shares no code with calendar.c: it parses the spec with sscanf, walks civil
 * dates with GDate, and turns each local range boundary into an instant with
 * g_date_time_new(). That conversion is only unambiguous away from DST switch hours, so the
 * calendars below keep their range boundaries out of 02:00-03:00 (the switch may still fall
 * inside a range, e.g. 00:00-24:00). No week skipping: every day is looked at. */
struct oracle_hours {
    int n;
    int start[VOC_CALENDAR_MAX_RANGES], end[VOC_CALENDAR_MAX_RANGES]; /* minutes */
};

static void oracle_parse(const char *text, struct oracle_hours *h)
{
    h->n = 0;
    if (!text)
        return;
    gchar **items = g_strsplit(text, ",", -1);
    for (int i = 0; items[i]; i++) {
        int a, b, c, d;
        ck_assert_int_eq(sscanf(items[i], "%d:%d-%d:%d", &a, &b, &c, &d), 4);
        h->start[h->n] = a * 60 + b;
        h->end[h->n] = c * 60 + d;
        h->n++;
    }
    g_strfreev(items);
}

static bool in_list(const char *const *list, size_t n, const char *date)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], date) == 0)
            return true;
    }
    return false;
}

static int64_t oracle_instant(GTimeZone *tz, GDate *date, int minutes)
{
    GDate d = *date;
    if (minutes == 24 * 60) {
        g_date_add_days(&d, 1);
        minutes = 0;
    }
    GDateTime *dt = g_date_time_new(tz, g_date_get_year(&d), g_date_get_month(&d),
                                    g_date_get_day(&d), minutes / 60, minutes % 60, 0);
    int64_t us = g_date_time_to_unix(dt) * SECOND;
    g_date_time_unref(dt);
    return us;
}

static int64_t oracle_between(const struct voc_calendar_spec *spec, int64_t from, int64_t to)
{
    struct oracle_hours week[7], extra;
    for (int i = 0; i < 7; i++)
        oracle_parse(spec->hours[i], &week[i]);
    if (spec->extra_workday_hours) {
        oracle_parse(spec->extra_workday_hours, &extra);
    } else {
        extra.n = 0;
        for (int i = 0; i < 7 && extra.n == 0; i++)
            extra = week[i]; /* Monday's, else the first weekday with hours */
    }
    GTimeZone *tz = g_time_zone_new_identifier(spec->time_zone);
    GDateTime *f = g_date_time_new_from_unix_utc(from / SECOND - 2 * 86400);
    GDateTime *fl = g_date_time_to_timezone(f, tz);
    GDate *date =
        g_date_new_dmy((GDateDay)g_date_time_get_day_of_month(fl),
                       (GDateMonth)g_date_time_get_month(fl), (GDateYear)g_date_time_get_year(fl));
    g_date_time_unref(fl);
    g_date_time_unref(f);
    int64_t total = 0;
    for (;;) {
        char ymd[16];
        snprintf(ymd, sizeof ymd, "%04d-%02d-%02d", g_date_get_year(date), g_date_get_month(date),
                 g_date_get_day(date));
        const struct oracle_hours *h = &week[g_date_get_weekday(date) - 1];
        if (in_list(spec->holidays, spec->holiday_count, ymd))
            h = NULL;
        else if (in_list(spec->extra_workdays, spec->extra_workday_count, ymd))
            h = &extra;
        if (oracle_instant(tz, date, 0) > to)
            break;
        for (int i = 0; h && i < h->n; i++) {
            int64_t a = oracle_instant(tz, date, h->start[i]);
            int64_t b = oracle_instant(tz, date, h->end[i]);
            int64_t lo = a > from ? a : from, hi = b < to ? b : to;
            if (hi > lo)
                total += hi - lo;
        }
        g_date_add_days(date, 1);
    }
    g_date_free(date);
    g_time_zone_unref(tz);
    return total;
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64: tiny, good enough, and the same on every platform. */
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t rng_range(int64_t lo, int64_t hi) /* [lo, hi) */
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo));
}

static uint64_t test_seed(void)
{
    const char *env = getenv("VOC_TEST_SEED");
    return env ? strtoull(env, NULL, 0) : UINT64_C(20261001);
}

static void property_run(const struct voc_calendar_spec *spec, int64_t lo, int64_t hi, int samples)
{
    struct voc_calendar *cal = make(spec);
    uint64_t seed = test_seed();
    rng_state = seed;
    for (int n = 0; n < samples; n++) {
        int64_t start = rng_range(lo, hi);
        switch (rng_next() % 4) {
        case 0: /* whole hours and half hours hit range boundaries */
            start -= ((start % (30 * MINUTE)) + 30 * MINUTE) % (30 * MINUTE);
            break;
        case 1:
            start -= ((start % MINUTE) + MINUTE) % MINUTE;
            break;
        default:
            break;
        }
        int64_t target;
        switch (rng_next() % 4) {
        case 0:
            target = rng_range(0, 10 * HOUR);
            break;
        case 1:
            target = rng_range(0, 20) * HOUR;
            break;
        case 2:
            target = rng_range(0, 15 * DAY);
            break;
        default:
            target = rng_range(0, 200 * DAY);
            break;
        }
        int64_t due = voc_calendar_add(cal, start, target);
        ck_assert_msg(due != INT64_MAX, "seed %" PRIu64 " #%d: never", seed, n);
        ck_assert_msg(due >= start, "seed %" PRIu64 " #%d: due before start", seed, n);
        int64_t used = voc_calendar_working_between(cal, start, due);
        ck_assert_msg(used == target,
                      "seed %" PRIu64 " #%d %s: between(%s, add(.., %" PRId64 ")=%s) = %" PRId64,
                      seed, n, spec->name, show(start).s, target, show(due).s, used);
        int64_t want = oracle_between(spec, start, due);
        ck_assert_msg(want == target,
                      "seed %" PRIu64 " #%d %s: oracle says %" PRId64 " in [%s, %s), want %" PRId64,
                      seed, n, spec->name, want, show(start).s, show(due).s, target);
        /* The due instant is the earliest: the microsecond before it is working time (or,
         * for a zero target, the one at it). */
        if (target > 0)
            ck_assert_int_eq(voc_calendar_working_between(cal, due - 1, due), 1);
        else
            ck_assert_int_eq(voc_calendar_working_between(cal, due, due + 1), 1);
        /* Splitting the span anywhere adds up (different days get skipped as whole weeks). */
        int64_t mid = due > start ? rng_range(start, due) : start;
        ck_assert_int_eq(voc_calendar_working_between(cal, start, mid) +
                             voc_calendar_working_between(cal, mid, due),
                         target);
        /* A longer target is never due earlier. */
        ck_assert(voc_calendar_add(cal, start, target + 1) > due);
    }
    voc_calendar_free(cal);
}

START_TEST(property_shanghai)
{
    static const char *const hol[] = {"2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18",
                                      "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06",
                                      "2026-10-07", "2027-01-01"};
    static const char *const extra[] = {"2026-02-14", "2026-09-20", "2026-10-10"};
    const char *h = "08:30-12:00,13:00-17:30";
    struct voc_calendar_spec spec = {
        .name = "sh",
        .time_zone = "Asia/Shanghai",
        .hours = {h, h, h, h, "09:00-16:00", "10:00-12:00"},
        .holidays = hol,
        .holiday_count = sizeof hol / sizeof hol[0],
        .extra_workdays = extra,
        .extra_workday_count = sizeof extra / sizeof extra[0],
    };
    property_run(&spec, at("2025-12-01T00:00:00+08:00"), at("2027-02-01T00:00:00+08:00"), 150);
}
END_TEST

START_TEST(property_berlin)
{
    static const char *const hol[] = {"2026-03-30", "2026-10-26", "2026-12-25"};
    static const char *const extra[] = {"2026-03-28", "2026-10-24"};
    const char *h = "08:00-12:00,13:00-17:00";
    struct voc_calendar_spec spec = {
        .name = "berlin",
        .time_zone = "Europe/Berlin",
        .hours = {h, h, h, h, h, "01:00-05:00", "00:00-01:30,03:00-24:00"},
        .holidays = hol,
        .holiday_count = sizeof hol / sizeof hol[0],
        .extra_workdays = extra,
        .extra_workday_count = sizeof extra / sizeof extra[0],
    };
    property_run(&spec, at("2026-03-20T00:00:00+01:00"), at("2026-04-05T00:00:00+02:00"), 60);
    property_run(&spec, at("2026-10-15T00:00:00+02:00"), at("2026-11-01T00:00:00+01:00"), 60);
    /* Many years, many DST changes, mostly long targets. */
    property_run(&spec, at("1995-01-01T00:00:00+01:00"), at("2060-01-01T00:00:00+01:00"), 60);

    const char *all = "00:00-24:00";
    struct voc_calendar_spec s_all = berlin_spec("allday", NULL, all, all);
    property_run(&s_all, at("2026-03-20T00:00:00+01:00"), at("2026-11-01T00:00:00+01:00"), 60);
}
END_TEST

START_TEST(property_other_zones)
{
    /* A half-hour DST shift (Lord Howe), a southern-hemisphere zone, and a zone whose
     * standard offset changed. */
    const char *h = NINE_TO_SIX;
    struct voc_calendar_spec lh = {
        .name = "lord-howe",
        .time_zone = "Australia/Lord_Howe",
        .hours = {h, h, h, h, h, NULL, "00:00-24:00"},
    };
    property_run(&lh, at("2025-01-01T00:00:00+11:00"), at("2028-01-01T00:00:00+11:00"), 40);
    struct voc_calendar_spec sp = {
        .name = "sao-paulo",
        .time_zone = "America/Sao_Paulo",
        .hours = {h, h, h, h, h},
    };
    property_run(&sp, at("2010-01-01T00:00:00-02:00"), at("2025-01-01T00:00:00-03:00"), 40);
}
END_TEST

/* One calendar shared by several threads gives every thread the single-threaded answers. */
#define THREAD_SAMPLES 2000

struct thread_job {
    const struct voc_calendar *cal;
    const int64_t *starts, *want;
    int mismatches;
};

static void *thread_main(void *arg)
{
    struct thread_job *job = arg;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < THREAD_SAMPLES; i++) {
            if (voc_calendar_add(job->cal, job->starts[i], 24 * HOUR) != job->want[i])
                job->mismatches++;
        }
    }
    return NULL;
}

START_TEST(shared_between_threads)
{
    struct voc_calendar_spec spec = berlin_spec("office", NINE_TO_SIX, NULL, NULL);
    struct voc_calendar *cal = make(&spec);
    static int64_t starts[THREAD_SAMPLES], want[THREAD_SAMPLES];
    rng_state = test_seed();
    int64_t lo = at("2026-01-01T00:00:00+01:00");
    for (int i = 0; i < THREAD_SAMPLES; i++) {
        starts[i] = rng_range(lo, lo + 365 * DAY);
        want[i] = voc_calendar_add(cal, starts[i], 24 * HOUR);
    }
    pthread_t tid[4];
    struct thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (struct thread_job){cal, starts, want, 0};
        ck_assert_int_eq(pthread_create(&tid[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(tid[t], NULL);
        ck_assert_int_eq(jobs[t].mismatches, 0);
    }
    voc_calendar_free(cal);
}
END_TEST

static Suite *calendar_suite(void)
{
    Suite *s = suite_create("calendar");
    TCase *tc = tcase_create("fixed");
    tcase_add_test(tc, weekend_skip);
    tcase_add_test(tc, holiday_skip);
    tcase_add_test(tc, makeup_saturday);
    tcase_add_test(tc, lunch_break);
    tcase_add_test(tc, boundaries);
    tcase_add_test(tc, holiday_at_night);
    tcase_add_test(tc, always_24x7);
    tcase_add_test(tc, between_matches_add);
    tcase_add_test(tc, dst_berlin_spring);
    tcase_add_test(tc, dst_berlin_autumn);
    tcase_add_test(tc, long_target);
    tcase_add_test(tc, before_1970);
    tcase_add_test(tc, far_away_and_never);
    tcase_add_test(tc, weekday_keys);
    tcase_add_loop_test(tc, invalid_specs, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    suite_add_tcase(s, tc);

    TCase *prop = tcase_create("property");
    tcase_set_timeout(prop, 120);
    tcase_add_test(prop, property_shanghai);
    tcase_add_test(prop, property_berlin);
    tcase_add_test(prop, property_other_zones);
    tcase_add_test(prop, shared_between_threads);
    suite_add_tcase(s, prop);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(calendar_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
