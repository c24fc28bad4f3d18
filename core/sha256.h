/* copystand — SHA-256 (FIPS 180-4), streamed: files are hashed as they
 * are written or read, never loaded whole.  Used to recognise a file that
 * is already attached and to prove bytes arrived intact. */
#ifndef COPYSTAND_SHA256_H
#define COPYSTAND_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sha256_ctx {
	uint32_t h[8];
	uint64_t length;       /* bytes so far */
	uint8_t block[64];
	size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Writes 64 lower-case hex digits and a NUL. */
void sha256_final_hex(sha256_ctx *c, char hex[65]);

/* Where the processor has SHA instructions (x86-64) they are used, some
 * twenty times faster; false makes every later hash use the portable code
 * instead (for tests: both must give the same digests). */
void sha256_set_accelerated(bool on);

/* Hashes a whole file in chunks; size (may be NULL) gets its length. */
int sha256_file(const char *path, char hex[65], long long *size, cs_error *err);
/* The same for what fd holds, from its start (its offset unchanged);
 * name is for messages. */
int sha256_fd(int fd, const char *name, char hex[65], long long *size, cs_error *err);

#endif
