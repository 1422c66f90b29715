/* Case writes (daemon/case_ops.[ch]) through a real writer and event loop, without a
 * profile: creation and idempotency, events with their seq, refusals that leave no trace,
 * duplicates linked both ways, the agent's department fence, plugin state and references
 * written in the same transaction as the case. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "case_ops.h"
#include "casedb.h"
#include "diag.h"
#include "intake.h"
#include "keys.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "rules.h"
#include "store.h"
#include "writer.h"

#include <check.h>
#include <event2/event.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char tmp_dir[PATH_MAX];
static struct voc_store *store;
static struct event_base *base;
static struct voc_writer *writer;

static void setup(void)
{
    char dir[] = "/tmp/voc-caseops-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void start(uint64_t map_size, uint64_t max_map_size)
{
    struct voc_store_options so = {
        .path = tmp_dir, .map_size = map_size, .max_map_size = max_map_size};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    struct voc_writer_options wo = {0};
    struct voc_policy *policy = calloc(1, sizeof *policy); /* no profile, no calendars */
    ck_assert_int_eq(voc_writer_start(&writer, store, base, &wo, policy), 0);
}

/* Start with a profile from tests/unit/fixtures/rules (no calendars). */
static struct voc_rules *profile_rules;

static void start_profile(const char *name)
{
    struct voc_store_options so = {.path = tmp_dir};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tests/unit/fixtures/rules/%s", VOC_SOURCE_DIR, name);
    struct voc_diag d;
    voc_diag_init(&d);
    int rc = voc_rules_load(path, NULL, NULL, NULL, &profile_rules, &d);
    ck_assert_msg(rc == 0, "%s", d.count ? d.messages[0] : "?");
    voc_diag_free(&d);
    struct voc_policy *policy = calloc(1, sizeof *policy);
    policy->rules = profile_rules;
    /* The notifiers the fixtures name (voc_policy_free frees the copies). */
    static const char *const notifiers[] = {"ops-hook", "ops-mail"};
    policy->notifier_names = calloc(2, sizeof *policy->notifier_names);
    for (size_t i = 0; i < 2; i++)
        policy->notifier_names[i] = strdup(notifiers[i]);
    policy->notifier_count = 2;
    struct voc_writer_options wo = {0};
    ck_assert_int_eq(voc_writer_start(&writer, store, base, &wo, policy), 0);
}

static void teardown(void)
{
    voc_writer_stop(writer);
    writer = NULL;
    voc_store_close(store);
    store = NULL;
    event_base_free(base);
    base = NULL;
    voc_test_rm_rf(tmp_dir);
}

/* ---- submitting and waiting ------------------------------------------------------------ */

struct outcome {
    bool called;
    int calls;
    enum voc_submit_status status;
    uint64_t case_id;
    uint32_t seq;
    int http;
    char code[32];
    char message[512];
};

static void on_result(void *arg, const struct voc_submit_result *r)
{
    struct outcome *o = arg;
    o->called = true;
    o->calls++;
    o->status = r->status;
    o->case_id = r->case_id;
    o->seq = r->event_seq;
    o->http = r->http_status;
    snprintf(o->code, sizeof o->code, "%s", r->error_code ? r->error_code : "");
    snprintf(o->message, sizeof o->message, "%s", r->message ? r->message : "");
    event_base_loopbreak(base);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
    event_base_loopbreak(base);
}

static void wait_for(struct outcome *o)
{
    bool timed_out = false;
    struct event *t = evtimer_new(base, timeout_cb, &timed_out);
    struct timeval tv = {60, 0};
    evtimer_add(t, &tv);
    while (!o->called && !timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    ck_assert_msg(!timed_out, "no answer from the writer");
    ck_assert_int_eq(o->calls, 1);
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    ck_assert_msg(v != NULL, "bad JSON in test: %s (%s)", text, jerr.text);
    return v;
}

static struct outcome create_opts(const char *record_text, const struct voc_actor *actor,
                                  const struct voc_submit_opts *opts, const char *owner)
{
    json_t *raw = parse(record_text), *intake = NULL;
    struct voc_err err = {0};
    ck_assert_msg(voc_intake_validate(raw, NULL, 1795396500000000, &intake, &err) == 0, "%s",
                  err.message);
    json_decref(raw);
    struct outcome o = {0};
    ck_assert_int_eq(voc_ops_create_case(writer, intake, actor, opts, owner, on_result, &o), 0);
    wait_for(&o);
    return o;
}

static struct outcome create(const char *record_text)
{
    return create_opts(record_text, NULL, NULL, NULL);
}

/* Validate event_text (profile types known through is_profile_type, or none) and append it. */
static struct outcome append_with(uint64_t id, const char *event_text,
                                  bool (*is_profile_type)(const char *type, void *arg),
                                  const struct voc_actor *actor, const char *channel,
                                  const char *ref)
{
    json_t *raw = parse(event_text), *event = NULL;
    struct voc_err err = {0};
    ck_assert_msg(voc_event_validate(raw, is_profile_type, NULL, &event, &err) == 0, "%s: %s",
                  event_text, err.message);
    json_decref(raw);
    struct outcome o = {0};
    ck_assert_int_eq(voc_ops_append_event(writer, id, event, actor, channel, ref, on_result, &o),
                     0);
    wait_for(&o);
    return o;
}

static struct outcome append_ref(uint64_t id, const char *event_text, const struct voc_actor *actor,
                                 const char *channel, const char *ref)
{
    return append_with(id, event_text, NULL, actor, channel, ref);
}

static struct outcome append(uint64_t id, const char *event_text)
{
    static const struct voc_actor admin = {.name = "王芳"};
    return append_ref(id, event_text, &admin, NULL, NULL);
}

static bool declared(const char *type, void *arg)
{
    (void)arg;
    return voc_rules_has_event_type(profile_rules, type);
}

/* Append an event of the profile's own types. */
static struct outcome append_declared(uint64_t id, const char *event_text)
{
    return append_with(id, event_text, declared, NULL, NULL, NULL);
}

static json_t *record(uint64_t id)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    json_t *r = NULL;
    int rc = voc_casedb_get(&txn, id, &r);
    voc_txn_abort(&txn);
    ck_assert_msg(rc == 0, "case %llu: %s", (unsigned long long)id, mdb_strerror(rc));
    return r;
}

static json_t *events(uint64_t id)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    json_t *e = NULL;
    ck_assert_int_eq(voc_casedb_events(&txn, id, &e), 0);
    voc_txn_abort(&txn);
    return e;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static uint64_t last_id(void)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    uint64_t id = 0;
    ck_assert_int_eq(voc_casedb_last_id(&txn, &id), 0);
    voc_txn_abort(&txn);
    return id;
}

/* Snapshot of a case (record + events) to prove that a refusal changed nothing. */
static json_t *snapshot(uint64_t id)
{
    return json_pack("{s:o, s:o}", "record", record(id), "events", events(id));
}

static void assert_unchanged(uint64_t id, json_t *before)
{
    json_t *now = snapshot(id);
    ck_assert_msg(json_equal(now, before), "case %llu changed", (unsigned long long)id);
    json_decref(now);
    json_decref(before);
}

static void assert_refused(const struct outcome *o, int http, const char *code)
{
    ck_assert_int_eq(o->status, VOC_SUBMIT_INVALID);
    ck_assert_msg(o->http == http, "http %d, want %d (%s)", o->http, http, o->message);
    ck_assert_str_eq(o->code, code);
    ck_assert_msg(o->message[0] != '\0', "refused without a reason");
}

/* ---- tests ----------------------------------------------------------------------------- */

START_TEST(create_and_idempotency)
{
    start(0, 0);
    struct outcome o = create("{\"external_id\": \"WO-1\", \"channel\": \"hotline\", "
                              "\"text\": \"电饭煲无法加热\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    ck_assert_int_eq(o.http, 201);
    ck_assert_uint_eq(o.case_id, 1);

    json_t *r = record(1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 1);
    ck_assert_str_eq(str(r, "channel"), "hotline");
    ck_assert_str_eq(str(r, "text"), "电饭煲无法加热");
    ck_assert_ptr_nonnull(str(r, "created_at"));
    ck_assert_ptr_nonnull(str(r, "updated_at"));
    /* Without a profile the core classifies with its defaults. */
    ck_assert_str_eq(str(r, "state"), "classified");
    json_t *c = json_object_get(r, "classification");
    ck_assert(json_is_object(c));
    json_t *def = voc_ops_default_classification();
    ck_assert(json_equal(c, def));
    json_decref(def);
    ck_assert(json_is_null(json_object_get(r, "duplicate_of")));
    ck_assert_uint_eq(json_array_size(json_object_get(r, "duplicates")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "reopen_count")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "event_count")), 2);
    json_decref(r);
    json_t *ev = events(1);
    ck_assert_uint_eq(json_array_size(ev), 2);
    json_t *e1 = json_array_get(ev, 0), *e2 = json_array_get(ev, 1);
    ck_assert_str_eq(str(e1, "type"), "received");
    ck_assert_int_eq(json_integer_value(json_object_get(e1, "seq")), 1);
    ck_assert_str_eq(str(e1, "actor"), "hotline"); /* no actor: the channel */
    ck_assert_ptr_nonnull(str(e1, "at"));
    ck_assert_str_eq(str(e2, "type"), "classified");
    ck_assert_int_eq(json_integer_value(json_object_get(e2, "seq")), 2);
    json_decref(ev);

    /* The same channel + external_id again: the first case, nothing written. */
    json_t *before = snapshot(1);
    o = create("{\"external_id\": \"WO-1\", \"channel\": \"hotline\", \"text\": \"again\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_EXISTS);
    ck_assert_int_eq(o.http, 200);
    ck_assert_uint_eq(o.case_id, 1);
    assert_unchanged(1, before);
    ck_assert_uint_eq(last_id(), 1);

    /* Another channel has its own namespace; no external_id is never a repeat. */
    o = create("{\"external_id\": \"WO-1\", \"channel\": \"email\", \"text\": \"x\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    ck_assert_uint_eq(o.case_id, 2);
    o = create("{\"text\": \"x\"}");
    ck_assert_uint_eq(o.case_id, 3);
    o = create("{\"text\": \"x\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    ck_assert_uint_eq(o.case_id, 4);

    /* An actor's name is the received event's actor. */
    static const struct voc_actor hook = {.name = "webhook"};
    o = create_opts("{\"channel\": \"web\", \"text\": \"x\"}", &hook, NULL, NULL);
    ev = events(o.case_id);
    ck_assert_str_eq(str(json_array_get(ev, 0), "actor"), "webhook");
    json_decref(ev);

    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    uint64_t id = 0;
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "hotline", "WO-1", &id), 0);
    ck_assert_uint_eq(id, 1);
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", "WO-1", &id), 0);
    ck_assert_uint_eq(id, 2);
    voc_txn_abort(&txn);
}
END_TEST

/* Two submissions of the same record in flight at once: one case. */
START_TEST(concurrent_duplicates)
{
    start(0, 0);
    struct outcome a = {0}, b = {0};
    for (int i = 0; i < 2; i++) {
        json_t *raw = parse("{\"external_id\": \"X\", \"channel\": \"web\", \"text\": \"t\"}");
        json_t *intake = NULL;
        struct voc_err err = {0};
        ck_assert_int_eq(voc_intake_validate(raw, NULL, 0, &intake, &err), 0);
        json_decref(raw);
        ck_assert_int_eq(
            voc_ops_create_case(writer, intake, NULL, NULL, NULL, on_result, i ? &b : &a), 0);
    }
    wait_for(&a);
    wait_for(&b);
    ck_assert_int_eq(a.status, VOC_SUBMIT_CREATED);
    ck_assert_int_eq(b.status, VOC_SUBMIT_EXISTS);
    ck_assert_uint_eq(a.case_id, b.case_id);
    ck_assert_uint_eq(last_id(), 1);
}
END_TEST

START_TEST(events_in_order)
{
    start(0, 0);
    uint64_t id = create("{\"text\": \"x\"}").case_id;
    static const struct {
        const char *event, *state;
    } steps[] = {
        {"{\"type\": \"assigned\", \"data\": {\"department\": \"质量部\", \"collaborators\": "
         "[\"生产部\"]}}",
         "assigned"},
        {"{\"type\": \"acknowledged\"}", "assigned"},
        {"{\"type\": \"planned\", \"data\": {\"due\": \"2026-11-30\"}}", "planned"},
        {"{\"type\": \"resolved\", \"note\": \"换了加热盘\"}", "resolved"},
        {"{\"type\": \"verified\"}", "verified"},
        {"{\"type\": \"replied\"}", "replied"},
        {"{\"type\": \"revisited\", \"data\": {\"satisfaction\": 2}}", "revisited"},
        {"{\"type\": \"reopened\"}", "reopened"},
        {"{\"type\": \"resolved\"}", "resolved"},
        {"{\"type\": \"replied\"}", "replied"},
        {"{\"type\": \"revisited\", \"data\": {\"satisfaction\": 5}}", "revisited"},
        {"{\"type\": \"closed\"}", "closed"},
        {"{\"type\": \"note\", \"note\": \"归档\"}", "closed"},
    };
    size_t n = sizeof steps / sizeof steps[0];
    for (size_t i = 0; i < n; i++) {
        struct outcome o = append(id, steps[i].event);
        ck_assert_msg(o.status == VOC_SUBMIT_APPENDED, "step %zu: %s %s", i, o.code, o.message);
        ck_assert_int_eq(o.http, 201);
        ck_assert_uint_eq(o.case_id, id);
        ck_assert_uint_eq(o.seq, i + 3); /* after received and classified */
        json_t *r = record(id);
        ck_assert_msg(strcmp(str(r, "state"), steps[i].state) == 0, "step %zu: state %s, want %s",
                      i, str(r, "state"), steps[i].state);
        json_decref(r);
    }
    json_t *r = record(id);
    json_t *c = json_object_get(r, "classification");
    ck_assert_str_eq(str(c, "department"), "质量部");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "collaborators"), 0)),
                     "生产部");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "satisfaction")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "reopen_count")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "event_count")), (int)n + 2);
    json_decref(r);

    json_t *ev = events(id);
    ck_assert_uint_eq(json_array_size(ev), n + 2);
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        ck_assert_int_eq(json_integer_value(json_object_get(e, "seq")), (int)i + 1);
        ck_assert_ptr_nonnull(str(e, "at"));
        if (i >= 2) {
            json_t *want = parse(steps[i - 2].event);
            ck_assert_str_eq(str(e, "type"), str(want, "type"));
            json_decref(want);
            ck_assert_str_eq(str(e, "actor"), "王芳"); /* the poster's name by default */
        }
    }
    ck_assert_str_eq(str(json_array_get(ev, 5), "note"), "换了加热盘");
    json_decref(ev);

    /* An explicit actor stays; no actor at all becomes "vocd". */
    struct outcome o = append(id, "{\"type\": \"note\", \"actor\": \"张三\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    o = append_ref(id, "{\"type\": \"note\"}", NULL, NULL, NULL);
    ev = events(id);
    ck_assert_str_eq(str(json_array_get(ev, n + 2), "actor"), "张三");
    ck_assert_str_eq(str(json_array_get(ev, n + 3), "actor"), "vocd");
    json_decref(ev);
}
END_TEST

START_TEST(refusals_write_nothing)
{
    start(0, 0);
    uint64_t id = create("{\"text\": \"x\"}").case_id;
    json_t *before = snapshot(id);
    struct outcome o = append(id, "{\"type\": \"resolved\"}"); /* classified: too early */
    assert_refused(&o, 409, "conflict");
    ck_assert_msg(strstr(o.message, "resolved") != NULL, "%s", o.message);
    o = append(id, "{\"type\": \"resumed\"}");
    assert_refused(&o, 409, "conflict");
    o = append(id, "{\"type\": \"closed\"}");
    assert_refused(&o, 409, "conflict");
    assert_unchanged(id, before);

    o = append(999, "{\"type\": \"note\"}");
    assert_refused(&o, 404, "not_found");
    ck_assert_uint_eq(last_id(), id);

    /* A refusal in the middle of others does not disturb them. */
    struct outcome a = {0}, b = {0}, c = {0};
    static const char *const bodies[] = {"{\"type\": \"note\"}", "{\"type\": \"verified\"}",
                                         "{\"type\": \"acknowledged\"}"};
    struct outcome *outs[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        json_t *raw = parse(bodies[i]), *event = NULL;
        struct voc_err err = {0};
        ck_assert_int_eq(voc_event_validate(raw, NULL, NULL, &event, &err), 0);
        json_decref(raw);
        ck_assert_int_eq(
            voc_ops_append_event(writer, id, event, NULL, NULL, NULL, on_result, outs[i]), 0);
    }
    wait_for(&a);
    wait_for(&b);
    wait_for(&c);
    ck_assert_int_eq(a.status, VOC_SUBMIT_APPENDED);
    assert_refused(&b, 409, "conflict");
    ck_assert_int_eq(c.status, VOC_SUBMIT_APPENDED);
    ck_assert_uint_eq(a.seq, 3);
    ck_assert_uint_eq(c.seq, 4); /* no gap where the refused event would have been */
    json_t *ev = events(id);
    ck_assert_uint_eq(json_array_size(ev), 4);
    json_decref(ev);
}
END_TEST

START_TEST(waiting_and_resumed)
{
    start(0, 0);
    uint64_t id = create("{\"text\": \"x\"}").case_id;
    ck_assert_int_eq(
        append(id, "{\"type\": \"assigned\", \"data\": {\"department\": \"客服部\"}}").status,
        VOC_SUBMIT_APPENDED);
    ck_assert_int_eq(append(id, "{\"type\": \"planned\"}").status, VOC_SUBMIT_APPENDED);
    ck_assert_int_eq(append(id, "{\"type\": \"waiting\", \"note\": \"等客户寄回\"}").status,
                     VOC_SUBMIT_APPENDED);
    json_t *r = record(id);
    ck_assert_str_eq(str(r, "state"), "waiting");
    ck_assert_str_eq(str(r, "before_wait"), "planned");
    json_decref(r);
    ck_assert_int_eq(append(id, "{\"type\": \"message\", \"note\": \"已寄出\"}").status,
                     VOC_SUBMIT_APPENDED);
    json_t *before = snapshot(id);
    struct outcome o = append(id, "{\"type\": \"resolved\"}");
    assert_refused(&o, 409, "conflict");
    ck_assert_msg(strstr(o.message, "waiting") != NULL, "%s", o.message);
    assert_unchanged(id, before);
    o = append(id, "{\"type\": \"resumed\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    r = record(id);
    ck_assert_str_eq(str(r, "state"), "planned");
    ck_assert_ptr_null(json_object_get(r, "before_wait"));
    json_decref(r);
    ck_assert_int_eq(append(id, "{\"type\": \"resolved\"}").status, VOC_SUBMIT_APPENDED);
}
END_TEST

START_TEST(duplicates)
{
    start(0, 0);
    uint64_t a = create("{\"text\": \"a\"}").case_id;
    uint64_t b = create("{\"text\": \"b\"}").case_id;
    uint64_t c = create("{\"text\": \"c\"}").case_id;

    json_t *before_a = snapshot(a), *before_b = snapshot(b);
    char text[96];
    snprintf(text, sizeof text, "{\"type\": \"duplicate\", \"data\": {\"of\": %llu}}",
             (unsigned long long)a);
    struct outcome o = append(a, text);
    assert_refused(&o, 409, "conflict");
    ck_assert_msg(strstr(o.message, "itself") != NULL, "%s", o.message);
    o = append(a, "{\"type\": \"duplicate\", \"data\": {\"of\": 999}}");
    assert_refused(&o, 409, "conflict");
    ck_assert_msg(strstr(o.message, "999") != NULL, "%s", o.message);
    assert_unchanged(a, before_a);

    snprintf(text, sizeof text, "{\"type\": \"duplicate\", \"data\": {\"of\": %llu}}",
             (unsigned long long)b);
    o = append(a, text);
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    o = append(c, text);
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);

    json_t *ra = record(a), *rb = record(b);
    ck_assert_str_eq(str(ra, "state"), "duplicate");
    ck_assert_int_eq(json_integer_value(json_object_get(ra, "duplicate_of")), (json_int_t)b);
    json_t *dups = json_object_get(rb, "duplicates");
    ck_assert_uint_eq(json_array_size(dups), 2);
    ck_assert_int_eq(json_integer_value(json_array_get(dups, 0)), (json_int_t)a);
    ck_assert_int_eq(json_integer_value(json_array_get(dups, 1)), (json_int_t)c);
    /* The original keeps its state and events: only the link is new. */
    json_t *old_b = json_object_get(before_b, "record");
    ck_assert_str_eq(str(rb, "state"), str(old_b, "state"));
    json_t *ev_b = events(b);
    ck_assert(json_equal(ev_b, json_object_get(before_b, "events")));
    json_decref(ev_b);
    json_decref(ra);
    json_decref(rb);
    json_decref(before_b);

    /* A duplicate is closed for work, open for notes. */
    o = append(a, "{\"type\": \"assigned\", \"data\": {\"department\": \"x\"}}");
    assert_refused(&o, 409, "conflict");
    ck_assert_int_eq(append(a, "{\"type\": \"note\"}").status, VOC_SUBMIT_APPENDED);
}
END_TEST

START_TEST(agent_department_fence)
{
    start(0, 0);
    uint64_t mine = create("{\"text\": \"a\"}").case_id;
    uint64_t nobody = create("{\"text\": \"b\"}").case_id;
    uint64_t helping = create("{\"text\": \"c\"}").case_id;
    ck_assert_int_eq(
        append(mine, "{\"type\": \"assigned\", \"data\": {\"department\": \"质量部\"}}").status,
        VOC_SUBMIT_APPENDED);
    ck_assert_int_eq(append(helping, "{\"type\": \"assigned\", \"data\": {\"department\": "
                                     "\"客服部\", \"collaborators\": [\"质量部\"]}}")
                         .status,
                     VOC_SUBMIT_APPENDED);

    static const char *const depts[] = {"质量部"};
    static const struct voc_actor agent = {
        .name = "quality", .departments = depts, .department_count = 1};
    struct outcome o = append_ref(mine, "{\"type\": \"acknowledged\"}", &agent, NULL, NULL);
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    o = append_ref(helping, "{\"type\": \"note\"}", &agent, NULL, NULL);
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);

    /* Outside its departments an agent learns nothing, not even that the case exists. */
    json_t *before = snapshot(nobody);
    o = append_ref(nobody, "{\"type\": \"note\"}", &agent, NULL, NULL);
    assert_refused(&o, 404, "not_found");
    struct outcome missing = append_ref(999, "{\"type\": \"note\"}", &agent, NULL, NULL);
    assert_refused(&missing, 404, "not_found");
    assert_unchanged(nobody, before);
    json_t *ev = events(mine);
    ck_assert_str_eq(str(json_array_get(ev, json_array_size(ev) - 1), "actor"), "quality");
    json_decref(ev);
}
END_TEST

START_TEST(event_refs)
{
    start(0, 0);
    uint64_t id = create("{\"text\": \"x\", \"channel\": \"email\"}").case_id;
    struct outcome o = append_ref(id, "{\"type\": \"message\", \"note\": \"reply\"}", NULL, "email",
                                  "<r1@example.com>");
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    json_t *before = snapshot(id);
    o = append_ref(id, "{\"type\": \"message\", \"note\": \"reply\"}", NULL, "email",
                   "<r1@example.com>");
    ck_assert_int_eq(o.status, VOC_SUBMIT_EXISTS);
    ck_assert_int_eq(o.http, 200);
    ck_assert_uint_eq(o.case_id, id);
    assert_unchanged(id, before);
    /* The ref finds the case afterwards (threading of replies). */
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    uint64_t found = 0;
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", "<r1@example.com>", &found), 0);
    ck_assert_uint_eq(found, id);
    voc_txn_abort(&txn);
}
END_TEST

static char *state_value(const char *owner, const char *key)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    struct voc_key k;
    voc_ops_state_key(&k, owner, key);
    MDB_val v;
    int rc = voc_txn_get(&txn, VOC_DB_PLUGIN_STATE, k.buf, k.len, &v);
    char *out = rc == 0 ? strndup(v.mv_data, v.mv_size) : NULL;
    voc_txn_abort(&txn);
    return out;
}

START_TEST(plugin_state_and_refs_with_the_case)
{
    start(0, 0);
    static const char *const refs[] = {"<m1@example.com>", "<m2@example.com>"};
    struct voc_submit_opts opts = {.state_key = "offset",
                                   .state_value = "1234",
                                   .state_value_len = 4,
                                   .refs = refs,
                                   .ref_count = 2};
    struct outcome o = create_opts("{\"channel\": \"email\", \"external_id\": \"<m0@example.com>\","
                                   " \"text\": \"x\"}",
                                   NULL, &opts, "email");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    char *v = state_value("email", "offset");
    ck_assert_str_eq(v, "1234");
    free(v);
    ck_assert_ptr_null(state_value("hotline_csv", "offset")); /* namespaced by owner */
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    for (int i = 0; i < 2; i++) {
        uint64_t found = 0;
        ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", refs[i], &found), 0);
        ck_assert_uint_eq(found, o.case_id);
    }
    voc_txn_abort(&txn);

    /* A repeat still moves the checkpoint on (the row is done, just done before). */
    opts.state_value = "5678";
    o = create_opts("{\"channel\": \"email\", \"external_id\": \"<m0@example.com>\", "
                    "\"text\": \"x\"}",
                    NULL, &opts, "email");
    ck_assert_int_eq(o.status, VOC_SUBMIT_EXISTS);
    v = state_value("email", "offset");
    ck_assert_str_eq(v, "5678");
    free(v);

    /* State on its own, then deleted. */
    struct outcome s = {0};
    ck_assert_int_eq(voc_ops_set_state(writer, "email", "cursor", "abc", 3, on_result, &s), 0);
    wait_for(&s);
    ck_assert_int_ne(s.status, VOC_SUBMIT_INVALID);
    ck_assert_int_ne(s.status, VOC_SUBMIT_UNAVAILABLE);
    v = state_value("email", "cursor");
    ck_assert_str_eq(v, "abc");
    free(v);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(voc_ops_set_state(writer, "email", "cursor", NULL, 0, on_result, &s), 0);
    wait_for(&s);
    ck_assert_ptr_null(state_value("email", "cursor"));
}
END_TEST

/* When the store cannot take the write, neither the case nor its state nor its refs exist,
 * and the id is not used up. */
START_TEST(all_or_nothing_when_full)
{
    start(256 << 10, 256 << 10); /* room for a case, but cannot grow at all */
    static char big[1 << 20];
    memset(big, 's', sizeof big);
    static const char *const refs[] = {"<big@example.com>"};
    struct voc_submit_opts opts = {.state_key = "offset",
                                   .state_value = big,
                                   .state_value_len = sizeof big,
                                   .refs = refs,
                                   .ref_count = 1};
    struct outcome o = create_opts("{\"channel\": \"email\", \"external_id\": \"E1\", "
                                   "\"text\": \"x\"}",
                                   NULL, &opts, "email");
    ck_assert_int_eq(o.status, VOC_SUBMIT_UNAVAILABLE);
    ck_assert_int_eq(o.http, 503);
    ck_assert_str_eq(o.code, "unavailable");
    ck_assert_uint_eq(last_id(), 0);
    ck_assert_ptr_null(state_value("email", "offset"));
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    uint64_t found;
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", "E1", &found), MDB_NOTFOUND);
    ck_assert_int_eq(voc_casedb_ref_get(&txn, "email", refs[0], &found), MDB_NOTFOUND);
    voc_txn_abort(&txn);

    o = create("{\"channel\": \"email\", \"external_id\": \"E1\", \"text\": \"x\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    ck_assert_uint_eq(o.case_id, 1);
}
END_TEST

/* A batch that fills the map is rolled back, the map grows and the batch runs again: what it
 * counts in /metrics must show once, as it is stored once. */
START_TEST(metrics_count_once_when_the_map_grows)
{
    voc_ops_metrics_init();
    struct voc_metric *events_total =
        voc_metric_register("vocd_events_appended_total", NULL, VOC_METRIC_COUNTER, NULL);
    start(256 << 10, 64 << 20); /* too small for the state below: it grows a few times */
    static char big[1 << 20];
    memset(big, 's', sizeof big);
    struct voc_submit_opts opts = {
        .state_key = "offset", .state_value = big, .state_value_len = sizeof big};
    int64_t before = voc_metric_value(events_total);
    struct outcome o =
        create_opts("{\"channel\": \"email\", \"text\": \"x\"}", NULL, &opts, "email");
    ck_assert_int_eq(o.status, VOC_SUBMIT_CREATED);
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_gt(info.map_size, 256 << 10);
    json_t *all = events(o.case_id);
    ck_assert_int_eq(voc_metric_value(events_total) - before, (int64_t)json_array_size(all));
    json_decref(all);
}
END_TEST

static size_t count_events(uint64_t id, const char *type)
{
    json_t *all = events(id);
    size_t n = 0, i;
    json_t *e;
    json_array_foreach (all, i, e)
        n += strcmp(str(e, "type"), type) == 0;
    json_decref(all);
    return n;
}

static bool has_tag(uint64_t id, const char *tag)
{
    json_t *r = record(id);
    size_t i;
    json_t *t;
    bool found = false;
    json_array_foreach (json_object_get(json_object_get(r, "classification"), "tags"), i, t)
        found = found || strcmp(json_string_value(t), tag) == 0;
    json_decref(r);
    return found;
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 64 actions per hook and chains 8 deep would allow 64^8 events in one transaction; one
 * write's actions stop at 256, the case is tagged rule_error, and the write still commits. */
START_TEST(action_fan_out_is_bounded)
{
    start_profile("fanout.lua");
    ck_assert_int_eq(create("{\"channel\": \"web\", \"text\": \"x\"}").status, VOC_SUBMIT_CREATED);
    ck_assert(!has_tag(1, "rule_error"));

    /* Wide: 64 pongs of 64 notifications each. Exactly 256 actions are carried out, in
     * order: pong, its 64 notifications, the next pong ... */
    double t0 = seconds_now();
    struct outcome o = append_declared(1, "{\"type\": \"fan\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    ck_assert_uint_eq(count_events(1, "pong"), 4);
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_eq(info.entries[VOC_DB_OUTBOX], 256 - 4);
    ck_assert(has_tag(1, "rule_error"));

    /* Deep: every ping answers with 64 pings. The chain stops at depth 8, the budget after
     * 256 actions. */
    ck_assert_int_eq(create("{\"channel\": \"web\", \"text\": \"y\"}").status, VOC_SUBMIT_CREATED);
    o = append_declared(2, "{\"type\": \"ping\"}");
    ck_assert_int_eq(o.status, VOC_SUBMIT_APPENDED);
    size_t pings = count_events(2, "ping");
    ck_assert_uint_ge(pings, 1 + 8);
    ck_assert_uint_le(pings, 1 + 256);
    ck_assert(has_tag(2, "rule_error"));
    ck_assert_msg(seconds_now() - t0 < 20, "fan-out took %.1f s", seconds_now() - t0);

    /* The next write has its own budget. */
    o = append_declared(1, "{\"type\": \"fan\"}");
    ck_assert_uint_eq(count_events(1, "pong"), 8);
}
END_TEST

START_TEST(tags_per_case_are_bounded)
{
    start_profile("fanout.lua");
    ck_assert_int_eq(create("{\"channel\": \"web\", \"text\": \"x\"}").status, VOC_SUBMIT_CREATED);
    ck_assert_int_eq(append_declared(1, "{\"type\": \"tagged\"}").status, VOC_SUBMIT_APPENDED);
    json_t *r = record(1);
    json_t *tags = json_object_get(json_object_get(r, "classification"), "tags");
    ck_assert_uint_eq(json_array_size(tags), 64);
    json_decref(r);
    ck_assert(!has_tag(1, "rule_error"));
    /* 64 more: none fit; rule_error still goes in. */
    ck_assert_int_eq(append_declared(1, "{\"type\": \"tagged\"}").status, VOC_SUBMIT_APPENDED);
    r = record(1);
    tags = json_object_get(json_object_get(r, "classification"), "tags");
    ck_assert_uint_eq(json_array_size(tags), 65);
    ck_assert_str_eq(json_string_value(json_array_get(tags, 64)), "rule_error");
    json_decref(r);
}
END_TEST

/* A notify action naming no configured notifier is the profile's fault: not queued (it could
 * never be delivered), rule_error on the case; the actions around it still run. */
START_TEST(notify_to_unknown_notifier_is_a_rule_error)
{
    start_profile("fanout.lua");
    ck_assert_int_eq(create("{\"channel\": \"web\", \"text\": \"x\"}").status, VOC_SUBMIT_CREATED);
    ck_assert_int_eq(append_declared(1, "{\"type\": \"typo\"}").status, VOC_SUBMIT_APPENDED);
    ck_assert(has_tag(1, "rule_error"));
    struct voc_store_info info;
    ck_assert_int_eq(voc_store_info(store, &info), 0);
    ck_assert_uint_eq(info.entries[VOC_DB_OUTBOX], 1); /* only the one to ops-mail */
}
END_TEST

/* on_event of `received` runs before classification: a failure there is kept as a tag. */
START_TEST(rule_error_before_classification)
{
    start_profile("fanout.lua");
    ck_assert_int_eq(create("{\"channel\": \"web\", \"subject\": \"fail-received\", "
                            "\"text\": \"x\"}")
                         .status,
                     VOC_SUBMIT_CREATED);
    ck_assert(has_tag(1, "rule_error"));
    json_t *all = events(1);
    json_t *classified = json_array_get(all, 1);
    ck_assert_str_eq(str(classified, "type"), "classified");
    json_t *tags = json_object_get(json_object_get(classified, "data"), "tags");
    ck_assert_uint_eq(json_array_size(tags), 1);
    ck_assert_str_eq(json_string_value(json_array_get(tags, 0)), "rule_error");
    json_decref(all);
}
END_TEST

static Suite *case_ops_suite(void)
{
    Suite *s = suite_create("case_ops");
    TCase *tc = tcase_create("case_ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_and_idempotency);
    tcase_add_test(tc, concurrent_duplicates);
    tcase_add_test(tc, events_in_order);
    tcase_add_test(tc, refusals_write_nothing);
    tcase_add_test(tc, waiting_and_resumed);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, agent_department_fence);
    tcase_add_test(tc, event_refs);
    tcase_add_test(tc, plugin_state_and_refs_with_the_case);
    tcase_add_test(tc, all_or_nothing_when_full);
    tcase_add_test(tc, action_fan_out_is_bounded);
    tcase_add_test(tc, tags_per_case_are_bounded);
    tcase_add_test(tc, rule_error_before_classification);
    tcase_add_test(tc, notify_to_unknown_notifier_is_a_rule_error);
    tcase_add_test(tc, metrics_count_once_when_the_map_grows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    voc_log_set_level(VOC_LOG_ERROR); /* the bounded tests log warnings by design */
    SRunner *sr = srunner_create(case_ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
