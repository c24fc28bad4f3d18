#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Unconsumed input beyond this means a broken or hostile peer. */
#define IN_LIMIT   (4u << 20)
#define READ_SIZE  65536u

size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

void buf_compact(struct buf *b)
{
	if (!b->off)
		return;
	memmove(b->data, b->data + b->off, buf_pending(b));
	b->len -= b->off;
	b->off = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

unsigned char *buf_space(struct buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	unsigned char *grown;

	if (b->oom)
		return NULL;
	while (cap - b->len < n)
		cap *= 2;
	if (cap != b->cap) {
		if (!(grown = realloc(b->data, cap))) {
			b->oom = true;
			return NULL;
		}
		b->data = grown;
		b->cap = cap;
	}
	return b->data + b->len;
}

unsigned char *buf_grow(struct buf *b, size_t n)
{
	unsigned char *p = buf_space(b, n);

	if (p)
		b->len += n;
	return p;
}

void put_le(struct buf *b, uint64_t v, size_t width)
{
	unsigned char *p = buf_grow(b, width);

	for (size_t i = 0; p && i < width; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

void put16(struct buf *b, uint16_t v)
{
	put_le(b, v, 2);
}

void put32(struct buf *b, uint32_t v)
{
	put_le(b, v, 4);
}

void put64(struct buf *b, uint64_t v)
{
	put_le(b, v, 8);
}

void patch_le(struct buf *b, size_t at, uint64_t v, size_t width)
{
	for (size_t i = 0; !b->oom && i < width; i++, v >>= 8)
		b->data[at + i] = (unsigned char)v;
}

void put_bytes(struct buf *b, const void *p, size_t n)
{
	unsigned char *to = n ? buf_grow(b, n) : NULL;

	/* n == 0 may come with p == NULL, which memcpy() must not see. */
	if (to)
		memcpy(to, p, n);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	unsigned char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	/* The room for vsnprintf's NUL is not counted in len. */
	if (n < 0 || !(p = buf_space(b, (size_t)n + 1)))
		return;
	va_start(ap, fmt);
	vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int conn_fill(struct conn *c)
{
	for (;;) {
		unsigned char *p;
		ssize_t r;

		buf_compact(&c->in);
		if (buf_pending(&c->in) > IN_LIMIT || !(p = buf_space(&c->in, READ_SIZE)))
			return -1;
		r = recv(c->fd, p, READ_SIZE, MSG_DONTWAIT);
		if (r > 0)
			c->in.len += (size_t)r;
		else if (r == 0)
			return -1;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		else if (errno != EINTR)
			return -1;
	}
}

int conn_flush(struct conn *c)
{
	if (c->fd < 0)
		return 0;
	if (c->out.oom)
		return -1;
	while (buf_pending(&c->out)) {
		/* MSG_NOSIGNAL: a host that has gone is an error, not a SIGPIPE. */
		ssize_t w = send(c->fd, c->out.data + c->out.off, buf_pending(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w >= 0)
			c->out.off += (size_t)w;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		else if (errno != EINTR)
			return -1;
	}
	buf_compact(&c->out);
	return 0;
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	c->fd = -1;
}

void conn_move(struct conn *to, struct conn *from)
{
	*to = *from;
	*from = (struct conn){ .fd = -1 };
}
