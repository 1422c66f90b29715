#include "metrics.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct voc_metric {
    char *name;
    char *labels;
    char *help;
    enum voc_metric_kind kind;
    _Atomic int64_t value;
    struct voc_metric *next;
};

struct voc_histogram {
    char *name;
    char *labels;
    char *help;
    double *bounds;
    size_t count;
    _Atomic uint64_t *buckets; /* count + 1 (the last is +Inf) */
    _Atomic uint64_t observations;
    _Atomic uint64_t sum_micros; /* sum kept in millionths to stay an atomic integer */
    struct voc_histogram *next;
};

struct collector {
    voc_metrics_collector fn;
    void *arg;
    struct collector *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct voc_metric *metrics_head, *metrics_tail;
static struct voc_histogram *histograms_head, *histograms_tail;
static struct collector *collectors;

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

struct voc_metric *voc_metric_register(const char *name, const char *labels,
                                       enum voc_metric_kind kind, const char *help)
{
    pthread_mutex_lock(&registry_lock);
    struct voc_metric *m;
    for (m = metrics_head; m; m = m->next)
        if (strcmp(m->name, name) == 0 && same(m->labels, labels))
            goto out;
    m = calloc(1, sizeof *m);
    if (!m)
        goto out;
    m->name = strdup(name);
    m->labels = labels ? strdup(labels) : NULL;
    m->help = strdup(help ? help : name);
    m->kind = kind;
    /* Keep registration order so metrics of one name stay together in the output. */
    if (metrics_tail)
        metrics_tail->next = m;
    else
        metrics_head = m;
    metrics_tail = m;
out:
    pthread_mutex_unlock(&registry_lock);
    return m;
}

/* ---- staging (metrics.h) ---- */

struct staged {
    struct voc_metric *metric; /* or */
    struct voc_histogram *histogram;
    uint64_t n;
    double value;
};

static _Thread_local struct {
    bool active;
    struct staged *items;
    size_t count, capacity;
} stage;

static void apply_add(struct voc_metric *m, uint64_t n)
{
    atomic_fetch_add(&m->value, (int64_t)n);
}

static void apply_observe(struct voc_histogram *h, double value)
{
    size_t i = 0;
    while (i < h->count && value > h->bounds[i])
        i++;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->observations, 1);
    atomic_fetch_add(&h->sum_micros, (uint64_t)(value * 1e6));
}

/* Keep `s` for the commit; false when there is no room (then the caller applies it). */
static bool stage_push(struct staged s)
{
    if (stage.count == stage.capacity) {
        size_t cap = stage.capacity ? stage.capacity * 2 : 256;
        struct staged *grown = realloc(stage.items, cap * sizeof *grown);
        if (!grown)
            return false;
        stage.items = grown;
        stage.capacity = cap;
    }
    stage.items[stage.count++] = s;
    return true;
}

void voc_metrics_stage_begin(void)
{
    stage.active = true;
    stage.count = 0;
}

size_t voc_metrics_stage_mark(void)
{
    return stage.count;
}

void voc_metrics_stage_drop(size_t mark)
{
    if (mark < stage.count)
        stage.count = mark;
}

void voc_metrics_stage_commit(void)
{
    for (size_t i = 0; i < stage.count; i++) {
        struct staged *s = &stage.items[i];
        if (s->metric)
            apply_add(s->metric, s->n);
        else
            apply_observe(s->histogram, s->value);
    }
    stage.count = 0;
    stage.active = false;
}

void voc_metrics_stage_abort(void)
{
    stage.count = 0;
    stage.active = false;
}

void voc_metrics_stage_free(void)
{
    free(stage.items);
    stage.items = NULL;
    stage.count = stage.capacity = 0;
    stage.active = false;
}

void voc_metric_add(struct voc_metric *m, uint64_t n)
{
    if (!m)
        return;
    if (stage.active && stage_push((struct staged){.metric = m, .n = n}))
        return;
    apply_add(m, n);
}

void voc_metric_set(struct voc_metric *m, int64_t value)
{
    if (m)
        atomic_store(&m->value, value);
}

int64_t voc_metric_value(const struct voc_metric *m)
{
    return m ? atomic_load(&((struct voc_metric *)m)->value) : 0;
}

struct voc_histogram *voc_histogram_register(const char *name, const char *labels, const char *help,
                                             const double *bounds, size_t count)
{
    pthread_mutex_lock(&registry_lock);
    struct voc_histogram *h;
    for (h = histograms_head; h; h = h->next)
        if (strcmp(h->name, name) == 0 && same(h->labels, labels))
            goto out;
    h = calloc(1, sizeof *h);
    if (!h)
        goto out;
    h->name = strdup(name);
    h->labels = labels ? strdup(labels) : NULL;
    h->help = strdup(help ? help : name);
    h->bounds = malloc(count * sizeof *h->bounds);
    h->buckets = calloc(count + 1, sizeof *h->buckets);
    memcpy(h->bounds, bounds, count * sizeof *bounds);
    h->count = count;
    if (histograms_tail)
        histograms_tail->next = h;
    else
        histograms_head = h;
    histograms_tail = h;
out:
    pthread_mutex_unlock(&registry_lock);
    return h;
}

void voc_histogram_observe(struct voc_histogram *h, double value)
{
    if (!h)
        return;
    if (stage.active && stage_push((struct staged){.histogram = h, .value = value}))
        return;
    apply_observe(h, value);
}

void voc_metrics_add_collector(voc_metrics_collector fn, void *arg)
{
    struct collector *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&registry_lock);
    c->next = collectors;
    collectors = c;
    pthread_mutex_unlock(&registry_lock);
}

void voc_metrics_remove_collector(voc_metrics_collector fn, void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct collector **p = &collectors; *p; p = &(*p)->next) {
        if ((*p)->fn == fn && (*p)->arg == arg) {
            struct collector *gone = *p;
            *p = gone->next;
            free(gone);
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

static void write_sample(struct evbuffer *out, const char *name, const char *labels,
                         const char *help, const char *type, double value)
{
    if (help)
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    if (labels && labels[0])
        evbuffer_add_printf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        evbuffer_add_printf(out, "%s %.17g\n", name, value);
}

void voc_metrics_write_gauge(struct evbuffer *out, const char *name, const char *labels,
                             const char *help, double value)
{
    write_sample(out, name, labels, help, "gauge", value);
}

void voc_metrics_write_counter(struct evbuffer *out, const char *name, const char *labels,
                               const char *help, double value)
{
    write_sample(out, name, labels, help, "counter", value);
}

static void write_header(struct evbuffer *out, const char *name, const char *help, const char *type,
                         const char **last_name)
{
    if (*last_name && strcmp(*last_name, name) == 0)
        return;
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    *last_name = name;
}

void voc_metrics_render(struct evbuffer *out)
{
    pthread_mutex_lock(&registry_lock);
    /* Prometheus wants all samples of one metric name together: walk names in first-seen
     * order and print each name's samples at once. */
    for (struct voc_metric *m = metrics_head; m; m = m->next) {
        bool first = true;
        for (struct voc_metric *p = metrics_head; p != m; p = p->next)
            if (strcmp(p->name, m->name) == 0)
                first = false;
        if (!first)
            continue;
        const char *last = NULL;
        for (struct voc_metric *s = m; s; s = s->next) {
            if (strcmp(s->name, m->name) != 0)
                continue;
            write_header(out, s->name, s->help, s->kind == VOC_METRIC_COUNTER ? "counter" : "gauge",
                         &last);
            if (s->labels)
                evbuffer_add_printf(out, "%s{%s} %lld\n", s->name, s->labels,
                                    (long long)atomic_load(&s->value));
            else
                evbuffer_add_printf(out, "%s %lld\n", s->name, (long long)atomic_load(&s->value));
        }
    }
    for (struct voc_histogram *h = histograms_head; h; h = h->next) {
        bool first = true;
        for (struct voc_histogram *p = histograms_head; p != h; p = p->next)
            if (strcmp(p->name, h->name) == 0)
                first = false;
        if (first)
            evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help,
                                h->name);
        const char *sep = h->labels ? "," : "";
        const char *labels = h->labels ? h->labels : "";
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= h->count; i++) {
            cumulative += atomic_load(&h->buckets[i]);
            if (i < h->count)
                evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%.10g\"} %llu\n", h->name, labels, sep,
                                    h->bounds[i], (unsigned long long)cumulative);
            else
                evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", h->name, labels, sep,
                                    (unsigned long long)cumulative);
        }
        const char *open = h->labels ? "{" : "", *close = h->labels ? "}" : "";
        evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n", h->name, open, labels, close,
                            (double)atomic_load(&h->sum_micros) / 1e6);
        evbuffer_add_printf(out, "%s_count%s%s%s %llu\n", h->name, open, labels, close,
                            (unsigned long long)atomic_load(&h->observations));
    }
    for (struct collector *c = collectors; c; c = c->next)
        c->fn(out, c->arg);
    pthread_mutex_unlock(&registry_lock);
}

void voc_metrics_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    for (struct voc_metric *m = metrics_head, *next; m; m = next) {
        next = m->next;
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
    }
    for (struct voc_histogram *h = histograms_head, *next; h; h = next) {
        next = h->next;
        free(h->name);
        free(h->labels);
        free(h->help);
        free(h->bounds);
        free((void *)h->buckets);
        free(h);
    }
    for (struct collector *c = collectors, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    metrics_head = metrics_tail = NULL;
    histograms_head = histograms_tail = NULL;
    collectors = NULL;
    pthread_mutex_unlock(&registry_lock);
}
