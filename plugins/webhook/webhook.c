/* The webhook channel: POST <path><source> with a JSON body becomes a case.
 *
 * Each configured source is one sender (a web form, a shop, a chat platform) with its own
 * HMAC secret and, optionally, a map from its payload to the intake record (mapping.h,
 * signature.h, docs/webhook.md). A request is answered only when the outcome is known: 201
 * once the case is durable, 200 for a repeat, 4xx with the reason, 503 + Retry-After when the
 * core cannot take it now. The plugin holds at most `max_pending` requests waiting for the
 * writer, so a flood costs bounded memory. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vocd/plugin.h>

#include "mapping.h"
#include "signature.h"

#define MAX_SOURCE_NAME 32 /* the source name is the default channel: same limit */
#define RETRY_AFTER_BUSY "1"
#define RETRY_AFTER_FULL "30"
#define REFUSAL_LINES_PER_SECOND 5 /* a flood of bad posts must not flood the log */

/* ---- config ------------------------------------------------------------------------------ */

struct source_config {
    char *name;
    char *secret;
    struct voc_kv *map;
    size_t map_count;
    char **channels;
    size_t channel_count;
};

struct webhook_config {
    char *path;
    uint64_t max_body_size;
    double timestamp_tolerance;
    long long max_pending;
    struct source_config *sources;
    size_t source_count;
};

static const struct voc_option source_options[] = {
    {"name", VOC_OPT_STRING, offsetof(struct source_config, name), NULL, VOC_OPT_REQUIRED,
     "the source: route POST <path><name>, and the cases' channel unless the record sets one; "
     "[a-z0-9_-], at most 32 characters",
     NULL, 0, 0, NULL, 0, 0},
    {"secret", VOC_OPT_STRING, offsetof(struct source_config, secret), NULL, 0,
     "HMAC-SHA256 key for X-Voc-Signature; a source without one takes unsigned posts (and "
     "says so in the log)",
     NULL, 0, 0, NULL, 0, 0},
    {"map", VOC_OPT_STRING_MAP, offsetof(struct source_config, map), NULL, 0,
     "intake field <- JSON pointer into the payload (docs/webhook.md); without a map the body "
     "is an intake record",
     NULL, 0, offsetof(struct source_config, map_count), NULL, 0, 0},
    {"channels", VOC_OPT_STRING_LIST, offsetof(struct source_config, channels), NULL, 0,
     "channels this source's records may name (default: only the source's name); any other "
     "is refused with 400, so a sender cannot take another channel's external_ids",
     NULL, 0, offsetof(struct source_config, channel_count), NULL, 0, 0},
    {0},
};

static const struct voc_option webhook_options[] = {
    {"path", VOC_OPT_STRING, offsetof(struct webhook_config, path), "/hooks/", 0,
     "URL prefix of the sources' routes (starts and ends with '/'; a change needs a restart)", NULL,
     0, 0, NULL, 0, 0},
    {"max_body_size", VOC_OPT_SIZE, offsetof(struct webhook_config, max_body_size), "1MiB", 0,
     "largest body accepted (413 beyond it); at most 8 times http.max_body_size", NULL, 0, 0, NULL,
     0, 0},
    {"timestamp_tolerance", VOC_OPT_DURATION, offsetof(struct webhook_config, timestamp_tolerance),
     "5m", 0, "how far X-Voc-Timestamp may be from the server's clock, either way", NULL, 0, 0,
     NULL, 0, 0},
    {"max_pending", VOC_OPT_INT, offsetof(struct webhook_config, max_pending), "1024", 0,
     "requests waiting for the writer at most; beyond it 503 + Retry-After", NULL, 0, 0, NULL, 1,
     1000000},
    {"sources", VOC_OPT_TABLE_LIST, offsetof(struct webhook_config, sources), NULL, 0,
     "the senders, one route each", source_options, sizeof(struct source_config),
     offsetof(struct webhook_config, source_count), NULL, 0, 0},
    {0},
};

/* ---- state ------------------------------------------------------------------------------- */

struct source {
    const char *name;            /* in the config */
    struct voc_webhook_key *key; /* the secret, ready to sign; NULL = unsigned posts */
    struct voc_webhook_map *map; /* NULL = the body is an intake record */
    /* Channels its records may name (in the config); none listed = only `name`. The
     * idempotency key space is per channel: a source that could write `email` records
     * could take the external_id of a mail that has not arrived yet. */
    char *const *channels;
    size_t channel_count;
};

/* What one config compiles to; swapped as a whole on reload. */
struct source_set {
    struct source *items;
    size_t count;
};

struct webhook {
    struct voc_plugin *p;
    const struct voc_core_api *api;
    const struct webhook_config *cfg;
    struct source_set sources;
    char *route; /* the path registered at start (reload cannot move it) */
    size_t pending;
    bool stopped;
    time_t log_second;    /* refusal log lines: the second being counted ... */
    unsigned log_lines;   /* ... lines written in it */
    uint64_t log_skipped; /* lines left out since the last one written */
    struct voc_counter *c_accepted, *c_repeated, *c_refused, *c_unauthorized, *c_unavailable;
};

/* A request waiting for the writer's answer. */
struct pending {
    struct webhook *wh;
    struct evhttp_request *req;
};

/* ---- replies (the core's error format: {"error":{"code","message"}}) ----------------------- */

static void reply_json(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!buf) {
        free(text);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (text) {
        evbuffer_add(buf, text, strlen(text));
        free(text);
    } else {
        status = 500;
        reason = "Internal Server Error";
        evbuffer_add_printf(buf, "{\"error\":{\"code\":\"internal\",\"message\":\"out of "
                                 "memory\"}}");
    }
    evbuffer_add(buf, "\n", 1);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : "Server Error";
    }
}

static void reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt,
                        ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* json_pack refuses invalid UTF-8; a message quoting a hostile path must still go out. */
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    if (!body)
        body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", "(unprintable)");
    reply_json(req, status, reason_of(status), body);
}

static void reply_unavailable(struct webhook *wh, struct evhttp_request *req,
                              const char *retry_after, const char *message)
{
    wh->api->counter_add(wh->c_unavailable, 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", retry_after);
    reply_error(req, 503, "unavailable", "%s", message);
}

static void reply_refused(struct webhook *wh, struct evhttp_request *req, int status,
                          const char *code, const char *message)
{
    wh->api->counter_add(wh->c_refused, 1);
    reply_error(req, status, code, "%s", message);
}

/* ---- sources ------------------------------------------------------------------------------ */

static bool source_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_SOURCE_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void source_set_free(struct source_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        voc_webhook_key_free(set->items[i].key);
        voc_webhook_map_free(set->items[i].map);
    }
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

/* Check what the option table cannot (names, pointers, targets) and compile the maps. */
static int source_set_build(struct webhook *wh, const struct webhook_config *cfg,
                            struct source_set *out)
{
    struct source_set set = {calloc(cfg->source_count ? cfg->source_count : 1, sizeof *set.items),
                             0};
    if (!set.items) {
        wh->api->log(wh->p, VOC_PLOG_ERROR, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->source_count; i++) {
        const struct source_config *sc = &cfg->sources[i];
        if (!source_name_valid(sc->name)) {
            wh->api->log(wh->p, VOC_PLOG_ERROR,
                         "sources[%zu]: name '%s' must be 1-32 characters of a-z, 0-9, '_' or "
                         "'-' (it becomes the route and the channel)",
                         i, sc->name);
            goto fail;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->sources[j].name, sc->name) == 0) {
                wh->api->log(wh->p, VOC_PLOG_ERROR, "sources[%zu]: source '%s' is listed twice", i,
                             sc->name);
                goto fail;
            }
        }
        if (sc->secret && !sc->secret[0]) {
            wh->api->log(wh->p, VOC_PLOG_ERROR,
                         "sources[%zu] (%s): secret is empty; leave it out to take unsigned "
                         "posts",
                         i, sc->name);
            goto fail;
        }
        for (size_t k = 0; k < sc->channel_count; k++) {
            if (!source_name_valid(sc->channels[k])) {
                wh->api->log(wh->p, VOC_PLOG_ERROR,
                             "sources[%zu] (%s): channels: '%s' is not a channel name (1-32 "
                             "characters of a-z, 0-9, '_' or '-')",
                             i, sc->name, sc->channels[k]);
                goto fail;
            }
        }
        /* Counted before anything is allocated into it, so `fail` frees it either way. */
        struct source *s = &set.items[set.count++];
        s->name = sc->name;
        s->channels = sc->channels;
        s->channel_count = sc->channel_count;
        if (sc->secret && voc_webhook_key_new(sc->secret, strlen(sc->secret), &s->key) != 0) {
            wh->api->log(wh->p, VOC_PLOG_ERROR, "sources[%zu] (%s): cannot set up HMAC-SHA256", i,
                         sc->name);
            goto fail;
        }
        if (sc->map_count > 0) {
            char err[512];
            if (voc_webhook_map_compile(sc->map, sc->map_count, &s->map, err, sizeof err) != 0) {
                wh->api->log(wh->p, VOC_PLOG_ERROR, "sources[%zu] (%s): %s", i, sc->name, err);
                goto fail;
            }
        }
    }
    *out = set;
    return 0;
fail:
    source_set_free(&set);
    return -1;
}

static void announce_sources(struct webhook *wh)
{
    for (size_t i = 0; i < wh->sources.count; i++) {
        const struct source *s = &wh->sources.items[i];
        if (!s->key)
            wh->api->log(wh->p, VOC_PLOG_WARN,
                         "source %s has no secret: anyone who can reach %s%s can create cases",
                         s->name, wh->route, s->name);
        wh->api->log(wh->p, VOC_PLOG_INFO, "source %s: POST %s%s%s%s", s->name, wh->route, s->name,
                     s->key ? " (signed)" : " (unsigned)",
                     s->map ? " (mapped payload)" : " (intake record)");
    }
    if (wh->sources.count == 0)
        wh->api->log(wh->p, VOC_PLOG_WARN, "no sources configured: every post answers 404");
}

static bool channel_allowed(const struct source *s, const char *channel)
{
    if (s->channel_count == 0)
        return strcmp(channel, s->name) == 0;
    for (size_t i = 0; i < s->channel_count; i++)
        if (strcmp(channel, s->channels[i]) == 0)
            return true;
    return false;
}

static const struct source *find_source(const struct webhook *wh, const char *name)
{
    for (size_t i = 0; i < wh->sources.count; i++)
        if (strcmp(wh->sources.items[i].name, name) == 0)
            return &wh->sources.items[i];
    return NULL;
}

/* ---- requests ----------------------------------------------------------------------------- */

/* May a refusal be logged now? When yes, `suffix` gets " skipped=N" if lines were left out
 * since the last one (else ""). The counters count every refusal either way. */
static bool refusal_log_slot(struct webhook *wh, char *suffix, size_t len)
{
    time_t now = time(NULL);
    if (now != wh->log_second) {
        wh->log_second = now;
        wh->log_lines = 0;
    }
    if (wh->log_lines >= REFUSAL_LINES_PER_SECOND) {
        wh->log_skipped++;
        return false;
    }
    wh->log_lines++;
    suffix[0] = '\0';
    if (wh->log_skipped)
        snprintf(suffix, len, " skipped=%llu", (unsigned long long)wh->log_skipped);
    wh->log_skipped = 0;
    return true;
}

static void on_submitted(void *arg, const struct voc_submit_result *r)
{
    struct pending *pd = arg;
    struct webhook *wh = pd->wh;
    struct evhttp_request *req = pd->req;
    wh->pending--;
    free(pd);
    switch (r->status) {
    case VOC_SUBMIT_CREATED:
    case VOC_SUBMIT_APPENDED:
        wh->api->counter_add(wh->c_accepted, 1);
        reply_json(req, 201, "Created",
                   json_pack("{s:I, s:b}", "id", (json_int_t)r->case_id, "created", 1));
        break;
    case VOC_SUBMIT_EXISTS:
        wh->api->counter_add(wh->c_repeated, 1);
        reply_json(req, 200, "OK",
                   json_pack("{s:I, s:b}", "id", (json_int_t)r->case_id, "created", 0));
        break;
    case VOC_SUBMIT_INVALID:
        reply_refused(wh, req, r->http_status >= 400 ? r->http_status : 400,
                      r->error_code ? r->error_code : "bad_request",
                      r->message ? r->message : "the record was refused");
        break;
    case VOC_SUBMIT_UNAVAILABLE:
    default:
        reply_unavailable(wh, req, RETRY_AFTER_FULL,
                          r->message ? r->message : "the case store cannot take it now");
        break;
    }
}

/* 401 with the reason; the log says which source and why, for whoever debugs the sender. */
static void refuse_signature(struct webhook *wh, struct evhttp_request *req, const struct source *s,
                             enum voc_webhook_sig_status st, int64_t skew)
{
    wh->api->counter_add(wh->c_unauthorized, 1);
    const char *reason = voc_webhook_sig_reason(st);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "HMAC-SHA256 realm=\"vocd-webhook\"");
    char suffix[40];
    bool log = refusal_log_slot(wh, suffix, sizeof suffix);
    if (st == VOC_WEBHOOK_TS_EXPIRED) {
        if (log)
            wh->api->log(wh->p, VOC_PLOG_WARN, "refused source=%s reason=%s skew_s=%lld%s", s->name,
                         voc_webhook_sig_code(st), (long long)skew, suffix);
        reply_error(req, 401, "unauthorized", "%s: it is %lld s %s, the window is %.0f s", reason,
                    (long long)(skew < 0 ? -skew : skew), skew < 0 ? "behind" : "ahead",
                    wh->cfg->timestamp_tolerance);
        return;
    }
    if (log)
        wh->api->log(wh->p, VOC_PLOG_WARN, "refused source=%s reason=%s%s", s->name,
                     voc_webhook_sig_code(st), suffix);
    reply_error(req, 401, "unauthorized", "%s", reason);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct webhook *wh = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    size_t prefix = strlen(wh->route);
    const char *name = path && strncmp(path, wh->route, prefix) == 0 ? path + prefix : "";
    const struct source *s = find_source(wh, name);
    if (!s) {
        wh->api->counter_add(wh->c_refused, 1);
        if (source_name_valid(name))
            reply_error(req, 404, "not_found", "no webhook source named '%s'", name);
        else
            reply_error(req, 404, "not_found", "no such webhook source");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        wh->api->counter_add(wh->c_refused, 1);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_error(req, 405, "method_not_allowed", "%s%s takes POST only", wh->route, s->name);
        return;
    }
    if (wh->stopped) {
        reply_unavailable(wh, req, RETRY_AFTER_BUSY, "vocd is shutting down");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > wh->cfg->max_body_size) {
        wh->api->counter_add(wh->c_refused, 1);
        reply_error(req, 413, "payload_too_large",
                    "request body is %zu bytes, the limit is %llu (plugins.webhook.max_body_size)",
                    len, (unsigned long long)wh->cfg->max_body_size);
        return;
    }
    if (wh->pending >= (size_t)wh->cfg->max_pending) {
        reply_unavailable(wh, req, RETRY_AFTER_BUSY,
                          "too many webhook posts are waiting for the case store; retry shortly");
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    const struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    if (s->key) {
        int64_t skew = 0;
        enum voc_webhook_sig_status st =
            voc_webhook_verify(s->key, evhttp_find_header(headers, "X-Voc-Signature"),
                               evhttp_find_header(headers, "X-Voc-Timestamp"), body, len,
                               (int64_t)time(NULL), (int64_t)wh->cfg->timestamp_tolerance, &skew);
        if (st != VOC_WEBHOOK_SIG_OK) {
            refuse_signature(wh, req, s, st, skew);
            return;
        }
    }

    struct voc_webhook_error err = {0};
    json_t *payload = NULL, *record = NULL;
    char *text = NULL;
    if (voc_webhook_parse_body(body, len, s->map != NULL, &payload, &err) != 0)
        goto refused;
    if (s->map) {
        if (voc_webhook_map_apply(s->map, payload, &record, &err) != 0)
            goto refused;
    } else {
        record = json_incref(payload);
    }
    if (voc_webhook_record_finish(record, s->name, evhttp_find_header(headers, "Idempotency-Key"),
                                  &err) != 0)
        goto refused;
    /* A channel that is not a string or not a channel name is the core's to refuse
     * (wrong_type). */
    const char *channel = json_string_value(json_object_get(record, "channel"));
    if (channel && source_name_valid(channel) && !channel_allowed(s, channel)) {
        err.code = "channel_not_allowed";
        snprintf(err.message, sizeof err.message,
                 "source '%s' may not create cases on channel '%s' (add it to "
                 "plugins.webhook.sources[].channels to allow it)",
                 s->name, channel);
        goto refused;
    }
    text = json_dumps(record, JSON_COMPACT);
    if (!text) {
        err.code = "internal";
        snprintf(err.message, sizeof err.message, "cannot encode the record");
        goto refused;
    }
    struct pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        reply_unavailable(wh, req, RETRY_AFTER_BUSY, "out of memory");
        goto done;
    }
    pd->wh = wh;
    pd->req = req;
    if (wh->api->submit_case(wh->p, text, strlen(text), NULL, on_submitted, pd) != 0) {
        free(pd);
        reply_unavailable(wh, req, RETRY_AFTER_BUSY,
                          "the case store is backed up or vocd is shutting down; retry shortly");
        goto done;
    }
    wh->pending++;
    goto done;
refused : {
    char suffix[40];
    if (refusal_log_slot(wh, suffix, sizeof suffix))
        wh->api->log(wh->p, VOC_PLOG_INFO, "refused source=%s code=%s%s", s->name, err.code,
                     suffix);
}
    reply_refused(wh, req, strcmp(err.code, "internal") == 0 ? 500 : 400, err.code, err.message);
done:
    free(text);
    json_decref(record);
    json_decref(payload);
}

/* ---- plugin entry points ----------------------------------------------------------------- */

static int route_valid(const char *path)
{
    size_t n = strlen(path);
    return n >= 2 && path[0] == '/' && path[n - 1] == '/';
}

static int webhook_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                        void **state)
{
    const struct webhook_config *cfg = config;
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh) {
        api->log(p, VOC_PLOG_ERROR, "out of memory");
        return -1;
    }
    wh->p = p;
    wh->api = api;
    wh->cfg = cfg;
    if (!route_valid(cfg->path)) {
        api->log(p, VOC_PLOG_ERROR, "path '%s' must start and end with '/' (e.g. /hooks/)",
                 cfg->path);
        goto fail;
    }
    wh->route = strdup(cfg->path);
    if (!wh->route || source_set_build(wh, cfg, &wh->sources) != 0)
        goto fail;
    wh->c_accepted = api->counter(p, "accepted", "webhook posts that created a case (201)");
    wh->c_repeated =
        api->counter(p, "repeated", "webhook posts whose case already existed (200, idempotent)");
    wh->c_refused = api->counter(p, "refused", "webhook posts refused with 400/404/405/413");
    wh->c_unauthorized =
        api->counter(p, "unauthorized", "webhook posts with a bad or missing signature (401)");
    wh->c_unavailable =
        api->counter(p, "unavailable", "webhook posts answered 503 (store backed up or full)");
    *state = wh;
    return 0;
fail:
    source_set_free(&wh->sources);
    free(wh->route);
    free(wh);
    return -1;
}

static int webhook_start(void *state)
{
    struct webhook *wh = state;
    if (wh->api->http_route(wh->p, wh->route, on_request, wh) != 0)
        return -1; /* the core logged why */
    announce_sources(wh);
    return 0;
}

static void webhook_stop(void *state)
{
    struct webhook *wh = state;
    /* The route stays until the plugin is unloaded; new posts get 503 meanwhile, posts
     * already handed to the writer still get their answer. */
    wh->stopped = true;
}

static void webhook_destroy(void *state)
{
    struct webhook *wh = state;
    source_set_free(&wh->sources);
    free(wh->route);
    free(wh);
}

static int webhook_reload(void *state, const void *new_config)
{
    struct webhook *wh = state;
    const struct webhook_config *cfg = new_config;
    if (strcmp(cfg->path, wh->route) != 0) {
        wh->api->log(wh->p, VOC_PLOG_ERROR,
                     "path changed from %s to %s: that takes a restart; keeping the old settings",
                     wh->route, cfg->path);
        return -1;
    }
    struct source_set next;
    if (source_set_build(wh, cfg, &next) != 0)
        return -1; /* logged; the old sources stay */
    /* Requests in flight hold no pointer into the old set: swap and free it now. */
    source_set_free(&wh->sources);
    wh->sources = next;
    wh->cfg = cfg;
    announce_sources(wh);
    return 0;
}

static const struct voc_plugin_descriptor webhook_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "webhook",
    .version = "1.1.0",
    .description = "HTTP POST JSON from web forms, shops and chat platforms, HMAC-SHA256 "
                   "signed, idempotent",
    .options = webhook_options,
    .config_size = sizeof(struct webhook_config),
    .init = webhook_init,
    .start = webhook_start,
    .stop = webhook_stop,
    .destroy = webhook_destroy,
    .reload = webhook_reload,
};

VOC_PLUGIN_EXPORT(webhook_descriptor);
