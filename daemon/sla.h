/* SLA clocks (CONTRACT.md "Lua profile", `clocks`).
 *
 * A clock starts at one event type and stops at another, counts working time on a calendar,
 * warns at a fraction of its target and breaches at the target. It pauses while the case is
 * waiting for the customer; `reopened` starts a new cycle of the clocks declared with
 * `reopen = true`; earlier cycles stay in the case's history.
 *
 * Clocks live in the case record ("clocks" array, in start order, never removed) and are
 * changed only inside the writer's transaction that appends the event moving them. Every
 * pending warning and breach has a key in VOC_DB_DEADLINES, ordered by due time, so the
 * event loop needs one timer (for the first key) however many clocks run, and a restart
 * simply finds what fell due while vocd was down. Firing deletes the key and records the
 * clock_warning / clock_breached event in one transaction: exactly once.
 *
 * All functions run on the writer thread inside a write transaction, except
 * voc_sla_next_deadline and voc_sla_list_alerts / voc_sla_open_counts (any transaction). */
#ifndef VOC_SLA_H
#define VOC_SLA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct voc_policy;

enum voc_deadline_kind { VOC_DEADLINE_WARNING = 1, VOC_DEADLINE_BREACH = 2 };

struct voc_deadline {
    int64_t due_us;
    uint64_t case_id;
    uint16_t clock; /* index in the case's clocks array */
    enum voc_deadline_kind kind;
};

/* The case being changed. */
struct voc_sla_case {
    struct voc_txn *txn;
    const struct voc_policy *policy;
    json_t *record;
    int64_t now_us;
    /* Builds the case view a target function gets (called only when one is needed);
     * returns a new reference. */
    json_t *(*view)(void *arg);
    void *view_arg;
};

/* After an event of `type` was appended to the case: pause/resume, stop, start and
 * re-cycle its clocks, and keep the deadline index in step. Returns 0 or -1 (store error,
 * sticky on the txn). A failing target function is logged; that clock runs without a
 * deadline and the case gets the rule_error tag. */
int voc_sla_apply_event(struct voc_sla_case *c, const char *type);

/* Up to `max` deadlines due at or before now_us, earliest first. */
int voc_sla_due(struct voc_txn *txn, int64_t now_us, struct voc_deadline *out, size_t max,
                size_t *count);

/* Fire deadline d on its (loaded) case: returns 1 and sets *status ("warning" or
 * "breached") and *clock (borrowed, in c->record) when it fired; 0 when the deadline was
 * stale (the clock stopped or moved; the key is removed either way); -1 on store error. */
int voc_sla_fire(struct voc_sla_case *c, const struct voc_deadline *d, const char **status,
                 json_t **clock);

/* Remove a deadline key without firing it (its case is gone). */
int voc_sla_drop(struct voc_txn *txn, const struct voc_deadline *d);

/* The first pending deadline (INT64_MAX when none). */
int64_t voc_sla_next_deadline(struct voc_txn *txn);

/* An entry of the alerts index, or where a listing of it goes on. */
struct voc_alert_pos {
    int64_t due_us;
    uint64_t case_id;
    uint16_t clock;
};

/* Clocks in warning or breached, earliest due first, from `from` on (inclusive; NULL = the
 * first): fn(case_id, clock index, due_us, arg) returns 0 to go on, 1 to stop. */
int voc_sla_list_alerts(struct voc_txn *txn, const struct voc_alert_pos *from,
                        int (*fn)(uint64_t case_id, uint16_t clock, int64_t due_us, void *arg),
                        void *arg);
/* The opaque cursor text of a position (GET /api/v1/breaches `next_cursor`), and back:
 * parse returns 0, or -1 for text this server did not give out. */
void voc_sla_alert_cursor_format(const struct voc_alert_pos *pos, char *buf, size_t len);
int voc_sla_alert_cursor_parse(const char *text, struct voc_alert_pos *pos);

/* The largest clock target accepted: ten years. The target becomes integer microseconds;
 * anything near the range of int64_t would overflow (undefined behaviour), and a target of
 * centuries is a mistake in the profile, not a service level. */
#define VOC_SLA_MAX_TARGET_S (10 * 365.25 * 86400.0)
/* Is `target_s` a usable clock target (positive, finite, at most VOC_SLA_MAX_TARGET_S)?
 * When not, a message saying why goes to msg. */
bool voc_sla_target_ok(double target_s, char *msg, size_t msglen);

/* Open (not stopped) clocks by status: running, paused, warning, breached. */
struct voc_sla_counts {
    int64_t running, paused, warning, breached;
};
int voc_sla_open_counts(struct voc_txn *txn, struct voc_sla_counts *counts);

/* Strip internal bookkeeping from a copy of the clocks array for the API. New reference. */
json_t *voc_sla_clocks_view(const json_t *clocks, int64_t now_us);

/* Register the SLA metrics (breaches by clock name, time to stop). */
void voc_sla_metrics_init(void);

#endif
