/* The web UI: GET / answers the built UI's index.html and GET /assets/…
 * its files, from -querier.ui-dir (default: share/hotpath/ui beside the
 * binary's directory). The UI talks only to the public API; this file
 * only serves static files: a content type per extension, immutable
 * caching for content-hashed names, no-cache for the rest, ETags, and
 * nothing outside the UI directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "querier.h"

/* The largest file served: the UI's bundles are a few hundred KB. */
#define UI_MAX_FILE_BYTES (32u << 20)

typedef struct ui {
    char dir[PATH_MAX + 64]; /* the UI directory as configured; resolved on each request, so a
                              * directory built or mounted after start is served */
} ui_t;

static const struct {
    const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
};

/* The Content-Type of a file name, by its extension. */
static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < HP_ARRAY_LEN(content_types); i++)
        if (strcmp(dot, content_types[i].ext) == 0)
            return content_types[i].type;
    return "application/octet-stream";
}

static bool hash_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Whether a file name carries a content hash as Vite writes it
 * (name-HASH.ext, HASH 8 of [A-Za-z0-9_-]): its content never changes
 * under that name, so a browser may keep it for a year. */
static bool hashed_name(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strchr(base, '.');
    if (dot == NULL || dot - base < 10 || dot[-9] != '-')
        return false;
    for (const char *p = dot - 8; p < dot; p++)
        if (!hash_char(*p))
            return false;
    return true;
}

/* Whether a request path below /assets/ is a plain relative file name:
 * segments of [A-Za-z0-9._-], none empty or starting with '.' (no "..",
 * no hidden files), nothing percent-encoded. */
static bool safe_rel_path(hp_str_t p)
{
    if (p.n == 0 || p.n > 256)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < p.n; i++) {
        char c = p.p[i];
        if (c == '/') {
            if (seg_start)
                return false;
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.')
            return false;
        seg_start = false;
        if (!hash_char(c) && c != '.')
            return false;
    }
    return !seg_start;
}

/* Reads a regular file of at most UI_MAX_FILE_BYTES into out; its size and
 * modification time into st. */
static int read_file(const char *path, hp_buf_t *out, struct stat *st)
{
    /* non-blocking: opening a FIFO must not wait for a writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return HP_ENOTFOUND;
    int rc = 0;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || (uint64_t)st->st_size > UI_MAX_FILE_BYTES)
        rc = HP_ENOTFOUND;
    if (rc == 0)
        hp_buf_reserve(out, (size_t)st->st_size + 1);
    while (rc == 0 && out->len < (size_t)st->st_size) {
        ssize_t k = read(fd, out->data + out->len, (size_t)st->st_size - out->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            rc = HP_EINTERNAL;
        else
            out->len += (size_t)k;
    }
    close(fd);
    return rc;
}

/* Whether the request's If-None-Match names etag. */
static bool etag_matches(const hp_http_request_t *req, const char *etag)
{
    hp_str_t v = hp_http_header(req, "if-none-match");
    if (v.n == 1 && v.p[0] == '*')
        return true;
    size_t n = strlen(etag);
    for (size_t i = 0; v.p && i + n <= v.n; i++)
        if (memcmp(v.p + i, etag, n) == 0)
            return true;
    return false;
}

/* The type, caching and validation headers of a file; 304 without a
 * body when the client already holds this version. */
static void set_headers(const hp_http_request_t *req, hp_http_response_t *resp, const char *rel,
                        const struct stat *st)
{
    char tag[64];
    int k = snprintf(tag, sizeof(tag), "\"%llx-%llx\"", (unsigned long long)st->st_size,
                     (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                         (unsigned long long)st->st_mtim.tv_nsec);
    const char *etag = hp_arena_strndup(req->arena, tag, (size_t)k);
    resp->content_type = content_type(rel);
    hp_http_set_header(resp, "cache-control",
                       hashed_name(rel) ? "public, max-age=31536000, immutable" : "no-cache");
    hp_http_set_header(resp, "etag", etag);
    hp_http_set_header(resp, "x-content-type-options", "nosniff");
    if (etag_matches(req, etag)) {
        hp_buf_reset(&resp->body);
        resp->status = 304;
    }
}

/* Answers the file rel (relative to the UI directory, already checked by
 * safe_rel_path or a constant) with its type, caching headers and ETag. */
static void serve_file(const ui_t *ui, const char *rel, const hp_http_request_t *req,
                       hp_http_response_t *resp)
{
    char root[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
    bool have_root = realpath(ui->dir, root) != NULL;
    size_t root_len = have_root ? strlen(root) : 0;
    int n = have_root ? snprintf(path, sizeof(path), "%s/%s", root, rel) : -1;
    /* the name is checked, but a symlink inside the directory could still lead out of it */
    bool inside = n > 0 && (size_t)n < sizeof(path) && realpath(path, real) != NULL &&
                  strncmp(real, root, root_len) == 0 && real[root_len] == '/';
    struct stat st;
    if (!inside || read_file(real, &resp->body, &st) != 0) {
        hp_buf_reset(&resp->body);
        if (strcmp(rel, "index.html") == 0) {
            char msg[PATH_MAX + 300];
            snprintf(msg, sizeof(msg),
                     "the web UI is not installed: %s/index.html not found (make build builds it; "
                     "-querier.ui-dir names another directory)",
                     ui->dir);
            hp_http_error(resp, 404, msg);
        } else {
            hp_http_error(resp, 404, "not found");
        }
        return;
    }
    set_headers(req, resp, rel, &st);
}

/* GET and HEAD only (h2o leaves the body out of a HEAD answer). */
static bool get_or_head(const hp_http_request_t *req, hp_http_response_t *resp)
{
    if (hp_str_eq_c(req->method, "GET") || hp_str_eq_c(req->method, "HEAD"))
        return true;
    hp_http_error(resp, 405, "method not allowed: the UI is read with GET");
    hp_http_set_header(resp, "allow", "GET, HEAD");
    return false;
}

static void handle_index(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    if (get_or_head(req, resp))
        serve_file(ctx, "index.html", req, resp);
}

static void handle_asset(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    static const char prefix[] = "/assets/";
    if (!get_or_head(req, resp))
        return;
    hp_str_t rel = {req->path.p + sizeof(prefix) - 1, req->path.n - (sizeof(prefix) - 1)};
    if (!safe_rel_path(rel)) {
        hp_http_error(resp, 400, "bad asset path: only plain file names below /assets/ are served");
        return;
    }
    char name[300];
    snprintf(name, sizeof(name), "assets/%.*s", (int)rel.n, rel.p);
    serve_file(ctx, name, req, resp);
}

/* The UI directory: the configured one, else share/hotpath/ui beside the
 * directory of this binary (build/bin → build/share/hotpath/ui,
 * /usr/local/bin → /usr/local/share/hotpath/ui). */
static void ui_locate(const hp_config_t *cfg, ui_t *ui)
{
    char exe[PATH_MAX], dir[PATH_MAX + 32];
    const char *conf = cfg->querier.ui_dir;
    if (conf && *conf) {
        snprintf(dir, sizeof(dir), "%s", conf);
    } else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(dir, sizeof(dir), "%s/../share/hotpath/ui", n > 0 ? exe : ".");
    }
    snprintf(ui->dir, sizeof(ui->dir), "%s", dir);
}

void qry_register_ui(qry_t *q)
{
    ui_t *ui = hp_arena_alloc(&q->arena, sizeof(*ui));
    memset(ui, 0, sizeof(*ui));
    ui_locate(q->cfg, ui);
    char m[PATH_MAX + 96], index[PATH_MAX + 96];
    snprintf(index, sizeof(index), "%s/index.html", ui->dir);
    if (access(index, R_OK) == 0)
        HP_INFO("serving the web UI", "dir=%s", hp_log_q(m, sizeof(m), ui->dir));
    else
        HP_WARN("web UI not found (yet); GET / will say so until it is there", "dir=%s",
                hp_log_q(m, sizeof(m), ui->dir));
    hp_http_route(q->svc->http, NULL, "/", handle_index, ui);
    hp_http_route(q->svc->http, NULL, "/assets/*", handle_asset, ui);
}
