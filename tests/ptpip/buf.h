/* Growable byte buffers and the non-blocking connections built on them,
 * for ptpip-camera.
 *
 * Appends never fail loudly: a failed allocation sets oom and later
 * appends do nothing, so a packet or reply is checked once, when complete.
 * Offsets into a buffer ("marks", to patch a length in later) stay valid
 * until the buffer is compacted, which only happens between packets. */
#ifndef PTPIP_BUF_H
#define PTPIP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	unsigned char *data;
	size_t len;     /* bytes held */
	size_t off;     /* of which already sent or parsed */
	size_t cap;
	bool oom;
};

size_t buf_pending(const struct buf *b);
void buf_compact(struct buf *b);
void buf_free(struct buf *b);

/* Room for n more bytes at the end (len unchanged), or NULL. */
unsigned char *buf_space(struct buf *b, size_t n);
/* n more bytes at the end, to be filled by the caller, or NULL. */
unsigned char *buf_grow(struct buf *b, size_t n);

/* Little-endian integers, as PTP wants them. */
void put_le(struct buf *b, uint64_t v, size_t width);
void put16(struct buf *b, uint16_t v);
void put32(struct buf *b, uint32_t v);
void put64(struct buf *b, uint64_t v);
void patch_le(struct buf *b, size_t at, uint64_t v, size_t width);
void put_bytes(struct buf *b, const void *p, size_t n);

/* Text, without the NUL. */
__attribute__((format(printf, 2, 3)))
void buf_printf(struct buf *b, const char *fmt, ...);

struct conn {
	int fd;         /* -1: unused */
	struct buf in, out;
};

/* Reads all that has arrived into in; -1 when the peer has gone or sends
 * far more than we consume. */
int conn_fill(struct conn *c);
/* Sends out as far as the socket takes it; -1 when the peer has gone. */
int conn_flush(struct conn *c);
void conn_close(struct conn *c);
/* Hands a connection over, leaving from unused. */
void conn_move(struct conn *to, struct conn *from);

#endif
