/* hotpath-ingester: keeps recent profiles and answers queries over them. */
#include "hotpath/log.h"
#include "ingester.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "ingester", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    ing_t *g = NULL;
    if (hp_service_start(&svc, &err) != 0 || ing_new(&svc, &g, &err) != 0 || ing_start(g, &err) != 0) {
        char q[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        ing_stop(g);
        hp_service_fini(&svc);
        ing_free(g);
        return 1;
    }
    hp_service_run(&svc);
    ing_stop(g);
    hp_service_fini(&svc);
    ing_free(g);
    HP_INFO("stopped", NULL);
    return 0;
}
