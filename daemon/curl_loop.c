#include "curl_loop.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

/* A socket curl asked us to watch. */
struct watch {
    struct voc_curl_loop *loop;
    curl_socket_t fd;
    struct event *ev;
    struct watch *prev, *next;
};

struct transfer {
    CURL *easy;
    voc_curl_done_cb cb;
    void *arg;
    struct transfer *prev, *next;
};

struct voc_curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct watch *watches;
    struct transfer *transfers;
    size_t active;
};

#define LINK(head, item)                                                                           \
    do {                                                                                           \
        (item)->prev = NULL;                                                                       \
        (item)->next = (head);                                                                     \
        if (head)                                                                                  \
            (head)->prev = (item);                                                                 \
        (head) = (item);                                                                           \
    } while (0)
#define UNLINK(head, item)                                                                         \
    do {                                                                                           \
        if ((item)->prev)                                                                          \
            (item)->prev->next = (item)->next;                                                     \
        else                                                                                       \
            (head) = (item)->next;                                                                 \
        if ((item)->next)                                                                          \
            (item)->next->prev = (item)->prev;                                                     \
    } while (0)

/* Hand every finished transfer to its owner. */
static void collect_done(struct voc_curl_loop *loop)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg dies with curl_multi_remove_handle: take what we need first. */
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(loop->multi, easy);
        if (!t)
            continue;
        UNLINK(loop->transfers, t);
        loop->active--;
        voc_curl_done_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        cb(easy, result, arg);
    }
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    /* The watch may be freed inside curl_multi_socket_action (CURL_POLL_REMOVE). */
    struct voc_curl_loop *loop = w->loop;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(loop->multi, fd, flags, &running);
    collect_done(loop);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_curl_loop *loop = arg;
    int running;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(loop);
}

static void watch_free(struct voc_curl_loop *loop, struct watch *w)
{
    UNLINK(loop->watches, w);
    event_free(w->ev);
    free(w);
}

/* CURLMOPT_SOCKETFUNCTION: curl says which directions a socket needs, or that it is done. */
static int on_socket_change(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct voc_curl_loop *loop = userp;
    struct watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            curl_multi_assign(loop->multi, fd, NULL);
            watch_free(loop, w);
        }
        return 0;
    }
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return -1;
        w->loop = loop;
        w->fd = fd;
        LINK(loop->watches, w);
        curl_multi_assign(loop->multi, fd, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(loop->base, fd, kind, on_socket_ready, w);
    if (!w->ev || event_add(w->ev, NULL) != 0) {
        voc_error("notify", "cannot watch a transfer socket fd=%d", (int)fd);
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer, re-armed whenever curl's next deadline changes. Curl
 * must not be called from here, so a 0 ms timeout also goes through the loop. */
static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct voc_curl_loop *loop = userp;
    if (timeout_ms < 0) {
        evtimer_del(loop->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(loop->timer, &tv) == 0 ? 0 : -1;
}

int voc_curl_loop_new(struct voc_curl_loop **out, struct event_base *base)
{
    struct voc_curl_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return -1;
    loop->base = base;
    loop->multi = curl_multi_init();
    loop->timer = evtimer_new(base, on_timeout, loop);
    if (!loop->multi || !loop->timer) {
        voc_curl_loop_free(loop);
        return -1;
    }
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_socket_change);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    *out = loop;
    return 0;
}

int voc_curl_loop_add(struct voc_curl_loop *loop, CURL *easy, voc_curl_done_cb cb, void *arg)
{
    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->easy = easy;
    t->cb = cb;
    t->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(loop->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
        return -1;
    }
    LINK(loop->transfers, t);
    loop->active++;
    return 0;
}

size_t voc_curl_loop_active(const struct voc_curl_loop *loop)
{
    return loop ? loop->active : 0;
}

void voc_curl_loop_free(struct voc_curl_loop *loop)
{
    if (!loop)
        return;
    while (loop->transfers) {
        struct transfer *t = loop->transfers;
        UNLINK(loop->transfers, t);
        loop->active--;
        curl_multi_remove_handle(loop->multi, t->easy);
        t->cb(t->easy, CURLE_ABORTED_BY_CALLBACK, t->arg);
        free(t);
    }
    if (loop->multi)
        curl_multi_cleanup(loop->multi);
    /* Sockets of cached connections that curl closed without telling us. */
    while (loop->watches)
        watch_free(loop, loop->watches);
    if (loop->timer)
        event_free(loop->timer);
    free(loop);
}
