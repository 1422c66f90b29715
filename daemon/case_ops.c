#include "case_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "case_view.h"
#include "casedb.h"
#include "jsonutil.h"
#include "intake.h"
#include "keys.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "timeutil.h"
#include "writer.h"

/* Actions may append events whose on_event returns more actions: bound the chain so a
 * profile that keeps answering itself cannot loop inside a write transaction. */
#define MAX_ACTION_DEPTH 8
/* The depth alone still allows 64 actions per hook to the 8th power. What the actions of one
 * top-level write (a new case, a posted event, the case a fired deadline belongs to) may do in
 * all is bounded too; beyond it the rest is dropped, logged once, and the case tagged
 * rule_error. Tags added by actions stop at MAX_CASE_TAGS per case (rule_error itself always
 * goes in). */
#define MAX_JOB_ACTIONS 256
#define MAX_JOB_ACTION_BYTES ((size_t)4 << 20)
#define MAX_CASE_TAGS 64

enum op_kind { OP_CREATE, OP_EVENT, OP_STATE, OP_FIRE };

/* Deadlines fired per job: a backlog after downtime is worked off in several batches. */
#define FIRE_BATCH 256

struct op_job {
    struct voc_job base;
    enum op_kind kind;
    json_t *input; /* intake record or event */
    char *actor;
    char **departments;
    size_t department_count;
    char *channel; /* OP_EVENT: namespace of ref */
    char *ref;
    char **refs; /* OP_CREATE: extra references */
    size_t ref_count;
    char *state_owner;
    char *state_key;
    void *state_value;
    size_t state_len;
    bool state_delete;
    voc_submit_cb cb;
    void *arg;
    void (*fire_cb)(void *arg, size_t fired, bool more);
    /* results of the last run() */
    size_t fired;
    bool more;
    uint64_t case_id;
    uint32_t seq;
    enum voc_submit_status status;
};

/* One case being changed inside a job. */
struct case_work {
    struct voc_write_ctx *ctx;
    struct op_job *job;
    json_t *old;    /* the record as stored (NULL for a new case) */
    json_t *record; /* the record being built */
    json_t *events; /* every event so far, for hooks */
    /* A new case's `received` has not moved the clocks yet: that waits for the
     * classification (or any earlier event), so a clock started at `received` gets a target
     * function that can see the severity. */
    bool received_sla_pending;
    /* Spent by actions in this top-level write (see MAX_JOB_ACTIONS). */
    size_t actions;
    size_t action_bytes;
    bool actions_capped;
    bool tags_capped;
    bool depth_capped;
};

static struct voc_metric *m_created, *m_existing, *m_events, *m_refused, *m_actions;

void voc_ops_metrics_init(void)
{
    m_created = voc_metric_register("vocd_cases_created_total", NULL, VOC_METRIC_COUNTER,
                                    "Cases created");
    m_existing = voc_metric_register("vocd_cases_idempotent_total", NULL, VOC_METRIC_COUNTER,
                                     "Submissions answered with an existing case "
                                     "(same channel + external_id)");
    m_events = voc_metric_register("vocd_events_appended_total", NULL, VOC_METRIC_COUNTER,
                                   "Events appended to cases (all types)");
    m_refused = voc_metric_register("vocd_writes_refused_total", NULL, VOC_METRIC_COUNTER,
                                    "Writes refused by validation, lifecycle or a guard");
    m_actions = voc_metric_register("vocd_rule_actions_total", NULL, VOC_METRIC_COUNTER,
                                    "Actions returned by on_event hooks and carried out");
}

json_t *voc_ops_default_classification(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[], s:i, s:[]}", "kind", "opinion", "category",
                     "other", "severity", "normal", "department", "", "collaborators",
                     "priority", 3, "tags");
}

void voc_ops_state_key(struct voc_key *k, const char *owner, const char *key)
{
    voc_key_init(k);
    voc_key_str(k, owner);
    voc_key_str(k, key);
}

static struct voc_rules *rules_of(const struct voc_write_ctx *ctx)
{
    return ctx->policy ? ctx->policy->rules : NULL;
}

static void now_string(struct voc_write_ctx *ctx, char *buf, size_t len)
{
    voc_format_time(ctx->now_us, buf, len);
}

static bool profile_type(const char *type, void *arg)
{
    struct voc_rules *rules = arg;
    return rules && voc_rules_has_event_type(rules, type);
}

static enum voc_state record_state(const json_t *record, enum voc_state *before_wait)
{
    enum voc_state s = VOC_STATE_NEW, b = VOC_STATE_NEW;
    const char *name = voc_json_str(record, "state");
    if (name)
        voc_state_parse(name, &s);
    name = voc_json_str(record, "before_wait");
    if (name)
        voc_state_parse(name, &b);
    *before_wait = b;
    return s;
}

static bool in_departments(const struct op_job *job, const json_t *record)
{
    if (!job->departments)
        return true;
    json_t *c = json_object_get(record, "classification");
    const char *dept = voc_json_str(c, "department");
    for (size_t i = 0; i < job->department_count; i++) {
        if (dept && strcmp(dept, job->departments[i]) == 0)
            return true;
        size_t k;
        json_t *collab;
        json_array_foreach(json_object_get(c, "collaborators"), k, collab)
            if (strcmp(json_string_value(collab), job->departments[i]) == 0)
                return true;
    }
    return false;
}

static void add_tag(json_t *record, const char *tag)
{
    json_t *c = json_object_get(record, "classification");
    if (!json_is_object(c)) {
        /* on_event of `received` runs before the case is classified: the tag waits on a
         * default classification, and classify_new_case carries it over. */
        c = voc_ops_default_classification();
        json_object_set_new(record, "classification", c);
    }
    json_t *tags = json_object_get(c, "tags");
    if (!tags) {
        tags = json_array();
        json_object_set_new(c, "tags", tags);
    }
    voc_json_list_add(tags, tag);
}

/* Bytes of text (strings and field names) in an action: what it may add to the case. */
static size_t text_bytes(const json_t *v)
{
    size_t n = 0;
    if (json_is_string(v))
        return json_string_length(v);
    if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item)
            n += strlen(key) + text_bytes(item);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
            n += text_bytes(item);
    }
    return n;
}

static void rule_warning(struct case_work *w, const char *what)
{
    struct voc_rules *rules = rules_of(w->ctx);
    voc_warn("rules", "%s case=%lld profile=%s", what, voc_json_int(w->record, "id", 0),
             rules ? voc_rules_path(rules) : "-");
    add_tag(w->record, "rule_error");
}

/* May one more action of `bytes` bytes be carried out in this write? */
static bool action_allowed(struct case_work *w, size_t bytes)
{
    if (w->actions < MAX_JOB_ACTIONS && w->action_bytes + bytes <= MAX_JOB_ACTION_BYTES) {
        w->actions++;
        w->action_bytes += bytes;
        return true;
    }
    if (!w->actions_capped) {
        w->actions_capped = true;
        char what[160];
        snprintf(what, sizeof what,
                 "actions stopped: more than %d actions or %d MiB of action data in one write "
                 "(do the profile's actions trigger each other?)",
                 MAX_JOB_ACTIONS, (int)(MAX_JOB_ACTION_BYTES >> 20));
        rule_warning(w, what);
    }
    return false;
}

/* A tag from an action, up to MAX_CASE_TAGS per case. */
static void add_action_tag(struct case_work *w, const char *tag)
{
    json_t *tags = json_object_get(json_object_get(w->record, "classification"), "tags");
    if (voc_json_list_has(tags, tag))
        return;
    if (json_array_size(tags) < MAX_CASE_TAGS) {
        add_tag(w->record, tag);
        return;
    }
    if (!w->tags_capped) {
        w->tags_capped = true;
        char what[96];
        snprintf(what, sizeof what, "tag dropped: the case has %d tags already", MAX_CASE_TAGS);
        rule_warning(w, what);
    }
}

/* Queue a notification in the outbox; delivery is the notifier's job. */
static int queue_notification(struct case_work *w, const char *notifier, const char *message,
                              uint32_t seq)
{
    json_t *entry = json_pack("{s:s, s:s}", "notifier", notifier, "message", message);
    if (!entry)
        return ENOMEM;
    int rc = voc_notify_outbox_put(w->ctx->txn, w->ctx->now_us,
                                   (uint64_t)voc_json_int(w->record, "id", 0), seq, entry, NULL);
    json_decref(entry);
    return rc;
}

static int append_event(struct case_work *w, json_t *event, int depth, struct voc_err *err);

/* Carry out the actions a hook returned (already validated by the rules engine). A refused
 * action is logged and skipped: the event that triggered it stands. */
static void apply_actions(struct case_work *w, json_t *actions, uint32_t seq, int depth)
{
    size_t i;
    json_t *a;
    uint64_t id = (uint64_t)voc_json_int(w->record, "id", 0);
    json_array_foreach(actions, i, a)
    {
        if (!action_allowed(w, text_bytes(a)))
            return;
        voc_metric_add(m_actions, 1);
        const char *tag = voc_json_str(a, "tag");
        const char *type = voc_json_str(a, "event");
        const char *notify = voc_json_str(a, "notify");
        if (tag) {
            add_action_tag(w, tag);
        } else if (notify && !voc_policy_has_notifier(w->ctx->policy, notify)) {
            /* A typo in the profile: better found now, on the case, than as an outbox entry
             * that can never be delivered. */
            char what[200];
            snprintf(what, sizeof what, "notify action names no configured notifier '%.100s'",
                     notify);
            rule_warning(w, what);
        } else if (notify) {
            const char *message = voc_json_str(a, "message");
            if (queue_notification(w, notify, message ? message : "", seq) != 0)
                return; /* store error: sticky on the txn, the job fails as a whole */
        } else if (type) {
            if (depth >= MAX_ACTION_DEPTH) {
                if (!w->depth_capped) {
                    w->depth_capped = true;
                    char what[160];
                    snprintf(what, sizeof what,
                             "action chain deeper than %d: events dropped (first type=%s)",
                             MAX_ACTION_DEPTH, type);
                    rule_warning(w, what);
                }
                continue;
            }
            json_t *body = json_pack("{s:s, s:s}", "type", type, "actor", "rules");
            json_t *data = json_object_get(a, "data");
            json_t *note = json_object_get(a, "note");
            if (data)
                json_object_set(body, "data", data);
            if (note)
                json_object_set(body, "note", note);
            json_t *event = NULL;
            struct voc_err e = {0};
            if (voc_event_validate(body, profile_type, rules_of(w->ctx), &event, &e) == 0 &&
                append_event(w, event, depth + 1, &e) == 0) {
                json_decref(event);
            } else {
                json_decref(event);
                if (w->ctx->txn->error) {
                    json_decref(body);
                    return;
                }
                voc_warn("rules", "action refused case=%llu type=%s reason=\"%s\"",
                         (unsigned long long)id, type, e.message);
            }
            json_decref(body);
        }
    }
}

static void run_on_event(struct case_work *w, const json_t *event, uint32_t seq, int depth)
{
    struct voc_rules *rules = rules_of(w->ctx);
    if (!rules)
        return;
    json_t *view = voc_case_view(w->record, w->events, w->ctx->now_us);
    json_t *actions = NULL;
    char *err = NULL;
    if (voc_rules_on_event(rules, view, event, &actions, &err) != 0) {
        voc_warn("rules", "on_event failed case=%lld type=%s error=\"%s\"",
                 voc_json_int(w->record, "id", 0), voc_json_str(event, "type"),
                 err ? err : "?");
        add_tag(w->record, "rule_error");
    }
    free(err);
    json_decref(view);
    if (actions)
        apply_actions(w, actions, seq, depth);
    json_decref(actions);
}

static json_t *work_view(void *arg)
{
    struct case_work *w = arg;
    return voc_case_view(w->record, w->events, w->ctx->now_us);
}

/* Write the event as the next one of the case and update the record to its consequences. */
static int record_event(struct case_work *w, json_t *event, const struct voc_case_state *next)
{
    uint64_t id = (uint64_t)voc_json_int(w->record, "id", 0);
    uint32_t seq = (uint32_t)voc_json_int(w->record, "event_count", 0) + 1;
    char when[40];
    now_string(w->ctx, when, sizeof when);
    json_object_set_new(event, "seq", json_integer(seq));
    json_object_set_new(event, "at", json_string(when));
    if (voc_casedb_event_put(w->ctx->txn, id, seq, event) != 0)
        return -1;
    json_array_append(w->events, event);
    voc_metric_add(m_events, 1);

    json_object_set_new(w->record, "event_count", json_integer(seq));
    json_object_set_new(w->record, "updated_at", json_string(when));
    json_object_set_new(w->record, "state", json_string(voc_state_name(next->state)));
    if (next->state == VOC_STATE_WAITING)
        json_object_set_new(w->record, "before_wait",
                            json_string(voc_state_name(next->before_wait)));
    else
        json_object_del(w->record, "before_wait");

    const char *type = voc_json_str(event, "type");
    json_t *data = json_object_get(event, "data");
    json_t *c = json_object_get(w->record, "classification");
    if (strcmp(type, "classified") == 0) {
        if (!json_is_object(c)) {
            c = voc_ops_default_classification();
            json_object_set_new(w->record, "classification", c);
        }
        json_object_update(c, data);
    } else if (strcmp(type, "assigned") == 0) {
        json_object_set(c, "department", json_object_get(data, "department"));
        json_t *collab = json_object_get(data, "collaborators");
        if (collab)
            json_object_set(c, "collaborators", collab);
    } else if (strcmp(type, "revisited") == 0) {
        json_object_set(w->record, "satisfaction", json_object_get(data, "satisfaction"));
    } else if (strcmp(type, "reopened") == 0) {
        json_object_set_new(w->record, "reopen_count",
                            json_integer(voc_json_int(w->record, "reopen_count", 0) + 1));
    } else if (strcmp(type, "duplicate") == 0) {
        json_object_set(w->record, "duplicate_of", json_object_get(data, "of"));
    }
    w->job->seq = seq;
    struct voc_sla_case sc = {.txn = w->ctx->txn,
                              .policy = w->ctx->policy,
                              .record = w->record,
                              .now_us = w->ctx->now_us,
                              .view = work_view,
                              .view_arg = w};
    if (w->received_sla_pending) {
        if (strcmp(type, "received") == 0)
            return 0;
        w->received_sla_pending = false;
        if (voc_sla_apply_event(&sc, "received") != 0)
            return -1;
    }
    return voc_sla_apply_event(&sc, type);
}

/* Link a duplicate both ways: the other case lists this one. */
static int link_duplicate(struct case_work *w, uint64_t of, struct voc_err *err)
{
    uint64_t id = (uint64_t)voc_json_int(w->record, "id", 0);
    if (of == id) {
        voc_err_set(err, 409, "conflict", "a case cannot be a duplicate of itself");
        return -1;
    }
    json_t *target;
    int rc = voc_casedb_get(w->ctx->txn, of, &target);
    if (rc == MDB_NOTFOUND) {
        voc_err_set(err, 409, "conflict", "case %llu (data.of) does not exist",
                    (unsigned long long)of);
        return -1;
    }
    if (rc)
        return -1;
    json_t *old = json_deep_copy(target);
    json_t *dups = json_object_get(target, "duplicates");
    if (!json_is_array(dups)) {
        dups = json_array();
        json_object_set_new(target, "duplicates", dups);
    }
    json_array_append_new(dups, json_integer((json_int_t)id));
    rc = voc_casedb_put(w->ctx->txn, old, target);
    json_decref(old);
    json_decref(target);
    return rc ? -1 : 0;
}

/* Lifecycle check, guard, write, on_event. Returns 0, or -1 with err (409/400) or with the
 * transaction's sticky error set. */
static int append_event(struct case_work *w, json_t *event, int depth, struct voc_err *err)
{
    const char *type = voc_json_str(event, "type");
    struct voc_case_state now, next;
    now.state = record_state(w->record, &now.before_wait);
    char reason[400];
    bool declared = profile_type(type, rules_of(w->ctx));
    if (!declared && !voc_event_type_is_core(type)) {
        /* Not a state question: the request names a type this profile does not know. */
        voc_err_set(err, 400, "wrong_type",
                    "unknown event type '%s' (neither a core type nor declared by the profile)",
                    type);
        return -1;
    }
    if (voc_lifecycle_apply(&now, type, declared, &next, reason, sizeof reason) != 0) {
        voc_err_set(err, 409, "conflict", "%s", reason);
        return -1;
    }
    if (json_is_null(json_object_get(event, "actor")))
        json_object_set_new(event, "actor", json_string(w->job->actor ? w->job->actor : "vocd"));
    if (rules_of(w->ctx)) {
        json_t *view = voc_case_view(w->record, w->events, w->ctx->now_us);
        char *why = NULL, *failure = NULL;
        int verdict = voc_rules_guard(rules_of(w->ctx), view, event, &why, &failure);
        json_decref(view);
        if (verdict == 0)
            voc_err_set(err, 409, "conflict", "%s", why ? why : "refused by the profile");
        else if (verdict < 0)
            voc_err_set(err, 409, "conflict", "profile guard failed: %s",
                        failure ? failure : "?");
        if (verdict < 0)
            voc_warn("rules", "guard failed case=%lld type=%s error=\"%s\"",
                     voc_json_int(w->record, "id", 0), type, failure ? failure : "?");
        free(why);
        free(failure);
        if (verdict != 1)
            return -1;
    }
    if (strcmp(type, "duplicate") == 0) {
        uint64_t of = (uint64_t)voc_json_int(json_object_get(event, "data"), "of", 0);
        if (link_duplicate(w, of, err) != 0)
            return -1;
    }
    if (record_event(w, event, &next) != 0)
        return -1;
    run_on_event(w, event, w->job->seq, depth);
    return w->ctx->txn->error ? -1 : 0;
}

static void classify_new_case(struct case_work *w)
{
    struct voc_rules *rules = rules_of(w->ctx);
    json_t *classification = NULL;
    if (rules) {
        json_t *view = voc_case_view(w->record, w->events, w->ctx->now_us);
        char *err = NULL;
        if (voc_rules_classify(rules, view, &classification, &err) != 0)
            voc_warn("rules", "classify failed case=%lld error=\"%s\"",
                     voc_json_int(w->record, "id", 0), err ? err : "?");
        free(err);
        json_decref(view);
    }
    if (!classification)
        classification = voc_ops_default_classification();
    /* Tags put on the case before it was classified (a failing on_event of `received`). */
    size_t i;
    json_t *early;
    json_array_foreach(json_object_get(json_object_get(w->record, "classification"), "tags"), i,
                       early)
    {
        if (json_is_string(early))
            voc_json_list_add(json_object_get(classification, "tags"), json_string_value(early));
    }
    /* The event keeps the classification as decided now; later tags go to the record. */
    json_t *event = json_pack("{s:s, s:s, s:n, s:o}", "type", "classified", "actor",
                              rules ? "rules" : "vocd", "note", "data",
                              json_deep_copy(classification));
    json_object_set_new(w->record, "classification", classification);
    struct voc_case_state next = {VOC_STATE_CLASSIFIED, VOC_STATE_NEW};
    if (record_event(w, event, &next) == 0)
        run_on_event(w, event, w->job->seq, 0);
    json_decref(event);
}

static int put_plugin_state(struct voc_txn *txn, struct op_job *job)
{
    if (!job->state_key)
        return 0;
    struct voc_key k;
    voc_ops_state_key(&k, job->state_owner, job->state_key);
    if (job->state_delete)
        return voc_txn_del(txn, VOC_DB_PLUGIN_STATE, k.buf, k.len);
    return voc_txn_put(txn, VOC_DB_PLUGIN_STATE, k.buf, k.len, job->state_value, job->state_len);
}

static int run_create(struct op_job *job, struct voc_write_ctx *ctx)
{
    const char *channel = voc_json_str(job->input, "channel");
    const char *external_id = voc_json_str(job->input, "external_id");
    if (external_id) {
        uint64_t existing;
        int rc = voc_casedb_ref_get(ctx->txn, channel, external_id, &existing);
        if (rc == 0) {
            job->case_id = existing;
            job->status = VOC_SUBMIT_EXISTS;
            /* The checkpoint still moves on: the row is done, it was just done before. */
            return put_plugin_state(ctx->txn, job) ? -1 : 0;
        }
        if (rc != MDB_NOTFOUND)
            return -1;
    }
    uint64_t id = (*ctx->next_case_id)++;
    char when[40];
    now_string(ctx, when, sizeof when);
    /* Key order is kept by jansson: id and state first read best in the API. */
    json_t *record = json_object();
    json_object_set_new(record, "id", json_integer((json_int_t)id));
    json_object_set_new(record, "state", json_string("new"));
    json_object_set_new(record, "created_at", json_string(when));
    json_object_set_new(record, "updated_at", json_string(when));
    json_object_update(record, job->input);
    /* Done here rather than on the event loop: the writer thread has the spare CPU. */
    if (ctx->textnorm && !json_object_get(record, "normalized"))
        voc_intake_add_normalized(record, ctx->textnorm);
    json_object_set_new(record, "classification", json_null());
    json_object_set_new(record, "duplicate_of", json_null());
    json_object_set_new(record, "duplicates", json_array());
    json_object_set_new(record, "reopen_count", json_integer(0));
    json_object_set_new(record, "satisfaction", json_null());
    json_object_set_new(record, "breached", json_false());
    json_object_set_new(record, "event_count", json_integer(0));

    struct case_work w = {.ctx = ctx,
                          .job = job,
                          .record = record,
                          .events = json_array(),
                          .received_sla_pending = true};
    json_t *received = json_pack("{s:s, s:s, s:n, s:{}}", "type", "received", "actor",
                                 job->actor ? job->actor : channel, "note", "data");
    struct voc_case_state first = {VOC_STATE_NEW, VOC_STATE_NEW};
    int rc = record_event(&w, received, &first);
    if (rc == 0)
        run_on_event(&w, received, 1, 0);
    json_decref(received);
    if (rc == 0)
        classify_new_case(&w);
    if (!ctx->txn->error) {
        voc_casedb_put(ctx->txn, NULL, record);
        if (external_id)
            voc_casedb_ref_put(ctx->txn, channel, external_id, id);
        for (size_t i = 0; i < job->ref_count; i++)
            voc_casedb_ref_put(ctx->txn, channel, job->refs[i], id);
        put_plugin_state(ctx->txn, job);
    }
    json_decref(w.events);
    json_decref(record);
    job->case_id = id;
    job->status = VOC_SUBMIT_CREATED;
    return ctx->txn->error ? -1 : 0;
}

static int run_event(struct op_job *job, struct voc_write_ctx *ctx)
{
    if (job->ref) {
        uint64_t existing;
        int rc = voc_casedb_ref_get(ctx->txn, job->channel, job->ref, &existing);
        if (rc == 0) {
            job->case_id = existing;
            job->status = VOC_SUBMIT_EXISTS;
            return 0;
        }
        if (rc != MDB_NOTFOUND)
            return -1;
    }
    json_t *record;
    int rc = voc_casedb_get(ctx->txn, job->case_id, &record);
    if (rc == MDB_NOTFOUND || (rc == 0 && !in_departments(job, record))) {
        if (rc == 0)
            json_decref(record);
        voc_err_set(&job->base.err, 404, "not_found", "no case %llu",
                    (unsigned long long)job->case_id);
        return -1;
    }
    if (rc)
        return -1;
    struct case_work w = {.ctx = ctx, .job = job, .record = record, .old = json_deep_copy(record)};
    if (voc_casedb_events(ctx->txn, job->case_id, &w.events) != 0) {
        json_decref(record);
        json_decref(w.old);
        return -1;
    }
    json_t *event = json_deep_copy(job->input);
    rc = append_event(&w, event, 0, &job->base.err);
    json_decref(event);
    if (rc == 0) {
        voc_casedb_put(ctx->txn, w.old, record);
        if (job->ref)
            voc_casedb_ref_put(ctx->txn, job->channel, job->ref, job->case_id);
        job->status = VOC_SUBMIT_APPENDED;
    }
    json_decref(w.events);
    json_decref(w.old);
    json_decref(record);
    return rc == 0 && !ctx->txn->error ? 0 : -1;
}

static int run_state(struct op_job *job, struct voc_write_ctx *ctx)
{
    job->status = VOC_SUBMIT_APPENDED;
    return put_plugin_state(ctx->txn, job) ? -1 : 0;
}

/* Persist the case a fire job changed, and release it. */
static void finish_fired_case(struct case_work *w)
{
    if (!w->record)
        return;
    voc_casedb_put(w->ctx->txn, w->old, w->record);
    json_decref(w->record);
    json_decref(w->old);
    json_decref(w->events);
    w->record = w->old = w->events = NULL;
    /* The next case of the batch is a write of its own: a fresh action budget. */
    w->actions = w->action_bytes = 0;
    w->actions_capped = w->tags_capped = w->depth_capped = false;
}

static void run_on_clock(struct case_work *w, const json_t *clock, const char *status,
                         uint32_t seq)
{
    struct voc_rules *rules = rules_of(w->ctx);
    if (!rules)
        return;
    json_t *view = voc_case_view(w->record, w->events, w->ctx->now_us);
    json_t *one = json_array();
    json_array_append((json_t *)one, (json_t *)clock);
    json_t *clean = voc_sla_clocks_view(one, w->ctx->now_us);
    json_t *actions = NULL;
    char *err = NULL;
    if (voc_rules_on_clock(rules, view, json_array_get(clean, 0), status, &actions, &err) != 0) {
        voc_warn("rules", "on_clock failed case=%lld clock=%s error=\"%s\"",
                 voc_json_int(w->record, "id", 0), voc_json_str(clock, "name"), err ? err : "?");
        add_tag(w->record, "rule_error");
    }
    free(err);
    json_decref(clean);
    json_decref(one);
    json_decref(view);
    if (actions)
        apply_actions(w, actions, seq, 0);
    json_decref(actions);
}

static int run_fire(struct op_job *job, struct voc_write_ctx *ctx)
{
    struct voc_deadline due[FIRE_BATCH];
    size_t n = 0;
    job->fired = 0;
    job->more = false;
    if (voc_sla_due(ctx->txn, ctx->now_us, due, FIRE_BATCH, &n) != 0)
        return -1;
    struct case_work w = {.ctx = ctx, .job = job};
    uint64_t current = 0;
    for (size_t i = 0; i < n && !ctx->txn->error; i++) {
        if (due[i].case_id != current) {
            finish_fired_case(&w);
            current = due[i].case_id;
            if (voc_casedb_get(ctx->txn, current, &w.record) != 0 ||
                voc_casedb_events(ctx->txn, current, &w.events) != 0) {
                json_decref(w.record);
                json_decref(w.events);
                w.record = w.events = NULL;
                if (ctx->txn->error)
                    break;
            } else {
                w.old = json_deep_copy(w.record);
            }
        }
        if (!w.record) {
            voc_sla_drop(ctx->txn, &due[i]); /* a deadline whose case is gone */
            continue;
        }
        struct voc_sla_case sc = {.txn = ctx->txn,
                                  .policy = ctx->policy,
                                  .record = w.record,
                                  .now_us = ctx->now_us,
                                  .view = work_view,
                                  .view_arg = &w};
        const char *status = NULL;
        json_t *clock = NULL;
        if (voc_sla_fire(&sc, &due[i], &status, &clock) != 1)
            continue;
        json_t *event = json_pack(
            "{s:s, s:s, s:n, s:{s:O, s:O, s:O, s:O}}", "type",
            strcmp(status, "warning") == 0 ? "clock_warning" : "clock_breached", "actor", "vocd",
            "note", "data", "clock", json_object_get(clock, "name"), "cycle",
            json_object_get(clock, "cycle"), "due_at", json_object_get(clock, "due_at"),
            "target_s", json_object_get(clock, "target_s"));
        struct voc_case_state now;
        now.state = record_state(w.record, &now.before_wait);
        json_t *clock_copy = json_deep_copy(clock);
        if (record_event(&w, event, &now) == 0)
            run_on_clock(&w, clock_copy, status, job->seq);
        json_decref(clock_copy);
        json_decref(event);
        job->fired++;
    }
    finish_fired_case(&w);
    job->more = n == FIRE_BATCH;
    return ctx->txn->error ? -1 : 0;
}

static int op_run(struct voc_job *base, struct voc_write_ctx *ctx)
{
    struct op_job *job = (struct op_job *)base;
    switch (job->kind) {
    case OP_CREATE:
        return run_create(job, ctx);
    case OP_EVENT:
        return run_event(job, ctx);
    case OP_STATE:
        return run_state(job, ctx);
    case OP_FIRE:
        return run_fire(job, ctx);
    }
    return -1;
}

static void free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void op_free(struct op_job *job)
{
    json_decref(job->input);
    free(job->actor);
    free_strings(job->departments, job->department_count);
    free(job->channel);
    free(job->ref);
    free_strings(job->refs, job->ref_count);
    free(job->state_owner);
    free(job->state_key);
    free(job->state_value);
    free(job);
}

static void op_done(struct voc_job *base)
{
    struct op_job *job = (struct op_job *)base;
    if (job->kind == OP_FIRE) {
        if (base->outcome != VOC_JOB_COMMITTED)
            voc_error("sla", "firing deadlines failed error=\"%s\"", base->err.message);
        job->fire_cb(job->arg, base->outcome == VOC_JOB_COMMITTED ? job->fired : 0,
                     base->outcome == VOC_JOB_COMMITTED && job->more);
        op_free(job);
        return;
    }
    struct voc_submit_result r = {0};
    switch (base->outcome) {
    case VOC_JOB_COMMITTED:
        r.status = job->status;
        r.case_id = job->case_id;
        r.event_seq = job->seq;
        r.http_status = job->status == VOC_SUBMIT_EXISTS ? 200 : 201;
        if (job->status == VOC_SUBMIT_CREATED)
            voc_metric_add(m_created, 1);
        else if (job->status == VOC_SUBMIT_EXISTS)
            voc_metric_add(m_existing, 1);
        break;
    case VOC_JOB_REFUSED:
        voc_metric_add(m_refused, 1);
        r.status = VOC_SUBMIT_INVALID;
        r.case_id = job->case_id;
        r.error_code = base->err.code;
        r.message = base->err.message;
        r.http_status = base->err.status;
        break;
    case VOC_JOB_UNAVAILABLE:
        r.status = VOC_SUBMIT_UNAVAILABLE;
        r.error_code = base->err.code;
        r.message = base->err.message;
        r.http_status = 503;
        break;
    }
    if (job->cb)
        job->cb(job->arg, &r);
    op_free(job);
}

static char **copy_strings(const char *const *list, size_t n)
{
    if (!list)
        return NULL;
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        out[i] = strdup(list[i]);
    return out;
}

static struct op_job *op_new(enum op_kind kind, const struct voc_actor *actor, voc_submit_cb cb,
                             void *arg)
{
    struct op_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->base.run = op_run;
    job->base.done = op_done;
    job->kind = kind;
    job->cb = cb;
    job->arg = arg;
    if (actor) {
        job->actor = actor->name ? strdup(actor->name) : NULL;
        if (actor->departments) {
            job->departments = copy_strings(actor->departments, actor->department_count);
            job->department_count = actor->department_count;
        }
    }
    return job;
}

static int submit(struct voc_writer *w, struct op_job *job)
{
    if (voc_writer_submit(w, &job->base) != 0) {
        op_free(job);
        return -1;
    }
    return 0;
}

int voc_ops_create_case(struct voc_writer *w, json_t *intake, const struct voc_actor *actor,
                        const struct voc_submit_opts *opts, const char *state_owner,
                        voc_submit_cb cb, void *arg)
{
    struct op_job *job = op_new(OP_CREATE, actor, cb, arg);
    if (!job) {
        json_decref(intake);
        return -1;
    }
    job->input = intake;
    if (opts && opts->refs && opts->ref_count) {
        job->refs = copy_strings(opts->refs, opts->ref_count);
        job->ref_count = opts->ref_count;
    }
    if (opts && opts->state_key && state_owner) {
        job->state_owner = strdup(state_owner);
        job->state_key = strdup(opts->state_key);
        job->state_len = opts->state_value_len;
        job->state_value = malloc(job->state_len ? job->state_len : 1);
        if (job->state_value && job->state_len)
            memcpy(job->state_value, opts->state_value, job->state_len);
    }
    return submit(w, job);
}

int voc_ops_append_event(struct voc_writer *w, uint64_t case_id, json_t *event,
                         const struct voc_actor *actor, const char *channel, const char *ref,
                         voc_submit_cb cb, void *arg)
{
    struct op_job *job = op_new(OP_EVENT, actor, cb, arg);
    if (!job) {
        json_decref(event);
        return -1;
    }
    job->input = event;
    job->case_id = case_id;
    if (ref && channel) {
        job->channel = strdup(channel);
        job->ref = strdup(ref);
    }
    return submit(w, job);
}

int voc_ops_set_state(struct voc_writer *w, const char *owner, const char *key,
                      const void *value, size_t len, voc_submit_cb cb, void *arg)
{
    struct op_job *job = op_new(OP_STATE, NULL, cb, arg);
    if (!job)
        return -1;
    job->state_owner = strdup(owner);
    job->state_key = strdup(key);
    job->state_delete = value == NULL;
    if (value) {
        job->state_value = malloc(len ? len : 1);
        if (job->state_value && len)
            memcpy(job->state_value, value, len);
        job->state_len = len;
    }
    return submit(w, job);
}

int voc_ops_fire_clocks(struct voc_writer *w, void (*done)(void *arg, size_t fired, bool more),
                        void *arg)
{
    struct op_job *job = op_new(OP_FIRE, NULL, NULL, arg);
    if (!job)
        return -1;
    job->fire_cb = done;
    return submit(w, job);
}
