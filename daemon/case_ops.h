/* The writes a case can receive — create it, append an event — as writer jobs, with the
 * lifecycle, the profile's hooks (classify, guard, on_event) and its actions applied inside
 * the same transaction. HTTP handlers and channel plugins both come through here, and both
 * learn the outcome through the same callback (struct voc_submit_result, <vocd/plugin.h>). */
#ifndef VOC_CASE_OPS_H
#define VOC_CASE_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <vocd/plugin.h>

struct voc_writer;

/* Who asks, for the record and for the agent role's department fence. */
struct voc_actor {
    const char *name;               /* shown as the event's actor */
    const char *const *departments; /* non-NULL: may only touch cases of these departments */
    size_t department_count;
};

/* Queue creation of a case from a validated intake record (voc_intake_validate; the
 * reference is taken). `state_owner` namespaces opts->state_key (the plugin's name).
 * Returns 0 (cb will be called once, on the event loop) or -1 when the writer is full
 * (nothing queued, cb not called, intake released). */
int voc_ops_create_case(struct voc_writer *w, json_t *intake, const struct voc_actor *actor,
                        const struct voc_submit_opts *opts, const char *state_owner,
                        voc_submit_cb cb, void *arg);

/* Queue an event (voc_event_validate output; reference taken) for case_id. With `ref`,
 * (channel, ref) is recorded in the same transaction and a repeat answers EXISTS. */
int voc_ops_append_event(struct voc_writer *w, uint64_t case_id, json_t *event,
                         const struct voc_actor *actor, const char *channel, const char *ref,
                         voc_submit_cb cb, void *arg);

/* Queue a write or delete (value NULL) of a plugin state key. */
int voc_ops_set_state(struct voc_writer *w, const char *owner, const char *key,
                      const void *value, size_t len, voc_submit_cb cb, void *arg);

/* Queue a job that fires every SLA deadline due now (up to a batch; `more` tells that
 * another job should follow). done runs on the event loop. */
int voc_ops_fire_clocks(struct voc_writer *w, void (*done)(void *arg, size_t fired, bool more),
                        void *arg);

/* The classification used when there is no profile. New reference. */
json_t *voc_ops_default_classification(void);

/* Plugin state key in VOC_DB_PLUGIN_STATE: owner\0key\0. */
struct voc_key;
void voc_ops_state_key(struct voc_key *k, const char *owner, const char *key);

/* Register the metrics this module updates (call once at start-up). */
void voc_ops_metrics_init(void);

#endif
