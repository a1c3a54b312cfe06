/* Unit tests for attime.h: Pyroscope's from/until expressions. */
#include "hotpath/attime.h"
#include "test.h"

static const int64_t NOW = 1795637204123456789LL; /* 2026-11-25T… */

static int64_t parse(const char *s, int *rc)
{
    hp_err_t err;
    int64_t v = -1;
    *rc = hp_attime_parse(hp_str_c(s), NOW, &v, &err);
    return v;
}

static void test_now_and_offsets(void)
{
    int rc;
    CHECK_EQ_INT(parse("now", &rc), NOW);
    CHECK_EQ_INT(parse("now-1h", &rc), NOW - 3600LL * 1000000000);
    CHECK_EQ_INT(parse("now-30m", &rc), NOW - 1800LL * 1000000000);
    CHECK_EQ_INT(parse("now-2d", &rc), NOW - 2 * 86400LL * 1000000000);
    CHECK_EQ_INT(parse("now-1w", &rc), NOW - 7 * 86400LL * 1000000000);
    CHECK_EQ_INT(parse("now+5m", &rc), NOW + 300LL * 1000000000);
    CHECK_EQ_INT(parse("now-250ms", &rc), NOW - 250000000LL);
    CHECK_EQ_INT(parse(" now ", &rc), NOW);
    /* far in the past still fits an int64 */
    CHECK_EQ_INT(parse("now-15000w", &rc), NOW - 15000LL * 604800LL * 1000000000);
    CHECK_EQ_INT(rc, 0);
}

static void test_unix_digits(void)
{
    int rc;
    CHECK_EQ_INT(parse("1795637204", &rc), 1795637204LL * 1000000000);
    CHECK_EQ_INT(parse("1795637204123", &rc), 1795637204123LL * 1000000);
    CHECK_EQ_INT(parse("1795637204123456", &rc), 1795637204123456LL * 1000);
    CHECK_EQ_INT(parse("1795637302960133056", &rc), 1795637302960133056LL);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(parse("20261125", &rc), 1795564800LL * 1000000000);
    CHECK_EQ_INT(rc, 0);
}

static void test_errors(void)
{
    int rc;
    const char *bad[] = {"", "yesterday", "now-", "now-1", "now-1y", "now*1h", "12a4", "-5", "20261345",
                         "99999999999", "now-9999999999999w",
                         /* N fits on its own but now+N overflows (UBSan aborted here before) */
                         "now+15000w", "now+9223372036854775807ms"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        parse(bad[i], &rc);
        if (rc != HP_EINVAL)
            fprintf(stderr, "  accepted '%s'\n", bad[i]);
        CHECK(rc == HP_EINVAL);
    }
}

int main(void)
{
    HP_RUN(test_now_and_offsets);
    HP_RUN(test_unix_digits);
    HP_RUN(test_errors);
    return hp_test_done();
}
