/* hotpath-distributor: the public ingest API. */
#include "distributor.h"
#include "hotpath/log.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "distributor", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    dist_t *d = NULL;
    if (hp_service_start(&svc, &err) != 0 || dist_new(&svc, &d, &err) != 0) {
        HP_ERROR("cannot start", "err=\"%s\"", err.msg);
        dist_free(d);
        hp_service_fini(&svc);
        return 1;
    }
    dist_register_ingest(d);
    dist_register_push(d);
    dist_register_otlp(d);
    hp_service_run(&svc);
    hp_service_fini(&svc);
    dist_free(d);
    HP_INFO("stopped", NULL);
    return 0;
}
