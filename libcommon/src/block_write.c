/* The block writer: encodes a symdb and its series as the data object of
 * docs/BLOCK_FORMAT.md (header, pages, symbols, series index, postings,
 * section table, trailer) and writes meta.json. */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "block_internal.h"
#include "hotpath/block.h"

typedef struct page_ref {
    size_t first, n;            /* the series' profiles [first, first + n) */
    uint64_t off, len, raw_len; /* off: within the pages area */
    uint32_t crc;
} page_ref_t;

/* The state of one hp_block_write call. */
typedef struct wr {
    const hp_symdb_t *db;
    const hp_block_series_in_t **series; /* the non-empty series, sorted by labels */
    hp_block_series_in_t *resorted;      /* copies of series whose profiles were out of time order */
    hp_block_profile_in_t **resorted_profiles;
    size_t n_resorted;
    size_t n_series;
    hp_str_t *lstr; /* every label name and value, sorted, unique */
    size_t n_lstr;
    page_ref_t *pages;   /* every series' pages, in series order */
    size_t n_pages, cap_pages;
    size_t *first_page; /* per sorted series: its first entry in pages (and one past the last) */
    ZSTD_CCtx *cctx;
    hp_buf_t *data;
    size_t base;  /* data->len when the call began */
    hp_buf_t raw; /* a section or page before compression */
    hp__blk_entry_t sec[4];
    size_t n_sec;
    uint32_t version;   /* HP_BLOCK_VERSION, or 2 for hp__block_write_version */
    uint64_t *span_tab; /* one profile's distinct spans, for encoding it */
    size_t cap_span_tab;
    hp_err_t *err;
} wr_t;

static void put_zz(hp_buf_t *b, int64_t v)
{
    hp_buf_put_varint(b, hp__zigzag(v));
}

/* v as a zigzag delta from *prev (mod 2^64: exact for any pair). */
static void put_delta(hp_buf_t *b, uint64_t v, uint64_t *prev)
{
    put_zz(b, (int64_t)(v - *prev));
    *prev = v;
}

/* ---- input checks ---- */

static uint64_t span_at(const hp_block_profile_in_t *p, uint32_t k)
{
    return p->spans ? p->spans[k] : 0;
}

/* A profile's samples reference existing stacks in ascending order of
 * (stack, span), each pair once; spans only where the version has them. */
static int check_profile(const hp_block_profile_in_t *p, size_t si, size_t pi, size_t n_stacks,
                         uint32_t version, hp_err_t *err)
{
    if (p->n > 0 && (p->stacks == NULL || p->values == NULL))
        return hp_err_set(err, HP_EINVAL, "block: series %zu profile %zu: %u samples without arrays", si, pi,
                          p->n);
    for (uint32_t k = 0; k < p->n; k++) {
        if (p->stacks[k] >= n_stacks)
            return hp_err_set(err, HP_EINVAL,
                              "block: series %zu profile %zu: stack ID %u out of range (%zu stacks)", si, pi,
                              p->stacks[k], n_stacks);
        if (span_at(p, k) != 0 && version < 3)
            return hp_err_set(err, HP_EINVAL, "block: series %zu profile %zu: version %u has no span IDs", si,
                              pi, version);
        if (k > 0 && p->stacks[k] < p->stacks[k - 1])
            return hp_err_set(err, HP_EINVAL, "block: series %zu profile %zu: stacks not sorted ascending",
                              si, pi);
        if (k > 0 && p->stacks[k] == p->stacks[k - 1] && span_at(p, k) <= span_at(p, k - 1))
            return hp_err_set(err, HP_EINVAL,
                              "block: series %zu profile %zu: stack %u with span %016llx not after the "
                              "sample before (samples ascend by stack, then span, each pair once)",
                              si, pi, p->stacks[k], (unsigned long long)span_at(p, k));
    }
    return 0;
}

/* Labels sorted by name without duplicates, valid samples. */
static int check_series(const hp_block_series_in_t *s, size_t si, size_t n_stacks, uint32_t version,
                        hp_err_t *err)
{
    if (s->labels == NULL || (s->n_profiles > 0 && s->profiles == NULL))
        return hp_err_set(err, HP_EINVAL, "block: series %zu has no labels or no profile array", si);
    for (size_t k = 1; k < s->labels->n; k++)
        if (hp_str_cmp(s->labels->v[k - 1].name, s->labels->v[k].name) >= 0)
            return hp_err_set(err, HP_EINVAL,
                              "block: series %zu: labels not sorted by name or name \"%.*s\" repeated", si,
                              (int)HP_MIN(s->labels->v[k].name.n, 100), s->labels->v[k].name.p);
    for (size_t j = 0; j < s->n_profiles; j++) {
        int rc = check_profile(&s->profiles[j], si, j, n_stacks, version, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- ordering ---- */

/* Label sets compared pair by pair (name, then value), shorter first. */
static int labels_cmp(const hp_labels_t *a, const hp_labels_t *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = hp_str_cmp(a->v[i].name, b->v[i].name);
        if (c == 0)
            c = hp_str_cmp(a->v[i].value, b->v[i].value);
        if (c != 0)
            return c;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

static int series_cmp(const void *a, const void *b)
{
    const hp_block_series_in_t *x = *(const hp_block_series_in_t *const *)a;
    const hp_block_series_in_t *y = *(const hp_block_series_in_t *const *)b;
    return labels_cmp(x->labels, y->labels);
}

/* By time, then ID: equal times still give one order, so output is deterministic. */
static int profile_cmp(const void *a, const void *b)
{
    const hp_block_profile_in_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

static bool profiles_sorted(const hp_block_series_in_t *s)
{
    for (size_t j = 1; j < s->n_profiles; j++)
        if (s->profiles[j].t < s->profiles[j - 1].t)
            return false;
    return true;
}

/* s itself, or a copy whose profiles are sorted by time when they are not
 * (an ingester's head keeps them in arrival order). */
static const hp_block_series_in_t *time_ordered(wr_t *w, const hp_block_series_in_t *s)
{
    if (profiles_sorted(s))
        return s;
    hp_block_profile_in_t *p = hp_xmalloc(s->n_profiles * sizeof(*p));
    memcpy(p, s->profiles, s->n_profiles * sizeof(*p));
    qsort(p, s->n_profiles, sizeof(*p), profile_cmp);
    w->resorted_profiles[w->n_resorted] = p;
    w->resorted[w->n_resorted] = *s;
    w->resorted[w->n_resorted].profiles = p;
    return &w->resorted[w->n_resorted++];
}

static int str_cmp(const void *a, const void *b)
{
    return hp_str_cmp(*(const hp_str_t *)a, *(const hp_str_t *)b);
}

/* Keeps the series that have profiles, sorted, each with its profiles in
 * time order; refuses duplicates. */
static int sort_series(wr_t *w, const hp_block_series_in_t *in, size_t n)
{
    w->series = hp_xmalloc((n + 1) * sizeof(*w->series));
    w->resorted = hp_xmalloc((n + 1) * sizeof(*w->resorted));
    w->resorted_profiles = hp_xmalloc((n + 1) * sizeof(*w->resorted_profiles));
    for (size_t i = 0; i < n; i++)
        if (in[i].n_profiles > 0)
            w->series[w->n_series++] = time_ordered(w, &in[i]);
    hp_qsort(w->series, w->n_series, sizeof(*w->series), series_cmp);
    for (size_t i = 1; i < w->n_series; i++) {
        if (labels_cmp(w->series[i - 1]->labels, w->series[i]->labels) != 0)
            continue;
        hp_buf_t f = HP_BUF_INIT;
        hp_labels_format(w->series[i]->labels, &f);
        hp_err_set(w->err, HP_EINVAL, "block: series %.300s given twice", hp_buf_cstr(&f));
        hp_buf_fini(&f);
        return HP_EINVAL;
    }
    return 0;
}

/* The sorted, unique label strings of every series. */
static void collect_label_strings(wr_t *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_series; i++)
        n += 2 * w->series[i]->labels->n;
    w->lstr = hp_xmalloc((n + 1) * sizeof(*w->lstr));
    for (size_t i = 0; i < w->n_series; i++)
        for (size_t k = 0; k < w->series[i]->labels->n; k++) {
            w->lstr[w->n_lstr++] = w->series[i]->labels->v[k].name;
            w->lstr[w->n_lstr++] = w->series[i]->labels->v[k].value;
        }
    hp_qsort(w->lstr, w->n_lstr, sizeof(*w->lstr), str_cmp);
    size_t o = 0;
    for (size_t i = 0; i < w->n_lstr; i++)
        if (o == 0 || hp_str_cmp(w->lstr[o - 1], w->lstr[i]) != 0)
            w->lstr[o++] = w->lstr[i];
    w->n_lstr = o;
}

/* The ID of a label string (present by construction). */
static uint32_t lstr_id(const wr_t *w, hp_str_t s)
{
    const hp_str_t *p = bsearch(&s, w->lstr, w->n_lstr, sizeof(*w->lstr), str_cmp);
    return (uint32_t)(p - w->lstr);
}

/* ---- compression ---- */

/* Compresses w->raw onto the end of the data object; *e gets its offset
 * (from the object's start), lengths and CRC32C. */
static int compress_raw(wr_t *w, const char *what, hp__blk_entry_t *e)
{
    if (w->raw.len > HP__BLK_MAX_RAW)
        return hp_err_set(w->err, HP_ETOOLARGE,
                          "block: %s would be %zu bytes, more than a section may hold (%llu)", what,
                          w->raw.len, (unsigned long long)HP__BLK_MAX_RAW);
    size_t bound = ZSTD_compressBound(w->raw.len);
    hp_buf_reserve(w->data, bound);
    hp_buf_reserve(&w->raw, 1);
    uint8_t *dst = w->data->data + w->data->len;
    size_t n = ZSTD_compress2(w->cctx, dst, bound, w->raw.data, w->raw.len);
    if (ZSTD_isError(n))
        return hp_err_set(w->err, HP_EINTERNAL, "block: compressing %s: %s", what, ZSTD_getErrorName(n));
    e->off = w->data->len - w->base;
    e->len = n;
    e->raw_len = w->raw.len;
    e->crc = hp__crc32c(0, dst, n);
    w->data->len += n;
    return 0;
}

/* Compresses w->raw as section id and records its table entry. */
static int put_section(wr_t *w, uint32_t id)
{
    hp__blk_entry_t *e = &w->sec[w->n_sec];
    *e = (hp__blk_entry_t){.id = id, .codec = HP__CODEC_ZSTD};
    int rc = compress_raw(w, hp__blk_section_name(id), e);
    if (rc == 0)
        w->n_sec++;
    return rc;
}

/* ---- pages ---- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct spans of p (not 0) into w->span_tab, sorted; their count. */
static size_t span_table(wr_t *w, const hp_block_profile_in_t *p)
{
    size_t n = 0;
    HP_GROW(w->span_tab, w->cap_span_tab, (size_t)p->n + 1);
    for (uint32_t k = 0; k < p->n; k++)
        if (span_at(p, k) != 0)
            w->span_tab[n++] = span_at(p, k);
    hp_qsort(w->span_tab, n, sizeof(uint64_t), u64_cmp);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (o == 0 || w->span_tab[o - 1] != w->span_tab[i])
            w->span_tab[o++] = w->span_tab[i];
    return o;
}

/* Version 3's span column: the table of distinct spans, then per sample
 * its index in the table + 1 (0: no span). */
static void encode_spans(wr_t *w, hp_buf_t *raw, const hp_block_profile_in_t *p, size_t n_tab)
{
    hp_buf_put_varint(raw, n_tab);
    for (size_t i = 0; i < n_tab; i++)
        hp__put_le64(raw, w->span_tab[i]);
    for (uint32_t k = 0; k < p->n; k++) {
        uint64_t span = span_at(p, k);
        const uint64_t *at = span ? bsearch(&span, w->span_tab, n_tab, sizeof(uint64_t), u64_cmp) : NULL;
        hp_buf_put_varint(raw, at ? (uint64_t)(at - w->span_tab) + 1 : 0);
    }
}

/* One profile: time delta, ID, total, sample count (version 3: with a
 * has-spans bit), its stacks and values, then (version 3) its spans. */
static void encode_profile(wr_t *w, hp_buf_t *raw, const hp_block_profile_in_t *p, int64_t prev_t)
{
    size_t n_tab = w->version >= 3 ? span_table(w, p) : 0;
    hp_buf_put_varint(raw, (uint64_t)p->t - (uint64_t)prev_t);
    hp_buf_append(raw, p->id, 16);
    put_zz(raw, p->total);
    hp_buf_put_varint(raw, w->version >= 3 ? (uint64_t)p->n << 1 | (n_tab > 0) : p->n);
    uint64_t prev = 0;
    for (uint32_t k = 0; k < p->n; k++) {
        hp_buf_put_varint(raw, p->stacks[k] - prev);
        prev = p->stacks[k];
    }
    for (uint32_t k = 0; k < p->n; k++)
        put_zz(raw, p->values[k]);
    if (n_tab > 0)
        encode_spans(w, raw, p, n_tab);
}

/* A page of s: profiles from first on until about HP__BLK_PAGE_TARGET
 * bytes are encoded (at least one), compressed into the pages area. */
static int put_page(wr_t *w, const hp_block_series_in_t *s, size_t first, hp__blk_entry_t *area)
{
    hp_buf_t body = HP_BUF_INIT;
    size_t j = first;
    do {
        encode_profile(w, &body, &s->profiles[j], j > first ? s->profiles[j - 1].t : s->profiles[first].t);
        j++;
    } while (j < s->n_profiles && body.len < HP__BLK_PAGE_TARGET);
    hp_buf_reset(&w->raw);
    hp_buf_put_varint(&w->raw, j - first);
    hp_buf_append(&w->raw, body.data, body.len);
    hp_buf_fini(&body);
    hp__blk_entry_t e = {0};
    int rc = compress_raw(w, "a series page", &e);
    if (rc != 0)
        return rc;
    HP_GROW(w->pages, w->cap_pages, w->n_pages + 1);
    w->pages[w->n_pages++] = (page_ref_t){first, j - first, e.off - area->off, e.len, e.raw_len, e.crc};
    area->len += e.len;
    area->raw_len += e.raw_len;
    area->crc = hp__crc32c(area->crc, w->data->data + w->base + e.off, e.len);
    return 0;
}

/* Every series' pages, one zstd frame each, back to back in series order. */
static int put_pages(wr_t *w)
{
    hp__blk_entry_t *area = &w->sec[w->n_sec];
    *area = (hp__blk_entry_t){.id = HP__SEC_PAGES, .codec = HP__CODEC_PAGES, .off = w->data->len - w->base};
    w->first_page = hp_xcalloc(w->n_series + 1, sizeof(*w->first_page));
    for (size_t i = 0; i < w->n_series; i++) {
        const hp_block_series_in_t *s = w->series[i];
        w->first_page[i] = w->n_pages;
        for (size_t j = 0; j < s->n_profiles; j = w->pages[w->n_pages - 1].first + w->pages[w->n_pages - 1].n) {
            int rc = put_page(w, s, j, area);
            if (rc != 0)
                return rc;
        }
    }
    w->first_page[w->n_series] = w->n_pages;
    w->n_sec++;
    return 0;
}

/* ---- symbols ---- */

static void put_strings(hp_buf_t *raw, const hp_str_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hp_buf_put_varint(raw, s[i].n);
    for (size_t i = 0; i < n; i++)
        hp_buf_append(raw, s[i].p, s[i].n);
}

static void put_mappings(hp_buf_t *raw, const hp_symdb_arrays_t *a)
{
    for (size_t i = 0; i < a->n_mappings; i++) {
        const hp_symdb_mapping_t *m = &a->mappings[i];
        hp_buf_put_varint(raw, m->memory_start);
        hp_buf_put_varint(raw, m->memory_limit);
        hp_buf_put_varint(raw, m->file_offset);
        hp_buf_put_varint(raw, m->filename);
        hp_buf_put_varint(raw, m->build_id);
        hp_buf_put_varint(raw, m->flags);
    }
}

static void put_functions(hp_buf_t *raw, const hp_symdb_arrays_t *a)
{
    uint64_t p0 = 0, p1 = 0, p2 = 0;
    for (size_t i = 0; i < a->n_functions; i++)
        put_delta(raw, a->functions[i].name, &p0);
    for (size_t i = 0; i < a->n_functions; i++)
        put_delta(raw, a->functions[i].system_name, &p1);
    for (size_t i = 0; i < a->n_functions; i++)
        put_delta(raw, a->functions[i].filename, &p2);
    for (size_t i = 0; i < a->n_functions; i++)
        put_zz(raw, a->functions[i].start_line);
}

static void put_locations(hp_buf_t *raw, const hp_symdb_arrays_t *a)
{
    uint64_t prev = 0, next_line = 0;
    for (size_t i = 0; i < a->n_locations; i++)
        put_delta(raw, a->locations[i].address, &prev);
    for (size_t i = 0; i < a->n_locations; i++)
        hp_buf_put_varint(raw, (uint32_t)(a->locations[i].mapping + 1)); /* none (UINT32_MAX) is 0 */
    for (size_t i = 0; i < a->n_locations; i++)
        hp_buf_put_varint(raw, a->locations[i].line_n);
    for (size_t i = 0; i < a->n_locations; i++) {
        put_delta(raw, a->locations[i].line_off, &next_line);
        next_line += a->locations[i].line_n; /* lines usually follow on: the delta is 0 */
    }
}

static void put_lines(hp_buf_t *raw, const hp_symdb_arrays_t *a)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < a->n_lines; i++)
        put_delta(raw, a->lines[i].function, &prev);
    for (size_t i = 0; i < a->n_lines; i++)
        put_zz(raw, a->lines[i].line);
}

static void put_stacks(hp_buf_t *raw, const hp_symdb_arrays_t *a)
{
    uint64_t prev = 0;
    for (size_t i = 1; i < a->n_stacks; i++)
        hp_buf_put_varint(raw, i - a->stack_parents[i]);
    for (size_t i = 1; i < a->n_stacks; i++)
        put_delta(raw, a->stack_locations[i], &prev);
}

/* The symbols section: counts, then each table column by column. */
static int put_symbols(wr_t *w)
{
    size_t ns = hp_symdb_n_stacks(w->db);
    uint32_t *parents = hp_xmalloc((ns + 1) * sizeof(uint32_t));
    uint32_t *locs = hp_xmalloc((ns + 1) * sizeof(uint32_t));
    hp_symdb_arrays_t a;
    hp_symdb_arrays(w->db, &a, parents, locs);
    hp_buf_t *raw = &w->raw;
    hp_buf_reset(raw);
    size_t counts[] = {a.n_strings, a.n_mappings, a.n_functions, a.n_locations, a.n_lines, a.n_stacks};
    for (size_t i = 0; i < HP_ARRAY_LEN(counts); i++)
        hp_buf_put_varint(raw, counts[i]);
    put_strings(raw, a.strings, a.n_strings);
    put_mappings(raw, &a);
    put_functions(raw, &a);
    put_locations(raw, &a);
    put_lines(raw, &a);
    put_stacks(raw, &a);
    free(parents);
    free(locs);
    return put_section(w, HP__SEC_SYMBOLS);
}

/* ---- series index and postings ---- */

/* One series: labels, period, times, profile count, its n pages. */
static void put_series_entry(wr_t *w, const hp_block_series_in_t *s, const page_ref_t *pg, size_t n)
{
    hp_buf_t *raw = &w->raw;
    hp_buf_put_varint(raw, s->labels->n);
    for (size_t k = 0; k < s->labels->n; k++) {
        hp_buf_put_varint(raw, lstr_id(w, s->labels->v[k].name));
        hp_buf_put_varint(raw, lstr_id(w, s->labels->v[k].value));
    }
    int64_t lo = s->profiles[0].t, hi = s->profiles[s->n_profiles - 1].t;
    put_zz(raw, s->period);
    put_zz(raw, lo);
    hp_buf_put_varint(raw, (uint64_t)hi - (uint64_t)lo);
    hp_buf_put_varint(raw, s->n_profiles);
    hp_buf_put_varint(raw, n);
    for (size_t k = 0; k < n; k++) {
        int64_t p_lo = s->profiles[pg[k].first].t, p_hi = s->profiles[pg[k].first + pg[k].n - 1].t;
        hp_buf_put_varint(raw, (uint64_t)p_lo - (uint64_t)lo);
        hp_buf_put_varint(raw, (uint64_t)p_hi - (uint64_t)p_lo);
        hp_buf_put_varint(raw, pg[k].n);
        hp_buf_put_varint(raw, pg[k].off);
        hp_buf_put_varint(raw, pg[k].len);
        hp_buf_put_varint(raw, pg[k].raw_len);
        hp__put_le32(raw, pg[k].crc);
    }
}

static int put_series_index(wr_t *w)
{
    hp_buf_reset(&w->raw);
    hp_buf_put_varint(&w->raw, w->n_series);
    hp_buf_put_varint(&w->raw, hp_symdb_n_stacks(w->db));
    hp_buf_put_varint(&w->raw, w->n_lstr);
    put_strings(&w->raw, w->lstr, w->n_lstr);
    for (size_t i = 0; i < w->n_series; i++)
        put_series_entry(w, w->series[i], &w->pages[w->first_page[i]], w->first_page[i + 1] - w->first_page[i]);
    return put_section(w, HP__SEC_SERIES);
}

typedef struct posting {
    uint32_t name, value, series;
} posting_t;

static int posting_cmp(const void *a, const void *b)
{
    const posting_t *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

/* Entries [i, end) with the same name (by_value false) or name and value. */
static size_t group_end(const posting_t *p, size_t n, size_t i, bool by_value)
{
    size_t e = i;
    while (e < n && p[e].name == p[i].name && (!by_value || p[e].value == p[i].value))
        e++;
    return e;
}

static size_t count_groups(const posting_t *p, size_t from, size_t to, bool by_value)
{
    size_t k = 0;
    for (size_t i = from; i < to; i = group_end(p, to, i, by_value))
        k++;
    return k;
}

/* One value's series list: count, first ID, then gaps minus one. */
static void put_series_list(hp_buf_t *raw, const posting_t *p, size_t from, size_t to)
{
    hp_buf_put_varint(raw, p[from].value);
    hp_buf_put_varint(raw, to - from);
    for (size_t i = from; i < to; i++)
        hp_buf_put_varint(raw, i == from ? p[i].series : p[i].series - p[i - 1].series - 1);
}

static int put_postings(wr_t *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_series; i++)
        n += w->series[i]->labels->n;
    posting_t *p = hp_xmalloc((n + 1) * sizeof(*p));
    n = 0;
    for (size_t i = 0; i < w->n_series; i++)
        for (size_t k = 0; k < w->series[i]->labels->n; k++) {
            const hp_label_t *l = &w->series[i]->labels->v[k];
            p[n++] = (posting_t){lstr_id(w, l->name), lstr_id(w, l->value), (uint32_t)i};
        }
    hp_qsort(p, n, sizeof(*p), posting_cmp);
    hp_buf_reset(&w->raw);
    hp_buf_put_varint(&w->raw, count_groups(p, 0, n, false));
    for (size_t i = 0, ne; i < n; i = ne) {
        ne = group_end(p, n, i, false);
        hp_buf_put_varint(&w->raw, p[i].name);
        hp_buf_put_varint(&w->raw, count_groups(p, i, ne, true));
        for (size_t j = i, ve; j < ne; j = ve) {
            ve = group_end(p, ne, j, true);
            put_series_list(&w->raw, p, j, ve);
        }
    }
    free(p);
    return put_section(w, HP__SEC_POSTINGS);
}

/* ---- footer and meta ---- */

/* The section table, then the fixed trailer that ends the object. */
static void put_footer(wr_t *w)
{
    hp_buf_t *d = w->data;
    size_t start = d->len;
    for (size_t i = 0; i < w->n_sec; i++) {
        const hp__blk_entry_t *e = &w->sec[i];
        hp__put_le32(d, e->id);
        hp__put_le32(d, e->codec);
        hp__put_le64(d, e->off);
        hp__put_le64(d, e->len);
        hp__put_le64(d, e->raw_len);
        hp__put_le32(d, e->crc);
        hp__put_le32(d, 0);
    }
    uint32_t table_len = (uint32_t)(d->len - start);
    uint32_t table_crc = hp__crc32c(0, d->data + start, table_len);
    hp__put_le32(d, w->version);
    hp__put_le32(d, table_len);
    hp__put_le32(d, table_crc);
    hp_buf_append(d, HP__BLK_MAGIC, 4);
}

/* Floor division by 10^6, so that ms of negative times are inclusive too. */
static int64_t ns_to_ms(int64_t ns)
{
    int64_t q = ns / 1000000;
    return ns % 1000000 < 0 ? q - 1 : q;
}

/* The writer's part of meta: times, stats, version, size. */
static void fill_meta(const wr_t *w, hp_block_meta_t *m)
{
    m->num_series = w->n_series;
    m->num_profiles = m->num_samples = 0;
    m->min_time_ms = m->max_time_ms = 0;
    for (size_t i = 0; i < w->n_series; i++) {
        const hp_block_series_in_t *s = w->series[i];
        int64_t lo = ns_to_ms(s->profiles[0].t), hi = ns_to_ms(s->profiles[s->n_profiles - 1].t);
        m->min_time_ms = i == 0 || lo < m->min_time_ms ? lo : m->min_time_ms;
        m->max_time_ms = i == 0 || hi > m->max_time_ms ? hi : m->max_time_ms;
        m->num_profiles += s->n_profiles;
        for (size_t j = 0; j < s->n_profiles; j++)
            m->num_samples += s->profiles[j].n;
    }
    m->version = w->version;
    m->data_bytes = w->data->len - w->base;
}

/* Every section in file order. */
static int write_sections(wr_t *w)
{
    int rc = put_pages(w);
    if (rc == 0)
        rc = put_symbols(w);
    if (rc == 0)
        rc = put_series_index(w);
    if (rc == 0)
        rc = put_postings(w);
    if (rc == 0)
        put_footer(w);
    return rc;
}

/* Checks every series and the object's limits before anything is written. */
static int check_inputs(const hp_symdb_t *db, const hp_block_series_in_t *series, size_t n_series,
                        uint32_t version, hp_err_t *err)
{
    if (db == NULL || (series == NULL && n_series > 0))
        return hp_err_set(err, HP_EINVAL, "block: no symdb or no series array");
    if (n_series > UINT32_MAX || hp_symdb_n_stacks(db) > UINT32_MAX)
        return hp_err_set(err, HP_ETOOLARGE, "block: %zu series or %zu stacks exceed the format's 2^32",
                          n_series, hp_symdb_n_stacks(db));
    for (size_t i = 0; i < n_series; i++) {
        int rc = check_series(&series[i], i, hp_symdb_n_stacks(db), version, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int hp__block_write_version(uint32_t version, const hp_symdb_t *db, const hp_block_series_in_t *series,
                            size_t n_series, hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json,
                            hp_err_t *err)
{
    if (version < 2 || version > HP_BLOCK_VERSION)
        return hp_err_set(err, HP_EINVAL, "block: cannot write version %u", version);
    int rc = check_inputs(db, series, n_series, version, err);
    if (rc != 0)
        return rc;
    wr_t w = {.db = db, .data = data, .base = data->len, .version = version, .err = err};
    w.cctx = ZSTD_createCCtx();
    if (w.cctx == NULL)
        rc = hp_err_set(err, HP_ENOMEM, "block: cannot create a zstd compressor");
    else
        rc = sort_series(&w, series, n_series);
    if (rc == 0) {
        (void)ZSTD_CCtx_setParameter(w.cctx, ZSTD_c_compressionLevel, HP__BLK_ZSTD_LEVEL);
        collect_label_strings(&w);
        hp_buf_append(data, HP__BLK_MAGIC, 4);
        hp__put_le32(data, version);
        rc = write_sections(&w);
    }
    if (rc == 0) {
        fill_meta(&w, meta);
        hp__block_meta_json(meta, meta_json);
    } else {
        data->len = w.base;
    }
    ZSTD_freeCCtx(w.cctx);
    hp_buf_fini(&w.raw);
    free(w.series);
    for (size_t i = 0; i < w.n_resorted; i++)
        free(w.resorted_profiles[i]);
    free(w.resorted);
    free(w.resorted_profiles);
    free(w.lstr);
    free(w.pages);
    free(w.first_page);
    free(w.span_tab);
    return rc;
}

int hp_block_write(const hp_symdb_t *db, const hp_block_series_in_t *series, size_t n_series,
                   hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_err_t *err)
{
    return hp__block_write_version(HP_BLOCK_VERSION, db, series, n_series, meta, data, meta_json, err);
}
