/* Per-tenant overrides from -runtime-config.file, in Pyroscope's runtime
 * config shape:
 *   overrides:
 *     <tenant>:
 *       compactor_blocks_retention_period: 7d
 * Other limits in the file are accepted and ignored here. The file is
 * read again every cycle; when it cannot be read or parsed, the last good
 * overrides stay (and the problem is logged). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "compactor.h"
#include "hotpath/log.h"

#define MAX_FILE_BYTES (16u << 20)

void cmp_overrides_free(cmp_t *c)
{
    for (size_t i = 0; i < c->n_overrides; i++)
        free(c->overrides[i].tenant);
    free(c->overrides);
    c->overrides = NULL;
    c->n_overrides = 0;
}

int64_t cmp_retention_ms(const cmp_t *c, const char *tenant)
{
    for (size_t i = 0; i < c->n_overrides; i++)
        if (strcmp(c->overrides[i].tenant, tenant) == 0 && c->overrides[i].retention_ms >= 0)
            return c->overrides[i].retention_ms;
    return c->retention_ms;
}

/* The value node of key in mapping map, or NULL. */
static yaml_node_t *lookup(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

typedef struct parsed {
    cmp_override_t *v;
    size_t n;
} parsed_t;

/* One tenant's entry: its retention when it sets one (-1 otherwise). */
static int one_tenant(yaml_document_t *doc, yaml_node_t *k, yaml_node_t *v, parsed_t *out, hp_err_t *err)
{
    const char *tenant = (const char *)k->data.scalar.value;
    yaml_node_t *ret = lookup(doc, v, "compactor_blocks_retention_period");
    int64_t ms = -1;
    if (ret && ret->type == YAML_SCALAR_NODE &&
        hp_parse_model_duration_ms((const char *)ret->data.scalar.value, &ms) != 0)
        return hp_err_set(err, HP_EINVAL,
                          "overrides.%s.compactor_blocks_retention_period (line %zu): \"%s\" is not "
                          "a duration like 7d",
                          tenant, ret->start_mark.line + 1, (const char *)ret->data.scalar.value);
    out->v = hp_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
    out->v[out->n++] = (cmp_override_t){hp_xstrdup(tenant), ms};
    return 0;
}

static int parse_doc(yaml_document_t *doc, parsed_t *out, hp_err_t *err)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        return 0;
    yaml_node_t *ov = lookup(doc, root, "overrides");
    if (root->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "expected a mapping with an \"overrides\" section");
    if (ov == NULL || ov->type == YAML_SCALAR_NODE)
        return 0;
    if (ov->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "overrides (line %zu): expected a mapping of tenants",
                          ov->start_mark.line + 1);
    for (yaml_node_pair_t *p = ov->data.mapping.pairs.start; p < ov->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (k == NULL || k->type != YAML_SCALAR_NODE)
            return hp_err_set(err, HP_EINVAL, "overrides: a tenant must be a plain name");
        int rc = one_tenant(doc, k, v, out, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Reads and parses path into out. */
static int load_file(const char *path, parsed_t *out, hp_err_t *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL)
        return hp_err_set(err, HP_EINVAL, "cannot open it: %s", strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES) {
        fclose(f);
        return hp_err_set(err, HP_EINVAL, "not a regular file of at most %u bytes", MAX_FILE_BYTES);
    }
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &doc)) {
        rc = hp_err_set(err, HP_EINVAL, "line %zu: %s", p.problem_mark.line + 1,
                        p.problem ? p.problem : "invalid YAML");
    } else {
        rc = parse_doc(&doc, out, err);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

void cmp_overrides_reload(cmp_t *c)
{
    const char *path = c->cfg->runtime_config.file;
    if (path == NULL || path[0] == '\0')
        return;
    parsed_t got = {NULL, 0};
    hp_err_t err;
    if (load_file(path, &got, &err) != 0) {
        char q[600];
        HP_ERROR("runtime config not loaded; the last good overrides stay", "file=%s err=%s", path,
                 hp_log_q(q, sizeof(q), err.msg));
        for (size_t i = 0; i < got.n; i++)
            free(got.v[i].tenant);
        free(got.v);
        return;
    }
    cmp_overrides_free(c);
    c->overrides = got.v;
    c->n_overrides = got.n;
}
