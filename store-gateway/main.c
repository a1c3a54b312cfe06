/* hotpath-store-gateway: starts, serves /ready and /metrics, and has no blocks to
 * serve blocks from object storage (they arrive with the long-term read path). */
#include "hotpath/log.h"
#include "hotpath/service.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "store-gateway", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    if (hp_service_start(&svc, &err) != 0) {
        char q[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        hp_service_fini(&svc);
        return 1;
    }
    HP_INFO("nothing to do yet: no object storage is configured in this version", NULL);
    hp_service_run(&svc);
    hp_service_fini(&svc);
    return 0;
}
