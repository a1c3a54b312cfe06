// The RE2 behind regex.h.
#include <re2/re2.h>

#include <cstring>
#include <new>

extern "C" {
#include "hotpath/regex.h" /* and hotpath/common.h, C throughout */
}

struct hp_regex {
    re2::RE2 *re;
};

#define HP_REGEX_MAX_PATTERN 4096
#define HP_REGEX_MAX_MEM (2 << 20)

extern "C" int hp_regex_compile(const char *pattern, hp_regex_t **out, size_t *bad_at, hp_err_t *err)
{
    *out = nullptr;
    *bad_at = 0;
    size_t n = std::strlen(pattern);
    if (n > HP_REGEX_MAX_PATTERN)
        return hp_err_set(err, HP_EINVAL, "regex of %zu bytes is longer than %d", n, HP_REGEX_MAX_PATTERN);
    re2::RE2::Options opt;
    opt.set_log_errors(false);
    opt.set_never_capture(true);
    // a bound on the memory of one matcher (RE2's default is 8 MiB): a
    // query may compile several, on every process and split interval
    opt.set_max_mem(HP_REGEX_MAX_MEM);
    // compiled as written, so an unbalanced pattern ("a)|(b") is an error;
    // hp_regex_match anchors at both ends (FullMatch)
    re2::RE2 *re = new (std::nothrow) re2::RE2(re2::StringPiece(pattern, n), opt);
    if (re == nullptr)
        return hp_err_set(err, HP_ENOMEM, "out of memory compiling a regex");
    if (!re->ok()) {
        const std::string &arg = re->error_arg();
        const char *at = arg.empty() ? nullptr : std::strstr(pattern, arg.c_str());
        *bad_at = at ? (size_t)(at - pattern) : 0;
        int rc = hp_err_set(err, HP_EINVAL, "%s%s%s", re->error().c_str(), arg.empty() ? "" : ": ",
                            arg.empty() ? "" : arg.c_str());
        delete re;
        return rc;
    }
    hp_regex_t *r = new (std::nothrow) hp_regex_t{re};
    if (r == nullptr) {
        delete re;
        return hp_err_set(err, HP_ENOMEM, "out of memory compiling a regex");
    }
    *out = r;
    return 0;
}

extern "C" bool hp_regex_match(const hp_regex_t *re, const char *s, size_t n)
{
    return re2::RE2::FullMatch(re2::StringPiece(s, n), *re->re);
}

extern "C" void hp_regex_free(hp_regex_t *re)
{
    if (re == nullptr)
        return;
    delete re->re;
    delete re;
}
