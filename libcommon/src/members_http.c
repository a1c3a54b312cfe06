/* GET /ring: the ring as a client sees it, for people (HTML) and tools (JSON). */
#include <string.h>
#include <strings.h>

#include "hotpath/http.h"
#include "hotpath/members.h"

static bool wants_json(const hp_http_request_t *req)
{
    hp_str_t a = hp_http_header(req, "accept");
    for (size_t i = 0; i + 16 <= a.n; i++)
        if (strncasecmp(a.p + i, "application/json", 16) == 0)
            return true;
    return false;
}

static void handle_ring(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    const hp_ring_page_t *page = ctx;
    hp_ring_view_t *v = hp_members_view(page->m);
    if (wants_json(req)) {
        resp->content_type = "application/json";
        hp_ring_view_write_json(v, &resp->body);
    } else {
        resp->content_type = "text/html; charset=utf-8";
        hp_ring_view_write_html(v, page->title, &resp->body);
    }
    hp_ring_view_release(v);
}

void hp_ring_page_route(hp_ring_page_t *page, hp_members_t *m, const char *title,
                        struct hp_http_server *http)
{
    page->m = m;
    page->title = title;
    hp_http_route(http, "GET", "/ring", handle_ring, page);
}
