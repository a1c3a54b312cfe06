/* hotpath-store-gateway: serves queries over blocks in the object store. */
#include "gateway.h"
#include "hotpath/log.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "store-gateway", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    sg_t *g = NULL;
    if (hp_service_start(&svc, &err) != 0 || sg_new(&svc, &g, &err) != 0 || sg_start(g, &err) != 0) {
        char q[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        sg_stop(g);
        hp_service_fini(&svc);
        sg_free(g);
        return 1;
    }
    hp_service_run(&svc);
    sg_stop(g);
    hp_service_fini(&svc);
    sg_free(g);
    HP_INFO("stopped", NULL);
    return 0;
}
