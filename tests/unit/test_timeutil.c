/* Time parsing and formatting (daemon/timeutil.[ch]). The oracle for random dates is
 * glibc's timegm(), which shares no code with the parser. */
#include "timeutil.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * VOC_US_PER_S;
}

static int64_t parse_ok(const char *text)
{
    int64_t us = 0;
    ck_assert_msg(voc_parse_time(text, &us) == 0, "'%s' should parse", text);
    return us;
}

#define assert_parses_to(text, want)                                                               \
    do {                                                                                           \
        int64_t got_ = parse_ok(text);                                                             \
        ck_assert_msg(got_ == (want), "'%s' -> %" PRId64 ", want %" PRId64, text, got_,            \
                      (int64_t)(want));                                                            \
    } while (0)

START_TEST(offsets)
{
    int64_t z = utc(2026, 11, 23, 1, 15, 0);
    assert_parses_to("2026-11-23T01:15:00Z", z);
    assert_parses_to("2026-11-23T09:15:00+08:00", z);
    assert_parses_to("2026-11-22T20:15:00-05:00", z);
    assert_parses_to("2026-11-23T06:45:00+05:30", z);
    assert_parses_to("2026-11-23T01:15:00+00:00", z);
    assert_parses_to("2026-11-23T01:15:00-00:00", z);
    assert_parses_to("2026-11-23t01:15:00z", z);
    assert_parses_to("2026-11-23 09:15:00+08:00", z);
    /* The offset crosses the date line backwards. */
    assert_parses_to("2026-01-01T07:59:59+08:00", utc(2025, 12, 31, 23, 59, 59));
    assert_parses_to("2026-11-23T00:00:00+23:59", utc(2026, 11, 22, 0, 1, 0));
}
END_TEST

START_TEST(fractions)
{
    int64_t base = utc(2026, 11, 23, 1, 15, 0);
    assert_parses_to("2026-11-23T01:15:00.123Z", base + 123000);
    assert_parses_to("2026-11-23T01:15:00.1Z", base + 100000);
    assert_parses_to("2026-11-23T01:15:00.000001Z", base + 1);
    assert_parses_to("2026-11-23T01:15:00.123456Z", base + 123456);
    /* Beyond microseconds the digits are accepted and dropped. */
    assert_parses_to("2026-11-23T01:15:00.123456789Z", base + 123456);
    assert_parses_to("2026-11-23T09:15:00.5+08:00", base + 500000);
    int64_t us;
    ck_assert_int_eq(voc_parse_time("2026-11-23T01:15:00.Z", &us), -1);
    ck_assert_int_eq(voc_parse_time("2026-11-23T01:15:00.", &us), -1);
}
END_TEST

START_TEST(bare_dates)
{
    assert_parses_to("2026-11-23", utc(2026, 11, 23, 0, 0, 0));
    assert_parses_to("1970-01-01", 0);
    assert_parses_to("2000-02-29", utc(2000, 2, 29, 0, 0, 0));
    assert_parses_to("1969-12-31", -86400 * VOC_US_PER_S);
}
END_TEST

START_TEST(leap_years)
{
    assert_parses_to("2024-02-29T12:00:00Z", utc(2024, 2, 29, 12, 0, 0));
    assert_parses_to("2000-02-29T00:00:00Z", utc(2000, 2, 29, 0, 0, 0));
    assert_parses_to("2400-02-29", utc(2400, 2, 29, 0, 0, 0));
    static const char *const bad[] = {"2026-02-29", "1900-02-29", "2100-02-29",
                                      "2026-02-29T00:00:00Z", "2023-02-29T12:00:00+08:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = 12345;
        ck_assert_msg(voc_parse_time(bad[i], &us) == -1, "'%s' is not a date", bad[i]);
        ck_assert_msg(us == 12345, "'%s' wrote the output although it failed", bad[i]);
    }
    /* The day after 28 February is 1 March in a common year. */
    ck_assert_int_eq(parse_ok("2026-03-01") - parse_ok("2026-02-28"), 86400 * VOC_US_PER_S);
    ck_assert_int_eq(parse_ok("2024-03-01") - parse_ok("2024-02-28"), 2 * 86400 * VOC_US_PER_S);
}
END_TEST

START_TEST(leap_second_folds_forward)
{
    assert_parses_to("2016-12-31T23:59:60Z", utc(2017, 1, 1, 0, 0, 0));
}
END_TEST

START_TEST(invalid)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11",
        "2026-1-23",
        "2026-11-3",
        "26-11-23",
        "2026/11/23",
        "2026-13-01",
        "2026-00-10",
        "2026-11-00",
        "2026-11-31",
        "2026-04-31",
        "2026-11-23T",
        "2026-11-23T09:15",
        "2026-11-23T09:15:00", /* no offset: local time is ambiguous */
        "2026-11-23T24:00:00Z",
        "2026-11-23T09:60:00Z",
        "2026-11-23T09:15:61Z",
        "2026-11-23T9:15:00Z",
        "2026-11-23T09:15:00+08",
        "2026-11-23T09:15:00+0800",
        "2026-11-23T09:15:00+24:00",
        "2026-11-23T09:15:00+08:60",
        "2026-11-23T09:15:00Zjunk",
        "2026-11-23T09:15:00+08:00 ",
        "2026-11-23 ",
        "2026-11-23x",
        "2026-11-23X09:15:00Z",
        " 2026-11-23",
        "abcd-ef-gh",
        "now",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        ck_assert_msg(voc_parse_time(bad[i], &us) == -1, "'%s' should be refused", bad[i]);
    }
}
END_TEST

START_TEST(format)
{
    char buf[40];
    voc_format_time(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    voc_format_time(utc(2026, 11, 23, 1, 15, 0) + 123456, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-11-23T01:15:00.123Z"); /* milliseconds, truncated */
    voc_format_time(utc(2026, 11, 23, 1, 15, 0) + 999999, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-11-23T01:15:00.999Z");
    voc_format_time(-1, buf, sizeof buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    voc_format_time(-VOC_US_PER_S, buf, sizeof buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.000Z");
    voc_format_time(utc(2024, 2, 29, 23, 59, 59), buf, sizeof buf);
    ck_assert_str_eq(buf, "2024-02-29T23:59:59.000Z");
    /* A short buffer is cut, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    voc_format_time(0, small, sizeof small);
    ck_assert_str_eq(small, "1970-01");
}
END_TEST

static uint64_t rng_state = 2026;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* format -> parse gives the instant back (to the millisecond), and parsing random local
 * times with random offsets agrees with timegm(). */
START_TEST(round_trips)
{
    int64_t lo = 0, hi = utc(2100, 1, 1, 0, 0, 0);
    for (int i = 0; i < 20000; i++) {
        int64_t us = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
        char buf[40];
        voc_format_time(us, buf, sizeof buf);
        int64_t back = parse_ok(buf);
        ck_assert_msg(back == us - us % 1000, "%" PRId64 " -> %s -> %" PRId64, us, buf, back);
    }
    for (int i = 0; i < 20000; i++) {
        int y = 1970 + (int)(rng() % 130), mo = 1 + (int)(rng() % 12), d = 1 + (int)(rng() % 28);
        int h = (int)(rng() % 24), mi = (int)(rng() % 60), s = (int)(rng() % 60);
        int off_min = (int)(rng() % (2 * 14 * 60 + 1)) - 14 * 60;
        int ms = (int)(rng() % 1000);
        char text[64];
        snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", y, mo, d, h,
                 mi, s, ms, off_min < 0 ? '-' : '+', abs(off_min) / 60, abs(off_min) % 60);
        int64_t want = utc(y, mo, d, h, mi, s) + ms * 1000 - off_min * 60 * VOC_US_PER_S;
        assert_parses_to(text, want);
    }
}
END_TEST

static int64_t fixed_clock(void *arg)
{
    return *(int64_t *)arg;
}

START_TEST(injected_clock)
{
    int64_t t = utc(2026, 11, 23, 1, 15, 0);
    voc_set_clock(fixed_clock, &t);
    ck_assert_int_eq(voc_now_us(), t);
    t += 5 * VOC_US_PER_S;
    ck_assert_int_eq(voc_now_us(), t);
    voc_set_clock(NULL, NULL);
    int64_t real = voc_now_us();
    int64_t sys = (int64_t)time(NULL) * VOC_US_PER_S;
    ck_assert_msg(real > sys - 5 * VOC_US_PER_S && real < sys + 5 * VOC_US_PER_S,
                  "the real clock is back");
}
END_TEST

static Suite *timeutil_suite(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("timeutil");
    tcase_add_test(tc, offsets);
    tcase_add_test(tc, fractions);
    tcase_add_test(tc, bare_dates);
    tcase_add_test(tc, leap_years);
    tcase_add_test(tc, leap_second_folds_forward);
    tcase_add_test(tc, invalid);
    tcase_add_test(tc, format);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, injected_clock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(timeutil_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
