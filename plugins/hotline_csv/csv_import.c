/* One file's import: hash it, pick the encoding, map the header, then stream its rows into
 * cases with a checkpoint in the same transaction as each case, rejects to a side file, and
 * finally move the file to done/ (or failed/).
 *
 * Exactly once: rows are handed out in file order and retired in file order (a ring of at
 * most max_in_flight rows). The checkpoint sent with each submission is the point before
 * which every row is durably settled: its case committed, or its rejects line fsync'ed. On
 * restart the import resumes there; rows between that point and the crash that had been
 * committed meet their own external_id and answer EXISTS, so nothing is doubled, and their
 * rejects lines are written again after the rejects file is cut back to its checkpointed
 * length, so nothing is lost or doubled there either. */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "csv_reader.h"
#include "hotline.h"
#include "row_ids.h"
#include "row_mapper.h"
#include "textbuf.h"

#define READ_CHUNK (256 * 1024)
#define HASH_STEP (16u * 1024 * 1024) /* bytes hashed per turn of the event loop */
#define RING_BYTES_MAX (64u * 1024 * 1024)
#define REJECTS_LOGGED_MAX 100        /* per file; the rest are in the rejects file only */
#define SYNC_DELAY_S 0.5              /* rejects lines reach the disk in batches */
#define RETRY_FULL_S 0.02             /* the writer queue was full */
#define RETRY_UNAVAILABLE_S 1.0       /* the store could not take writes */
#define SKIP_STEP (16u * 1024 * 1024) /* bytes re-read per loop turn on the way to a checkpoint */

enum row_state { ROW_QUEUED = 1, ROW_INFLIGHT, ROW_CREATED, ROW_EXISTS, ROW_REJECTED };

struct import_row {
    struct csv_import *imp;
    enum row_state state;
    struct voc_csv_pos start, end;
    char *json; /* the intake record, until its case is durable */
    size_t json_len;
    char *reject; /* the rejects file line */
    size_t reject_len;
};

enum phase { PH_OPEN, PH_HASH, PH_ROWS, PH_FINISH };

struct csv_import {
    struct hotline *h;
    char *name, *path;
    int fd;
    struct stat st;
    enum phase phase;
    bool stopping, blocked, aborting, unavailable_logged;
    bool fd_identity_known; /* st holds the open file's identity */

    EVP_MD_CTX *md;
    struct voc_csv_sniff sniff;
    uint64_t hashed;
    char file_id[65];
    char state_key[80];
    enum voc_csv_encoding enc;
    size_t bom_len;

    struct voc_csv_reader *reader;
    struct voc_row_mapper *mapper;
    struct voc_row_ids *ids;
    unsigned char *buf;
    uint64_t read_off;
    uint64_t skip_until; /* rows before this offset were settled before a restart */
    bool read_eof, rows_done;
    /* A final row without a line break is only taken from a file known to be complete:
     * renamed into the spool, or seen ending like this and unchanged for settle_time since.
     * Otherwise the import stops before it and the watcher looks again later. */
    bool accept_tail, tail_held;
    struct voc_textbuf json, reason, line;

    struct import_row *ring; /* rows read and not yet retired, in file order */
    size_t cap, head, count, ring_bytes;
    size_t *queue; /* ring slots waiting to be submitted */
    size_t q_head, q_count;
    size_t in_flight;

    struct voc_csv_checkpoint cur; /* after the last retired row */
    struct voc_csv_checkpoint dur; /* the same, as far as it is on disk */
    char cp_text[VOC_CSV_CHECKPOINT_MAX];
    size_t cp_len;
    bool cp_stale, resumed;

    char *rejects_partial;
    int rej_fd;
    uint64_t rej_len;
    bool rej_dirty;
    uint64_t rejects_logged;

    uint64_t rows_this_run;
    double started;
    struct event *pump_ev, *retry_ev, *sync_ev;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define LOG(imp, level, ...) (imp)->h->api->log((imp)->h->p, (level), __VA_ARGS__)

static char *path_join(const char *dir, const char *name)
{
    char *p;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* dir/name, or dir/stem.N.ext when that is taken: earlier files of the same name stay. */
static char *unique_path(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    for (int n = 1; p && access(p, F_OK) == 0 && n < 100000; n++) {
        free(p);
        if (asprintf(&p, "%s/%.*s.%d%s", dir, (int)stem, name, n, name + stem) < 0)
            p = NULL;
    }
    return p;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_all(int fd, const void *data, size_t len, uint64_t off)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static void schedule(struct csv_import *imp)
{
    event_active(imp->pump_ev, EV_TIMEOUT, 0);
}

static void retry_in(struct csv_import *imp, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(imp->retry_ev, &tv);
}

/* ---- ending ------------------------------------------------------------------------------ */

static void end(struct csv_import *imp, enum voc_hotline_outcome outcome)
{
    voc_hotline_import_ended(imp->h, imp, imp->name, outcome);
}

static void close_fds(struct csv_import *imp)
{
    if (imp->fd >= 0)
        close(imp->fd);
    imp->fd = -1;
    if (imp->rej_fd >= 0)
        close(imp->rej_fd);
    imp->rej_fd = -1;
}

/* Is spool/<name> still the file we read? A new export renamed over it must not be moved
 * away unread. Returns 1 (ours) or 0 (gone or replaced: *outcome says what to do). */
static int still_ours(struct csv_import *imp, enum voc_hotline_outcome *outcome)
{
    struct stat now;
    if (stat(imp->path, &now) != 0) {
        LOG(imp, VOC_PLOG_WARN, "file=%s was removed from the spool while it was imported",
            imp->name);
        *outcome = VOC_HOTLINE_MOVED;
        return 0;
    }
    if (now.st_ino != imp->st.st_ino || now.st_dev != imp->st.st_dev) {
        LOG(imp, VOC_PLOG_WARN,
            "file=%s was replaced by another file while it was imported; the new one is next",
            imp->name);
        *outcome = VOC_HOTLINE_REPLACED;
        return 0;
    }
    return 1;
}

/* The file cannot be imported: failed/<name> with failed/<name>.reason beside it. */
static void fail_file(struct csv_import *imp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_file(struct csv_import *imp, const char *fmt, ...)
{
    struct hotline *h = imp->h;
    char reason[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    close_fds(imp);
    if (imp->rejects_partial)
        unlink(imp->rejects_partial);
    if (imp->state_key[0])
        h->api->state_delete(h->p, imp->state_key, NULL, NULL);
    h->api->counter_add(h->counters.failed, 1);
    enum voc_hotline_outcome outcome;
    if (imp->fd_identity_known && !still_ours(imp, &outcome)) {
        LOG(imp, VOC_PLOG_ERROR, "file failed file=%s reason=%s (not moved: see above)", imp->name,
            reason);
        end(imp, outcome);
        return;
    }
    char *dest = unique_path(h->failed_dir, imp->name);
    if (!dest || rename(imp->path, dest) != 0) {
        LOG(imp, VOC_PLOG_ERROR,
            "file failed file=%s reason=%s; cannot move it to %s (%s): it is ignored until it "
            "changes",
            imp->name, reason, h->failed_dir, strerror(errno));
        free(dest);
        end(imp, VOC_HOTLINE_STUCK);
        return;
    }
    char *why = NULL;
    if (asprintf(&why, "%s.reason", dest) >= 0) {
        int fd = open(why, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t n = strlen(reason);
        reason[n] = '\n';
        if (fd < 0 || write_all(fd, reason, n + 1, 0) != 0 || fsync(fd) != 0)
            LOG(imp, VOC_PLOG_ERROR, "cannot write %s: %s", why, strerror(errno));
        reason[n] = '\0';
        if (fd >= 0)
            close(fd);
        free(why);
    }
    fsync_dir(h->failed_dir);
    fsync_dir(h->cfg->spool);
    /* Logged once the file is where the message says. */
    LOG(imp, VOC_PLOG_ERROR, "file failed file=%s reason=%s moved_to=%s", imp->name, reason, dest);
    free(dest);
    end(imp, VOC_HOTLINE_MOVED);
}

/* Stop this attempt; the file stays in the spool and the next attempt resumes from the
 * checkpoint. */
static void abort_import(struct csv_import *imp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void abort_import(struct csv_import *imp, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (!imp->aborting)
        LOG(imp, VOC_PLOG_WARN, "import interrupted, will resume later file=%s reason=%s",
            imp->name, reason);
    imp->aborting = true;
    schedule(imp);
}

/* ---- rejects ----------------------------------------------------------------------------- */

static void log_reject(struct csv_import *imp, uint64_t line, const char *reason)
{
    if (imp->rejects_logged < REJECTS_LOGGED_MAX)
        LOG(imp, VOC_PLOG_WARN, "row rejected file=%s line=%llu reason=%s", imp->name,
            (unsigned long long)line, reason);
    else if (imp->rejects_logged == REJECTS_LOGGED_MAX)
        LOG(imp, VOC_PLOG_WARN,
            "more rows rejected file=%s: further rejects are only listed in rejects/%s", imp->name,
            imp->name);
    imp->rejects_logged++;
}

static int append_reject(struct csv_import *imp, const char *text, size_t len)
{
    if (imp->rej_fd < 0) {
        imp->rej_fd = open(imp->rejects_partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (imp->rej_fd < 0)
            return -1;
    }
    if (imp->rej_len == 0) {
        /* A BOM so that Excel opens the UTF-8 file right. */
        struct voc_textbuf head;
        voc_textbuf_init(&head);
        voc_textbuf_adds(&head, "\xEF\xBB\xBF");
        voc_row_mapper_reject_header(imp->mapper, &head);
        int rc = head.failed ? -1 : write_all(imp->rej_fd, head.data, head.len, 0);
        if (rc == 0)
            imp->rej_len = head.len;
        voc_textbuf_free(&head);
        if (rc != 0)
            return -1;
    }
    if (write_all(imp->rej_fd, text, len, imp->rej_len) != 0)
        return -1;
    imp->rej_len += len;
    if (!imp->rej_dirty) {
        imp->rej_dirty = true;
        struct timeval tv = {0, (suseconds_t)(SYNC_DELAY_S * 1e6)};
        evtimer_add(imp->sync_ev, &tv);
    }
    return 0;
}

static void mark_durable(struct csv_import *imp)
{
    imp->dur = imp->cur;
    imp->dur.rejects_len = imp->rej_len;
    imp->cp_stale = true;
}

static int sync_rejects(struct csv_import *imp)
{
    if (imp->rej_dirty) {
        if (fdatasync(imp->rej_fd) != 0)
            return -1;
        imp->rej_dirty = false;
        mark_durable(imp);
    }
    return 0;
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct csv_import *imp = arg;
    if (sync_rejects(imp) != 0)
        abort_import(imp, "cannot sync %s: %s", imp->rejects_partial, strerror(errno));
}

/* The rejects line of a row refused by the core: read the row again from the file. */
static void reject_refused(struct csv_import *imp, struct import_row *e, const char *reason)
{
    struct voc_csv_reader *r = NULL;
    size_t len = (size_t)(e->end.offset - e->start.offset);
    char *raw = malloc(len ? len : 1);
    struct voc_csv_reader_opts o = {.encoding = imp->enc,
                                    .delimiter = (unsigned char)imp->h->cfg->delimiter[0],
                                    .max_row_bytes = imp->h->cfg->max_row_size,
                                    .start = e->start};
    struct voc_csv_row row;
    voc_textbuf_reset(&imp->line);
    if (raw && pread(imp->fd, raw, len, (off_t)e->start.offset) == (ssize_t)len &&
        voc_csv_reader_new(&r, &o) == 0) {
        voc_csv_reader_input(r, raw, len, true);
        if (voc_csv_reader_next(r, &row) == 1)
            voc_rejects_line(&row, imp->enc, reason, &imp->line);
    }
    if (imp->line.len == 0 || imp->line.failed) {
        /* Could not read it again: the reason and the line number still say which row. */
        voc_textbuf_reset(&imp->line);
        voc_textbuf_printf(&imp->line, "%llu,", (unsigned long long)e->start.line);
        voc_textbuf_csv_field(&imp->line, reason, strlen(reason));
        voc_textbuf_adds(&imp->line, "\r\n");
    }
    voc_csv_reader_free(r);
    free(raw);
    e->reject = imp->line.failed ? NULL : strndup(imp->line.data, imp->line.len);
    e->reject_len = e->reject ? imp->line.len : 0;
}

/* ---- rows ---------------------------------------------------------------------------------- */

static void retire(struct csv_import *imp)
{
    struct hotline *h = imp->h;
    uint64_t rows = 0, cases = 0, rejects = 0;
    bool moved = false;
    while (imp->count > 0 && !imp->aborting) {
        struct import_row *e = &imp->ring[imp->head];
        if (e->state != ROW_CREATED && e->state != ROW_EXISTS && e->state != ROW_REJECTED)
            break;
        if (e->state == ROW_REJECTED) {
            if (!e->reject || append_reject(imp, e->reject, e->reject_len) != 0) {
                abort_import(imp, "cannot write %s: %s", imp->rejects_partial,
                             e->reject ? strerror(errno) : "out of memory");
                break;
            }
            imp->cur.rejects++;
            rejects++;
        } else {
            if (e->state == ROW_CREATED)
                imp->cur.created++;
            else
                imp->cur.existing++;
            cases++;
        }
        imp->cur.rows++;
        imp->cur.pos = e->end;
        rows++;
        imp->ring_bytes -= e->json_len + e->reject_len;
        free(e->json);
        free(e->reject);
        memset(e, 0, sizeof *e);
        imp->head = (imp->head + 1) % imp->cap;
        imp->count--;
        moved = true;
    }
    if (moved && !imp->rej_dirty)
        mark_durable(imp);
    imp->rows_this_run += rows;
    if (rows)
        h->api->counter_add(h->counters.rows, rows);
    if (cases)
        h->api->counter_add(h->counters.cases, cases);
    if (rejects)
        h->api->counter_add(h->counters.rejects, rejects);
}

static void on_result(void *arg, const struct voc_submit_result *r)
{
    struct import_row *e = arg;
    struct csv_import *imp = e->imp;
    imp->in_flight--;
    switch (r->status) {
    case VOC_SUBMIT_CREATED:
    case VOC_SUBMIT_APPENDED:
    case VOC_SUBMIT_EXISTS:
        e->state = r->status == VOC_SUBMIT_EXISTS ? ROW_EXISTS : ROW_CREATED;
        imp->ring_bytes -= e->json_len;
        free(e->json);
        e->json = NULL;
        e->json_len = 0;
        imp->unavailable_logged = false;
        break;
    case VOC_SUBMIT_INVALID: {
        char reason[1024];
        snprintf(reason, sizeof reason, "refused by vocd: %s (%s)", r->message ? r->message : "?",
                 r->error_code ? r->error_code : "?");
        log_reject(imp, e->start.line, reason);
        imp->ring_bytes -= e->json_len;
        free(e->json);
        e->json = NULL;
        e->json_len = 0;
        reject_refused(imp, e, reason);
        imp->ring_bytes += e->reject_len;
        e->state = ROW_REJECTED;
        break;
    }
    case VOC_SUBMIT_UNAVAILABLE:
    default:
        /* Never dropped: back in the queue, tried again in a while. */
        if (!imp->unavailable_logged)
            LOG(imp, VOC_PLOG_WARN, "store unavailable, retrying file=%s line=%llu reason=%s",
                imp->name, (unsigned long long)e->start.line, r->message ? r->message : "?");
        imp->unavailable_logged = true;
        e->state = ROW_QUEUED;
        imp->queue[(imp->q_head + imp->q_count) % imp->cap] = (size_t)(e - imp->ring);
        imp->q_count++;
        imp->blocked = true;
        retry_in(imp, RETRY_UNAVAILABLE_S);
        break;
    }
    schedule(imp);
}

static void submit_queued(struct csv_import *imp)
{
    struct hotline *h = imp->h;
    while (imp->q_count > 0 && !imp->blocked) {
        struct import_row *e = &imp->ring[imp->queue[imp->q_head]];
        if (imp->cp_stale) {
            imp->cp_len = voc_csv_checkpoint_encode(&imp->dur, imp->cp_text);
            imp->cp_stale = false;
        }
        struct voc_submit_opts o = {.state_key = imp->state_key,
                                    .state_value = imp->cp_text,
                                    .state_value_len = imp->cp_len};
        if (h->api->submit_case(h->p, e->json, e->json_len, &o, on_result, e) != 0) {
            imp->blocked = true; /* the writer is full (or vocd is stopping) */
            retry_in(imp, RETRY_FULL_S);
            return;
        }
        e->state = ROW_INFLIGHT;
        imp->in_flight++;
        imp->q_head = (imp->q_head + 1) % imp->cap;
        imp->q_count--;
    }
}

static int take_row(struct csv_import *imp, const struct voc_csv_row *row, const char *row_id)
{
    size_t slot = (imp->head + imp->count) % imp->cap;
    struct import_row *e = &imp->ring[slot];
    memset(e, 0, sizeof *e);
    e->imp = imp;
    e->start = row->start;
    e->end = row->end;
    imp->count++;
    voc_textbuf_reset(&imp->json);
    voc_textbuf_reset(&imp->reason);
    int rc = voc_row_mapper_map(imp->mapper, row, row_id, &imp->json, &imp->reason);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (!(e->json = strndup(imp->json.data, imp->json.len)))
            return -1;
        e->json_len = imp->json.len;
        e->state = ROW_QUEUED;
        imp->queue[(imp->q_head + imp->q_count) % imp->cap] = slot;
        imp->q_count++;
    } else {
        log_reject(imp, row->start.line, imp->reason.data);
        voc_textbuf_reset(&imp->line);
        voc_rejects_line(row, imp->enc, imp->reason.data, &imp->line);
        if (imp->line.failed || !(e->reject = strndup(imp->line.data, imp->line.len)))
            return -1;
        e->reject_len = imp->line.len;
        e->state = ROW_REJECTED;
    }
    imp->ring_bytes += e->json_len + e->reject_len;
    return 0;
}

static void read_rows(struct csv_import *imp)
{
    uint64_t skipped = 0;
    while (!imp->rows_done && imp->count < imp->cap && imp->ring_bytes < RING_BYTES_MAX) {
        struct voc_csv_row row;
        int rc = voc_csv_reader_next(imp->reader, &row);
        if (rc < 0) {
            abort_import(imp, "out of memory");
            return;
        }
        if (rc == 1) {
            if (!row.terminated && !imp->accept_tail) {
                /* The end of the file cuts this row: the producer may still be writing it. */
                imp->tail_held = true;
                imp->rows_done = true;
                break;
            }
            /* Every row counts for the ids, also those settled before a restart, so that
             * identical rows are numbered the same on every reading. */
            char id[VOC_ROW_ID_MAX];
            if (voc_row_ids_next(imp->ids, row.raw, row.raw_len, id) != 0) {
                abort_import(imp, "out of memory");
                return;
            }
            if (row.start.offset < imp->skip_until) {
                skipped += row.end.offset - row.start.offset;
                if (skipped >= SKIP_STEP) {
                    schedule(imp); /* the loop has other work too */
                    return;
                }
                continue;
            }
            if (take_row(imp, &row, id) != 0) {
                abort_import(imp, "out of memory");
                return;
            }
            continue;
        }
        if (imp->read_eof) {
            imp->rows_done = true;
            break;
        }
        ssize_t n = pread(imp->fd, imp->buf, READ_CHUNK, (off_t)imp->read_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            abort_import(imp, "read error: %s", strerror(errno));
            return;
        }
        imp->read_off += (uint64_t)n;
        imp->read_eof = n == 0;
        voc_csv_reader_input(imp->reader, imp->buf, (size_t)n, n == 0);
    }
}

/* ---- finishing --------------------------------------------------------------------------- */

static void log_done(struct csv_import *imp, const char *rejects, const char *moved_to)
{
    double secs = now_s() - imp->started;
    const struct voc_csv_checkpoint *c = &imp->cur;
    LOG(imp, VOC_PLOG_INFO,
        "file done file=%s rows=%llu cases=%llu new=%llu existing=%llu rejects=%llu "
        "encoding=%s resumed=%s seconds=%.3f rows_per_s=%.0f rejects_file=%s moved_to=%s",
        imp->name, (unsigned long long)c->rows, (unsigned long long)(c->created + c->existing),
        (unsigned long long)c->created, (unsigned long long)c->existing,
        (unsigned long long)c->rejects, voc_csv_encoding_name(imp->enc),
        imp->resumed ? "yes" : "no", secs, secs > 0 ? (double)imp->rows_this_run / secs : 0.0,
        rejects ? rejects : "-", moved_to ? moved_to : "-");
    imp->h->api->counter_add(imp->h->counters.files, 1);
}

/* The file ends inside a row, or changed while it was read: it may still be growing. What
 * was read is imported (its cases stay), the rest waits. The checkpoint is gone already and the
 * rejects are dropped: the next reading starts from the top, its rows answer "exists" (their ids
 * come from their content) and its rejects are written again. */
static void hold_for_tail(struct csv_import *imp, const struct stat *now)
{
    if (imp->rej_fd >= 0) {
        close(imp->rej_fd);
        imp->rej_fd = -1;
    }
    unlink(imp->rejects_partial);
    enum voc_hotline_outcome outcome = VOC_HOTLINE_UNSETTLED;
    if (!still_ours(imp, &outcome)) {
        end(imp, outcome);
        return;
    }
    if (imp->tail_held)
        LOG(imp, VOC_PLOG_INFO,
            "file=%s ends inside a row (line %llu has no line break yet): %llu rows before it "
            "imported, the file is read again once it is unchanged for settle_time",
            imp->name, (unsigned long long)imp->cur.pos.line, (unsigned long long)imp->cur.rows);
    else
        LOG(imp, VOC_PLOG_WARN,
            "file=%s changed while it was imported (size %lld -> %lld): %llu rows imported, the "
            "file is read again once it is unchanged for settle_time",
            imp->name, (long long)imp->st.st_size, (long long)now->st_size,
            (unsigned long long)imp->cur.rows);
    end(imp, VOC_HOTLINE_UNSETTLED);
}

static void complete(struct csv_import *imp)
{
    struct hotline *h = imp->h;
    struct stat now;
    bool changed = fstat(imp->fd, &now) == 0 && (now.st_size != imp->st.st_size ||
                                                 now.st_mtim.tv_sec != imp->st.st_mtim.tv_sec ||
                                                 now.st_mtim.tv_nsec != imp->st.st_mtim.tv_nsec);
    if (imp->tail_held || changed) {
        hold_for_tail(imp, &now);
        return;
    }
    char *rejects = NULL;
    if (imp->rej_fd >= 0) {
        close(imp->rej_fd);
        imp->rej_fd = -1;
    }
    if (imp->rej_len > 0) {
        rejects = unique_path(h->rejects_dir, imp->name);
        if (!rejects || rename(imp->rejects_partial, rejects) != 0)
            LOG(imp, VOC_PLOG_ERROR, "cannot rename %s to %s: %s", imp->rejects_partial,
                rejects ? rejects : "?", strerror(errno));
        fsync_dir(h->rejects_dir);
    } else {
        unlink(imp->rejects_partial);
    }
    enum voc_hotline_outcome outcome = VOC_HOTLINE_MOVED;
    char *done = NULL;
    if (still_ours(imp, &outcome)) {
        done = unique_path(h->done_dir, imp->name);
        if (!done || rename(imp->path, done) != 0) {
            LOG(imp, VOC_PLOG_ERROR,
                "cannot move file=%s to %s: %s; it is ignored until it changes", imp->name,
                h->done_dir, strerror(errno));
            outcome = VOC_HOTLINE_STUCK;
            free(done);
            done = NULL;
        } else {
            fsync_dir(h->done_dir);
            fsync_dir(h->cfg->spool);
        }
    }
    /* Logged once the files are where the message says. */
    log_done(imp, rejects, done);
    free(done);
    free(rejects);
    end(imp, outcome);
}

static void on_state_deleted(void *arg, const struct voc_submit_result *r)
{
    struct csv_import *imp = arg;
    if (r->status == VOC_SUBMIT_UNAVAILABLE) {
        retry_in(imp, RETRY_UNAVAILABLE_S);
        return;
    }
    complete(imp);
}

/* The checkpoint goes first: should vocd die before the file is in done/, the next start
 * reads it again from the top, and every row answers EXISTS. */
static void delete_state(struct csv_import *imp)
{
    if (imp->h->api->state_delete(imp->h->p, imp->state_key, on_state_deleted, imp) != 0)
        retry_in(imp, RETRY_FULL_S);
}

static void finish(struct csv_import *imp)
{
    if (imp->rej_fd >= 0 && (imp->rej_dirty || imp->rej_len > 0)) {
        if (fdatasync(imp->rej_fd) != 0) {
            abort_import(imp, "cannot sync %s: %s", imp->rejects_partial, strerror(errno));
            return;
        }
        imp->rej_dirty = false;
    }
    evtimer_del(imp->sync_ev);
    imp->phase = PH_FINISH;
    delete_state(imp);
}

/* ---- opening ----------------------------------------------------------------------------- */

static void hash_done(struct csv_import *imp);

static void hash_step(struct csv_import *imp)
{
    size_t done = 0;
    while (done < HASH_STEP) {
        ssize_t n = pread(imp->fd, imp->buf, READ_CHUNK, (off_t)imp->hashed);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail_file(imp, "cannot read the file: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            hash_done(imp);
            return;
        }
        EVP_DigestUpdate(imp->md, imp->buf, (size_t)n);
        voc_csv_sniff_update(&imp->sniff, imp->buf, (size_t)n);
        imp->hashed += (uint64_t)n;
        done += (size_t)n;
    }
    schedule(imp);
}

static const char *row_error_text(enum voc_csv_row_error e)
{
    switch (e) {
    case VOC_CSV_ROW_INVALID_BYTES:
        return "has bytes that are not valid in the encoding";
    case VOC_CSV_ROW_TOO_LONG:
        return "is longer than max_row_size (a quote that is never closed?)";
    case VOC_CSV_ROW_UNTERMINATED:
        return "has a quote that is never closed";
    case VOC_CSV_ROW_OK:
        break;
    }
    return "is fine";
}

/* Read the header row and build the mapper. Returns 0, or -1 with a reason. */
static int read_header(struct csv_import *imp, struct voc_csv_pos *after, char *err, size_t errlen)
{
    const struct hotline_config *cfg = imp->h->cfg;
    struct voc_csv_reader_opts o = {.encoding = imp->enc,
                                    .delimiter = (unsigned char)cfg->delimiter[0],
                                    .max_row_bytes = cfg->max_row_size,
                                    .start = {imp->bom_len, 1, false}};
    struct voc_csv_reader *r;
    if (voc_csv_reader_new(&r, &o) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t off = imp->bom_len;
    bool eof = false;
    struct voc_csv_row row;
    int rc;
    while ((rc = voc_csv_reader_next(r, &row)) == 0 && !eof) {
        ssize_t n = pread(imp->fd, imp->buf, READ_CHUNK, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read the file: %s", strerror(errno));
            voc_csv_reader_free(r);
            return -1;
        }
        off += (uint64_t)n;
        eof = n == 0;
        voc_csv_reader_input(r, imp->buf, (size_t)n, eof);
    }
    if (rc != 1) {
        snprintf(err, errlen, rc < 0 ? "out of memory" : "the file has no header row");
        voc_csv_reader_free(r);
        return -1;
    }
    if (row.error != VOC_CSV_ROW_OK) {
        snprintf(err, errlen, "the header row (line 1) %s (read as %s)", row_error_text(row.error),
                 voc_csv_encoding_name(imp->enc));
        voc_csv_reader_free(r);
        return -1;
    }
    rc = voc_row_mapper_new(&imp->h->map, &row, imp->enc, &imp->mapper, err, errlen);
    *after = row.end;
    voc_csv_reader_free(r);
    return rc;
}

static const char *const encoding_names[] = {"auto", "utf-8", "gb18030"};

/* Pick the encoding: the configured one, or what the bytes say. Returns 0 or -1 (failed). */
static int choose_encoding(struct csv_import *imp)
{
    int configured = imp->h->cfg->encoding;
    const char *problem = NULL;
    size_t bom = 0;
    if (configured == HOTLINE_ENC_AUTO) {
        imp->enc = voc_csv_sniff_result(&imp->sniff, &bom, &problem);
        if (!imp->enc) {
            fail_file(imp, "%s", problem);
            return -1;
        }
        imp->bom_len = bom;
        return 0;
    }
    imp->enc = configured == HOTLINE_ENC_UTF8 ? VOC_CSV_UTF8 : VOC_CSV_GB18030;
    int has = voc_csv_bom(imp->sniff.head, imp->sniff.head_len, &bom);
    if (has < 0) {
        fail_file(imp, "the file is UTF-16; export it as CSV (UTF-8 or GB18030)");
        return -1;
    }
    if (has > 0 && has != (int)imp->enc) {
        fail_file(imp, "the file starts with a %s byte order mark but encoding: %s is configured",
                  voc_csv_encoding_name((enum voc_csv_encoding)has), encoding_names[configured]);
        return -1;
    }
    imp->bom_len = has > 0 ? bom : 0;
    return 0;
}

/* Find the checkpoint and line the rejects file up with it. Returns 0, 1 (try later) or -1
 * (failed). */
static int resume_point(struct csv_import *imp, const struct voc_csv_pos *header_end)
{
    struct hotline *h = imp->h;
    char value[VOC_CSV_CHECKPOINT_MAX];
    long n = h->api->state_get(h->p, imp->state_key, value, sizeof value);
    struct voc_csv_checkpoint cp = {.pos = *header_end};
    if (n == -2) {
        abort_import(imp, "cannot read the checkpoint");
        return 1;
    }
    if (n >= 0) {
        if ((size_t)n > sizeof value || voc_csv_checkpoint_decode(value, (size_t)n, &cp) != 0 ||
            cp.pos.offset < header_end->offset || cp.pos.offset > (uint64_t)imp->hashed) {
            LOG(imp, VOC_PLOG_WARN, "unusable checkpoint, importing from the top file=%s",
                imp->name);
            cp = (struct voc_csv_checkpoint){.pos = *header_end};
        } else {
            imp->resumed = true;
        }
    }
    if (cp.rejects_len > 0) {
        struct stat st;
        int fd = open(imp->rejects_partial, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < cp.rejects_len ||
            ftruncate(fd, (off_t)cp.rejects_len) != 0) {
            /* Rejects acknowledged by the checkpoint are gone: read the file again from the
             * top (its cases answer EXISTS) so that they are written again. */
            LOG(imp, VOC_PLOG_WARN,
                "rejects file %s is shorter than its checkpoint; importing from the top file=%s",
                imp->rejects_partial, imp->name);
            if (fd >= 0)
                close(fd);
            cp = (struct voc_csv_checkpoint){.pos = *header_end};
            imp->resumed = false;
        } else {
            imp->rej_fd = fd;
            imp->rej_len = cp.rejects_len;
        }
    }
    if (cp.rejects_len == 0 && unlink(imp->rejects_partial) != 0 && errno != ENOENT) {
        fail_file(imp, "cannot remove %s: %s", imp->rejects_partial, strerror(errno));
        return -1;
    }
    imp->cur = cp;
    mark_durable(imp);
    if (imp->resumed)
        LOG(imp, VOC_PLOG_INFO, "resuming file=%s line=%llu rows=%llu cases=%llu rejects=%llu",
            imp->name, (unsigned long long)cp.pos.line, (unsigned long long)cp.rows,
            (unsigned long long)(cp.created + cp.existing), (unsigned long long)cp.rejects);
    return 0;
}

static void hash_done(struct csv_import *imp)
{
    struct hotline *h = imp->h;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(imp->md, digest, &dlen);
    for (unsigned i = 0; i < dlen && i < 32; i++)
        snprintf(imp->file_id + 2 * i, 3, "%02x", digest[i]);
    snprintf(imp->state_key, sizeof imp->state_key, "file/%s", imp->file_id);
    if (imp->hashed == 0) {
        fail_file(imp, "the file is empty");
        return;
    }
    if (choose_encoding(imp) != 0)
        return;
    if (asprintf(&imp->rejects_partial, "%s/.%s.partial", h->rejects_dir, imp->file_id) < 0) {
        imp->rejects_partial = NULL;
        abort_import(imp, "out of memory");
        return;
    }
    char err[1024];
    struct voc_csv_pos header_end;
    if (read_header(imp, &header_end, err, sizeof err) != 0) {
        fail_file(imp, "%s", err);
        return;
    }
    if (resume_point(imp, &header_end) != 0)
        return;
    /* Read from the first data row even when resuming: the rows before the checkpoint are
     * only counted (row_ids.h), not submitted again. */
    struct voc_csv_reader_opts o = {.encoding = imp->enc,
                                    .delimiter = (unsigned char)h->cfg->delimiter[0],
                                    .max_row_bytes = h->cfg->max_row_size,
                                    .start = header_end};
    if (voc_csv_reader_new(&imp->reader, &o) != 0 || voc_row_ids_new(&imp->ids) != 0) {
        abort_import(imp, "out of memory");
        return;
    }
    imp->read_off = header_end.offset;
    imp->skip_until = imp->cur.pos.offset;
    const char *id_column = voc_row_mapper_id_column(imp->mapper);
    LOG(imp, VOC_PLOG_INFO, "importing file=%s encoding=%s bytes=%llu sha256=%s ids=%s%s",
        imp->name, voc_csv_encoding_name(imp->enc), (unsigned long long)imp->hashed, imp->file_id,
        id_column ? "column:" : "row content", id_column ? id_column : "");
    imp->phase = PH_ROWS;
    schedule(imp);
}

static void open_file(struct csv_import *imp)
{
    imp->fd = open(imp->path, O_RDONLY | O_CLOEXEC);
    if (imp->fd < 0) {
        if (errno == ENOENT) {
            end(imp, VOC_HOTLINE_MOVED); /* gone before its turn came */
            return;
        }
        fail_file(imp, "cannot open the file: %s", strerror(errno));
        return;
    }
    if (fstat(imp->fd, &imp->st) != 0 || !S_ISREG(imp->st.st_mode)) {
        fail_file(imp, "not a regular file");
        return;
    }
    imp->fd_identity_known = true;
    imp->md = EVP_MD_CTX_new();
    if (!imp->md || EVP_DigestInit_ex(imp->md, EVP_sha256(), NULL) != 1) {
        abort_import(imp, "cannot set up SHA-256");
        return;
    }
    voc_csv_sniff_init(&imp->sniff);
    imp->phase = PH_HASH;
    schedule(imp);
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct csv_import *imp = arg;
    if (imp->aborting) {
        if (imp->in_flight == 0 && !imp->stopping)
            end(imp, VOC_HOTLINE_RETRY);
        return;
    }
    switch (imp->phase) {
    case PH_OPEN:
        if (!imp->stopping)
            open_file(imp);
        return;
    case PH_HASH:
        if (!imp->stopping)
            hash_step(imp);
        return;
    case PH_ROWS:
        retire(imp);
        if (!imp->stopping && !imp->aborting) {
            read_rows(imp);
            submit_queued(imp);
            retire(imp);
        }
        if (imp->aborting) {
            schedule(imp);
            return;
        }
        if (!imp->stopping && imp->rows_done && imp->count == 0 && imp->in_flight == 0)
            finish(imp);
        return;
    case PH_FINISH:
        return;
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct csv_import *imp = arg;
    if (imp->stopping)
        return;
    if (imp->phase == PH_FINISH) {
        delete_state(imp);
        return;
    }
    imp->blocked = false;
    schedule(imp);
}

int voc_hotline_import_start(struct hotline *h, const char *name, bool accept_tail)
{
    struct csv_import *imp = calloc(1, sizeof *imp);
    if (!imp)
        return -1;
    imp->h = h;
    imp->accept_tail = accept_tail;
    imp->fd = -1;
    imp->rej_fd = -1;
    imp->cap = (size_t)h->cfg->max_in_flight;
    imp->started = now_s();
    voc_textbuf_init(&imp->json);
    voc_textbuf_init(&imp->reason);
    voc_textbuf_init(&imp->line);
    imp->name = strdup(name);
    imp->path = path_join(h->cfg->spool, name);
    imp->buf = malloc(READ_CHUNK);
    imp->ring = calloc(imp->cap, sizeof *imp->ring);
    imp->queue = calloc(imp->cap, sizeof *imp->queue);
    imp->pump_ev = event_new(h->base, -1, 0, on_pump, imp);
    imp->retry_ev = evtimer_new(h->base, on_retry, imp);
    imp->sync_ev = evtimer_new(h->base, on_sync, imp);
    if (!imp->name || !imp->path || !imp->buf || !imp->ring || !imp->queue || !imp->pump_ev ||
        !imp->retry_ev || !imp->sync_ev) {
        voc_hotline_import_free(imp);
        return -1;
    }
    h->current = imp;
    imp->phase = PH_OPEN;
    schedule(imp);
    return 0;
}

void voc_hotline_import_stop(struct csv_import *imp)
{
    if (!imp)
        return;
    imp->stopping = true;
    evtimer_del(imp->retry_ev);
}

void voc_hotline_import_free(struct csv_import *imp)
{
    if (!imp)
        return;
    close_fds(imp);
    for (size_t i = 0; imp->ring && i < imp->cap; i++) {
        free(imp->ring[i].json);
        free(imp->ring[i].reject);
    }
    free(imp->ring);
    free(imp->queue);
    if (imp->pump_ev)
        event_free(imp->pump_ev);
    if (imp->retry_ev)
        event_free(imp->retry_ev);
    if (imp->sync_ev)
        event_free(imp->sync_ev);
    if (imp->md)
        EVP_MD_CTX_free(imp->md);
    voc_csv_reader_free(imp->reader);
    voc_row_ids_free(imp->ids);
    voc_row_mapper_free(imp->mapper);
    voc_textbuf_free(&imp->json);
    voc_textbuf_free(&imp->reason);
    voc_textbuf_free(&imp->line);
    free(imp->rejects_partial);
    free(imp->buf);
    free(imp->name);
    free(imp->path);
    free(imp);
}
