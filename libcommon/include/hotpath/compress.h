/*
 * compress.h — bounded decompression of what clients send (gzip, via
 * libdeflate) and zstd helpers.
 *
 * Every decompression has a hard output bound, checked while decompressing:
 * a gzip bomb (1 MiB → 1 GiB) is refused after at most the bound's worth of
 * work, never by first inflating it. Multi-member gzip is supported.
 *
 * Not for: streaming; inputs here are whole request bodies.
 */
#ifndef HOTPATH_COMPRESS_H
#define HOTPATH_COMPRESS_H

#include "hotpath/buf.h"
#include "hotpath/common.h"

/* True when p starts with the gzip magic (1f 8b). */
bool hp_is_gzip(const void *p, size_t n);

/* Decompresses the gzip data in[0..n) into out (appended). Errors:
 * HP_ETOOLARGE when the output would exceed max_out ("… exceeds N bytes
 * after decompression"), HP_EINVAL for corrupt or truncated data. Reuses a
 * per-thread libdeflate decompressor. */
int hp_gunzip(const void *in, size_t n, size_t max_out, hp_buf_t *out, hp_err_t *err) HP_WUR;

/* If in is gzip, decompresses into scratch and points *data and *len at it;
 * otherwise points them at in itself (after checking n <= max_out). */
int hp_maybe_gunzip(const void *in, size_t n, size_t max_out, hp_buf_t *scratch,
                    const uint8_t **data, size_t *len, hp_err_t *err) HP_WUR;

/* Compresses with gzip (libdeflate, level 1–12) — for tests and tools. */
int hp_gzip(const void *in, size_t n, int level, hp_buf_t *out) HP_WUR;

#endif
