/* selector_bench: what a label matcher costs per series — equality,
 * regexes (RE2, anchored) of growing difficulty, and a hostile pattern —
 * over 100 000 series labelled like a real tenant's. Prints ns per series.
 * Then the same series in a head: what selecting them costs per query,
 * matching every series against the postings' candidates only.
 *
 *   selector_bench [-n SERIES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotpath/head.h"
#include "hotpath/labels.h"
#include "hotpath/selector.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = 100000;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-n") == 0)
            n = (size_t)strtoull(argv[++i], NULL, 10);
    hp_labels_t *ls = calloc(n, sizeof(*ls));
    char (*svc)[48] = calloc(n, 48), (*pod)[48] = calloc(n, 48);
    for (size_t i = 0; i < n; i++) {
        snprintf(svc[i], 48, "checkout-service-%zu", i % 200);
        snprintf(pod[i], 48, "checkout-%zu-7f9c8d%05zu", i % 200, i);
        hp_labels_init(&ls[i]);
        hp_labels_add(&ls[i], HP_STR("service_name"), hp_str_c(svc[i]));
        hp_labels_add(&ls[i], HP_STR("pod"), hp_str_c(pod[i]));
        hp_labels_add(&ls[i], HP_STR("env"), HP_STR("prod"));
        hp_labels_sort(&ls[i]);
    }
    static const char *const sels[] = {
        "{service_name=\"checkout-service-7\"}",
        "{service_name=~\"checkout-service-7\"}",
        "{service_name=~\"checkout-service-.*\"}",
        "{service_name=~\"(checkout|cart|payment)-service-(1|2|3)[0-9]?\"}",
        "{pod=~\".*-7f9c8d0000[0-9]\"}",
        "{service_name!~\"cart.*\",pod=~\"checkout-1[0-9]-.*\"}",
        "{pod=~\"(a*)*(a*)*(a*)*b\"}",
    };
    printf("%-62s %10s %12s\n", "selector", "matched", "ns/series");
    for (size_t k = 0; k < sizeof(sels) / sizeof(sels[0]); k++) {
        hp_selector_t sel = {0};
        hp_err_t err;
        if (hp_selector_parse(hp_str_c(sels[k]), &sel, &err) != 0) {
            fprintf(stderr, "%s: %s\n", sels[k], err.msg);
            return 1;
        }
        size_t matched = 0;
        int rounds = 5;
        double t0 = now_s();
        for (int r = 0; r < rounds; r++)
            for (size_t i = 0; i < n; i++)
                matched += hp_selector_matches(&sel, &ls[i]);
        double ns = (now_s() - t0) * 1e9 / (double)(n * (size_t)rounds);
        printf("%-62s %10zu %12.1f\n", sels[k], matched / (size_t)rounds, ns);
        hp_selector_fini(&sel);
    }

    /* a head holding the series (one profile each) */
    hp_head_t *h = hp_head_new(1, "bench", 0, INT64_MAX, NULL);
    uint32_t st[] = {1};
    int64_t val[] = {1};
    for (size_t i = 0; i < n; i++) {
        hp_labels_add(&ls[i], HP_STR(HP_LABEL_PROFILE_TYPE), HP_STR("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
        hp_labels_sort(&ls[i]);
        bool created;
        hp_series_t *s = hp_head_series(h, &ls[i], hp_labels_fingerprint(&ls[i]), &created);
        uint8_t id[16] = {0};
        memcpy(id, &i, sizeof(i));
        hp_head_append(h, s, 1000, id, st, val, NULL, 1);
    }
    printf("\n%-62s %10s %12s %12s\n", "selection in a head", "matched", "scan us", "postings us");
    static const char *const qs[] = {
        "{service_name=\"checkout-service-7\"}",
        "{service_name=\"checkout-service-7\",pod=\"checkout-7-7f9c8d00007\"}",
        "{env=\"prod\",service_name=~\"checkout-service-1.*\"}",
        "{service_name=~\"checkout-service-7\"}",
    };
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
        r.label_selector = (char *)qs[k];
        r.profile_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
        hp_select_t q;
        hp_err_t err;
        if (hp_select_parse(&r, &q, &err) != 0) {
            fprintf(stderr, "%s: %s\n", qs[k], err.msg);
            return 1;
        }
        int rounds = 20;
        size_t m1 = 0, m2 = 0;
        double t0 = now_s();
        for (int rr = 0; rr < rounds; rr++)
            for (size_t i = 0; i < h->n_series; i++)
                m1 += hp_select_series(h, h->series[i], &q);
        double scan = (now_s() - t0) * 1e6 / rounds;
        t0 = now_s();
        for (int rr = 0; rr < rounds; rr++) {
            const uint32_t *cand;
            size_t nc;
            bool narrow = hp_head_candidates(h, &q, &cand, &nc);
            for (size_t j = 0, m = narrow ? nc : h->n_series; j < m; j++)
                m2 += hp_select_series(h, h->series[narrow ? cand[j] : j], &q);
        }
        double post = (now_s() - t0) * 1e6 / rounds;
        if (m1 != m2) {
            fprintf(stderr, "%s: the scan matched %zu, the postings %zu\n", qs[k], m1, m2);
            return 1;
        }
        printf("%-62s %10zu %12.1f %12.1f\n", qs[k], m1 / (size_t)rounds, scan, post);
        hp_select_fini(&q);
    }
    hp_head_unref(h);

    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&ls[i]);
    free(ls);
    free(svc);
    free(pod);
    return 0;
}
