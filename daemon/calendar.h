/* Business calendars: when working time runs, so SLA clocks can count in working time.
 *
 * A calendar is a time zone, working hours per weekday (local wall-clock ranges), holidays
 * (no work that day) and make-up working days (调休). voc_calendar_add() finds the instant at
 * which a target of working time has elapsed; voc_calendar_working_between() measures the
 * working time between two instants (pauses, share of the target used). docs/calendars.md
 * has the YAML form and the rules.
 *
 * All instants are int64 microseconds since the Unix epoch, UTC. A calendar is immutable
 * once built, so any number of threads may use one at the same time without locking; the
 * calls never allocate.
 *
 * Daylight saving: working hours are wall-clock times. A wall-clock time that does not exist
 * (inside a spring-forward gap) means the moment the clocks jump; one that happens twice
 * (fall-back) means its first occurrence. An 00:00-24:00 day therefore has 23 h or 25 h.
 *
 * Limits: instants are clamped to [1900-01-01, 10000-01-01) UTC. Offset changes are taken
 * from the system's tz database for 1900..2199; outside that window the offset in force at
 * its edge is used (no DST).
 */
#ifndef VOC_CALENDAR_H
#define VOC_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

/* Name of the built-in calendar that is always working; no configured calendar may use it. */
#define VOC_CALENDAR_24X7 "24x7"
/* At most this many working-hour ranges per day ("08:30-12:00,13:00-17:30" is 2). */
#define VOC_CALENDAR_MAX_RANGES 32
/* voc_calendar_add() gives up when the target is not reached within this many calendar days
 * (10 years) after the start, and returns INT64_MAX ("never"). */
#define VOC_CALENDAR_HORIZON_DAYS 3653

struct voc_calendar;

/* Days of the week as indices into voc_calendar_spec.hours. */
enum voc_weekday { VOC_MON, VOC_TUE, VOC_WED, VOC_THU, VOC_FRI, VOC_SAT, VOC_SUN };

/* A calendar as written in the config (`calendars:` in CONTRACT.md). Plain borrowed data:
 * voc_calendar_new() copies what it keeps, so the caller may free the spec right after. */
struct voc_calendar_spec {
    const char *name;                /* config key, e.g. "workdays" */
    const char *time_zone;           /* IANA name, e.g. "Asia/Shanghai" */
    const char *hours[7];            /* by enum voc_weekday: "09:00-18:00", several ranges
                                        separated by commas, "00:00-24:00" for the whole
                                        day; NULL = not a working day */
    const char *extra_workday_hours; /* hours of make-up days; NULL = Monday's hours, else
                                        those of the first weekday that has hours */
    const char *const *holidays;     /* "YYYY-MM-DD": no work that day */
    size_t holiday_count;
    const char *const *extra_workdays; /* "YYYY-MM-DD": a working day whatever its weekday */
    size_t extra_workday_count;
};

/* "mon".."sun" (the YAML keys of `hours`) to enum voc_weekday; -1 for anything else. */
int voc_calendar_weekday_parse(const char *key);

/* Validate `spec` and build the calendar. On error returns -1, leaves *out untouched and
 * writes one message to err (e.g. `calendar "workdays": hours.mon: range 18:00-09:00 ends
 * before it starts ...`) that the caller prefixes with file:line. Returns 0 on success. */
int voc_calendar_new(const struct voc_calendar_spec *spec, struct voc_calendar **out, char *err,
                     size_t errlen);

/* Free a calendar from voc_calendar_new(). NULL and the built-in 24x7 calendar are ignored. */
void voc_calendar_free(struct voc_calendar *cal);

/* The built-in calendar "24x7": always working. Static, never freed. */
const struct voc_calendar *voc_calendar_24x7(void);

const char *voc_calendar_name(const struct voc_calendar *cal);
/* The zone identifier as configured ("UTC" for 24x7). */
const char *voc_calendar_time_zone(const struct voc_calendar *cal);

/* The instant at which `working_us` of working time has elapsed after `start_us`. A start
 * outside working time counts from the next working moment; a target that ends exactly at
 * the end of a working range gives that end (Fri 17:00 + 1 h = Fri 18:00, not Monday).
 * working_us <= 0 gives the first working moment at or after start. Returns INT64_MAX when
 * the target is not reached within VOC_CALENDAR_HORIZON_DAYS, or would end after 9999. */
int64_t voc_calendar_add(const struct voc_calendar *cal, int64_t start_us, int64_t working_us);

/* Working time in [from_us, to_us); 0 when to_us <= from_us. For any start and target t
 * whose result is finite: working_between(start, add(start, t)) == t. */
int64_t voc_calendar_working_between(const struct voc_calendar *cal, int64_t from_us,
                                     int64_t to_us);

#endif
