/* SelectMergeSpanProfile: the flame graph of the samples that belong to a
 * set of trace spans — SelectMergeStacktraces with a span filter that the
 * ingesters and store-gateways apply in the second phase of deduplication,
 * so replicas still count once. */
#include <stdlib.h>

#include "hotpath/head.h"
#include "hotpath/profile.h"
#include "querier.h"

int qry_parse_span_selector(char *const *ids, size_t n, uint64_t **out, size_t *n_out, hp_err_t *err)
{
    *out = NULL;
    *n_out = 0;
    if (n > HP_SELECT_MAX_SPANS)
        return hp_err_set(err, HP_EINVAL, "span_selector has %zu span IDs, at most %d", n,
                          HP_SELECT_MAX_SPANS);
    uint64_t *v = hp_xmalloc((n + 1) * sizeof(uint64_t));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!hp_span_id_parse(hp_str_c(ids[i]), &v[k])) {
            free(v);
            return hp_err_set(err, HP_EINVAL, "span_selector: \"%.64s\" is not a span ID (16 hex digits)",
                              ids[i]);
        }
        k += v[k] != 0; /* the all-zero ID is no span: no sample has it */
    }
    *out = v;
    *n_out = k;
    return 0;
}

typedef struct span_filter {
    const uint64_t *ids;
    size_t n;
} span_filter_t;

/* The second-phase request: the SelectRequest with the span filter. */
static void pack_span_select(void *ctx, const Hotpath__V1__SelectRequest *sel, hp_buf_t *out)
{
    const span_filter_t *f = ctx;
    Hotpath__V1__SelectRequest r = *sel;
    r.span_ids = (uint64_t *)f->ids;
    r.n_span_ids = f->n;
    size_t n = hotpath__v1__select_request__get_packed_size(&r);
    hp_buf_reserve(out, n + 1);
    out->len += hotpath__v1__select_request__pack(&r, out->data + out->len);
}

int qry_merge_span_tree(qry_t *q, hp_str_t tenant, const qry_select_t *s, const uint64_t *spans, size_t n,
                        hp_tree_t **out, hp_err_t *err)
{
    if (n == 0) { /* no span, no sample (Pyroscope's MergeBySpans) */
        *out = hp_tree_new();
        return 0;
    }
    span_filter_t f = {spans, n};
    return qry_merge_tree_by(q, tenant, s, pack_span_select, &f, out, err);
}
