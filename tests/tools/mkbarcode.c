/* mkbarcode: writes a synthetic specimen photo with real barcodes on
 * labels, for the label reader's tests and benchmark.
 *
 * usage: mkbarcode [--size WxH] [--seed N] [--noise N] [LABEL...] OUT.jpg
 *   LABEL: [--datamatrix] [--module PX] [--at X,Y] TEXT
 *
 * The photo is a colour gradient with noise (up to N levels either way,
 * default 8: a camera's grain; 24 is a lot, and slows barcode search) and
 * a dark ellipse (the specimen); each label is an off-white rectangle holding one code, Code
 * 128 (code set B, printable ASCII) or DataMatrix (libdmtx's encoder),
 * with its quiet zone and a margin.  --module is the width of a module in
 * pixels (default 3), --at the label's top left corner (default: centred).
 * No LABEL gives a photo without any barcode.  Default size 1200x800. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_DMTX
#include <dmtx.h>
#endif

#include "testjpeg.h"

#define LABELS_MAX 8
#define SIDE_MAX 20000

/* Code 128: bar and space widths of each symbol value, in modules; 103 is
 * start A, 104 start B, 105 start C, 106 the stop (with its final bar). */
static const char code128[107][8] = {
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312",
	"132212", "221213", "221312", "231212", "112232", "122132", "122231", "113222",
	"123122", "123221", "223211", "221132", "221231", "213212", "223112", "312131",
	"311222", "321122", "321221", "312212", "322112", "322211", "212123", "212321",
	"232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121",
	"313121", "211331", "231131", "213113", "213311", "213131", "311123", "311321",
	"331121", "312113", "312311", "332111", "314111", "221411", "431111", "111224",
	"111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
	"122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112",
	"421211", "212141", "214121", "412121", "111143", "111341", "131141", "114113",
	"114311", "411113", "411311", "113141", "114131", "311141", "411131", "211412",
	"211214", "211232", "2331112",
};

/* A label: a code as a grid of modules, placed in the photo. */
struct label {
	int x, y, w, h;         /* the label, in pixels */
	int module;             /* pixels per module */
	int quiet;              /* quiet zone and margin around the code, in modules */
	int cols, rows;         /* the code's modules */
	int row_h;              /* pixels per row of modules */
	unsigned char *dark;    /* cols * rows, 1 for a dark module */
};

struct photo {
	int w, h;
	unsigned seed;
	unsigned grain;         /* noise amplitude */
	int n;
	struct label labels[LABELS_MAX];
};

static void put_bars(struct label *l, int *col, const char *widths)
{
	for (int i = 0; widths[i]; i++)
		for (int k = 0; k < widths[i] - '0'; k++)
			l->dark[(*col)++] = !(i & 1);
}

/* Code set B: a start, one symbol per character, the checksum, the stop.
 * Bars 30 modules high, as printed labels have them. */
static bool encode_code128(struct label *l, const char *text)
{
	size_t n = strlen(text);
	unsigned sum = 104;
	int col = 0;

	for (size_t i = 0; i < n; i++)
		if (text[i] < 32 || text[i] > 126)
			return false;
	l->cols = (int)(11 * (n + 3) + 2);
	l->rows = 1;
	l->quiet = 10;
	l->row_h = 30 * l->module;
	if (!(l->dark = calloc((size_t)l->cols, 1)))
		return false;
	put_bars(l, &col, code128[104]);
	for (size_t i = 0; i < n; i++) {
		put_bars(l, &col, code128[text[i] - 32]);
		sum += (unsigned)(i + 1) * (unsigned)(text[i] - 32);
	}
	put_bars(l, &col, code128[sum % 103]);
	put_bars(l, &col, code128[106]);
	return col == l->cols;
}

#ifdef HAVE_DMTX
/* libdmtx draws the symbol one pixel a module; its rows are read here so
 * that the solid edges of the finder pattern end up left and at the bottom,
 * as on paper (checked: a mirrored symbol would not scan). */
static bool encode_datamatrix(struct label *l, const char *text)
{
	DmtxEncode *enc = dmtxEncodeCreate();
	bool ok = false;

	if (!enc)
		return false;
	dmtxEncodeSetProp(enc, DmtxPropPixelPacking, DmtxPack8bppK);
	dmtxEncodeSetProp(enc, DmtxPropModuleSize, 1);
	dmtxEncodeSetProp(enc, DmtxPropMarginSize, 0);
	if (dmtxEncodeDataMatrix(enc, (int)strlen(text), (unsigned char *)text) != DmtxPass)
		goto out;
	l->cols = dmtxImageGetProp(enc->image, DmtxPropWidth);
	l->rows = dmtxImageGetProp(enc->image, DmtxPropHeight);
	l->quiet = 4;
	l->row_h = l->module;
	if (!(l->dark = calloc((size_t)l->cols * (size_t)l->rows, 1)))
		goto out;
	for (int r = 0; r < l->rows; r++)
		for (int c = 0; c < l->cols; c++) {
			int v = 255;

			/* dmtx counts rows from the bottom. */
			dmtxImageGetPixelValue(enc->image, c, l->rows - 1 - r, 0, &v);
			l->dark[r * l->cols + c] = v < 128;
		}
	ok = true;
	for (int r = 0; r < l->rows; r++)
		ok = ok && l->dark[r * l->cols];
	for (int c = 0; c < l->cols; c++)
		ok = ok && l->dark[(l->rows - 1) * l->cols + c];
out:
	dmtxEncodeDestroy(&enc);
	return ok;
}
#endif

/* A cheap hash of a pixel: the photo's noise, the same for the same seed. */
static unsigned noise(unsigned x, unsigned y, unsigned seed)
{
	unsigned v = x * 0x9E3779B1u ^ y * 0x85EBCA77u ^ seed * 0xC2B2AE3Du;

	v ^= v >> 15;
	v *= 0x2C1B3C6Du;
	return v ^ (v >> 12);
}

static unsigned char clamp(int v)
{
	return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void label_row(const struct label *l, int y, unsigned char *rgb, unsigned seed)
{
	int ly = y - l->y - l->quiet * l->module;
	int row = ly >= 0 ? ly / l->row_h : -1;

	for (int x = l->x; x < l->x + l->w; x++) {
		int lx = (x - l->x) / l->module - l->quiet;
		bool dark = row >= 0 && row < l->rows && lx >= 0 && lx < l->cols &&
			    l->dark[row * l->cols + lx];
		int v = (dark ? 40 : 232) + (int)(noise((unsigned)x, (unsigned)y, seed) % 13) - 6;

		rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = clamp(v);
	}
}

static void photo_row(int y, unsigned char *rgb, void *ud)
{
	const struct photo *p = ud;
	double cy = (y - p->h / 2.0) / (p->h / 4.0);

	for (int x = 0; x < p->w; x++) {
		double cx = (x - p->w / 2.0) / (p->w / 5.0);
		int n = (int)(noise((unsigned)x, (unsigned)y, p->seed) % (2 * p->grain + 1)) -
			(int)p->grain;
		bool specimen = cx * cx + cy * cy < 1;

		rgb[3 * x] = clamp((specimen ? 70 : 60 + 120 * x / p->w) + n);
		rgb[3 * x + 1] = clamp((specimen ? 50 : 80 + 100 * y / p->h) + n);
		rgb[3 * x + 2] = clamp((specimen ? 30 : 140) + n);
	}
	for (int i = 0; i < p->n; i++)
		if (y >= p->labels[i].y && y < p->labels[i].y + p->labels[i].h)
			label_row(&p->labels[i], y, rgb, p->seed);
}

static int usage(void)
{
	fputs("usage: mkbarcode [--size WxH] [--seed N] [--noise N] [LABEL...] OUT.jpg\n"
	      "  LABEL: [--datamatrix] [--module PX] [--at X,Y] TEXT\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct photo p = { .w = 1200, .h = 800, .seed = 1, .grain = 8 };
	bool datamatrix = false, placed = false;
	int module = 3, at_x = 0, at_y = 0, i, ret = 1;

	for (i = 1; i < argc - 1; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--size") == 0 && i + 1 < argc - 1) {
			if (sscanf(argv[++i], "%dx%d", &p.w, &p.h) != 2)
				return usage();
		} else if (strcmp(a, "--seed") == 0 && i + 1 < argc - 1) {
			p.seed = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(a, "--noise") == 0 && i + 1 < argc - 1) {
			p.grain = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(a, "--datamatrix") == 0) {
			datamatrix = true;
		} else if (strcmp(a, "--module") == 0 && i + 1 < argc - 1) {
			module = atoi(argv[++i]);
		} else if (strcmp(a, "--at") == 0 && i + 1 < argc - 1) {
			if (sscanf(argv[++i], "%d,%d", &at_x, &at_y) != 2)
				return usage();
			placed = true;
		} else if (a[0] == '-' && a[1] == '-') {
			return usage();
		} else {
			struct label *l = &p.labels[p.n];
			bool ok;

			if (p.n == LABELS_MAX || module < 1 || module > 100) {
				fputs("mkbarcode: too many labels, or a module size not in 1..100\n", stderr);
				goto out;
			}
			l->module = module;
			p.n++;
#ifdef HAVE_DMTX
			ok = datamatrix ? encode_datamatrix(l, a) : encode_code128(l, a);
#else
			ok = !datamatrix && encode_code128(l, a);
#endif
			if (!ok) {
				fprintf(stderr, "mkbarcode: cannot encode \"%s\" (Code 128 takes printable "
					"ASCII; DataMatrix needs a build with libdmtx)\n", a);
				goto out;
			}
			l->w = (l->cols + 2 * l->quiet) * module;
			l->h = l->rows * l->row_h + 2 * l->quiet * module;
			l->x = placed ? at_x : (p.w - l->w) / 2;
			l->y = placed ? at_y : (p.h - l->h) / 2;
			datamatrix = placed = false;
			module = 3;
		}
	}
	if (i != argc - 1 || argv[i][0] == '-')
		return usage();
	if (p.w < 1 || p.h < 1 || p.w > SIDE_MAX || p.h > SIDE_MAX || p.grain > 100) {
		fprintf(stderr, "mkbarcode: the size must be 1x1 to %dx%d, the noise 0 to 100\n",
			SIDE_MAX, SIDE_MAX);
		goto out;
	}
	for (int k = 0; k < p.n; k++) {
		const struct label *l = &p.labels[k];

		if (l->x < 0 || l->y < 0 || l->x + l->w > p.w || l->y + l->h > p.h) {
			fprintf(stderr, "mkbarcode: label %d (%dx%d at %d,%d) does not fit in %dx%d\n",
				k + 1, l->w, l->h, l->x, l->y, p.w, p.h);
			goto out;
		}
	}
	if (testjpeg_write(argv[i], p.w, p.h, photo_row, &p) < 0) {
		fprintf(stderr, "mkbarcode: cannot write %s\n", argv[i]);
		goto out;
	}
	ret = 0;
out:
	for (int k = 0; k < p.n; k++)
		free(p.labels[k].dark);
	return ret;
}
