/* A small HTTP/1.1 load generator for the ingest benchmark.
 *
 * One thread, one libevent loop, N keep-alive connections, one request in flight per
 * connection (no pipelining: evhttp serves a connection's requests one after the other anyway,
 * so pipelining would only hide queueing inside the server's socket buffer).
 *
 * Two modes:
 *   closed loop (--duration S): every connection sends its next request as soon as the answer
 *     to the previous one is in; the rate is whatever the server sustains.
 *   open loop (--rate R --duration S): request i is due at start + i/R whatever happens to the
 *     earlier ones; a due request waits for a free connection if all are busy, and its latency
 *     runs from the time it was DUE, not from when it was sent. A server that stalls therefore
 *     shows its stall in the percentiles instead of quietly slowing the generator down
 *     ("coordinated omission").
 *
 * Every body is built from a template: {{n}} is a per-request counter, {{run}} a token unique
 * to this process, {{subject}} {{text}} {{product}} {{expected}} come from a rotating set of
 * Chinese complaint samples, so each request is a new case with a realistic text. Headers are
 * written after the body is built, so a header computed from the body (a signature) fits in
 * build_request() without touching the rest: --hmac-secret signs every request the way the
 * webhook plugin checks it (docs/webhook.md).
 *
 * The response reader is deliberately minimal: status line, Content-Length or chunked, and
 * "Connection: close". It is a test tool for servers we control, not a general HTTP client. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "signature.h" /* plugins/webhook: the webhook channel's request signing */

#define MAX_HEADERS 32
#define MAX_HEAD_BYTES (64 * 1024)
#define ERROR_BODY_SHOWN 300

/* ---- options ---- */

struct options {
    const char *host;
    int port;
    const char *path;
    const char *method;
    const char *headers[MAX_HEADERS];
    size_t header_count;
    const char *body; /* template */
    int connections;
    double duration_s;
    double rate; /* 0: closed loop */
    double timeout_s;
    uint64_t n_start;
    bool json;
    const char *label;
    const char *hmac_secret; /* sign as the webhook plugin expects */
};

/* ---- texts: what a call centre writes down, about 300 bytes each ---- */

struct sample {
    const char *product, *subject, *text, *expected;
};

static const struct sample samples[] = {
    {"智能电饭煲", "电饭煲使用三天后无法加热",
     "上周在官方旗舰店购买的电饭煲，用了三天就不能加热了，按下煮饭键后指示灯一直闪烁，内胆完全"
     "是凉的。我按说明书断电重启过两次，问题依旧。家里老人每天都要用它做饭，现在只能用锅临时凑合，"
     "非常不方便，希望尽快处理。",
     "更换新机"},
    {"变频空调", "空调安装预约一再延期",
     "订单显示空调十一月二十日送达并安装，结果送货师傅只把机器放在楼下就走了，安装师傅改约了三次"
     "都没有上门。客服电话一直占线，在线客服只会回复请耐心等待。天气已经转冷，家里孩子发烧，我们等"
     "不起，请给出明确的安装时间。",
     "三天内上门安装并赔偿"},
    {"扫地机器人", "售后客服态度恶劣",
     "扫地机器人的边刷掉了，我打售后热线咨询配件，客服人员语气很不耐烦，说这是人为损坏不在保修范"
     "围，还没等我说完就挂断了电话。我第二次打过去又被转了四个人，前后花了四十分钟。产品本身还可以，"
     "但这种服务态度让人很失望。",
     "道歉并免费寄送边刷"},
    {"电热水壶", "水壶底座冒烟有焦味",
     "今天早上烧水的时候，电热水壶底座突然冒烟，还有很重的塑料焦味，我赶紧拔掉了插头，底座下面已"
     "经有一块发黑。这是严重的安全隐患，家里有小孩，想想都后怕。请贵公司检查同批次产品是否存在同样"
     "问题，并给我一个书面答复。",
     "退货退款并说明原因"},
    {"原味酸奶", "酸奶中发现异物",
     "在超市买的原味酸奶，生产日期是十一月十八日，打开后发现里面有一根黑色的头发状异物，孩子已经"
     "喝了几口。包装完好没有破损，保质期内冷藏保存。我保留了剩余的酸奶和购物小票，希望食品安全部门"
     "尽快联系我，说明异物来源。",
     "检测异物并赔偿"},
    {"智能手表", "睡眠监测数据不准",
     "手表升级到最新固件以后，睡眠监测经常把我看手机的时间也算成浅睡，夜里醒来两次也没有记录，数据"
     "和实际差别很大。另外希望能增加按周导出数据的功能，方便给医生看。我用的是安卓手机，应用版本是"
     "最新的，已经重新配对过。",
     "修复监测问题并增加导出功能"},
};
#define SAMPLE_COUNT (sizeof samples / sizeof samples[0])

/* ---- body template ---- */

enum seg_kind { SEG_LITERAL, SEG_N, SEG_RUN, SEG_SUBJECT, SEG_TEXT, SEG_PRODUCT, SEG_EXPECTED };

struct segment {
    enum seg_kind kind;
    const char *text; /* SEG_LITERAL */
    size_t len;
};

struct template {
    struct segment *segs;
    size_t count;
};

static const struct {
    const char *name;
    enum seg_kind kind;
} placeholders[] = {{"n", SEG_N},       {"run", SEG_RUN},         {"subject", SEG_SUBJECT},
                    {"text", SEG_TEXT}, {"product", SEG_PRODUCT}, {"expected", SEG_EXPECTED}};

static int template_parse(const char *src, struct template *t)
{
    size_t cap = 8;
    t->segs = malloc(cap * sizeof *t->segs);
    t->count = 0;
    if (!t->segs)
        return -1;
    const char *p = src;
    while (*p) {
        if (t->count + 2 > cap) {
            cap *= 2;
            struct segment *grown = realloc(t->segs, cap * sizeof *t->segs);
            if (!grown)
                return -1;
            t->segs = grown;
        }
        const char *open = strstr(p, "{{");
        if (!open) {
            t->segs[t->count++] = (struct segment){SEG_LITERAL, p, strlen(p)};
            break;
        }
        if (open > p)
            t->segs[t->count++] = (struct segment){SEG_LITERAL, p, (size_t)(open - p)};
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            fprintf(stderr, "loadgen: body template: '{{' without '}}'\n");
            return -1;
        }
        size_t name_len = (size_t)(close - open - 2);
        bool known = false;
        for (size_t i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++) {
            if (strlen(placeholders[i].name) == name_len &&
                memcmp(placeholders[i].name, open + 2, name_len) == 0) {
                t->segs[t->count++] = (struct segment){placeholders[i].kind, NULL, 0};
                known = true;
                break;
            }
        }
        if (!known) {
            fprintf(stderr,
                    "loadgen: body template: unknown placeholder {{%.*s}} (known: n, run, "
                    "subject, text, product, expected)\n",
                    (int)name_len, open + 2);
            return -1;
        }
        p = close + 2;
    }
    return 0;
}

struct strbuf {
    char *data;
    size_t len, cap;
};

static int sb_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int template_expand(const struct template *t, uint64_t n, const char *run,
                           struct strbuf *out)
{
    const struct sample *s = &samples[n % SAMPLE_COUNT];
    out->len = 0;
    for (size_t i = 0; i < t->count; i++) {
        const struct segment *g = &t->segs[i];
        char num[24];
        const char *v = NULL;
        size_t vlen = 0;
        switch (g->kind) {
        case SEG_LITERAL:
            v = g->text;
            vlen = g->len;
            break;
        case SEG_N:
            vlen = (size_t)snprintf(num, sizeof num, "%" PRIu64, n);
            v = num;
            break;
        case SEG_RUN:
            v = run;
            break;
        case SEG_SUBJECT:
            v = s->subject;
            break;
        case SEG_TEXT:
            v = s->text;
            break;
        case SEG_PRODUCT:
            v = s->product;
            break;
        case SEG_EXPECTED:
            v = s->expected;
            break;
        }
        if (g->kind != SEG_LITERAL && g->kind != SEG_N)
            vlen = strlen(v);
        if (sb_add(out, v, vlen) != 0)
            return -1;
    }
    return 0;
}

/* ---- clock and samples ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timeval tv_from_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (struct timeval){(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
}

struct latencies {
    int64_t *ns;
    size_t count, cap;
};

static int lat_add(struct latencies *l, int64_t ns)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        int64_t *grown = realloc(l->ns, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->ns = grown;
        l->cap = cap;
    }
    l->ns[l->count++] = ns;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double percentile_ms(const struct latencies *l, double p)
{
    if (l->count == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)l->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > l->count)
        rank = l->count;
    return (double)l->ns[rank - 1] / 1e6;
}

/* ---- the generator ---- */

enum parse_state { P_HEAD, P_BODY_LENGTH, P_BODY_EOF, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_END,
                   P_TRAILER };

struct loadgen;

struct conn {
    struct loadgen *lg;
    struct bufferevent *bev;
    bool connected;
    bool busy;        /* a request is in flight */
    int64_t start_ns; /* latency origin of the request in flight */
    enum parse_state state;
    int status;
    int64_t remaining;
    bool close_after;
    bool in_idle;
    struct conn *next_idle;
};

struct loadgen {
    struct options opt;
    struct event_base *base;
    struct sockaddr_in addr;
    struct template tmpl;
    char run[32];
    char *head;        /* request line + fixed headers, without Content-Length */
    size_t head_len;
    struct strbuf body;
    bool user_content_type;
    struct voc_webhook_key *hmac; /* --hmac-secret */

    struct conn *conns;
    struct conn *idle; /* open loop: connections free to send */
    int connected;
    int connect_failures;

    bool running;  /* measuring */
    bool stopping; /* no new requests */
    int64_t t0_ns, t_end_ns, t_last_done_ns;
    uint64_t next_n;

    /* open loop */
    uint64_t due;    /* requests scheduled so far */
    uint64_t sent;   /* of those, sent */
    uint64_t total;  /* requests to schedule */
    int64_t interval_ns;
    uint64_t late;    /* sent > 1 ms after due, whatever the reason */
    uint64_t starved; /* due while every connection was busy: waited for an answer */
    struct event *tick;
    struct event *deadline;

    struct latencies lat;
    uint64_t status_count[600];
    uint64_t completed, ok;
    uint64_t err_connect, err_closed, err_timeout, err_parse, unfinished;
    bool shown_error;
};

static void conn_send(struct conn *c, int64_t start_ns);
static void conn_open(struct conn *c);
static void open_loop_pump(struct loadgen *lg, bool on_time);
static void maybe_finish(struct loadgen *lg);

static int build_request(struct loadgen *lg, struct evbuffer *out)
{
    uint64_t n = lg->next_n++;
    if (template_expand(&lg->tmpl, n, lg->run, &lg->body) != 0)
        return -1;
    if (evbuffer_add(out, lg->head, lg->head_len) != 0)
        return -1;
    if (lg->hmac) {
        /* The body differs per request, so does the signature: HMAC over "<ts>.<body>". */
        char ts[24], hex[2 * VOC_WEBHOOK_MAC_LEN + 1];
        unsigned char mac[VOC_WEBHOOK_MAC_LEN];
        snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
        if (voc_webhook_sign(lg->hmac, ts, lg->body.data, lg->body.len, mac) != 0)
            return -1;
        voc_webhook_hex(mac, hex);
        if (evbuffer_add_printf(out, "X-Voc-Timestamp: %s\r\nX-Voc-Signature: sha256=%s\r\n", ts,
                                hex) < 0)
            return -1;
    }
    if (evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", lg->body.len) < 0 ||
        evbuffer_add(out, lg->body.data, lg->body.len) != 0)
        return -1;
    return 0;
}

static void arm_read_timeout(struct conn *c, bool on)
{
    struct timeval tv = tv_from_ns((int64_t)(c->lg->opt.timeout_s * 1e9));
    bufferevent_set_timeouts(c->bev, on ? &tv : NULL, NULL);
}

static void idle_push(struct conn *c)
{
    c->next_idle = c->lg->idle;
    c->lg->idle = c;
    c->in_idle = true;
}

static void idle_remove(struct conn *c)
{
    for (struct conn **p = &c->lg->idle; *p; p = &(*p)->next_idle) {
        if (*p == c) {
            *p = c->next_idle;
            break;
        }
    }
    c->in_idle = false;
}

/* The connection can take a request: open loop parks it for the schedule (which may still
 * have due requests waiting for one), closed loop sends at once. */
static void conn_idle(struct conn *c)
{
    struct loadgen *lg = c->lg;
    c->busy = false;
    arm_read_timeout(c, false);
    if (lg->opt.rate > 0) {
        idle_push(c);
        open_loop_pump(lg, false);
        maybe_finish(lg);
    } else if (lg->running && !lg->stopping) {
        conn_send(c, now_ns());
    }
}

static void record(struct conn *c)
{
    struct loadgen *lg = c->lg;
    int64_t t = now_ns();
    /* Closed loop: only answers inside the window count; open loop: every scheduled request
     * counts, however late its answer. */
    if (lg->opt.rate > 0 || t <= lg->t_end_ns) {
        lg->completed++;
        if (c->status >= 100 && c->status < 600)
            lg->status_count[c->status]++;
        if (c->status >= 200 && c->status < 300)
            lg->ok++;
        if (lat_add(&lg->lat, t - c->start_ns) != 0) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
        lg->t_last_done_ns = t;
    }
}

/* A connection dropped (or timed out) with a request in flight: count it and reconnect. */
static void conn_lost(struct conn *c, uint64_t *counter)
{
    struct loadgen *lg = c->lg;
    if (c->busy && (lg->opt.rate > 0 || now_ns() <= lg->t_end_ns))
        (*counter)++;
    if (c->in_idle)
        idle_remove(c);
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->connected = false;
    c->busy = false;
    /* Reconnect even when stopping: an open-loop run may still have due requests to send. */
    conn_open(c);
    maybe_finish(lg);
}

static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    *value = v;
    return true;
}

static void show_error_body(struct loadgen *lg, int status, struct evbuffer *in, size_t avail)
{
    if (lg->shown_error || status < 300)
        return;
    lg->shown_error = true;
    char text[ERROR_BODY_SHOWN + 1];
    size_t n = avail < ERROR_BODY_SHOWN ? avail : ERROR_BODY_SHOWN;
    ev_ssize_t got = evbuffer_copyout(in, text, n);
    text[got > 0 ? got : 0] = '\0';
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "loadgen: first non-2xx reply: %d %s\n", status, text);
}

/* Parse the status line and headers. Returns 1 when done, 0 when more bytes are needed,
 * -1 on a malformed response. */
static int parse_head(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return evbuffer_get_length(in) > MAX_HEAD_BYTES ? -1 : 0;
    size_t head_len = (size_t)end.pos + 4;
    const char *h = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    if (!h || head_len < 12 || strncmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
        return -1;
    c->status = atoi(h + 9);
    c->close_after = h[7] == '0'; /* HTTP/1.0 closes unless told otherwise; good enough */
    bool have_length = false, chunked = false;
    c->remaining = 0;
    const char *line = memchr(h, '\n', head_len) + 1;
    while (line < h + head_len - 2) {
        const char *eol = memchr(line, '\r', (size_t)(h + head_len - line));
        size_t len = (size_t)(eol - line);
        const char *v;
        if (header_is(line, len, "Content-Length", &v)) {
            c->remaining = strtoll(v, NULL, 10);
            have_length = true;
        } else if (header_is(line, len, "Transfer-Encoding", &v)) {
            chunked = strncasecmp(v, "chunked", 7) == 0;
        } else if (header_is(line, len, "Connection", &v)) {
            if (strncasecmp(v, "close", 5) == 0)
                c->close_after = true;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = false;
        }
        line = eol + 2;
    }
    evbuffer_drain(in, head_len);
    if (chunked)
        c->state = P_CHUNK_SIZE;
    else if (have_length)
        c->state = P_BODY_LENGTH;
    else if (c->status == 204 || c->status == 304 || c->status < 200)
        c->state = P_BODY_LENGTH; /* remaining 0 */
    else
        c->state = P_BODY_EOF;
    return 1;
}

/* Returns 1 when a whole response was consumed, 0 when more bytes are needed, -1 on error. */
static int parse_response(struct conn *c, struct evbuffer *in)
{
    for (;;) {
        switch (c->state) {
        case P_HEAD: {
            int rc = parse_head(c, in);
            if (rc <= 0)
                return rc;
            break;
        }
        case P_BODY_LENGTH: {
            size_t avail = evbuffer_get_length(in);
            show_error_body(c->lg, c->status, in, avail);
            size_t take = avail < (size_t)c->remaining ? avail : (size_t)c->remaining;
            evbuffer_drain(in, take);
            c->remaining -= (int64_t)take;
            if (c->remaining > 0)
                return 0;
            return 1;
        }
        case P_BODY_EOF:
            /* Ends when the server closes; the event callback finishes it. */
            show_error_body(c->lg, c->status, in, evbuffer_get_length(in));
            evbuffer_drain(in, evbuffer_get_length(in));
            return 0;
        case P_CHUNK_SIZE: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line)
                return evbuffer_get_length(in) > 1024 ? -1 : 0;
            char *endp;
            c->remaining = strtoll(line, &endp, 16);
            bool bad = endp == line || c->remaining < 0;
            free(line);
            if (bad)
                return -1;
            c->state = c->remaining == 0 ? P_TRAILER : P_CHUNK_DATA;
            break;
        }
        case P_CHUNK_DATA: {
            size_t avail = evbuffer_get_length(in);
            show_error_body(c->lg, c->status, in, avail);
            size_t take = avail < (size_t)c->remaining ? avail : (size_t)c->remaining;
            evbuffer_drain(in, take);
            c->remaining -= (int64_t)take;
            if (c->remaining > 0)
                return 0;
            c->state = P_CHUNK_END;
            break;
        }
        case P_CHUNK_END: {
            if (evbuffer_get_length(in) < 2)
                return 0;
            char crlf[2];
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return -1;
            c->state = P_CHUNK_SIZE;
            break;
        }
        case P_TRAILER: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line)
                return 0;
            free(line);
            if (n == 0)
                return 1;
            break;
        }
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        if (!c->busy) {
            /* Bytes nobody asked for: the stream is out of step. */
            conn_lost(c, &c->lg->err_parse);
            return;
        }
        int rc = parse_response(c, in);
        if (rc < 0) {
            conn_lost(c, &c->lg->err_parse);
            return;
        }
        if (rc == 0)
            return;
        record(c);
        if (c->close_after) {
            c->busy = false;
            conn_lost(c, &c->lg->err_closed); /* not busy: nothing counted */
            return;
        }
        conn_idle(c);
        if (!c->bev)
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    struct loadgen *lg = c->lg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->connected = true;
        lg->connected++;
        if (lg->running || lg->stopping)
            conn_idle(c);
        else if (lg->connected == lg->opt.connections)
            event_base_loopbreak(lg->base);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->busy && c->state == P_BODY_EOF) {
        record(c);
        c->busy = false;
        conn_lost(c, &lg->err_closed);
        return;
    }
    if (!c->connected) {
        lg->err_connect++;
        if (++lg->connect_failures > 100 + 10 * lg->opt.connections) {
            fprintf(stderr, "loadgen: cannot connect to %s:%d: %s\n", lg->opt.host, lg->opt.port,
                    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            exit(1);
        }
    }
    conn_lost(c, (what & BEV_EVENT_TIMEOUT) ? &lg->err_timeout : &lg->err_closed);
}

static void conn_open(struct conn *c)
{
    struct loadgen *lg = c->lg;
    c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    c->connected = false;
    c->busy = false;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->addr, sizeof lg->addr) != 0) {
        lg->err_connect++;
        fprintf(stderr, "loadgen: connect to %s:%d failed\n", lg->opt.host, lg->opt.port);
        exit(1);
    }
}

static void conn_send(struct conn *c, int64_t start_ns)
{
    c->busy = true;
    c->start_ns = start_ns;
    c->state = P_HEAD;
    c->close_after = false;
    arm_read_timeout(c, true);
    if (build_request(c->lg, bufferevent_get_output(c->bev)) != 0) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
}

/* Open loop: hand every due request to a free connection. on_time: called by the schedule
 * as requests fall due; otherwise a connection just came free and what it takes had to wait
 * for one. */
static void open_loop_pump(struct loadgen *lg, bool on_time)
{
    while (lg->sent < lg->due && lg->idle) {
        struct conn *c = lg->idle;
        lg->idle = c->next_idle;
        c->in_idle = false;
        int64_t due_ns = lg->t0_ns + (int64_t)lg->sent * lg->interval_ns;
        if (now_ns() - due_ns > 1000000)
            lg->late++;
        if (!on_time)
            lg->starved++;
        lg->sent++;
        conn_send(c, due_ns);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loadgen *lg = arg;
    int64_t t = now_ns();
    uint64_t due = (uint64_t)((t - lg->t0_ns) / lg->interval_ns) + 1;
    if (due > lg->total)
        due = lg->total;
    if (due > lg->due)
        lg->due = due;
    open_loop_pump(lg, true);
    if (lg->due < lg->total) {
        struct timeval tv = tv_from_ns(lg->t0_ns + (int64_t)lg->due * lg->interval_ns - now_ns());
        event_add(lg->tick, &tv);
    } else {
        lg->stopping = true;
        maybe_finish(lg);
    }
}

static void maybe_finish(struct loadgen *lg)
{
    if (!lg->stopping)
        return;
    if (lg->opt.rate > 0 && lg->sent < lg->due)
        return;
    for (int i = 0; i < lg->opt.connections; i++)
        if (lg->conns[i].busy)
            return;
    event_base_loopbreak(lg->base);
}

/* Closed loop: the window closed. Open loop: the drain limit after the last due request. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loadgen *lg = arg;
    if (lg->opt.rate > 0) {
        uint64_t accounted = lg->completed + lg->err_closed + lg->err_timeout + lg->err_parse;
        lg->unfinished = lg->total > accounted ? lg->total - accounted : 0;
    }
    event_base_loopbreak(lg->base);
}

static int resolve(struct loadgen *lg)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", lg->opt.port);
    int rc = getaddrinfo(lg->opt.host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", lg->opt.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&lg->addr, res->ai_addr, sizeof lg->addr);
    freeaddrinfo(res);
    return 0;
}

static int build_head(struct loadgen *lg)
{
    struct strbuf b = {0};
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", lg->opt.method,
                     lg->opt.path, lg->opt.host, lg->opt.port);
    if (sb_add(&b, line, (size_t)n) != 0)
        return -1;
    for (size_t i = 0; i < lg->opt.header_count; i++) {
        const char *h = lg->opt.headers[i];
        if (!strchr(h, ':')) {
            fprintf(stderr, "loadgen: header '%s' has no ':'\n", h);
            return -1;
        }
        if (strncasecmp(h, "Content-Type:", 13) == 0)
            lg->user_content_type = true;
        if (strncasecmp(h, "Content-Length:", 15) == 0 || strncasecmp(h, "Host:", 5) == 0) {
            fprintf(stderr, "loadgen: header '%s' is set by loadgen itself\n", h);
            return -1;
        }
        if (sb_add(&b, h, strlen(h)) != 0 || sb_add(&b, "\r\n", 2) != 0)
            return -1;
    }
    if (!lg->user_content_type) {
        const char *ct = "Content-Type: application/json\r\n";
        if (sb_add(&b, ct, strlen(ct)) != 0)
            return -1;
    }
    lg->head = b.data;
    lg->head_len = b.len;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct strbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_add(&b, chunk, n) != 0)
            break;
    fclose(f);
    /* A trailing newline from an editor is not part of the body. */
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    return b.data ? b.data : strdup("");
}

static const char default_body[] =
    "{\"external_id\":\"bench-{{run}}-{{n}}\",\"channel\":\"hotline\",\"source\":\"customer\","
    "\"customer\":{\"name\":\"张伟\",\"contact\":\"13812345678\",\"region\":\"上海\"},"
    "\"product\":{\"name\":\"{{product}}\",\"model\":\"RC-50\"},"
    "\"subject\":\"{{subject}}\",\"text\":\"{{text}}\",\"expected\":\"{{expected}}\"}";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen --port P [options]\n"
            "  --host H           server address (default 127.0.0.1)\n"
            "  --port P           server port (required)\n"
            "  --path PATH        request path (default /api/v1/cases)\n"
            "  --method M         request method (default POST)\n"
            "  -H, --header 'K: V'  extra header, repeatable (Content-Type defaults to\n"
            "                     application/json)\n"
            "  --body TEMPLATE    body template; placeholders {{n}} (request counter),\n"
            "                     {{run}} (unique per process), {{subject}} {{text}} {{product}}\n"
            "                     {{expected}} (rotating Chinese complaint samples)\n"
            "  --body-file FILE   body template from a file\n"
            "  -c, --connections N  keep-alive connections (default 64)\n"
            "  -d, --duration S   seconds to run (default 10)\n"
            "  -r, --rate R       open loop at R requests/s; without it: closed loop, full speed\n"
            "  --timeout S        per-request timeout and open-loop drain limit (default 10)\n"
            "  --n-start N        first value of {{n}} (default 0)\n"
            "  --label TEXT       name printed with the results\n"
            "  --hmac-secret S    sign each request for the webhook plugin: X-Voc-Timestamp and\n"
            "                     X-Voc-Signature: sha256=HMAC-SHA256(S, \"<ts>.<body>\")\n"
            "  --json             print one JSON object instead of the table\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum { O_HOST = 256, O_PORT, O_PATH, O_METHOD, O_BODY, O_BODY_FILE, O_TIMEOUT, O_NSTART,
           O_JSON, O_LABEL, O_HMAC };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"path", required_argument, NULL, O_PATH},
        {"method", required_argument, NULL, O_METHOD},
        {"header", required_argument, NULL, 'H'},
        {"body", required_argument, NULL, O_BODY},
        {"body-file", required_argument, NULL, O_BODY_FILE},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"n-start", required_argument, NULL, O_NSTART},
        {"label", required_argument, NULL, O_LABEL},
        {"json", no_argument, NULL, O_JSON},
        {"hmac-secret", required_argument, NULL, O_HMAC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (struct options){.host = "127.0.0.1",
                          .path = "/api/v1/cases",
                          .method = "POST",
                          .body = default_body,
                          .connections = 64,
                          .duration_s = 10,
                          .timeout_s = 10,
                          .label = ""};
    int ch;
    while ((ch = getopt_long(argc, argv, "H:c:d:r:h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_HOST:
            o->host = optarg;
            break;
        case O_PORT:
            o->port = atoi(optarg);
            break;
        case O_PATH:
            o->path = optarg;
            break;
        case O_METHOD:
            o->method = optarg;
            break;
        case 'H':
            if (o->header_count == MAX_HEADERS) {
                fprintf(stderr, "loadgen: at most %d headers\n", MAX_HEADERS);
                return -1;
            }
            o->headers[o->header_count++] = optarg;
            break;
        case O_BODY:
            o->body = optarg;
            break;
        case O_BODY_FILE:
            o->body = read_file(optarg);
            if (!o->body)
                return -1;
            break;
        case 'c':
            o->connections = atoi(optarg);
            break;
        case 'd':
            o->duration_s = atof(optarg);
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case O_TIMEOUT:
            o->timeout_s = atof(optarg);
            break;
        case O_NSTART:
            o->n_start = strtoull(optarg, NULL, 10);
            break;
        case O_LABEL:
            o->label = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_HMAC:
            o->hmac_secret = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc || o->port <= 0 || o->port > 65535 || o->connections <= 0 ||
        o->duration_s <= 0 || o->rate < 0 || o->timeout_s <= 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static void print_results(struct loadgen *lg)
{
    qsort(lg->lat.ns, lg->lat.count, sizeof *lg->lat.ns, cmp_i64);
    bool open = lg->opt.rate > 0;
    /* Open loop: the run lasts until the last scheduled request is answered. */
    int64_t end = open ? (lg->t_last_done_ns > lg->t_end_ns ? lg->t_last_done_ns : lg->t_end_ns)
                       : lg->t_end_ns;
    double elapsed = (double)(end - lg->t0_ns) / 1e9;
    double rps = elapsed > 0 ? (double)lg->completed / elapsed : 0;
    double ok_ps = elapsed > 0 ? (double)lg->ok / elapsed : 0;
    double p50 = percentile_ms(&lg->lat, 50), p90 = percentile_ms(&lg->lat, 90),
           p99 = percentile_ms(&lg->lat, 99), p999 = percentile_ms(&lg->lat, 99.9);
    double max = lg->lat.count ? (double)lg->lat.ns[lg->lat.count - 1] / 1e6 : 0;
    if (lg->opt.json) {
        printf("{\"label\":\"%s\",\"mode\":\"%s\",\"connections\":%d,\"duration_s\":%.3f,"
               "\"target_rate\":%.1f,\"elapsed_s\":%.3f,\"requests\":%" PRIu64
               ",\"ok\":%" PRIu64 ",\"rps\":%.1f,\"ok_rps\":%.1f,"
               "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
               "\"max_ms\":%.3f,\"late\":%" PRIu64 ",\"starved\":%" PRIu64 ",\"status\":{",
               lg->opt.label, open ? "rate" : "full", lg->opt.connections, lg->opt.duration_s,
               lg->opt.rate, elapsed, lg->completed, lg->ok, rps, ok_ps, p50, p90, p99, p999, max,
               lg->late, lg->starved);
        bool first = true;
        for (int s = 100; s < 600; s++) {
            if (lg->status_count[s]) {
                printf("%s\"%d\":%" PRIu64, first ? "" : ",", s, lg->status_count[s]);
                first = false;
            }
        }
        printf("},\"errors\":{\"connect\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"timeout\":%" PRIu64
               ",\"parse\":%" PRIu64 ",\"unfinished\":%" PRIu64 "}}\n",
               lg->err_connect, lg->err_closed, lg->err_timeout, lg->err_parse, lg->unfinished);
        return;
    }
    printf("%s%s%s http://%s:%d%s  %s  %d connections  %.1f s\n", lg->opt.label,
           lg->opt.label[0] ? ": " : "", lg->opt.method, lg->opt.host, lg->opt.port,
           lg->opt.path, open ? "open loop" : "closed loop (full speed)", lg->opt.connections,
           lg->opt.duration_s);
    if (open)
        printf("  target      %10.1f req/s  (%" PRIu64 " sent > 1 ms after their due time; %" PRIu64
               " waited for a free connection)\n",
               lg->opt.rate, lg->late, lg->starved);
    printf("  requests    %10" PRIu64 "  in %.3f s = %.1f req/s\n", lg->completed, elapsed, rps);
    printf("  2xx         %10" PRIu64 "  = %.1f /s\n", lg->ok, ok_ps);
    printf("  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f%s\n", p50, p90, p99,
           p999, max, open ? "  (from the scheduled send time)" : "");
    printf("  status     ");
    for (int s = 100; s < 600; s++)
        if (lg->status_count[s])
            printf(" %d=%" PRIu64, s, lg->status_count[s]);
    printf("\n  errors      connect=%" PRIu64 " closed=%" PRIu64 " timeout=%" PRIu64
           " parse=%" PRIu64 " unfinished=%" PRIu64 "\n",
           lg->err_connect, lg->err_closed, lg->err_timeout, lg->err_parse, lg->unfinished);
}

int main(int argc, char **argv)
{
    struct loadgen lg_storage = {0}, *lg = &lg_storage;
    if (parse_options(argc, argv, &lg->opt) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (template_parse(lg->opt.body, &lg->tmpl) != 0 || build_head(lg) != 0 || resolve(lg) != 0) {
        free(lg->tmpl.segs);
        free(lg->head);
        return 2;
    }
    if (lg->opt.hmac_secret && voc_webhook_key_new(lg->opt.hmac_secret,
                                                   strlen(lg->opt.hmac_secret), &lg->hmac) != 0) {
        fprintf(stderr, "loadgen: cannot set up HMAC-SHA256\n");
        return 1;
    }
    snprintf(lg->run, sizeof lg->run, "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
    lg->next_n = lg->opt.n_start;

    /* Precise timers (timerfd) so the open-loop schedule is not rounded to milliseconds. */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lg->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!lg->base) {
        fprintf(stderr, "loadgen: cannot create the event loop\n");
        return 1;
    }

    lg->conns = calloc((size_t)lg->opt.connections, sizeof *lg->conns);
    if (!lg->conns)
        return 1;
    for (int i = 0; i < lg->opt.connections; i++) {
        lg->conns[i].lg = lg;
        conn_open(&lg->conns[i]);
    }
    /* Connect everything first so connection setup is not part of the figures. */
    event_base_dispatch(lg->base);
    if (lg->connected < lg->opt.connections) {
        fprintf(stderr, "loadgen: only %d of %d connections came up\n", lg->connected,
                lg->opt.connections);
        return 1;
    }

    lg->deadline = evtimer_new(lg->base, on_deadline, lg);
    lg->t0_ns = now_ns();
    lg->t_end_ns = lg->t0_ns + (int64_t)(lg->opt.duration_s * 1e9);
    lg->running = true;
    if (lg->opt.rate > 0) {
        lg->interval_ns = (int64_t)(1e9 / lg->opt.rate);
        if (lg->interval_ns < 1)
            lg->interval_ns = 1;
        lg->total = (uint64_t)(lg->opt.rate * lg->opt.duration_s + 0.5);
        for (int i = lg->opt.connections - 1; i >= 0; i--)
            idle_push(&lg->conns[i]);
        lg->tick = evtimer_new(lg->base, on_tick, lg);
        on_tick(-1, 0, lg);
        struct timeval tv = tv_from_ns((int64_t)((lg->opt.duration_s + lg->opt.timeout_s) * 1e9));
        event_add(lg->deadline, &tv);
    } else {
        for (int i = 0; i < lg->opt.connections; i++)
            conn_send(&lg->conns[i], now_ns());
        struct timeval tv = tv_from_ns(lg->t_end_ns - now_ns());
        event_add(lg->deadline, &tv);
    }
    event_base_dispatch(lg->base);
    lg->running = false;
    print_results(lg);

    for (int i = 0; i < lg->opt.connections; i++)
        if (lg->conns[i].bev)
            bufferevent_free(lg->conns[i].bev);
    if (lg->tick)
        event_free(lg->tick);
    event_free(lg->deadline);
    event_base_free(lg->base);
    free(lg->conns);
    free(lg->lat.ns);
    free(lg->tmpl.segs);
    free(lg->head);
    free(lg->body.data);
    voc_webhook_key_free(lg->hmac);
    return 0;
}
