/* start() gets half way — a route, a repeating timer and a TCP listener whose callbacks use
 * the plugin's state — and then fails, as the e-mail plugin does when its LMTP listener is
 * up but its Maildir cannot be opened. The core must call stop() before destroy() and drop
 * the route and the timer; this mock logs what it was called with, so the test can tell.
 * destroy() poisons the state before freeing it: anything that still calls into it shows
 * up under ASan (and as a wrong greeting without it). */
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vocd/plugin.h>

#define ALIVE 0x600dcafeu

struct mock {
    unsigned magic;
    struct voc_plugin *p;
    const struct voc_core_api *api;
    struct evconnlistener *listener;
    struct voc_timer *tick;
    bool stopped;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mock *m = arg;
    evhttp_send_reply(req, m->magic == ALIVE ? 200 : 500, "OK", NULL);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    struct mock *m = arg;
    m->api->log(m->p, VOC_PLOG_ERROR, "mock_start_fail: connection accepted magic=%x", m->magic);
    close(fd);
}

static void on_tick(void *arg)
{
    struct mock *m = arg;
    m->api->log(m->p, VOC_PLOG_ERROR, "mock_start_fail: timer fired magic=%x", m->magic);
}

static int start_fail_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                           void **state)
{
    (void)config;
    struct mock *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->magic = ALIVE;
    m->p = p;
    m->api = api;
    *state = m;
    return 0;
}

static int start_fail_start(void *state)
{
    struct mock *m = state;
    if (m->api->http_route(m->p, "/mock/start_fail", on_request, m) != 0)
        return -1;
    m->tick = m->api->timer_start(m->p, 0.05, true, on_tick, m);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    m->listener = evconnlistener_new_bind(m->api->event_base(m->p), on_accept, m,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                          (struct sockaddr *)&sin, sizeof sin);
    if (!m->listener)
        return -1;
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    getsockname(evconnlistener_get_fd(m->listener), (struct sockaddr *)&bound, &len);
    m->api->log(m->p, VOC_PLOG_INFO, "mock_start_fail: listening port=%u",
                (unsigned)ntohs(bound.sin_port));
    m->api->log(m->p, VOC_PLOG_ERROR, "mock_start_fail: the second half of start failed");
    return -1;
}

static void start_fail_stop(void *state)
{
    struct mock *m = state;
    if (m->listener)
        evconnlistener_free(m->listener);
    m->listener = NULL;
    m->stopped = true;
    m->api->log(m->p, VOC_PLOG_INFO, "mock_start_fail: stopped");
}

static void start_fail_destroy(void *state)
{
    struct mock *m = state;
    m->api->log(m->p, m->stopped ? VOC_PLOG_INFO : VOC_PLOG_ERROR, "mock_start_fail: destroyed %s",
                m->stopped ? "after stop" : "without stop");
    m->magic = 0xdeadu;
    free(m);
}

static const struct voc_plugin_descriptor start_fail_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "mock_start_fail",
    .version = "0.0.1",
    .description = "loader test: start() fails after opening a route, a timer and a listener",
    .init = start_fail_init,
    .start = start_fail_start,
    .stop = start_fail_stop,
    .destroy = start_fail_destroy,
};

VOC_PLUGIN_EXPORT(start_fail_descriptor);
