/* Unit tests for members.h: real RPC servers on tcp://127.0.0.1 answering
 * ring.Probe, a members object probing them, and the views it publishes
 * (write and read sets, health, zones, instance changes, /ring output,
 * DNS discovery, reference counts). */
#include <nng/nng.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "hotpath/members.h"
#include "hotpath/ring.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "test.h"

#define MAX_NODES 6
#define NKEYS 10000

/* One instance: an RPC server answering ring.Probe with self. */
typedef struct node {
    hp_rpc_server_t *srv;
    hp_member_self_t self;
    char url[64];
} node_t;

typedef struct cluster {
    hp_pool_t *pool;
    node_t nodes[MAX_NODES];
    size_t n;
    char list[MAX_NODES * 64];
} cluster_t;

/* Starts node nd serving method with fn (ctx: its self unless given). */
static bool node_serve(hp_pool_t *pool, node_t *nd, hp_rpc_handler_fn fn, void *ctx)
{
    hp_rpc_server_config_t cfg = {"tcp://127.0.0.1:0", 4, 0};
    hp_err_t err;
    if (hp_rpc_server_new(pool, &cfg, &nd->srv, &err) != 0)
        return false;
    hp_rpc_server_handle(nd->srv, "ring.Probe", fn, ctx ? ctx : &nd->self);
    if (hp_rpc_server_start(nd->srv, &err) != 0)
        return false;
    snprintf(nd->url, sizeof(nd->url), "tcp://127.0.0.1:%d", hp_rpc_server_port(nd->srv));
    return true;
}

static void node_stop(node_t *nd)
{
    if (nd->srv == NULL)
        return;
    hp_rpc_server_stop(nd->srv);
    hp_rpc_server_free(nd->srv);
    nd->srv = NULL;
}

/* Starts n nodes: ids[i], zones[i] (zones may be NULL), all ACTIVE; the
 * member list joins their URLs. */
static void cluster_start(cluster_t *c, size_t n, const char *const *ids, const char *const *zones)
{
    memset(c, 0, sizeof(*c));
    REQUIRE(hp_pool_start(2, &c->pool) == 0);
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        node_t *nd = &c->nodes[i];
        nd->self.instance_id = ids[i];
        nd->self.zone = zones ? zones[i] : "";
        atomic_init(&nd->self.state, HP_MEMBER_ACTIVE);
        REQUIRE(node_serve(c->pool, nd, hp_members_probe_handler, NULL));
        if (i > 0)
            strcat(c->list, ",");
        strcat(c->list, nd->url);
    }
}

static void cluster_stop(cluster_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        node_stop(&c->nodes[i]);
    hp_pool_stop(c->pool);
}

static hp_members_t *members_for(const char *list, int64_t timeout_ms, bool zones)
{
    hp_members_config_t cfg = {.members = list,
                               .num_tokens = 64,
                               .heartbeat_period_ms = 1000,
                               .heartbeat_timeout_ms = timeout_ms,
                               .zone_awareness = zones};
    hp_members_t *m = NULL;
    hp_err_t err;
    if (hp_members_new(&cfg, &m, &err) != 0)
        fprintf(stderr, "  hp_members_new: %s\n", err.msg);
    return m;
}

/* The view index of url, or SIZE_MAX. */
static size_t view_index(const hp_ring_view_t *v, const char *url)
{
    for (size_t i = 0; i < hp_ring_view_size(v); i++) {
        hp_member_info_t info;
        hp_ring_view_member(v, i, &info);
        if (strcmp(info.url, url) == 0)
            return i;
    }
    return SIZE_MAX;
}

static hp_member_info_t member_info(const hp_ring_view_t *v, size_t i)
{
    hp_member_info_t info;
    hp_ring_view_member(v, i, &info);
    return info;
}

static bool contains(const size_t *set, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == x)
            return true;
    return false;
}

static uint32_t key_of(uint32_t k)
{
    return k * 2654435761u;
}

static const char *ids5[] = {"ingester-0", "ingester-1", "ingester-2", "ingester-3", "ingester-4"};

/* Before a probe nothing is known; one probe round discovers every
 * member's ID, zone and state. */
static void test_probe_discovers(void)
{
    static const char *zones[] = {"zone-a", "zone-b", "zone-c"};
    cluster_t c;
    cluster_start(&c, 3, ids5, zones);
    atomic_store(&c.nodes[2].self.state, HP_MEMBER_JOINING);
    hp_members_t *m = members_for(c.list, 60000, false);
    REQUIRE(m != NULL);
    CHECK(!hp_members_probed(m));
    hp_ring_view_t *v = hp_members_view(m);
    REQUIRE(hp_ring_view_size(v) == 3);
    size_t set[3];
    for (size_t i = 0; i < 3; i++) {
        hp_member_info_t info = member_info(v, i);
        CHECK(info.state == HP_MEMBER_UNKNOWN && !info.healthy && info.last_heartbeat_ms == 0);
        CHECK_EQ_STR(info.instance_id, "");
        CHECK(info.ownership == 0);
    }
    CHECK_EQ_INT(hp_ring_view_read_set(v, set), 0);
    CHECK_EQ_INT(hp_ring_view_write_set(v, 1, 3, set), 0);
    hp_ring_view_release(v);

    int64_t before = hp_now_ms();
    hp_members_probe_now(m);
    CHECK(hp_members_probed(m));
    v = hp_members_view(m);
    double sum = 0;
    for (size_t n = 0; n < 3; n++) {
        size_t i = view_index(v, c.nodes[n].url);
        REQUIRE(i != SIZE_MAX);
        hp_member_info_t info = member_info(v, i);
        CHECK_EQ_STR(info.instance_id, ids5[n]);
        CHECK_EQ_STR(info.zone, zones[n]);
        CHECK_EQ_INT(info.state, n == 2 ? HP_MEMBER_JOINING : HP_MEMBER_ACTIVE);
        CHECK(info.healthy);
        CHECK(info.last_heartbeat_ms >= before && info.last_heartbeat_ms <= hp_now_ms());
        CHECK(info.ownership > 0.15 && info.ownership < 0.5);
        sum += info.ownership;
    }
    CHECK(sum > 0.999 && sum < 1.001);
    CHECK_EQ_STR(hp_member_state_name(HP_MEMBER_LEAVING), "LEAVING");
    hp_ring_view_release(v);
    hp_members_free(m);
    cluster_stop(&c);
}

/* IDs of ring.h's placement of key over ids (sorted) for rf. */
static size_t ring_ids(const hp_ring_t *r, const char *const *sorted_ids, uint32_t key, size_t rf,
                       const char **out)
{
    size_t idx[MAX_NODES];
    size_t n = hp_ring_get(r, key, rf, idx);
    for (size_t i = 0; i < n; i++)
        out[i] = sorted_ids[idx[i]];
    return n;
}

/* Write sets: rf distinct ACTIVE members, placed as ring.h places them,
 * the same from every client; LEAVING and JOINING members are skipped. */
static void test_write_sets(void)
{
    cluster_t c;
    cluster_start(&c, 5, ids5, NULL);
    hp_members_t *m = members_for(c.list, 60000, false), *m2 = members_for(c.list, 60000, false);
    REQUIRE(m != NULL && m2 != NULL);
    hp_members_probe_now(m);
    hp_members_probe_now(m2);
    hp_ring_t *ring = hp_ring_new(ids5, 5, 64); /* ids5 is sorted */
    hp_ring_view_t *v = hp_members_view(m), *v2 = hp_members_view(m2);
    for (uint32_t k = 0; k < NKEYS; k++) {
        size_t a[3], b[3];
        const char *want[5];
        REQUIRE(hp_ring_view_write_set(v, key_of(k), 3, a) == 3);
        REQUIRE(hp_ring_view_write_set(v2, key_of(k), 3, b) == 3);
        CHECK(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
        ring_ids(ring, ids5, key_of(k), 3, want);
        for (size_t i = 0; i < 3; i++) {
            CHECK_EQ_STR(member_info(v, a[i]).instance_id, want[i]);
            CHECK_EQ_STR(member_info(v2, b[i]).instance_id, want[i]);
        }
    }
    hp_ring_view_release(v);
    hp_ring_view_release(v2);

    atomic_store(&c.nodes[1].self.state, HP_MEMBER_LEAVING);
    atomic_store(&c.nodes[3].self.state, HP_MEMBER_JOINING);
    hp_members_probe_now(m);
    v = hp_members_view(m);
    size_t leaving = view_index(v, c.nodes[1].url), joining = view_index(v, c.nodes[3].url);
    for (uint32_t k = 0; k < NKEYS; k++) {
        size_t a[4];
        const char *order[5], *active[3];
        size_t na = 0;
        REQUIRE(hp_ring_view_write_set(v, key_of(k), 3, a) == 3);
        CHECK(!contains(a, 3, leaving) && !contains(a, 3, joining));
        ring_ids(ring, ids5, key_of(k), 5, order); /* the walk skips nodes 1 and 3 */
        for (size_t i = 0; i < 5; i++)
            if (strcmp(order[i], ids5[1]) != 0 && strcmp(order[i], ids5[3]) != 0)
                active[na++] = order[i];
        for (size_t i = 0; i < 3; i++)
            CHECK_EQ_STR(member_info(v, a[i]).instance_id, active[i]);
        CHECK_EQ_INT(hp_ring_view_write_set(v, key_of(k), 4, a), 3); /* only 3 ACTIVE */
    }
    size_t rs[5];
    CHECK_EQ_INT(hp_ring_view_read_set(v, rs), 4); /* LEAVING serves reads, JOINING (still loading) does not */
    CHECK_EQ_INT(hp_ring_view_write_set(v, 7, 0, rs), 0);
    hp_ring_view_release(v);
    hp_ring_free(ring);
    hp_members_free(m);
    hp_members_free(m2);
    cluster_stop(&c);
}

/* A member that stops answering becomes unhealthy once the heartbeat
 * timeout passes: it leaves write and read sets but keeps its ID and
 * state; LEAVING members keep serving reads. */
static void test_unhealthy_members(void)
{
    cluster_t c;
    cluster_start(&c, 4, ids5, NULL);
    atomic_store(&c.nodes[3].self.state, HP_MEMBER_LEAVING);
    hp_members_t *m = members_for(c.list, 300, false);
    REQUIRE(m != NULL);
    hp_members_probe_now(m);
    hp_ring_view_t *v = hp_members_view(m);
    size_t rs[4];
    CHECK_EQ_INT(hp_ring_view_read_set(v, rs), 4);
    hp_ring_view_release(v);

    node_stop(&c.nodes[0]);
    usleep(350 * 1000);
    hp_members_probe_now(m);
    v = hp_members_view(m);
    size_t dead = view_index(v, c.nodes[0].url), leaving = view_index(v, c.nodes[3].url);
    hp_member_info_t info = member_info(v, dead);
    CHECK(!info.healthy);
    CHECK_EQ_STR(info.instance_id, ids5[0]);
    CHECK_EQ_INT(info.state, HP_MEMBER_ACTIVE);
    for (size_t i = 1; i < 4; i++)
        CHECK(member_info(v, view_index(v, c.nodes[i].url)).healthy);
    for (uint32_t k = 0; k < NKEYS; k++) {
        size_t a[3];
        CHECK_EQ_INT(hp_ring_view_write_set(v, key_of(k), 3, a), 2); /* nodes 1 and 2 */
        CHECK(!contains(a, 2, dead) && !contains(a, 2, leaving));
    }
    size_t n = hp_ring_view_read_set(v, rs);
    CHECK_EQ_INT(n, 3);
    CHECK(contains(rs, n, leaving) && !contains(rs, n, dead));
    CHECK(hp_members_probed(m));
    hp_ring_view_release(v);
    hp_members_free(m);
    cluster_stop(&c);
}

/* A reported successful call counts as a heartbeat: an unhealthy member
 * (here: one whose answers became invalid) is healthy again at once. */
static void test_report_refreshes_health(void)
{
    cluster_t c;
    cluster_start(&c, 3, ids5, NULL);
    hp_members_t *m = members_for(c.list, 300, false);
    REQUIRE(m != NULL);
    hp_members_probe_now(m);
    usleep(350 * 1000);
    c.nodes[0].self.instance_id = ""; /* an answer without an ID is a failed probe */
    hp_members_probe_now(m);
    hp_ring_view_t *v = hp_members_view(m);
    size_t i = view_index(v, c.nodes[0].url);
    CHECK(!member_info(v, i).healthy);
    CHECK_EQ_STR(member_info(v, i).instance_id, ids5[0]); /* the last valid answer stays */
    hp_members_report(m, v, i, false);
    hp_ring_view_t *v2 = hp_members_view(m);
    CHECK(!member_info(v2, view_index(v2, c.nodes[0].url)).healthy);
    hp_ring_view_release(v2);

    int64_t before = hp_now_ms();
    hp_members_report(m, v, i, true);
    v2 = hp_members_view(m);
    hp_member_info_t info = member_info(v2, view_index(v2, c.nodes[0].url));
    CHECK(info.healthy && info.last_heartbeat_ms >= before);
    size_t a[3];
    CHECK_EQ_INT(hp_ring_view_write_set(v2, 12345, 3, a), 3);
    CHECK(!member_info(v, i).healthy); /* the old view did not change */
    hp_ring_view_release(v2);
    hp_ring_view_release(v);
    hp_members_free(m);
    cluster_stop(&c);
}

/* Zone awareness: replicas never share a zone (an empty zone is one zone
 * value); without it they do. */
static void test_zone_aware(void)
{
    static const char *ids[] = {"ingester-0", "ingester-1", "ingester-2",
                                "ingester-3", "ingester-4", "ingester-5"};
    static const char *zones[] = {"a", "a", "b", "b", "c", "c"};
    cluster_t c;
    cluster_start(&c, 6, ids, zones);
    hp_members_t *za = members_for(c.list, 60000, true), *plain = members_for(c.list, 60000, false);
    REQUIRE(za != NULL && plain != NULL);
    hp_members_probe_now(za);
    hp_members_probe_now(plain);
    hp_ring_view_t *v = hp_members_view(za), *pv = hp_members_view(plain);
    size_t repeated = 0;
    for (uint32_t k = 0; k < NKEYS; k++) {
        size_t a[4];
        REQUIRE(hp_ring_view_write_set(v, key_of(k), 3, a) == 3);
        const char *z0 = member_info(v, a[0]).zone, *z1 = member_info(v, a[1]).zone,
                   *z2 = member_info(v, a[2]).zone;
        CHECK(strcmp(z0, z1) != 0 && strcmp(z1, z2) != 0 && strcmp(z0, z2) != 0);
        CHECK_EQ_INT(hp_ring_view_write_set(v, key_of(k), 4, a), 3); /* 3 zones */
        REQUIRE(hp_ring_view_write_set(pv, key_of(k), 3, a) == 3);
        z0 = member_info(pv, a[0]).zone, z1 = member_info(pv, a[1]).zone, z2 = member_info(pv, a[2]).zone;
        repeated += strcmp(z0, z1) == 0 || strcmp(z1, z2) == 0 || strcmp(z0, z2) == 0;
    }
    CHECK(repeated > NKEYS / 10);
    hp_ring_view_release(v);
    hp_ring_view_release(pv);
    hp_members_free(za);
    hp_members_free(plain);

    /* Members without a zone share the zone "": one replica among them. */
    cluster_t e;
    cluster_start(&e, 3, ids, NULL);
    hp_members_t *ze = members_for(e.list, 60000, true);
    REQUIRE(ze != NULL);
    hp_members_probe_now(ze);
    v = hp_members_view(ze);
    size_t a[3];
    CHECK_EQ_INT(hp_ring_view_write_set(v, 99, 3, a), 1);
    hp_ring_view_release(v);
    hp_members_free(ze);
    cluster_stop(&e);
    cluster_stop(&c);
}

/* A different process answering at a member's URL: the member takes its
 * instance ID and tokens; views taken before keep the old ones. */
static void test_instance_id_change(void)
{
    cluster_t c;
    cluster_start(&c, 3, ids5, NULL);
    hp_members_t *m = members_for(c.list, 60000, false);
    REQUIRE(m != NULL);
    hp_members_probe_now(m);
    hp_ring_view_t *v1 = hp_members_view(m);
    size_t i = view_index(v1, c.nodes[0].url);
    double own1 = member_info(v1, i).ownership;

    c.nodes[0].self.instance_id = "ingester-9";
    hp_members_probe_now(m);
    hp_ring_view_t *v2 = hp_members_view(m);
    hp_member_info_t info = member_info(v2, view_index(v2, c.nodes[0].url));
    CHECK_EQ_STR(info.instance_id, "ingester-9");
    CHECK(info.healthy && info.ownership != own1);
    CHECK_EQ_STR(member_info(v1, i).instance_id, ids5[0]);
    const char *now_ids[] = {"ingester-1", "ingester-2", "ingester-9"};
    hp_ring_t *ring = hp_ring_new(now_ids, 3, 64);
    double sum = 0;
    for (size_t k = 0; k < 3; k++)
        sum += member_info(v2, k).ownership;
    CHECK(sum > 0.999 && sum < 1.001);
    for (uint32_t k = 0; k < NKEYS; k++) {
        size_t a[2];
        const char *want[2];
        REQUIRE(hp_ring_view_write_set(v2, key_of(k), 2, a) == 2);
        ring_ids(ring, now_ids, key_of(k), 2, want);
        CHECK_EQ_STR(member_info(v2, a[0]).instance_id, want[0]);
        CHECK_EQ_STR(member_info(v2, a[1]).instance_id, want[1]);
    }
    hp_ring_free(ring);
    hp_ring_view_release(v1);
    hp_ring_view_release(v2);
    hp_members_free(m);
    cluster_stop(&c);
}

/* Calls ring.Probe through client and returns the answering instance ID
 * (caller frees), or NULL. */
static char *probe_id(hp_rpc_client_t *client)
{
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    char *id = NULL;
    if (hp_rpc_call(client, "ring.Probe", HP_STR(""), "", 0, 2000, &resp, &err) == 0) {
        Hotpath__V1__ProbeResponse *r = hotpath__v1__probe_response__unpack(NULL, resp.len, resp.data);
        if (r != NULL) {
            id = strdup(r->instance_id);
            hotpath__v1__probe_response__free_unpacked(r, NULL);
        }
    }
    hp_buf_fini(&resp);
    return id;
}

/* Views stay whole (members, clients) after the members object moved on
 * or was freed. */
static void test_views_outlive_members(void)
{
    cluster_t c;
    cluster_start(&c, 3, ids5, NULL);
    hp_members_t *m = members_for(c.list, 60000, false);
    REQUIRE(m != NULL);
    hp_ring_view_t *v0 = hp_members_view(m);
    hp_members_probe_now(m);
    hp_ring_view_t *v1 = hp_members_view(m);
    hp_members_free(m);
    REQUIRE(hp_ring_view_size(v0) == 3 && hp_ring_view_size(v1) == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(member_info(v0, i).state == HP_MEMBER_UNKNOWN);
        hp_member_info_t info = member_info(v1, i);
        CHECK(info.healthy && info.state == HP_MEMBER_ACTIVE);
        CHECK(hp_ring_view_client(v0, i) == hp_ring_view_client(v1, i)); /* one client per member */
        char *id = probe_id(hp_ring_view_client(v1, i));
        CHECK_EQ_STR(id, info.instance_id);
        free(id);
    }
    size_t a[3];
    CHECK_EQ_INT(hp_ring_view_write_set(v1, 5, 3, a), 3);
    hp_ring_view_release(v0);
    hp_ring_view_release(v1);
    cluster_stop(&c);
}

/* /ring: JSON lists every member with its fields (strings escaped); the
 * HTML page escapes what members report. */
static void test_json_and_html(void)
{
    static const char *ids[] = {"ing\"<1>&", "ingester-1", "ingester-2"};
    static const char *zones[] = {"z<b>", "", ""};
    cluster_t c;
    cluster_start(&c, 3, ids, zones);
    node_stop(&c.nodes[2]); /* never answers */
    hp_members_t *m = members_for(c.list, 60000, false);
    REQUIRE(m != NULL);
    hp_members_probe_now(m);
    hp_ring_view_t *v = hp_members_view(m);
    hp_buf_t out = HP_BUF_INIT;
    hp_ring_view_write_json(v, &out);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)out.data, out.len, 0, &jerr);
    REQUIRE(doc != NULL);
    json_t *arr = json_object_get(doc, "members");
    REQUIRE(json_is_array(arr) && json_array_size(arr) == 3);
    for (size_t n = 0; n < 3; n++) {
        json_t *e = json_array_get(arr, view_index(v, c.nodes[n].url));
        CHECK_EQ_STR(json_string_value(json_object_get(e, "url")), c.nodes[n].url);
        CHECK_EQ_STR(json_string_value(json_object_get(e, "id")), n < 2 ? ids[n] : "");
        CHECK_EQ_STR(json_string_value(json_object_get(e, "zone")), n < 2 ? zones[n] : "");
        CHECK_EQ_STR(json_string_value(json_object_get(e, "state")), n < 2 ? "ACTIVE" : "UNKNOWN");
        CHECK(json_is_boolean(json_object_get(e, "healthy")));
        CHECK(json_boolean_value(json_object_get(e, "healthy")) == (n < 2));
        CHECK(json_is_integer(json_object_get(e, "last_heartbeat")));
        CHECK(json_is_number(json_object_get(e, "ownership")));
    }
    json_decref(doc);

    hp_buf_reset(&out);
    hp_ring_view_write_html(v, "ingesters <&>", &out);
    const char *html = hp_buf_cstr(&out);
    CHECK(strstr(html, "<title>ingesters &lt;&amp;&gt;</title>") != NULL);
    CHECK(strstr(html, "<table") != NULL);
    CHECK(strstr(html, "ing&quot;&lt;1&gt;&amp;") != NULL && strstr(html, "<1>") == NULL);
    CHECK(strstr(html, "z&lt;b&gt;") != NULL);
    for (size_t n = 0; n < 3; n++)
        CHECK(strstr(html, c.nodes[n].url) != NULL);
    CHECK(strstr(html, "never") != NULL && strstr(html, "s ago") != NULL);
    hp_buf_fini(&out);
    hp_ring_view_release(v);
    hp_members_free(m);
    cluster_stop(&c);
}

/* A hostile answer for one member: raw bytes to reply. */
typedef struct raw_answer {
    hp_buf_t bytes;
} raw_answer_t;

static int raw_probe(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    raw_answer_t *a = ctx;
    hp_buf_append(out, a->bytes.data, a->bytes.len);
    return 0;
}

/* An answer: ID of id_len 'i's, zone of zone_len 'z's, state. */
static void answer_make(raw_answer_t *a, size_t id_len, size_t zone_len, uint64_t state)
{
    char s[400];
    memset(s, 'i', sizeof(s));
    hp_pb_put_bytes(&a->bytes, 1, s, id_len);
    memset(s, 'z', sizeof(s));
    hp_pb_put_bytes(&a->bytes, 2, s, zone_len);
    hp_pb_put_uint(&a->bytes, 3, state);
}

/* Over-long IDs or zones, states outside 1..3 and garbage are failed
 * probes; 256-byte IDs and zones are fine. */
static void test_invalid_answers(void)
{
    raw_answer_t ans[5] = {0};
    answer_make(&ans[0], 256, 256, 2);               /* valid, at the limits */
    answer_make(&ans[1], 257, 3, 2);                 /* ID too long */
    answer_make(&ans[2], 10, 300, 2);                /* zone too long */
    answer_make(&ans[3], 10, 3, 7);                  /* bad state */
    hp_buf_append(&ans[4].bytes, "\xff\xff\xff", 3); /* not protobuf */
    hp_pool_t *pool;
    REQUIRE(hp_pool_start(2, &pool) == 0);
    node_t nodes[5] = {0};
    char list[5 * 64] = "";
    for (size_t i = 0; i < 5; i++) {
        REQUIRE(node_serve(pool, &nodes[i], raw_probe, &ans[i]));
        strcat(list, i ? "," : "");
        strcat(list, nodes[i].url);
    }
    hp_members_t *m = members_for(list, 60000, false);
    REQUIRE(m != NULL);
    hp_members_probe_now(m);
    hp_ring_view_t *v = hp_members_view(m);
    for (size_t i = 0; i < 5; i++) {
        hp_member_info_t info = member_info(v, view_index(v, nodes[i].url));
        CHECK(info.healthy == (i == 0));
        CHECK_EQ_INT(strlen(info.instance_id), i == 0 ? 256 : 0);
        CHECK_EQ_INT(info.state, i == 0 ? HP_MEMBER_ACTIVE : HP_MEMBER_UNKNOWN);
    }
    hp_ring_view_release(v);
    hp_members_free(m);
    for (size_t i = 0; i < 5; i++) {
        node_stop(&nodes[i]);
        hp_buf_fini(&ans[i].bytes);
    }
    hp_pool_stop(pool);
}

/* The handler encodes self, reading the state as it is now. */
static void test_probe_handler(void)
{
    hp_member_self_t self = {.instance_id = "ingester-7", .zone = "eu-1"};
    atomic_init(&self.state, HP_MEMBER_JOINING);
    hp_rpc_call_t call = {.payload = (const uint8_t *)""};
    hp_buf_t out = HP_BUF_INIT;
    hp_err_t err;
    for (int st = HP_MEMBER_JOINING; st <= HP_MEMBER_LEAVING; st++) {
        atomic_store(&self.state, st);
        hp_buf_reset(&out);
        REQUIRE(hp_members_probe_handler(&self, &call, &out, &err) == 0);
        Hotpath__V1__ProbeResponse *r = hotpath__v1__probe_response__unpack(NULL, out.len, out.data);
        REQUIRE(r != NULL);
        CHECK_EQ_STR(r->instance_id, "ingester-7");
        CHECK_EQ_STR(r->zone, "eu-1");
        CHECK_EQ_INT(r->state, st);
        hotpath__v1__probe_response__free_unpacked(r, NULL);
    }
    hp_buf_fini(&out);
}

/* Bad lists are refused with a message naming the entry; duplicates are
 * one member. */
static void test_bad_lists(void)
{
    static const char *bad[] = {"foo",           "dns+:1",
                                "dns+host",      "dns+host:",
                                "dns+host:0",    "dns+host:99999",
                                "dns+host:12ab", "tcp://",
                                "http://a:1",    "tcp://127.0.0.1:1,foo"};
    hp_members_config_t cfg = {0};
    static char sentinel;
    hp_members_t *m = (hp_members_t *)&sentinel; /* must be reset to NULL on failure */
    hp_err_t err;
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        cfg.members = bad[i];
        CHECK_EQ_INT(hp_members_new(&cfg, &m, &err), HP_EINVAL);
        CHECK(m == NULL);
        const char *entry = strrchr(bad[i], ',') ? strrchr(bad[i], ',') + 1 : bad[i];
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", entry);
        CHECK(strstr(err.msg, quoted) != NULL);
    }
    static const char *empty[] = {"", " , ", NULL};
    for (size_t i = 0; i < HP_ARRAY_LEN(empty); i++) {
        cfg.members = empty[i];
        CHECK_EQ_INT(hp_members_new(&cfg, &m, &err), HP_EINVAL);
        CHECK(strstr(err.msg, "no ring members: set -ring.members") != NULL);
    }
    cfg.members = "tcp://127.0.0.1:1, tcp://127.0.0.1:1,ipc:///tmp/hp-members-test,inproc://x";
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    hp_ring_view_t *v = hp_members_view(m);
    CHECK_EQ_INT(hp_ring_view_size(v), 3);
    hp_ring_view_release(v);
    hp_members_free(m);
    hp_members_free(NULL);
    hp_members_stop(NULL);
}

/* dns+localhost:PORT becomes a member per address of localhost; a static
 * URL equal to one of them is not listed twice. */
static void test_dns_localhost(void)
{
    cluster_t c;
    cluster_start(&c, 1, ids5, NULL);
    int port = atoi(strrchr(c.nodes[0].url, ':') + 1);
    char list[160], v4[64], v6[64];
    snprintf(list, sizeof(list), "dns+localhost:%d", port);
    snprintf(v4, sizeof(v4), "tcp://127.0.0.1:%d", port);
    snprintf(v6, sizeof(v6), "tcp://[::1]:%d", port);
    hp_members_config_t cfg = {.members = list, .heartbeat_period_ms = 300};
    hp_members_t *m;
    hp_err_t err;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    hp_members_probe_now(m);
    hp_ring_view_t *v = hp_members_view(m);
    size_t n = hp_ring_view_size(v), answered = 0;
    CHECK(n >= 1 && n <= 2);
    for (size_t i = 0; i < n; i++) {
        hp_member_info_t info = member_info(v, i);
        CHECK(strcmp(info.url, v4) == 0 || strcmp(info.url, v6) == 0);
        answered += strcmp(info.instance_id, ids5[0]) == 0 && info.healthy;
    }
    bool had_v4 = view_index(v, v4) != SIZE_MAX;
    CHECK(answered == had_v4); /* the server listens on IPv4 only */
    hp_ring_view_release(v);
    hp_members_free(m);

    char both[240];
    snprintf(both, sizeof(both), "%s,%s", v4, list);
    cfg.members = both;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    v = hp_members_view(m);
    CHECK_EQ_INT(hp_ring_view_size(v), n + (had_v4 ? 0 : 1));
    CHECK(view_index(v, v4) != SIZE_MAX);
    hp_ring_view_release(v);
    hp_members_free(m);

    snprintf(list, sizeof(list), "dns+[127.0.0.1]:%d", port); /* brackets as in URLs */
    cfg.members = list;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    v = hp_members_view(m);
    CHECK(hp_ring_view_size(v) == 1 && view_index(v, v4) == 0);
    hp_ring_view_release(v);
    hp_members_free(m);
    cluster_stop(&c);
}

/* An unresolvable name is not an error: it is logged, contributes no
 * member, and is retried at every refresh. */
static void test_dns_unresolvable(void)
{
    hp_members_config_t cfg = {.members = "dns+hotpath-no-such-host.invalid:9095"};
    hp_members_t *m;
    hp_err_t err;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    hp_ring_view_t *v = hp_members_view(m);
    CHECK_EQ_INT(hp_ring_view_size(v), 0);
    size_t a[1];
    CHECK_EQ_INT(hp_ring_view_write_set(v, 1, 1, a), 0);
    CHECK_EQ_INT(hp_ring_view_read_set(v, a), 0);
    hp_ring_view_release(v);
    hp_members_free(m);

    cfg.members = "dns+hotpath-no-such-host.invalid:9095,tcp://127.0.0.1:1";
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    v = hp_members_view(m);
    CHECK_EQ_INT(hp_ring_view_size(v), 1);
    hp_ring_view_release(v);
    hp_members_free(m);
}

/* A resolver the test controls: answers with urls, or fails. */
typedef struct fake_dns {
    pthread_mutex_t mu;
    const char *urls[MAX_NODES];
    size_t n;
    bool fail;
    atomic_int calls;
} fake_dns_t;

static int fake_resolve(void *ctx, const char *host, const char *port, char ***urls, size_t *n)
{
    fake_dns_t *d = ctx;
    pthread_mutex_lock(&d->mu);
    int rc = d->fail ? EAI_AGAIN : 0;
    if (rc == 0) {
        *urls = calloc(d->n + 1, sizeof(char *));
        for (size_t i = 0; i < d->n; i++)
            (*urls)[i] = strdup(d->urls[i]);
        *n = d->n;
    }
    pthread_mutex_unlock(&d->mu);
    atomic_fetch_add(&d->calls, 1);
    return rc;
}

static void fake_set(fake_dns_t *d, const char *a, const char *b, bool fail)
{
    pthread_mutex_lock(&d->mu);
    d->urls[0] = a;
    d->urls[1] = b;
    d->n = 2;
    d->fail = fail;
    pthread_mutex_unlock(&d->mu);
}

/* Polls (bounded) until the view has url present or not. */
static bool wait_member(hp_members_t *m, const char *url, bool present)
{
    for (int i = 0; i < 150; i++) {
        hp_ring_view_t *v = hp_members_view(m);
        bool has = view_index(v, url) != SIZE_MAX;
        hp_ring_view_release(v);
        if (has == present)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

/* DNS refreshes in the background: new addresses become members (and get
 * probed), vanished ones are dropped while views holding them stay valid,
 * and a failed lookup keeps the previous members. */
static void test_dns_refresh(void)
{
    cluster_t c;
    cluster_start(&c, 3, ids5, NULL);
    fake_dns_t d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_set(&d, c.nodes[0].url, c.nodes[1].url, false);
    hp_members_config_t cfg = {.members = "dns+ingesters.test:9095",
                               .heartbeat_period_ms = 100,
                               .dns_refresh_ms = 30,
                               .resolve = fake_resolve,
                               .resolve_ctx = &d};
    hp_members_t *m;
    hp_err_t err;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    hp_ring_view_t *v1 = hp_members_view(m);
    REQUIRE(hp_ring_view_size(v1) == 2);
    size_t ia = view_index(v1, c.nodes[0].url), ib = view_index(v1, c.nodes[1].url);
    REQUIRE(ia != SIZE_MAX && ib != SIZE_MAX);

    fake_set(&d, c.nodes[1].url, c.nodes[2].url, false);
    REQUIRE(hp_members_start(m, &err) == 0);
    CHECK(hp_members_start(m, &err) == 0); /* already running */
    CHECK(wait_member(m, c.nodes[0].url, false));
    CHECK(wait_member(m, c.nodes[2].url, true));
    for (int i = 0; i < 150 && !hp_members_probed(m); i++)
        usleep(20 * 1000);
    hp_ring_view_t *v2 = hp_members_view(m);
    size_t ic = view_index(v2, c.nodes[2].url);
    CHECK(hp_ring_view_size(v2) == 2 && ic != SIZE_MAX);
    CHECK(hp_ring_view_client(v2, view_index(v2, c.nodes[1].url)) == hp_ring_view_client(v1, ib));
    hp_ring_view_release(v2);

    fake_set(&d, NULL, NULL, true); /* the resolver fails: members stay */
    int calls = atomic_load(&d.calls);
    for (int i = 0; i < 150 && atomic_load(&d.calls) < calls + 2; i++)
        usleep(20 * 1000);
    v2 = hp_members_view(m);
    CHECK(hp_ring_view_size(v2) == 2 && view_index(v2, c.nodes[2].url) != SIZE_MAX);
    hp_ring_view_release(v2);

    hp_members_stop(m);
    hp_members_stop(m);
    hp_members_free(m);
    char *id = probe_id(hp_ring_view_client(v1, ia)); /* dropped member, view still valid */
    CHECK_EQ_STR(id, ids5[0]);
    free(id);
    hp_ring_view_release(v1);
    cluster_stop(&c);
}

/* The background thread probes right away and every period. */
static void test_background_probes(void)
{
    cluster_t c;
    cluster_start(&c, 2, ids5, NULL);
    hp_members_config_t cfg = {.members = c.list, .heartbeat_period_ms = 50};
    hp_members_t *m;
    hp_err_t err;
    REQUIRE(hp_members_new(&cfg, &m, &err) == 0);
    REQUIRE(hp_members_start(m, &err) == 0);
    for (int i = 0; i < 150 && !hp_members_probed(m); i++)
        usleep(20 * 1000);
    CHECK(hp_members_probed(m));
    atomic_store(&c.nodes[1].self.state, HP_MEMBER_LEAVING);
    bool seen = false;
    for (int i = 0; i < 150 && !seen; i++) {
        hp_ring_view_t *v = hp_members_view(m);
        seen = member_info(v, view_index(v, c.nodes[1].url)).state == HP_MEMBER_LEAVING;
        hp_ring_view_release(v);
        if (!seen)
            usleep(20 * 1000);
    }
    CHECK(seen);
    hp_members_stop(m);
    hp_members_free(m);
    cluster_stop(&c);
}

int main(void)
{
    HP_RUN(test_probe_discovers);
    HP_RUN(test_write_sets);
    HP_RUN(test_unhealthy_members);
    HP_RUN(test_report_refreshes_health);
    HP_RUN(test_zone_aware);
    HP_RUN(test_instance_id_change);
    HP_RUN(test_views_outlive_members);
    HP_RUN(test_json_and_html);
    HP_RUN(test_invalid_answers);
    HP_RUN(test_probe_handler);
    HP_RUN(test_bad_lists);
    HP_RUN(test_dns_localhost);
    HP_RUN(test_dns_unresolvable);
    HP_RUN(test_dns_refresh);
    HP_RUN(test_background_probes);
    nng_fini(); /* drains nng's reaper: dials still in flight are freed, not reported as leaks */
    return hp_test_done();
}
