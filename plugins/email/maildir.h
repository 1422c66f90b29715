/* A Maildir inbox as a queue: mail in new/ is handed over one file at a time and moved to
 * cur/ (flag S) only when the owner says it is durable, to rejected/ when it can never be
 * accepted, and left in new/ to be tried again at the next rescan when the store cannot take
 * it now. new/ is watched with inotify, and rescanned on a timer for whatever inotify
 * missed (overflow, files that were there at start, network file systems). */
#ifndef VOC_MAILDIR_H
#define VOC_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct voc_maildir;
struct voc_maildir_item;

enum voc_maildir_outcome {
    VOC_MAILDIR_DELIVERED, /* durable: move to cur/ */
    VOC_MAILDIR_REJECTED,  /* never acceptable: move to rejected/ with the reason beside it */
    VOC_MAILDIR_RETRY,     /* temporary failure: leave in new/ */
};

/* Hand one message over. data stays valid until voc_maildir_done() for this item. */
typedef void (*voc_maildir_deliver_fn)(void *arg, struct voc_maildir_item *item,
                                       const char *name, const char *data, size_t len);
/* level: 0 debug, 1 info, 2 warn, 3 error */
typedef void (*voc_maildir_log_fn)(void *arg, int level, const char *message);

struct voc_maildir_options {
    const char *root;       /* the Maildir (new/, cur/, tmp/ are created when missing) */
    double rescan_s;        /* timer rescan period */
    unsigned max_inflight;  /* messages handed over and not yet done */
    uint64_t max_size;      /* larger files are rejected unread; 0 = no limit */
    voc_maildir_deliver_fn deliver;
    voc_maildir_log_fn log;
    void *arg;
};

/* Create the folders, start watching and schedule the first scan. 0, or -1 with err. */
int voc_maildir_open(struct event_base *base, const struct voc_maildir_options *opts,
                     struct voc_maildir **out, char *err, size_t errlen);

/* The outcome for an item (reason: one line, for REJECTED). May be called from inside the
 * deliver callback. */
void voc_maildir_done(struct voc_maildir *md, struct voc_maildir_item *item,
                      enum voc_maildir_outcome outcome, const char *reason);

/* Stop watching and scanning; items in flight still get voc_maildir_done. */
void voc_maildir_stop(struct voc_maildir *md);

/* Free; the caller guarantees no item is in flight any more. */
void voc_maildir_free(struct voc_maildir *md);

/* Items handed over and not done yet. */
unsigned voc_maildir_inflight(const struct voc_maildir *md);

#endif
