/* hotline_csv: a spool folder of call-centre CSV exports becomes cases, one per row.
 *
 * This file is the plugin's face (descriptor, options, init/start/stop) and its eyes: the
 * spool is watched with inotify on the core's event loop, and rescanned now and then in case
 * an event was missed (inotify queue overflow, network file systems). A file is taken once
 * it is complete: renamed into the spool (IN_MOVED_TO), or unchanged (size and mtime) for
 * settle_time. Files are imported one at a time, oldest-ready first (csv_import.c).
 * docs/hotline-csv.md is the user's side of all this. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fnmatch.h>
#include <glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csv_reader.h"
#include "hotline.h"

static const char *const encodings[] = {"auto", "utf-8", "gb18030", NULL};

#define OPT(field) offsetof(struct hotline_config, field)

static const struct voc_option hotline_options[] = {
    {"spool", VOC_OPT_PATH, OPT(spool), NULL, VOC_OPT_REQUIRED,
     "watched folder; done/, rejects/ and failed/ are made inside it", NULL, 0, 0, NULL, 0, 0},
    {"encoding", VOC_OPT_ENUM, OPT(encoding), "auto", 0,
     "auto (BOM, else valid UTF-8, else GB18030) | utf-8 | gb18030", NULL, 0, 0, encodings, 0, 0},
    {"channel", VOC_OPT_STRING, OPT(channel), "hotline", 0, "the cases' channel", NULL, 0, 0, NULL,
     0, 0},
    {"columns", VOC_OPT_STRING_MAP, OPT(columns), NULL, VOC_OPT_REQUIRED,
     "intake field <- CSV header (text, received_at, customer.name, product.model, "
     "external_id, fields.<key> ...); other columns go to fields",
     NULL, 0, OPT(column_count), NULL, 0, 0},
    {"time_format", VOC_OPT_STRING_LIST, OPT(time_format), NULL, 0,
     "strptime formats tried in order for received_at (default: %Y-%m-%d %H:%M[:%S], "
     "%Y/%m/%d %H:%M[:%S])",
     NULL, 0, OPT(time_format_count), NULL, 0, 0},
    {"time_zone", VOC_OPT_STRING, OPT(time_zone), "Asia/Shanghai", 0,
     "IANA zone of the times in the file", NULL, 0, 0, NULL, 0, 0},
    {"match", VOC_OPT_STRING, OPT(match), "*.csv", 0,
     "file name pattern (case-insensitive); names starting with '.' are never taken", NULL, 0, 0,
     NULL, 0, 0},
    {"delimiter", VOC_OPT_STRING, OPT(delimiter), ",", 0, "field delimiter (one byte)", NULL, 0, 0,
     NULL, 0, 0},
    {"settle_time", VOC_OPT_DURATION, OPT(settle_time), "5s", 0,
     "a file not renamed into the spool is taken once unchanged this long", NULL, 0, 0, NULL, 0, 0},
    {"rescan_interval", VOC_OPT_DURATION, OPT(rescan_interval), "30s", 0,
     "full rescan of the spool besides inotify", NULL, 0, 0, NULL, 0, 0},
    {"max_in_flight", VOC_OPT_INT, OPT(max_in_flight), "2000", 0,
     "rows submitted and not yet durable, at most (memory bound)", NULL, 0, 0, NULL, 1, 100000},
    {"max_row_size", VOC_OPT_SIZE, OPT(max_row_size), "1MiB", 0,
     "longer rows are rejected (a quote never closed would swallow the file)", NULL, 0, 0, NULL, 0,
     0},
    {0},
};

/* ---- the spool ---------------------------------------------------------------------------- */

struct candidate {
    char *name;
    off_t size;
    struct timespec mtime;
    double stable_since; /* monotonic time (size, mtime) were last seen to change */
    double not_before;   /* after a failed attempt */
    bool moved_in;       /* renamed into the spool: complete */
    /* The last import stopped before a final row without a line break; the file as it was
     * then. Unchanged after another settle_time, the file is complete as it is. */
    bool tail_held;
    off_t held_size;
    struct timespec held_mtime;
    bool queued;
    bool stuck; /* could not be moved out: ignored until it changes */
    bool seen;  /* rescan bookkeeping */
};

struct hotline_watch {
    GHashTable *candidates; /* name -> struct candidate */
    GQueue ready;           /* names (owned) in the order they became ready */
    char *current;          /* the file being imported */
    int ifd;
    struct event *iev;
    struct event *tick_ev;
    double next_rescan;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void candidate_free(void *p)
{
    struct candidate *c = p;
    free(c->name);
    free(c);
}

static bool wanted(const struct hotline *h, const char *name)
{
    return name[0] != '.' && fnmatch(h->cfg->match, name, FNM_CASEFOLD) == 0;
}

static struct candidate *candidate_get(struct hotline *h, const char *name, const struct stat *st)
{
    struct candidate *c = g_hash_table_lookup(h->watch->candidates, name);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    c->size = st->st_size;
    c->mtime = st->st_mtim;
    /* A file untouched for a while when first seen (e.g. at start-up) has already settled. */
    double age = (double)time(NULL) - (double)st->st_mtim.tv_sec;
    c->stable_since = mono_now() - (age > 0 ? age : 0);
    g_hash_table_insert(h->watch->candidates, c->name, c);
    return c;
}

static void observe(struct candidate *c, const struct stat *st, double now)
{
    if (st->st_size != c->size || st->st_mtim.tv_sec != c->mtime.tv_sec ||
        st->st_mtim.tv_nsec != c->mtime.tv_nsec) {
        c->size = st->st_size;
        c->mtime = st->st_mtim;
        c->stable_since = now;
        c->stuck = false;
    }
}

static bool is_current(const struct hotline *h, const char *name)
{
    return h->watch->current && strcmp(h->watch->current, name) == 0;
}

static void consider(struct hotline *h, struct candidate *c, double now)
{
    if (c->queued || c->stuck || is_current(h, c->name) || now < c->not_before)
        return;
    if (!c->moved_in && now - c->stable_since < h->cfg->settle_time)
        return;
    char *name = strdup(c->name);
    if (!name)
        return;
    g_queue_push_tail(&h->watch->ready, name);
    c->queued = true;
}

static void start_next(struct hotline *h)
{
    struct hotline_watch *w = h->watch;
    while (!h->current && !h->stopping && !g_queue_is_empty(&w->ready)) {
        char *name = g_queue_pop_head(&w->ready);
        struct candidate *c = g_hash_table_lookup(w->candidates, name);
        if (!c) {
            free(name);
            continue;
        }
        c->queued = false;
        w->current = name;
        bool complete = c->moved_in || (c->tail_held && c->size == c->held_size &&
                                        c->mtime.tv_sec == c->held_mtime.tv_sec &&
                                        c->mtime.tv_nsec == c->held_mtime.tv_nsec);
        if (voc_hotline_import_start(h, name, complete) != 0) {
            h->api->log(h->p, VOC_PLOG_ERROR, "out of memory starting file=%s", name);
            w->current = NULL;
            c->not_before = mono_now() + h->cfg->rescan_interval;
            free(name);
            return;
        }
    }
}

static void rescan(struct hotline *h)
{
    struct hotline_watch *w = h->watch;
    double now = mono_now();
    w->next_rescan = now + h->cfg->rescan_interval;
    DIR *d = opendir(h->cfg->spool);
    if (!d) {
        h->api->log(h->p, VOC_PLOG_ERROR, "cannot read the spool %s: %s", h->cfg->spool,
                    strerror(errno));
        return;
    }
    GHashTableIter it;
    void *value;
    g_hash_table_iter_init(&it, w->candidates);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((struct candidate *)value)->seen = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (!wanted(h, de->d_name) || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        struct candidate *c = candidate_get(h, de->d_name, &st);
        if (!c)
            continue;
        observe(c, &st, now);
        c->seen = true;
    }
    closedir(d);
    g_hash_table_iter_init(&it, w->candidates);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct candidate *c = value;
        if (!c->seen && !is_current(h, c->name))
            g_hash_table_iter_remove(&it); /* gone without our noticing */
        else
            consider(h, c, now);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hotline *h = arg;
    struct hotline_watch *w = h->watch;
    double now = mono_now();
    if (now >= w->next_rescan) {
        rescan(h);
    } else {
        GHashTableIter it;
        void *value;
        g_hash_table_iter_init(&it, w->candidates);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            struct candidate *c = value;
            if (c->queued || is_current(h, c->name))
                continue;
            char *path = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", h->cfg->spool, c->name) < 0)
                continue;
            int rc = stat(path, &st);
            free(path);
            if (rc != 0) {
                g_hash_table_iter_remove(&it);
                continue;
            }
            observe(c, &st, now);
            consider(h, c, now);
        }
    }
    start_next(h);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct hotline *h = arg;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    double now = mono_now();
    bool overflow = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW)
                overflow = true;
            if (!ev->len || (ev->mask & IN_ISDIR) || !wanted(h, ev->name))
                continue;
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                if (!is_current(h, ev->name))
                    g_hash_table_remove(h->watch->candidates, ev->name);
                continue;
            }
            char *path = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", h->cfg->spool, ev->name) < 0)
                continue;
            int rc = stat(path, &st);
            free(path);
            if (rc != 0 || !S_ISREG(st.st_mode))
                continue;
            struct candidate *c = candidate_get(h, ev->name, &st);
            if (!c)
                continue;
            if (ev->mask & IN_MOVED_TO) {
                /* A rename is atomic: the file is complete now, whatever its mtime. */
                c->size = st.st_size;
                c->mtime = st.st_mtim;
                c->moved_in = true;
                c->stuck = false;
                consider(h, c, now);
            } else {
                observe(c, &st, now);
                c->stable_since = now; /* it is being written */
                c->moved_in = false;
            }
        }
    }
    if (overflow)
        rescan(h);
    start_next(h);
}

void voc_hotline_import_ended(struct hotline *h, struct csv_import *imp, const char *name,
                              enum voc_hotline_outcome outcome)
{
    struct hotline_watch *w = h->watch;
    struct candidate *c = g_hash_table_lookup(w->candidates, name);
    if (c) {
        switch (outcome) {
        case VOC_HOTLINE_MOVED:
            g_hash_table_remove(w->candidates, name);
            break;
        case VOC_HOTLINE_RETRY:
            c->not_before = mono_now() + h->cfg->rescan_interval;
            break;
        case VOC_HOTLINE_STUCK:
            c->stuck = true;
            break;
        case VOC_HOTLINE_REPLACED:
            c->moved_in = true; /* arrived by rename */
            c->not_before = 0;
            c->queued = false;
            break;
        case VOC_HOTLINE_UNSETTLED: {
            /* Wait a full settle_time from now; the file as it is now is what must stay. */
            char *path = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", h->cfg->spool, name) >= 0 && stat(path, &st) == 0) {
                observe(c, &st, mono_now());
                c->tail_held = true;
                c->held_size = st.st_size;
                c->held_mtime = st.st_mtim;
            }
            free(path);
            c->stable_since = mono_now();
            c->moved_in = false;
            break;
        }
        }
    }
    h->current = NULL;
    free(w->current);
    w->current = NULL;
    voc_hotline_import_free(imp);
    if (c && outcome == VOC_HOTLINE_REPLACED)
        consider(h, c, mono_now());
    start_next(h);
}

int voc_hotline_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = path + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- plugin entry points ------------------------------------------------------------------ */

static void hotline_free(struct hotline *h)
{
    if (!h)
        return;
    if (h->current)
        voc_hotline_import_free(h->current);
    if (h->watch) {
        struct hotline_watch *w = h->watch;
        if (w->iev)
            event_free(w->iev);
        if (w->ifd >= 0)
            close(w->ifd);
        if (w->tick_ev)
            event_free(w->tick_ev);
        char *name;
        while ((name = g_queue_pop_head(&w->ready)))
            free(name);
        if (w->candidates)
            g_hash_table_destroy(w->candidates);
        free(w->current);
        free(w);
    }
    free(h->map_targets);
    free(h->map_headers);
    free(h->done_dir);
    free(h->rejects_dir);
    free(h->failed_dir);
    free(h);
}

/* A delimiter that is also a byte inside a character would split characters (GB18030's
 * second bytes include '|'); refused here, where the encoding is known. */
static int check_delimiter(struct voc_plugin *p, const struct voc_core_api *api,
                           const struct hotline_config *cfg)
{
    const char *d = cfg->delimiter;
    if (strlen(d) != 1) {
        api->log(p, VOC_PLOG_ERROR,
                 "plugins.hotline_csv.delimiter: '%s' is not one byte (e.g. \",\", \";\" or "
                 "\"\\t\")",
                 d);
        return -1;
    }
    unsigned char c = (unsigned char)d[0];
    bool gb = cfg->encoding != HOTLINE_ENC_UTF8;
    const char *why = voc_csv_delimiter_problem(c, gb);
    if (!why)
        return 0;
    char shown[8];
    snprintf(shown, sizeof shown, c >= 0x20 && c < 0x7f ? "'%c'" : "0x%02X", c);
    api->log(p, VOC_PLOG_ERROR,
             "plugins.hotline_csv.delimiter: %s (0x%02X) cannot be used with encoding: %s: %s. "
             "Use ',', ';', ':', TAB or another byte below 0x40 other than a digit%s",
             shown, c, encodings[cfg->encoding], why,
             gb && c >= 0x40 && c < 0x7f ? ", or set encoding: utf-8 if the files are UTF-8" : "");
    return -1;
}

static int hotline_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                        void **state)
{
    const struct hotline_config *cfg = config;
    struct hotline *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->p = p;
    h->api = api;
    h->cfg = cfg;
    h->base = api->event_base(p);
    size_t clen = strlen(cfg->channel);
    bool channel_ok = clen > 0 && clen <= 32;
    for (size_t i = 0; i < clen; i++) {
        char c = cfg->channel[i];
        channel_ok &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    }
    if (!channel_ok) {
        /* Else the core would refuse every row. */
        api->log(p, VOC_PLOG_ERROR, "channel '%s' must be 1-32 characters of a-z, 0-9, '_', '-'",
                 cfg->channel);
        goto fail;
    }
    if (check_delimiter(p, api, cfg) != 0)
        goto fail;
    h->map_targets = calloc(cfg->column_count + 1, sizeof *h->map_targets);
    h->map_headers = calloc(cfg->column_count + 1, sizeof *h->map_headers);
    if (!h->map_targets || !h->map_headers)
        goto fail;
    for (size_t i = 0; i < cfg->column_count; i++) {
        h->map_targets[i] = cfg->columns[i].key;
        h->map_headers[i] = cfg->columns[i].value;
    }
    h->map = (struct voc_row_mapper_config){
        .targets = h->map_targets,
        .headers = h->map_headers,
        .count = cfg->column_count,
        .time_formats = (const char *const *)cfg->time_format,
        .time_format_count = cfg->time_format_count,
        .time_zone = cfg->time_zone,
        .channel = cfg->channel,
    };
    char err[512];
    if (voc_row_mapper_check(&h->map, err, sizeof err) != 0) {
        api->log(p, VOC_PLOG_ERROR, "%s", err);
        goto fail;
    }
    if (asprintf(&h->done_dir, "%s/done", cfg->spool) < 0 ||
        asprintf(&h->rejects_dir, "%s/rejects", cfg->spool) < 0 ||
        asprintf(&h->failed_dir, "%s/failed", cfg->spool) < 0)
        goto fail;
    const char *dirs[] = {cfg->spool, h->done_dir, h->rejects_dir, h->failed_dir};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (voc_hotline_mkdirs(dirs[i]) != 0) {
            api->log(p, VOC_PLOG_ERROR, "cannot create %s: %s", dirs[i], strerror(errno));
            goto fail;
        }
    }
    h->counters.files = api->counter(p, "files", "CSV files imported (moved to done/)");
    h->counters.rows = api->counter(p, "rows", "CSV data rows read to the end");
    h->counters.cases = api->counter(p, "cases", "rows that became a case (new or existing)");
    h->counters.rejects = api->counter(p, "rejects", "rows written to rejects/");
    h->counters.failed = api->counter(p, "failed_files", "files moved to failed/");
    h->watch = calloc(1, sizeof *h->watch);
    if (!h->watch)
        goto fail;
    h->watch->ifd = -1;
    h->watch->candidates = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, candidate_free);
    g_queue_init(&h->watch->ready);
    *state = h;
    return 0;
fail:
    hotline_free(h);
    return -1;
}

static int hotline_start(void *state)
{
    struct hotline *h = state;
    struct hotline_watch *w = h->watch;
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0 ||
        inotify_add_watch(w->ifd, h->cfg->spool,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ATTRIB |
                              IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0) {
        h->api->log(h->p, VOC_PLOG_WARN,
                    "inotify unavailable (%s): the spool is only rescanned every %.0fs",
                    strerror(errno), h->cfg->rescan_interval);
        if (w->ifd >= 0)
            close(w->ifd);
        w->ifd = -1;
    } else {
        w->iev = event_new(h->base, w->ifd, EV_READ | EV_PERSIST, on_inotify, h);
        if (!w->iev || event_add(w->iev, NULL) != 0)
            return -1;
    }
    /* The tick checks settling files; a quarter of the settle time keeps the wait close to
     * what was configured without polling hard. */
    double tick = h->cfg->settle_time / 4;
    tick = tick < 0.05 ? 0.05 : tick > 1.0 ? 1.0 : tick;
    struct timeval tv = {(time_t)tick, (suseconds_t)((tick - (double)(time_t)tick) * 1e6)};
    w->tick_ev = event_new(h->base, -1, EV_PERSIST, on_tick, h);
    if (!w->tick_ev || event_add(w->tick_ev, &tv) != 0)
        return -1;
    h->api->log(h->p, VOC_PLOG_INFO, "watching spool=%s encoding=%s settle_time=%.3fs",
                h->cfg->spool, encodings[h->cfg->encoding], h->cfg->settle_time);
    rescan(h);
    start_next(h);
    return 0;
}

static void hotline_stop(void *state)
{
    struct hotline *h = state;
    h->stopping = true;
    if (h->watch->iev)
        event_del(h->watch->iev);
    if (h->watch->tick_ev)
        event_del(h->watch->tick_ev);
    voc_hotline_import_stop(h->current);
}

static void hotline_destroy(void *state)
{
    hotline_free(state);
}

static const struct voc_plugin_descriptor hotline_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "hotline_csv",
    .version = "1.1.0",
    .description = "Call-centre CSV exports (UTF-8 or GB18030) from a spool folder, one case "
                   "per row, exactly once",
    .options = hotline_options,
    .config_size = sizeof(struct hotline_config),
    .init = hotline_init,
    .start = hotline_start,
    .stop = hotline_stop,
    .destroy = hotline_destroy,
    .reload = NULL,
};

VOC_PLUGIN_EXPORT(hotline_descriptor);
