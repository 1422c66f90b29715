/* One background thread for the slow, core-free part of a delivery (MIME parsing, writing and
 * fsync'ing attachment files), so the event loop that serves HTTP and every LMTP connection
 * never waits for a disk. Jobs go in on the loop, run on the thread in order, and come back on
 * the loop through a pipe (the core's event base is not assumed to be thread-safe). */
#ifndef VOC_WORKER_H
#define VOC_WORKER_H

struct event_base;
struct voc_worker;

/* Embed as the first member of a job. */
struct voc_worker_item {
    struct voc_worker_item *next;
};

typedef void (*voc_worker_fn)(struct voc_worker_item *job, void *arg); /* on the thread */

/* Start the thread. `run` is called on it for each job, then `done` on the loop. 0 or -1. */
int voc_worker_start(struct event_base *base, voc_worker_fn run, voc_worker_fn done, void *arg,
                     struct voc_worker **out);

/* Queue a job (loop thread only). */
void voc_worker_submit(struct voc_worker *w, struct voc_worker_item *job);

/* Stop the thread after the job it is running, then hand every job not yet given to `done`
 * (queued or finished) to `discard`, on the calling thread. Frees the worker. */
void voc_worker_stop(struct voc_worker *w, voc_worker_fn discard);

#endif
