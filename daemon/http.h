/* The HTTP listener (libevent evhttp): routing by path, JSON replies and errors, the body
 * size limit, and the count of requests in flight so SIGTERM can drain them. */
#ifndef VOC_HTTP_H
#define VOC_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_request;
struct evbuffer;
struct voc_http;

typedef void (*voc_http_route_fn)(struct evhttp_request *req, void *arg);

struct voc_http_options {
    const char *host;
    uint16_t port; /* 0 = any free port */
    uint64_t max_body_size;
    double timeout_s;
};

int voc_http_start(struct voc_http **out, struct event_base *base,
                   const struct voc_http_options *opts, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
uint16_t voc_http_port(const struct voc_http *http);
void voc_http_set_max_body(struct voc_http *http, uint64_t max_body_size);
uint64_t voc_http_max_body(const struct voc_http *http);

/* `path` exact, or every path below it when it ends in '/'. Longest match wins.
 * `owner` names who registered it (a plugin) so its routes can be removed together.
 * Returns 0, or -1 if the path is taken. */
int voc_http_route(struct voc_http *http, const char *path, voc_http_route_fn fn, void *arg,
                   const char *owner);
void voc_http_unroute_owner(struct voc_http *http, const char *owner);

/* Stop accepting connections (drain). Requests on open connections are still read and
 * answered, each reply with "Connection: close". */
void voc_http_stop_accepting(struct voc_http *http);
/* Bytes received on all connections so far: the drain waits until this stops moving. */
uint64_t voc_http_bytes_received(const struct voc_http *http);
/* Requests read but not yet completely answered. */
size_t voc_http_inflight(const struct voc_http *http);
void voc_http_free(struct voc_http *http);

/* Replies. All set Content-Type and count the status in /metrics. */
void voc_http_reply_json(struct evhttp_request *req, int status, json_t *body /* stolen */);
void voc_http_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 503 with Retry-After. */
void voc_http_reply_unavailable(struct evhttp_request *req, int retry_after_s,
                                const char *message);
void voc_http_reply_text(struct evhttp_request *req, int status, const char *content_type,
                         struct evbuffer *body);

/* The request body as one contiguous buffer (NUL-terminated copy not made). Answers 413
 * itself and returns NULL when the body is over the limit. */
const char *voc_http_body(struct voc_http *http, struct evhttp_request *req, size_t *len);

#endif
