/* Cross-file internals of libcommon (hp__ prefix). Not installed. */
#ifndef HOTPATH_INTERNAL_H
#define HOTPATH_INTERNAL_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t hp__utf8_seq(const unsigned char *s, size_t n);

#endif
