/* Pyroscope's time expressions: now, now-1h, unix s/ms/µs/ns, YYYYMMDD. */
#include <string.h>
#include <time.h>

#include "hotpath/attime.h"

static bool all_digits(hp_str_t s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
    return true;
}

static bool parse_u64(hp_str_t s, uint64_t *v)
{
    uint64_t x = 0;
    if (!all_digits(s) || s.n > 19)
        return false;
    for (size_t i = 0; i < s.n; i++)
        x = x * 10 + (uint64_t)(s.p[i] - '0');
    *v = x;
    return x <= (uint64_t)INT64_MAX;
}

static int64_t unit_ns(hp_str_t u)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {{"ms", 1000000LL}, {"s", 1000000000LL}, {"m", 60000000000LL},
                 {"h", 3600000000000LL}, {"d", 86400000000000LL}, {"w", 604800000000000LL}};
    for (size_t i = 0; i < HP_ARRAY_LEN(units); i++)
        if (hp_str_eq_c(u, units[i].name))
            return units[i].ns;
    return 0;
}

/* "now", "now-1h", "now+5m". */
static int parse_now(hp_str_t s, int64_t now_ns, int64_t *out, hp_err_t *err)
{
    if (s.n == 3) {
        *out = now_ns;
        return 0;
    }
    char sign = s.p[3];
    hp_str_t rest = {s.p + 4, s.n - 4};
    size_t d = 0;
    while (d < rest.n && rest.p[d] >= '0' && rest.p[d] <= '9')
        d++;
    uint64_t v;
    int64_t u = unit_ns((hp_str_t){rest.p + d, rest.n - d});
    if ((sign != '-' && sign != '+') || !parse_u64((hp_str_t){rest.p, d}, &v) || u == 0 ||
        v > (uint64_t)(INT64_MAX / u))
        return hp_err_set(err, HP_EINVAL,
                          "invalid time '%.*s': expected now-<n><unit> (units ms, s, m, h, d, w)",
                          (int)HP_MIN(s.n, 64), s.p);
    int64_t delta = (int64_t)v * u; /* fits: v <= INT64_MAX / u */
    bool overflow =
        sign == '-' ? __builtin_sub_overflow(now_ns, delta, out) : __builtin_add_overflow(now_ns, delta, out);
    if (overflow)
        return hp_err_set(err, HP_EINVAL, "time '%.*s' is out of range", (int)HP_MIN(s.n, 64), s.p);
    return 0;
}

static int parse_yyyymmdd(hp_str_t s, int64_t *out, hp_err_t *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y = 0, m = 0, d = 0;
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s.p[i] - '0');
    m = (s.p[4] - '0') * 10 + (s.p[5] - '0');
    d = (s.p[6] - '0') * 10 + (s.p[7] - '0');
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return hp_err_set(err, HP_EINVAL, "invalid date '%.8s': expected YYYYMMDD", s.p);
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *out = (int64_t)timegm(&tm) * 1000000000LL;
    return 0;
}

int hp_attime_parse(hp_str_t s, int64_t now_ns, int64_t *out_ns, hp_err_t *err)
{
    while (s.n && s.p[0] == ' ')
        s.p++, s.n--;
    while (s.n && s.p[s.n - 1] == ' ')
        s.n--;
    if (s.n >= 3 && memcmp(s.p, "now", 3) == 0)
        return parse_now(s, now_ns, out_ns, err);
    uint64_t v;
    if (!parse_u64(s, &v))
        return hp_err_set(err, HP_EINVAL,
                          "invalid time '%.*s': expected unix time (s, ms, µs or ns), YYYYMMDD or now-1h",
                          (int)HP_MIN(s.n, 64), s.p);
    if (s.n == 8)
        return parse_yyyymmdd(s, out_ns, err);
    int64_t mult = s.n >= 19 ? 1 : s.n >= 16 ? 1000 : s.n >= 13 ? 1000000 : 1000000000;
    if (v > (uint64_t)(INT64_MAX / mult))
        return hp_err_set(err, HP_EINVAL, "time '%.*s' is out of range", (int)HP_MIN(s.n, 64), s.p);
    *out_ns = (int64_t)v * mult;
    return 0;
}
