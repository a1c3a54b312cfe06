/* What the block writer (block_write.c) and reader (block_read.c,
 * block_postings.c, block_symbols.c) share: the constants of the byte
 * layout in docs/BLOCK_FORMAT.md, the section table entry, CRC32C,
 * little-endian helpers, and the reader's state. libcommon-internal. */
#ifndef HOTPATH_BLOCK_INTERNAL_H
#define HOTPATH_BLOCK_INTERNAL_H


#include "hotpath/block.h"
#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/pbwire.h"

#define HP__BLK_MAGIC "HPBK"
#define HP__BLK_HEADER_LEN 8   /* magic, u32 version */
#define HP__BLK_TRAILER_LEN 16 /* u32 version, u32 table length, u32 table CRC32C, magic */
#define HP__BLK_ENTRY_LEN 40   /* one section table entry */
#define HP__BLK_MAX_SECTIONS 64
/* No section or page is larger than this once decompressed: writers refuse
 * to produce one, readers refuse to allocate for one. */
#define HP__BLK_MAX_RAW ((uint64_t)1 << 30)
/* ... and for the pages one read holds at once (a series' pages in range). */
#define HP__BLK_MAX_RANGE_RAW ((uint64_t)4 << 30)
#define HP__BLK_ZSTD_LEVEL 3
/* A series' profiles are cut into pages of about this many bytes (before
 * compression), so a query for part of a block's time range decodes only
 * the pages that overlap it (format version 2; version 1 has one page per
 * series). */
#define HP__BLK_PAGE_TARGET (256u << 10)

/* Section IDs (stable: part of the format). */
enum { HP__SEC_SYMBOLS = 1, HP__SEC_SERIES = 2, HP__SEC_POSTINGS = 3, HP__SEC_PAGES = 4 };
/* How a section's bytes are stored. */
enum { HP__CODEC_ZSTD = 1, HP__CODEC_PAGES = 2 };

typedef struct hp__blk_entry {
    uint32_t id, codec;
    uint64_t off, len, raw_len; /* len: stored (compressed) bytes */
    uint32_t crc;               /* CRC32C of the stored bytes */
} hp__blk_entry_t;

/* CRC32C (Castagnoli) of p[0..n), continuing from crc (0 to start). */
uint32_t hp__crc32c(uint32_t crc, const void *p, size_t n);

/* hp_block_write in an older format version this build still reads (2,
 * without span IDs: a profile with spans is HP_EINVAL) or the current
 * one. For tests of the readers of older blocks. */
int hp__block_write_version(uint32_t version, const hp_symdb_t *db, const hp_block_series_in_t *series,
                            size_t n_series, hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json,
                            hp_err_t *err) HP_WUR;

/* Appends meta as meta.json (one line, newline-terminated). */
void hp__block_meta_json(const hp_block_meta_t *m, hp_buf_t *out);

/* A section's name for messages ("symbols", "series index", …). */
const char *hp__blk_section_name(uint32_t id);

static inline void hp__put_le32(hp_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    hp_buf_append(b, x, 4);
}

static inline void hp__put_le64(hp_buf_t *b, uint64_t v)
{
    hp__put_le32(b, (uint32_t)v);
    hp__put_le32(b, (uint32_t)(v >> 32));
}

static inline uint32_t hp__get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t hp__get_le64(const uint8_t *p)
{
    return (uint64_t)hp__get_le32(p) | (uint64_t)hp__get_le32(p + 4) << 32;
}

static inline uint64_t hp__zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

/* ---- reader ---- */

/* One page of a series: a time-ordered run of its profiles. */
typedef struct hp__blk_page {
    int64_t min_t, max_t;  /* its first and last profile's time */
    uint64_t n_profiles;
    uint64_t off, len, raw; /* off: within the pages area; len: stored bytes */
    uint32_t crc;           /* CRC32C of the stored bytes */
} hp__blk_page_t;

/* One series as the index describes it. */
typedef struct hp__blk_series {
    hp_labels_t labels; /* v into the block's labels array */
    size_t loff;        /* first label in the block's lids / labels */
    uint64_t fp;
    int64_t period, min_t, max_t;
    uint64_t n_profiles;
    size_t page0, n_pages; /* its pages: b->page_v[page0 .. page0 + n_pages) */
    uint64_t raw_bytes;    /* the pages' decompressed bytes together */
} hp__blk_series_t;

/* Postings: names → values → series lists, each level sorted by string. */
typedef struct hp__blk_pname {
    uint32_t name;   /* label string ID */
    size_t voff, nv; /* into values */
} hp__blk_pname_t;

typedef struct hp__blk_pvalue {
    uint32_t value;  /* label string ID */
    size_t soff, ns; /* into postings */
} hp__blk_pvalue_t;

struct hp_block {
    char *name;
    uint64_t data_bytes;
    hp_block_fetch_fn fetch;
    void *ctx;
    hp__blk_entry_t symbols, series_sec, postings_sec, pages;
    uint64_t n_stacks;
    uint8_t *index_raw; /* the decompressed series index: label strings point into it */
    hp_str_t *lstr;     /* label strings, sorted, unique */
    size_t n_lstr;
    uint32_t *lids; /* every series' (name, value) label-string IDs */
    size_t n_lids;
    hp_label_t *labels; /* the same as strings */
    hp__blk_series_t *series;
    size_t n_series;
    hp__blk_page_t *page_v; /* every series' pages, in series order */
    size_t n_page_v, cap_page_v;
    uint32_t version;       /* HP_BLOCK_VERSION or an older one this build reads */
    hp__blk_pname_t *names;
    size_t n_names;
    hp__blk_pvalue_t *values;
    size_t n_values;
    uint32_t *postings;
    size_t n_postings;
};

/* A cursor over a decompressed section. Reads past a problem set bad and
 * return zeros, so a parser checks bad once where it is convenient. */
typedef struct hp__rd {
    hp_pbr_t r;
    const uint8_t *start;
    bool bad;
} hp__rd_t;

static inline hp__rd_t hp__rd(const uint8_t *p, size_t n)
{
    hp__rd_t d = {hp_pbr(p, n), p, false};
    return d;
}

static inline size_t hp__rd_left(const hp__rd_t *d)
{
    return d->bad ? 0 : (size_t)(d->r.end - d->r.p);
}

static inline uint64_t hp__rd_u(hp__rd_t *d)
{
    uint64_t v = 0;
    if (!d->bad && !hp_pbr_varint(&d->r, &v))
        d->bad = true;
    return d->bad ? 0 : v;
}

static inline int64_t hp__rd_s(hp__rd_t *d)
{
    return hp_pb_unzigzag(hp__rd_u(d));
}

/* n bytes, or NULL (and bad) when fewer remain. */
static inline const uint8_t *hp__rd_take(hp__rd_t *d, uint64_t n)
{
    if (n > hp__rd_left(d)) {
        d->bad = true;
        return NULL;
    }
    const uint8_t *p = d->r.p;
    d->r.p += n;
    return p;
}

/* HP_EINVAL "block <name>: <what>: <message>". */
int hp__blk_fail(const hp_block_t *b, hp_err_t *err, const char *what, const char *fmt, ...) HP_PRINTF(4, 5);
/* Fetches exactly len bytes at off into out (emptied first). */
int hp__blk_fetch(const hp_block_t *b, const char *what, uint64_t off, uint64_t len, hp_buf_t *out,
                  hp_err_t *err) HP_WUR;
/* Checks in[0..n)'s CRC32C and decompresses it into exactly raw_len bytes
 * (≤ HP__BLK_MAX_RAW) in *out, which the caller frees. */
int hp__blk_unpack(const hp_block_t *b, const char *what, const uint8_t *in, size_t n, uint32_t crc,
                   uint64_t raw_len, uint8_t **out, hp_err_t *err) HP_WUR;
/* The error for a cursor that went bad or has bytes left; 0 otherwise. */
int hp__blk_rd_end(const hp_block_t *b, const hp__rd_t *d, const char *what, hp_err_t *err) HP_WUR;
/* n strings stored as n lengths then their bytes, pointing into d's buffer. */
bool hp__blk_rd_strings(hp__rd_t *d, hp_str_t *out, size_t n);
/* Parses the postings section and checks it is exactly the inverse of
 * the series' labels. */
int hp__blk_parse_postings(hp_block_t *b, const uint8_t *raw, size_t n, hp_err_t *err) HP_WUR;

#endif
