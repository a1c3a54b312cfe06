/* Unit tests for labels: sets, fingerprints, format, validation, app names. */
#include "hotpath/labels.h"
#include "test.h"

/* A NUL-terminated copy of a slice, in a small rotating static pool. */
static const char *cs(hp_str_t s)
{
    static char pool[8][512];
    static int k;
    char *b = pool[k++ & 7];
    if (s.p == NULL)
        return "(absent)";
    snprintf(b, 512, "%.*s", (int)s.n, s.p);
    return b;
}

static void add(hp_labels_t *ls, const char *n, const char *v)
{
    hp_labels_add(ls, hp_str_c(n), hp_str_c(v));
}

static const char *fmt(const hp_labels_t *ls)
{
    static hp_buf_t b;
    hp_buf_reset(&b);
    hp_labels_format(ls, &b);
    return hp_buf_cstr(&b);
}

static void test_sort_set_del_get(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    add(&ls, "service_name", "svc");
    add(&ls, "b", "2");
    add(&ls, "__name__", "cpu");
    add(&ls, "a", "1");
    add(&ls, "ab", "3");
    hp_labels_sort(&ls);
    CHECK_EQ_STR(fmt(&ls), "{__name__=\"cpu\", a=\"1\", ab=\"3\", b=\"2\", service_name=\"svc\"}");
    CHECK_EQ_STR(cs(hp_labels_get(&ls, "ab")), "3");
    CHECK(hp_labels_get(&ls, "zz").p == NULL);
    CHECK(hp_labels_get(&ls, "a_").p == NULL);

    hp_labels_set(&ls, HP_STR("b"), HP_STR("22"));
    CHECK_EQ_INT(ls.n, 5);
    CHECK_EQ_STR(cs(hp_labels_get(&ls, "b")), "22");
    hp_labels_set(&ls, HP_STR("c"), HP_STR("new"));
    CHECK_EQ_INT(ls.n, 6);
    CHECK_EQ_STR(cs(hp_labels_get(&ls, "c")), "new");

    hp_labels_del(&ls, "a");
    CHECK_EQ_INT(ls.n, 5);
    CHECK(hp_labels_get(&ls, "a").p == NULL);
    CHECK_EQ_STR(cs(hp_labels_get(&ls, "ab")), "3"); /* prefix not removed */
    hp_labels_del(&ls, "nope");
    CHECK_EQ_INT(ls.n, 5);

    /* del removes every pair of that name */
    add(&ls, "dup", "x");
    add(&ls, "dup", "y");
    hp_labels_del(&ls, "dup");
    CHECK_EQ_INT(ls.n, 5);
    hp_labels_sort(&ls);
    CHECK_EQ_STR(fmt(&ls), "{__name__=\"cpu\", ab=\"3\", b=\"22\", c=\"new\", service_name=\"svc\"}");

    /* sorting is by bytes, so a shorter prefix sorts first */
    hp_labels_reset(&ls);
    CHECK_EQ_INT(ls.n, 0);
    add(&ls, "b", "1");
    add(&ls, "a", "1");
    add(&ls, "ba", "1");
    add(&ls, "B", "1");
    hp_labels_sort(&ls);
    CHECK_EQ_STR(fmt(&ls), "{B=\"1\", a=\"1\", b=\"1\", ba=\"1\"}");
    hp_labels_fini(&ls);
    hp_labels_fini(&ls);
}

static void test_copy_clone_equal(void)
{
    hp_labels_t a, b;
    hp_labels_init(&a);
    hp_labels_init(&b);
    char name[] = "job", value[] = "api";
    hp_labels_add(&a, hp_str_c(name), hp_str_c(value));
    add(&a, "service_name", "svc");
    hp_labels_copy(&b, &a);
    CHECK(hp_labels_equal(&a, &b));
    CHECK_EQ_INT(hp_labels_fingerprint(&a), hp_labels_fingerprint(&b));

    hp_arena_t ar;
    hp_arena_init(&ar, 0);
    hp_labels_clone(&b, &ar);
    CHECK(b.v[0].name.p != name);
    name[0] = 'X';
    value[0] = 'X';
    CHECK_EQ_STR(cs(b.v[0].name), "job");
    CHECK_EQ_STR(cs(b.v[0].value), "api");
    CHECK(!hp_labels_equal(&a, &b));

    hp_labels_t c;
    hp_labels_init(&c);
    add(&c, "Xob", "Xpi");
    CHECK(!hp_labels_equal(&a, &c)); /* different length */

    hp_arena_fini(&ar);
    hp_labels_fini(&a);
    hp_labels_fini(&b);
    hp_labels_fini(&c);
}

static uint64_t fp2(const char *n1, const char *v1, const char *n2, const char *v2)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    add(&ls, n1, v1);
    if (n2)
        add(&ls, n2, v2);
    uint64_t h = hp_labels_fingerprint(&ls);
    hp_labels_fini(&ls);
    return h;
}

static void test_fingerprint(void)
{
    /* equal sets built from different buffers */
    char n[] = "a", v[] = "bc";
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_labels_add(&ls, hp_str_c(n), hp_str_c(v));
    CHECK(hp_labels_fingerprint(&ls) == fp2("a", "bc", NULL, NULL));
    hp_labels_fini(&ls);

    /* boundaries between name and value, and between pairs, matter */
    CHECK(fp2("a", "bc", NULL, NULL) != fp2("ab", "c", NULL, NULL));
    CHECK(fp2("a", "", NULL, NULL) != fp2("", "a", NULL, NULL));
    CHECK(fp2("a", "b", "c", "d") != fp2("a", "bc", NULL, NULL));
    CHECK(fp2("a", "b", "c", "d") != fp2("a", "b", "cd", ""));
    CHECK(fp2("a", "b", "c", "d") != fp2("a", "bc", "", "d"));
    CHECK(fp2("a", "1", NULL, NULL) != fp2("a", "2", NULL, NULL));
    CHECK(fp2("x", "1", "y", "2") == fp2("x", "1", "y", "2"));

    hp_labels_t e;
    hp_labels_init(&e);
    CHECK(hp_labels_fingerprint(&e) != fp2("", "", NULL, NULL));
    hp_labels_fini(&e);
}

static void test_format(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    CHECK_EQ_STR(fmt(&ls), "{}");
    add(&ls, "a", "1");
    add(&ls, "b", "x\"y");
    CHECK_EQ_STR(fmt(&ls), "{a=\"1\", b=\"x\\\"y\"}");
    hp_labels_reset(&ls);
    add(&ls, "c", "back\\slash\nnl\ttab\x01");
    CHECK_EQ_STR(fmt(&ls), "{c=\"back\\\\slash\\nnl\\ttab\\x01\"}");
    hp_labels_reset(&ls);
    add(&ls, "u", "ünï");
    CHECK_EQ_STR(fmt(&ls), "{u=\"ünï\"}");
    hp_labels_fini(&ls);
}

static void test_sanitize(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    char orig[] = "otel.scope.name";
    hp_labels_add(&ls, hp_str_c(orig), HP_STR("x"));
    add(&ls, "process.runtime-name", "y");
    add(&ls, "already_ok", "z");
    add(&ls, "__name__", "n");
    hp_arena_t ar;
    hp_arena_init(&ar, 0);
    add(&ls, "my-label", "w");
    const char *ok_ptr = ls.v[2].name.p;
    const char *bad_ptr = ls.v[4].name.p;
    hp_labels_sanitize_names(&ls, &ar);
    CHECK_EQ_STR(cs(ls.v[0].name), "otel_scope_name");
    CHECK_EQ_STR(orig, "otel.scope.name"); /* source untouched */
    /* only '.' is rewritten, as Pyroscope does */
    CHECK_EQ_STR(cs(ls.v[1].name), "process_runtime-name");
    CHECK_EQ_STR(cs(ls.v[2].name), "already_ok");
    CHECK(ls.v[2].name.p == ok_ptr); /* valid names are not copied */
    CHECK_EQ_STR(cs(ls.v[3].name), "__name__");
    CHECK_EQ_STR(cs(ls.v[4].name), "my-label");
    CHECK(ls.v[4].name.p == bad_ptr);
    CHECK_EQ_STR(cs(ls.v[0].value), "x");

    /* ... and validation then refuses the names still invalid, saying why */
    add(&ls, "service_name", "svc");
    hp_labels_del(&ls, "process_runtime-name");
    hp_labels_sort(&ls);
    hp_err_t err;
    hp_err_clear(&err);
    CHECK_EQ_INT(hp_labels_validate(&ls, NULL, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "invalid label name 'my-label'") != NULL);
    CHECK(strstr(err.msg, "[a-zA-Z_][a-zA-Z0-9_]*") != NULL);
    hp_labels_del(&ls, "my-label");
    CHECK_EQ_INT(hp_labels_validate(&ls, NULL, &err), 0);
    hp_arena_fini(&ar);
    hp_labels_fini(&ls);
}

/* Empty values are no labels (Pyroscope's LabelsBuilder deletes them). */
static void test_del_empty(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    add(&ls, "a", "");
    add(&ls, "b", "1");
    add(&ls, "c", "");
    add(&ls, "d", "2");
    hp_labels_del_empty(&ls);
    CHECK_EQ_STR(fmt(&ls), "{b=\"1\", d=\"2\"}");
    hp_labels_fini(&ls);
}

static int validate(hp_labels_t *ls, const hp_label_limits_t *lim, hp_err_t *err)
{
    hp_err_clear(err);
    hp_labels_sort(ls);
    return hp_labels_validate(ls, lim, err);
}

static void test_validate(void)
{
    hp_label_limits_t lim = {4, 12, 10};
    hp_err_t err;
    hp_labels_t ls;
    hp_labels_init(&ls);

    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);

    add(&ls, "job", "api");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "service name is not provided") != NULL);

    add(&ls, "service_name", "");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "service name") != NULL);

    hp_labels_set(&ls, HP_STR("service_name"), HP_STR("svc"));
    CHECK_EQ_INT(validate(&ls, &lim, &err), 0);
    CHECK_EQ_INT(validate(&ls, NULL, &err), 0);

    /* name length: 12 allowed (service_name is 12), 13 refused */
    add(&ls, "abcdefghijkl", "v");
    CHECK_EQ_INT(validate(&ls, &lim, &err), 0);
    hp_labels_del(&ls, "abcdefghijkl");
    add(&ls, "abcdefghijklm", "v");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "label name too long: 13 > 12") != NULL);
    hp_labels_del(&ls, "abcdefghijklm");

    /* value length: 10 allowed, 11 refused */
    add(&ls, "v", "0123456789");
    CHECK_EQ_INT(validate(&ls, &lim, &err), 0);
    hp_labels_set(&ls, HP_STR("v"), HP_STR("0123456789A"));
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "label value too long: 11 > 10") != NULL);
    CHECK(strstr(err.msg, "'v'") != NULL);
    hp_labels_del(&ls, "v");

    /* bad names */
    const char *bad[] = {"1abc", "a-b", "a.b", "a b", ""};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        add(&ls, bad[i], "v");
        CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
        CHECK(strstr(err.msg, "invalid label name") != NULL);
        hp_labels_del(&ls, bad[i]);
    }

    /* invalid UTF-8 value */
    add(&ls, "u", "a\xff");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    hp_labels_del(&ls, "u");

    /* duplicates */
    add(&ls, "job", "other");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "duplicate label name 'job'") != NULL);
    hp_labels_del(&ls, "job");

    /* too many names: 4 allowed, 5 refused */
    add(&ls, "job", "api");
    add(&ls, "a", "1");
    add(&ls, "b", "1");
    CHECK_EQ_INT(ls.n, 4);
    CHECK_EQ_INT(validate(&ls, &lim, &err), 0);
    add(&ls, "c", "1");
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "5 label names; limit 4") != NULL);
    hp_label_limits_t nolim = {0, 0, 0};
    CHECK_EQ_INT(validate(&ls, &nolim, &err), 0);
    hp_labels_fini(&ls);
}

/* The "too long" message quotes the name: it must not read past the slice
 * (names are not NUL-terminated). Built in a buffer with no NUL after the
 * name so ASan sees any overread. */
static void test_validate_long_name_unterminated(void)
{
    hp_label_limits_t lim = {0, 12, 0};
    char *buf = malloc(13);
    memcpy(buf, "zzzzzzzzzzzzz", 13);
    hp_labels_t ls;
    hp_labels_init(&ls);
    add(&ls, "service_name", "svc");
    hp_labels_add(&ls, (hp_str_t){buf, 13}, HP_STR("v"));
    hp_err_t err;
    CHECK_EQ_INT(validate(&ls, &lim, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "label name too long: 13 > 12: 'zzzzzzzzzzzzz") != NULL);
    hp_labels_fini(&ls);
    free(buf);
}

static int parse(const char *s, hp_str_t *app, hp_labels_t *ls, hp_err_t *err)
{
    hp_labels_reset(ls);
    hp_err_clear(err);
    app->p = NULL;
    app->n = 0;
    return hp_labels_parse_app_name(hp_str_c(s), app, ls, err);
}

static void test_parse_app_name_sdk(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_str_t app;
    hp_err_t err;
    const char *node = "corpus.app{otel.scope.name=com.grafana.pyroscope/nodejs,otel.scope.version="
                       "0.6.4,process.runtime.name=nodejs,process.runtime.version=20.20.2,env=test,"
                       "region=eu-west-1,version=1.2.3}";
    REQUIRE(parse(node, &app, &ls, &err) == 0);
    CHECK_EQ_STR(cs(app), "corpus.app");
    REQUIRE(ls.n == 7);
    const char *want[7][2] = {
        {"otel.scope.name", "com.grafana.pyroscope/nodejs"},
        {"otel.scope.version", "0.6.4"},
        {"process.runtime.name", "nodejs"},
        {"process.runtime.version", "20.20.2"},
        {"env", "test"},
        {"region", "eu-west-1"},
        {"version", "1.2.3"},
    };
    for (size_t i = 0; i < 7; i++) {
        CHECK_EQ_STR(cs(ls.v[i].name), want[i][0]);
        CHECK_EQ_STR(cs(ls.v[i].value), want[i][1]);
    }

    /* Go SDK, with the reserved __session_id__ */
    const char *go = "corpus.goapp{__session_id__=5f590eb67bebce7d,env=test,otel.scope.name=com."
                     "grafana.pyroscope/go,process.runtime.name=go,process.runtime.version=go1.19.8,"
                     "region=eu-west-1}";
    REQUIRE(parse(go, &app, &ls, &err) == 0);
    CHECK_EQ_STR(cs(app), "corpus.goapp");
    REQUIRE(ls.n == 6);
    CHECK_EQ_STR(cs(ls.v[0].name), "__session_id__");
    CHECK_EQ_STR(cs(ls.v[0].value), "5f590eb67bebce7d");
    CHECK_EQ_STR(cs(ls.v[5].name), "region");
    CHECK_EQ_STR(cs(ls.v[5].value), "eu-west-1");
    CHECK_EQ_STR(cs(hp_labels_get(&ls, "process.runtime.version")), "go1.19.8");

    /* sanitizing what the SDK sent gives valid names */
    hp_arena_t ar;
    hp_arena_init(&ar, 0);
    hp_labels_sanitize_names(&ls, &ar);
    CHECK_EQ_STR(cs(ls.v[2].name), "otel_scope_name");
    CHECK_EQ_STR(cs(ls.v[2].value), "com.grafana.pyroscope/go");
    hp_arena_fini(&ar);
    hp_labels_fini(&ls);
}

static void test_parse_app_name_edges(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_str_t app;
    hp_err_t err;

    /* plain name, no braces */
    REQUIRE(parse("my-app.cpu", &app, &ls, &err) == 0);
    CHECK_EQ_STR(cs(app), "my-app.cpu");
    CHECK_EQ_INT(ls.n, 0);

    /* {} alone: no labels */
    REQUIRE(parse("app{}", &app, &ls, &err) == 0);
    CHECK_EQ_STR(cs(app), "app");
    CHECK_EQ_INT(ls.n, 0);

    /* spaces are trimmed around the name, keys and values */
    REQUIRE(parse("  app.name  { a = 1 ,  b=two words , c= }  ", &app, &ls, &err) == 0);
    CHECK_EQ_STR(cs(app), "app.name");
    REQUIRE(ls.n == 3);
    CHECK_EQ_STR(cs(ls.v[0].name), "a");
    CHECK_EQ_STR(cs(ls.v[0].value), "1");
    CHECK_EQ_STR(cs(ls.v[1].name), "b");
    CHECK_EQ_STR(cs(ls.v[1].value), "two words");
    CHECK_EQ_STR(cs(ls.v[2].name), "c");
    CHECK_EQ_STR(cs(ls.v[2].value), "");

    /* empty pairs are skipped; a value may contain '=' */
    REQUIRE(parse("app{,a=x=y,,}", &app, &ls, &err) == 0);
    REQUIRE(ls.n == 1);
    CHECK_EQ_STR(cs(ls.v[0].value), "x=y");

    /* errors */
    CHECK_EQ_INT(parse("", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "service name is required") != NULL);
    CHECK_EQ_INT(parse("   ", &app, &ls, &err), HP_EINVAL);
    CHECK_EQ_INT(parse("{a=b}", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "service name is required") != NULL);
    CHECK_EQ_INT(parse(" {}", &app, &ls, &err), HP_EINVAL);
    CHECK_EQ_INT(parse("app{a=b", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "missing closing '}'") != NULL);
    CHECK_EQ_INT(parse("app{", &app, &ls, &err), HP_EINVAL);
    CHECK_EQ_INT(parse("app{a=b}junk", &app, &ls, &err), HP_EINVAL);
    CHECK_EQ_INT(parse("app{a}", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "no '='") != NULL);
    CHECK_EQ_INT(parse("app{=v}", &app, &ls, &err), HP_EINVAL);
    CHECK_EQ_INT(parse("app{a-b=v}", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "invalid label name 'a-b'") != NULL);
    CHECK_EQ_INT(parse("app name{a=b}", &app, &ls, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "invalid character ' '") != NULL);
    CHECK_EQ_INT(parse("app$", &app, &ls, &err), HP_EINVAL);
    hp_labels_fini(&ls);
}

int main(void)
{
    HP_RUN(test_sort_set_del_get);
    HP_RUN(test_copy_clone_equal);
    HP_RUN(test_fingerprint);
    HP_RUN(test_format);
    HP_RUN(test_sanitize);
    HP_RUN(test_del_empty);
    HP_RUN(test_validate);
    HP_RUN(test_validate_long_name_unterminated);
    HP_RUN(test_parse_app_name_sdk);
    HP_RUN(test_parse_app_name_edges);
    return hp_test_done();
}
