/* Merging of JVM-generated names, as grafana/jfr-parser's ProcessSymbols
 * does with regular expressions: each rule below matches a whole symbol and
 * names the one regular expression it implements. Hand-written matchers
 * keep this allocation-free and linear. */
#include <string.h>

#include "jfr_internal.h"

/* A cursor over the symbol being matched. */
typedef struct cur {
    const char *p, *end;
} cur_t;

static bool at_end(const cur_t *c)
{
    return c->p == c->end;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f');
}

/* Consumes lit when the cursor starts with it. */
static bool lit(cur_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Consumes the longest run of characters in the class; returns its length. */
static size_t run(cur_t *c, bool (*in)(char))
{
    const char *s = c->p;
    while (c->p < c->end && in(*c->p))
        c->p++;
    return (size_t)(c->p - s);
}

/* `(\.?/tmp/)?` */
static void opt_tmp(cur_t *c)
{
    if (!lit(c, "./tmp/"))
        (void)lit(c, "/tmp/");
}

/* `( \(deleted\))?$` */
static bool deleted_end(cur_t *c)
{
    (void)lit(c, " (deleted)");
    return at_end(c);
}

static size_t put(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* ^(jdk/internal/reflect/GeneratedMethodAccessor)(\d+)$ → ${1}_ */
static size_t method_accessor(const char *s, size_t n, char *out)
{
    static const char prefix[] = "jdk/internal/reflect/GeneratedMethodAccessor";
    cur_t c = {s, s + n};
    if (!lit(&c, prefix) || run(&c, is_digit) == 0 || !at_end(&c))
        return 0;
    memcpy(out, prefix, sizeof(prefix) - 1);
    out[sizeof(prefix) - 1] = '_';
    return sizeof(prefix);
}

/* The lambda suffix after "$$Lambda": `\$?\d*[./](0x)?[\da-f]+|\d+`, to the
 * end of the symbol. */
static bool lambda_suffix(cur_t c)
{
    cur_t d = c;
    if (run(&d, is_digit) > 0 && at_end(&d))
        return true;
    (void)lit(&c, "$");
    run(&c, is_digit);
    if (at_end(&c) || (*c.p != '.' && *c.p != '/'))
        return false;
    c.p++;
    cur_t h = c;
    if (lit(&h, "0x") && run(&h, is_hex) > 0 && at_end(&h))
        return true;
    return run(&c, is_hex) > 0 && at_end(&c);
}

/* ^(.+\$\$Lambda)(\$?\d*[./](0x)?[\da-f]+|\d+)$ → ${1}_. The greedy `.+`
 * takes the last "$$Lambda" whose suffix matches; `.` excludes newlines. */
static size_t lambda(const char *s, size_t n, char *out)
{
    static const char mark[] = "$$Lambda";
    const size_t m = sizeof(mark) - 1;
    const char *nl = memchr(s, '\n', n);
    for (size_t i = n >= m ? n - m : 0; i >= 1 && n >= m; i--) {
        if (nl != NULL && nl < s + i)
            continue; /* `.+` cannot span a newline */
        cur_t c = {s + i + m, s + n};
        if (memcmp(s + i, mark, m) == 0 && lambda_suffix(c)) {
            memcpy(out, s, i + m);
            out[i + m] = '_';
            return i + m + 1;
        }
    }
    return 0;
}

/* ^(\.?/tmp/)?(libzstd-jni-\d+\.\d+\.\d+-)(\d+)(\.so)( \(deleted\))?$
 * → libzstd-jni-_.so */
static size_t zstd_jni(const char *s, size_t n, char *out)
{
    cur_t c = {s, s + n};
    opt_tmp(&c);
    if (!lit(&c, "libzstd-jni-") || !run(&c, is_digit) || !lit(&c, ".") || !run(&c, is_digit) ||
        !lit(&c, ".") || !run(&c, is_digit) || !lit(&c, "-") || !run(&c, is_digit) || !lit(&c, ".so") ||
        !deleted_end(&c))
        return 0;
    return put(out, "libzstd-jni-_.so");
}

/* ^(\.?/tmp/)?(lib)?(amazonCorrettoCryptoProvider)(NativeLibraries\.)?
 * ([0-9a-f]{16})(/libcrypto|/libamazonCorrettoCryptoProvider)?(\.so)
 * ( \(deleted\))?$ → libamazonCorrettoCryptoProvider_.so */
static size_t corretto(const char *s, size_t n, char *out)
{
    cur_t c = {s, s + n};
    opt_tmp(&c);
    (void)lit(&c, "lib");
    if (!lit(&c, "amazonCorrettoCryptoProvider"))
        return 0;
    (void)lit(&c, "NativeLibraries.");
    for (int i = 0; i < 16; i++, c.p++)
        if (at_end(&c) || !is_hex(*c.p))
            return 0;
    if (!lit(&c, "/libcrypto"))
        (void)lit(&c, "/libamazonCorrettoCryptoProvider");
    if (!lit(&c, ".so") || !deleted_end(&c))
        return 0;
    return put(out, "libamazonCorrettoCryptoProvider_.so");
}

/* ^(\.?/tmp/)?(libasyncProfiler)-(linux-arm64|linux-musl-x64|linux-x64|macos)-
 * (17b9a1d8156277a98ccc871afa9a8f69215f92)(\.so)( \(deleted\))?$
 * → libasyncProfiler-_.so */
static size_t async_profiler(const char *s, size_t n, char *out)
{
    static const char *const platforms[] = {"linux-arm64", "linux-musl-x64", "linux-x64", "macos"};
    cur_t c = {s, s + n};
    opt_tmp(&c);
    if (!lit(&c, "libasyncProfiler-"))
        return 0;
    for (size_t i = 0; i < HP_ARRAY_LEN(platforms); i++) {
        cur_t t = c;
        if (lit(&t, platforms[i]) && lit(&t, "-17b9a1d8156277a98ccc871afa9a8f69215f92.so") && deleted_end(&t))
            return put(out, "libasyncProfiler-_.so");
    }
    return 0;
}

size_t hp__jfr_merge_generated(const char *s, size_t n, char *out)
{
    /* jfr-parser applies these in turn; a merged name matches no later rule,
     * so the first that matches decides. */
    static size_t (*const rules[])(const char *, size_t, char *) = {
        method_accessor, lambda, zstd_jni, corretto, async_profiler,
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(rules); i++) {
        size_t m = rules[i](s, n, out);
        if (m)
            return m;
    }
    return 0;
}
