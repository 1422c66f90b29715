/* How much voc_calendar_add / voc_calendar_working_between cost per call, for sizing the
 * start-up work of a million SLA clocks. Starts are random instants over a year (precomputed,
 * so the generator is not timed); each call is independent, like recomputing every clock. */
#include "calendar.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HOUR_US (INT64_C(3600) * 1000000)

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 42;

static uint64_t next(void)
{
    uint64_t z = (rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int run(const char *label, const struct voc_calendar_spec *spec, size_t n,
               const int64_t *starts)
{
    char err[256];
    struct voc_calendar *cal = NULL;
    double t0 = now_ns();
    if (voc_calendar_new(spec, &cal, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double t1 = now_ns();
    static const int64_t targets[] = {2 * HOUR_US, 24 * HOUR_US, 72 * HOUR_US, 720 * HOUR_US};
    printf("%-28s build %8.1f us\n", label, (t1 - t0) / 1e3);
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        int64_t sum = 0;
        double a0 = now_ns();
        for (size_t i = 0; i < n; i++)
            sum += voc_calendar_add(cal, starts[i], targets[k]) & 0xff;
        double a1 = now_ns();
        for (size_t i = 0; i < n; i++)
            sum += voc_calendar_working_between(cal, starts[i], starts[i] + targets[k]) & 0xff;
        double a2 = now_ns();
        printf("  target %4" PRId64 " h: add %7.1f ns/op   working_between %7.1f ns/op  (%" PRId64
               ")\n",
               targets[k] / HOUR_US, (a1 - a0) / (double)n, (a2 - a1) / (double)n, sum);
    }
    voc_calendar_free(cal);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n == 0)
        n = 1;
    int64_t *starts = malloc(n * sizeof *starts);
    if (!starts)
        return 1;
    const int64_t y2026 = INT64_C(1767225600) * 1000000; /* 2026-01-01T00:00:00Z */
    const int64_t year = INT64_C(365) * 24 * HOUR_US;
    for (size_t i = 0; i < n; i++)
        starts[i] = y2026 + (int64_t)(next() % (uint64_t)year);

    static const char *const hol[] = {"2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18",
                                      "2026-02-19", "2026-02-20", "2026-10-01", "2026-10-02",
                                      "2026-10-05", "2026-10-06", "2026-10-07"};
    static const char *const extra[] = {"2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"};
    const char *h = "09:00-18:00";
    struct voc_calendar_spec sh = {
        .name = "workdays",
        .time_zone = "Asia/Shanghai",
        .hours = {h, h, h, h, h},
        .holidays = hol,
        .holiday_count = sizeof hol / sizeof hol[0],
        .extra_workdays = extra,
        .extra_workday_count = sizeof extra / sizeof extra[0],
    };
    struct voc_calendar_spec be = {
        .name = "office-berlin",
        .time_zone = "Europe/Berlin",
        .hours = {"08:30-12:00,13:00-17:30", "08:30-12:00,13:00-17:30", "08:30-12:00,13:00-17:30",
                  "08:30-12:00,13:00-17:30", "08:30-12:00,13:00-17:30"},
    };
    printf("%zu random starts in 2026\n", n);
    int rc = run("Asia/Shanghai 09-18 Mon-Fri", &sh, n, starts) ||
             run("Europe/Berlin lunch Mon-Fri", &be, n, starts);
    free(starts);
    return rc ? 1 : 0;
}
