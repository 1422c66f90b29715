/* A well-behaved plugin that exercises the SDK: an option table, a route, submit_case with
 * its callback, a counter, and reload. GET /mock/good answers {"greeting", "limit",
 * "reloads"}; POST /mock/good submits the body as an intake record and answers what the
 * core called back with: {"status", "id", "code", "http_status"}. POST
 * /mock/good/notify?case=ID[&ref=REF] hands the body to the notify call, GET
 * /mock/good/case?case=ID answers what case_get returned; both answer in the same form. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vocd/plugin.h>

struct mock_config {
    char *greeting;
    long long limit;
};

static const struct voc_option mock_options[] = {
    {"greeting", VOC_OPT_STRING, offsetof(struct mock_config, greeting), "hello", 0,
     "what GET /mock/good answers", NULL, 0, 0, NULL, 0, 0},
    {"limit", VOC_OPT_INT, offsetof(struct mock_config, limit), "3", 0, "a bounded number", NULL, 0,
     0, NULL, 1, 10},
    {0},
};

struct mock {
    struct voc_plugin *p;
    const struct voc_core_api *api;
    const struct mock_config *cfg;
    int reloads;
    struct voc_counter *posts;
};

static void reply(struct evhttp_request *req, int status, struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", body);
    evbuffer_free(body);
}

static void on_result(void *arg, const struct voc_submit_result *r)
{
    struct evhttp_request *req = arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"status\":%d,\"id\":%llu,\"code\":\"%s\",\"http_status\":%d}\n",
                        (int)r->status, (unsigned long long)r->case_id,
                        r->error_code ? r->error_code : "", r->http_status);
    reply(req, 200, b);
}

static const char *query_param(struct evhttp_request *req, struct evkeyvalq *q, const char *name)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!query || evhttp_parse_query_str(query, q) != 0)
        return NULL;
    return evhttp_find_header(q, name);
}

static void on_notify(struct mock *m, struct evhttp_request *req)
{
    struct evkeyvalq q = {0};
    const char *id = query_param(req, &q, "case");
    const char *ref = evhttp_find_header(&q, "ref");
    uint64_t case_id = id ? strtoull(id, NULL, 10) : 0;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (!VOC_API_HAS(m->api, notify) ||
        m->api->notify(m->p, case_id, body, len, ref, on_result, req) != 0) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "{\"busy\":true}\n");
        reply(req, 503, b);
    }
    evhttp_clear_headers(&q);
}

static void on_case(struct mock *m, struct evhttp_request *req)
{
    struct evkeyvalq q = {0};
    const char *id = query_param(req, &q, "case");
    char *json = NULL;
    size_t len = 0;
    int rc = VOC_API_HAS(m->api, case_get)
                 ? m->api->case_get(m->p, id ? strtoull(id, NULL, 10) : 0, &json, &len)
                 : -1;
    struct evbuffer *b = evbuffer_new();
    if (rc == 1)
        evbuffer_add(b, json, len);
    else
        evbuffer_add_printf(b, "{\"found\":%d}\n", rc);
    free(json);
    evhttp_clear_headers(&q);
    reply(req, rc == 1 ? 200 : 404, b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mock *m = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path && strcmp(path, "/mock/good/notify") == 0) {
        on_notify(m, req);
        return;
    }
    if (path && strcmp(path, "/mock/good/case") == 0) {
        on_case(m, req);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        m->api->counter_add(m->posts, 1);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
        if (m->api->submit_case(m->p, body, len, NULL, on_result, req) != 0) {
            evbuffer_add_printf(b, "{\"busy\":true}\n");
            reply(req, 503, b);
        } else {
            evbuffer_free(b);
        }
        return;
    }
    evbuffer_add_printf(b, "{\"greeting\":\"%s\",\"limit\":%lld,\"reloads\":%d}\n",
                        m->cfg->greeting, m->cfg->limit, m->reloads);
    reply(req, 200, b);
}

static int mock_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                     void **state)
{
    struct mock *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->p = p;
    m->api = api;
    m->cfg = config;
    m->posts = api->counter(p, "posts", "posts to /mock/good");
    *state = m;
    api->log(p, VOC_PLOG_INFO, "mock_good initialised greeting=%s", m->cfg->greeting);
    return 0;
}

static int mock_start(void *state)
{
    struct mock *m = state;
    if (m->api->http_route(m->p, "/mock/good/", on_request, m) != 0)
        return -1;
    return m->api->http_route(m->p, "/mock/good", on_request, m);
}

static void mock_destroy(void *state)
{
    free(state);
}

static int mock_reload(void *state, const void *config)
{
    struct mock *m = state;
    const struct mock_config *next = config;
    /* A plugin may refuse settings it cannot take; the old ones then stay. */
    if (strcmp(next->greeting, "refuse") == 0) {
        m->api->log(m->p, VOC_PLOG_ERROR, "mock_good refuses greeting=refuse");
        return -1;
    }
    m->cfg = next;
    m->reloads++;
    return 0;
}

static const struct voc_plugin_descriptor mock_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "mock_good",
    .version = "0.0.1",
    .description = "loader test: a well-behaved plugin",
    .options = mock_options,
    .config_size = sizeof(struct mock_config),
    .init = mock_init,
    .start = mock_start,
    .destroy = mock_destroy,
    .reload = mock_reload,
};

VOC_PLUGIN_EXPORT(mock_descriptor);
