/* selector_bench: what a label matcher costs per series — equality,
 * regexes (RE2, anchored) of growing difficulty, and a hostile pattern —
 * over 100 000 series labelled like a real tenant's. Prints ns per series.
 *
 *   selector_bench [-n SERIES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&ls[i]);
    free(ls);
    free(svc);
    free(pod);
    return 0;
}
