/* Writing accepted profiles to their ingesters: ring placement over the
 * members that take writes, replication, and a quorum per profile. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "hotpath/buf.h"
#include "hotpath/log.h"

/* hotpath.v1.ProfileWrite as field 1 of an IngestRequest. */
static void encode_profile(hp_buf_t *b, const dist_profile_t *p)
{
    size_t m = hp_pb_begin_len(b, 1);
    hp_labels_encode(&p->labels, 1, b);
    hp_pb_put_bytes(b, 2, p->id, sizeof(p->id));
    hp_pb_put_uint(b, 3, (uint64_t)p->time_nanos);
    hp_pb_put_bytes(b, 4, p->raw, p->raw_len);
    hp_pb_end_len(b, m);
}

/* One write: every profile's replicas (as target indices) and the quorum. */
typedef struct write {
    size_t n;        /* profiles */
    size_t rf;       /* replicas per profile (≤ configured RF when members are missing) */
    size_t quorum;   /* of the configured RF */
    size_t *targets; /* n × rf target indices */
    size_t *got;     /* replicas found per profile */
} write_t;

/* Acks and failures of profile i among finished targets. */
static void count(const write_t *w, const hp_rpc_target_t *t, size_t i, size_t *acks, size_t *fails)
{
    *acks = *fails = 0;
    for (size_t k = 0; k < w->got[i]; k++) {
        const hp_rpc_target_t *x = &t[w->targets[i * w->rf + k]];
        if (x->done)
            *acks += x->rc == 0, *fails += x->rc != 0;
    }
}

/* Enough: every profile has its quorum, or one can no longer get it. */
static bool write_enough(void *ctx, const hp_rpc_target_t *t)
{
    const write_t *w = ctx;
    bool all = true;
    for (size_t i = 0; i < w->n; i++) {
        size_t acks, fails;
        count(w, t, i, &acks, &fails);
        if (w->got[i] - fails < w->quorum)
            return true;
        all &= acks >= w->quorum;
    }
    return all;
}

/* True for an ingester's answer that blames the data, not the ingester:
 * retrying elsewhere cannot help, so the client hears it as it is. */
static bool client_error(int rc)
{
    return rc == HP_EINVAL || rc == HP_ELIMIT || rc == HP_EUNSUPPORTED || rc == HP_ETOOLARGE;
}

/* The error of a write that missed its quorum: a client error from an
 * ingester (the data is bad or too large) wins over unavailability. */
static int write_error(const write_t *w, const hp_rpc_target_t *t, size_t nt, hp_err_t *err)
{
    for (size_t i = 0; i < nt; i++)
        if (client_error(t[i].rc))
            return hp_err_set(err, t[i].rc, "%s", t[i].err.msg);
    size_t worst = SIZE_MAX, worst_i = 0;
    for (size_t i = 0; i < w->n; i++) {
        size_t acks, fails;
        count(w, t, i, &acks, &fails);
        if (acks < worst)
            worst = acks, worst_i = i;
    }
    const char *why = "no ingester takes writes";
    for (size_t k = 0; k < w->got[worst_i]; k++) {
        const hp_rpc_target_t *x = &t[w->targets[worst_i * w->rf + k]];
        if (x->rc != 0 && x->rc != HP_ECANCELED) {
            why = x->err.msg;
            break;
        }
    }
    return hp_err_set(err, HP_EUNAVAIL,
                      "write failed: %zu of %zu replicas acknowledged, a quorum is %zu: %s", worst,
                      w->rf, w->quorum, why);
}

/* A duration for an API that takes int milliseconds, clamped. */
static int clamp_ms(int64_t ms)
{
    return ms > INT_MAX ? INT_MAX : ms < 0 ? 0 : (int)ms;
}

/* Maps ring member indices to target slots, creating targets as needed. */
static size_t target_for(size_t member, size_t *slot_of_member, size_t *member_of_slot, size_t *nt)
{
    if (slot_of_member[member] == SIZE_MAX) {
        member_of_slot[*nt] = member;
        slot_of_member[member] = (*nt)++;
    }
    return slot_of_member[member];
}

/* The tenant's active-series limit per ingester: max_global_series_per_tenant
 * spread over the members that take writes, each series held by
 * min(RF, writers) of them (rounded up), capped by
 * max_local_series_per_tenant; 0 = none. */
static uint64_t series_limit(const hp_ring_view_t *v, size_t rf, const hp_limits_config_t *lim)
{
    size_t writers = 0;
    for (size_t i = 0; i < hp_ring_view_size(v); i++) {
        hp_member_info_t m;
        hp_ring_view_member(v, i, &m);
        writers += m.state == HP_MEMBER_ACTIVE && m.healthy;
    }
    uint64_t share = 0;
    if (lim->max_global_series_per_tenant > 0 && writers > 0)
        share = ((uint64_t)lim->max_global_series_per_tenant * HP_MIN(rf, writers) + writers - 1) / writers;
    uint64_t local = lim->max_local_series_per_tenant > 0 ? (uint64_t)lim->max_local_series_per_tenant : 0;
    if (share == 0 || (local > 0 && local < share))
        return local;
    return share;
}

int dist_forward(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, dist_profile_t *profiles, size_t n,
                 hp_err_t *err)
{
    hp_ring_view_t *v = hp_members_view(d->members);
    size_t members = hp_ring_view_size(v);
    size_t rf = (size_t)HP_MAX(d->cfg->distributor.replication_factor, 1);
    write_t w = {n, rf, rf / 2 + 1, hp_xmalloc((n * rf + 1) * sizeof(size_t)),
                 hp_xcalloc(n + 1, sizeof(size_t))};
    size_t *slot_of_member = hp_xmalloc((members + 1) * sizeof(size_t));
    size_t *member_of_slot = hp_xmalloc((members + 1) * sizeof(size_t));
    hp_buf_t *bodies = hp_xcalloc(members + 1, sizeof(hp_buf_t));
    size_t nt = 0, *set = hp_xmalloc((rf + 1) * sizeof(size_t));
    for (size_t m = 0; m < members; m++)
        slot_of_member[m] = SIZE_MAX;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t token = hp_ring_series_token(tenant, &profiles[i].labels);
        w.got[i] = hp_ring_view_write_set(v, token, rf, set);
        if (w.got[i] < w.quorum) {
            rc = hp_err_set(err, HP_EUNAVAIL,
                            "write failed: %zu ingesters take writes for this series, a quorum is %zu of %zu",
                            w.got[i], w.quorum, rf);
            break;
        }
        for (size_t k = 0; k < w.got[i]; k++) {
            size_t slot = target_for(set[k], slot_of_member, member_of_slot, &nt);
            w.targets[i * rf + k] = slot;
            /* one profile (an /ingest request): every replica gets the
             * same body, encoded once below */
            if (n > 1 || slot == 0)
                encode_profile(&bodies[slot], &profiles[i]);
        }
    }
    hp_rpc_target_t *targets = hp_xcalloc(nt + 1, sizeof(*targets));
    uint64_t max_series = series_limit(v, rf, lim);
    for (size_t s = 0; rc == 0 && max_series > 0 && s < (n > 1 ? nt : 1); s++)
        hp_pb_put_uint(&bodies[s], 2, max_series);
    if (rc == 0) {
        for (size_t s = 0; s < nt; s++) {
            const hp_buf_t *body = n > 1 ? &bodies[s] : &bodies[0];
            targets[s].client = hp_ring_view_client(v, member_of_slot[s]);
            targets[s].payload = body->data;
            targets[s].payload_len = body->len;
        }
        hp_rpc_call_until(targets, nt, "ingester.Push", tenant, NULL, 0,
                          clamp_ms(d->cfg->distributor.push_timeout_ms), write_enough, &w);
        for (size_t s = 0; s < nt; s++)
            if (targets[s].rc != HP_ECANCELED)
                hp_members_report(d->members, v, member_of_slot[s], targets[s].rc == 0);
        bool quorum = true;
        for (size_t i = 0; i < n; i++) {
            size_t acks, fails;
            count(&w, targets, i, &acks, &fails);
            quorum &= acks >= w.quorum;
        }
        if (!quorum)
            rc = write_error(&w, targets, nt, err);
    }
    for (size_t s = 0; s < nt; s++)
        hp_buf_fini(&targets[s].resp);
    for (size_t m = 0; m < members; m++)
        hp_buf_fini(&bodies[m]);
    free(targets);
    free(bodies);
    free(set);
    free(slot_of_member);
    free(member_of_slot);
    free(w.targets);
    free(w.got);
    hp_ring_view_release(v);
    return rc;
}
