/* The HTTP API of docs/api.md: authentication and roles, then one handler per endpoint.
 * Reads run on the event loop in a read transaction; writes go to the writer as jobs and
 * are answered from their completion callback, i.e. only once durable. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <sys/queue.h>
#include <stdatomic.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "case_ops.h"
#include "case_view.h"
#include "casedb.h"
#include "daemon.h"
#include "http.h"
#include "intake.h"
#include "jsonutil.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "plugin_host.h"
#include "rules.h"
#include "sla.h"
#include "store.h"
#include "textnorm.h"
#include "timeutil.h"
#include "version.h"
#include "writer.h"

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 1000
/* Index entries one list request may look at before it returns a short page with a
 * cursor: keeps a selective filter on a big store from stalling the event loop. */
#define LIST_MAX_SCAN 20000
/* Seconds a client should wait after a 503 before trying again. */
#define RETRY_AFTER_BUSY 1
#define RETRY_AFTER_FULL 30

struct request {
    struct voc_daemon *d;
    struct evhttp_request *req;
    const struct voc_token_config *token;
};

static bool role_in(const struct request *r, unsigned mask)
{
    return (mask & (1u << r->token->role)) != 0;
}

#define R(role) (1u << VOC_ROLE_##role)

static bool require_role(struct request *r, unsigned mask)
{
    if (role_in(r, mask))
        return true;
    voc_http_reply_error(r->req, 403, "forbidden", "the %s role may not do this",
                         voc_role_name(r->token->role));
    return false;
}

static void actor_of(const struct request *r, struct voc_actor *actor)
{
    actor->name = r->token->name;
    if (r->token->role == VOC_ROLE_AGENT) {
        actor->departments = (const char *const *)r->token->departments;
        actor->department_count = r->token->department_count;
    } else {
        actor->departments = NULL;
        actor->department_count = 0;
    }
}

static bool agent_may_see(const struct voc_token_config *token, const json_t *record)
{
    if (token->role != VOC_ROLE_AGENT)
        return true;
    json_t *c = json_object_get(record, "classification");
    const char *dept = voc_json_str(c, "department");
    for (size_t i = 0; i < token->department_count; i++) {
        if (dept && strcmp(dept, token->departments[i]) == 0)
            return true;
        size_t k;
        json_t *collab;
        json_array_foreach (json_object_get(c, "collaborators"), k, collab)
            if (strcmp(json_string_value(collab), token->departments[i]) == 0)
                return true;
    }
    return false;
}

static void reply_store_error(struct evhttp_request *req, int rc)
{
    if (voc_store_error_is_full(rc)) {
        voc_http_reply_unavailable(req, RETRY_AFTER_FULL, "the case store cannot be read now");
        return;
    }
    voc_error("api", "store error=\"%s\"", mdb_strerror(rc));
    voc_http_reply_error(req, 500, "internal", "store error: %s", mdb_strerror(rc));
}

/* ---- write completion: the reply goes out only now, after the commit ---- */

static void reply_submit_result(struct evhttp_request *req, const struct voc_submit_result *res)
{
    switch (res->status) {
    case VOC_SUBMIT_CREATED:
    case VOC_SUBMIT_EXISTS:
        voc_http_reply_json(req, res->http_status,
                            json_pack("{s:I, s:b}", "id", (json_int_t)res->case_id, "created",
                                      res->status == VOC_SUBMIT_CREATED));
        break;
    case VOC_SUBMIT_APPENDED:
        voc_http_reply_json(
            req, 201,
            json_pack("{s:I, s:i}", "id", (json_int_t)res->case_id, "seq", (int)res->event_seq));
        break;
    case VOC_SUBMIT_INVALID:
        voc_http_reply_error(req, res->http_status, res->error_code, "%s", res->message);
        break;
    case VOC_SUBMIT_UNAVAILABLE:
        voc_http_reply_unavailable(req, RETRY_AFTER_FULL, res->message);
        break;
    }
}

static void on_case_written(void *arg, const struct voc_submit_result *res)
{
    reply_submit_result(arg, res);
}

/* An appended event answers with the case's new state, read after the commit. */
struct event_reply {
    struct voc_daemon *d;
    struct evhttp_request *req;
};

static void on_event_written(void *arg, const struct voc_submit_result *res)
{
    struct event_reply *er = arg;
    if (res->status == VOC_SUBMIT_APPENDED) {
        const char *state = NULL;
        json_t *record = NULL;
        struct voc_txn txn;
        if (voc_txn_begin_read(er->d->store, &txn) == 0) {
            if (voc_casedb_get(&txn, res->case_id, &record) == 0)
                state = voc_json_str(record, "state");
            voc_txn_abort(&txn);
        }
        voc_http_reply_json(er->req, 201,
                            json_pack("{s:I, s:i, s:s?}", "id", (json_int_t)res->case_id, "seq",
                                      (int)res->event_seq, "state", state));
        json_decref(record);
    } else {
        reply_submit_result(er->req, res);
    }
    free(er);
}

static void busy(struct evhttp_request *req)
{
    voc_http_reply_unavailable(req, RETRY_AFTER_BUSY,
                               "the writer is backed up (writer.queue_limit); try again shortly");
}

/* ---- POST /api/v1/cases ---- */

static void create_case(struct request *r)
{
    if (!require_role(r, R(ADMIN) | R(AGENT) | R(INGEST)))
        return;
    size_t len;
    const char *body = voc_http_body(r->d->http, r->req, &len);
    if (!body)
        return;
    struct voc_err err = {0};
    json_t *record = NULL, *intake = NULL;
    if (voc_json_parse_object(body, len, &record, &err) != 0 ||
        voc_intake_validate(record, "api", voc_now_us(), &intake, &err) != 0) {
        json_decref(record);
        voc_http_reply_error(r->req, err.status, err.code, "%s", err.message);
        return;
    }
    json_decref(record);
    struct voc_actor actor;
    actor_of(r, &actor);
    actor.departments = NULL; /* an agent may file a case for any department */
    if (voc_ops_create_case(r->d->writer, intake, &actor, NULL, NULL, on_case_written, r->req))
        busy(r->req);
}

/* ---- POST /api/v1/cases/{id}/events ---- */

static bool declared_event_type(const char *type, void *arg)
{
    (void)arg;
    (void)type;
    /* The writer checks profile types against the profile it runs; here we only let them
     * through to it. Core types are validated fully in voc_event_validate. */
    return true;
}

static void post_event(struct request *r, uint64_t id)
{
    if (!require_role(r, R(ADMIN) | R(AGENT)))
        return;
    size_t len;
    const char *body = voc_http_body(r->d->http, r->req, &len);
    if (!body)
        return;
    struct voc_err err = {0};
    json_t *parsed = NULL, *event = NULL;
    if (voc_json_parse_object(body, len, &parsed, &err) != 0 ||
        voc_event_validate(parsed, declared_event_type, NULL, &event, &err) != 0) {
        json_decref(parsed);
        voc_http_reply_error(r->req, err.status, err.code, "%s", err.message);
        return;
    }
    json_decref(parsed);
    struct voc_actor actor;
    actor_of(r, &actor);
    struct event_reply *er = malloc(sizeof *er);
    if (!er) {
        json_decref(event);
        voc_http_reply_error(r->req, 500, "internal", "out of memory");
        return;
    }
    er->d = r->d;
    er->req = r->req;
    if (voc_ops_append_event(r->d->writer, id, event, &actor, NULL, NULL, on_event_written, er)) {
        free(er);
        busy(r->req);
    }
}

/* ---- GET /api/v1/cases/{id} ---- */

static void get_case(struct request *r, uint64_t id)
{
    if (!require_role(r, R(ADMIN) | R(AGENT) | R(VIEWER)))
        return;
    struct voc_txn txn;
    int rc = voc_txn_begin_read(r->d->store, &txn);
    if (rc) {
        reply_store_error(r->req, rc);
        return;
    }
    json_t *record = NULL, *events = NULL;
    rc = voc_casedb_get(&txn, id, &record);
    if (rc == 0 && !agent_may_see(r->token, record))
        rc = MDB_NOTFOUND;
    if (rc == 0)
        rc = voc_casedb_events(&txn, id, &events);
    voc_txn_abort(&txn);
    if (rc == MDB_NOTFOUND) {
        json_decref(record);
        voc_http_reply_error(r->req, 404, "not_found", "no case %" PRIu64, id);
        return;
    }
    if (rc) {
        json_decref(record);
        reply_store_error(r->req, rc);
        return;
    }
    json_t *view = voc_case_view(record, events, voc_now_us());
    json_object_del(view, "normalized"); /* a matching aid, not part of the case */
    if (r->token->role == VOC_ROLE_VIEWER)
        voc_case_mask_for_viewer(view);
    json_decref(record);
    json_decref(events);
    voc_http_reply_json(r->req, 200, view);
}

/* ---- GET /api/v1/cases ---- */

struct list_filter {
    struct request *r;
    bool breached_only;
    char *q; /* normalised */
};

static bool record_contains(struct voc_textnorm *tn, const json_t *record, const char *q)
{
    const char *stored = voc_json_str(record, "normalized");
    if (stored)
        return strstr(stored, q) != NULL;
    static const char *const fields[] = {"subject", "text", NULL};
    for (int i = 0; fields[i]; i++) {
        json_t *v = json_object_get(record, fields[i]);
        if (!json_is_string(v))
            continue;
        char *norm = NULL;
        size_t norm_len;
        if (voc_normalize(tn, json_string_value(v), json_string_length(v), &norm, &norm_len) !=
            VOC_NORM_OK)
            continue;
        bool found = strstr(norm, q) != NULL;
        free(norm);
        if (found)
            return true;
    }
    return false;
}

static bool list_accept(const json_t *record, void *arg)
{
    struct list_filter *f = arg;
    if (!agent_may_see(f->r->token, record))
        return false;
    if (f->breached_only && !json_is_true(json_object_get(record, "breached")))
        return false;
    if (f->q && !record_contains(f->r->d->textnorm, record, f->q))
        return false;
    return true;
}

static int parse_time_param(const char *value, int64_t *out)
{
    return voc_parse_time(value, out);
}

static void list_cases(struct request *r)
{
    if (!require_role(r, R(ADMIN) | R(AGENT) | R(VIEWER)))
        return;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *query = evhttp_uri_get_query(uri);
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (query && evhttp_parse_query_str(query, &params) != 0) {
        voc_http_reply_error(r->req, 400, "bad_request", "malformed query string");
        return;
    }
    struct voc_case_query q = {.since_us = INT64_MIN,
                               .until_us = INT64_MAX,
                               .limit = LIST_DEFAULT_LIMIT,
                               .max_scan = LIST_MAX_SCAN};
    struct list_filter f = {.r = r};
    const char *problem = NULL;
    char detail[200] = "";
    struct evkeyval *kv;
    TAILQ_FOREACH (kv, &params, next) {
        const char *k = kv->key, *v = kv->value;
        if (!voc_utf8_valid(v, strlen(v))) {
            problem = "invalid_utf8";
            snprintf(detail, sizeof detail, "parameter '%s' is not valid UTF-8", k);
            break;
        }
        if (strcmp(k, "state") == 0) {
            enum voc_state s;
            if (voc_state_parse(v, &s) != 0) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "unknown state '%.60s'", v);
                break;
            }
            q.state = v;
        } else if (strcmp(k, "category") == 0) {
            q.category = v;
        } else if (strcmp(k, "kind") == 0) {
            q.kind = v;
        } else if (strcmp(k, "channel") == 0) {
            q.channel = v;
        } else if (strcmp(k, "department") == 0) {
            q.department = v;
        } else if (strcmp(k, "breached") == 0) {
            if (strcmp(v, "true") && strcmp(v, "false")) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "breached must be true or false");
                break;
            }
            f.breached_only = strcmp(v, "true") == 0;
        } else if (strcmp(k, "since") == 0 || strcmp(k, "until") == 0) {
            int64_t t;
            if (parse_time_param(v, &t) != 0) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "%s must be RFC 3339 or YYYY-MM-DD", k);
                break;
            }
            if (k[0] == 's')
                q.since_us = t;
            else
                q.until_us = t;
        } else if (strcmp(k, "q") == 0) {
            free(f.q);
            f.q = NULL;
            size_t n;
            if (v[0] && voc_normalize(r->d->textnorm, v, strlen(v), &f.q, &n) != VOC_NORM_OK) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "q cannot be normalised");
                break;
            }
        } else if (strcmp(k, "limit") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > LIST_MAX_LIMIT) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "limit must be 1..%d", LIST_MAX_LIMIT);
                break;
            }
            q.limit = (size_t)n;
        } else if (strcmp(k, "cursor") == 0) {
            if (voc_cursor_parse(v, &q.cursor_received_us, &q.cursor_id) != 0) {
                problem = "bad_request";
                snprintf(detail, sizeof detail, "cursor is not one this server gave out");
                break;
            }
            q.has_cursor = true;
        } else {
            problem = "bad_request";
            snprintf(detail, sizeof detail, "unknown parameter '%.60s'", k);
            break;
        }
    }
    if (problem) {
        voc_http_reply_error(r->req, 400, problem, "%s", detail);
        goto out;
    }
    q.accept = list_accept;
    q.accept_arg = &f;
    struct voc_txn txn;
    int rc = voc_txn_begin_read(r->d->store, &txn);
    if (rc) {
        reply_store_error(r->req, rc);
        goto out;
    }
    struct voc_case_page page;
    rc = voc_casedb_list(&txn, &q, &page);
    voc_txn_abort(&txn);
    if (rc) {
        reply_store_error(r->req, rc);
        goto out;
    }
    json_t *cases = json_array();
    size_t i;
    json_t *record;
    json_array_foreach (page.records, i, record)
        json_array_append_new(cases, voc_case_summary(record));
    json_decref(page.records);
    json_t *body = json_pack("{s:o}", "cases", cases);
    if (page.more) {
        char cursor[64];
        voc_cursor_format(page.next_received_us, page.next_id, cursor, sizeof cursor);
        json_object_set_new(body, "next_cursor", json_string(cursor));
    } else {
        json_object_set_new(body, "next_cursor", json_null());
    }
    voc_http_reply_json(r->req, 200, body);
out:
    free(f.q);
    evhttp_clear_headers(&params);
}

/* ---- GET /api/v1/breaches ---- */

struct breach_scan {
    struct request *r;
    struct voc_txn *txn;
    json_t *items;
    size_t limit;
    size_t scanned;
    int64_t now_us;
    int error;
    bool more; /* stopped early: next is where the next page starts */
    struct voc_alert_pos next;
};

static int collect_breach(uint64_t case_id, uint16_t index, int64_t due_us, void *arg)
{
    struct breach_scan *s = arg;
    /* An agent's filter may skip most of the index, and each entry costs a case read:
     * like the case list, stop after LIST_MAX_SCAN entries with a short page and a cursor
     * rather than stall the event loop on a big store. */
    if (json_array_size(s->items) >= s->limit || s->scanned >= LIST_MAX_SCAN) {
        s->more = true;
        s->next = (struct voc_alert_pos){.due_us = due_us, .case_id = case_id, .clock = index};
        return 1;
    }
    s->scanned++;
    json_t *record;
    int rc = voc_casedb_get(s->txn, case_id, &record);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc) {
        s->error = rc;
        return -1;
    }
    json_t *clock = json_array_get(json_object_get(record, "clocks"), index);
    if (clock && agent_may_see(s->r->token, record)) {
        json_t *c = json_object_get(record, "classification");
        json_t *item = json_pack(
            "{s:I, s:O, s:O, s:O, s:O, s:f, s:O, s:O, s:O, s:O, s:O, s:O}", "case_id",
            (json_int_t)case_id, "clock", json_object_get(clock, "name"), "cycle",
            json_object_get(clock, "cycle"), "status", json_object_get(clock, "status"), "due_at",
            json_object_get(clock, "due_at"), "overdue_s",
            (double)((s->now_us - due_us) / 1000) / 1e3, "department",
            json_object_get(c, "department"), "state", json_object_get(record, "state"), "subject",
            json_object_get(record, "subject"), "category", json_object_get(c, "category"),
            "severity", json_object_get(c, "severity"), "priority", json_object_get(c, "priority"));
        if (item)
            json_array_append_new(s->items, item);
    }
    json_decref(record);
    return 0;
}

static void list_breaches(struct request *r)
{
    if (!require_role(r, R(ADMIN) | R(AGENT) | R(VIEWER)))
        return;
    size_t limit = 100;
    struct voc_alert_pos from;
    bool has_from = false;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (query && evhttp_parse_query_str(query, &params) != 0) {
        voc_http_reply_error(r->req, 400, "bad_request", "malformed query string");
        return;
    }
    struct evkeyval *kv;
    TAILQ_FOREACH (kv, &params, next) {
        if (strcmp(kv->key, "cursor") == 0) {
            if (voc_sla_alert_cursor_parse(kv->value, &from) != 0) {
                voc_http_reply_error(r->req, 400, "bad_request",
                                     "cursor is not one this server gave out");
                evhttp_clear_headers(&params);
                return;
            }
            has_from = true;
            continue;
        }
        char *end;
        long n = strtol(kv->value, &end, 10);
        if (strcmp(kv->key, "limit") != 0 || *end || end == kv->value || n < 1 ||
            n > LIST_MAX_LIMIT) {
            voc_http_reply_error(r->req, 400, "bad_request",
                                 "the parameters are limit (1..%d) and cursor", LIST_MAX_LIMIT);
            evhttp_clear_headers(&params);
            return;
        }
        limit = (size_t)n;
    }
    evhttp_clear_headers(&params);
    struct voc_txn txn;
    int rc = voc_txn_begin_read(r->d->store, &txn);
    if (rc) {
        reply_store_error(r->req, rc);
        return;
    }
    struct breach_scan s = {
        .r = r, .txn = &txn, .items = json_array(), .limit = limit, .now_us = voc_now_us()};
    rc = voc_sla_list_alerts(&txn, has_from ? &from : NULL, collect_breach, &s);
    voc_txn_abort(&txn);
    if (rc || s.error) {
        json_decref(s.items);
        reply_store_error(r->req, s.error ? s.error : rc);
        return;
    }
    json_t *next = json_null();
    if (s.more) {
        char cursor[80];
        voc_sla_alert_cursor_format(&s.next, cursor, sizeof cursor);
        next = json_string(cursor);
    }
    voc_http_reply_json(r->req, 200,
                        json_pack("{s:o, s:o}", "breaches", s.items, "next_cursor", next));
}

/* ---- GET /api/v1/status ---- */

static void get_status(struct request *r)
{
    if (!require_role(r, R(ADMIN) | R(AGENT) | R(VIEWER)))
        return;
    struct voc_daemon *d = r->d;
    struct voc_store_info info;
    if (voc_store_info(d->store, &info) != 0) {
        voc_http_reply_error(r->req, 500, "internal", "cannot read store statistics");
        return;
    }
    struct voc_writer_stats *ws = voc_writer_stats(d->writer);
    json_t *body = json_pack(
        "{s:s, s:I, s:s?, s:I, s:{s:s, s:I, s:I, s:i}, s:{s:I, s:I}, s:b}", "version", VOC_VERSION,
        "uptime_s", (json_int_t)((voc_now_us() - d->started_us) / VOC_US_PER_S), "profile",
        d->profile_name, "cases", (json_int_t)info.entries[VOC_DB_CASES], "store", "path",
        voc_store_path(d->store), "map_size", (json_int_t)info.map_size, "used_bytes",
        (json_int_t)info.used_bytes, "schema_version", VOC_SCHEMA_VERSION, "writer", "queue",
        (json_int_t)atomic_load(&ws->queue_length), "queue_limit",
        (json_int_t)voc_writer_queue_limit(d->writer), "draining", d->draining);
    json_t *plugins = json_array();
    for (size_t i = 0; i < voc_plugins_count(d->plugins); i++)
        json_array_append_new(plugins, json_string(voc_plugins_name(d->plugins, i)));
    json_object_set_new(body, "plugins", plugins);
    voc_http_reply_json(r->req, 200, body);
}

/* ---- POST /api/v1/admin/reload ---- */

static void admin_reload(struct request *r)
{
    if (!require_role(r, R(ADMIN)))
        return;
    struct voc_diag diag;
    voc_diag_init(&diag);
    char by[160];
    snprintf(by, sizeof by, "api=admin/reload token=%s",
             r->token && r->token->name ? r->token->name : "?");
    if (voc_daemon_reload_logged(r->d, by, &diag) == 0) {
        json_t *warnings = json_array();
        for (size_t i = 0; i < diag.count; i++)
            json_array_append_new(warnings, json_string(diag.messages[i]));
        voc_http_reply_json(r->req, 200,
                            json_pack("{s:b, s:s?, s:o}", "reloaded", 1, "profile",
                                      r->d->profile_name, "warnings", warnings));
    } else {
        json_t *details = json_array();
        for (size_t i = 0; i < diag.count; i++)
            json_array_append_new(details, json_string(diag.messages[i]));
        voc_http_reply_json(
            r->req, 422,
            json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "reload_failed", "message",
                      "the new configuration or profile is invalid; the old one stays", "details",
                      details));
    }
    voc_diag_free(&diag);
}

/* ---- POST /api/v1/admin/backup ----
 * mdb_env_copyfd2 may take a while on a big store, so it runs on its own thread into an
 * unlinked temporary file, which is then streamed back with sendfile. */

struct voc_backup {
    struct voc_daemon *d;
    struct evhttp_request *req;
    int fd;
    int rc;
    pthread_t thread;
    struct event *finished;
};

static void *backup_thread(void *arg)
{
    struct voc_backup *b = arg;
    b->rc = voc_store_copy_to_fd(b->d->store, b->fd);
    event_active(b->finished, 0, 0);
    return NULL;
}

static void backup_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_backup *b = arg;
    pthread_join(b->thread, NULL);
    event_free(b->finished);
    b->d->backup = NULL;
    struct stat st;
    if (b->rc != 0 || fstat(b->fd, &st) != 0) {
        voc_error("api", "backup failed error=\"%s\"", mdb_strerror(b->rc ? b->rc : errno));
        voc_http_reply_error(b->req, 500, "internal", "backup failed: %s",
                             mdb_strerror(b->rc ? b->rc : errno));
        close(b->fd);
        free(b);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    /* evbuffer_add_file takes the descriptor and sends it with sendfile. */
    evbuffer_add_file(out, b->fd, 0, st.st_size);
    struct evkeyvalq *h = evhttp_request_get_output_headers(b->req);
    evhttp_add_header(h, "Content-Disposition", "attachment; filename=\"data.mdb\"");
    voc_info("api", "backup sent bytes=%lld", (long long)st.st_size);
    voc_http_reply_text(b->req, 200, "application/octet-stream", out);
    evbuffer_free(out);
    free(b);
}

static void admin_backup(struct request *r)
{
    if (!require_role(r, R(ADMIN)))
        return;
    if (r->d->backup) {
        voc_http_reply_error(r->req, 409, "conflict", "a backup is already running");
        return;
    }
    struct voc_backup *b = calloc(1, sizeof *b);
    if (!b) {
        voc_http_reply_error(r->req, 500, "internal", "out of memory");
        return;
    }
    b->d = r->d;
    b->req = r->req;
    b->fd = open(voc_store_path(r->d->store), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (b->fd < 0) {
        voc_http_reply_error(r->req, 500, "internal", "cannot create a temporary file: %s",
                             strerror(errno));
        free(b);
        return;
    }
    b->finished = event_new(r->d->base, -1, 0, backup_finished, b);
    if (!b->finished || pthread_create(&b->thread, NULL, backup_thread, b) != 0) {
        if (b->finished)
            event_free(b->finished);
        close(b->fd);
        free(b);
        voc_http_reply_error(r->req, 500, "internal", "cannot start the backup");
        return;
    }
    r->d->backup = b;
}

void voc_api_shutdown(struct voc_daemon *d)
{
    struct voc_backup *b = d->backup;
    if (!b)
        return;
    /* The drain already waited for it as a request in flight, up to its timeout; the copy
     * cannot be interrupted, and the store must not close under it. */
    voc_warn("api", "shutdown waits for the running backup to finish");
    pthread_join(b->thread, NULL);
    event_free(b->finished);
    close(b->fd);
    /* The loop has stopped, so this reply will not reach the client; it hands the request
     * back to evhttp, which frees it (also when its client is already gone). */
    voc_http_reply_unavailable(b->req, RETRY_AFTER_BUSY, "vocd is shutting down");
    free(b);
    d->backup = NULL;
}

/* ---- routing ---- */

static bool parse_id(const char *s, size_t len, uint64_t *id)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *id = v;
    return v > 0;
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    voc_http_reply_error(req, 405, "method_not_allowed", "use %s here", allow);
}

static void route_api(struct evhttp_request *req, void *arg)
{
    struct voc_daemon *d = arg;
    struct request r = {.d = d, .req = req};
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    r.token = voc_auth_check(d->config, auth);
    if (!r.token) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"vocd\"");
        voc_http_reply_error(req, 401, "unauthorized",
                             auth ? "unknown token" : "Authorization: Bearer TOKEN is required");
        return;
    }
    const char *rest = path + strlen("/api/v1/");
    if (strcmp(rest, "cases") == 0) {
        if (method == EVHTTP_REQ_POST)
            create_case(&r);
        else if (method == EVHTTP_REQ_GET)
            list_cases(&r);
        else
            method_not_allowed(req, "GET, POST");
        return;
    }
    if (strncmp(rest, "cases/", 6) == 0) {
        const char *id_text = rest + 6;
        const char *slash = strchr(id_text, '/');
        size_t id_len = slash ? (size_t)(slash - id_text) : strlen(id_text);
        uint64_t id;
        if (!parse_id(id_text, id_len, &id)) {
            voc_http_reply_error(req, 404, "not_found", "no such case: %.*s", (int)id_len, id_text);
            return;
        }
        if (!slash) {
            if (method == EVHTTP_REQ_GET)
                get_case(&r, id);
            else
                method_not_allowed(req, "GET");
            return;
        }
        if (strcmp(slash, "/events") == 0) {
            if (method == EVHTTP_REQ_POST)
                post_event(&r, id);
            else
                method_not_allowed(req, "POST");
            return;
        }
    } else if (strcmp(rest, "breaches") == 0) {
        if (method == EVHTTP_REQ_GET)
            list_breaches(&r);
        else
            method_not_allowed(req, "GET");
        return;
    } else if (strcmp(rest, "status") == 0) {
        if (method == EVHTTP_REQ_GET)
            get_status(&r);
        else
            method_not_allowed(req, "GET");
        return;
    } else if (strcmp(rest, "admin/reload") == 0) {
        if (method == EVHTTP_REQ_POST)
            admin_reload(&r);
        else
            method_not_allowed(req, "POST");
        return;
    } else if (strcmp(rest, "admin/backup") == 0) {
        if (method == EVHTTP_REQ_POST)
            admin_backup(&r);
        else
            method_not_allowed(req, "POST");
        return;
    }
    voc_http_reply_error(req, 404, "not_found", "no such endpoint: %s", path);
}

static void route_healthz(struct evhttp_request *req, void *arg)
{
    struct voc_daemon *d = arg;
    if (d->draining)
        voc_http_reply_json(req, 503, json_pack("{s:s}", "status", "draining"));
    else
        voc_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void route_metrics(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    voc_metrics_render(out);
    voc_http_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", out);
    evbuffer_free(out);
}

void voc_api_register(struct voc_daemon *d)
{
    voc_http_route(d->http, "/api/v1/", route_api, d, NULL);
    voc_http_route(d->http, "/healthz", route_healthz, d, NULL);
    voc_http_route(d->http, "/metrics", route_metrics, d, NULL);
}
