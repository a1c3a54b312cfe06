/* Unit tests for selector: label selectors, render queries, profile type IDs. */
#include "hotpath/selector.h"
#include "test.h"

static const char *cs(hp_str_t s)
{
    static char pool[8][256];
    static int k;
    char *b = pool[k++ & 7];
    snprintf(b, 256, "%.*s", (int)s.n, s.p ? s.p : "");
    return b;
}

static int parse(const char *s, hp_selector_t *sel, hp_err_t *err)
{
    hp_err_clear(err);
    return hp_selector_parse(hp_str_c(s), sel, err);
}

static void test_empty(void)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    REQUIRE(parse("{}", &sel, &err) == 0);
    CHECK_EQ_INT(sel.n, 0);
    hp_selector_fini(&sel);
    REQUIRE(parse("", &sel, &err) == 0);
    CHECK_EQ_INT(sel.n, 0);
    hp_selector_fini(&sel);
    REQUIRE(parse("  {  }  ", &sel, &err) == 0);
    CHECK_EQ_INT(sel.n, 0);
    hp_selector_fini(&sel);
    REQUIRE(parse("   ", &sel, &err) == 0);
    CHECK_EQ_INT(sel.n, 0);
    /* matches everything, including the empty set */
    hp_labels_t ls;
    hp_labels_init(&ls);
    CHECK(hp_selector_matches(&sel, &ls));
    hp_labels_add(&ls, HP_STR("a"), HP_STR("b"));
    CHECK(hp_selector_matches(&sel, &ls));
    hp_labels_fini(&ls);
    hp_selector_fini(&sel);
    hp_selector_fini(&sel); /* twice is safe */
}

static void test_simple(void)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    REQUIRE(parse("{a=\"b\"}", &sel, &err) == 0);
    REQUIRE(sel.n == 1);
    CHECK_EQ_STR(sel.m[0].name, "a");
    CHECK_EQ_STR(sel.m[0].value, "b");
    CHECK_EQ_INT(sel.m[0].op, HP_MATCH_EQ);
    hp_selector_fini(&sel);

    REQUIRE(parse("{ a = \"b\" , c != 'd' }", &sel, &err) == 0);
    REQUIRE(sel.n == 2);
    CHECK_EQ_STR(sel.m[0].name, "a");
    CHECK_EQ_STR(sel.m[0].value, "b");
    CHECK_EQ_INT(sel.m[0].op, HP_MATCH_EQ);
    CHECK_EQ_STR(sel.m[1].name, "c");
    CHECK_EQ_STR(sel.m[1].value, "d");
    CHECK_EQ_INT(sel.m[1].op, HP_MATCH_NEQ);
    CHECK_EQ_STR(hp_selector_eq_value(&sel, "a"), "b");
    CHECK(hp_selector_eq_value(&sel, "c") == NULL); /* != is not an equality */
    CHECK(hp_selector_eq_value(&sel, "zz") == NULL);
    hp_selector_fini(&sel);

    /* trailing comma, tabs/newlines, names with digits and underscores */
    REQUIRE(parse("{\n\t__name__=\"x\",\tservice_name2=\"\",\n}", &sel, &err) == 0);
    REQUIRE(sel.n == 2);
    CHECK_EQ_STR(sel.m[0].name, "__name__");
    CHECK_EQ_STR(sel.m[1].name, "service_name2");
    CHECK_EQ_STR(sel.m[1].value, "");
    hp_selector_fini(&sel);
}

static void test_strings(void)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    REQUIRE(parse("{a=\"x\\\"y\\\\z\\n\\t'\"}", &sel, &err) == 0);
    REQUIRE(sel.n == 1);
    CHECK_EQ_STR(sel.m[0].value, "x\"y\\z\n\t'");
    hp_selector_fini(&sel);

    REQUIRE(parse("{a='it\\'s \"q\"'}", &sel, &err) == 0);
    REQUIRE(sel.n == 1);
    CHECK_EQ_STR(sel.m[0].value, "it's \"q\"");
    hp_selector_fini(&sel);

    /* backticks: raw, no escapes */
    REQUIRE(parse("{a=`C:\\path\\n \"x\"`}", &sel, &err) == 0);
    REQUIRE(sel.n == 1);
    CHECK_EQ_STR(sel.m[0].value, "C:\\path\\n \"x\"");
    hp_selector_fini(&sel);

    /* braces and commas inside values */
    REQUIRE(parse("{a=\"{x,y}\", b=\"}\"}", &sel, &err) == 0);
    REQUIRE(sel.n == 2);
    CHECK_EQ_STR(sel.m[0].value, "{x,y}");
    CHECK_EQ_STR(sel.m[1].value, "}");
    hp_selector_fini(&sel);

    /* UTF-8 passes through */
    REQUIRE(parse("{a=\"größe\"}", &sel, &err) == 0);
    CHECK_EQ_STR(sel.m[0].value, "größe");
    hp_selector_fini(&sel);
}

static void expect_err(const char *s, int code, const char *needle)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    int rc = parse(s, &sel, &err);
    if (rc != code || strstr(err.msg, needle) == NULL) {
        fprintf(stderr, "  input %s: rc %d, msg \"%s\", wanted %d with \"%s\"\n", s, rc, err.msg, code,
                needle);
        hp_t_cur_failed = 1;
    }
    CHECK(sel.m == NULL);
    CHECK_EQ_INT(sel.n, 0);
    hp_selector_fini(&sel);
}

static void test_errors(void)
{
    expect_err("{a=\"b}", HP_EINVAL, "at char 7: unterminated label value");
    expect_err("{a=b}", HP_EINVAL, "at char 4: expected a quoted label value");
    expect_err("{a=\"b\"", HP_EINVAL, "at char 7: missing closing '}'");
    expect_err("{a=\"b\" c=\"d\"}", HP_EINVAL, "at char 8: expected ',' or '}'");
    expect_err("{a==\"b\"}", HP_EINVAL, "at char 4: expected a quoted label value");
    expect_err("{a<\"b\"}", HP_EINVAL, "at char 3: expected one of =, !=, =~, !~");
    expect_err("{a ! = \"b\"}", HP_EINVAL, "at char 4: expected one of");
    expect_err("{a}", HP_EINVAL, "at char 3: expected one of");
    expect_err("{a=\"b\"} x", HP_EINVAL, "at char 9: unexpected text after '}'");
    expect_err("{a=\"b\"}}", HP_EINVAL, "at char 8: unexpected text after '}'");
    expect_err("a=\"b\"", HP_EINVAL, "at char 1: expected '{'");
    expect_err("{1a=\"b\"}", HP_EINVAL, "at char 2: expected a label name");
    expect_err("{,}", HP_EINVAL, "at char 2: expected a label name");
    expect_err("{a=\"b\",,}", HP_EINVAL, "at char 8: expected a label name");
    expect_err("{a-b=\"c\"}", HP_EINVAL, "at char 3: expected one of");
    expect_err("{a=\"\\q\"}", HP_EINVAL, "unknown escape sequence");
    expect_err("{a=\"b\\", HP_EINVAL, "unterminated label value");
    expect_err("{", HP_EINVAL, "missing closing '}'");
    /* an error after a good matcher frees what was parsed */
    expect_err("{a=\"b\", c=}", HP_EINVAL, "expected a quoted label value");
}

static bool sel_matches(const char *s, const hp_labels_t *ls);

/* Bad regexes: HP_EINVAL naming the label, RE2's reason and where in the
 * selector; a syntax error of the selector itself comes first. */
static void test_regex_errors(void)
{
    expect_err("{a=~\"b(\"}", HP_EINVAL, "invalid regex for label 'a' at char 6");
    expect_err("{a=\"x\", bb!~\"[z-a]\"}", HP_EINVAL, "invalid character class range");
    expect_err("{a=~\"b\"", HP_EINVAL, "missing closing '}'");
    /* unbalanced groups cannot escape the anchoring */
    expect_err("{a=~\"a)|(b\"}", HP_EINVAL, "invalid regex for label 'a'");
    /* a pattern too big for a matcher's memory bound: refused, not built */
    expect_err("{a=~\"((((a{100}){100}){100}){100})\"}", HP_EINVAL, "invalid regex for label 'a'");
    char big[5000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "{x=~\"", 5);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    expect_err(big, HP_EINVAL, "longer than 4096");
}

/* Regex matchers: fully anchored, RE2 syntax, absent labels as "". */
static void test_regex_matches(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_labels_add(&ls, HP_STR("service_name"), HP_STR("checkout-api"));
    hp_labels_add(&ls, HP_STR("env"), HP_STR("prod"));
    hp_labels_sort(&ls);
    CHECK(sel_matches("{service_name=~\"checkout-.*\"}", &ls));
    CHECK(!sel_matches("{service_name=~\"checkout\"}", &ls)); /* anchored: no partial match */
    CHECK(sel_matches("{service_name=~\"cart|checkout-api\"}", &ls)); /* the alternation stays inside */
    CHECK(!sel_matches("{service_name=~\"cart|checkout\"}", &ls));
    CHECK(sel_matches("{service_name!~\"cart.*\", env=~\"prod|dev\"}", &ls));
    CHECK(!sel_matches("{service_name!~\".*api\"}", &ls));
    CHECK(sel_matches("{region=~\"\"}", &ls));      /* absent label: "" */
    CHECK(!sel_matches("{region=~\".+\"}", &ls));
    CHECK(sel_matches("{region!~\"eu.*\"}", &ls));
    CHECK(sel_matches("{env=~\"(?i)PROD\"}", &ls)); /* RE2 flags */
    hp_labels_fini(&ls);

    /* a hostile pattern on a long value answers at once (RE2 is linear) */
    hp_labels_t evil;
    hp_labels_init(&evil);
    char v[20001];
    memset(v, 'a', 20000);
    v[20000] = 0;
    hp_labels_add(&evil, HP_STR("x"), hp_str_c(v));
    int64_t t0 = hp_mono_ms();
    CHECK(!sel_matches("{x=~\"(a*)*b\"}", &evil));
    CHECK(!sel_matches("{x=~\"(a|aa)*c\"}", &evil));
    int64_t ms = hp_mono_ms() - t0;
    printf("hostile regexes over a 20000-byte value: %lld ms\n", (long long)ms);
    hp_labels_fini(&evil);
}

static bool sel_matches(const char *s, const hp_labels_t *ls)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    if (parse(s, &sel, &err) != 0) {
        fprintf(stderr, "  parse %s: %s\n", s, err.msg);
        hp_t_cur_failed = 1;
        return false;
    }
    bool r = hp_selector_matches(&sel, ls);
    hp_selector_fini(&sel);
    return r;
}

static void test_matches(void)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_labels_add(&ls, HP_STR("env"), HP_STR("prod"));
    hp_labels_add(&ls, HP_STR("service_name"), HP_STR("api"));
    hp_labels_add(&ls, HP_STR("zone"), HP_STR(""));
    CHECK(sel_matches("{service_name=\"api\"}", &ls));
    CHECK(!sel_matches("{service_name=\"ap\"}", &ls));
    CHECK(!sel_matches("{service_name=\"apix\"}", &ls));
    CHECK(sel_matches("{service_name=\"api\", env=\"prod\"}", &ls));
    CHECK(!sel_matches("{service_name=\"api\", env=\"dev\"}", &ls));
    CHECK(sel_matches("{env!=\"dev\"}", &ls));
    CHECK(!sel_matches("{env!=\"prod\"}", &ls));
    /* an absent label is the empty string */
    CHECK(sel_matches("{x=\"\"}", &ls));
    CHECK(!sel_matches("{x!=\"\"}", &ls));
    CHECK(!sel_matches("{x=\"a\"}", &ls));
    CHECK(sel_matches("{x!=\"a\"}", &ls));
    /* a present empty label behaves the same */
    CHECK(sel_matches("{zone=\"\"}", &ls));
    CHECK(!sel_matches("{zone!=\"\"}", &ls));
    CHECK(sel_matches("{env!=\"\"}", &ls));
    CHECK(!sel_matches("{env=\"\"}", &ls));
    hp_labels_fini(&ls);
}

static void test_parse_query(void)
{
    hp_selector_t sel = {0};
    hp_err_t err;
    char *pt = (char *)"unset";
    REQUIRE(
        hp_selector_parse_query(HP_STR("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"myapp\"}"),
                                &pt, &sel, &err) == 0);
    CHECK_EQ_STR(pt, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    REQUIRE(sel.n == 1);
    CHECK_EQ_STR(sel.m[0].name, "service_name");
    CHECK_EQ_STR(sel.m[0].value, "myapp");
    free(pt);
    hp_selector_fini(&sel);

    /* six parts (delta), no braces, surrounding spaces */
    REQUIRE(hp_selector_parse_query(HP_STR(" memory:alloc_space:bytes:space:bytes:delta "), &pt, &sel,
                                    &err) == 0);
    CHECK_EQ_STR(pt, "memory:alloc_space:bytes:space:bytes:delta");
    CHECK_EQ_INT(sel.n, 0);
    free(pt);
    hp_selector_fini(&sel);

    /* empty period type */
    REQUIRE(hp_selector_parse_query(HP_STR("process_cpu:samples:count::milliseconds{}"), &pt, &sel, &err) ==
            0);
    CHECK_EQ_STR(pt, "process_cpu:samples:count::milliseconds");
    free(pt);
    hp_selector_fini(&sel);

    /* invalid types */
    const char *bad[] = {
        "process_cpu:cpu:nanoseconds:cpu{service_name=\"myapp\"}",
        "{service_name=\"myapp\"}",
        "",
        "process_cpu{}",
        "a:b:c:d:e:f:g{}",
        ":cpu:nanoseconds:cpu:nanoseconds{}",
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        pt = (char *)"unset";
        hp_err_clear(&err);
        int rc = hp_selector_parse_query(hp_str_c(bad[i]), &pt, &sel, &err);
        if (rc != HP_EINVAL || strstr(err.msg, "must contain a profile-type selection") == NULL) {
            fprintf(stderr, "  query %s: rc %d msg %s\n", bad[i], rc, err.msg);
            hp_t_cur_failed = 1;
        }
        CHECK(pt == NULL);
        if (rc == 0)
            free(pt);
        hp_selector_fini(&sel);
    }

    /* an absent query (NULL slice) is refused, not dereferenced */
    pt = (char *)"unset";
    CHECK_EQ_INT(hp_selector_parse_query((hp_str_t){NULL, 0}, &pt, &sel, &err), HP_EINVAL);
    CHECK(pt == NULL);
    REQUIRE(hp_selector_parse((hp_str_t){NULL, 0}, &sel, &err) == 0);
    CHECK_EQ_INT(sel.n, 0);
    hp_selector_fini(&sel);

    /* a good type with a bad selector: the selector's error, nothing owned */
    pt = (char *)"unset";
    CHECK_EQ_INT(hp_selector_parse_query(HP_STR("a:b:c:d:e{x=\"y\""), &pt, &sel, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "missing closing '}'") != NULL);
    CHECK(pt == NULL);
    CHECK(sel.m == NULL);
    CHECK_EQ_INT(hp_selector_parse_query(HP_STR("a:b:c:d:e{x=~\"y(\"}"), &pt, &sel, &err), HP_EINVAL);
    CHECK(pt == NULL);
    hp_selector_fini(&sel);
}

static void test_profile_type_parse(void)
{
    hp_profile_type_t pt;
    hp_err_t err;
    REQUIRE(hp_profile_type_parse(HP_STR("process_cpu:cpu:nanoseconds:cpu:nanoseconds"), &pt, &err) == 0);
    CHECK_EQ_STR(cs(pt.name), "process_cpu");
    CHECK_EQ_STR(cs(pt.sample_type), "cpu");
    CHECK_EQ_STR(cs(pt.sample_unit), "nanoseconds");
    CHECK_EQ_STR(cs(pt.period_type), "cpu");
    CHECK_EQ_STR(cs(pt.period_unit), "nanoseconds");

    REQUIRE(hp_profile_type_parse(HP_STR("memory:inuse_space:bytes:space:bytes"), &pt, &err) == 0);
    CHECK_EQ_STR(cs(pt.name), "memory");
    CHECK_EQ_STR(cs(pt.sample_type), "inuse_space");
    CHECK_EQ_STR(cs(pt.sample_unit), "bytes");
    CHECK_EQ_STR(cs(pt.period_type), "space");
    CHECK_EQ_STR(cs(pt.period_unit), "bytes");

    /* 5 parts with an empty period type */
    REQUIRE(hp_profile_type_parse(HP_STR("process_cpu:samples:count::milliseconds"), &pt, &err) == 0);
    CHECK_EQ_STR(cs(pt.sample_type), "samples");
    CHECK_EQ_STR(cs(pt.sample_unit), "count");
    CHECK_EQ_INT(pt.period_type.n, 0);
    CHECK_EQ_STR(cs(pt.period_unit), "milliseconds");

    /* empty period type and unit */
    REQUIRE(hp_profile_type_parse(HP_STR("wall:wall:microseconds::"), &pt, &err) == 0);
    CHECK_EQ_INT(pt.period_type.n, 0);
    CHECK_EQ_INT(pt.period_unit.n, 0);

    /* 6 parts: the sixth is ignored */
    REQUIRE(hp_profile_type_parse(HP_STR("memory:alloc_space:bytes:space:bytes:delta"), &pt, &err) == 0);
    CHECK_EQ_STR(cs(pt.period_unit), "bytes");

    const char *bad[] = {
        "process_cpu:cpu:nanoseconds:cpu", "a:b:c:d:e:f:g", "a:b:c:d:e:f:", "a", "", ":b:c:d:e", "a::c:d:e",
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        hp_err_clear(&err);
        int rc = hp_profile_type_parse(hp_str_c(bad[i]), &pt, &err);
        if (rc != HP_EINVAL || err.code != HP_EINVAL || err.msg[0] == '\0') {
            fprintf(stderr, "  type '%s': rc %d msg %s\n", bad[i], rc, err.msg);
            hp_t_cur_failed = 1;
        }
    }
    /* a NULL, empty slice is refused without touching memory */
    CHECK_EQ_INT(hp_profile_type_parse((hp_str_t){NULL, 0}, &pt, NULL), HP_EINVAL);
}

int main(void)
{
    HP_RUN(test_empty);
    HP_RUN(test_simple);
    HP_RUN(test_strings);
    HP_RUN(test_errors);
    HP_RUN(test_regex_errors);
    HP_RUN(test_regex_matches);
    HP_RUN(test_matches);
    HP_RUN(test_parse_query);
    HP_RUN(test_profile_type_parse);
    return hp_test_done();
}
