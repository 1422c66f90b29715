/* pipe2 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct voc_worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct voc_worker_item *todo_head, *todo_tail;
    struct voc_worker_item *done_head, *done_tail;
    bool quit;
    int pipe_fd[2]; /* a byte per finished job wakes the loop */
    struct event *ev;
    voc_worker_fn run, done;
    void *arg;
};

static void push(struct voc_worker_item **head, struct voc_worker_item **tail,
                 struct voc_worker_item *it)
{
    it->next = NULL;
    if (*tail)
        (*tail)->next = it;
    else
        *head = it;
    *tail = it;
}

static void *thread_main(void *arg)
{
    struct voc_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->quit && !w->todo_head)
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->quit)
            break;
        struct voc_worker_item *job = w->todo_head;
        w->todo_head = job->next;
        if (!w->todo_head)
            w->todo_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        w->run(job, w->arg);
        pthread_mutex_lock(&w->lock);
        push(&w->done_head, &w->done_tail, job);
        char one = 1;
        /* the pipe cannot fill: the loop drains it before taking the finished jobs */
        while (write(w->pipe_fd[1], &one, 1) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct voc_worker *w = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&w->lock);
    struct voc_worker_item *list = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (list) {
        struct voc_worker_item *next = list->next;
        w->done(list, w->arg);
        list = next;
    }
}

int voc_worker_start(struct event_base *base, voc_worker_fn run, voc_worker_fn done, void *arg,
                     struct voc_worker **out)
{
    struct voc_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->run = run;
    w->done = done;
    w->arg = arg;
    if (pipe2(w->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        free(w);
        return -1;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->ev = event_new(base, w->pipe_fd[0], EV_READ | EV_PERSIST, on_pipe, w);
    if (!w->ev || event_add(w->ev, NULL) != 0 ||
        pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        if (w->ev)
            event_free(w->ev);
        close(w->pipe_fd[0]);
        close(w->pipe_fd[1]);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void voc_worker_submit(struct voc_worker *w, struct voc_worker_item *job)
{
    pthread_mutex_lock(&w->lock);
    push(&w->todo_head, &w->todo_tail, job);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void voc_worker_stop(struct voc_worker *w, voc_worker_fn discard)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    event_free(w->ev);
    close(w->pipe_fd[0]);
    close(w->pipe_fd[1]);
    for (struct voc_worker_item *lists[2] = {w->todo_head, w->done_head}, **l = lists;
         l < lists + 2; l++) {
        while (*l) {
            struct voc_worker_item *next = (*l)->next;
            discard(*l, w->arg);
            *l = next;
        }
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
