/* mkjpeg: writes a small real JPEG (a colour gradient with a seeded
 * pattern) for tests and the demo's sample folder.
 * usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg */
#include <stdio.h>
#include <stdlib.h>

#include "testjpeg.h"

struct picture {
	int w, h;
	unsigned seed;
};

static void picture_row(int y, unsigned char *rgb, void *ud)
{
	const struct picture *p = ud;

	for (int x = 0; x < p->w; x++) {
		unsigned v = (unsigned)(x * 7 + y * 3) ^ (p->seed * 2654435761u >> (x % 13));
		rgb[3 * x] = (unsigned char)(x * 255 / p->w);
		rgb[3 * x + 1] = (unsigned char)(y * 255 / p->h);
		rgb[3 * x + 2] = (unsigned char)(v & 0xff);
	}
}

int main(int argc, char **argv)
{
	struct picture p;

	if (argc != 5) {
		fputs("usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg\n", stderr);
		return 2;
	}
	p.w = atoi(argv[1]);
	p.h = atoi(argv[2]);
	p.seed = (unsigned)strtoul(argv[3], NULL, 10);
	if (p.w <= 0 || p.h <= 0 || p.w > 20000 || p.h > 20000 ||
	    testjpeg_write(argv[4], p.w, p.h, picture_row, &p) < 0) {
		fputs("mkjpeg: bad size or cannot write the output\n", stderr);
		return 1;
	}
	return 0;
}
