/* The hotline_csv plugin's own shared state: config, the spool folders, counters, and the
 * one import running at a time (csv_import.c). hotline_csv.c holds the descriptor and
 * watches the spool. */
#ifndef VOC_HOTLINE_H
#define VOC_HOTLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <vocd/plugin.h>

#include "row_mapper.h"

struct event_base;
struct csv_import;

enum hotline_encoding { HOTLINE_ENC_AUTO, HOTLINE_ENC_UTF8, HOTLINE_ENC_GB18030 };

struct hotline_config {
    char *spool;
    int encoding; /* enum hotline_encoding */
    char *channel;
    struct voc_kv *columns; /* intake field -> CSV header */
    size_t column_count;
    char **time_format;
    size_t time_format_count;
    char *time_zone;
    char *match;
    char *delimiter;
    double settle_time;
    double rescan_interval;
    long long max_in_flight;
    uint64_t max_row_size;
};

struct hotline_counters {
    struct voc_counter *files, *rows, *cases, *rejects, *failed;
};

struct hotline {
    struct voc_plugin *p;
    const struct voc_core_api *api;
    const struct hotline_config *cfg;
    struct event_base *base;
    struct voc_row_mapper_config map;
    const char **map_targets, **map_headers;
    char *done_dir, *rejects_dir, *failed_dir;
    struct hotline_counters counters;
    bool stopping;
    struct csv_import *current;
    struct hotline_watch *watch; /* hotline_csv.c */
};

/* How an import ended, for the spool watcher. */
enum voc_hotline_outcome {
    VOC_HOTLINE_MOVED,     /* the file left the spool (done/ or failed/) */
    VOC_HOTLINE_RETRY,     /* it stays; try again later (I/O trouble, shutting down) */
    VOC_HOTLINE_STUCK,     /* it stays and cannot be moved: leave it alone until it changes */
    VOC_HOTLINE_REPLACED,  /* another file took its name meanwhile: import that one next */
    VOC_HOTLINE_UNSETTLED, /* it ends inside a row: read it again once it has settled */
};

/* Start importing spool/name. accept_tail: the file is known to be complete, so a last row
 * without a line break is taken (else the import stops before it: VOC_HOTLINE_UNSETTLED).
 * Returns 0 (voc_hotline_import_ended() will be called, maybe from inside this call) or -1
 * (out of memory). */
int voc_hotline_import_start(struct hotline *h, const char *name, bool accept_tail);
/* Stop reading and submitting; callbacks already due are still taken. */
void voc_hotline_import_stop(struct csv_import *imp);
void voc_hotline_import_free(struct csv_import *imp);

/* Called by the import when it is over (hotline_csv.c). The import is freed by it. */
void voc_hotline_import_ended(struct hotline *h, struct csv_import *imp, const char *name,
                              enum voc_hotline_outcome outcome);

/* Make `dir` and its parents. Returns 0 or -1 (errno). */
int voc_hotline_mkdirs(const char *dir);

#endif
