/* mkjpeg: writes a small real JPEG (a colour gradient with a seeded
 * pattern) for tests and the demo's sample folder; given a camera time,
 * with the EXIF a camera writes of its press (DateTimeOriginal and
 * SubSecTimeOriginal).
 * usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg [CAMERA_TIME] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exif-segment.h"
#include "testjpeg.h"

/* Puts the camera's EXIF of time t right after the JPEG's SOI. */
static int add_exif(const char *path, double t)
{
	size_t len, n = 0, cap = 1 << 16;
	unsigned char *seg = exif_segment_new("mkjpeg", (int64_t)llround(t * 1e6), true, &len);
	unsigned char *jpeg = malloc(cap);
	FILE *f = fopen(path, "rb");
	int ret = -1;

	while (f && jpeg && !feof(f) && !ferror(f)) {
		if (n == cap && !(jpeg = realloc(jpeg, cap *= 2)))
			break;
		n += fread(jpeg + n, 1, cap - n, f);
	}
	if (f)
		fclose(f);
	if (seg && jpeg && n > 2 && (f = fopen(path, "wb"))) {
		ret = fwrite(jpeg, 1, 2, f) == 2 && fwrite(seg, 1, len, f) == len &&
		      fwrite(jpeg + 2, 1, n - 2, f) == n - 2 ? 0 : -1;
		ret = fclose(f) == 0 ? ret : -1;
	}
	free(seg);
	free(jpeg);
	return ret;
}

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

	if (argc != 5 && argc != 6) {
		fputs("usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg [CAMERA_TIME]\n", stderr);
		return 2;
	}
	p.w = atoi(argv[1]);
	p.h = atoi(argv[2]);
	p.seed = (unsigned)strtoul(argv[3], NULL, 10);
	if (p.w <= 0 || p.h <= 0 || p.w > 20000 || p.h > 20000 ||
	    testjpeg_write(argv[4], p.w, p.h, picture_row, &p) < 0 ||
	    (argc == 6 && add_exif(argv[4], strtod(argv[5], NULL)) < 0)) {
		fputs("mkjpeg: bad size or cannot write the output\n", stderr);
		return 1;
	}
	return 0;
}
