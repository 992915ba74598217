/* metrics.h — the metric table: every exported metric is declared once here (metrics.c),
 * and every exporter (Prometheus text today, JSON and the dashboard later) walks it.
 *
 * A metric is either a counter summed over the per-worker counter blocks (an offset into
 * struct listener_counters / struct server_counters), or a gauge read through a getter
 * (atomics in listener_state / server_state, or process-level values).
 */
#ifndef STRATA_STATS_METRICS_H
#define STRATA_STATS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config-t.h"

struct strbuf;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

/* What one sample describes, and so which labels it carries. */
enum metric_scope {
    METRIC_PROCESS,  /* one sample, optional constant label */
    METRIC_LISTENER, /* one sample per listener: listener="..." */
    METRIC_SERVER,   /* one per server: backend="...",server="..." */
    METRIC_ROUTE,    /* one per HTTP route: listener="...",route="..." */
    METRIC_RATE_LIMIT, /* one per rate limit: route="...",limit="..." (struct rl_limit) */
};

#define METRIC_NO_OFFSET ((size_t)-1)

struct metric_def {
    const char *name; /* Prometheus name, e.g. "strata_listener_bytes_in_total" */
    const char *help;
    const char *unit; /* "connections", "bytes", "" ... (for JSON / dashboard) */
    enum metric_type type;
    enum metric_scope scope;
    /* Counters: offset of a counter_t in the scope's per-worker block, summed over the
     * config's workers. METRIC_NO_OFFSET when `get` is used instead. */
    size_t offset;
    /* Gauges: obj is the struct config (PROCESS), struct listener_conf (LISTENER),
     * struct server (SERVER) or struct http_route (ROUTE). */
    uint64_t (*get)(const struct config *c, const void *obj);
    const char *const_label; /* PROCESS only: a constant label name, or NULL */
    const char *const_value; /* ...and its value */
};

#define METRIC_MAX_LABELS 3

/* One sample as handed to a metrics_foreach callback. Pointers are valid only during the
 * call. */
struct metric_sample {
    const struct metric_def *def;
    unsigned nlabels;
    const char *label_names[METRIC_MAX_LABELS];
    const char *label_values[METRIC_MAX_LABELS];
    uint64_t value;
};

/* Returns the table and its length (never changes at run time). */
const struct metric_def *metrics_table(size_t *n);

/* Sums the counter at `offset` over nworkers blocks of `size` bytes starting at base (0
 * when base is NULL). */
uint64_t metrics_sum_workers(const void *base, size_t size, size_t offset, uint32_t nworkers);

/* Value of one metric for one object (see metric_def.get for what obj is). */
uint64_t metric_value(const struct config *c, const struct metric_def *d, const void *obj);

/* Calls cb for every sample, metric by metric in table order, then object by object in
 * config order; `first` is true for the first sample of each metric. A metric of a scope
 * with no objects (no listeners) yields no samples. Stops early when cb returns nonzero
 * and returns that value; else 0. */
typedef int (*metric_sample_cb)(void *arg, const struct metric_sample *s, bool first);
int metrics_foreach(const struct config *c, metric_sample_cb cb, void *arg);

/* Appends the Prometheus text exposition (format 0.0.4) of every metric to out: # HELP and
 * # TYPE once per metric, then its samples with escaped label values. Check out->err. */
void metrics_render_prometheus(const struct config *c, struct strbuf *out);

/* The same in the OpenMetrics 1.0 text format (families of counters named without
 * `_total`, `# EOF` at the end), for clients whose Accept asks for it. */
void metrics_render_openmetrics(const struct config *c, struct strbuf *out);

/* # HELP and # TYPE lines of a family (type "counter", "gauge", "histogram"). */
void metrics_family_header(struct strbuf *out, const char *name, const char *help,
                           const char *type, bool openmetrics);

/* The families not in the table (metrics_latency.c): latency histograms of listeners,
 * routes, backends and servers, and route samples with open label sets (exact status
 * codes seen, errors by reason). */
void metrics_render_latency(const struct config *c, struct strbuf *out, bool openmetrics);

/* Appends s to out escaped as a Prometheus label value (\\, \", \n). */
void metrics_escape_label(struct strbuf *out, const char *s);

#endif
