/* LMTP load client: C connections (one thread each, blocking sockets) deliver messages for
 * D seconds, each transaction pipelined the way Postfix's LMTP client does it (MAIL, RCPT,
 * DATA in one write; the message after 354), and print one line of figures:
 *
 *   lmtp_load PORT --connections C --duration D --kind text|attach [--size BYTES]
 *   -> "messages=N seconds=S rate=R p50_ms=A p99_ms=B failed=F"
 *
 * Every message has its own Message-ID and, for `attach`, its own random attachment bytes:
 * nothing is answered from a cache or deduplicated. The message is built once per
 * connection and only its Message-ID (and the attachment's first bytes) change. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct config {
    int port;
    int connections;
    double duration;
    int attach;      /* 0: text message, 1: one attachment of `size` bytes */
    size_t size;     /* text: body bytes; attach: attachment bytes */
};

struct worker {
    const struct config *cfg;
    int id;
    pthread_t tid;
    unsigned long done, failed;
    double *lat; /* seconds per message */
    size_t lat_count, lat_cap;
    char error[200];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct conn {
    int fd;
    char buf[65536];
    size_t len, pos;
};

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One reply line (multi-line replies: returns each line). Returns the code or -1. */
static int read_line(struct conn *c, char *line, size_t linelen)
{
    for (;;) {
        char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->pos)) + 1;
            size_t k = n < linelen - 1 ? n : linelen - 1;
            memcpy(line, c->buf + c->pos, k);
            line[k] = '\0';
            c->pos += n;
            return atoi(line);
        }
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        if (c->len == sizeof c->buf)
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        c->len += (size_t)r;
    }
}

/* Read a (possibly multi-line) reply; returns its code. */
static int read_reply(struct conn *c)
{
    char line[1024];
    for (;;) {
        int code = read_line(c, line, sizeof line);
        if (code < 0)
            return -1;
        if (line[3] != '-')
            return code;
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The message with a fixed-width Message-ID slot and, for attachments, a fixed-width slot
 * of random base64 at the start of the attachment, both rewritten per message. */
struct message {
    char *data;
    size_t len;
    size_t id_at;   /* 16 hex digits */
    size_t rand_at; /* 64 base64 chars (attach only) */
};

static void build_message(const struct config *cfg, int worker, struct message *m)
{
    size_t cap = cfg->size * 2 + 8192;
    char *d = malloc(cap);
    size_t n = 0;
    n += (size_t)snprintf(d + n, cap - n,
                          "From: =?UTF-8?B?5byg5Lyf?= <bench%d@example.cn>\r\n"
                          "To: feedback@example.com\r\n"
                          "Subject: =?UTF-8?B?55S16aWt54WyIOaXoOazleWKoOeDrQ==?=\r\n"
                          "Date: Mon, 23 Nov 2026 09:14:55 +0800\r\n"
                          "Message-ID: <",
                          worker);
    m->id_at = n;
    n += (size_t)snprintf(d + n, cap - n, "0000000000000000.w%03d@bench.example>\r\n"
                                          "MIME-Version: 1.0\r\n",
                          worker);
    /* text: UTF-8 Chinese body, 3 bytes a character, 76-byte lines */
    static const char line_text[] = "我上周购买的智能电饭煲用了三天就不能加热了指示灯一直闪请尽快处理";
    if (!cfg->attach) {
        n += (size_t)snprintf(d + n, cap - n, "Content-Type: text/plain; charset=UTF-8\r\n"
                                              "Content-Transfer-Encoding: 8bit\r\n\r\n");
        size_t start = n;
        while (n - start < cfg->size) {
            memcpy(d + n, line_text, sizeof line_text - 1);
            n += sizeof line_text - 1;
            memcpy(d + n, "\r\n", 2);
            n += 2;
        }
        m->rand_at = 0;
    } else {
        n += (size_t)snprintf(d + n, cap - n,
                              "Content-Type: multipart/mixed; boundary=\"bench-b\"\r\n\r\n"
                              "--bench-b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
                              "%s\r\n--bench-b\r\nContent-Type: image/jpeg\r\n"
                              "Content-Disposition: attachment; filename=\"photo.jpg\"\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n",
                              line_text);
        m->rand_at = n;
        size_t b64len = (cfg->size + 2) / 3 * 4;
        unsigned seed = (unsigned)worker * 2654435761u + 1;
        for (size_t i = 0; i < b64len; i++) {
            seed = seed * 1103515245u + 12345u;
            d[n++] = b64[(seed >> 16) & 63];
            if ((i + 1) % 76 == 0) {
                d[n++] = '\r';
                d[n++] = '\n';
            }
        }
        n += (size_t)snprintf(d + n, cap - n, "\r\n--bench-b--\r\n");
    }
    /* the terminating dot line */
    memcpy(d + n, ".\r\n", 3);
    n += 3;
    m->data = d;
    m->len = n;
}

static void stamp(struct message *m, unsigned long counter, unsigned *seed)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016lx", counter);
    memcpy(m->data + m->id_at, hex, 16);
    if (m->rand_at)
        for (int i = 0; i < 64; i++) {
            *seed = *seed * 1103515245u + 12345u;
            m->data[m->rand_at + (size_t)i] = b64[(*seed >> 16) & 63];
        }
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    struct message m;
    build_message(cfg, w->id, &m);
    struct conn *c = calloc(1, sizeof *c);
    c->fd = connect_to(cfg->port);
    if (c->fd < 0) {
        snprintf(w->error, sizeof w->error, "connect: %s", strerror(errno));
        goto out;
    }
    if (read_reply(c) != 220 || send_all(c->fd, "LHLO bench\r\n", 12) != 0 ||
        read_reply(c) != 250) {
        snprintf(w->error, sizeof w->error, "greeting/LHLO failed");
        goto out;
    }
    char envelope[200];
    int elen = snprintf(envelope, sizeof envelope,
                        "MAIL FROM:<bench%d@example.cn> SIZE=%zu\r\n"
                        "RCPT TO:<feedback@example.com>\r\nDATA\r\n",
                        w->id, m.len);
    unsigned seed = (unsigned)w->id * 7919u + 17u;
    unsigned long counter = ((unsigned long)time(NULL) << 20) ^ ((unsigned long)w->id << 52);
    double end = now_s() + cfg->duration;
    while (now_s() < end) {
        stamp(&m, counter++, &seed);
        double t0 = now_s();
        if (send_all(c->fd, envelope, (size_t)elen) != 0) {
            snprintf(w->error, sizeof w->error, "send: %s", strerror(errno));
            break;
        }
        int a = read_reply(c), b = read_reply(c), d = read_reply(c);
        if (a != 250 || b != 250 || d != 354) {
            snprintf(w->error, sizeof w->error, "envelope replies %d %d %d", a, b, d);
            break;
        }
        if (send_all(c->fd, m.data, m.len) != 0) {
            snprintf(w->error, sizeof w->error, "send: %s", strerror(errno));
            break;
        }
        int r = read_reply(c);
        if (r < 0) {
            snprintf(w->error, sizeof w->error, "connection lost");
            break;
        }
        if (r != 250)
            w->failed++;
        else
            w->done++;
        if (w->lat_count == w->lat_cap) {
            w->lat_cap = w->lat_cap ? w->lat_cap * 2 : 4096;
            w->lat = realloc(w->lat, w->lat_cap * sizeof *w->lat);
        }
        w->lat[w->lat_count++] = now_s() - t0;
    }
    send_all(c->fd, "QUIT\r\n", 6);
    read_reply(c);
out:
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    free(m.data);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct config cfg = {.connections = 1, .duration = 5, .size = 5 * 1024};
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [--connections C] [--duration S] [--kind text|attach] "
                        "[--size BYTES]\n",
                argv[0]);
        return 2;
    }
    cfg.port = atoi(argv[1]);
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--connections") == 0)
            cfg.connections = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--duration") == 0)
            cfg.duration = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--kind") == 0)
            cfg.attach = strcmp(argv[i + 1], "attach") == 0;
        else if (strcmp(argv[i], "--size") == 0)
            cfg.size = (size_t)atol(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (cfg.connections < 1 || cfg.connections > 256 || cfg.port <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct worker *ws = calloc((size_t)cfg.connections, sizeof *ws);
    double t0 = now_s();
    for (int i = 0; i < cfg.connections; i++) {
        ws[i].cfg = &cfg;
        ws[i].id = i;
        pthread_create(&ws[i].tid, NULL, work, &ws[i]);
    }
    unsigned long done = 0, failed = 0;
    size_t total = 0;
    for (int i = 0; i < cfg.connections; i++) {
        pthread_join(ws[i].tid, NULL);
        done += ws[i].done;
        failed += ws[i].failed;
        total += ws[i].lat_count;
        if (ws[i].error[0])
            fprintf(stderr, "connection %d: %s\n", i, ws[i].error);
    }
    double elapsed = now_s() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < cfg.connections; i++) {
        memcpy(all + k, ws[i].lat, ws[i].lat_count * sizeof *all);
        k += ws[i].lat_count;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
    printf("messages=%lu seconds=%.2f rate=%.1f p50_ms=%.2f p99_ms=%.2f failed=%lu\n", done,
           elapsed, (double)done / elapsed, p50 * 1e3, p99 * 1e3, failed);
    free(all);
    free(ws);
    return done > 0 && failed == 0 ? 0 : 1;
}
