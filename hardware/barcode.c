/* The label reader: a JPEG decoded to grey with libjpeg, searched by zbar
 * and, where built with it, libdmtx.  What shapes this file:
 *  - zbar takes 1.3 to 2.2 s on a whole 24 MP frame, a sixth to a fifth
 *    of that on the frame decoded at half size (libjpeg scales while it
 *    decodes, at no extra cost), where labels usually still have 2 pixels
 *    a module or more: the half-size search comes first and the full-size
 *    one only when it found nothing (docs/performance.md, "Label check");
 *  - libdmtx takes 6 to 18 s to search a whole frame at half size, but
 *    finds a symbol of 3 pixels a module or more there in its first few
 *    hundred ms (it searches coarse to fine): it gets a budget of
 *    processor time, last, and only when zbar found nothing;
 *  - libjpeg's default error handler exits the process and prints: ours
 *    jumps back with the message, and warnings that the picture data is
 *    damaged or cut short are errors too.
 */
#include "barcode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_ZBAR

#include <setjmp.h>

#include <jpeglib.h>
#include <jerror.h>
#include <zbar.h>
#ifdef HAVE_DMTX
#include <dmtx.h>
#endif

/* Larger frames than any camera's (151 MP) are refused before memory is
 * taken for them; libjpeg's own buffers are bounded too (a progressive
 * JPEG keeps all its coefficients). */
#define PIXELS_MAX 160000000.0
#define JPEG_MEMORY_MAX (512L << 20)

/* Frames above this many pixels get the half-size pass first. */
#define HALF_PASS_ABOVE 4000000.0

/* Read by zbar: codes found on specimen labels.  EAN/UPC, Interleaved 2
 * of 5, Codabar and DataBar stay off: no catalog number uses them, and
 * noise in a photo fakes short codes of them (DataBar and EAN add-ons did
 * in our tests). */
static const zbar_symbol_type_t symbologies[] = {
	ZBAR_CODE128, ZBAR_CODE39, ZBAR_CODE93, ZBAR_QRCODE,
};

struct barcode_reader {
	zbar_image_scanner_t *zbar;
};

/* A frame decoded to grey, one byte a pixel. */
struct gray {
	unsigned char *pixels;
	unsigned w, h;
	bool halved;            /* decoded at half size */
};

/* The results of one barcode_read_file. */
struct found {
	barcode_result *out;
	size_t max, n;
};

/* --- decoding the JPEG ------------------------------------------------ */

struct jpeg_failure {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	bool damaged;           /* the picture data, not the file's structure */
	char msg[JMSG_LENGTH_MAX];
};

static void jpeg_fail(j_common_ptr c)
{
	struct jpeg_failure *f = (struct jpeg_failure *)c->err;

	c->err->format_message(c, f->msg);
	longjmp(f->jump, 1);
}

/* Warnings about metadata are let be; the others mean the picture is cut
 * short or damaged, and a label read from it could be a wrong one.  Trace
 * messages (levels above 0) are dropped: library code never prints. */
static void jpeg_warn(j_common_ptr c, int level)
{
	struct jpeg_failure *f = (struct jpeg_failure *)c->err;

	if (level >= 0)
		return;
	switch (c->err->msg_code) {
	case JWRN_ADOBE_XFORM:
	case JWRN_JFIF_MAJOR:
	case JWRN_EXTRANEOUS_DATA:
		return;
	}
	f->damaged = true;
	jpeg_fail(c);
}

/* libjpeg's state, off the stack: what the decoder changes after setjmp
 * is not a local of the function that called it, so it is still good
 * after the jump. */
struct decoder {
	struct jpeg_decompress_struct c;
	struct jpeg_failure f;
};

/* Decodes the JPEG at path to grey into g: at half size when may_halve
 * and the frame is large, else at full size. */
static int decode(const char *path, bool may_halve, struct gray *g, cs_error *err)
{
	struct decoder *d;
	FILE *file;
	int ret;

	g->pixels = NULL;
	if (!(file = fopen(path, "rbe")))
		return cs_error_set(err, CS_E_IO, "label check: cannot open %s: %s", path,
				    strerror(errno));
	if (!(d = calloc(1, sizeof *d))) {
		fclose(file);
		return cs_error_set(err, CS_E_NOMEM, "label check of %s: out of memory", path);
	}
	d->c.err = jpeg_std_error(&d->f.pub);
	d->f.pub.error_exit = jpeg_fail;
	d->f.pub.emit_message = jpeg_warn;
	if (setjmp(d->f.jump)) {
		if (d->f.damaged)
			ret = cs_error_set(err, CS_E_INVALID,
					   "label check: %s is damaged or cut short (%s): copy it "
					   "again from the card, or check the label by eye", path, d->f.msg);
		else
			ret = cs_error_set(err, CS_E_INVALID,
					   "label check: %s is no JPEG that can be read (%s): labels "
					   "are read from JPEGs (for RAW+JPEG, from the JPEG)", path,
					   d->f.msg);
		goto out;
	}
	jpeg_create_decompress(&d->c);
	d->c.mem->max_memory_to_use = JPEG_MEMORY_MAX;
	jpeg_stdio_src(&d->c, file);
	jpeg_read_header(&d->c, TRUE);
	if ((double)d->c.image_width * d->c.image_height > PIXELS_MAX) {
		ret = cs_error_set(err, CS_E_INVALID,
				   "label check: %s has %ux%u pixels, more than the label reader "
				   "takes (%.0f million): check the label by eye", path,
				   d->c.image_width, d->c.image_height, PIXELS_MAX / 1e6);
		goto out;
	}
	g->halved = may_halve && (double)d->c.image_width * d->c.image_height > HALF_PASS_ABOVE;
	d->c.out_color_space = JCS_GRAYSCALE;
	d->c.scale_num = 1;
	d->c.scale_denom = g->halved ? 2 : 1;
	jpeg_start_decompress(&d->c);
	g->w = d->c.output_width;
	g->h = d->c.output_height;
	if (!(g->pixels = malloc((size_t)g->w * g->h))) {
		ret = cs_error_set(err, CS_E_NOMEM, "label check of %s: out of memory", path);
		goto out;
	}
	while (d->c.output_scanline < d->c.output_height) {
		JSAMPROW row = g->pixels + (size_t)d->c.output_scanline * g->w;

		jpeg_read_scanlines(&d->c, &row, 1);
	}
	jpeg_finish_decompress(&d->c);
	ret = 0;
out:
	jpeg_destroy_decompress(&d->c);
	free(d);
	fclose(file);
	if (ret < 0) {
		free(g->pixels);
		g->pixels = NULL;
	}
	return ret;
}

/* --- results ------------------------------------------------------------ */

/* Keeps a decoded text unless it holds a control character (NUL
 * included: it cannot be a catalog number, and taking it out could make
 * one of two fields run together) or is there already.  Cut at 255 bytes,
 * back to the start of a UTF-8 character. */
static void found_add(struct found *f, const char *text, size_t len, const char *symbology)
{
	barcode_result *r;

	if (f->n == f->max)
		return;
	r = &f->out[f->n];
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return;
	if (len >= sizeof r->text) {
		len = sizeof r->text - 1;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->out[i].text, r->text) == 0)
			return;
	snprintf(r->symbology, sizeof r->symbology, "%s", symbology);
	f->n++;
}

/* --- searching ------------------------------------------------------------ */

static int zbar_search(barcode_reader *r, const struct gray *g, const char *path,
		       struct found *f, cs_error *err)
{
	zbar_image_t *img = zbar_image_create();
	int ret = 0;

	if (!img)
		return cs_error_set(err, CS_E_NOMEM, "label check of %s: out of memory", path);
	zbar_image_set_format(img, zbar_fourcc('Y', '8', '0', '0'));
	zbar_image_set_size(img, g->w, g->h);
	zbar_image_set_data(img, g->pixels, (unsigned long)g->w * g->h, NULL);
	if (zbar_scan_image(r->zbar, img) < 0) {
		ret = cs_error_set(err, CS_E_NOMEM, "label check of %s: zbar failed (out of "
				   "memory?)", path);
	} else {
		for (const zbar_symbol_t *s = zbar_image_first_symbol(img); s; s = zbar_symbol_next(s))
			found_add(f, zbar_symbol_get_data(s), zbar_symbol_get_data_length(s),
				  zbar_get_symbol_name(zbar_symbol_get_type(s)));
	}
	zbar_image_destroy(img);
	return ret;
}

#ifdef HAVE_DMTX
/* Edges weaker than this (percent, libdmtx's scale) are not followed: a
 * printed label's are far stronger, and following the photo's weak ones
 * took half the time before a symbol was found. */
#define DMTX_EDGE_MIN 50
/* libdmtx's deadlines are on the wall clock; slices of it let the budget
 * be this thread's processor time, the same on a busy machine. */
#define DMTX_SLICE_MS 50
/* Enough to find a symbol of 3 pixels a module or more in a 24 MP frame
 * at half size (0.01 to 0.35 s in our tests, 1.1 s in a very grainy one);
 * searching all of it takes 6 to 10 s. */
#define DMTX_BUDGET_MS 1000.0

static double cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Searches for the whole budget, not only until the first symbol: a
 * second one may be another specimen's label. */
static int dmtx_search(const struct gray *g, const char *path, struct found *f, cs_error *err)
{
	DmtxImage *img = dmtxImageCreate(g->pixels, (int)g->w, (int)g->h, DmtxPack8bppK);
	DmtxDecode *dec = img ? dmtxDecodeCreate(img, 1) : NULL;
	double until = cpu_ms() + DMTX_BUDGET_MS;

	if (!dec) {
		dmtxImageDestroy(&img);
		return cs_error_set(err, CS_E_NOMEM, "label check of %s: out of memory", path);
	}
	dmtxDecodeSetProp(dec, DmtxPropEdgeThresh, DMTX_EDGE_MIN);
	while (f->n < f->max && cpu_ms() < until) {
		DmtxTime slice = dmtxTimeAdd(dmtxTimeNow(), DMTX_SLICE_MS);
		DmtxRegion *reg = dmtxRegionFindNext(dec, &slice);
		DmtxMessage *msg;

		if (!reg) {
			/* Nothing in this slice, or the whole frame searched. */
			if (!dmtxTimeExceeded(slice))
				break;
			continue;
		}
		if ((msg = dmtxDecodeMatrixRegion(dec, reg, DmtxUndefined))) {
			found_add(f, (const char *)msg->output, (size_t)msg->outputIdx, "DataMatrix");
			dmtxMessageDestroy(&msg);
		}
		dmtxRegionDestroy(&reg);
	}
	dmtxDecodeDestroy(&dec);
	dmtxImageDestroy(&img);
	return 0;
}
#endif

/* --- the reader ------------------------------------------------------------ */

bool barcode_available(void)
{
	return true;
}

int barcode_reader_new(barcode_reader **out, cs_error *err)
{
	barcode_reader *r;

	if (!out)
		return cs_error_set(err, CS_E_INVALID, "barcode_reader_new: nowhere to put the reader");
	*out = NULL;
	if (!(r = calloc(1, sizeof *r)) || !(r->zbar = zbar_image_scanner_create())) {
		free(r);
		return cs_error_set(err, CS_E_NOMEM, "starting the label reader: out of memory");
	}
	zbar_image_scanner_set_config(r->zbar, ZBAR_NONE, ZBAR_CFG_ENABLE, 0);
	for (size_t i = 0; i < sizeof symbologies / sizeof symbologies[0]; i++)
		zbar_image_scanner_set_config(r->zbar, symbologies[i], ZBAR_CFG_ENABLE, 1);
	*out = r;
	return 0;
}

void barcode_reader_free(barcode_reader *r)
{
	if (!r)
		return;
	zbar_image_scanner_destroy(r->zbar);
	free(r);
}

static int zbar_search_at(barcode_reader *r, const struct gray *g, int density,
			  const char *path, struct found *f, cs_error *err)
{
	zbar_image_scanner_set_config(r->zbar, ZBAR_NONE, ZBAR_CFG_X_DENSITY, density);
	zbar_image_scanner_set_config(r->zbar, ZBAR_NONE, ZBAR_CFG_Y_DENSITY, density);
	return zbar_search(r, g, path, f, err);
}

/* zbar on the frame at half size (large frames), then at full size if
 * that found nothing; DataMatrix last, on the smaller frame. */
int barcode_read_file(barcode_reader *r, const char *jpeg_path,
		      barcode_result *out, size_t max, size_t *n,
		      cs_error *err)
{
	struct found f = { .out = out, .max = max };
	struct gray first, full;
	int ret;

	if (n)
		*n = 0;
	if (!r || !jpeg_path || !out || max == 0 || !n)
		return cs_error_set(err, CS_E_INVALID,
				    "barcode_read_file: no reader, no file or no room for results");
	ret = decode(jpeg_path, true, &first, err);
	if (ret < 0)
		return ret;
	ret = zbar_search_at(r, &first, 1, jpeg_path, &f, err);
	if (ret == 0 && f.n == 0 && first.halved) {
		ret = decode(jpeg_path, false, &full, err);
		/* At full size a label's bars span hundreds of lines: every
		 * other line still crosses them many times, in half the time. */
		if (ret == 0)
			ret = zbar_search_at(r, &full, 2, jpeg_path, &f, err);
		free(full.pixels);
	}
#ifdef HAVE_DMTX
	if (ret == 0 && f.n == 0)
		ret = dmtx_search(&first, jpeg_path, &f, err);
#endif
	free(first.pixels);
	if (ret == 0)
		*n = f.n;
	return ret;
}

#else /* !HAVE_ZBAR */

static int unavailable(cs_error *err)
{
	return cs_error_set(err, CS_E_CONFIG,
			    "this copystand was built without zbar, so it cannot read barcodes "
			    "in images: install libzbar-dev (and libdmtx-dev for DataMatrix), "
			    "then rebuild (meson setup --reconfigure BUILD -Dlabel=enabled)");
}

bool barcode_available(void)
{
	return false;
}

int barcode_reader_new(barcode_reader **out, cs_error *err)
{
	if (out)
		*out = NULL;
	return unavailable(err);
}

void barcode_reader_free(barcode_reader *r)
{
	free(r);
}

int barcode_read_file(barcode_reader *r, const char *jpeg_path,
		      barcode_result *out, size_t max, size_t *n,
		      cs_error *err)
{
	(void)r;
	(void)jpeg_path;
	(void)out;
	(void)max;
	if (n)
		*n = 0;
	return unavailable(err);
}

#endif
