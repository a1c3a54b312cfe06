/* multipart/form-data: the captured SDK requests split into exactly the
 * parts the capture tool extracted, and bad bodies refused with a reason. */
#include <dirent.h>
#include <jansson.h>
#include <strings.h>

#include "hotpath/buf.h"
#include "hotpath/multipart.h"
#include "test.h"

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The Content-Type header recorded in a capture's .json (malloc'd). */
static char *capture_content_type(const char *json_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(json_path, 0, &jerr);
    char *ct = NULL;
    json_t *headers = json_object_get(root, "headers"), *h;
    size_t i;
    json_array_foreach(headers, i, h)
    {
        const char *name = json_string_value(json_array_get(h, 0));
        if (ct == NULL && name != NULL && strcasecmp(name, "content-type") == 0)
            ct = strdup(json_string_value(json_array_get(h, 1)));
    }
    json_decref(root);
    return ct;
}

/* Parses one captured request and compares each part with the extracted
 * reqNNN.part-<name>.<ext> file; returns how many parts matched. */
static size_t check_capture(const char *session, const char *req)
{
    char rel[256];
    size_t body_len;
    snprintf(rel, sizeof(rel), "corpus/capture/%s/%s.json", session, req);
    char *ct = capture_content_type(hp_testdata(rel));
    REQUIRE(ct != NULL);
    hp_str_t boundary;
    hp_err_t err;
    REQUIRE(hp_multipart_boundary(hp_str_c(ct), &boundary, &err) == 0);
    snprintf(rel, sizeof(rel), "corpus/capture/%s/%s.body", session, req);
    unsigned char *body = hp_test_read_file(hp_testdata(rel), &body_len);
    REQUIRE(body != NULL);
    hp_multipart_part_t parts[8];
    size_t n = 0;
    int rc =
        hp_multipart_parse(boundary, (hp_str_t){(const char *)body, body_len}, parts, 8, &n, &err);
    if (rc != 0)
        fprintf(stderr, "  %s/%s: %s\n", session, req, err.msg);
    REQUIRE(rc == 0);

    size_t matched = 0, files = 0;
    snprintf(rel, sizeof(rel), "corpus/capture/%s", session);
    DIR *dir = opendir(hp_testdata(rel));
    REQUIRE(dir != NULL);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s.part-", req);
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        const char *dot;
        if (!starts_with(e->d_name, prefix) || strstr(e->d_name, ".ref") != NULL)
            continue;
        files++;
        char name[64];
        const char *start = e->d_name + strlen(prefix);
        dot = strchr(start, '.');
        snprintf(name, sizeof(name), "%.*s", (int)(dot ? dot - start : (long)strlen(start)), start);
        const hp_multipart_part_t *p = hp_multipart_find(parts, n, name);
        char file[600];
        snprintf(file, sizeof(file), "%s/%s", rel, e->d_name);
        size_t want_len;
        unsigned char *want = hp_test_read_file(hp_testdata(file), &want_len);
        CHECK(p != NULL && want != NULL);
        if (p != NULL && want != NULL && p->data.n == want_len &&
            memcmp(p->data.p, want, want_len) == 0)
            matched++;
        else
            fprintf(stderr, "  %s/%s: part %s differs\n", session, req, name);
        free(want);
    }
    closedir(dir);
    CHECK_EQ_INT(n, files);
    CHECK_EQ_INT(matched, files);
    free(body);
    free(ct);
    return matched;
}

static void test_go_capture(void)
{
    hp_str_t b;
    hp_err_t err;
    char *ct = capture_content_type(hp_testdata("corpus/capture/gopush_v1/req002.json"));
    REQUIRE(ct != NULL);
    REQUIRE(hp_multipart_boundary(hp_str_c(ct), &b, &err) == 0);
    CHECK(hp_str_eq_c(b, "470d3155e44ad61ef84dcba82e932c0d37432d0af8986a002c6a5a41e86f"));

    size_t len;
    unsigned char *body =
        hp_test_read_file(hp_testdata("corpus/capture/gopush_v1/req002.body"), &len);
    REQUIRE(body != NULL);
    hp_multipart_part_t parts[4];
    size_t n;
    REQUIRE(hp_multipart_parse(b, (hp_str_t){(const char *)body, len}, parts, 4, &n, &err) == 0);
    REQUIRE(n == 2);
    CHECK(hp_str_eq_c(parts[0].name, "profile"));
    CHECK(hp_str_eq_c(parts[0].filename, "profile.pprof"));
    CHECK(hp_str_eq_c(parts[0].content_type, "application/octet-stream"));
    CHECK(parts[0].data.n == 3598 && (unsigned char)parts[0].data.p[0] == 0x1f);
    CHECK(hp_str_eq_c(parts[1].name, "sample_type_config"));
    CHECK(hp_str_eq_c(parts[1].filename, "sample_type_config.json"));
    CHECK(parts[1].data.n == 185 && parts[1].data.p[0] == '{');
    CHECK(hp_multipart_find(parts, n, "sample_type_config") == &parts[1]);
    CHECK(hp_multipart_find(parts, n, "prev_profile") == NULL);
    free(body);
    free(ct); /* b borrowed from it */

    /* Every captured multipart request of every session. */
    static const char *sessions[] = {"gopush_v1", "gopush_legacy", "nodejs04_a"};
    size_t total = 0;
    for (size_t s = 0; s < HP_ARRAY_LEN(sessions); s++)
        for (int r = 1; r <= 9; r++) {
            char req[16], rel[128];
            size_t l;
            snprintf(req, sizeof(req), "req%03d", r);
            snprintf(rel, sizeof(rel), "corpus/capture/%s/%s.part-profile.pb.gz", sessions[s], req);
            unsigned char *exists = hp_test_read_file(hp_testdata(rel), &l);
            if (exists == NULL)
                continue;
            free(exists);
            total += check_capture(sessions[s], req);
        }
    CHECK_EQ_INT(total, 12); /* 6 + 1 + 5 extracted part files */
}

static void test_node_capture(void)
{
    char *ct = capture_content_type(hp_testdata("corpus/capture/nodejs04_a/req001.json"));
    REQUIRE(ct != NULL);
    hp_str_t b;
    hp_err_t err;
    REQUIRE(hp_multipart_boundary(hp_str_c(ct), &b, &err) == 0);
    CHECK(hp_str_eq_c(b, "----formdata-undici-024400236161"));
    free(ct);
    CHECK_EQ_INT(check_capture("nodejs04_a", "req001"), 1);
}

static void test_boundary(void)
{
    static const struct {
        const char *ct, *want;
    } ok[] = {
        {"multipart/form-data; boundary=abc", "abc"},
        {"Multipart/Form-Data;boundary=\"a b:c\"", "a b:c"},
        {"multipart/form-data; charset=utf-8; BOUNDARY = xyz ; x=y", "xyz"},
        {"multipart/form-data; name=\"a;b\"; boundary=q", "q"},
        {"multipart/form-data; flag; boundary=r;x", "r"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(ok); i++) {
        hp_str_t b;
        hp_err_t err;
        REQUIRE(hp_multipart_boundary(hp_str_c(ok[i].ct), &b, &err) == 0);
        CHECK(hp_str_eq_c(b, ok[i].want));
    }
    static const struct {
        const char *ct, *want;
    } bad[] = {
        {"application/octet-stream",
         "multipart: Content-Type \"application/octet-stream\" is not multipart"},
        {"", "is not multipart"},
        {"multipart/form-data", "multipart: no boundary in Content-Type"},
        {"multipart/form-data; boundary=", "invalid boundary"},
        {"multipart/form-data; boundary=\"\"", "invalid boundary"},
        {"multipart/form-data; boundary=12345678901234567890123456789012345678901234567890123456789"
         "012345678901",
         "invalid boundary in Content-Type (want 1 to 70 characters, got 71)"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        hp_str_t b;
        hp_err_t err;
        CHECK_EQ_INT(hp_multipart_boundary(hp_str_c(bad[i].ct), &b, &err), HP_EINVAL);
        CHECK_EQ_INT(err.code, HP_EINVAL);
        if (strstr(err.msg, bad[i].want) == NULL) {
            fprintf(stderr, "  case %zu: got \"%s\"\n", i, err.msg);
            CHECK(!"error message");
        }
    }
}

/* Hand-written bodies: preamble, epilogue, blanks after the boundary,
 * empty and header-less parts, boundary text inside data. */
static void test_shapes(void)
{
    const char *body = "preamble\r\n--XX\r\n"
                       "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
                       "1\r\n--XXnot-a-boundary\r\n--XX \t\r\n"
                       "content-disposition: form-data; x; filename=\"f;\\\"g\"; name=b\r\n"
                       "X-Other: y\r\n\r\n"
                       "\r\n--XX--\r\nepilogue";
    hp_multipart_part_t parts[4];
    size_t n;
    hp_err_t err;
    int rc = hp_multipart_parse(HP_STR("XX"), hp_str_c(body), parts, 4, &n, &err);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    REQUIRE(n == 2);
    CHECK(hp_str_eq_c(parts[0].name, "a"));
    CHECK(hp_str_eq_c(parts[0].data, "1\r\n--XXnot-a-boundary"));
    CHECK_EQ_INT(parts[0].filename.n, 0);
    CHECK_EQ_INT(parts[0].content_type.n, 0);
    CHECK(hp_str_eq_c(parts[1].name, "b"));
    CHECK(hp_str_eq_c(parts[1].filename, "f;\\\"g"));
    CHECK_EQ_INT(parts[1].data.n, 0);

    /* An empty form. */
    CHECK_EQ_INT(hp_multipart_parse(HP_STR("XX"), hp_str_c("--XX--\r\n"), parts, 4, &n, &err), 0);
    CHECK_EQ_INT(n, 0);
}

static void test_bad_bodies(void)
{
    static const char *part = "--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx\r\n";
    char many[512] = "";
    for (int i = 0; i < 5; i++)
        strcat(many, part);
    strcat(many, "--B--\r\n");
    const struct {
        const char *body, *want;
    } cases[] = {
        {"no boundary here", "multipart: boundary not found in the body"},
        {"", "multipart: boundary not found in the body"},
        {"--Bx\r\n", "boundary not found"},
        {"--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nxyz",
         "multipart: part 1 is truncated (no closing boundary)"},
        {"--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nxyz\r\n",
         "part 1 is truncated (no closing boundary)"},
        {"--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nxyz\r\n--B",
         "part 1 is truncated (no closing boundary)"},
        {"--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nxyz\r\n--B\r\n",
         "multipart: part 2 is truncated in its headers"},
        {"--B\r\nContent-Disposition: form-data; na", "part 1 is truncated in its headers"},
        {"--B\r\nContent-Type: text/plain\r\n\r\nxyz\r\n--B--",
         "multipart: part 1 has no name in its Content-Disposition"},
        {"--B\r\n\r\nxyz\r\n--B--", "part 1 has no name"},
        {"--B\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nxyz\r\n--B--",
         "part 1 has no name"},
        {many, "multipart: more than 4 parts"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_multipart_part_t parts[4];
        size_t n = 99;
        hp_err_t err;
        hp_err_clear(&err);
        CHECK_EQ_INT(hp_multipart_parse(HP_STR("B"), hp_str_c(cases[i].body), parts, 4, &n, &err),
                     HP_EINVAL);
        CHECK_EQ_INT(err.code, HP_EINVAL);
        if (strstr(err.msg, cases[i].want) == NULL) {
            fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, err.msg, cases[i].want);
            CHECK(!"error message");
        }
    }

    /* A header block over 8 KiB is refused; one just under is accepted. */
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, "--B\r\nContent-Disposition: form-data; name=\"p\"\r\nX-Pad: ");
    for (int i = 0; i < 9000; i++)
        hp_buf_putc(&b, 'a');
    hp_buf_puts(&b, "\r\n\r\nxyz\r\n--B--\r\n");
    hp_multipart_part_t parts[2];
    size_t n;
    hp_err_t err;
    CHECK_EQ_INT(hp_multipart_parse(HP_STR("B"), (hp_str_t){(const char *)b.data, b.len}, parts, 2,
                                    &n, &err),
                 HP_EINVAL);
    CHECK(strstr(err.msg, "multipart: headers of part 1 exceed 8192 bytes") != NULL);
    hp_buf_reset(&b);
    hp_buf_puts(&b, "--B\r\nContent-Disposition: form-data; name=\"p\"\r\nX-Pad: ");
    for (int i = 0; i < 8000; i++)
        hp_buf_putc(&b, 'a');
    hp_buf_puts(&b, "\r\n\r\nxyz\r\n--B--\r\n");
    CHECK_EQ_INT(hp_multipart_parse(HP_STR("B"), (hp_str_t){(const char *)b.data, b.len}, parts, 2,
                                    &n, &err),
                 0);
    CHECK(n == 1 && hp_str_eq_c(parts[0].data, "xyz"));
    hp_buf_fini(&b);

    /* An invalid boundary argument. */
    CHECK_EQ_INT(hp_multipart_parse(HP_STR(""), hp_str_c("--\r\n"), parts, 2, &n, &err), HP_EINVAL);
}

/* Every prefix of a real body is either refused or parses to parts that
 * lie inside the body (ASan checks nothing is read past it). */
static void test_prefixes(void)
{
    size_t len;
    unsigned char *body =
        hp_test_read_file(hp_testdata("corpus/capture/gopush_v1/req002.body"), &len);
    REQUIRE(body != NULL);
    hp_str_t b = HP_STR("470d3155e44ad61ef84dcba82e932c0d37432d0af8986a002c6a5a41e86f");
    size_t accepted = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, body, cut);
        hp_multipart_part_t parts[4];
        size_t n;
        hp_err_t err;
        if (hp_multipart_parse(b, (hp_str_t){(const char *)copy, cut}, parts, 4, &n, &err) == 0) {
            accepted++;
            CHECK_EQ_INT(n, 2);
        }
        free(copy);
    }
    /* Only the bodies that end after the closing "--" delimiter parse. */
    CHECK_EQ_INT(accepted, 3);
    free(body);
}

int main(void)
{
    HP_RUN(test_go_capture);
    HP_RUN(test_node_capture);
    HP_RUN(test_boundary);
    HP_RUN(test_shapes);
    HP_RUN(test_bad_bodies);
    HP_RUN(test_prefixes);
    return hp_test_done();
}
