#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "gateway/buf.h"
#include "gateway/conf.h"
#include "gateway/metrics.h"
#include "gateway/stats.h"

static struct tg_worker_stats *w[2];

static void setup(void)
{
    for (int i = 0; i < 2; i++) {
        w[i] = calloc(1, sizeof(*w[i]));
        tg_stats.workers[i] = w[i];
    }
    tg_stats.n = 2;
}

static void teardown(void)
{
    tg_stats.n = 0;
    for (int i = 0; i < 2; i++) {
        tg_stats_cleanup(w[i]);
        free(w[i]);
    }
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 10);

/* The whole exposition (caller frees). */
static char *scrape(void)
{
    struct tg_buf b = {0};
    size_t len;

    cr_assert(eq(int, tg_metrics_write(&b, NULL), TG_OK));
    return tg_buf_steal(&b, &len);
}

/* Whether text has line as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return 1;
        }
    }
    return 0;
}

Test(metrics, every_family_has_help_and_type_once)
{
    char *text = scrape();
    char want[160];

    for (int m = 0; m < TG_M_COUNT; m++) {
        const char *name = tg_metric_name((enum tg_metric)m);
        cr_assert(not(zero(ptr, (void *)name)), "family %d has no row", m);
        snprintf(want, sizeof(want), "# HELP %s ", name);
        cr_assert(not(zero(ptr, strstr(text, want))), "%s", want);
        snprintf(want, sizeof(want), "# TYPE %s ", name);
        const char *first = strstr(text, want);
        cr_assert(not(zero(ptr, (void *)first)), "%s", want);
        cr_assert(zero(ptr, strstr(first + 1, want)), "twice: %s", want);
    }
    free(text);
}

Test(metrics, histogram_buckets_hold_their_bound_and_are_cumulative)
{
    const char *l[] = {"r", "GET", "2xx"};
    char *text;

    tg_metric_observe(w[0], TG_M_REQUEST_DURATION, l, 5000);     /* exactly 5 ms: le 0.005 */
    tg_metric_observe(w[1], TG_M_REQUEST_DURATION, l, 5001);     /* just above: le 0.01 */
    tg_metric_observe(w[1], TG_M_REQUEST_DURATION, l, 60000000); /* a minute: +Inf only */
    text = scrape();
    cr_assert(has_line(text, "tracegate_request_duration_seconds_bucket{route=\"r\",method=\"GET\","
                             "class=\"2xx\",le=\"0.005\"} 1"),
              "%s", text);
    cr_assert(has_line(text, "tracegate_request_duration_seconds_bucket{route=\"r\",method=\"GET\","
                             "class=\"2xx\",le=\"0.01\"} 2"));
    cr_assert(has_line(text, "tracegate_request_duration_seconds_bucket{route=\"r\",method=\"GET\","
                             "class=\"2xx\",le=\"10\"} 2"));
    cr_assert(has_line(text, "tracegate_request_duration_seconds_bucket{route=\"r\",method=\"GET\","
                             "class=\"2xx\",le=\"+Inf\"} 3"));
    cr_assert(has_line(text, "tracegate_request_duration_seconds_count{route=\"r\",method=\"GET\","
                             "class=\"2xx\"} 3"));
    cr_assert(has_line(text, "tracegate_request_duration_seconds_sum{route=\"r\",method=\"GET\","
                             "class=\"2xx\"} 60.010001"));
    free(text);
}

Test(metrics, label_values_are_escaped)
{
    const char *l[] = {"a\"b\\c\nd", "GET", "2xx"};
    char *text;

    tg_metric_observe(w[0], TG_M_REQUEST_DURATION, l, 1);
    text = scrape();
    cr_assert(has_line(text, "tracegate_request_duration_seconds_count{route=\"a\\\"b\\\\c\\nd\","
                             "method=\"GET\",class=\"2xx\"} 1"),
              "%s", text);
    free(text);
}

Test(metrics, gauges_sum_over_workers_and_may_go_down)
{
    const char *l[] = {"u"};
    char *text;

    tg_metric_add(w[0], TG_M_UPSTREAM_IN_FLIGHT, l, 1);
    tg_metric_add(w[1], TG_M_UPSTREAM_IN_FLIGHT, l, 1);
    tg_metric_add(w[1], TG_M_UPSTREAM_IN_FLIGHT, l, -1);
    tg_metric_add(w[1], TG_M_UPSTREAM_IN_FLIGHT, l, -1);
    TG_STAT_ADD(w[0], live, 2);
    TG_STAT_ADD(w[1], live, -1);
    text = scrape();
    cr_assert(has_line(text, "tracegate_upstream_requests_in_flight{upstream=\"u\"} 0"), "%s",
              text);
    cr_assert(has_line(text, "tracegate_requests_in_flight 1"));
    free(text);
}

Test(metrics, unlabelled_counters_sum_over_workers)
{
    char *text;

    TG_STAT_ADD(w[0], requests, 3);
    TG_STAT_ADD(w[1], requests, 4);
    TG_STAT_ADD(w[1], client_closed, 1);
    text = scrape();
    cr_assert(has_line(text, "tracegate_requests_total 7"), "%s", text);
    cr_assert(has_line(text, "tracegate_responses_total{class=\"499\"} 1"));
    cr_assert(has_line(text, "tracegate_responses_total{class=\"2xx\"} 0"));
    free(text);
}

Test(metrics, no_worker_no_series_lines)
{
    char *text;

    tg_metric_observe(NULL, TG_M_REQUEST_DURATION, (const char *[]){"r", "GET", "2xx"}, 1);
    text = scrape();
    cr_assert(zero(ptr, strstr(text, "tracegate_request_duration_seconds_count")));
    free(text);
}
