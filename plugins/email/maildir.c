#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Names taken from new/ per scan; the rest wait for the next one. */
#define MAX_SCAN_NAMES 10000

struct voc_maildir_item {
    struct voc_maildir *md;
    char *name;
    char *data;
    size_t len;
    struct voc_maildir_item *next;
};

struct voc_maildir {
    struct event_base *base;
    char *root, *new_dir, *cur_dir, *rejected_dir;
    double rescan_s;
    unsigned max_inflight;
    uint64_t max_size;
    voc_maildir_deliver_fn deliver;
    voc_maildir_log_fn log;
    void *arg;

    int inotify_fd;
    struct event *inotify_ev;
    struct event *rescan_ev; /* periodic */
    struct event *soon_ev;   /* one-shot "scan now", coalesces bursts of events */
    struct voc_maildir_item *inflight;
    unsigned inflight_count;
    bool stopped;
    bool scanning;
    /* after a temporary failure, new/ is left alone until this monotonic time */
    double quiet_until;
};

static void md_log(struct voc_maildir *md, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void md_log(struct voc_maildir *md, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (md->log)
        md->log(md->arg, level, buf);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (ensure_dir(buf) != 0)
            return -1;
        buf[i] = saved;
    }
    return 0;
}

static bool in_flight(const struct voc_maildir *md, const char *name)
{
    for (const struct voc_maildir_item *it = md->inflight; it; it = it->next)
        if (strcmp(it->name, name) == 0)
            return true;
    return false;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void schedule_scan(struct voc_maildir *md)
{
    if (md->stopped || !md->soon_ev)
        return;
    struct timeval zero = {0, 0};
    event_add(md->soon_ev, &zero);
}

/* Read the whole file; -1 with errno. */
static int read_file(const char *path, uint64_t max_size, char **data, size_t *len,
                     bool *too_big)
{
    *too_big = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (max_size && (uint64_t)st.st_size > max_size) {
        *too_big = true;
        close(fd);
        return 0;
    }
    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    size_t used = 0;
    for (;;) {
        if (used == cap) {
            /* the file grew while being read: it is still being written */
            free(buf);
            close(fd);
            errno = EAGAIN;
            return -1;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = used;
    return 0;
}

static void move_rejected(struct voc_maildir *md, const char *name, const char *reason)
{
    char *from = join(md->new_dir, name);
    char *to = join(md->rejected_dir, name);
    if (from && to && ensure_dir(md->rejected_dir) == 0 && rename(from, to) == 0) {
        size_t n = strlen(to) + 8;
        char *why = malloc(n);
        if (why) {
            snprintf(why, n, "%s.reason", to);
            FILE *f = fopen(why, "w");
            if (f) {
                fprintf(f, "%s\n", reason ? reason : "rejected");
                fclose(f);
            }
            free(why);
        }
        md_log(md, 2, "maildir message rejected file=%s reason=\"%s\"", name,
               reason ? reason : "");
    } else {
        md_log(md, 3, "cannot move rejected message file=%s error=\"%s\"", name,
               strerror(errno));
    }
    free(from);
    free(to);
}

static void move_delivered(struct voc_maildir *md, const char *name)
{
    char *from = join(md->new_dir, name);
    size_t n = strlen(md->cur_dir) + strlen(name) + 8;
    char *to = malloc(n);
    if (from && to) {
        /* "Seen": vocd has read it; an info part already present is kept as it is */
        if (strchr(name, ':'))
            snprintf(to, n, "%s/%s", md->cur_dir, name);
        else
            snprintf(to, n, "%s/%s:2,S", md->cur_dir, name);
        /* No fsync needed: if this rename is lost in a crash the message is taken again and
         * answered by its Message-ID (or content hash) as already delivered. */
        if (rename(from, to) != 0)
            md_log(md, 3, "cannot move delivered message to cur/ file=%s error=\"%s\"", name,
                   strerror(errno));
    }
    free(from);
    free(to);
}

static void take(struct voc_maildir *md, const char *name)
{
    char *path = join(md->new_dir, name);
    if (!path)
        return;
    char *data = NULL;
    size_t len = 0;
    bool too_big = false;
    int rc = read_file(path, md->max_size, &data, &len, &too_big);
    free(path);
    if (rc != 0) {
        if (errno != ENOENT) /* ENOENT: another reader took it, nothing to say */
            md_log(md, 2, "cannot read maildir message file=%s error=\"%s\"", name,
                   strerror(errno));
        return;
    }
    if (too_big) {
        char reason[120];
        snprintf(reason, sizeof reason, "message exceeds the size limit of %llu bytes",
                 (unsigned long long)md->max_size);
        move_rejected(md, name, reason);
        return;
    }
    struct voc_maildir_item *it = calloc(1, sizeof *it);
    if (!it || !(it->name = strdup(name))) {
        free(it);
        free(data);
        return;
    }
    it->md = md;
    it->data = data;
    it->len = len;
    it->next = md->inflight;
    md->inflight = it;
    md->inflight_count++;
    md->deliver(md->arg, it, it->name, it->data, it->len);
}

static void scan(struct voc_maildir *md)
{
    if (md->stopped || md->scanning)
        return;
    if (now_mono() < md->quiet_until)
        return;
    if (md->inflight_count >= md->max_inflight)
        return; /* voc_maildir_done schedules the next scan */
    DIR *d = opendir(md->new_dir);
    if (!d) {
        md_log(md, 3, "cannot read %s: %s", md->new_dir, strerror(errno));
        return;
    }
    md->scanning = true;
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < MAX_SCAN_NAMES) {
        if (e->d_name[0] == '.')
            continue;
        if (in_flight(md, e->d_name))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **n = realloc(names, ncap * sizeof *n);
            if (!n)
                break;
            names = n;
            cap = ncap;
        }
        if (!(names[count] = strdup(e->d_name)))
            break;
        count++;
    }
    closedir(d);
    /* Maildir names start with the delivery time: sorted is (about) arrival order. */
    if (count > 1)
        qsort(names, count, sizeof *names, cmp_names);
    size_t i = 0;
    for (; i < count && !md->stopped && md->inflight_count < md->max_inflight &&
           now_mono() >= md->quiet_until;
         i++)
        take(md, names[i]);
    for (size_t k = 0; k < count; k++)
        free(names[k]);
    free(names);
    md->scanning = false;
}

static void on_soon(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan(arg);
}

static void on_rescan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_maildir *md = arg;
    md->quiet_until = 0;
    scan(md);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct voc_maildir *md = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof buf) > 0) {
        /* the events only say "look again": which file does not matter */
    }
    schedule_scan(md);
}

int voc_maildir_open(struct event_base *base, const struct voc_maildir_options *opts,
                     struct voc_maildir **out, char *err, size_t errlen)
{
    struct voc_maildir *md = calloc(1, sizeof *md);
    if (!md) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    md->base = base;
    md->root = strdup(opts->root);
    md->new_dir = join(opts->root, "new");
    md->cur_dir = join(opts->root, "cur");
    md->rejected_dir = join(opts->root, "rejected");
    md->rescan_s = opts->rescan_s > 0 ? opts->rescan_s : 30;
    md->max_inflight = opts->max_inflight ? opts->max_inflight : 8;
    md->max_size = opts->max_size;
    md->deliver = opts->deliver;
    md->log = opts->log;
    md->arg = opts->arg;
    md->inotify_fd = -1;
    char *tmp_dir = join(opts->root, "tmp");
    if (!md->root || !md->new_dir || !md->cur_dir || !md->rejected_dir || !tmp_dir) {
        free(tmp_dir);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (mkdir_p(md->root) != 0 || ensure_dir(md->new_dir) != 0 ||
        ensure_dir(md->cur_dir) != 0 || ensure_dir(tmp_dir) != 0) {
        snprintf(err, errlen, "cannot create the Maildir %s: %s", md->root, strerror(errno));
        free(tmp_dir);
        goto fail;
    }
    free(tmp_dir);
    md->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (md->inotify_fd >= 0 &&
        inotify_add_watch(md->inotify_fd, md->new_dir, IN_MOVED_TO | IN_CLOSE_WRITE) >= 0) {
        md->inotify_ev = event_new(base, md->inotify_fd, EV_READ | EV_PERSIST, on_inotify, md);
        if (md->inotify_ev)
            event_add(md->inotify_ev, NULL);
    } else {
        md_log(md, 2, "inotify unavailable for %s (%s): new mail is found by the rescan only",
               md->new_dir, strerror(errno));
    }
    md->soon_ev = event_new(base, -1, 0, on_soon, md);
    md->rescan_ev = event_new(base, -1, EV_PERSIST, on_rescan, md);
    if (!md->soon_ev || !md->rescan_ev) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct timeval tv = {(time_t)md->rescan_s,
                         (suseconds_t)((md->rescan_s - (double)(time_t)md->rescan_s) * 1e6)};
    event_add(md->rescan_ev, &tv);
    schedule_scan(md);
    *out = md;
    return 0;
fail:
    voc_maildir_free(md);
    return -1;
}

void voc_maildir_done(struct voc_maildir *md, struct voc_maildir_item *item,
                      enum voc_maildir_outcome outcome, const char *reason)
{
    for (struct voc_maildir_item **pp = &md->inflight; *pp; pp = &(*pp)->next) {
        if (*pp == item) {
            *pp = item->next;
            break;
        }
    }
    md->inflight_count--;
    switch (outcome) {
    case VOC_MAILDIR_DELIVERED:
        move_delivered(md, item->name);
        break;
    case VOC_MAILDIR_REJECTED:
        move_rejected(md, item->name, reason);
        break;
    case VOC_MAILDIR_RETRY:
        md_log(md, 2, "maildir message kept for a retry file=%s reason=\"%s\"", item->name,
               reason ? reason : "");
        md->quiet_until = now_mono() + md->rescan_s;
        break;
    }
    free(item->name);
    free(item->data);
    free(item);
    if (!md->scanning)
        schedule_scan(md);
}

void voc_maildir_stop(struct voc_maildir *md)
{
    if (!md || md->stopped)
        return;
    md->stopped = true;
    if (md->inotify_ev) {
        event_free(md->inotify_ev);
        md->inotify_ev = NULL;
    }
    if (md->inotify_fd >= 0) {
        close(md->inotify_fd);
        md->inotify_fd = -1;
    }
    if (md->rescan_ev) {
        event_free(md->rescan_ev);
        md->rescan_ev = NULL;
    }
    if (md->soon_ev) {
        event_free(md->soon_ev);
        md->soon_ev = NULL;
    }
}

void voc_maildir_free(struct voc_maildir *md)
{
    if (!md)
        return;
    voc_maildir_stop(md);
    while (md->inflight) {
        struct voc_maildir_item *it = md->inflight;
        md->inflight = it->next;
        free(it->name);
        free(it->data);
        free(it);
    }
    free(md->root);
    free(md->new_dir);
    free(md->cur_dir);
    free(md->rejected_dir);
    free(md);
}

unsigned voc_maildir_inflight(const struct voc_maildir *md)
{
    return md ? md->inflight_count : 0;
}
