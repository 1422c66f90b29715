/* The baseline for the LMTP benchmark: the plugin's own LMTP state machine
 * (plugins/email/lmtp_session.c) on a libevent loop, answering 250 per recipient as soon as
 * the message data has arrived, with no MIME parsing, no attachment files and no durable
 * write. vocd / sink is then the cost of parsing, storing and committing a message.
 *
 *   lmtp_sink [PORT]     (0 or none: any free port; prints "listening PORT") */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lmtp_session.h"

struct sink_conn {
    struct bufferevent *bev;
    struct voc_lmtp_session *s;
    int closing;
};

static void s_write(void *arg, const char *bytes, size_t len)
{
    struct sink_conn *c = arg;
    bufferevent_write(c->bev, bytes, len);
}

static void s_message(void *arg, const struct voc_lmtp_message *msg)
{
    struct sink_conn *c = arg;
    (void)msg;
    voc_lmtp_reply(c->s, 250, "2.0.0", "accepted");
}

static void s_close(void *arg)
{
    struct sink_conn *c = arg;
    c->closing = 1;
}

static void conn_free(struct sink_conn *c)
{
    bufferevent_free(c->bev);
    voc_lmtp_free(c->s);
    free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct sink_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0 && !voc_lmtp_finished(c->s)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = voc_lmtp_feed(c->s, v.iov_base, v.iov_len);
        evbuffer_drain(in, used);
        if (used < v.iov_len)
            break;
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct sink_conn *c = arg;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    struct event_base *base = arg;
    struct sink_conn *c = calloc(1, sizeof *c);
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    struct voc_lmtp_config cfg = {.hostname = "sink", .max_size = 64u << 20};
    struct voc_lmtp_callbacks cb = {s_write, s_message, s_close};
    c->s = voc_lmtp_new(&cfg, &cb, c);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    voc_lmtp_greet(c->s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct event_base *base = event_base_new();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
        (struct sockaddr *)&sa, sizeof sa);
    if (!l) {
        perror("listen");
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t bl = sizeof bound;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &bl);
    printf("listening %u\n", ntohs(bound.sin_port));
    fflush(stdout);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
