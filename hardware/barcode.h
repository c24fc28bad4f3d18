/* copystand — barcodes on the specimen label, read from the captured
 * image (zbar: Code 128, Code 39, Code 93, QR Code; DataMatrix through
 * libdmtx where it was built with it).
 *
 * Slow on full-size images (0.2 to 3 s for 24 MP, the most when there is
 * no barcode: docs/performance.md), so callers run it off the capture
 * path.  A large frame is searched at half size first and at full size
 * only when nothing was found there.  DataMatrix is searched for last,
 * only when nothing else was found (a DataMatrix beside a Code 128 is not
 * reported), at half size and for a second of processor time: it needs
 * about 6 pixels a module in a 24 MP frame, where Code 128 needs 1.
 * Built without zbar (-Dlabel=disabled, or no libzbar-dev),
 * barcode_reader_new says so and nothing else changes.  Knows nothing of
 * Specify: the caller decides which of the codes is a catalog number.
 *
 * A reader belongs to one thread; several readers may work at once.
 */
#ifndef COPYSTAND_BARCODE_H
#define COPYSTAND_BARCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct barcode_reader barcode_reader;

typedef struct barcode_result {
	char text[256];       /* the decoded bytes (UTF-8 for QR), cut at 255
	                       * at a UTF-8 character's start */
	char symbology[24];   /* "CODE-128", "QR-Code", "DataMatrix", ... */
} barcode_result;

/* Whether this build can read barcodes at all. */
bool barcode_available(void);

/* CS_E_CONFIG with a message saying how to build it when unavailable. */
int barcode_reader_new(barcode_reader **out, cs_error *err);
void barcode_reader_free(barcode_reader *r);

/* Decodes the barcodes in a JPEG file: up to max (at least 1) results in
 * out, *n their number (0 when none was found, which is no error).  Each
 * text is there once, whatever the codes that carry it.  A code whose text
 * holds a control character or NUL is left out: it is no catalog number,
 * and deleting the character could join two fields into one that looks
 * like one.
 * CS_E_IO when the file cannot be opened; CS_E_INVALID when it is no
 * readable JPEG, is damaged or cut short, or has more pixels than any
 * camera makes. */
int barcode_read_file(barcode_reader *r, const char *jpeg_path,
		      barcode_result *out, size_t max, size_t *n,
		      cs_error *err);

#endif
