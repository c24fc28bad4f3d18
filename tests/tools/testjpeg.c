/* A test tool's JPEG writer: libjpeg's default error handler, which exits
 * on a libjpeg error, is what a tool wants. */
#include "testjpeg.h"

#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

int testjpeg_write(const char *path, int w, int h, testjpeg_row_fn *row, void *ud)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	unsigned char *rgb;
	FILE *out;

	if (!(out = fopen(path, "wb")))
		return -1;
	if (!(rgb = malloc((size_t)w * 3))) {
		fclose(out);
		return -1;
	}
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
		JSAMPROW r = rgb;

		row(y, rgb, ud);
		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(rgb);
	return fclose(out) == 0 ? 0 : -1;
}
