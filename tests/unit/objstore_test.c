/* Unit tests for objstore.h: the filesystem backend in full (including a
 * reader racing a writer), the S3 backend against a real s3rver (installed
 * with npm into $HOME/.cache/hotpath-s3rver on first use, started on a free
 * loopback port) running the same operation suite, and the S3 engine's
 * retries, timeouts, signing headers and error messages against a small
 * scripted HTTP server in this process. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpath/objstore.h"
#include "objstore_impl.h"
#include "test.h"

extern char **environ;

#define SECRET "s3cr3t-DO-NOT-LEAK-42"

/* Whether s starts with the string literal lit. */
#define STARTS(s, lit) (strncmp((s), (lit), sizeof(lit) - 1) == 0)

/* ---- helpers ---------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new directory under /tmp, its path in out (caller removes it). */
static void make_temp_dir(char *out, size_t n, const char *what)
{
    snprintf(out, n, "/tmp/hp-objstore-%s-%d-XXXXXX", what, getpid());
    REQUIRE(mkdtemp(out) != NULL);
}

static hp_objstore_t *new_fs(const char *dir)
{
    hp_objstore_config_t cfg = {.backend = "filesystem", .filesystem = {dir}};
    hp_objstore_t *s = NULL;
    hp_err_t err;
    if (hp_objstore_new(&cfg, &s, &err) != 0)
        fprintf(stderr, "  new: %s\n", err.msg);
    return s;
}

/* Every key and size a listing produced. */
typedef struct listed {
    size_t n, cap;
    char **keys;
    uint64_t *sizes;
    size_t stop_after; /* 0 = never stop */
} listed_t;

static int collect(void *ctx, const char *key, uint64_t size)
{
    listed_t *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
        l->sizes = realloc(l->sizes, l->cap * sizeof(*l->sizes));
    }
    l->keys[l->n] = strdup(key);
    l->sizes[l->n++] = size;
    return l->stop_after && l->n == l->stop_after ? 7 : 0;
}

static void listed_free(listed_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l->sizes);
    memset(l, 0, sizeof(*l));
}

/* Lists prefix and checks the keys are exactly want[0..n), in order. */
static void check_list(hp_objstore_t *s, const char *prefix, const char *const *want, size_t n)
{
    listed_t l = {0};
    hp_err_t err;
    int rc = hp_objstore_list(s, prefix, collect, &l, &err);
    if (rc != 0)
        fprintf(stderr, "  list %s: %s\n", prefix, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(l.n, n);
    for (size_t i = 0; i < n && i < l.n; i++)
        CHECK_EQ_STR(l.keys[i], want[i]);
    listed_free(&l);
}

static void put_str(hp_objstore_t *s, const char *key, const char *v)
{
    hp_err_t err;
    int rc = hp_objstore_put(s, key, v, strlen(v), &err);
    if (rc != 0)
        fprintf(stderr, "  put %s: %s\n", key, err.msg);
    CHECK_EQ_INT(rc, 0);
}

/* Gets key and checks it holds v. */
static void check_get(hp_objstore_t *s, const char *key, const char *v)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    int rc = hp_objstore_get(s, key, &b, 1 << 20, &err);
    if (rc != 0)
        fprintf(stderr, "  get %s: %s\n", key, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(b.len == strlen(v) && memcmp(b.data ? (const char *)b.data : "", v, b.len) == 0);
    hp_buf_fini(&b);
}

static bool exists(hp_objstore_t *s, const char *key)
{
    bool yes = true;
    hp_err_t err;
    int rc = hp_objstore_exists(s, key, &yes, &err);
    if (rc != 0)
        fprintf(stderr, "  exists %s: %s\n", key, err.msg);
    CHECK_EQ_INT(rc, 0);
    return yes;
}

/* The bytes of a generated object: byte i of object seed. */
static uint8_t pattern(unsigned seed, size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13 ^ seed);
}

/* ---- the operation suite, for every backend --------------------------------- */

static void suite_put_get(hp_objstore_t *s)
{
    put_str(s, "pg/a.txt", "first");
    check_get(s, "pg/a.txt", "first");
    put_str(s, "pg/a.txt", "second, longer");
    check_get(s, "pg/a.txt", "second, longer");
    put_str(s, "pg/empty", "");
    check_get(s, "pg/empty", "");
    put_str(s, "top-level", "x");
    check_get(s, "top-level", "x");
}

static void suite_missing(hp_objstore_t *s)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_get(s, "missing/nothing-here", &b, 100, &err), HP_ENOTFOUND);
    CHECK(strstr(err.msg, "missing/nothing-here") != NULL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "missing/nothing-here", 0, 4, &b, &err), HP_ENOTFOUND);
    CHECK_EQ_INT(hp_objstore_get_range(s, "missing/nothing-here", 0, 0, &b, &err), HP_ENOTFOUND);
    CHECK(!exists(s, "missing/nothing-here"));
    CHECK_EQ_INT(hp_objstore_delete(s, "missing/nothing-here", &err), 0);
    hp_buf_fini(&b);
}

static void suite_max_bytes(hp_objstore_t *s)
{
    char data[100];
    memset(data, 'm', sizeof(data));
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    REQUIRE(hp_objstore_put(s, "mb/obj", data, sizeof(data), &err) == 0);
    CHECK_EQ_INT(hp_objstore_get(s, "mb/obj", &b, 99, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "100 bytes") != NULL && strstr(err.msg, "99") != NULL);
    CHECK_EQ_INT(hp_objstore_get(s, "mb/obj", &b, 100, &err), 0);
    CHECK_EQ_INT(b.len, 100);
    hp_buf_fini(&b);
}

static void check_range(hp_objstore_t *s, const char *key, uint64_t off, uint64_t len, const char *want)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    int rc = hp_objstore_get_range(s, key, off, len, &b, &err);
    if (rc != 0)
        fprintf(stderr, "  range %s %llu+%llu: %s\n", key, (unsigned long long)off, (unsigned long long)len,
                err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(b.len == strlen(want) && memcmp(b.data ? (const char *)b.data : "", want, b.len) == 0);
    hp_buf_fini(&b);
}

static void suite_range(hp_objstore_t *s)
{
    put_str(s, "rg/digits", "0123456789");
    check_range(s, "rg/digits", 0, 10, "0123456789");
    check_range(s, "rg/digits", 3, 4, "3456");
    check_range(s, "rg/digits", 9, 1, "9");
    check_range(s, "rg/digits", 10, 0, "");
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_get_range(s, "rg/digits", 8, 3, &b, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "shorter than 11") != NULL && strstr(err.msg, "rg/digits") != NULL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "rg/digits", 10, 1, &b, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "shorter") != NULL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "rg/digits", 50, 5, &b, &err), HP_EINVAL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "rg/digits", 11, 0, &b, &err), HP_EINVAL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "rg/digits", UINT64_MAX - 1, 5, &b, &err), HP_EINVAL);
    hp_buf_fini(&b);
}

static void suite_exists_delete(hp_objstore_t *s)
{
    hp_err_t err;
    put_str(s, "ed/one/two", "2");
    put_str(s, "ed/keep", "k");
    CHECK(exists(s, "ed/one/two"));
    CHECK(!exists(s, "ed/one"));
    CHECK(!exists(s, "ed/one/tw"));
    CHECK_EQ_INT(hp_objstore_delete(s, "ed/one/two", &err), 0);
    CHECK(!exists(s, "ed/one/two"));
    CHECK_EQ_INT(hp_objstore_delete(s, "ed/one/two", &err), 0);
    CHECK(exists(s, "ed/keep"));
    const char *want[] = {"ed/keep"};
    check_list(s, "ed/", want, 1);
}

static void suite_list(hp_objstore_t *s)
{
    const char *keys[] = {"ls/c", "ls/b/2", "ls/a/10", "ls/a/1", "lsx/1", "ls/a/1x/y"};
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++)
        put_str(s, keys[i], keys[i]);
    const char *all[] = {"ls/a/1", "ls/a/10", "ls/a/1x/y", "ls/b/2", "ls/c"};
    check_list(s, "ls/", all, 5);
    const char *with_x[] = {"ls/a/1", "ls/a/10", "ls/a/1x/y", "ls/b/2", "ls/c", "lsx/1"};
    check_list(s, "ls", with_x, 6);
    const char *a1[] = {"ls/a/1", "ls/a/10", "ls/a/1x/y"};
    check_list(s, "ls/a/1", a1, 3);
    check_list(s, "ls/zzz/", NULL, 0);
    check_list(s, "nothing-at-all/", NULL, 0);

    listed_t l = {.stop_after = 2};
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_list(s, "ls/", collect, &l, &err), 7);
    CHECK_EQ_INT(l.n, 2);
    listed_free(&l);

    CHECK_EQ_INT(hp_objstore_list(s, "ls/b/", collect, &l, &err), 0);
    REQUIRE(l.n == 1);
    CHECK_EQ_INT(l.sizes[0], strlen("ls/b/2"));
    listed_free(&l);
}

static void suite_bad_keys(hp_objstore_t *s)
{
    char long_key[1100];
    memset(long_key, 'k', 1025);
    long_key[1025] = '\0';
    const char *bad[] = {"",      "/abs", "dir/", "a//b",   "a/../b",       "..",
                         "a/./b", ".",    "a/..", long_key, "bad\xff utf8", "x/.hp-tmp-123"};
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    bool yes;
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(hp_objstore_put(s, bad[i], "x", 1, &err), HP_EINVAL);
        CHECK(strstr(err.msg, "invalid object key") != NULL);
        CHECK_EQ_INT(hp_objstore_get(s, bad[i], &b, 10, &err), HP_EINVAL);
        CHECK_EQ_INT(hp_objstore_get_range(s, bad[i], 0, 1, &b, &err), HP_EINVAL);
        CHECK_EQ_INT(hp_objstore_delete(s, bad[i], &err), HP_EINVAL);
        CHECK_EQ_INT(hp_objstore_exists(s, bad[i], &yes, &err), HP_EINVAL);
    }
    CHECK_EQ_INT(hp_objstore_put(s, "a//b", "x", 1, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "\"a//b\"") != NULL && strstr(err.msg, "empty segment") != NULL);
    CHECK_EQ_INT(hp_objstore_put(s, "a/../b", "x", 1, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "\"a/../b\"") != NULL);
    CHECK_EQ_INT(hp_objstore_put(s, long_key, "x", 1, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "longer than 1024") != NULL);
    CHECK_EQ_INT(hp_objstore_put(s, NULL, "x", 1, &err), HP_EINVAL);
    CHECK_EQ_INT(hp_objstore_list(s, "/x", collect, NULL, &err), HP_EINVAL);
    CHECK_EQ_INT(hp_objstore_list(s, "a/../", collect, NULL, &err), HP_EINVAL);
    CHECK_EQ_INT(hp_objstore_list(s, "x//", collect, NULL, &err), HP_EINVAL);

    /* the longest key is fine: segments of 200 bytes fit every file system */
    for (size_t i = 0; i < 1024; i++)
        long_key[i] = (i % 201 == 200) ? '/' : (char)('a' + i % 26);
    long_key[1024] = '\0';
    put_str(s, long_key, "long");
    check_get(s, long_key, "long");
    CHECK_EQ_INT(hp_objstore_delete(s, long_key, &err), 0);
    hp_buf_fini(&b);
}

static void suite_names(hp_objstore_t *s)
{
    const char *keys[] = {"nm/a+b=c&d;e,f$g'h(i)!*~@", "nm/hello world.txt",
                          "nm/na\xc3\xafve-\xe6\x97\xa5\xe6\x9c\xac-\xe2\x9c\x93",
                          "nm/\xf0\x9f\x98\x80/<tag> \"q\" %41"};
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++)
        put_str(s, keys[i], keys[i]);
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++) {
        check_get(s, keys[i], keys[i]);
        CHECK(exists(s, keys[i]));
    }
    check_list(s, "nm/", keys, HP_ARRAY_LEN(keys));
    check_range(s, keys[1], 3, 5, "hello");
}

static void suite_big(hp_objstore_t *s)
{
    size_t n = 5u << 20;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = pattern(5, i);
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    int rc = hp_objstore_put(s, "big/5mib", data, n, &err);
    if (rc != 0)
        fprintf(stderr, "  put big: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(hp_objstore_get(s, "big/5mib", &b, n, &err), 0);
    CHECK(b.len == n && memcmp(b.data, data, n) == 0);
    CHECK_EQ_INT(hp_objstore_get_range(s, "big/5mib", 3000001, 1234567, &b, &err), 0);
    CHECK(b.len == 1234567 && memcmp(b.data, data + 3000001, 1234567) == 0);
    CHECK_EQ_INT(hp_objstore_get(s, "big/5mib", &b, n - 1, &err), HP_ETOOLARGE);
    hp_buf_fini(&b);
    free(data);
}
/* Lists prefix's "directories" and checks they are exactly want[0..n). */
static void check_prefixes(hp_objstore_t *s, const char *prefix, const char *const *want, size_t n)
{
    listed_t l = {0};
    hp_err_t err;
    int rc = hp_objstore_list_prefixes(s, prefix, collect, &l, &err);
    if (rc != 0)
        fprintf(stderr, "  list_prefixes %s: %s\n", prefix, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(l.n, n);
    for (size_t i = 0; i < n && i < l.n; i++) {
        CHECK_EQ_STR(l.keys[i], want[i]);
        CHECK_EQ_INT(l.sizes[i], 0);
    }
    listed_free(&l);
}

static void suite_prefixes(hp_objstore_t *s)
{
    /* every directory here also holds an object directly: s3rver finds a
     * common prefix only then (AWS and MinIO need no such help) */
    const char *keys[] = {"px/ta/blocks/A/data", "px/ta/blocks/A/meta.json", "px/ta/blocks/B/data",
                          "px/ta/index.gz",      "px/tb/x",                  "px/tc/y/z",
                          "px/tc/f",             "px/file",                  "pxq/a",
                          "px/ud/w"};
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++)
        put_str(s, keys[i], keys[i]);
    const char *top[] = {"px/ta/", "px/tb/", "px/tc/", "px/ud/"};
    check_prefixes(s, "px/", top, 4);
    check_prefixes(s, "px/t", top, 3); /* an unfinished segment matches by prefix */
    const char *blocks[] = {"px/ta/blocks/A/", "px/ta/blocks/B/"};
    check_prefixes(s, "px/ta/blocks/", blocks, 2);
    check_prefixes(s, "px/ta/blocks/A/", NULL, 0); /* only objects there */
    check_prefixes(s, "px/none/", NULL, 0);
    listed_t l = {0};
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_list_prefixes(s, "", collect, &l, &err), 0);
    size_t found = 0;
    for (size_t i = 0; i < l.n; i++)
        found += strcmp(l.keys[i], "px/") == 0 || strcmp(l.keys[i], "pxq/") == 0;
    CHECK_EQ_INT(found, 2);
    listed_free(&l);
    l.stop_after = 1;
    CHECK_EQ_INT(hp_objstore_list_prefixes(s, "px/", collect, &l, &err), 7);
    CHECK_EQ_INT(l.n, 1);
    listed_free(&l);
    /* once the objects under a directory are gone, it is not listed */
    CHECK_EQ_INT(hp_objstore_delete(s, "px/tb/x", &err), 0);
    const char *after[] = {"px/ta/", "px/tc/", "px/ud/"};
    check_prefixes(s, "px/", after, 3);
    CHECK_EQ_INT(hp_objstore_list_prefixes(s, "/bad", collect, &l, &err), HP_EINVAL);
}

#define MANY 1100

static void suite_many(hp_objstore_t *s)
{
    char key[64];
    hp_err_t err;
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "many/k%05d", i);
        if (hp_objstore_put(s, key, key, 4, &err) != 0) {
            fprintf(stderr, "  put %s: %s\n", key, err.msg);
            REQUIRE(0);
        }
    }
    listed_t l = {0};
    int rc = hp_objstore_list(s, "many/", collect, &l, &err);
    if (rc != 0)
        fprintf(stderr, "  list: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(l.n, MANY);
    bool ordered = true;
    for (size_t i = 0; i < l.n; i++) {
        snprintf(key, sizeof(key), "many/k%05zu", i);
        ordered = ordered && strcmp(l.keys[i], key) == 0 && l.sizes[i] == 4;
    }
    CHECK(ordered);
    listed_free(&l);
}

/* The store the suite runs against (the suite runs once per backend). */
static hp_objstore_t *S;

#define SUITE(name)                                                                                          \
    static void t_##name(void)                                                                               \
    {                                                                                                        \
        suite_##name(S);                                                                                     \
    }
SUITE(put_get)
SUITE(missing)
SUITE(max_bytes)
SUITE(range)
SUITE(exists_delete)
SUITE(list)
SUITE(prefixes)
SUITE(bad_keys)
SUITE(names)
SUITE(big)
SUITE(many)

static void run_suite(const char *backend)
{
    fprintf(stderr, "== operation suite: %s\n", backend);
    HP_RUN(t_put_get);
    HP_RUN(t_missing);
    HP_RUN(t_max_bytes);
    HP_RUN(t_range);
    HP_RUN(t_exists_delete);
    HP_RUN(t_list);
    HP_RUN(t_prefixes);
    HP_RUN(t_bad_keys);
    HP_RUN(t_names);
    HP_RUN(t_big);
    HP_RUN(t_many);
}

/* ---- filesystem only -------------------------------------------------------- */

static char fs_dir[256];

/* Object generation g: its size and bytes, so a reader can tell whether
 * what it got is whole. */
static size_t gen_size(unsigned g)
{
    return (1u << 20) - (g % 7) * 1000;
}

typedef struct race {
    hp_objstore_t *s;
    atomic_int done;
    atomic_int reads, whole, partial, errors;
} race_t;

static void *reader_main(void *arg)
{
    race_t *r = arg;
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    while (!atomic_load(&r->done)) {
        int rc = hp_objstore_get(r->s, "race/obj", &b, 2u << 20, &err);
        atomic_fetch_add(&r->reads, 1);
        if (rc != 0) { /* the object exists all along: not even "not found" is right */
            atomic_fetch_add(&r->errors, 1);
            continue;
        }
        unsigned g = b.len > 0 ? b.data[0] : 0;
        bool ok = b.len == gen_size(g);
        for (size_t i = 1; ok && i < b.len; i++)
            ok = b.data[i] == (uint8_t)g;
        atomic_fetch_add(ok ? &r->whole : &r->partial, 1);
    }
    hp_buf_fini(&b);
    return NULL;
}

/* A reader looping get while a writer replaces a 1 MiB object never sees
 * a partial object. */
static void test_fs_atomic_put(void)
{
    race_t r = {.s = S};
    pthread_t th[2];
    uint8_t *data = malloc(1u << 20);
    hp_err_t err;
    memset(data, 1, gen_size(1));
    REQUIRE(hp_objstore_put(S, "race/obj", data, gen_size(1), &err) == 0);
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&th[i], NULL, reader_main, &r) == 0);
    int failed_puts = 0;
    /* go on until the readers have raced plenty of puts (bounded) */
    for (unsigned g = 2; g <= 600 && (g <= 40 || atomic_load(&r.reads) < 300); g++) {
        unsigned v = 1 + g % 250; /* the byte, and with it the size */
        memset(data, (int)v, gen_size(v));
        failed_puts += hp_objstore_put(S, "race/obj", data, gen_size(v), &err) != 0;
    }
    atomic_store(&r.done, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    free(data);
    fprintf(stderr, "  %d reads, %d whole, %d partial\n", atomic_load(&r.reads), atomic_load(&r.whole),
            atomic_load(&r.partial));
    CHECK_EQ_INT(failed_puts, 0);
    CHECK_EQ_INT(atomic_load(&r.partial), 0);
    CHECK_EQ_INT(atomic_load(&r.errors), 0);
    CHECK(atomic_load(&r.whole) > 0);
}

/* Byte order across directory boundaries: "b-c" < "b.d" < "b/c" < "b0". */
static void test_fs_list_byte_order(void)
{
    const char *keys[] = {"bo/b0", "bo/b/c", "bo/b.d", "bo/b-c", "bo/b/a/z", "bo/b/a-"};
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++)
        put_str(S, keys[i], "v");
    const char *want[] = {"bo/b-c", "bo/b.d", "bo/b/a-", "bo/b/a/z", "bo/b/c", "bo/b0"};
    check_list(S, "bo/", want, HP_ARRAY_LEN(want));
    const char *want_b[] = {"bo/b-c", "bo/b.d", "bo/b/a-", "bo/b/a/z", "bo/b/c", "bo/b0"};
    check_list(S, "bo/b", want_b, HP_ARRAY_LEN(want_b));
    const char *want_slash[] = {"bo/b/a-", "bo/b/a/z", "bo/b/c"};
    check_list(S, "bo/b/", want_slash, HP_ARRAY_LEN(want_slash));
}

/* Temporary files left by a crashed put are not objects. */
static void test_fs_temp_files_hidden(void)
{
    char path[512];
    put_str(S, "tmpf/real", "r");
    snprintf(path, sizeof(path), "%s/tmpf/.hp-tmp-abc123", fs_dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("partial", f);
    fclose(f);
    const char *want[] = {"tmpf/real"};
    check_list(S, "tmpf/", want, 1);
    unlink(path);
}

/* The files are where an operator expects them, and a delete removes
 * directories it emptied. */
static void test_fs_layout(void)
{
    char path[512];
    struct stat st;
    hp_err_t err;
    put_str(S, "lay/t1/01ABC/meta.json", "{}");
    snprintf(path, sizeof(path), "%s/lay/t1/01ABC/meta.json", fs_dir);
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 2);
    CHECK_EQ_INT(hp_objstore_delete(S, "lay/t1/01ABC/meta.json", &err), 0);
    snprintf(path, sizeof(path), "%s/lay", fs_dir);
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    CHECK(stat(fs_dir, &st) == 0);
}

/* Filesystem: byte order, a name that is a prefix of another ("t1",
 * "t10"), a directory with objects only deeper down, and a directory
 * holding only a temporary file or nothing (no prefix). */
static void test_fs_prefixes(void)
{
    const char *keys[] = {"fp/t1/a", "fp/t10/b/c", "fp/t2/d"};
    for (size_t i = 0; i < HP_ARRAY_LEN(keys); i++)
        put_str(S, keys[i], keys[i]);
    char path[512];
    snprintf(path, sizeof(path), "%s/fp/empty", fs_dir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/fp/empty/deeper", fs_dir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/fp/tmp", fs_dir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/fp/tmp/" HP__OBJSTORE_TMP_PREFIX "x", fs_dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fclose(f);
    const char *want[] = {"fp/t1/", "fp/t10/", "fp/t2/"};
    check_prefixes(S, "fp/", want, 3);
    const char *t1[] = {"fp/t1/", "fp/t10/"};
    check_prefixes(S, "fp/t1", t1, 2);
}

/* The filesystem cannot hold both "a" and "a/b": a clear error, not a
 * crash or a lost object. */
static void test_fs_file_dir_conflict(void)
{
    hp_err_t err;
    put_str(S, "cf/a", "file");
    CHECK_EQ_INT(hp_objstore_put(S, "cf/a/b", "x", 1, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "cf/a/b") != NULL);
    put_str(S, "cf2/a/b", "file");
    CHECK(hp_objstore_put(S, "cf2/a", "x", 1, &err) != 0);
    CHECK(strstr(err.msg, "cf2/a") != NULL);
    check_get(S, "cf/a", "file");
    check_get(S, "cf2/a/b", "file");
}

static void test_config_errors(void)
{
    hp_objstore_t *s = NULL;
    hp_err_t err;
    hp_objstore_config_t c = {.backend = "gcs"};
    CHECK_EQ_INT(hp_objstore_new(&c, &s, &err), HP_EINVAL);
    CHECK(s == NULL && strstr(err.msg, "\"gcs\"") != NULL);
    c.backend = NULL;
    CHECK_EQ_INT(hp_objstore_new(&c, &s, &err), HP_EINVAL);
    c.backend = "filesystem";
    CHECK_EQ_INT(hp_objstore_new(&c, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "dir") != NULL);
    c.filesystem.dir = "/proc/hotpath-cannot-be-here";
    CHECK_EQ_INT(hp_objstore_new(&c, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "/proc/hotpath-cannot-be-here") != NULL);

    hp_objstore_config_t s3 = {.backend = "s3",
                               .s3 = {.endpoint = "http://127.0.0.1:9",
                                      .bucket = "hotpath",
                                      .access_key_id = "AKID",
                                      .secret_access_key = SECRET}};
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "insecure") != NULL);
    s3.s3.insecure = true;
    s3.s3.bucket = "Bad_Bucket";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "Bad_Bucket") != NULL);
    s3.s3.bucket = "hotpath";
    s3.s3.endpoint = "http://AKID:" SECRET "@127.0.0.1:9";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, SECRET) == NULL && strstr(err.msg, "credentials") != NULL);
    s3.s3.endpoint = "ftp://127.0.0.1:9";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    s3.s3.endpoint = "http://127.0.0.1:9";
    s3.s3.secret_access_key = "";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "secret_access_key") != NULL);
    s3.s3.secret_access_key = SECRET;
    s3.s3.region = "eu-west-1:evil";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), HP_EINVAL);
    s3.s3.region = "eu-west-1";
    CHECK_EQ_INT(hp_objstore_new(&s3, &s, &err), 0);
    REQUIRE(s != NULL);

    hp_buf_t d = HP_BUF_INIT;
    hp_objstore_describe(s, &d);
    const char *txt = hp_buf_cstr(&d);
    CHECK(strstr(txt, "backend: s3\n") != NULL);
    CHECK(strstr(txt, "secret_access_key: \"********\"") != NULL);
    CHECK(strstr(txt, "region: \"eu-west-1\"") != NULL);
    CHECK(strstr(txt, "max_retries: 5") != NULL);
    CHECK(strstr(txt, SECRET) == NULL);
    hp_buf_fini(&d);
    hp_objstore_free(s);
    hp_objstore_free(NULL);
}

static void test_fs_describe(void)
{
    hp_buf_t d = HP_BUF_INIT;
    hp_objstore_describe(S, &d);
    char want[400];
    snprintf(want, sizeof(want), "backend: filesystem\nfilesystem:\n  dir: \"%s\"\n", fs_dir);
    CHECK_EQ_STR(hp_buf_cstr(&d), want);
    hp_buf_fini(&d);
}

typedef struct worker {
    hp_objstore_t *s;
    int id;
    atomic_int *bad;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char key[64], val[64];
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "conc/w%d/%03d", w->id, i);
        snprintf(val, sizeof(val), "value %d %d", w->id, i);
        if (hp_objstore_put(w->s, key, val, strlen(val), &err) != 0 ||
            hp_objstore_get(w->s, key, &b, 100, &err) != 0 || b.len != strlen(val) ||
            memcmp(b.data, val, b.len) != 0 || (i % 2 == 0 && hp_objstore_delete(w->s, key, &err) != 0))
            atomic_fetch_add(w->bad, 1);
    }
    hp_buf_fini(&b);
    return NULL;
}

/* Threads writing, reading and deleting their own keys side by side. */
static void test_concurrent_keys(void)
{
    atomic_int bad = 0;
    worker_t w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){S, i, &bad};
        REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&bad), 0);
    listed_t l = {0};
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_list(S, "conc/", collect, &l, &err), 0);
    CHECK_EQ_INT(l.n, 4 * 25);
    listed_free(&l);
}

/* ---- the S3 XML scanner ----------------------------------------------------- */

static void test_xml_decode(void)
{
    hp_buf_t b = HP_BUF_INIT;
    const char *in = "a&amp;b&lt;c&gt;d&quot;e&apos;f&#65;&#x42;&#x1F600;";
    CHECK(hp__xml_decode(in, strlen(in), &b));
    CHECK_EQ_STR(hp_buf_cstr(&b), "a&b<c>d\"e'fAB\xf0\x9f\x98\x80");
    const char *bad[] = {"&bogus;",  "&",   "x&amp", "&#0;",   "&#x110000;",
                         "&#xD800;", "&#;", "&#x;",  "&#12a;", "&#99999999999;"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        hp_buf_reset(&b);
        CHECK(!hp__xml_decode(bad[i], strlen(bad[i]), &b));
    }
    hp_buf_fini(&b);
}

static void test_xml_list_page(void)
{
    const char *xml =
        "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"x\"><Name>b</Name>"
        "<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
        "<Contents><Key>p/a%26b+c</Key><Size>12</Size></Contents>"
        "<Contents><Key>p/%F0%9F%98%80</Key><LastModified>x</LastModified><Size>0</Size></Contents>"
        "<NextContinuationToken>t&amp;1/+=</NextContinuationToken></ListBucketResult>";
    hp__s3_list_page_t p = {0};
    hp_err_t err;
    CHECK_EQ_INT(hp__s3_list_parse(xml, strlen(xml), &p, &err), 0);
    REQUIRE(p.count == 2);
    CHECK_EQ_STR((const char *)p.keys.data + p.offs[0], "p/a&b c");
    CHECK_EQ_INT(p.sizes[0], 12);
    CHECK_EQ_STR((const char *)p.keys.data + p.offs[1], "p/\xf0\x9f\x98\x80");
    CHECK(p.truncated);
    CHECK_EQ_STR((const char *)p.token.data, "t&1/+=");
    hp__s3_list_page_fini(&p);

    const char *bad[] = {
        "<Error/>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size></Contents></"
        "ListBucketResult>",
        "<ListBucketResult><Contents><Key>k&zz;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00b</Key><Size>1</Size></"
        "Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%4</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        hp__s3_list_page_t q = {0};
        CHECK_EQ_INT(hp__s3_list_parse(bad[i], strlen(bad[i]), &q, &err), HP_EINVAL);
        hp__s3_list_page_fini(&q);
    }
    /* an unclosed element is simply not there: every scan ends at the input's end */
    const char *cut = "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Conte";
    hp__s3_list_page_t q = {0};
    CHECK_EQ_INT(hp__s3_list_parse(cut, strlen(cut), &q, &err), 0);
    CHECK_EQ_INT(q.count, 0);
    hp__s3_list_page_fini(&q);
}

static void test_xml_error_text(void)
{
    char buf[128];
    const char *xml =
        "<Error><Code>NoSuchKey</Code><Message>The key &lt;x&gt; does not exist</Message></Error>";
    hp__s3_error_text(xml, strlen(xml), buf, sizeof(buf));
    CHECK_EQ_STR(buf, "NoSuchKey: The key <x> does not exist");
    hp__s3_error_text("<Error><Code>SlowDown</Code></Error>", 36, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "SlowDown");
    hp__s3_error_text("not xml", 7, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "");
    hp__s3_error_text(NULL, 0, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "");
}

/* ---- a scripted HTTP server for the S3 engine -------------------------------- */

#define HANG "hang" /* read the request, answer nothing */
#define FAKE_MAX 8

/* Answers its script's responses to successive connections (one request
 * each), records the requests, then closes its listening socket, so later
 * connections are refused. */
typedef struct fake {
    int lfd, port;
    const char *script[FAKE_MAX];
    size_t n;
    pthread_t th;
    atomic_int served;
    hp_buf_t reqs[FAKE_MAX]; /* each request: head and body */
} fake_t;

/* Reads one request (head + Content-Length body) from fd into b. */
static void read_request(int fd, hp_buf_t *b)
{
    char chunk[65536];
    size_t want = SIZE_MAX;
    while (b->len < want && b->len < (16u << 20)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return;
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r <= 0)
            return;
        hp_buf_append(b, chunk, (size_t)r);
        const char *end = memmem(b->data, b->len, "\r\n\r\n", 4);
        if (end && want == SIZE_MAX) {
            size_t head = (size_t)(end - (const char *)b->data) + 4;
            const char *cl = strcasestr(hp_buf_cstr(b), "\r\ncontent-length:");
            want = head + (cl && cl < end ? strtoull(cl + 17, NULL, 10) : 0);
        }
    }
}

/* Waits (bounded) until the client closes the connection. */
static void wait_close(int fd, int ms)
{
    char c[4096];
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, ms) > 0 && recv(fd, c, sizeof(c), 0) > 0)
        ;
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    for (size_t i = 0; i < f->n; i++) {
        struct pollfd p = {f->lfd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            break;
        read_request(fd, &f->reqs[i]);
        atomic_fetch_add(&f->served, 1);
        if (strcmp(f->script[i], HANG) != 0) {
            send(fd, f->script[i], strlen(f->script[i]), MSG_NOSIGNAL);
            shutdown(fd, SHUT_WR);
        }
        wait_close(fd, strcmp(f->script[i], HANG) == 0 ? 5000 : 200);
        close(fd);
    }
    close(f->lfd);
    return NULL;
}

/* Starts a fake server answering the NULL-terminated responses. */
static void fake_start(fake_t *f, const char *const *script)
{
    memset(f, 0, sizeof(*f));
    while (script[f->n] && f->n < FAKE_MAX)
        f->script[f->n] = script[f->n], f->n++;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(f->lfd >= 0 && bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(f->lfd, 8) == 0);
    REQUIRE(getsockname(f->lfd, (struct sockaddr *)&a, &al) == 0);
    f->port = ntohs(a.sin_port);
    REQUIRE(pthread_create(&f->th, NULL, fake_main, f) == 0);
}

/* Waits until the server has played its script and closed. */
static void fake_stop(fake_t *f)
{
    pthread_join(f->th, NULL);
}

/* Frees the recorded requests. */
static void fake_free(fake_t *f)
{
    for (size_t i = 0; i < FAKE_MAX; i++)
        hp_buf_fini(&f->reqs[i]);
}

/* The request the fake server got as request number i, as a C string. */
static const char *fake_req(fake_t *f, size_t i)
{
    return hp_buf_cstr(&f->reqs[i]);
}

/* An HTTP/1.1 response with body (static storage, one per slot). */
static const char *resp(int slot, const char *status, const char *headers, const char *body)
{
    static char bufs[FAKE_MAX][4096];
    snprintf(bufs[slot], sizeof(bufs[slot]),
             "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status, strlen(body),
             headers, body);
    return bufs[slot];
}

static hp_objstore_t *new_fake_s3(int port, int max_retries, int64_t timeout_ms, bool path_style)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "http://%s:%d", path_style ? "127.0.0.1" : "localhost", port);
    hp_objstore_config_t cfg = {.backend = "s3",
                                .s3 = {.endpoint = ep,
                                       .bucket = "hotpath",
                                       .access_key_id = "AKIDEXAMPLE",
                                       .secret_access_key = SECRET,
                                       .path_style = path_style,
                                       .insecure = true,
                                       .timeout_ms = timeout_ms,
                                       .max_retries = max_retries,
                                       .min_backoff_ms = 1,
                                       .max_backoff_ms = 5}};
    hp_objstore_t *s = NULL;
    hp_err_t err;
    if (hp_objstore_new(&cfg, &s, &err) != 0)
        fprintf(stderr, "  new: %s\n", err.msg);
    return s;
}

#define SLOWDOWN "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

/* 503 twice, then the server is gone: the call gives up after
 * max_retries and says how many attempts it made. */
static void test_s3_retry_gives_up(void)
{
    fake_t f;
    const char *script[] = {resp(0, "503 Slow Down", "", SLOWDOWN), resp(1, "503 Slow Down", "", SLOWDOWN),
                            NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 3, 2000, true);
    REQUIRE(s != NULL);
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_get(s, "blk/meta.json", &b, 100, &err), HP_EUNAVAIL);
    fprintf(stderr, "  error: %s\n", err.msg);
    CHECK(strstr(err.msg, "after 4 attempts") != NULL);
    CHECK(strstr(err.msg, "blk/meta.json") != NULL);
    CHECK(strstr(err.msg, SECRET) == NULL);
    fake_stop(&f);
    CHECK_EQ_INT(atomic_load(&f.served), 2);
    hp_buf_fini(&b);
    hp_objstore_free(s);
    fake_free(&f);
}

/* The answer after a 503 counts; and with retries off one 503 is final. */
static void test_s3_retry_recovers(void)
{
    fake_t f;
    const char *script[] = {resp(0, "503 Slow Down", "", SLOWDOWN), resp(1, "200 OK", "", "hello"), NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, true);
    REQUIRE(s != NULL);
    check_get(s, "k", "hello");
    fake_stop(&f);
    CHECK_EQ_INT(atomic_load(&f.served), 2);
    hp_objstore_free(s);
    fake_free(&f);

    const char *once[] = {resp(0, "503 Slow Down", "", SLOWDOWN), NULL};
    fake_start(&f, once);
    s = new_fake_s3(f.port, -1, 2000, true);
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_get(s, "k", &b, 100, &err), HP_EUNAVAIL);
    CHECK(strstr(err.msg, "after 1 attempt:") != NULL &&
          strstr(err.msg, "HTTP 503 (SlowDown: Please") != NULL);
    fake_stop(&f);
    hp_buf_fini(&b);
    hp_objstore_free(s);
    fake_free(&f);
}

/* A 4xx is final: one request, the status and S3's code and message in
 * the error, and the secret masked even when the server echoes it. */
static void test_s3_no_retry_on_4xx(void)
{
    fake_t f;
    const char *script[] = {resp(0, "403 Forbidden", "",
                                 "<Error><Code>AccessDenied</Code><Message>Access Denied for " SECRET
                                 "</Message></Error>"),
                            NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 3, 2000, true);
    REQUIRE(s != NULL);
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_put(s, "a/b", "x", 1, &err), HP_EINTERNAL);
    fprintf(stderr, "  error: %s\n", err.msg);
    CHECK(strstr(err.msg, "HTTP 403") != NULL && strstr(err.msg, "AccessDenied") != NULL);
    CHECK(strstr(err.msg, "\"a/b\"") != NULL && strstr(err.msg, "put") != NULL);
    CHECK(strstr(err.msg, SECRET) == NULL && strstr(err.msg, "********") != NULL);
    fake_stop(&f);
    CHECK_EQ_INT(atomic_load(&f.served), 1);
    hp_objstore_free(s);
    fake_free(&f);
}

/* A server that never answers: each attempt times out. */
static void test_s3_timeout(void)
{
    fake_t f;
    const char *script[] = {HANG, HANG, NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 1, 300, true);
    REQUIRE(s != NULL);
    bool yes;
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_exists(s, "slow", &yes, &err), HP_ETIMEDOUT);
    CHECK(strstr(err.msg, "after 2 attempts") != NULL);
    fake_stop(&f);
    CHECK_EQ_INT(atomic_load(&f.served), 2);
    hp_objstore_free(s);
    fake_free(&f);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t md[32];
    SHA256(p, n, md);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* The value of header name in raw request r (trimmed) into out; false
 * when absent. */
static bool find_header(const char *r, const char *name, char *out, size_t n)
{
    size_t ln = strlen(name);
    const char *end = strstr(r, "\r\n\r\n");
    for (const char *l = strstr(r, "\r\n"); l && end && l < end; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, ln) != 0 || l[2 + ln] != ':')
            continue;
        const char *v = l + 3 + ln, *e = strstr(v, "\r\n");
        while (*v == ' ')
            v++;
        snprintf(out, n, "%.*s", (int)(e - v), v);
        return true;
    }
    return false;
}

/* Copies the Authorization field name ("Credential=", …) into out. */
static bool auth_field(const char *auth, const char *name, char *out, size_t n)
{
    const char *p = strstr(auth, name);
    if (p == NULL)
        return false;
    p += strlen(name);
    snprintf(out, n, "%.*s", (int)strcspn(p, ", "), p);
    return true;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The canonical request of raw request r as S3 builds it for SigV4. */
static void canonical_request(const char *r, const char *signed_headers, hp_buf_t *out)
{
    const char *sp1 = strchr(r, ' '), *sp2 = strchr(sp1 + 1, ' ');
    char target[2048], *params[64] = {0}, val[1024], hash[80];
    snprintf(target, sizeof(target), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
    char *query = strchr(target, '?');
    size_t np = 0;
    if (query) {
        *query++ = '\0';
        for (char *t = strtok(query, "&"); t && np < 64; t = strtok(NULL, "&"))
            params[np++] = t;
        qsort(params, np, sizeof(*params), str_cmp);
    }
    hp_buf_printf(out, "%.*s\n%s\n", (int)(sp1 - r), r, target);
    for (size_t i = 0; i < np; i++)
        hp_buf_printf(out, "%s%s", i ? "&" : "", params[i]);
    hp_buf_putc(out, '\n');
    char names[512];
    snprintf(names, sizeof(names), "%s", signed_headers);
    for (char *h = strtok(names, ";"); h; h = strtok(NULL, ";"))
        hp_buf_printf(out, "%s:%s\n", h, find_header(r, h, val, sizeof(val)) ? val : "<missing>");
    find_header(r, "x-amz-content-sha256", hash, sizeof(hash));
    hp_buf_printf(out, "\n%s\n%s", signed_headers, hash);
}

/* Recomputes the SigV4 signature of raw request r with secret, as S3
 * does, and compares it with the one sent. */
static bool sigv4_ok(const char *r, const char *secret)
{
    char auth[1024], cred[256], signed_h[512], sig[80], date[32], hex[65], key[300];
    if (!find_header(r, "Authorization", auth, sizeof(auth)) ||
        !auth_field(auth, "Credential=", cred, sizeof(cred)) ||
        !auth_field(auth, "SignedHeaders=", signed_h, sizeof(signed_h)) ||
        !auth_field(auth, "Signature=", sig, sizeof(sig)) ||
        !find_header(r, "x-amz-date", date, sizeof(date)))
        return false;
    hp_buf_t creq = HP_BUF_INIT, sts = HP_BUF_INIT;
    canonical_request(r, signed_h, &creq);
    sha256_hex(creq.data, creq.len, hex);
    const char *scope = strchr(cred, '/') + 1;
    hp_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope, hex);
    uint8_t k[32];
    unsigned kl = (unsigned)snprintf(key, sizeof(key), "AWS4%s", secret);
    HMAC(EVP_sha256(), key, (int)kl, (const uint8_t *)scope, strcspn(scope, "/"), k, &kl);
    for (const char *part = strchr(scope, '/') + 1; part;
         part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL)
        HMAC(EVP_sha256(), k, 32, (const uint8_t *)part, strcspn(part, "/"), k, &kl);
    HMAC(EVP_sha256(), k, 32, sts.data, sts.len, k, &kl);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", k[i]);
    hp_buf_fini(&creq);
    hp_buf_fini(&sts);
    return strcmp(hex, sig) == 0;
}

/* A PUT: the path is the encoded key, the payload hash is sent and
 * signed, the body arrives whole. */
static void test_s3_put_request(void)
{
    fake_t f;
    const char *script[] = {resp(0, "200 OK", "", ""), NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, true);
    REQUIRE(s != NULL);
    const char *body = "profile bytes \x01\x02";
    put_str(s, "t1/dir/key with space+plus~\xc3\xa9", body);
    fake_stop(&f);
    const char *r = fake_req(&f, 0);
    char hex[65], line[128];
    sha256_hex(body, strlen(body), hex);
    snprintf(line, sizeof(line), "\r\nx-amz-content-sha256: %s\r\n", hex);
    CHECK(STARTS(r, "PUT /hotpath/t1/dir/key%20with%20space%2Bplus~%C3%A9 HTTP/1.1\r\n"));
    CHECK(strstr(r, line) != NULL);
    CHECK(strstr(r, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") != NULL);
    CHECK(strstr(r, "/us-east-1/s3/aws4_request") != NULL);
    const char *signed_h = strstr(r, "SignedHeaders=");
    CHECK(signed_h != NULL && strstr(signed_h, "x-amz-content-sha256") != NULL);
    CHECK(strstr(r, SECRET) == NULL);
    CHECK(sigv4_ok(r, SECRET));
    CHECK(!sigv4_ok(r, "another secret"));
    const char *end = strstr(r, "\r\n\r\n");
    CHECK(end != NULL && strcmp(end + 4, body) == 0);
    hp_objstore_free(s);
    fake_free(&f);
}

/* Virtual-host style: the bucket is in the Host, the key is the path. */
static void test_s3_virtual_host(void)
{
    fake_t f;
    const char *script[] = {resp(0, "200 OK", "", "v"), NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, false);
    REQUIRE(s != NULL);
    check_get(s, "a/b", "v");
    fake_stop(&f);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: hotpath.localhost:%d\r\n", f.port);
    CHECK(STARTS(fake_req(&f, 0), "GET /a/b HTTP/1.1\r\n"));
    CHECK(strstr(fake_req(&f, 0), host) != NULL);
    CHECK(sigv4_ok(fake_req(&f, 0), SECRET));
    hp_objstore_free(s);
    fake_free(&f);
}

/* Two pages joined by a continuation token, sent back exactly. */
static void test_s3_list_pages(void)
{
    fake_t f;
    const char *script[] = {
        resp(0, "200 OK", "",
             "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b</Key><Size>3</Size>"
             "</Contents><NextContinuationToken>tok/1+=</NextContinuationToken></ListBucketResult>"),
        resp(1, "200 OK", "",
             "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>p/z</Key><Size>0</Size>"
             "</Contents></ListBucketResult>"),
        NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, true);
    REQUIRE(s != NULL);
    const char *want[] = {"p/a&b", "p/z"};
    check_list(s, "p/", want, 2);
    fake_stop(&f);
    CHECK(STARTS(fake_req(&f, 0), "GET /hotpath?encoding-type=url&list-type=2&max-keys=1000&prefix=p%2F "));
    CHECK(STARTS(fake_req(&f, 1),
                 "GET /hotpath?continuation-token=tok%2F1%2B%3D&encoding-type=url&list-type=2&max-keys=1000"
                 "&prefix=p%2F "));
    CHECK(sigv4_ok(fake_req(&f, 0), SECRET) && sigv4_ok(fake_req(&f, 1), SECRET));
    hp_objstore_free(s);
    fake_free(&f);
}

/* list_prefixes asks with delimiter=/ and follows continuation pages,
 * taking <CommonPrefixes> and ignoring <Contents>. */
static void test_s3_list_prefixes_pages(void)
{
    fake_t f;
    const char *script[] = {
        resp(0, "200 OK", "",
             "<ListBucketResult><Prefix>p/</Prefix><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
             "<Contents><Key>p/file</Key><Size>3</Size></Contents>"
             "<CommonPrefixes><Prefix>p/a%26b/</Prefix></CommonPrefixes>"
             "<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"),
        resp(1, "200 OK", "",
             "<ListBucketResult><IsTruncated>false</IsTruncated><CommonPrefixes><Prefix>p/z/</Prefix>"
             "</CommonPrefixes><CommonPrefixes><Prefix>p/zz/</Prefix></CommonPrefixes></ListBucketResult>"),
        resp(2, "200 OK", "", "<ListBucketResult><CommonPrefixes><Nope/></CommonPrefixes></ListBucketResult>"),
        NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, true);
    REQUIRE(s != NULL);
    const char *want[] = {"p/a&b/", "p/z/", "p/zz/"};
    listed_t l = {0};
    hp_err_t err;
    CHECK_EQ_INT(hp_objstore_list_prefixes(s, "p/", collect, &l, &err), 0);
    CHECK_EQ_INT(l.n, 3);
    for (size_t i = 0; i < 3 && i < l.n; i++)
        CHECK_EQ_STR(l.keys[i], want[i]);
    listed_free(&l);
    CHECK_EQ_INT(hp_objstore_list_prefixes(s, "p/", collect, &l, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "<Prefix>") != NULL);
    listed_free(&l);
    fake_stop(&f);
    CHECK(STARTS(fake_req(&f, 0),
                 "GET /hotpath?delimiter=%2F&encoding-type=url&list-type=2&max-keys=1000&prefix=p%2F "));
    CHECK(STARTS(fake_req(&f, 1), "GET /hotpath?continuation-token=tok&delimiter=%2F&encoding-type=url"));
    CHECK(sigv4_ok(fake_req(&f, 0), SECRET) && sigv4_ok(fake_req(&f, 1), SECRET));
    hp_objstore_free(s);
    fake_free(&f);
}

/* A server that says "truncated" without a token, or repeats its token,
 * cannot make the listing loop. */
static void test_s3_list_bad_pages(void)
{
    fake_t f;
    const char *page = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>same"
                       "</NextContinuationToken></ListBucketResult>";
    const char *script[] = {
        resp(0, "200 OK", "", "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
        resp(1, "200 OK", "", page), resp(2, "200 OK", "", page), resp(3, "200 OK", "", "<html>oops</html>"),
        NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 0, 2000, true);
    REQUIRE(s != NULL);
    hp_err_t err;
    listed_t l = {0};
    CHECK_EQ_INT(hp_objstore_list(s, "", collect, &l, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "NextContinuationToken") != NULL);
    CHECK_EQ_INT(hp_objstore_list(s, "", collect, &l, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "repeated") != NULL);
    CHECK_EQ_INT(hp_objstore_list(s, "", collect, &l, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "ListBucketResult") != NULL);
    fake_stop(&f);
    listed_free(&l);
    hp_objstore_free(s);
    fake_free(&f);
}

/* Limits are enforced from Content-Length, before the body; a server that
 * ignores Range is not taken at its word. */
static void test_s3_bounds(void)
{
    static char big[1001];
    memset(big, 'b', 1000);
    fake_t f;
    const char *script[] = {resp(0, "200 OK", "", big),
                            resp(1, "200 OK", "", "0123456789"),
                            resp(2, "404 Not Found", "", "<Error><Code>NoSuchKey</Code></Error>"),
                            resp(3, "404 Not Found", "", ""),
                            resp(4, "200 OK", "", ""),
                            NULL};
    fake_start(&f, script);
    hp_objstore_t *s = new_fake_s3(f.port, 3, 2000, true);
    REQUIRE(s != NULL);
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    bool yes = true;
    CHECK_EQ_INT(hp_objstore_get(s, "big", &b, 10, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "1000 bytes, more than the 10 allowed") != NULL);
    CHECK_EQ_INT(hp_objstore_get_range(s, "r", 2, 3, &b, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "ignored the Range") != NULL);
    CHECK_EQ_INT(hp_objstore_delete(s, "gone", &err), 0);
    CHECK_EQ_INT(hp_objstore_exists(s, "gone", &yes, &err), 0);
    CHECK(!yes);
    CHECK_EQ_INT(hp_objstore_exists(s, "here", &yes, &err), 0);
    CHECK(yes);
    fake_stop(&f);
    CHECK_EQ_INT(atomic_load(&f.served), 5);
    CHECK(strstr(fake_req(&f, 1), "\r\nRange: bytes=2-4\r\n") != NULL);
    CHECK(STARTS(fake_req(&f, 2), "DELETE /hotpath/gone "));
    CHECK(STARTS(fake_req(&f, 3), "HEAD /hotpath/gone "));
    for (int i = 0; i < 5; i++)
        CHECK(sigv4_ok(fake_req(&f, i), SECRET));
    hp_buf_fini(&b);
    hp_objstore_free(s);
    fake_free(&f);
}

/* ---- a real S3 server: s3rver ------------------------------------------------ */

/* tests/tools/s3rver/install and serve.js: the same server the
 * integration tests use. */
static char s3rver_tools[512];

typedef struct s3rver {
    pid_t pid;
    int stdin_w; /* closing it stops the server */
    int port;
    char dir[256];
    char module[600];
} s3rver_t;

static s3rver_t srv = {.pid = -1, .stdin_w = -1};

static bool s3rver_install(void)
{
    const char *src = getenv("HP_SOURCE_DIR");
    snprintf(s3rver_tools, sizeof(s3rver_tools), "%s/tests/tools/s3rver", src ? src : ".");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "'%s/install'", s3rver_tools);
    FILE *p = popen(cmd, "r");
    bool ok = p != NULL && fgets(srv.module, sizeof(srv.module), p) != NULL;
    int rc = p ? pclose(p) : -1;
    srv.module[strcspn(srv.module, "\n")] = '\0';
    if (!ok || rc != 0 || srv.module[0] == '\0') {
        fprintf(stderr, "  FAILED to install s3rver with %s (exit %d): the S3 backend was not tested\n", cmd,
                WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
        return false;
    }
    return true;
}

/* Reads "PORT n" from fd within a bounded wait. */
static int read_port(int fd)
{
    char line[64];
    size_t n = 0;
    int64_t deadline = hp_mono_ms() + 30000;
    while (n < sizeof(line) - 1 && hp_mono_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        line[n] = '\0';
        if (strchr(line, '\n'))
            return STARTS(line, "PORT ") ? atoi(line + 5) : -1;
    }
    return -1;
}

static bool s3rver_spawn(void)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        return false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char script[600];
    snprintf(script, sizeof(script), "%s/serve.js", s3rver_tools);
    char *argv[] = {"node", "--openssl-legacy-provider", script, srv.module, srv.dir, NULL};
    int rc = posix_spawnp(&srv.pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    srv.stdin_w = in[1];
    if (rc != 0) {
        fprintf(stderr, "  FAILED to start node: %s\n", strerror(rc));
        srv.pid = -1;
        close(out[0]);
        return false;
    }
    srv.port = read_port(out[0]);
    close(out[0]);
    return srv.port > 0;
}

static void s3rver_stop(void)
{
    if (srv.stdin_w >= 0)
        close(srv.stdin_w);
    srv.stdin_w = -1;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        int status, waited = 0;
        while (waitpid(srv.pid, &status, WNOHANG) == 0 && waited++ < 100)
            usleep(50000);
        if (waited > 100) {
            kill(srv.pid, SIGKILL);
            waitpid(srv.pid, &status, 0);
        }
    }
    srv.pid = -1;
    if (srv.dir[0])
        rm_tree(srv.dir);
}

/* Installs (first run) and starts s3rver, and opens the store on it. */
static void test_s3rver_start(void)
{
    REQUIRE(s3rver_install());
    make_temp_dir(srv.dir, sizeof(srv.dir), "s3rver");
    bool up = s3rver_spawn();
    if (!up)
        fprintf(stderr, "  FAILED: s3rver did not start (module %s)\n", srv.module);
    REQUIRE(up);
    fprintf(stderr, "  s3rver on 127.0.0.1:%d\n", srv.port);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", srv.port);
    hp_objstore_config_t cfg = {.backend = "s3",
                                .s3 = {.endpoint = ep,
                                       .bucket = "hotpath",
                                       .access_key_id = "S3RVER",
                                       .secret_access_key = "S3RVER",
                                       .path_style = true,
                                       .insecure = true,
                                       .timeout_ms = 20000}};
    hp_err_t err;
    if (hp_objstore_new(&cfg, &S, &err) != 0)
        fprintf(stderr, "  new: %s\n", err.msg);
    REQUIRE(S != NULL);
    bool yes = true;
    CHECK_EQ_INT(hp_objstore_exists(S, "not/there", &yes, &err), 0);
    CHECK(!yes);
}

/* A bucket that does not exist is named in the error, not "not found". */
static void test_s3rver_no_bucket(void)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", srv.port);
    hp_objstore_config_t cfg = {.backend = "s3",
                                .s3 = {.endpoint = ep,
                                       .bucket = "no-such-bucket",
                                       .access_key_id = "S3RVER",
                                       .secret_access_key = "S3RVER",
                                       .path_style = true,
                                       .insecure = true}};
    hp_objstore_t *s = NULL;
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    REQUIRE(hp_objstore_new(&cfg, &s, &err) == 0);
    CHECK_EQ_INT(hp_objstore_get(s, "k", &b, 10, &err), HP_EINTERNAL);
    CHECK(strstr(err.msg, "bucket \"no-such-bucket\" does not exist") != NULL);
    CHECK(hp_objstore_put(s, "k", "v", 1, &err) != 0);
    listed_t l = {0};
    CHECK(hp_objstore_list(s, "", collect, &l, &err) != 0);
    listed_free(&l);
    hp_buf_fini(&b);
    hp_objstore_free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    HP_RUN(test_config_errors);
    HP_RUN(test_xml_decode);
    HP_RUN(test_xml_list_page);
    HP_RUN(test_xml_error_text);

    snprintf(fs_dir, sizeof(fs_dir), "/tmp/hp-objstore-fs-%d-%lld/root", getpid(), (long long)hp_now_ns());
    S = new_fs(fs_dir);
    if (S == NULL) {
        fprintf(stderr, "cannot open a filesystem store in %s\n", fs_dir);
        return 1;
    }
    run_suite("filesystem");
    HP_RUN(test_fs_atomic_put);
    HP_RUN(test_fs_list_byte_order);
    HP_RUN(test_fs_temp_files_hidden);
    HP_RUN(test_fs_layout);
    HP_RUN(test_fs_prefixes);
    HP_RUN(test_fs_file_dir_conflict);
    HP_RUN(test_concurrent_keys);
    HP_RUN(test_fs_describe);
    hp_objstore_free(S);
    S = NULL;
    *strrchr(fs_dir, '/') = '\0';
    rm_tree(fs_dir);

    HP_RUN(test_s3_retry_gives_up);
    HP_RUN(test_s3_retry_recovers);
    HP_RUN(test_s3_no_retry_on_4xx);
    HP_RUN(test_s3_timeout);
    HP_RUN(test_s3_put_request);
    HP_RUN(test_s3_virtual_host);
    HP_RUN(test_s3_list_pages);
    HP_RUN(test_s3_list_bad_pages);
    HP_RUN(test_s3_list_prefixes_pages);
    HP_RUN(test_s3_bounds);

    HP_RUN(test_s3rver_start);
    if (S != NULL) {
        run_suite("s3 (s3rver)");
        HP_RUN(test_concurrent_keys);
        HP_RUN(test_s3rver_no_bucket);
    }
    hp_objstore_free(S);
    s3rver_stop();
    return hp_test_done();
}
