/* The baseline for the ingest benchmark: the same libevent evhttp server vocd runs, set up the
 * same way (pthread locking on, one event loop, the same limits and reply headers), answering
 * every POST with 201 {"id":N,"created":true} at once, without parsing or storing anything.
 * Whatever vocd does beyond this (JSON, validation, rules, LMDB, fsync) is what the ratio
 * between the two measures.
 *
 *   bare_server [--host 127.0.0.1] [--port 0]
 * prints "listening addr=HOST:PORT" on stdout once it accepts connections; SIGTERM or SIGINT
 * stops it. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* vocd's defaults: http.max_body_size 1 MiB, read up to 8 times that, 30 s timeout. */
#define MAX_BODY (8 * 1024 * 1024)
#define TIMEOUT_S 30

static uint64_t next_id = 1;

static void reply(struct evhttp_request *req, int status, const char *reason,
                  struct evbuffer *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, reason, body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        evbuffer_add_printf(body, "{\"id\":%" PRIu64 ",\"created\":true}\n", next_id++);
        reply(req, 201, "Created", body);
    } else {
        evbuffer_add_printf(body, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":"
                                  "\"the bare server only takes POST\"}}\n");
        reply(req, 405, "Method Not Allowed", body);
    }
    evbuffer_free(body);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bare_server [--host 127.0.0.1] [--port 0]\n");
            return 2;
        }
    }

    /* vocd turns libevent's locking on (its writer and backup threads wake the loop), so
     * the baseline pays the same lock cost per event. */
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http) {
        fprintf(stderr, "bare_server: cannot create the event loop\n");
        return 1;
    }
    evhttp_set_max_body_size(http, MAX_BODY);
    evhttp_set_timeout_tv(http, &(struct timeval){TIMEOUT_S, 0});
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, host, (uint16_t)port);
    if (!sock) {
        fprintf(stderr, "bare_server: cannot listen on %s:%d\n", host, port);
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0) {
        perror("bare_server: getsockname");
        return 1;
    }
    unsigned bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                              : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    signal(SIGPIPE, SIG_IGN);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);

    printf("listening addr=%s:%u\n", host, bound);
    fflush(stdout);
    event_base_dispatch(base);

    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
