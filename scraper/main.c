/* hotpath-scraper: pull mode — scrapes Go net/http/pprof endpoints and
 * pushes the profiles to a distributor (scraper.h). */
#include "hotpath/log.h"
#include "scraper.h"

int main(int argc, char **argv)
{
    hp_service_t svc;
    int rc = hp_service_main_config(&svc, "scraper", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    hp_err_t err;
    hp_err_clear(&err);
    scr_t *s = NULL;
    if (hp_service_start(&svc, &err) != 0 || scr_new(&svc, &s, &err) != 0 || scr_start(s, &err) != 0) {
        char q[600];
        HP_ERROR("cannot start", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        scr_stop(s);
        hp_service_fini(&svc);
        scr_free(s);
        return 1;
    }
    hp_service_run(&svc);
    scr_stop(s);
    hp_service_fini(&svc);
    scr_free(s);
    HP_INFO("stopped", NULL);
    return 0;
}
