/* Unit tests for symdb: importing symbols from a pprof, dedup, stacks. */
#include "hotpath/symdb.h"
#include "hotpath/callsite.h"
#include "test.h"

static const char *cs(hp_str_t s)
{
    static char pool[8][256];
    static int k;
    char *b = pool[k++ & 7];
    snprintf(b, 256, "%.*s", (int)s.n, s.p ? s.p : "");
    return b;
}

/* A hand-built decoded profile. */
typedef struct fake {
    hp_pprof_t p;
    hp_str_t strings[16];
    hp_pprof_mapping_t mappings[2];
    hp_pprof_function_t functions[4];
    hp_pprof_location_t locations[4];
    hp_pprof_line_t lines[8];
} fake_t;

/*
 * strings: "" main runtime.main main.go /bin/app build-1 foo
 * functions: 0 main (system runtime.main, main.go:10), 1 foo (main.go:20)
 * mapping 0: /bin/app [0x1000, 0x2000)
 * locations: 0 @0x1010 lines [foo:21, main:11] (foo inlined into main)
 *            1 @0x1020 line main:12
 *            2 @0x99 no mapping, line foo:25
 *            3 = a copy of location 1 under another pprof ID
 * order_shift permutes the string table so the second profile uses other
 * indices for the same strings.
 */
static void fake_build(fake_t *f, bool permute)
{
    memset(f, 0, sizeof(*f));
    const char *s[] = {"", "main", "runtime.main", "main.go", "/bin/app", "build-1", "foo"};
    uint32_t ix[7];
    for (uint32_t i = 0; i < 7; i++) {
        ix[i] = permute && i ? 7 - i : i; /* 1..6 reversed */
        f->strings[ix[i]] = hp_str_c(s[i]);
    }
    f->p.strings = f->strings;
    f->p.n_strings = 7;
    f->mappings[0] = (hp_pprof_mapping_t){.id = 1,
                                          .memory_start = 0x1000,
                                          .memory_limit = 0x2000,
                                          .file_offset = 0,
                                          .filename = ix[4],
                                          .build_id = ix[5],
                                          .has_functions = true};
    f->p.mappings = f->mappings;
    f->p.n_mappings = 1;
    f->functions[0] = (hp_pprof_function_t){1, ix[1], ix[2], ix[3], 10};
    f->functions[1] = (hp_pprof_function_t){2, ix[6], 0, ix[3], 20};
    f->p.functions = f->functions;
    f->p.n_functions = 2;
    f->lines[0] = (hp_pprof_line_t){1, 21, 0};
    f->lines[1] = (hp_pprof_line_t){0, 11, 0};
    f->lines[2] = (hp_pprof_line_t){0, 12, 0};
    f->lines[3] = (hp_pprof_line_t){1, 25, 0};
    f->lines[4] = (hp_pprof_line_t){0, 12, 0};
    f->p.lines = f->lines;
    f->p.n_lines = 5;
    f->locations[0] =
        (hp_pprof_location_t){.id = 1, .mapping = 0, .address = 0x1010, .line_off = 0, .line_n = 2};
    f->locations[1] =
        (hp_pprof_location_t){.id = 2, .mapping = 0, .address = 0x1020, .line_off = 2, .line_n = 1};
    f->locations[2] =
        (hp_pprof_location_t){.id = 3, .mapping = HP_PPROF_NONE, .address = 0x99, .line_off = 3, .line_n = 1};
    f->locations[3] =
        (hp_pprof_location_t){.id = 9, .mapping = 0, .address = 0x1020, .line_off = 4, .line_n = 1};
    f->p.locations = f->locations;
    f->p.n_locations = 4;
}

static void test_import_contents(void)
{
    fake_t f;
    fake_build(&f, false);
    hp_symdb_t *db = hp_symdb_new();
    uint32_t lm[4];
    hp_symdb_import(db, &f.p, lm, 0);
    CHECK(lm[0] != lm[1]);
    CHECK(lm[0] != lm[2]);
    CHECK(lm[1] != lm[2]);
    CHECK_EQ_INT(lm[3], lm[1]); /* identical content, other pprof ID */

    const hp_symdb_location_t *l0 = hp_symdb_location(db, lm[0]);
    CHECK_EQ_INT(l0->address, 0x1010);
    REQUIRE(l0->line_n == 2);
    const hp_symdb_line_t *ln = hp_symdb_lines(db, l0);
    CHECK_EQ_STR(cs(hp_symdb_function_name(db, ln[0].function)), "foo"); /* leaf first */
    CHECK_EQ_INT(ln[0].line, 21);
    CHECK_EQ_STR(cs(hp_symdb_function_name(db, ln[1].function)), "main");
    CHECK_EQ_INT(ln[1].line, 11);
    const hp_symdb_function_t *fmain = hp_symdb_function(db, ln[1].function);
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->name)), "main");
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->system_name)), "runtime.main");
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->filename)), "main.go");
    CHECK_EQ_INT(fmain->start_line, 10);
    const hp_symdb_function_t *ffoo = hp_symdb_function(db, ln[0].function);
    CHECK_EQ_INT(ffoo->system_name, 0); /* "" is string 0 */
    CHECK_EQ_STR(cs(hp_symdb_string(db, 0)), "");
    CHECK_EQ_INT(ffoo->start_line, 20);
    CHECK(ffoo->filename == fmain->filename); /* interned once */

    REQUIRE(l0->mapping != UINT32_MAX);
    const hp_symdb_mapping_t *m = hp_symdb_mapping(db, l0->mapping);
    CHECK_EQ_INT(m->memory_start, 0x1000);
    CHECK_EQ_INT(m->memory_limit, 0x2000);
    CHECK_EQ_STR(cs(hp_symdb_string(db, m->filename)), "/bin/app");
    CHECK_EQ_STR(cs(hp_symdb_string(db, m->build_id)), "build-1");
    CHECK_EQ_INT(m->flags, 1);

    const hp_symdb_location_t *l1 = hp_symdb_location(db, lm[1]);
    CHECK_EQ_INT(l1->address, 0x1020);
    CHECK_EQ_INT(l1->mapping, l0->mapping);
    REQUIRE(l1->line_n == 1);
    CHECK_EQ_INT(hp_symdb_lines(db, l1)[0].function, ln[1].function);
    CHECK_EQ_INT(hp_symdb_lines(db, l1)[0].line, 12);

    const hp_symdb_location_t *l2 = hp_symdb_location(db, lm[2]);
    CHECK_EQ_INT(l2->mapping, UINT32_MAX);
    CHECK_EQ_INT(l2->address, 0x99);
    REQUIRE(l2->line_n == 1);
    CHECK_EQ_INT(hp_symdb_lines(db, l2)[0].function, ln[0].function);
    CHECK_EQ_INT(hp_symdb_lines(db, l2)[0].line, 25);
    CHECK(hp_symdb_bytes(db) > 0);
    hp_symdb_free(db);
}

static void test_import_dedup(void)
{
    fake_t f, g;
    fake_build(&f, false);
    fake_build(&g, true); /* same content, other string indices */
    hp_symdb_t *db = hp_symdb_new();
    uint32_t a[4], b[4], c[4];
    hp_symdb_import(db, &f.p, a, 0);
    size_t bytes = hp_symdb_bytes(db);
    const hp_symdb_location_t *before = hp_symdb_location(db, a[0]);
    uint32_t line_off = before->line_off;
    hp_symdb_import(db, &f.p, b, 0);
    hp_symdb_import(db, &g.p, c, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(b[i], a[i]);
        CHECK_EQ_INT(c[i], a[i]);
    }
    CHECK_EQ_INT(hp_symdb_bytes(db), bytes); /* nothing new stored */
    CHECK_EQ_INT(hp_symdb_location(db, a[0])->line_off, line_off);

    /* a location differing only in its line number is new */
    f.lines[2].line = 13;
    uint32_t d[4];
    hp_symdb_import(db, &f.p, d, 0);
    CHECK_EQ_INT(d[0], a[0]);
    CHECK(d[1] != a[1]);
    CHECK_EQ_INT(d[2], a[2]);
    CHECK_EQ_INT(d[3], a[1]); /* location 3 still has line 12 */
    CHECK_EQ_INT(hp_symdb_lines(db, hp_symdb_location(db, d[1]))[0].line, 13);
    /* the earlier location's lines were not disturbed by staging */
    CHECK_EQ_INT(hp_symdb_lines(db, hp_symdb_location(db, a[1]))[0].line, 12);
    CHECK_EQ_INT(hp_symdb_lines(db, hp_symdb_location(db, a[0]))[1].line, 11);

    /* a mapping differing in one flag is a new mapping, so a new location */
    fake_build(&f, false);
    f.mappings[0].has_line_numbers = true;
    hp_symdb_import(db, &f.p, d, 0);
    CHECK(d[0] != a[0]);
    CHECK(hp_symdb_location(db, d[0])->mapping != hp_symdb_location(db, a[0])->mapping);
    CHECK_EQ_INT(hp_symdb_mapping(db, hp_symdb_location(db, d[0])->mapping)->flags, 1 | 4);
    CHECK_EQ_INT(d[2], a[2]); /* the unmapped location is unchanged */
    hp_symdb_free(db);
}

static void test_stacks(void)
{
    fake_t f;
    fake_build(&f, false);
    hp_symdb_t *db = hp_symdb_new();
    uint32_t lm[4];
    hp_symdb_import(db, &f.p, lm, 0);
    CHECK_EQ_INT(hp_symdb_n_stacks(db), 1); /* the root */
    CHECK_EQ_INT(hp_symdb_stack(db, NULL, 0), 0);

    uint32_t sa[] = {lm[0], lm[1]}; /* leaf first: main:12 → foo@main */
    uint32_t sb[] = {lm[2], lm[1]};
    uint32_t sc[] = {lm[1]};
    uint32_t a = hp_symdb_stack(db, sa, 2);
    uint32_t b = hp_symdb_stack(db, sb, 2);
    uint32_t c = hp_symdb_stack(db, sc, 1);
    CHECK(a != 0 && b != 0 && c != 0);
    CHECK(a != b);
    CHECK_EQ_INT(hp_symdb_n_stacks(db), 4);        /* root, lm1, lm1→lm0, lm1→lm2 */
    CHECK_EQ_INT(hp_symdb_stack_parent(db, a), c); /* shared prefix */
    CHECK_EQ_INT(hp_symdb_stack_parent(db, b), c);
    CHECK_EQ_INT(hp_symdb_stack_parent(db, c), 0);
    CHECK_EQ_INT(hp_symdb_stack_location(db, a), lm[0]);
    CHECK_EQ_INT(hp_symdb_stack_location(db, b), lm[2]);
    CHECK_EQ_INT(hp_symdb_stack_location(db, c), lm[1]);

    /* same stack, same ID */
    CHECK_EQ_INT(hp_symdb_stack(db, sa, 2), a);
    CHECK_EQ_INT(hp_symdb_stack(db, sc, 1), c);
    CHECK_EQ_INT(hp_symdb_n_stacks(db), 4);

    /* the same location at another depth is another node */
    uint32_t sd[] = {lm[1], lm[1]};
    uint32_t d = hp_symdb_stack(db, sd, 2);
    CHECK(d != c);
    CHECK_EQ_INT(hp_symdb_stack_parent(db, d), c);

    /* a deep recursive stack: walking parents gives it back */
    enum { DEPTH = 2000 };
    uint32_t *deep = malloc(DEPTH * sizeof(uint32_t));
    for (int i = 0; i < DEPTH; i++)
        deep[i] = lm[i % 3];
    uint32_t s = hp_symdb_stack(db, deep, DEPTH);
    CHECK_EQ_INT(hp_symdb_stack(db, deep, DEPTH), s);
    int i = 0, bad = 0;
    for (uint32_t k = s; k != 0; k = hp_symdb_stack_parent(db, k), i++)
        if (i >= DEPTH || hp_symdb_stack_location(db, k) != deep[i])
            bad++;
    CHECK_EQ_INT(i, DEPTH);
    CHECK_EQ_INT(bad, 0);
    /* its suffix (the part nearest the root) is a prefix node of it */
    uint32_t s2 = hp_symdb_stack(db, deep + 1, DEPTH - 1);
    CHECK_EQ_INT(hp_symdb_stack_parent(db, s), s2);
    free(deep);
    hp_symdb_free(db);
}

static void test_truncation(void)
{
    fake_t f;
    fake_build(&f, false);
    hp_symdb_t *db = hp_symdb_new();
    uint32_t lm[4];
    hp_symdb_import(db, &f.p, lm, 4);
    const hp_symdb_location_t *l0 = hp_symdb_location(db, lm[0]);
    const hp_symdb_function_t *fmain = hp_symdb_function(db, hp_symdb_lines(db, l0)[1].function);
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->name)), "main");
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->system_name)), "runt");
    CHECK_EQ_STR(cs(hp_symdb_string(db, fmain->filename)), "main");
    CHECK_EQ_INT(fmain->filename, fmain->name); /* truncated strings are interned */
    const hp_symdb_mapping_t *m = hp_symdb_mapping(db, l0->mapping);
    CHECK_EQ_STR(cs(hp_symdb_string(db, m->filename)), "/bin");
    CHECK_EQ_STR(cs(hp_symdb_string(db, m->build_id)), "buil");

    /* names equal after truncation make one function */
    fake_t g;
    fake_build(&g, false);
    g.strings[1] = HP_STR("abcdefX");
    g.strings[6] = HP_STR("abcdefY");
    g.functions[0].system_name = 0;
    g.functions[1].start_line = 10;
    hp_symdb_t *db2 = hp_symdb_new();
    hp_symdb_import(db2, &g.p, lm, 6);
    const hp_symdb_line_t *ln = hp_symdb_lines(db2, hp_symdb_location(db2, lm[0]));
    CHECK_EQ_INT(ln[0].function, ln[1].function);
    CHECK_EQ_STR(cs(hp_symdb_function_name(db2, ln[0].function)), "abcdef");
    /* without a limit they stay apart */
    hp_symdb_t *db3 = hp_symdb_new();
    hp_symdb_import(db3, &g.p, lm, 0);
    ln = hp_symdb_lines(db3, hp_symdb_location(db3, lm[0]));
    CHECK(ln[0].function != ln[1].function);
    CHECK_EQ_STR(cs(hp_symdb_function_name(db3, ln[0].function)), "abcdefY");
    CHECK_EQ_STR(cs(hp_symdb_function_name(db3, ln[1].function)), "abcdefX");
    hp_symdb_free(db);
    hp_symdb_free(db2);
    hp_symdb_free(db3);
}

/* Truncation keeps valid UTF-8: a multi-byte character that does not fit
 * whole is dropped whole (never cut in the middle of its bytes). */
static void test_truncation_utf8(void)
{
    static const struct {
        const char *in;
        size_t max;
        const char *want;
    } cases[] = {
        {"h\xc3\xa9llo", 2, "h"},                 /* é = c3 a9 */
        {"h\xc3\xa9llo", 3, "h\xc3\xa9"},
        {"ab\xe2\x82\xac", 4, "ab"},             /* € = e2 82 ac */
        {"ab\xf0\x9f\x98\x80z", 5, "ab"},        /* U+1F600, 4 bytes */
        {"ab\xf0\x9f\x98\x80z", 6, "ab\xf0\x9f\x98\x80"},
        {"abcdef", 3, "abc"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        fake_t f;
        fake_build(&f, false);
        f.strings[1] = hp_str_c(cases[i].in); /* "main", the function's name */
        hp_symdb_t *db = hp_symdb_new();
        uint32_t lm[4];
        hp_symdb_import(db, &f.p, lm, cases[i].max);
        const hp_symdb_location_t *l1 = hp_symdb_location(db, lm[1]);
        hp_str_t name = hp_symdb_function_name(db, hp_symdb_lines(db, l1)[0].function);
        CHECK_EQ_STR(cs(name), cases[i].want);
        CHECK(hp_utf8_valid(name.p, name.n));
        hp_symdb_free(db);
    }
}

static void test_function_name_fallback(void)
{
    fake_t f;
    fake_build(&f, false);
    f.functions[0].name = 0; /* system name runtime.main remains */
    f.functions[1].name = 0; /* foo: no system name either */
    f.functions[1].system_name = 0;
    f.functions[1].filename = 0;
    hp_symdb_t *db = hp_symdb_new();
    uint32_t lm[4];
    hp_symdb_import(db, &f.p, lm, 0);
    const hp_symdb_line_t *ln = hp_symdb_lines(db, hp_symdb_location(db, lm[0]));
    CHECK_EQ_STR(cs(hp_symdb_function_name(db, ln[1].function)), "runtime.main");
    CHECK_EQ_STR(cs(hp_symdb_function_name(db, ln[0].function)), "<unknown>");
    /* an out-of-range string index in the pprof reads as "" */
    f.functions[0].name = 99;
    f.functions[0].system_name = 99;
    hp_symdb_t *db2 = hp_symdb_new();
    hp_symdb_import(db2, &f.p, lm, 0);
    ln = hp_symdb_lines(db2, hp_symdb_location(db2, lm[1]));
    CHECK_EQ_STR(cs(hp_symdb_function_name(db2, ln[0].function)), "<unknown>");
    hp_symdb_free(db);
    hp_symdb_free(db2);
}

static void test_empty_profile(void)
{
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_symdb_t *db = hp_symdb_new();
    hp_symdb_import(db, &p, NULL, 0);
    CHECK_EQ_INT(hp_symdb_n_stacks(db), 1);
    hp_symdb_free(db);
    hp_symdb_free(NULL);
}

/* Many distinct locations: IDs stay dense and dedup holds across growth. */
static void test_many_locations(void)
{
    enum { N = 20000 };
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_str_t strs[2] = {HP_STR(""), HP_STR("fn")};
    hp_pprof_function_t fn = {1, 1, 0, 0, 0};
    hp_pprof_location_t *locs = calloc(N, sizeof(*locs));
    hp_pprof_line_t *lines = calloc(N, sizeof(*lines));
    for (uint32_t i = 0; i < N; i++) {
        lines[i] = (hp_pprof_line_t){0, (int64_t)(i % 100), 0};
        locs[i] = (hp_pprof_location_t){
            .id = i + 1, .mapping = HP_PPROF_NONE, .address = i / 100, .line_off = i, .line_n = 1};
    }
    p.strings = strs;
    p.n_strings = 2;
    p.functions = &fn;
    p.n_functions = 1;
    p.locations = locs;
    p.n_locations = N;
    p.lines = lines;
    p.n_lines = N;
    hp_symdb_t *db = hp_symdb_new();
    uint32_t *a = malloc(N * sizeof(uint32_t)), *b = malloc(N * sizeof(uint32_t));
    hp_symdb_import(db, &p, a, 0);
    hp_symdb_import(db, &p, b, 0);
    size_t wrong = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (a[i] != i || b[i] != i)
            wrong++;
        const hp_symdb_location_t *l = hp_symdb_location(db, a[i]);
        if (l->address != i / 100 || hp_symdb_lines(db, l)[0].line != (int32_t)(i % 100))
            wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    free(a);
    free(b);
    free(locs);
    free(lines);
    hp_symdb_free(db);
}

/* Call sites (callsite.h) over the fake's frames: location 0 is main with
 * foo inlined (frames main, foo), 1 is main, 2 is foo, and 3 is made an
 * address without lines (frame "0x77"). */
static void test_call_site(void)
{
    fake_t f;
    fake_build(&f, false);
    f.locations[3].line_n = 0;
    f.locations[3].address = 0x77;
    hp_symdb_t *db = hp_symdb_new();
    uint32_t lm[4];
    hp_symdb_import(db, &f.p, lm, 0);
    uint32_t root_main = hp_symdb_stack(db, (uint32_t[]){lm[1]}, 1);          /* main */
    uint32_t inl = hp_symdb_stack(db, (uint32_t[]){lm[0], lm[1]}, 2);         /* main;main;foo */
    uint32_t deep = hp_symdb_stack(db, (uint32_t[]){lm[2], lm[0], lm[1]}, 3); /* main;main;foo;foo */
    uint32_t addr = hp_symdb_stack(db, (uint32_t[]){lm[2], lm[3]}, 2);        /* 0x77;foo */
    uint32_t lone = hp_symdb_stack(db, (uint32_t[]){lm[2]}, 1);               /* foo */
    struct {
        const char *names[4];
        size_t n;
        bool want[5]; /* root_main, inl, deep, addr, lone */
    } cases[] = {
        {{0}, 0, {1, 1, 1, 1, 1}},
        {{"main"}, 1, {1, 1, 1, 0, 0}},
        {{"main", "main"}, 2, {0, 1, 1, 0, 0}},
        {{"main", "main", "foo"}, 3, {0, 1, 1, 0, 0}},
        {{"main", "foo"}, 2, {0, 0, 0, 0, 0}}, /* the inlined frame counts */
        {{"main", "main", "foo", "foo"}, 4, {0, 0, 1, 0, 0}},
        {{"foo"}, 1, {0, 0, 0, 0, 1}},
        {{"0x77", "foo"}, 2, {0, 0, 0, 1, 0}},
        {{"0x77", "bar"}, 2, {0, 0, 0, 0, 0}},
    };
    uint32_t stacks[] = {root_main, inl, deep, addr, lone};
    for (size_t c = 0; c < HP_ARRAY_LEN(cases); c++) {
        /* asked leaf-most first and root-most first: the memo must agree */
        for (int order = 0; order < 2; order++) {
            hp_callsite_t cs;
            hp_callsite_init(&cs, (char *const *)cases[c].names, cases[c].n);
            hp_callsite_use(&cs, db);
            for (size_t k = 0; k < HP_ARRAY_LEN(stacks); k++) {
                size_t i = order ? HP_ARRAY_LEN(stacks) - 1 - k : k;
                if (hp_callsite_match(&cs, stacks[i]) != cases[c].want[i])
                    fprintf(stderr, "  case %zu stack %zu order %d\n", c, i, order);
                CHECK(hp_callsite_match(&cs, stacks[i]) == cases[c].want[i]);
            }
            hp_callsite_fini(&cs);
        }
    }
    hp_symdb_free(db);
}

int main(void)
{
    HP_RUN(test_call_site);
    HP_RUN(test_import_contents);
    HP_RUN(test_import_dedup);
    HP_RUN(test_stacks);
    HP_RUN(test_truncation);
    HP_RUN(test_truncation_utf8);
    HP_RUN(test_function_name_fallback);
    HP_RUN(test_empty_profile);
    HP_RUN(test_many_locations);
    return hp_test_done();
}
