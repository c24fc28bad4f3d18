/* mkjpeg: writes a small real JPEG (a colour gradient with a seeded
 * pattern) for tests and the demo's sample folder.
 * usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

int main(int argc, char **argv)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	unsigned char *row;
	unsigned seed;
	int w, h;
	FILE *out;

	if (argc != 5) {
		fputs("usage: mkjpeg WIDTH HEIGHT SEED OUT.jpg\n", stderr);
		return 2;
	}
	w = atoi(argv[1]);
	h = atoi(argv[2]);
	seed = (unsigned)strtoul(argv[3], NULL, 10);
	if (w <= 0 || h <= 0 || w > 20000 || h > 20000 || !(out = fopen(argv[4], "wb"))) {
		fputs("mkjpeg: bad size or cannot write the output\n", stderr);
		return 1;
	}
	row = malloc((size_t)w * 3);
	if (!row)
		return 1;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, out);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 85, TRUE);
	jpeg_start_compress(&c, TRUE);
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			unsigned v = (unsigned)(x * 7 + y * 3) ^ (seed * 2654435761u >> (x % 13));
			row[3 * x] = (unsigned char)(x * 255 / w);
			row[3 * x + 1] = (unsigned char)(y * 255 / h);
			row[3 * x + 2] = (unsigned char)(v & 0xff);
		}
		JSAMPROW r = row;
		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return fclose(out) == 0 ? 0 : 1;
}
