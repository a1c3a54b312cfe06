/*
 * ring.h — a consistent-hash ring over a 32-bit token space. Each member
 * owns num_tokens tokens derived deterministically from its instance ID, so
 * every client that knows the same members computes the same ring without a
 * coordination service. A key belongs to the member owning the first token
 * at or after it (wrapping); its replicas are the next distinct members
 * clockwise.
 *
 * This is the ring's placement math over a given member list; health,
 * member states and discovery layer on top of it (members.h).
 *
 * Not for: knowing whether a member is alive (members.h).
 */
#ifndef HOTPATH_RING_H
#define HOTPATH_RING_H

#include "hotpath/common.h"
#include "hotpath/labels.h"

typedef struct hp_ring hp_ring_t;

/* Builds a ring of n members identified by ids (copied), num_tokens each
 * (0 = 128). Token i of a member lies in the i-th of num_tokens equal slices
 * of the token space, at an offset hashed from (ID, i). */
hp_ring_t *hp_ring_new(const char *const *ids, size_t n, size_t num_tokens);
void hp_ring_free(hp_ring_t *r);
size_t hp_ring_members(const hp_ring_t *r);

/* Writes up to rf distinct member indices for key, in ring order, into out;
 * returns how many (min(rf, members)). */
size_t hp_ring_get(const hp_ring_t *r, uint32_t key, size_t rf, size_t *out);

/* The fraction of the token space each member owns (for /ring). */
double hp_ring_ownership(const hp_ring_t *r, size_t member);

/* Every member's fraction at once, in one pass over the tokens: out has
 * room for hp_ring_members(r) values. */
void hp_ring_ownership_all(const hp_ring_t *r, double *out);

/* Visits each distinct member once, in clockwise order from the first
 * token at or after key (wrapping), until visit returns false or every
 * member was visited. For placement rules that skip members (health,
 * states, zones) on top of the plain ring order of hp_ring_get. */
void hp_ring_walk(const hp_ring_t *r, uint32_t key, bool (*visit)(void *ctx, size_t member), void *ctx);

/* Splits a comma-separated member list ("tcp://a:1, tcp://b:2") into
 * owned strings; returns the count. Free with hp_ring_members_free. */
size_t hp_ring_parse_members(const char *list, char ***out);
void hp_ring_members_free(char **members, size_t n);

/* FNV-1 32-bit (multiply, then xor), as Pyroscope hashes series. */
uint32_t hp_fnv1_32(uint32_t h, const void *p, size_t n);
#define HP_FNV1_32_INIT 0x811c9dc5u

/* A series' token: FNV-1 32 of tenant ‖ `{a="1", b="2"}` (Pyroscope's
 * TokenFor), over the sorted labels. */
uint32_t hp_ring_series_token(hp_str_t tenant, const hp_labels_t *ls);

#endif
