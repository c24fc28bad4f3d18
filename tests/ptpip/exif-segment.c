#include "exif-segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libexif/exif-data.h>

#define MODEL_MAX 254

/* An ASCII entry; libexif takes the text as it is, NUL included. */
static int add_text(ExifData *ed, ExifMem *mem, ExifIfd ifd, ExifTag tag, const char *text,
		    size_t n)
{
	ExifEntry *e = exif_entry_new_mem(mem);

	if (!e)
		return -1;
	if (!(e->data = exif_mem_alloc(mem, (ExifLong)n + 1))) {
		exif_entry_unref(e);
		return -1;
	}
	memcpy(e->data, text, n);
	e->tag = tag;
	e->format = EXIF_FORMAT_ASCII;
	e->components = n + 1;
	e->size = (unsigned int)n + 1;
	exif_content_add_entry(ed->ifd[ifd], e);
	exif_entry_unref(e);
	return 0;
}

static int add_entries(ExifData *ed, ExifMem *mem, const char *model, int64_t camera_us,
		       bool subsec)
{
	time_t secs = (time_t)(camera_us / 1000000);
	char date[32], hundredths[8];
	struct tm tm;
	size_t dn = strftime(date, sizeof date, "%Y:%m:%d %H:%M:%S", gmtime_r(&secs, &tm));
	/* Truncated, as cameras do: the press lies within the hundredth. */
	int hn = snprintf(hundredths, sizeof hundredths, "%02d",
			  (int)(camera_us % 1000000 / 10000));

	if (add_text(ed, mem, EXIF_IFD_0, EXIF_TAG_MAKE, EXIF_MAKE, strlen(EXIF_MAKE)) ||
	    add_text(ed, mem, EXIF_IFD_0, EXIF_TAG_MODEL, model, strnlen(model, MODEL_MAX)) ||
	    add_text(ed, mem, EXIF_IFD_0, EXIF_TAG_DATE_TIME, date, dn) ||
	    add_text(ed, mem, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, date, dn) ||
	    add_text(ed, mem, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_DIGITIZED, date, dn))
		return -1;
	if (subsec &&
	    (add_text(ed, mem, EXIF_IFD_EXIF, EXIF_TAG_SUB_SEC_TIME_ORIGINAL, hundredths,
		      (size_t)hn) ||
	     add_text(ed, mem, EXIF_IFD_EXIF, EXIF_TAG_SUB_SEC_TIME_DIGITIZED, hundredths,
		      (size_t)hn)))
		return -1;
	return 0;
}

unsigned char *exif_segment_new(const char *model, int64_t camera_us, bool subsec,
				size_t *len)
{
	ExifMem *mem = exif_mem_new_default();
	ExifData *ed = mem ? exif_data_new_mem(mem) : NULL;
	unsigned char *tiff = NULL, *seg = NULL;
	unsigned int n = 0;

	if (ed) {
		exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_INTEL);
		if (!add_entries(ed, mem, model, camera_us, subsec))
			exif_data_save_data(ed, &tiff, &n);
	}
	/* exif_data_save_data() gives "Exif\0\0" and the TIFF structure; the
	 * segment adds its marker and a length that counts itself. */
	if (tiff && n + 2 <= 0xffff && (seg = malloc(n + 4))) {
		seg[0] = 0xff;
		seg[1] = 0xe1;
		seg[2] = (unsigned char)((n + 2) >> 8);
		seg[3] = (unsigned char)(n + 2);
		memcpy(seg + 4, tiff, n);
		*len = n + 4;
	}
	if (tiff)
		exif_mem_free(mem, tiff);
	if (ed)
		exif_data_unref(ed);
	if (mem)
		exif_mem_unref(mem);
	return seg;
}
