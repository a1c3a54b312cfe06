/* The block reader: fetches a data object (docs/BLOCK_FORMAT.md) by byte
 * range — trailer and section table, then the series index and postings at
 * open, then one page or the symbols on demand — and checks every byte it
 * uses: CRC32C, decompressed sizes, counts against the bytes that hold
 * them, every ID against what it refers to.
 *
 * An open block is immutable: read_page and read_symbols may run on many
 * threads at once (each call has its own buffers and zstd context) as long
 * as the fetch function is thread-safe. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "block_internal.h"

/* The trailer plus this many table entries come in the first fetch: the
 * table of a block this build writes needs no second one. */
#define TAIL_ENTRIES 8
/* Series index and postings are fetched in one range when the bytes
 * between them are fewer than this. */
#define MAX_GAP ((uint64_t)1 << 20)
/* The fewest bytes a series index entry / a page's profile can take. */
#define MIN_SERIES_BYTES 12
#define MIN_PROFILE_BYTES 19
#define MIN_PAGE_REF_BYTES 10 /* a version-2 page entry: six varints and a CRC */

int hp__blk_fail(const hp_block_t *b, hp_err_t *err, const char *what, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return hp_err_set(err, HP_EINVAL, "block %s: %s: %s", b->name, what, m);
}

int hp__blk_fetch(const hp_block_t *b, const char *what, uint64_t off, uint64_t len, hp_buf_t *out,
                  hp_err_t *err)
{
    hp_err_t fe;
    hp_err_clear(&fe);
    hp_buf_reset(out);
    int rc = b->fetch(b->ctx, off, len, out, &fe);
    if (rc != 0)
        return hp_err_set(err, rc < 0 ? rc : HP_EINTERNAL, "block %s: fetching %s: %s", b->name, what,
                          fe.msg);
    if (out->len != len)
        return hp__blk_fail(b, err, what, "fetch returned %zu bytes, wanted %llu", out->len,
                            (unsigned long long)len);
    return 0;
}

int hp__blk_unpack(const hp_block_t *b, const char *what, const uint8_t *in, size_t n, uint32_t crc,
                   uint64_t raw_len, uint8_t **out, hp_err_t *err)
{
    *out = NULL;
    uint32_t c = hp__crc32c(0, in, n);
    if (c != crc)
        return hp__blk_fail(b, err, what, "checksum mismatch (stored %08x, computed %08x)", crc, c);
    if (raw_len > HP__BLK_MAX_RAW)
        return hp__blk_fail(b, err, what, "decompressed size %llu exceeds %llu", (unsigned long long)raw_len,
                            (unsigned long long)HP__BLK_MAX_RAW);
    unsigned long long fcs = ZSTD_getFrameContentSize(in, n);
    if (fcs != raw_len)
        return hp__blk_fail(b, err, what, "zstd frame does not declare the %llu bytes the block expects",
                            (unsigned long long)raw_len);
    uint8_t *dst = hp_xmalloc(raw_len + 1);
    size_t got = ZSTD_decompress(dst, raw_len, in, n);
    if (ZSTD_isError(got) || got != raw_len) {
        free(dst);
        return hp__blk_fail(b, err, what, "zstd: %s",
                            ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame");
    }
    *out = dst;
    return 0;
}

int hp__blk_rd_end(const hp_block_t *b, const hp__rd_t *d, const char *what, hp_err_t *err)
{
    if (d->bad)
        return hp__blk_fail(b, err, what, "truncated or malformed at byte %zu", (size_t)(d->r.p - d->start));
    if (!hp_pbr_done(&d->r))
        return hp__blk_fail(b, err, what, "%zu unexpected bytes at the end", (size_t)(d->r.end - d->r.p));
    return 0;
}

/* ---- footer ---- */

/* Checks one table entry against the object's bounds and its codec. */
static int check_entry(const hp_block_t *b, const hp__blk_entry_t *e, uint64_t table_start, hp_err_t *err)
{
    const char *what = hp__blk_section_name(e->id);
    if (e->off < HP__BLK_HEADER_LEN || e->off > table_start || e->len > table_start - e->off)
        return hp__blk_fail(b, err, what, "bytes [%llu, +%llu) lie outside the sections area [%d, %llu)",
                            (unsigned long long)e->off, (unsigned long long)e->len, HP__BLK_HEADER_LEN,
                            (unsigned long long)table_start);
    uint32_t want = e->id == HP__SEC_PAGES ? HP__CODEC_PAGES : HP__CODEC_ZSTD;
    if (e->id == 0 || e->id > HP__SEC_PAGES)
        return 0; /* a section this version does not know: skipped */
    if (e->codec != want)
        return hp__blk_fail(b, err, what, "codec %u, expected %u", e->codec, want);
    if (e->codec == HP__CODEC_ZSTD &&
        (e->raw_len > HP__BLK_MAX_RAW || e->len == 0 || e->len > ZSTD_compressBound(e->raw_len)))
        return hp__blk_fail(b, err, what, "%llu bytes cannot hold %llu decompressed bytes (at most %llu)",
                            (unsigned long long)e->len, (unsigned long long)e->raw_len,
                            (unsigned long long)HP__BLK_MAX_RAW);
    return 0;
}

static int entry_off_cmp(const void *a, const void *b)
{
    const hp__blk_entry_t *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Decodes and checks the table: bounds, codecs, no overlap, no duplicate,
 * all four sections of this version present. */
static int parse_table(hp_block_t *b, const uint8_t *tab, size_t n, uint64_t table_start, hp_err_t *err)
{
    hp__blk_entry_t e[HP__BLK_MAX_SECTIONS];
    hp__blk_entry_t *known[HP__SEC_PAGES + 1] = {NULL};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = tab + i * HP__BLK_ENTRY_LEN;
        e[i] = (hp__blk_entry_t){hp__get_le32(p),      hp__get_le32(p + 4),  hp__get_le64(p + 8),
                                 hp__get_le64(p + 16), hp__get_le64(p + 24), hp__get_le32(p + 32)};
        if (hp__get_le32(p + 36) != 0)
            return hp__blk_fail(b, err, "section table", "entry %zu: reserved field is not 0", i);
    }
    hp_qsort(e, n, sizeof(e[0]), entry_off_cmp);
    for (size_t i = 0; i < n; i++) {
        int rc = check_entry(b, &e[i], table_start, err);
        if (rc != 0)
            return rc;
        if (i > 0 && e[i - 1].off + e[i - 1].len > e[i].off)
            return hp__blk_fail(b, err, "section table", "sections %u and %u overlap", e[i - 1].id, e[i].id);
        if (e[i].id >= 1 && e[i].id <= HP__SEC_PAGES && known[e[i].id] != NULL)
            return hp__blk_fail(b, err, "section table", "section %s listed twice",
                                hp__blk_section_name(e[i].id));
        if (e[i].id >= 1 && e[i].id <= HP__SEC_PAGES)
            known[e[i].id] = &e[i];
    }
    for (uint32_t id = 1; id <= HP__SEC_PAGES; id++)
        if (known[id] == NULL)
            return hp__blk_fail(b, err, "section table", "section %s is missing", hp__blk_section_name(id));
    b->symbols = *known[HP__SEC_SYMBOLS];
    b->series_sec = *known[HP__SEC_SERIES];
    b->postings_sec = *known[HP__SEC_POSTINGS];
    b->pages = *known[HP__SEC_PAGES];
    return 0;
}

/* Fetches the trailer (with, usually, the table in the same range), checks
 * magic, version and table CRC, and parses the table. */
static int read_footer(hp_block_t *b, hp_buf_t *buf, hp_err_t *err)
{
    const uint64_t min = HP__BLK_HEADER_LEN + HP__BLK_TRAILER_LEN;
    if (b->data_bytes < min + HP__BLK_ENTRY_LEN)
        return hp__blk_fail(b, err, "data", "%llu bytes is shorter than any block",
                            (unsigned long long)b->data_bytes);
    uint64_t tail =
        HP_MIN(b->data_bytes - HP__BLK_HEADER_LEN, HP__BLK_TRAILER_LEN + TAIL_ENTRIES * HP__BLK_ENTRY_LEN);
    int rc = hp__blk_fetch(b, "footer", b->data_bytes - tail, tail, buf, err);
    if (rc != 0)
        return rc;
    const uint8_t *t = buf->data + tail - HP__BLK_TRAILER_LEN;
    if (memcmp(t + 12, HP__BLK_MAGIC, 4) != 0)
        return hp__blk_fail(b, err, "trailer", "bad magic (not a hotpath block, or truncated)");
    uint32_t version = hp__get_le32(t), tlen = hp__get_le32(t + 4), tcrc = hp__get_le32(t + 8);
    if (version < HP_BLOCK_MIN_VERSION || version > HP_BLOCK_VERSION)
        return hp__blk_fail(b, err, "trailer", "unsupported block version %u (this build reads %d to %d)",
                            version, HP_BLOCK_MIN_VERSION, HP_BLOCK_VERSION);
    b->version = version;
    if (tlen == 0 || tlen % HP__BLK_ENTRY_LEN != 0 || tlen / HP__BLK_ENTRY_LEN > HP__BLK_MAX_SECTIONS ||
        tlen > b->data_bytes - min)
        return hp__blk_fail(b, err, "trailer", "section table length %u is invalid", tlen);
    uint64_t table_start = b->data_bytes - HP__BLK_TRAILER_LEN - tlen;
    const uint8_t *tab = t - tlen;
    if (tlen + HP__BLK_TRAILER_LEN > tail) {
        if ((rc = hp__blk_fetch(b, "section table", table_start, tlen, buf, err)) != 0)
            return rc;
        tab = buf->data;
    }
    if (hp__crc32c(0, tab, tlen) != tcrc)
        return hp__blk_fail(b, err, "section table", "checksum mismatch");
    return parse_table(b, tab, tlen / HP__BLK_ENTRY_LEN, table_start, err);
}

/* ---- series index ---- */

/* n strings stored as n lengths then the bytes, into out (pointing into
 * the reader's buffer). */
bool hp__blk_rd_strings(hp__rd_t *d, hp_str_t *out, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        out[i].n = hp__rd_u(d);
        total += out[i].n; /* each ≤ 2^64 but checked below before the next add can wrap */
        if (out[i].n > hp__rd_left(d) || total > hp__rd_left(d))
            d->bad = true;
    }
    const char *p = (const char *)hp__rd_take(d, total);
    for (size_t i = 0; i < n && p != NULL; p += out[i].n, i++)
        out[i].p = p;
    return !d->bad;
}

/* Label-ID pairs compared pairwise then by count: the label sets' order,
 * since IDs follow the strings' order. */
static int lids_cmp(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    for (size_t i = 0; i < 2 * na && i < 2 * nb; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return na < nb ? -1 : na > nb;
}

/* A series' labels: pairs of label-string IDs, names strictly ascending. */
static int parse_labels(hp_block_t *b, hp__rd_t *d, hp__blk_series_t *s, size_t i, size_t *cap, hp_err_t *err)
{
    uint64_t n = hp__rd_u(d);
    if (n > hp__rd_left(d) / 2)
        return hp__blk_fail(b, err, "series index", "series %zu: %llu labels cannot fit", i,
                            (unsigned long long)n);
    s->loff = b->n_lids / 2;
    s->labels.n = s->labels.cap = n;
    HP_GROW(b->lids, *cap, b->n_lids + 2 * n + 1);
    for (uint64_t k = 0; k < 2 * n; k++) {
        uint64_t id = hp__rd_u(d);
        if (id >= b->n_lstr)
            return hp__blk_fail(b, err, "series index",
                                "series %zu: label string %llu out of range (%zu strings)", i,
                                (unsigned long long)id, b->n_lstr);
        if (k % 2 == 0 && k > 0 && id <= b->lids[b->n_lids - 2])
            return hp__blk_fail(b, err, "series index", "series %zu: label names not sorted", i);
        b->lids[b->n_lids++] = (uint32_t)id;
    }
    return 0;
}

/* A page's place in the pages area and its sizes (the part of a page
 * reference both versions share), checked. */
static int parse_page_ref(hp_block_t *b, hp__rd_t *d, hp__blk_page_t *pg, size_t i, size_t k, hp_err_t *err)
{
    pg->off = hp__rd_u(d);
    pg->len = hp__rd_u(d);
    pg->raw = hp__rd_u(d);
    const uint8_t *c = hp__rd_take(d, 4);
    pg->crc = c ? hp__get_le32(c) : 0;
    if (pg->off > b->pages.len || pg->len > b->pages.len - pg->off || pg->len == 0 ||
        pg->raw > HP__BLK_MAX_RAW || pg->len > ZSTD_compressBound(pg->raw))
        return hp__blk_fail(b, err, "series index",
                            "series %zu page %zu: [%llu, +%llu) of %llu bytes decompressed is invalid", i, k,
                            (unsigned long long)pg->off, (unsigned long long)pg->len,
                            (unsigned long long)pg->raw);
    if (pg->n_profiles == 0 || pg->n_profiles > pg->raw / MIN_PROFILE_BYTES)
        return hp__blk_fail(b, err, "series index", "series %zu page %zu: %llu profiles in %llu bytes", i, k,
                            (unsigned long long)pg->n_profiles, (unsigned long long)pg->raw);
    return 0;
}

/* Version 2's page list: uv n_pages, then per page its time range (from
 * the series' min_time, then from its own first time), profile count and
 * reference. Pages follow each other in time and together cover exactly
 * the series' range and profiles. */
static int parse_pages_v2(hp_block_t *b, hp__rd_t *d, hp__blk_series_t *s, size_t i, hp_err_t *err)
{
    uint64_t n = hp__rd_u(d), profiles = 0;
    if (n == 0 || n > s->n_profiles || n > hp__rd_left(d) / MIN_PAGE_REF_BYTES)
        return hp__blk_fail(b, err, "series index", "series %zu: %llu pages is invalid", i,
                            (unsigned long long)n);
    int64_t prev_max = s->min_t;
    uint64_t sspan = (uint64_t)s->max_t - (uint64_t)s->min_t;
    for (size_t k = 0; k < n; k++) {
        HP_GROW(b->page_v, b->cap_page_v, b->n_page_v + 1);
        hp__blk_page_t *pg = &b->page_v[b->n_page_v];
        uint64_t from = hp__rd_u(d), span = hp__rd_u(d);
        pg->n_profiles = hp__rd_u(d);
        if (from > sspan || span > sspan - from || (k == 0 && from != 0))
            return hp__blk_fail(b, err, "series index", "series %zu page %zu: times outside the series'", i, k);
        pg->min_t = (int64_t)((uint64_t)s->min_t + from);
        pg->max_t = (int64_t)((uint64_t)pg->min_t + span);
        if (pg->min_t < prev_max)
            return hp__blk_fail(b, err, "series index", "series %zu page %zu: starts before page %zu ends", i,
                                k, k - 1);
        prev_max = pg->max_t;
        int rc = parse_page_ref(b, d, pg, i, k, err);
        if (rc != 0)
            return rc;
        profiles += pg->n_profiles;
        s->raw_bytes += pg->raw;
        b->n_page_v++;
    }
    if (prev_max != s->max_t || profiles != s->n_profiles)
        return hp__blk_fail(b, err, "series index",
                            "series %zu: its pages hold %llu profiles up to %lld, the series %llu up to %lld", i,
                            (unsigned long long)profiles, (long long)prev_max,
                            (unsigned long long)s->n_profiles, (long long)s->max_t);
    return 0;
}

/* A series' period, times, profile count and pages. */
static int parse_series_rest(hp_block_t *b, hp__rd_t *d, hp__blk_series_t *s, size_t i, hp_err_t *err)
{
    s->period = hp__rd_s(d);
    s->min_t = hp__rd_s(d);
    uint64_t span = hp__rd_u(d);
    if (span > (uint64_t)INT64_MAX - (uint64_t)s->min_t)
        return hp__blk_fail(b, err, "series index", "series %zu: time span overflows", i);
    s->max_t = (int64_t)((uint64_t)s->min_t + span);
    s->n_profiles = hp__rd_u(d);
    s->page0 = b->n_page_v;
    if (s->n_profiles == 0)
        return hp__blk_fail(b, err, "series index", "series %zu: no profiles", i);
    int rc;
    if (b->version >= 2) {
        rc = parse_pages_v2(b, d, s, i, err);
    } else { /* version 1: one page for the whole series */
        HP_GROW(b->page_v, b->cap_page_v, b->n_page_v + 1);
        hp__blk_page_t *pg = &b->page_v[b->n_page_v];
        *pg = (hp__blk_page_t){.min_t = s->min_t, .max_t = s->max_t, .n_profiles = s->n_profiles};
        rc = parse_page_ref(b, d, pg, i, 0, err);
        if (rc == 0) {
            s->raw_bytes = pg->raw;
            b->n_page_v++;
        }
    }
    s->n_pages = b->n_page_v - s->page0;
    return rc;
}

/* The header counts and label strings of the series index. */
static int parse_index_head(hp_block_t *b, hp__rd_t *d, hp_err_t *err)
{
    uint64_t ns = hp__rd_u(d), nstk = hp__rd_u(d), nl = hp__rd_u(d);
    if (ns > hp__rd_left(d) / MIN_SERIES_BYTES || nstk == 0 || nstk > UINT32_MAX || nl > hp__rd_left(d))
        return hp__blk_fail(b, err, "series index",
                            "counts (%llu series, %llu stacks, %llu strings) are invalid",
                            (unsigned long long)ns, (unsigned long long)nstk, (unsigned long long)nl);
    b->n_series = ns;
    b->n_stacks = nstk;
    b->n_lstr = nl;
    b->lstr = hp_xcalloc(nl + 1, sizeof(*b->lstr));
    b->series = hp_xcalloc(ns + 1, sizeof(*b->series));
    if (!hp__blk_rd_strings(d, b->lstr, nl))
        return hp__blk_rd_end(b, d, "series index", err);
    for (size_t i = 1; i < nl; i++)
        if (hp_str_cmp(b->lstr[i - 1], b->lstr[i]) >= 0)
            return hp__blk_fail(b, err, "series index", "label strings not sorted and unique at %zu", i);
    return 0;
}

/* Points every series' labels at the final label arrays and fingerprints them. */
static void finish_labels(hp_block_t *b)
{
    b->labels = hp_xmalloc((b->n_lids / 2 + 1) * sizeof(*b->labels));
    for (size_t k = 0; k < b->n_lids / 2; k++)
        b->labels[k] = (hp_label_t){b->lstr[b->lids[2 * k]], b->lstr[b->lids[2 * k + 1]]};
    for (size_t i = 0; i < b->n_series; i++) {
        hp__blk_series_t *s = &b->series[i];
        s->labels.v = b->labels + s->loff;
        s->fp = hp_labels_fingerprint(&s->labels);
    }
}

static int parse_series_index(hp_block_t *b, const uint8_t *raw, size_t n, hp_err_t *err)
{
    hp__rd_t d = hp__rd(raw, n);
    size_t cap = 0;
    int rc = parse_index_head(b, &d, err);
    for (size_t i = 0; rc == 0 && i < b->n_series; i++) {
        hp__blk_series_t *s = &b->series[i];
        rc = parse_labels(b, &d, s, i, &cap, err);
        if (rc == 0)
            rc = parse_series_rest(b, &d, s, i, err);
        if (rc == 0 && i > 0 &&
            lids_cmp(b->lids + 2 * s[-1].loff, s[-1].labels.n, b->lids + 2 * s->loff, s->labels.n) >= 0)
            rc = hp__blk_fail(b, err, "series index", "series %zu is not after series %zu in label order", i,
                              i - 1);
        if (rc == 0 && d.bad)
            rc = hp__blk_rd_end(b, &d, "series index", err);
    }
    if (rc == 0)
        rc = hp__blk_rd_end(b, &d, "series index", err);
    if (rc == 0)
        finish_labels(b);
    return rc;
}

/* ---- open ---- */

/* Fetches the series index and postings (one range when they are close),
 * checks, decompresses and parses them. */
static int read_index(hp_block_t *b, hp_buf_t *buf, hp_buf_t *buf2, hp_err_t *err)
{
    const hp__blk_entry_t *s = &b->series_sec, *p = &b->postings_sec;
    uint64_t lo = HP_MIN(s->off, p->off), hi = HP_MAX(s->off + s->len, p->off + p->len);
    const uint8_t *sp, *pp;
    int rc;
    if (hi - lo <= s->len + p->len + MAX_GAP) {
        rc = hp__blk_fetch(b, "series index and postings", lo, hi - lo, buf, err);
        sp = buf->data + (s->off - lo);
        pp = buf->data + (p->off - lo);
    } else {
        rc = hp__blk_fetch(b, "series index", s->off, s->len, buf, err);
        if (rc == 0)
            rc = hp__blk_fetch(b, "postings", p->off, p->len, buf2, err);
        sp = buf->data;
        pp = buf2->data;
    }
    uint8_t *praw = NULL;
    if (rc == 0)
        rc = hp__blk_unpack(b, "series index", sp, s->len, s->crc, s->raw_len, &b->index_raw, err);
    if (rc == 0)
        rc = parse_series_index(b, b->index_raw, s->raw_len, err);
    if (rc == 0)
        rc = hp__blk_unpack(b, "postings", pp, p->len, p->crc, p->raw_len, &praw, err);
    if (rc == 0)
        rc = hp__blk_parse_postings(b, praw, p->raw_len, err);
    free(praw);
    return rc;
}

int hp_block_open(const char *name, uint64_t data_bytes, hp_block_fetch_fn fetch, void *ctx, hp_block_t **out,
                  hp_err_t *err)
{
    *out = NULL;
    hp_block_t *b = hp_xcalloc(1, sizeof(*b));
    b->name = hp_xstrdup(name ? name : "(unnamed)");
    b->data_bytes = data_bytes;
    b->fetch = fetch;
    b->ctx = ctx;
    hp_buf_t buf = HP_BUF_INIT, buf2 = HP_BUF_INIT;
    int rc = read_footer(b, &buf, err);
    if (rc == 0)
        rc = read_index(b, &buf, &buf2, err);
    hp_buf_fini(&buf);
    hp_buf_fini(&buf2);
    if (rc != 0) {
        hp_block_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

void hp_block_close(hp_block_t *b)
{
    if (b == NULL)
        return;
    free(b->name);
    free(b->index_raw);
    free(b->lstr);
    free(b->lids);
    free(b->labels);
    free(b->series);
    free(b->page_v);
    free(b->names);
    free(b->values);
    free(b->postings);
    free(b);
}

/* ---- accessors ---- */

size_t hp_block_n_series(const hp_block_t *b)
{
    return b->n_series;
}

const hp_labels_t *hp_block_series_labels(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? &b->series[i].labels : NULL;
}

uint64_t hp_block_series_fingerprint(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].fp : 0;
}

int64_t hp_block_series_period(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].period : 0;
}

int64_t hp_block_series_min_time(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].min_t : 0;
}

int64_t hp_block_series_max_time(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].max_t : 0;
}

uint64_t hp_block_series_n_profiles(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].n_profiles : 0;
}

uint64_t hp_block_series_page_bytes(const hp_block_t *b, size_t i)
{
    return i < b->n_series ? b->series[i].raw_bytes : 0;
}

/* ---- pages ---- */

/* Where a page walk puts what it decodes: nothing in the counting pass
 * (prof NULL), which only checks and counts; then the arrays sized by it.
 * The counts run on across the pages of one read. */
typedef struct page_out {
    hp_block_profile_t *prof;
    uint32_t *stacks;
    int64_t *values;
    uint64_t *spans;
    uint64_t n_prof, n, n_spans; /* profiles, samples, samples with a span column */
} page_out_t;

/* One profile's stack IDs, as deltas (each ID < n_stacks). strict (version
 * 3 without spans): no stack twice. */
static int walk_stacks(const hp_block_t *b, hp__rd_t *d, const char *what, size_t j, uint64_t cnt,
                       bool strict, uint32_t *stk, hp_err_t *err)
{
    uint64_t prev = 0;
    for (uint64_t k = 0; k < cnt; k++) {
        uint64_t delta = hp__rd_u(d);
        if (delta >= b->n_stacks - prev)
            return hp__blk_fail(b, err, what, "profile %zu sample %llu: stack ID out of range (%llu stacks)",
                                j, (unsigned long long)k, (unsigned long long)b->n_stacks);
        if (strict && k > 0 && delta == 0)
            return hp__blk_fail(b, err, what, "profile %zu sample %llu: stack repeated (stacks must ascend)",
                                j, (unsigned long long)k);
        prev += delta;
        if (stk)
            stk[k] = (uint32_t)prev;
    }
    return 0;
}

/* The table of a profile's distinct spans: 1 to cnt of them, non-zero and
 * strictly ascending. *tab points at them (u64 LE each). */
static int walk_span_table(const hp_block_t *b, hp__rd_t *d, const char *what, size_t j, uint64_t cnt,
                           const uint8_t **tab, uint64_t *n_tab, hp_err_t *err)
{
    uint64_t n = hp__rd_u(d);
    if (n == 0 || n > cnt || n > hp__rd_left(d) / 8)
        return hp__blk_fail(b, err, what, "profile %zu: %llu span IDs for %llu samples is invalid", j,
                            (unsigned long long)n, (unsigned long long)cnt);
    *tab = hp__rd_take(d, 8 * n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = hp__get_le64(*tab + 8 * i);
        if (v == 0 || (i > 0 && v <= hp__get_le64(*tab + 8 * (i - 1))))
            return hp__blk_fail(b, err, what, "profile %zu: span ID %llu is 0 or not after the one before", j,
                                (unsigned long long)i);
    }
    *n_tab = n;
    return 0;
}

/* Version 3's span column of one profile: the span table, then per sample
 * its index in it + 1 (0: no span). deltas is a cursor at the profile's
 * stack deltas: where a stack repeats, its span index must grow, so the
 * samples are strictly ascending by (stack, span). */
static int walk_spans(const hp_block_t *b, hp__rd_t *d, hp__rd_t deltas, const char *what, size_t j,
                      uint64_t cnt, uint64_t *spn, hp_err_t *err)
{
    const uint8_t *tab = NULL;
    uint64_t n_tab = 0, prev = 0;
    int rc = walk_span_table(b, d, what, j, cnt, &tab, &n_tab, err);
    for (uint64_t k = 0; k < cnt && rc == 0; k++) {
        uint64_t idx = hp__rd_u(d), delta = hp__rd_u(&deltas);
        if (idx > n_tab)
            return hp__blk_fail(b, err, what, "profile %zu sample %llu: span %llu out of range (%llu spans)",
                                j, (unsigned long long)k, (unsigned long long)idx, (unsigned long long)n_tab);
        if (k > 0 && delta == 0 && idx <= prev)
            return hp__blk_fail(b, err, what,
                                "profile %zu sample %llu: (stack, span) not after the sample before", j,
                                (unsigned long long)k);
        prev = idx;
        if (spn)
            spn[k] = idx ? hp__get_le64(tab + 8 * (idx - 1)) : 0;
    }
    return rc;
}

/* One profile's samples after its header: stacks, values, and (version 3,
 * when it has them) spans; into o's arrays unless counting. */
static int walk_samples(const hp_block_t *b, hp__rd_t *d, const char *what, size_t j, uint64_t cnt,
                        bool spans, page_out_t *o, hp_err_t *err)
{
    hp__rd_t deltas = *d;
    int rc =
        walk_stacks(b, d, what, j, cnt, b->version >= 3 && !spans, o->prof ? o->stacks + o->n : NULL, err);
    for (uint64_t k = 0; k < cnt && rc == 0; k++) {
        int64_t v = hp__rd_s(d);
        if (o->prof)
            o->values[o->n + k] = v;
    }
    if (rc == 0 && spans)
        rc = walk_spans(b, d, deltas, what, j, cnt, o->prof ? o->spans + o->n_spans : NULL, err);
    return rc;
}

/* Decodes a page, checking it against its index entry pg. With o->prof
 * NULL it only validates and counts; otherwise it fills o's arrays (sized
 * by the counting pass). */
static int walk_page(const hp_block_t *b, const hp__blk_page_t *pg, const char *what, const uint8_t *raw,
                     size_t len, page_out_t *o, hp_err_t *err)
{
    hp__rd_t d = hp__rd(raw, len);
    uint64_t n = hp__rd_u(&d);
    if (n != pg->n_profiles)
        return hp__blk_fail(b, err, what, "holds %llu profiles, the index says %llu", (unsigned long long)n,
                            (unsigned long long)pg->n_profiles);
    int64_t t = pg->min_t;
    for (size_t j = 0; j < n && !d.bad; j++) {
        uint64_t dt = hp__rd_u(&d);
        if ((j == 0 && dt != 0) || dt > (uint64_t)pg->max_t - (uint64_t)t)
            return hp__blk_fail(b, err, what, "profile %zu: time outside the page's range", j);
        t = (int64_t)((uint64_t)t + dt);
        const uint8_t *id = hp__rd_take(&d, 16);
        int64_t sum = hp__rd_s(&d);
        uint64_t x = hp__rd_u(&d), cnt = b->version >= 3 ? x >> 1 : x; /* version 3: n << 1 | has spans */
        bool spans = b->version >= 3 && (x & 1);
        if (cnt > hp__rd_left(&d) / 2)
            return hp__blk_fail(b, err, what, "profile %zu: %llu samples cannot fit", j,
                                (unsigned long long)cnt);
        int rc = walk_samples(b, &d, what, j, cnt, spans, o, err);
        if (rc != 0)
            return rc;
        if (o->prof && id) {
            o->prof[o->n_prof] = (hp_block_profile_t){.t = t,
                                                      .total = sum,
                                                      .stacks = o->stacks + o->n,
                                                      .values = o->values + o->n,
                                                      .spans = spans ? o->spans + o->n_spans : NULL,
                                                      .n = (uint32_t)cnt};
            memcpy(o->prof[o->n_prof].id, id, 16);
        }
        o->n_prof++;
        o->n += cnt;
        o->n_spans += spans ? cnt : 0;
    }
    if (!d.bad && t != pg->max_t)
        return hp__blk_fail(b, err, what, "last profile's time differs from the index's");
    return hp__blk_rd_end(b, &d, what, err);
}

/* The pages [k0, k1) of series i, fetched as one range (a series' pages
 * are stored back to back), checked and decompressed into raw[]. */
static int unpack_pages(hp_block_t *b, size_t i, size_t k0, size_t k1, uint8_t **raw, hp_err_t *err)
{
    const hp__blk_page_t *pv = b->page_v + b->series[i].page0;
    char what[64];
    snprintf(what, sizeof(what), "series %zu page", i);
    uint64_t lo = pv[k0].off, hi = pv[k0].off + pv[k0].len;
    for (size_t k = k0 + 1; k < k1; k++)
        lo = HP_MIN(lo, pv[k].off), hi = HP_MAX(hi, pv[k].off + pv[k].len);
    hp_buf_t buf = HP_BUF_INIT;
    int rc = hp__blk_fetch(b, what, b->pages.off + lo, hi - lo, &buf, err);
    for (size_t k = k0; k < k1 && rc == 0; k++)
        rc = hp__blk_unpack(b, what, buf.data + (pv[k].off - lo), pv[k].len, pv[k].crc, pv[k].raw,
                            &raw[k - k0], err);
    hp_buf_fini(&buf);
    return rc;
}

int hp_block_read_range(hp_block_t *b, size_t i, int64_t start_ns, int64_t end_ns, hp_block_page_t *page,
                        hp_err_t *err)
{
    memset(page, 0, sizeof(*page));
    if (i >= b->n_series)
        return hp_err_set(err, HP_EINVAL, "block %s: series %zu out of range (%zu series)", b->name, i,
                          b->n_series);
    const hp__blk_series_t *s = &b->series[i];
    const hp__blk_page_t *pv = b->page_v + s->page0;
    size_t k0 = 0, k1 = s->n_pages;
    while (k0 < k1 && pv[k0].max_t < start_ns)
        k0++;
    while (k1 > k0 && pv[k1 - 1].min_t > end_ns)
        k1--;
    if (k0 == k1) {
        page->mem = hp_xmalloc(1);
        page->profiles = page->mem;
        return 0;
    }
    /* every selected page is held decompressed at once: their sum is
     * bounded too, so a crafted index cannot make us allocate page count ×
     * the page bound */
    uint64_t sum = 0;
    for (size_t k = k0; k < k1; k++)
        sum += pv[k].raw;
    if (sum > HP__BLK_MAX_RANGE_RAW)
        return hp__blk_fail(b, err, "series index",
                            "series %zu: pages %zu to %zu hold %llu bytes decompressed, more than %llu at once", i,
                            k0, k1 - 1, (unsigned long long)sum, (unsigned long long)HP__BLK_MAX_RANGE_RAW);
    char what[64];
    snprintf(what, sizeof(what), "series %zu page", i);
    uint8_t **raw = hp_xcalloc(k1 - k0, sizeof(*raw));
    page_out_t cnt = {0};
    int rc = unpack_pages(b, i, k0, k1, raw, err);
    for (size_t k = k0; k < k1 && rc == 0; k++) /* pass 1: check and count */
        rc = walk_page(b, &pv[k], what, raw[k - k0], pv[k].raw, &cnt, err);
    if (rc == 0) { /* pass 2: one allocation for profiles, values, spans and stacks */
        uint64_t bytes = (uint64_t)cnt.n_prof * sizeof(hp_block_profile_t) +
                         (uint64_t)cnt.n * (sizeof(int64_t) + 4) + (uint64_t)cnt.n_spans * sizeof(uint64_t);
        if (bytes > HP__BLK_MAX_RANGE_RAW) { /* decoded arrays are larger than the bytes they come from */
            for (size_t k = k0; k < k1; k++)
                free(raw[k - k0]);
            free(raw);
            return hp_err_set(err, HP_ETOOLARGE,
                              "block %s: series %zu: pages %zu to %zu decode to %llu bytes, more than %llu at once",
                              b->name, i, k0, k1 - 1, (unsigned long long)bytes,
                              (unsigned long long)HP__BLK_MAX_RANGE_RAW);
        }
        page->mem = hp_xmalloc((size_t)bytes + 1);
        page->profiles = page->mem;
        page->n_profiles = cnt.n_prof;
        page_out_t o = {.prof = page->profiles, .values = (int64_t *)(page->profiles + cnt.n_prof)};
        o.spans = (uint64_t *)(o.values + cnt.n);
        o.stacks = (uint32_t *)(o.spans + cnt.n_spans);
        for (size_t k = k0; k < k1 && rc == 0; k++)
            rc = walk_page(b, &pv[k], what, raw[k - k0], pv[k].raw, &o, err);
    }
    for (size_t k = k0; k < k1; k++)
        free(raw[k - k0]);
    free(raw);
    if (rc != 0)
        hp_block_page_fini(page);
    return rc;
}

int hp_block_read_page(hp_block_t *b, size_t i, hp_block_page_t *page, hp_err_t *err)
{
    return hp_block_read_range(b, i, INT64_MIN, INT64_MAX, page, err);
}

void hp_block_page_fini(hp_block_page_t *page)
{
    if (page == NULL)
        return;
    free(page->mem);
    memset(page, 0, sizeof(*page));
}

/* Checks one section's stored bytes against its CRC, fetched in chunks. */
static int verify_section(hp_block_t *b, const hp__blk_entry_t *e, hp_buf_t *buf, hp_err_t *err)
{
    const char *what = hp__blk_section_name(e->id);
    uint32_t crc = 0;
    for (uint64_t done = 0; done < e->len;) {
        uint64_t n = HP_MIN(e->len - done, (uint64_t)1 << 20);
        int rc = hp__blk_fetch(b, what, e->off + done, n, buf, err);
        if (rc != 0)
            return rc;
        crc = hp__crc32c(crc, buf->data, buf->len);
        done += n;
    }
    if (crc != e->crc)
        return hp__blk_fail(b, err, what, "checksum mismatch (stored %08x, computed %08x)", e->crc, crc);
    return 0;
}

int hp_block_verify(hp_block_t *b, hp_err_t *err)
{
    const hp__blk_entry_t *secs[] = {&b->symbols, &b->series_sec, &b->postings_sec, &b->pages};
    hp_buf_t buf = HP_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]) && rc == 0; i++)
        rc = verify_section(b, secs[i], &buf, err);
    hp_buf_fini(&buf);
    return rc;
}

size_t hp_block_mem_bytes(const hp_block_t *b)
{
    return sizeof(*b) + b->series_sec.raw_len + b->n_lstr * sizeof(hp_str_t) + b->n_lids * sizeof(uint32_t) +
           b->n_lids / 2 * sizeof(hp_label_t) + b->n_series * sizeof(hp__blk_series_t) +
           b->n_names * sizeof(hp__blk_pname_t) + b->n_values * sizeof(hp__blk_pvalue_t) +
           b->n_postings * sizeof(uint32_t);
}
