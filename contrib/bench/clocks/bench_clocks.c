/* SLA clock benchmark (contrib/bench/README.md, "clocks"): a store with a million open cases
 * with running clocks; how fast vocd serves again after a (re)start on it, its RSS, and how
 * late its breaches fire.
 *
 *  1. Fill: writes the cases straight through the store, casedb and SLA functions vocd itself
 *     uses (records, received/classified/assigned events, idempotency references, the clocks,
 *     their deadline keys and counters), --per-txn cases per write transaction. Each case runs
 *     `resolve` (24 h, warning at 75 %) and `close` (30 d) from its assignment, 0-12 h ago, so
 *     none of them falls due during the run. Then --due cases, spread over the id range, get an
 *     `acknowledged` event that starts `callback`, whose target (fields.callback_s) puts its
 *     breach at an instant of the measured window: --span seconds, starting --lead seconds
 *     after the fill.
 *  2. Start: execs the real vocd on that store and times exec -> first 200 from GET /healthz
 *     and exec -> first 200 from GET /api/v1/cases/1; kills it with SIGKILL and does it again
 *     (the restart after a crash).
 *  3. Window: while vocd fires the breaches, this process runs a bare libevent timer over the
 *     same due instants (the baseline: how late a timer wakes on this machine right now).
 *  4. Reads every window case over HTTP: exactly one clock_breached event for `callback`, its
 *     lateness = event `at` - data.due_at (both whole milliseconds). Prints p50/p99/max for
 *     vocd and the baseline, vocd's RSS after start and after the window, and the goals.
 *
 * contrib/bench/clocks/run.sh builds, checks the disk and runs it; `--help` lists options. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "case_view.h"
#include "casedb.h"
#include "diag.h"
#include "jsonutil.h"
#include "log.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "store.h"
#include "timeutil.h"

#define TOKEN "bench-clocks-admin-token"
#define HOUR_US (3600 * VOC_US_PER_S)

struct options {
    const char *dir;     /* parent folder of the data dir, config and log */
    const char *vocd;    /* binary */
    const char *profile; /* Lua profile */
    long cases;
    long due;
    double span_s;
    double lead_s;
    long per_txn;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_clocks: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- fill ------------------------------------------------------------------------------ */

static const char *const subjects[] = {"洗衣机漏水", "冰箱不制冷", "空调噪音大", "热水器漏电"};
static const char *const texts[] = {
    "您好，我上个月购买的洗衣机在使用第三次时出现漏水，水从底部流出，地板已经被泡坏，"
    "请尽快安排维修人员上门检查，并说明是否可以换货。",
    "冰箱买回来不到两周就不制冷了，冷藏室温度一直在十五度以上，食物都坏了，"
    "客服电话一直打不通，希望有人尽快联系我处理。",
    "新装的空调夜间运行噪音非常大，影响家人休息，安装师傅说是正常现象，"
    "但我认为这是质量问题，要求厂家派技术人员复查。",
    "热水器外壳有轻微漏电，手碰到会发麻，这是严重的安全隐患，"
    "请立即停止销售同批次产品并给出书面答复。"};

struct fill_case {
    json_t *record;
    json_t *events;
    int64_t now_us;
};

static json_t *case_view_fn(void *arg)
{
    struct fill_case *fc = arg;
    return voc_case_view(fc->record, fc->events, fc->now_us);
}

static void apply_event(struct voc_txn *txn, struct voc_policy *policy, struct fill_case *fc,
                        const char *type)
{
    struct voc_sla_case sc = {.txn = txn,
                              .policy = policy,
                              .record = fc->record,
                              .now_us = fc->now_us,
                              .view = case_view_fn,
                              .view_arg = fc};
    if (voc_sla_apply_event(&sc, type) != 0)
        die("voc_sla_apply_event(%s) failed: %d", type, txn->error);
}

static void put_event(struct voc_txn *txn, struct fill_case *fc, uint64_t id, uint32_t seq,
                      json_t *event)
{
    char at[40];
    voc_format_time(fc->now_us, at, sizeof at);
    json_object_set_new(event, "seq", json_integer(seq));
    json_object_set_new(event, "at", json_string(at));
    if (voc_casedb_event_put(txn, id, seq, event) != 0)
        die("event put failed: %d", txn->error);
    json_array_append_new(fc->events, event);
    json_object_set_new(fc->record, "event_count", json_integer(seq));
    json_object_set_new(fc->record, "updated_at", json_string(at));
}

/* One case as vocd's create + assign would leave it: record, three events, reference,
 * clocks with their deadline keys and counters. */
static void fill_one(struct voc_txn *txn, struct voc_policy *policy, uint64_t id,
                     int64_t received_us, int64_t assigned_us)
{
    char rec_at[40], ext[32], contact[32], batch[32];
    voc_format_time(received_us, rec_at, sizeof rec_at);
    snprintf(ext, sizeof ext, "BENCH-%09" PRIu64, id);
    snprintf(contact, sizeof contact, "138%08" PRIu64, id % 100000000);
    snprintf(batch, sizeof batch, "B2026%05" PRIu64, id % 100000);
    size_t k = id % 4;
    json_t *classification = json_pack(
        "{s:s, s:s, s:s, s:s, s:[], s:i, s:[]}", "kind", "complaint", "category", "产品质量",
        "severity", "一般", "department", "质量部", "collaborators", "priority", 3, "tags");
    json_t *record = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s},"
        " s:s, s:s, s:s, s:[], s:{}, s:O, s:n, s:[], s:i, s:n, s:b, s:i}",
        "id", (json_int_t)id, "state", "new", "created_at", rec_at, "updated_at", rec_at,
        "external_id", ext, "channel", "web", "source", "customer", "received_at", rec_at,
        "customer", "name", "张先生", "contact", contact, "region", "华东", "account", ext,
        "product", "name", subjects[k], "model", "X-200", "batch", batch, "subject",
        subjects[k], "text", texts[k], "expected", "尽快维修或换货", "attachments", "fields",
        "classification", classification, "duplicate_of", "duplicates", "reopen_count", 0,
        "satisfaction", "breached", 0, "event_count", 0);
    if (!record)
        die("json_pack failed");
    struct fill_case fc = {.record = record, .events = json_array(), .now_us = received_us};

    put_event(txn, &fc, id, 1,
              json_pack("{s:s, s:s, s:n, s:{}}", "type", "received", "actor", "web", "note",
                        "data"));
    apply_event(txn, policy, &fc, "received");
    put_event(txn, &fc, id, 2,
              json_pack("{s:s, s:s, s:n, s:O}", "type", "classified", "actor", "rules", "note",
                        "data", classification));
    apply_event(txn, policy, &fc, "classified");
    fc.now_us = assigned_us;
    put_event(txn, &fc, id, 3,
              json_pack("{s:s, s:s, s:n, s:{s:s}}", "type", "assigned", "actor", "bench",
                        "note", "data", "department", "质量部"));
    json_object_set_new(record, "state", json_string("assigned"));
    apply_event(txn, policy, &fc, "assigned");

    if (voc_casedb_put(txn, NULL, record) != 0 ||
        voc_casedb_ref_put(txn, "web", ext, id) != 0)
        die("case put failed: %d", txn->error);
    json_decref(classification);
    json_decref(fc.events);
    json_decref(record);
}

/* Start `callback` on case id so that it breaches at due_us: the acknowledged event now,
 * target = due - now (fields.callback_s, read by the profile's target function). */
static int64_t arm_window_case(struct voc_txn *txn, struct voc_policy *policy, uint64_t id,
                               int64_t due_us)
{
    struct fill_case fc = {.now_us = voc_now_us()};
    if (voc_casedb_get(txn, id, &fc.record) != 0 || voc_casedb_events(txn, id, &fc.events) != 0)
        die("case %" PRIu64 " missing", id);
    json_t *old = json_deep_copy(fc.record);
    json_object_set_new(json_object_get(fc.record, "fields"), "callback_s",
                        json_real((double)(due_us - fc.now_us) / 1e6));
    put_event(txn, &fc, id, (uint32_t)voc_json_int(fc.record, "event_count", 0) + 1,
              json_pack("{s:s, s:s, s:s, s:{}}", "type", "acknowledged", "actor", "bench",
                        "note", "客户要求回电", "data"));
    apply_event(txn, policy, &fc, "acknowledged");
    json_t *clocks = json_object_get(fc.record, "clocks");
    json_t *cb = json_array_get(clocks, json_array_size(clocks) - 1);
    int64_t shown = 0;
    if (strcmp(voc_json_str(cb, "name"), "callback") != 0 ||
        voc_parse_time(voc_json_str(cb, "due_at"), &shown) != 0)
        die("case %" PRIu64 ": callback clock did not start", id);
    if (voc_casedb_put(txn, old, fc.record) != 0)
        die("case put failed: %d", txn->error);
    json_decref(old);
    json_decref(fc.events);
    json_decref(fc.record);
    return shown;
}

struct window {
    uint64_t *ids;
    int64_t *due_us;   /* as planned, microseconds */
    int64_t *shown_us; /* due_at as the record shows it (whole ms) */
    size_t n;
};

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t next_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static void fill(const struct options *o, const char *data_dir, struct window *w,
                 int64_t *window_start_us)
{
    char err[512];
    struct voc_store *store;
    /* Room for the whole fill without growing; LMDB's file is sparse, vocd adopts the size. */
    struct voc_store_options so = {.path = data_dir, .map_size = (uint64_t)64 << 30};
    if (voc_store_open(&store, &so, err, sizeof err) != 0)
        die("%s", err);
    struct voc_diag diag;
    voc_diag_init(&diag);
    struct voc_rules *rules = NULL;
    if (voc_rules_load(o->profile, NULL, NULL, NULL, &rules, &diag) != 0) {
        for (size_t i = 0; i < diag.count; i++)
            fprintf(stderr, "%s\n", diag.messages[i]);
        die("cannot load %s", o->profile);
    }
    voc_diag_free(&diag);
    struct voc_policy policy = {.rules = rules};

    double t0 = mono_s();
    int64_t base = voc_now_us();
    struct voc_txn txn;
    if (voc_txn_begin_write(store, &txn) != 0)
        die("begin failed");
    for (long i = 1; i <= o->cases; i++) {
        /* Received 0-12 h ago, assigned up to 10 minutes later. */
        int64_t received = base - (int64_t)(next_rand() % (uint64_t)(12 * HOUR_US));
        int64_t assigned = received + (int64_t)(next_rand() % (uint64_t)(600 * VOC_US_PER_S));
        fill_one(&txn, &policy, (uint64_t)i, received, assigned);
        if (i % o->per_txn == 0 || i == o->cases) {
            int rc = voc_txn_commit(&txn);
            if (rc != 0)
                die("commit failed: %s", mdb_strerror(rc));
            if (i != o->cases && voc_txn_begin_write(store, &txn) != 0)
                die("begin failed");
        }
        if (i % 100000 == 0) {
            printf("  filled %ld cases, %.0f cases/s\n", i, (double)i / (mono_s() - t0));
            fflush(stdout);
        }
    }
    double fill_s = mono_s() - t0;

    /* The window: --due deadlines evenly over --span seconds, --lead seconds from now, on
     * cases spread over the whole id range (so firing reads pages all over the store). */
    w->n = (size_t)o->due;
    w->ids = calloc(w->n, sizeof *w->ids);
    w->due_us = calloc(w->n, sizeof *w->due_us);
    w->shown_us = calloc(w->n, sizeof *w->shown_us);
    if (!w->ids || !w->due_us || !w->shown_us)
        die("out of memory");
    *window_start_us = voc_now_us() + (int64_t)(o->lead_s * 1e6);
    if (voc_txn_begin_write(store, &txn) != 0)
        die("begin failed");
    for (size_t k = 0; k < w->n; k++) {
        w->ids[k] = 1 + (uint64_t)((double)k * (double)o->cases / (double)w->n);
        /* Odd microseconds, like real ones. */
        w->due_us[k] = *window_start_us + (int64_t)((double)k * o->span_s * 1e6 / (double)w->n) +
                       (int64_t)(next_rand() % 1000);
        w->shown_us[k] = arm_window_case(&txn, &policy, w->ids[k], w->due_us[k]);
    }
    int rc = voc_txn_commit(&txn);
    if (rc != 0)
        die("commit failed: %s", mdb_strerror(rc));

    struct voc_txn rtxn;
    struct voc_sla_counts counts = {0};
    if (voc_txn_begin_read(store, &rtxn) == 0) {
        voc_sla_open_counts(&rtxn, &counts);
        voc_txn_abort(&rtxn);
    }
    struct voc_store_info info;
    voc_store_info(store, &info);
    printf("fill: %ld cases in %.1f s (%.0f cases/s), %d per transaction\n", o->cases, fill_s,
           (double)o->cases / fill_s, (int)o->per_txn);
    printf("store: %.2f GiB used, %" PRIu64 " events, %" PRIu64 " deadline keys, open clocks "
           "running=%" PRId64 " paused=%" PRId64 " warning=%" PRId64 " breached=%" PRId64 "\n",
           (double)info.used_bytes / (1 << 30), info.entries[VOC_DB_EVENTS],
           info.entries[VOC_DB_DEADLINES], counts.running, counts.paused, counts.warning,
           counts.breached);
    voc_store_close(store);
    voc_rules_free(rules);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

/* One GET on a new connection: status (0 when the connection failed) and body. */
static int http_get(int port, const char *path, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN
                     "\r\nConnection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    char *start = strstr(buf, "\r\n\r\n");
    if (start)
        *body = strdup(start + 4);
    free(buf);
    return status;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("no free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- vocd ------------------------------------------------------------------------------ */

static void write_config(const struct options *o, const char *path, const char *data_dir,
                         int port)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(TOKEN, strlen(TOKEN), md, &mdlen, EVP_sha256(), NULL);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    fprintf(f,
            "# written by contrib/bench/clocks/bench_clocks\n"
            "data_dir: %s\n"
            "listen: { http: 127.0.0.1:%d }\n"
            "log_level: info\n"
            "profile: %s\n"
            "store: { max_map_size: 64GiB }\n"
            "auth:\n"
            "  tokens:\n"
            "    - { name: bench, role: admin, sha256: \"%s\" }\n",
            data_dir, port, o->profile, hex);
    fclose(f);
}

/* Drop the store file's pages from the page cache. */
static int evict(const char *data_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    fdatasync(fd);
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return rc;
}

/* Share of the store file in the page cache (mincore over a mapping of it), -1 unknown. */
static double cached_share(const char *data_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = ((size_t)st.st_size + page - 1) / page;
    unsigned char *vec = malloc(pages);
    size_t in = 0;
    if (vec && mincore(map, (size_t)st.st_size, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    free(vec);
    munmap(map, (size_t)st.st_size);
    return (double)in / (double)pages;
}

struct started {
    pid_t pid;
    double healthz_s; /* exec -> first 200 from /healthz */
    double case_s;    /* exec -> first 200 from /api/v1/cases/1 */
};

static struct started start_vocd(const struct options *o, const char *config, const char *log,
                                 int port)
{
    struct started s = {0};
    double t0 = mono_s();
    s.pid = fork();
    if (s.pid < 0)
        die("fork: %s", strerror(errno));
    if (s.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(o->vocd, o->vocd, "-c", config, (char *)NULL);
        _exit(127);
    }
    const char *paths[] = {"/healthz", "/api/v1/cases/1"};
    double *out[] = {&s.healthz_s, &s.case_s};
    for (int i = 0; i < 2; i++) {
        for (;;) {
            char *body;
            int status = http_get(port, paths[i], &body);
            free(body);
            if (status == 200) {
                *out[i] = mono_s() - t0;
                break;
            }
            int ws;
            if (waitpid(s.pid, &ws, WNOHANG) == s.pid)
                die("vocd exited during start-up (see %s)", log);
            if (mono_s() - t0 > 300)
                die("vocd not serving %s after 300 s (see %s)", paths[i], log);
            usleep(1000);
        }
    }
    return s;
}

struct rss {
    long rss_kb, hwm_kb, anon_kb, file_kb;
};

static struct rss rss_of(pid_t pid)
{
    struct rss r = {-1, -1, -1, -1};
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return r;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld kB", &r.rss_kb);
        sscanf(line, "VmHWM: %ld kB", &r.hwm_kb);
        sscanf(line, "RssAnon: %ld kB", &r.anon_kb);
        sscanf(line, "RssFile: %ld kB", &r.file_kb);
    }
    fclose(f);
    return r;
}

static void print_rss(const char *when, struct rss r)
{
    printf("vocd RSS %-27s %7.1f MiB (anonymous %.1f, file-backed %.1f; peak %.1f)\n", when,
           r.rss_kb / 1024.0, r.anon_kb / 1024.0, r.file_kb / 1024.0, r.hwm_kb / 1024.0);
}

/* ---- the bare timer baseline ----------------------------------------------------------- */

struct baseline {
    struct event_base *base;
    struct event *timer;
    const int64_t *due; /* sorted */
    size_t n, next;
    double *late_ms;
};

static void baseline_arm(struct baseline *b)
{
    if (b->next >= b->n) {
        event_base_loopexit(b->base, NULL);
        return;
    }
    int64_t delay = b->due[b->next] - voc_now_us();
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / VOC_US_PER_S), (suseconds_t)(delay % VOC_US_PER_S)};
    evtimer_add(b->timer, &tv);
}

static void baseline_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct baseline *b = arg;
    int64_t now = voc_now_us();
    while (b->next < b->n && b->due[b->next] <= now) {
        b->late_ms[b->next] = (double)(now - b->due[b->next]) / 1000.0;
        b->next++;
    }
    baseline_arm(b);
}

static void run_baseline(const int64_t *due, size_t n, double *late_ms)
{
    struct baseline b = {.base = event_base_new(), .due = due, .n = n, .late_ms = late_ms};
    b.timer = evtimer_new(b.base, baseline_fire, &b);
    baseline_arm(&b);
    event_base_dispatch(b.base);
    event_free(b.timer);
    event_base_free(b.base);
}

/* ---- figures --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_lateness(const char *what, double *v, size_t n, double *p99_out)
{
    if (n == 0) {
        printf("%-34s no samples\n", what);
        *p99_out = 1e9;
        return;
    }
    qsort(v, n, sizeof *v, cmp_double);
    double p50 = v[(n - 1) / 2], p99 = v[(size_t)((double)(n - 1) * 0.99)], max = v[n - 1];
    printf("%-34s n=%-6zu p50 %8.3f ms   p99 %8.3f ms   max %8.3f ms\n", what, n, p50, p99,
           max);
    *p99_out = p99;
}

static void print_machine(void)
{
    char host[256] = "?";
    gethostname(host, sizeof host);
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    printf("machine: %s, %ld CPUs, load average %.2f %.2f %.2f\n", host,
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_clocks --dir DIR --vocd PATH [--profile FILE] [--cases N] [--due N]\n"
            "                    [--span SECONDS] [--lead SECONDS] [--per-txn N]\n"
            "  --dir      an empty folder on a real disk (not tmpfs); the store goes in DIR/data\n"
            "  --cases    open cases to fill (default 1000000)\n"
            "  --due      breaches in the measured window (default 2000)\n"
            "  --span     length of the window in seconds (default 20)\n"
            "  --lead     seconds from the end of the fill to the window (default 40): both\n"
            "             starts of vocd must fit in it\n"
            "  --per-txn  cases per write transaction while filling (default 10000)\n");
}

int main(int argc, char **argv)
{
    struct options o = {.profile = VOC_BENCH_PROFILE,
                        .cases = 1000000,
                        .due = 2000,
                        .span_s = 20,
                        .lead_s = 40,
                        .per_txn = 10000};
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},     {"vocd", required_argument, NULL, 'v'},
        {"profile", required_argument, NULL, 'p'}, {"cases", required_argument, NULL, 'n'},
        {"due", required_argument, NULL, 'k'},     {"span", required_argument, NULL, 's'},
        {"lead", required_argument, NULL, 'l'},    {"per-txn", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case 'v': o.vocd = optarg; break;
        case 'p': o.profile = optarg; break;
        case 'n': o.cases = atol(optarg); break;
        case 'k': o.due = atol(optarg); break;
        case 's': o.span_s = atof(optarg); break;
        case 'l': o.lead_s = atof(optarg); break;
        case 't': o.per_txn = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.dir || !o.vocd || o.cases < 1 || o.due < 1 || o.due > o.cases || o.span_s <= 0 ||
        o.lead_s <= 0 || o.per_txn < 1) {
        usage(stderr);
        return 2;
    }
    voc_log_set_level(VOC_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);

    char data_dir[4096], config[4096], log[4096];
    snprintf(data_dir, sizeof data_dir, "%s/data", o.dir);
    snprintf(config, sizeof config, "%s/vocd.yaml", o.dir);
    snprintf(log, sizeof log, "%s/vocd.log", o.dir);

    print_machine();
    printf("settings: cases=%ld due=%ld span=%.1fs lead=%.1fs per_txn=%ld\n", o.cases, o.due,
           o.span_s, o.lead_s, o.per_txn);
    fflush(stdout);

    struct window w;
    int64_t window_start;
    fill(&o, data_dir, &w, &window_start);
    fflush(stdout);

    int port = free_port();
    write_config(&o, config, data_dir, port);
    struct started first = start_vocd(&o, config, log, port);
    printf("start after the fill (page cache warm):      /healthz %.3f s   /api/v1/cases/1 %.3f s\n",
           first.healthz_s, first.case_s);
    kill(first.pid, SIGKILL);
    waitpid(first.pid, NULL, 0);
    /* The honest restart reads the store from disk: drop this file's pages from the page
     * cache (only this file's; nothing has it mapped now). */
    bool cold = evict(data_dir) == 0;
    printf("store file in the page cache before the restart: %.1f %%\n",
           100 * cached_share(data_dir));
    struct started second = start_vocd(&o, config, log, port);
    printf("restart after kill -9%s /healthz %.3f s   /api/v1/cases/1 %.3f s\n",
           cold ? " (store not in page cache):" : " (page cache NOT dropped):", second.healthz_s,
           second.case_s);
    usleep(500000);
    print_rss("0.5 s after the restart:", rss_of(second.pid));
    fflush(stdout);

    double early_s = (double)(window_start - voc_now_us()) / 1e6;
    if (early_s < 1)
        printf("WARNING: the window started %.1f s before vocd was ready: raise --lead\n",
               -early_s);

    /* The baseline runs over the same instants while vocd fires them. */
    double *base_late = calloc(w.n, sizeof *base_late);
    int64_t *sorted = malloc(w.n * sizeof *sorted);
    memcpy(sorted, w.due_us, w.n * sizeof *sorted);
    qsort(sorted, w.n, sizeof *sorted, cmp_i64);
    int64_t wait_us = w.due_us[0] - voc_now_us() - 200000;
    if (wait_us > 0)
        usleep((useconds_t)wait_us);
    print_rss("just before the window:", rss_of(second.pid));
    fflush(stdout);
    run_baseline(sorted, w.n, base_late);
    free(sorted);
    sleep(3); /* the last firings commit */
    struct rss rss_after = rss_of(second.pid);

    double *late = calloc(w.n, sizeof *late);
    size_t n_late = 0, missing = 0, twice = 0, wrong_due = 0;
    for (size_t k = 0; k < w.n; k++) {
        char path[64], *body;
        snprintf(path, sizeof path, "/api/v1/cases/%" PRIu64, w.ids[k]);
        int status = http_get(port, path, &body);
        json_t *doc = body && status == 200 ? json_loads(body, 0, NULL) : NULL;
        free(body);
        if (!doc)
            die("GET %s: %d", path, status);
        size_t i, found = 0;
        json_t *e;
        json_array_foreach(json_object_get(doc, "events"), i, e)
        {
            json_t *data = json_object_get(e, "data");
            if (strcmp(voc_json_str(e, "type"), "clock_breached") != 0 ||
                !voc_json_str(data, "clock") || strcmp(voc_json_str(data, "clock"), "callback"))
                continue;
            int64_t at, due;
            if (voc_parse_time(voc_json_str(e, "at"), &at) != 0 ||
                voc_parse_time(voc_json_str(data, "due_at"), &due) != 0)
                die("case %" PRIu64 ": bad times in clock_breached", w.ids[k]);
            if (due != w.shown_us[k])
                wrong_due++;
            if (found++ == 0)
                late[n_late++] = (double)(at - due) / 1000.0;
        }
        missing += found == 0;
        twice += found > 1;
        json_decref(doc);
    }
    char *metrics = NULL;
    http_get(port, "/metrics", &metrics);
    const char *open_line = metrics ? strstr(metrics, "vocd_clocks_open{status=\"running\"}") : NULL;
    double open_running = open_line ? atof(strchr(open_line, '}') + 1) : -1;
    free(metrics);
    struct rss rss_end = rss_of(second.pid);

    kill(second.pid, SIGTERM);
    int ws = 0;
    waitpid(second.pid, &ws, 0);

    print_rss("after the window:", rss_after);
    print_rss("after reading the cases:", rss_end);
    printf("open clocks running after the window: %.0f\n", open_running);
    printf("breaches: %zu planned, %zu fired, %zu missing, %zu fired more than once, %zu with "
           "another due_at\n",
           w.n, n_late, missing, twice, wrong_due);
    double p99_vocd, p99_base;
    print_lateness("lateness vocd (at - due_at):", late, n_late, &p99_vocd);
    print_lateness("lateness bare libevent timer:", base_late, w.n, &p99_base);
    printf("vocd exit after SIGTERM: %d\n", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);

    double serve = second.case_s > first.case_s ? second.case_s : first.case_s;
    long peak = rss_after.hwm_kb > rss_end.hwm_kb ? rss_after.hwm_kb : rss_end.hwm_kb;
    printf("goals: RSS under 1 GiB: %s (peak %.0f MiB) | serving within 5 s: %s (%.3f s) | "
           "breaches within 1 s: %s (p99 %.3f ms, none missing: %s)\n",
           peak < 1024 * 1024 ? "yes" : "NO", peak / 1024.0, serve < 5 ? "yes" : "NO", serve,
           p99_vocd < 1000 ? "yes" : "NO", p99_vocd, missing == 0 && twice == 0 ? "yes" : "NO");
    free(late);
    free(base_late);
    free(w.ids);
    free(w.due_us);
    free(w.shown_us);
    return 0;
}
