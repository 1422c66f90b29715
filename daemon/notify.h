/* Notification delivery: sends what the profile's notify actions put in the outbox.
 *
 * The outbox (VOC_DB_OUTBOX, id -> JSON) is written by case_ops.c in the same transaction
 * as the event that raised the notification; VOC_DB_OUTBOX_DUE lists the pending ones by
 * their next attempt. This module reads due entries on the event loop, sends them (webhook
 * and e-mail through libcurl's multi interface, log as a log line) and records every outcome
 * through a writer job — never from the loop thread:
 *   delivered (2xx / SMTP accepted / logged)  -> status "sent", the due key goes
 *   failed attempt                            -> attempts+1, last_error, next attempt after a
 *                                                backoff (notify_format.h); when that would
 *                                                fall after created_at + the notifier's
 *                                                expire: status "failed"
 *   notifier unknown (typo, removed by reload) -> status "failed" at once
 * Delivery is at-least-once: a crash between the receiver's 2xx and the status write sends
 * the notification again, with the same Idempotency-Key (docs/notifications.md). */
#ifndef VOC_NOTIFY_H
#define VOC_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct voc_config;
struct voc_notify;
struct voc_store;
struct voc_txn;
struct voc_writer;

/* Copy the notifiers of cfg, register the metrics, and look at the outbox at the next turn
 * of the loop (what fell due while vocd was down goes out now). Returns 0 or -1. */
int voc_notify_start(struct voc_notify **out, struct event_base *base, struct voc_store *store,
                     struct voc_writer *writer, const struct voc_config *cfg);
/* Take the notifiers of a new (validated) config. Attempts under way finish with the
 * settings they started with. */
void voc_notify_reload(struct voc_notify *n, const struct voc_config *cfg);
/* Something was committed (the daemon's after-batch hook): look for due entries soon.
 * Cheap; several calls in one loop turn cost one outbox scan. NULL is fine. */
void voc_notify_wake(struct voc_notify *n);
/* Draining (SIGTERM): start nothing new; attempts under way finish and are recorded. */
void voc_notify_drain(struct voc_notify *n);
/* Nothing under way (no transfer, no outcome waiting for the writer). NULL = idle. */
bool voc_notify_idle(const struct voc_notify *n);
/* Before the writer stops: abort transfers still running (their entries stay pending and
 * are sent again after the restart), hand finished outcomes to the writer, stop timers. */
void voc_notify_stop(struct voc_notify *n);
/* After the writer stopped (its last done() callbacks may still reach this module). */
void voc_notify_free(struct voc_notify *n);

/* Writer thread: put `entry` (an object holding at least "notifier" and "message", and for
 * e-mail notifiers optionally "to" [addresses], "text" and "in_reply_to") into the outbox as
 * a pending notification about case_id (event_seq 0 = none), due at now_us. The id, the
 * case, the status and the times are filled in here. Returns 0 (*id_out set when not NULL)
 * or an LMDB error (also sticky on txn). */
int voc_notify_outbox_put(struct voc_txn *txn, int64_t now_us, uint64_t case_id, uint32_t event_seq,
                          json_t *entry, uint64_t *id_out);

#endif
