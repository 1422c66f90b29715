#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

/* Bodies up to this multiple of the configured limit are read and answered with a JSON 413;
 * beyond it evhttp stops reading and answers a bare 413 itself, so a huge upload cannot
 * make us buffer it. */
#define HARD_BODY_FACTOR 8
/* Request line plus headers. evhttp's default is unlimited, so one client could make us
 * buffer headers without end; real clients send a few KiB. Over it evhttp answers a bare
 * 400 (its own HTML page, our handlers never see the request) and closes the connection. */
#define MAX_HEADERS_SIZE (64 * 1024)

struct route {
    char *path;
    bool prefix;
    voc_http_route_fn fn;
    void *arg;
    char *owner;
    struct route *next;
};

struct voc_http {
    struct event_base *base;
    struct evhttp *evhttp;
    struct evhttp_bound_socket *socket;
    uint16_t port;
    uint64_t max_body;
    struct route *routes;
    size_t inflight;
    bool draining;
    /* Every connection's bufferevent is in this (unlimited) rate-limit group only so that
     * its byte counter tells the drain whether requests are still arriving: evhttp 2.1 has
     * no callback for "a request started". */
    struct ev_token_bucket_cfg *bucket;
    struct bufferevent_rate_limit_group *group;
};

static struct voc_metric *m_status[6]; /* 1xx..5xx */
/* The listener replies go through (one per process). */
static struct voc_http *current_http;

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

static void count_status(int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        voc_metric_add(m_status[cls], 1);
}

void voc_http_reply_text(struct evhttp_request *req, int status, const char *content_type,
                         struct evbuffer *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    struct voc_http *http = current_http;
    if (http && http->draining)
        evhttp_add_header(headers, "Connection", "close"); /* no next request on this one */
    count_status(status);
    evhttp_send_reply(req, status, reason_phrase(status), body);
}

void voc_http_reply_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text) {
        evbuffer_add(buf, text, strlen(text));
        evbuffer_add(buf, "\n", 1);
        free(text);
    } else {
        status = 500;
        evbuffer_add_printf(buf, "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode "
                                 "the reply\"}}\n");
    }
    json_decref(body);
    voc_http_reply_text(req, status, "application/json; charset=utf-8", buf);
    evbuffer_free(buf);
}

void voc_http_reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt,
                          ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    voc_http_reply_json(req, status,
                        json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

void voc_http_reply_unavailable(struct evhttp_request *req, int retry_after_s, const char *message)
{
    char value[16];
    snprintf(value, sizeof value, "%d", retry_after_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", value);
    voc_http_reply_error(req, 503, "unavailable", "%s", message);
}

const char *voc_http_body(struct voc_http *http, struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    if (*len > http->max_body) {
        voc_http_reply_error(req, 413, "payload_too_large",
                             "request body is %zu bytes, the limit is %llu (http.max_body_size)",
                             *len, (unsigned long long)http->max_body);
        return NULL;
    }
    if (*len == 0)
        return "";
    return (const char *)evbuffer_pullup(in, -1);
}

/* One request between dispatch and the end of its reply. libevent calls the request's
 * on-complete callback only when the reply was written in full; when the client hangs up
 * or the write fails, the connection is freed (with the request, or the request is left
 * detached and freed silently by our later reply) and only the connection's close callback
 * runs. So each request counts down from whichever of the two comes first, exactly once;
 * otherwise a SIGTERM after a hung-up client waits out the whole drain timeout. */
struct inflight {
    struct voc_http *http;
};

static void inflight_end(struct inflight *f)
{
    if (f->http->inflight > 0)
        f->http->inflight--;
    free(f);
}

static void on_request_complete(struct evhttp_request *req, void *arg)
{
    /* The connection lives on (keep-alive) or is freed right after this: either way its
     * close callback must not count this request again. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    inflight_end(arg);
}

static void on_connection_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    inflight_end(arg);
}

static const struct route *find_route(const struct voc_http *http, const char *path)
{
    const struct route *best = NULL;
    size_t best_len = 0;
    for (const struct route *r = http->routes; r; r = r->next) {
        size_t n = strlen(r->path);
        bool match = r->prefix ? strncmp(path, r->path, n) == 0 : strcmp(path, r->path) == 0;
        if (match && n >= best_len) {
            best = r;
            best_len = n;
        }
    }
    return best;
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct voc_http *http = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct inflight *f = evcon ? malloc(sizeof *f) : NULL;
    if (f) {
        /* evhttp reads the next request of a connection only after this one's reply, so
         * the connection's close callback is this request's alone. */
        f->http = http;
        http->inflight++;
        evhttp_request_set_on_complete_cb(req, on_request_complete, f);
        evhttp_connection_set_closecb(evcon, on_connection_close, f);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !path[0])
        path = "/";
    const struct route *r = find_route(http, path);
    if (!r) {
        voc_http_reply_error(req, 404, "not_found", "no such endpoint: %s", path);
        return;
    }
    r->fn(req, r->arg);
}

static struct bufferevent *new_connection(struct event_base *base, void *arg)
{
    struct voc_http *http = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && http->group)
        bufferevent_add_to_rate_limit_group(bev, http->group);
    return bev;
}

uint64_t voc_http_bytes_received(const struct voc_http *http)
{
    ev_uint64_t read = 0, written = 0;
    if (http->group)
        bufferevent_rate_limit_group_get_totals(http->group, &read, &written);
    return read;
}

int voc_http_start(struct voc_http **out, struct event_base *base,
                   const struct voc_http_options *opts, char *err, size_t errlen)
{
    for (int i = 1; i <= 5; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "code=\"%dxx\"", i);
        m_status[i] = voc_metric_register("vocd_http_responses_total", labels, VOC_METRIC_COUNTER,
                                          "HTTP responses by status class");
    }
    struct voc_http *http = calloc(1, sizeof *http);
    if (!http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    http->base = base;
    http->evhttp = evhttp_new(base);
    if (!http->evhttp) {
        snprintf(err, errlen, "cannot create the HTTP server");
        free(http);
        return -1;
    }
    voc_http_set_max_body(http, opts->max_body_size);
    evhttp_set_max_headers_size(http->evhttp, MAX_HEADERS_SIZE);
    evhttp_set_timeout_tv(
        http->evhttp,
        &(struct timeval){
            (time_t)opts->timeout_s,
            (suseconds_t)((opts->timeout_s - (double)(time_t)opts->timeout_s) * 1e6)});
    evhttp_set_allowed_methods(http->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                 EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(http->evhttp, dispatch, http);
    http->bucket = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX,
                                           EV_RATE_LIMIT_MAX, NULL);
    http->group = http->bucket ? bufferevent_rate_limit_group_new(base, http->bucket) : NULL;
    evhttp_set_bevcb(http->evhttp, new_connection, http);
    current_http = http;
    http->socket = evhttp_bind_socket_with_handle(http->evhttp, opts->host, opts->port);
    if (!http->socket) {
        snprintf(err, errlen, "cannot listen on %s:%u (address in use or not available)",
                 opts->host, opts->port);
        voc_http_free(http);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(http->socket);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            http->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            http->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out = http;
    return 0;
}

uint16_t voc_http_port(const struct voc_http *http)
{
    return http->port;
}

void voc_http_set_max_body(struct voc_http *http, uint64_t max_body_size)
{
    http->max_body = max_body_size;
    uint64_t hard = max_body_size * HARD_BODY_FACTOR;
    evhttp_set_max_body_size(http->evhttp, hard > (uint64_t)INT64_MAX / 2
                                               ? (ev_ssize_t)(INT64_MAX / 2)
                                               : (ev_ssize_t)hard);
}

uint64_t voc_http_max_body(const struct voc_http *http)
{
    return http->max_body;
}

int voc_http_route(struct voc_http *http, const char *path, voc_http_route_fn fn, void *arg,
                   const char *owner)
{
    size_t n = strlen(path);
    bool prefix = n > 0 && path[n - 1] == '/';
    for (const struct route *r = http->routes; r; r = r->next)
        if (strcmp(r->path, path) == 0)
            return -1;
    struct route *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->path = strdup(path);
    r->prefix = prefix;
    r->fn = fn;
    r->arg = arg;
    r->owner = owner ? strdup(owner) : NULL;
    r->next = http->routes;
    http->routes = r;
    return 0;
}

void voc_http_unroute_owner(struct voc_http *http, const char *owner)
{
    struct route **p = &http->routes;
    while (*p) {
        struct route *r = *p;
        if (r->owner && owner && strcmp(r->owner, owner) == 0) {
            *p = r->next;
            free(r->path);
            free(r->owner);
            free(r);
        } else {
            p = &r->next;
        }
    }
}

void voc_http_stop_accepting(struct voc_http *http)
{
    http->draining = true;
    if (http->socket) {
        evhttp_del_accept_socket(http->evhttp, http->socket);
        http->socket = NULL;
    }
}

size_t voc_http_inflight(const struct voc_http *http)
{
    return http->inflight;
}

void voc_http_free(struct voc_http *http)
{
    if (!http)
        return;
    evhttp_free(http->evhttp);
    /* libevent finishes freeing connection bufferevents in deferred callbacks; let them run
     * so they leave the rate-limit group before the group goes. */
    event_base_loop(http->base, EVLOOP_NONBLOCK);
    if (http->group)
        bufferevent_rate_limit_group_free(http->group);
    if (http->bucket)
        ev_token_bucket_cfg_free(http->bucket);
    if (current_http == http)
        current_http = NULL;
    while (http->routes) {
        struct route *r = http->routes;
        http->routes = r->next;
        free(r->path);
        free(r->owner);
        free(r);
    }
    free(http);
}
