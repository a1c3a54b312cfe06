/*
 * test.h — the unit tests' tiny harness. A test file defines functions
 * `static void test_x(void)` and lists them in main with HP_RUN(test_x).
 * CHECK records a failure and continues; REQUIRE stops the current test.
 * main returns hp_test_done(), which prints "N passed, N failed".
 */
#ifndef HOTPATH_TEST_H
#define HOTPATH_TEST_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hp_t_pass, hp_t_fail, hp_t_cur_failed;
static jmp_buf hp_t_jmp;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            hp_t_cur_failed = 1;                                                 \
        }                                                                        \
    } while (0)

#define REQUIRE(cond)                                                              \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            hp_t_cur_failed = 1;                                                   \
            longjmp(hp_t_jmp, 1);                                                  \
        }                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long _a = (long long)(a), _b = (long long)(b);                         \
        if (_a != _b) {                                                             \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                    #a, #b, _a, _b);                                                \
            hp_t_cur_failed = 1;                                                    \
        }                                                                           \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                          \
    do {                                                                            \
        const char *_a = (a), *_b = (b);                                            \
        if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) {                      \
            fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                    __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");      \
            hp_t_cur_failed = 1;                                                    \
        }                                                                           \
    } while (0)

#define HP_RUN(fn)                                     \
    do {                                               \
        hp_t_cur_failed = 0;                           \
        fprintf(stderr, "- %s\n", #fn);                \
        if (setjmp(hp_t_jmp) == 0)                     \
            fn();                                      \
        if (hp_t_cur_failed) {                         \
            hp_t_fail++;                               \
            fprintf(stderr, "  FAIL %s\n", #fn);       \
        } else {                                       \
            hp_t_pass++;                               \
        }                                              \
    } while (0)

static inline int hp_test_done(void)
{
    printf("%d passed, %d failed\n", hp_t_pass, hp_t_fail);
    return hp_t_fail == 0 ? 0 : 1;
}

/* Reads a whole file into a malloc'd buffer; NULL if it cannot. */
static inline unsigned char *hp_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        *len = (size_t)n;
    return p;
}

/* Path under the shared test data ($HP_TESTDATA, default ../shared/testdata
 * relative to the source tree). Returns a static buffer. */
static inline const char *hp_testdata(const char *rel)
{
    static char path[4096];
    const char *base = getenv("HP_TESTDATA");
    snprintf(path, sizeof(path), "%s/%s", base ? base : "../shared/testdata", rel);
    return path;
}

#endif
