/* The block reader's postings: parsing the section, checking that it is
 * exactly the inverse of the series' labels, and looking up a name/value. */
#include <stdlib.h>
#include <string.h>

#include "block_internal.h"

/* Whether series s has the label (name, value), by label-string IDs. */
static bool series_has(const hp_block_t *b, const hp__blk_series_t *s, uint32_t name, uint32_t value)
{
    const uint32_t *l = b->lids + 2 * s->loff;
    size_t lo = 0, hi = s->labels.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l[2 * mid] < name)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->labels.n && l[2 * lo] == name && l[2 * lo + 1] == value;
}

/* One series list: strictly ascending IDs, each a series with the label. */
static int parse_list(hp_block_t *b, hp__rd_t *d, uint32_t name, uint32_t value, uint64_t ns, hp_err_t *err)
{
    uint64_t id = 0;
    for (uint64_t k = 0; k < ns; k++) {
        uint64_t u = hp__rd_u(d);
        if (d->bad)
            return hp__blk_rd_end(b, d, "postings", err);
        if (u >= b->n_series || (k > 0 && u >= b->n_series - id - 1))
            return hp__blk_fail(b, err, "postings", "series ID out of range (%zu series)", b->n_series);
        id = k == 0 ? u : id + 1 + u;
        if (!series_has(b, &b->series[id], name, value))
            return hp__blk_fail(b, err, "postings",
                                "series %llu is listed under %.*s=%.*s but lacks that label",
                                (unsigned long long)id, (int)HP_MIN(b->lstr[name].n, 100), b->lstr[name].p,
                                (int)HP_MIN(b->lstr[value].n, 100), b->lstr[value].p);
        b->postings[b->n_postings++] = (uint32_t)id;
    }
    return 0;
}

/* One value of a name: its ID (ascending within the name) and series list. */
static int parse_value(hp_block_t *b, hp__rd_t *d, const hp__blk_pname_t *pn, size_t *vcap, hp_err_t *err)
{
    uint64_t value = hp__rd_u(d), ns = hp__rd_u(d);
    if (d->bad)
        return hp__blk_rd_end(b, d, "postings", err);
    if (value >= b->n_lstr || (b->n_values > pn->voff && value <= b->values[b->n_values - 1].value))
        return hp__blk_fail(b, err, "postings", "value IDs out of range or not sorted");
    if (ns == 0 || ns > b->n_lids / 2 - b->n_postings)
        return hp__blk_fail(b, err, "postings", "a list of %llu series does not match the series' labels",
                            (unsigned long long)ns);
    HP_GROW(b->values, *vcap, b->n_values + 1);
    b->values[b->n_values++] = (hp__blk_pvalue_t){(uint32_t)value, b->n_postings, ns};
    return parse_list(b, d, pn->name, (uint32_t)value, ns, err);
}

/* One name: its ID (ascending) and its values. */
static int parse_name(hp_block_t *b, hp__rd_t *d, size_t i, size_t *vcap, hp_err_t *err)
{
    uint64_t name = hp__rd_u(d), nv = hp__rd_u(d);
    if (d->bad)
        return hp__blk_rd_end(b, d, "postings", err);
    if (name >= b->n_lstr || (i > 0 && name <= b->names[i - 1].name) || nv == 0 || nv > hp__rd_left(d) / 2)
        return hp__blk_fail(b, err, "postings", "name %zu: ID %llu or its %llu values are invalid", i,
                            (unsigned long long)name, (unsigned long long)nv);
    hp__blk_pname_t *pn = &b->names[i];
    *pn = (hp__blk_pname_t){(uint32_t)name, b->n_values, nv};
    for (uint64_t v = 0; v < nv; v++) {
        int rc = parse_value(b, d, pn, vcap, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int hp__blk_parse_postings(hp_block_t *b, const uint8_t *raw, size_t n, hp_err_t *err)
{
    hp__rd_t d = hp__rd(raw, n);
    uint64_t nn = hp__rd_u(&d);
    if (nn > hp__rd_left(&d) / 2 || nn > b->n_lstr)
        return hp__blk_fail(b, err, "postings", "%llu names cannot fit", (unsigned long long)nn);
    b->names = hp_xcalloc(nn + 1, sizeof(*b->names));
    b->n_names = nn;
    b->postings = hp_xmalloc((b->n_lids / 2 + 1) * sizeof(*b->postings));
    size_t vcap = 0;
    for (size_t i = 0; i < nn; i++) {
        int rc = parse_name(b, &d, i, &vcap, err);
        if (rc != 0)
            return rc;
    }
    /* Every entry is a label some series has, none twice: equal counts mean
     * the postings list every label of every series. */
    if (b->n_postings != b->n_lids / 2)
        return hp__blk_fail(b, err, "postings", "%zu entries for %zu series labels", b->n_postings,
                            b->n_lids / 2);
    return hp__blk_rd_end(b, &d, "postings", err);
}

void hp_block_postings(const hp_block_t *b, const char *name, const char *value, const uint32_t **series,
                       size_t *n)
{
    *series = NULL;
    *n = 0;
    hp_str_t nm = hp_str_c(name), vl = hp_str_c(value);
    size_t lo = 0, hi = b->n_names;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hp_str_cmp(b->lstr[b->names[mid].name], nm) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->n_names || !hp_str_eq(b->lstr[b->names[lo].name], nm))
        return;
    const hp__blk_pname_t *pn = &b->names[lo];
    lo = pn->voff, hi = pn->voff + pn->nv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hp_str_cmp(b->lstr[b->values[mid].value], vl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == pn->voff + pn->nv || !hp_str_eq(b->lstr[b->values[lo].value], vl))
        return;
    *series = b->postings + b->values[lo].soff;
    *n = b->values[lo].ns;
}
