/* Time as int64 microseconds since the Unix epoch (UTC), and its text forms.
 * The clock is injectable so tests of deadlines do not have to sleep. */
#ifndef VOC_TIMEUTIL_H
#define VOC_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define VOC_US_PER_S INT64_C(1000000)

/* Now, from the injected clock if one is set, else CLOCK_REALTIME. */
int64_t voc_now_us(void);
/* Tests: make voc_now_us() return fn(arg). NULL restores the real clock. */
void voc_set_clock(int64_t (*fn)(void *arg), void *arg);

/* "2026-11-23T01:15:00.123Z" into buf (at least 32 bytes). */
void voc_format_time(int64_t us, char *buf, size_t len);
/* RFC 3339 ("2026-11-23T09:15:00+08:00", "...Z", fractions allowed, 'T' or ' ') or a bare
 * date "2026-11-23" (midnight UTC). Returns 0 or -1. */
int voc_parse_time(const char *text, int64_t *us);

#endif
