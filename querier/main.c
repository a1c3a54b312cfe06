/* hotpath-querier: the public query API. */
#include "hotpath/log.h"
#include "querier.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "querier", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    qry_t *q = NULL;
    if (hp_service_start(&svc, &err) != 0 || qry_new(&svc, &q, &err) != 0) {
        char m[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(m, sizeof(m), err.msg));
        hp_service_fini(&svc);
        qry_free(q);
        return 1;
    }
    qry_register_connect(q);
    qry_register_render(q);
    qry_register_ui(q);
    hp_service_run(&svc);
    hp_service_fini(&svc);
    qry_free(q);
    HP_INFO("stopped", NULL);
    return 0;
}
