/* Exercises the timer calls the way a careless plugin would: a one-shot timer cancels its
 * own handle inside its callback, a fired handle is cancelled again later, a stale handle
 * is cancelled after its slot went to a new timer, a repeating timer cancels itself on its
 * third tick, a pending timer is cancelled before it fires. GET /mock/timers answers how
 * often each fired (and cancels every stale handle once more on the way). Under ASan any
 * use of a freed handle shows up; without it, wrong counts do. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <vocd/plugin.h>

struct mock {
    struct voc_plugin *p;
    const struct voc_core_api *api;
    struct voc_timer *self, *a, *b, *rep, *never, *late;
    int self_fired, a_fired, b_fired, rep_fired, never_fired, late_fired;
    int reused_slot; /* b's handle differs from a's: a stale handle must not cancel b */
};

static void on_self(void *arg)
{
    struct mock *m = arg;
    m->self_fired++;
    m->api->timer_cancel(m->self); /* its own, fired handle: a no-op */
}

static void on_b(void *arg)
{
    struct mock *m = arg;
    m->b_fired++;
}

static void on_a(void *arg)
{
    struct mock *m = arg;
    m->a_fired++;
    /* a's slot is free again and the lowest: b gets it. */
    m->b = m->api->timer_start(m->p, 0.05, false, on_b, m);
    m->reused_slot = m->b != NULL && m->b != m->a;
    m->api->timer_cancel(m->a); /* stale: must leave b alone */
}

static void on_rep(void *arg)
{
    struct mock *m = arg;
    if (++m->rep_fired == 3)
        m->api->timer_cancel(m->rep); /* from inside its own callback */
}

static void on_never(void *arg)
{
    struct mock *m = arg;
    m->never_fired++;
}

static void on_late(void *arg)
{
    struct mock *m = arg;
    m->late_fired++;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mock *m = arg;
    /* Cancel again every handle that is over by now: each is a no-op. */
    if (m->self_fired)
        m->api->timer_cancel(m->self);
    if (m->a_fired)
        m->api->timer_cancel(m->a);
    if (m->b_fired)
        m->api->timer_cancel(m->b);
    if (m->rep_fired >= 3)
        m->api->timer_cancel(m->rep);
    if (m->late_fired)
        m->api->timer_cancel(m->late);
    m->api->timer_cancel(m->never);
    m->api->timer_cancel(NULL);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b,
                        "{\"self\":%d,\"a\":%d,\"b\":%d,\"rep\":%d,\"never\":%d,\"late\":%d,"
                        "\"distinct_handles\":%d}\n",
                        m->self_fired, m->a_fired, m->b_fired, m->rep_fired, m->never_fired,
                        m->late_fired, m->reused_slot);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static int timers_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                       void **state)
{
    (void)config;
    struct mock *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->p = p;
    m->api = api;
    *state = m;
    return 0;
}

static int timers_start(void *state)
{
    struct mock *m = state;
    /* a first: its slot (or memory) is the first one free again when it fires. */
    m->a = m->api->timer_start(m->p, 0.01, false, on_a, m);
    m->self = m->api->timer_start(m->p, 0.02, false, on_self, m);
    m->rep = m->api->timer_start(m->p, 0.01, true, on_rep, m);
    m->never = m->api->timer_start(m->p, 0.05, false, on_never, m);
    m->late = m->api->timer_start(m->p, 0.01, false, on_late, m);
    m->api->timer_cancel(m->never);
    m->api->timer_cancel(m->never); /* twice: the second is a no-op */
    if (!m->self || !m->a || !m->rep || !m->never || !m->late)
        return -1;
    return m->api->http_route(m->p, "/mock/timers", on_request, m);
}

static void timers_destroy(void *state)
{
    free(state);
}

static const struct voc_plugin_descriptor timers_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "mock_timers",
    .version = "0.0.1",
    .description = "loader test: timer handles cancelled after they fired",
    .init = timers_init,
    .start = timers_start,
    .destroy = timers_destroy,
};

VOC_PLUGIN_EXPORT(timers_descriptor);
