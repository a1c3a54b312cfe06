/* Writing accepted profiles to their ingesters: ring placement,
 * replication and quorum. */
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

/* The errors of a failed write, most telling first: a client error from
 * an ingester (the data is bad) beats unavailability. */
static int write_error(const hp_rpc_target_t *t, size_t n, size_t acks, size_t quorum, hp_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].rc == HP_EINVAL || t[i].rc == HP_ELIMIT || t[i].rc == HP_EUNSUPPORTED)
            return hp_err_set(err, t[i].rc, "%s", t[i].err.msg);
    const char *why = "";
    for (size_t i = 0; i < n && !*why; i++)
        if (t[i].rc != 0)
            why = t[i].err.msg;
    return hp_err_set(err, HP_EUNAVAIL,
                      "write failed: %zu of the replicas acknowledged, quorum is %zu: %s", acks, quorum,
                      why);
}

int dist_forward(dist_t *d, hp_str_t tenant, dist_profile_t *profiles, size_t n, hp_err_t *err)
{
    size_t members = d->n_members;
    size_t rf = (size_t)HP_MAX(d->cfg->distributor.replication_factor, 1);
    rf = HP_MIN(rf, members);
    size_t quorum = rf / 2 + 1;
    size_t *replicas = hp_xmalloc((n * rf + 1) * sizeof(size_t));
    hp_buf_t *bodies = hp_xcalloc(members, sizeof(hp_buf_t));
    for (size_t i = 0; i < n; i++) {
        uint32_t token = hp_ring_series_token(tenant, &profiles[i].labels);
        size_t got = hp_ring_get(d->ring, token, rf, replicas + i * rf);
        for (size_t k = 0; k < got; k++)
            encode_profile(&bodies[replicas[i * rf + k]], &profiles[i]);
    }
    hp_rpc_target_t *targets = hp_xcalloc(members, sizeof(*targets));
    size_t *target_of = hp_xmalloc(members * sizeof(size_t)), nt = 0;
    for (size_t m = 0; m < members; m++) {
        target_of[m] = SIZE_MAX;
        if (bodies[m].len == 0)
            continue;
        targets[nt].client = d->clients[m];
        targets[nt].payload = bodies[m].data;
        targets[nt].payload_len = bodies[m].len;
        target_of[m] = nt++;
    }
    hp_rpc_call_all(targets, nt, "ingester.Push", tenant, NULL, 0,
                    (int)d->cfg->distributor.push_timeout_ms);
    int rc = 0;
    size_t worst = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t acks = 0;
        for (size_t k = 0; k < rf; k++)
            acks += targets[target_of[replicas[i * rf + k]]].rc == 0;
        worst = HP_MIN(worst, acks);
    }
    if (n && worst < quorum)
        rc = write_error(targets, nt, worst, quorum, err);
    for (size_t m = 0; m < members; m++)
        hp_buf_fini(&bodies[m]);
    for (size_t t = 0; t < nt; t++)
        hp_buf_fini(&targets[t].resp);
    free(bodies);
    free(targets);
    free(target_of);
    free(replicas);
    return rc;
}
