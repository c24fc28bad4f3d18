/* Writes the real JPEGs the test tools make (mkjpeg, mkbarcode), one row
 * at a time so that large images take no more memory than a row. */
#ifndef COPYSTAND_TESTJPEG_H
#define COPYSTAND_TESTJPEG_H

/* Fills one row y of an image: w RGB pixels, 3 * w bytes. */
typedef void testjpeg_row_fn(int y, unsigned char *rgb, void *ud);

/* Writes a w x h RGB JPEG (quality 85) to path: 0, or -1 when path cannot
 * be written or memory runs out. */
int testjpeg_write(const char *path, int w, int h, testjpeg_row_fn *row, void *ud);

#endif
