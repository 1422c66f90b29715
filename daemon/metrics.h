/* Process-wide metrics, rendered in the Prometheus text format at GET /metrics.
 * Values are atomics so the writer thread and the event loop update them without locks;
 * registration takes a lock and happens at start-up (or when a plugin registers). */
#ifndef VOC_METRICS_H
#define VOC_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct voc_metric;
struct voc_histogram;

enum voc_metric_kind { VOC_METRIC_COUNTER, VOC_METRIC_GAUGE };

/* `labels` is the label set without braces (`code="200",method="POST"`) or NULL.
 * Registering the same name+labels twice returns the same metric. */
struct voc_metric *voc_metric_register(const char *name, const char *labels,
                                       enum voc_metric_kind kind, const char *help);
void voc_metric_add(struct voc_metric *m, uint64_t n);
void voc_metric_set(struct voc_metric *m, int64_t value);
int64_t voc_metric_value(const struct voc_metric *m);

/* Cumulative histogram with fixed upper bounds (ascending, +Inf is implicit). */
struct voc_histogram *voc_histogram_register(const char *name, const char *labels, const char *help,
                                             const double *bounds, size_t count);
void voc_histogram_observe(struct voc_histogram *h, double value);

/* Gauges whose value is computed when /metrics is read (store size, queue length ...):
 * the collector appends lines with voc_metrics_write_gauge. */
typedef void (*voc_metrics_collector)(struct evbuffer *out, void *arg);
void voc_metrics_add_collector(voc_metrics_collector fn, void *arg);
void voc_metrics_remove_collector(voc_metrics_collector fn, void *arg);
void voc_metrics_write_gauge(struct evbuffer *out, const char *name, const char *labels,
                             const char *help, double value);
/* Same for a counter kept elsewhere (e.g. in a module's stats struct). */
void voc_metrics_write_counter(struct evbuffer *out, const char *name, const char *labels,
                               const char *help, double value);

/* Staging, for the writer thread: a batch it runs may be rolled back and run again (map
 * growth, isolation) or fail, so what its jobs count must only show once it committed.
 * Between begin and commit/abort, voc_metric_add and voc_histogram_observe on the calling
 * thread are kept aside; commit applies them, abort forgets them. drop(mark) forgets what
 * was staged since voc_metrics_stage_mark() (a refused job). Other threads are unaffected.
 * If memory for staging runs out, a count is applied at once (counted rather than lost). */
void voc_metrics_stage_begin(void);
size_t voc_metrics_stage_mark(void);
void voc_metrics_stage_drop(size_t mark);
void voc_metrics_stage_commit(void);
void voc_metrics_stage_abort(void);
/* Free this thread's staging memory (when the thread ends). */
void voc_metrics_stage_free(void);

void voc_metrics_render(struct evbuffer *out);
/* Free the registry (at exit; tests). */
void voc_metrics_reset(void);

#endif
