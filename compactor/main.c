/* hotpath-compactor: merges the blocks of each tenant it owns, applies
 * retention and deletion requests, and deletes what they replaced. */
#include "compactor.h"
#include "hotpath/log.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "compactor", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    cmp_t *c = NULL;
    if (hp_service_start(&svc, &err) != 0 || cmp_new(&svc, &c, &err) != 0 || cmp_start(c, &err) != 0) {
        char q[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        cmp_stop(c);
        hp_service_fini(&svc);
        cmp_free(c);
        return 1;
    }
    hp_service_run(&svc);
    cmp_stop(c);
    hp_service_fini(&svc);
    cmp_free(c);
    HP_INFO("stopped", NULL);
    return 0;
}
