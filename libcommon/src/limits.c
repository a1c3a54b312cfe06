/* Per-tenant limits from the runtime config file (limits.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "hotpath/limits.h"
#include "hotpath/log.h"

#define MAX_FILE_BYTES (16u << 20)

typedef struct tenant_limits {
    char *tenant;
    hp_limits_config_t l;
} tenant_limits_t;

struct hp_overrides {
    const hp_config_t *cfg;
    pthread_mutex_t mu; /* guards v and n */
    tenant_limits_t *v; /* sorted by tenant */
    size_t n;
    /* the reloader's (reload_mu held): what the file was when last read */
    pthread_mutex_t reload_mu;
    struct timespec mtime;
    off_t size;
    bool missing; /* it could not be found then */
    hp_metric_t *m_reloads, *m_failures;
};

/* ---- parsing ---- */

static yaml_node_t *node(yaml_document_t *doc, int id)
{
    return yaml_document_get_node(doc, id);
}

/* One tenant's mapping of limit → value onto *l. */
static int parse_tenant(yaml_document_t *doc, const char *tenant, yaml_node_t *map, hp_limits_config_t *l,
                        hp_err_t *err)
{
    if (map->type == YAML_SCALAR_NODE && map->data.scalar.length == 0)
        return 0; /* "tenant:" with nothing under it */
    if (map->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "overrides.%s (line %zu): expected a mapping of limits", tenant,
                          map->start_mark.line + 1);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(doc, p->key), *v = node(doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
            return hp_err_set(err, HP_EINVAL, "overrides.%s (line %zu): each limit takes a plain value", tenant,
                              (k ? k->start_mark.line : map->start_mark.line) + 1);
        const char *key = (const char *)k->data.scalar.value, *text = (const char *)v->data.scalar.value;
        hp_err_t why;
        if (hp_config_limit_parse(l, key, text, &why) != 0)
            return hp_err_set(err, HP_EINVAL, "overrides.%s.%s (line %zu): %s", tenant, key,
                              k->start_mark.line + 1, why.msg);
    }
    return 0;
}

static int cmp_tenant(const void *a, const void *b)
{
    return strcmp(((const tenant_limits_t *)a)->tenant, ((const tenant_limits_t *)b)->tenant);
}

static void free_list(tenant_limits_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].tenant);
    free(v);
}

/* The document's overrides into a sorted list. */
static int parse_doc(yaml_document_t *doc, const hp_limits_config_t *defaults, tenant_limits_t **out, size_t *n,
                     hp_err_t *err)
{
    *out = NULL;
    *n = 0;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        return 0; /* an empty file: no overrides */
    if (root->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "expected a mapping with an \"overrides\" section");
    yaml_node_t *ov = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, "overrides") == 0)
            ov = node(doc, p->value);
    }
    if (ov == NULL || (ov->type == YAML_SCALAR_NODE && ov->data.scalar.length == 0))
        return 0;
    if (ov->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "overrides (line %zu): expected a mapping of tenants",
                          ov->start_mark.line + 1);
    size_t cap = 0;
    for (yaml_node_pair_t *p = ov->data.mapping.pairs.start; p < ov->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(doc, p->key), *v = node(doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            return hp_err_set(err, HP_EINVAL, "overrides: a tenant must be a plain name");
        HP_GROW(*out, cap, *n + 1);
        tenant_limits_t *t = &(*out)[(*n)++];
        t->tenant = hp_xstrdup((const char *)k->data.scalar.value);
        t->l = *defaults;
        int rc = parse_tenant(doc, t->tenant, v, &t->l, err);
        if (rc != 0)
            return rc;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), cmp_tenant);
    for (size_t i = 1; i < *n; i++)
        if (strcmp((*out)[i - 1].tenant, (*out)[i].tenant) == 0)
            return hp_err_set(err, HP_EINVAL, "overrides: tenant %s is listed twice", (*out)[i].tenant);
    return 0;
}

/* Parses YAML from an initialized parser. */
static int parse_yaml(yaml_parser_t *p, const hp_limits_config_t *defaults, tenant_limits_t **out, size_t *n,
                      hp_err_t *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(p, &doc))
        return hp_err_set(err, HP_EINVAL, "line %zu: %s", p->problem_mark.line + 1,
                          p->problem ? p->problem : "invalid YAML");
    int rc = parse_doc(&doc, defaults, out, n, err);
    yaml_document_delete(&doc);
    if (rc != 0) {
        free_list(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int hp_overrides_parse_text(const char *text, size_t n, const hp_limits_config_t *defaults, char ***tenants,
                            hp_limits_config_t **limits, hp_err_t *err)
{
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    tenant_limits_t *v;
    size_t nv;
    int rc = parse_yaml(&p, defaults, &v, &nv, err);
    yaml_parser_delete(&p);
    if (rc != 0)
        return rc;
    *tenants = hp_xcalloc(nv + 1, sizeof(char *));
    *limits = hp_xcalloc(nv + 1, sizeof(hp_limits_config_t));
    for (size_t i = 0; i < nv; i++) {
        (*tenants)[i] = v[i].tenant; /* moved */
        (*limits)[i] = v[i].l;
    }
    free(v);
    return (int)nv;
}

/* Reads and parses the file. */
static int load_file(const char *path, const hp_limits_config_t *defaults, tenant_limits_t **out, size_t *n,
                     struct stat *st, hp_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return hp_err_set(err, HP_EINVAL, "cannot open it: %s", strerror(errno));
    if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode) || st->st_size > (off_t)MAX_FILE_BYTES) {
        fclose(f);
        return hp_err_set(err, HP_EINVAL, "not a regular file of at most %u bytes", MAX_FILE_BYTES);
    }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = parse_yaml(&p, defaults, out, n, err);
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

/* ---- the live set ---- */

static bool file_changed(const hp_overrides_t *o, const struct stat *st)
{
    return st->st_size != o->size || st->st_mtim.tv_sec != o->mtime.tv_sec ||
           st->st_mtim.tv_nsec != o->mtime.tv_nsec;
}

/* Re-reads the file when it changed, parsing it without the lock (a push
 * asking for its limits meanwhile gets the previous set) and swapping the
 * result in under it. A failure is logged and counted once per change of
 * the file, a missing file once until it is back. */
static void reload(hp_overrides_t *o)
{
    const char *path = o->cfg->runtime_config.file;
    struct stat st;
    memset(&st, 0, sizeof(st));
    bool found = stat(path, &st) == 0;
    if (found ? !o->missing && !file_changed(o, &st) : o->missing)
        return;
    tenant_limits_t *v;
    size_t n;
    hp_err_t err;
    hp_err_clear(&err);
    int rc = found ? load_file(path, &o->cfg->limits, &v, &n, &st, &err)
                   : hp_err_set(&err, HP_EINVAL, "cannot find it: %s", strerror(errno));
    o->missing = !found;
    o->mtime = st.st_mtim;
    o->size = st.st_size;
    if (rc != 0) {
        char q[600];
        HP_ERROR("runtime config not loaded; the last good overrides stay", "file=%s err=%s", path,
                 hp_log_q(q, sizeof(q), err.msg));
        if (o->m_failures)
            hp_metric_add(o->m_failures, 1);
        return;
    }
    pthread_mutex_lock(&o->mu);
    tenant_limits_t *old = o->v;
    size_t old_n = o->n;
    o->v = v;
    o->n = n;
    pthread_mutex_unlock(&o->mu);
    free_list(old, old_n);
    if (o->m_reloads)
        hp_metric_add(o->m_reloads, 1);
    HP_INFO("runtime config loaded", "file=%s tenants=%zu", path, n);
}

static bool has_file(const hp_overrides_t *o)
{
    return o->cfg->runtime_config.file && o->cfg->runtime_config.file[0];
}

int hp_overrides_new(const hp_config_t *cfg, hp_metrics_t *metrics, hp_overrides_t **out, hp_err_t *err)
{
    hp_overrides_t *o = hp_xcalloc(1, sizeof(*o));
    o->cfg = cfg;
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->reload_mu, NULL);
    *out = o;
    if (metrics) {
        o->m_reloads = hp_metrics_counter(metrics, "hotpath_runtime_config_reloads_total",
                                          "Times the runtime config file was read and applied.", NULL);
        o->m_failures = hp_metrics_counter(metrics, "hotpath_runtime_config_reload_failures_total",
                                           "Times the runtime config file changed but could not be applied.",
                                           NULL);
    }
    if (!has_file(o))
        return 0;
    struct stat st;
    int rc = load_file(cfg->runtime_config.file, &cfg->limits, &o->v, &o->n, &st, err);
    if (rc != 0) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        return hp_err_set(err, HP_EINVAL, "-runtime-config.file %s: %s", cfg->runtime_config.file, why);
    }
    o->mtime = st.st_mtim;
    o->size = st.st_size;
    return 0;
}

void hp_overrides_free(hp_overrides_t *o)
{
    if (o == NULL)
        return;
    free_list(o->v, o->n);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->reload_mu);
    free(o);
}

void hp_overrides_reload(hp_overrides_t *o)
{
    if (!has_file(o))
        return;
    /* one reload at a time; a caller finding one running leaves it to it */
    if (pthread_mutex_trylock(&o->reload_mu) != 0)
        return;
    reload(o);
    pthread_mutex_unlock(&o->reload_mu);
}

void hp_overrides_get(hp_overrides_t *o, hp_str_t tenant, hp_limits_config_t *out)
{
    *out = o->cfg->limits;
    if (!has_file(o))
        return;
    pthread_mutex_lock(&o->mu);
    size_t lo = 0, hi = o->n;
    while (lo < hi) { /* binary search by tenant */
        size_t mid = lo + (hi - lo) / 2;
        int c = hp_str_cmp(hp_str_c(o->v[mid].tenant), tenant);
        if (c == 0) {
            *out = o->v[mid].l;
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    pthread_mutex_unlock(&o->mu);
}
