/* template — the smallest useful vocd channel plugin. Copy this folder and rename it.
 *
 * It serves one route: POST /template/feedback with a plain-text body (UTF-8). Each post
 * becomes a case whose text is the body, on the channel "template" (the plugin's name). The
 * reply comes once the case is on disk:
 *
 *   201 {"id": 42}             the case is durable
 *   400 / 405 / 413            with {"error": {"code": ..., "message": ...}}
 *   503 + Retry-After          the core cannot take it now; the sender should retry
 *
 * What it shows, in the order a plugin lives (docs/plugins.md explains each part):
 *   1. an option table: the core validates `plugins: - name: template ...` against it, with
 *      file:line errors, before any of this code runs (and `vocd --check` does too);
 *   2. init(): keep the core's API and the validated config, register counters;
 *   3. start(): register the HTTP route;
 *   4. a request: build an intake record with jansson, submit_case(), answer in the callback;
 *   5. reload(): take new settings on SIGHUP;
 *   6. stop() / destroy(): stop taking input, then free everything.
 * Everything runs on the core's event loop thread: no locks needed, never block. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vocd/plugin.h>

/* ---- 1. options --------------------------------------------------------------------------
 * The struct the core fills from this plugin's config section, and the table describing
 * it: key, type, where it goes, default (as YAML text), flags, help. */
struct template_config {
    char *path;
    uint64_t max_length;
    char *subject;
};

static const struct voc_option template_options[] = {
    {"path", VOC_OPT_STRING, offsetof(struct template_config, path), "/template/feedback", 0,
     "the route posts go to (a change needs a restart)", NULL, 0, 0, NULL, 0, 0},
    {"max_length", VOC_OPT_SIZE, offsetof(struct template_config, max_length), "64KiB", 0,
     "longest text accepted; longer posts get 413", NULL, 0, 0, NULL, 0, 0},
    {"subject", VOC_OPT_STRING, offsetof(struct template_config, subject), "", 0,
     "subject given to every case from here (empty: none)", NULL, 0, 0, NULL, 0, 0},
    {0},
};

/* ---- state ------------------------------------------------------------------------------- */

struct template
{
    struct voc_plugin *p;              /* the core's handle: pass it to every core call */
    const struct voc_core_api *api;    /* the core calls */
    const struct template_config *cfg; /* owned by the core; replaced on reload */
    char *route;                       /* the path registered at start */
    bool stopped;
    struct voc_counter *submitted, *refused;
};

/* ---- replies ------------------------------------------------------------------------------ */

static void reply(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct evbuffer *buf = evbuffer_new();
    if (!buf || !text) {
        free(text);
        if (buf)
            evbuffer_free(buf);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(buf, "%s\n", text);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

/* The core's error format, so clients handle every vocd endpoint alike. */
static void reply_error(struct template *t, struct evhttp_request *req, int status,
                        const char *reason, const char *code, const char *message)
{
    t->api->counter_add(t->refused, 1);
    reply(req, status, reason,
          json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

/* ---- 4. a request ------------------------------------------------------------------------- */

/* Called exactly once per accepted submit_case, on the event loop, when the outcome is
 * known. `arg` is what we passed: here the request itself. */
static void on_submitted(void *arg, const struct voc_submit_result *r)
{
    struct evhttp_request *req = arg;
    const char *message = r->message ? r->message : "refused";
    switch (r->status) {
    case VOC_SUBMIT_CREATED:
        reply(req, 201, "Created", json_pack("{s:I}", "id", (json_int_t)r->case_id));
        break;
    case VOC_SUBMIT_EXISTS: /* only with an external_id, which this plugin does not set */
        reply(req, 200, "OK", json_pack("{s:I}", "id", (json_int_t)r->case_id));
        break;
    case VOC_SUBMIT_UNAVAILABLE:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "30");
        reply(req, 503, "Service Unavailable",
              json_pack("{s:{s:s, s:s}}", "error", "code", "unavailable", "message", message));
        break;
    default: /* INVALID: the core says why, with the status its own API would use. Never
                trust it to be an error status: a refusal answered 0 or 200 would tell the
                sender its feedback was taken. */
        reply(req, r->http_status >= 400 && r->http_status <= 599 ? r->http_status : 400, "Refused",
              json_pack("{s:{s:s, s:s}}", "error", "code",
                        r->error_code ? r->error_code : "bad_request", "message", message));
        break;
    }
}

static void on_feedback(struct evhttp_request *req, void *arg)
{
    struct template *t = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_error(t, req, 405, "Method Not Allowed", "method_not_allowed",
                    "POST the feedback as text/plain");
        return;
    }
    if (t->stopped) { /* draining: the sender should come back after the restart */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        reply_error(t, req, 503, "Service Unavailable", "unavailable", "vocd is stopping");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > t->cfg->max_length) {
        reply_error(t, req, 413, "Payload Too Large", "payload_too_large",
                    "the text is longer than plugins.template.max_length");
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";

    /* The intake record (CONTRACT.md, docs/api.md). jansson escapes the text for us and
     * refuses invalid UTF-8. No "channel": the core uses the plugin's name. */
    json_t *text = json_stringn(body, len);
    if (!text) {
        reply_error(t, req, 400, "Bad Request", "invalid_utf8", "the text is not valid UTF-8");
        return;
    }
    json_t *record = json_pack("{s:o}", "text", text);
    if (record && t->cfg->subject[0])
        json_object_set_new(record, "subject", json_string(t->cfg->subject));
    char *json = record ? json_dumps(record, JSON_COMPACT) : NULL;
    json_decref(record);
    if (!json) {
        reply_error(t, req, 500, "Internal Server Error", "internal", "out of memory");
        return;
    }
    /* The core validates the record (an empty text is a 400 missing_field, for example) and
     * queues it for the writer. -1 means "not now": nothing was queued, no callback. */
    int rc = t->api->submit_case(t->p, json, strlen(json), NULL, on_submitted, req);
    free(json);
    if (rc != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_error(t, req, 503, "Service Unavailable", "unavailable",
                    "the case store is busy; retry shortly");
        return;
    }
    t->api->counter_add(t->submitted, 1);
}

/* ---- 2., 3., 5., 6. lifecycle -------------------------------------------------------------- */

static int template_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                         void **state)
{
    struct template *t = calloc(1, sizeof *t);
    if (!t) {
        api->log(p, VOC_PLOG_ERROR, "out of memory");
        return -1;
    }
    t->p = p;
    t->api = api;
    t->cfg = config;
    /* What the option table cannot express is checked here; log why before returning -1,
     * and the daemon refuses to start with a message pointing at this plugin. */
    if (t->cfg->path[0] != '/') {
        api->log(p, VOC_PLOG_ERROR, "path '%s' must start with '/'", t->cfg->path);
        free(t);
        return -1;
    }
    t->route = strdup(t->cfg->path);
    /* Exported in /metrics as vocd_plugin_template_<name>_total. */
    t->submitted = api->counter(p, "submitted", "feedback posts handed to the case store");
    t->refused = api->counter(p, "refused", "feedback posts refused");
    *state = t;
    return t->route ? 0 : -1;
}

static int template_start(void *state)
{
    struct template *t = state;
    if (t->api->http_route(t->p, t->route, on_feedback, t) != 0)
        return -1; /* the core logged why (e.g. the route is taken) */
    t->api->log(t->p, VOC_PLOG_INFO, "taking feedback at POST %s", t->route);
    return 0;
}

static int template_reload(void *state, const void *new_config)
{
    struct template *t = state;
    const struct template_config *next = new_config;
    if (strcmp(next->path, t->route) != 0) {
        /* Refusing keeps the old settings; the core logs that we did. */
        t->api->log(t->p, VOC_PLOG_ERROR, "path changes need a restart");
        return -1;
    }
    t->cfg = next; /* the core frees the old config after we return 0 */
    return 0;
}

static void template_stop(void *state)
{
    struct template *t = state;
    t->stopped = true;
}

static void template_destroy(void *state)
{
    struct template *t = state;
    free(t->route);
    free(t);
}

/* The one exported symbol. `name` must match the file name (template.so) and the `name:`
 * in vocd.yaml; abi_version is checked against the running vocd. */
static const struct voc_plugin_descriptor template_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "template",
    .version = "1.0.0",
    .description = "example channel: POST text/plain to /template/feedback",
    .options = template_options,
    .config_size = sizeof(struct template_config),
    .init = template_init,
    .start = template_start,
    .stop = template_stop,
    .destroy = template_destroy,
    .reload = template_reload,
};

VOC_PLUGIN_EXPORT(template_descriptor);
