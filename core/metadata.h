/* copystand — what an image says about itself, and the identity copystand
 * writes into it.
 *
 * Reads EXIF with libexif (capture date, camera, the thumbnail), writes
 * the catalog number and its provenance into a JPEG's EXIF by splicing
 * the APP1 segment (the image data is copied byte for byte, never
 * re-encoded), and writes an XMP sidecar next to RAW files, which are
 * never modified.  Knows nothing of Specify sessions or cameras.
 */
#ifndef COPYSTAND_METADATA_H
#define COPYSTAND_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* What copystand writes into an image: who it shows and where it was
 * taken.  Strings may be NULL (left out). */
typedef struct metadata_stamp {
	const char *identifier;  /* the catalog number, as Specify stores it */
	const char *collection;  /* the collection's name */
	const char *station;     /* the station's name (host name by default) */
	double time;             /* unix time of the capture; 0: leave out */
} metadata_stamp;

/* What an image file says.  Strings are "" when absent; owned by the
 * struct (metadata_info_clear). */
typedef struct metadata_info {
	char date_original[20];  /* DateTimeOriginal, "YYYY:MM:DD HH:MM:SS" */
	char subsec_original[16]; /* SubSecTimeOriginal, "07" (hundredths) */
	char make[64];
	char model[128];
	char description[512];   /* ImageDescription */
	char identifier[128];    /* a copystand stamp's catalog number */
	unsigned char *thumbnail; /* the EXIF JPEG thumbnail, or NULL */
	size_t thumbnail_size;
} metadata_info;

void metadata_info_clear(metadata_info *info);

/* Reads the EXIF of a JPEG file.  A JPEG without EXIF is not an error
 * (all fields empty); a file that is no JPEG is CS_E_INVALID. */
int metadata_read(const char *path, metadata_info *out, cs_error *err);

/* The same for a JPEG in memory (fuzzed): its first bytes, up to its EXIF
 * or its image data, suffice. */
int metadata_read_buffer(const unsigned char *buf, size_t len,
			 metadata_info *out, cs_error *err);

/* Writes the stamp into the JPEG at path: ImageDescription (catalog
 * number), UserComment (provenance), keeping every other EXIF entry and
 * segment.  Atomic: a temporary file in the same folder, fsynced, renamed
 * over path, folder fsynced; a crash leaves the old file or the new one.
 * Writing a stamp the file already carries changes nothing.  A thumbnail
 * that leaves no room in the EXIF's 64 KiB is dropped; a file that is no
 * JPEG, a damaged EXIF or one too large is CS_E_INVALID, the file left as
 * it was.  size and sha256 (65 bytes, hex; either may be NULL) receive
 * the file's new size and digest. */
int metadata_jpeg_stamp(const char *path, const metadata_stamp *st,
			long long *size, char *sha256, cs_error *err);

/* Writes the XMP sidecar of a RAW (or any) file: "<stem>.xmp" beside it,
 * atomically as above; *sidecar (may be NULL) receives its path
 * (malloc'd).  A sidecar another program wrote is never overwritten
 * (CS_E_CONFLICT). */
int metadata_xmp_write(const char *path, const metadata_stamp *st,
		       char **sidecar, cs_error *err);

/* Attachment fields copystand sets from the configuration. */
typedef struct metadata_defaults {
	/* "{name}" by default; also {identifier}, {date} (capture date),
	 * {collection}.  Cut to Specify's 255 characters. */
	const char *title;
	int ispublic;             /* -1: leave to Specify */
	const char *license;
	const char *copyright_holder;
	const char *credit;
	const char *remarks;
} metadata_defaults;

/* The attachment's fields for Specify from the file's EXIF (info may be
 * NULL) and the defaults: a JSON object text (malloc'd) with
 * dateimaged, capturedevice, title, ispublic, license, copyrightholder,
 * credit, remarks where known, each within Specify's column length.
 * name is the file name given to Specify. */
int metadata_attachment_fields(const metadata_info *info,
			       const metadata_defaults *d,
			       const char *identifier, const char *collection,
			       const char *name, char **json, cs_error *err);

/* The MIME type of an image file by its extension ("image/jpeg",
 * "image/x-canon-cr2", ...; "application/octet-stream" when unknown). */
const char *metadata_mimetype(const char *name);
/* A JPEG by its MIME type (may be NULL) or, failing that, its name. */
bool metadata_is_jpeg(const char *mimetype, const char *name);

/* The JPEG segment walker (fuzzed): calls fn for every marker segment up
 * to and including SOS with the offset of its marker and its payload;
 * fn returning non-zero stops the walk and is returned.  A truncated or
 * malformed header is CS_E_INVALID with the offset. */
int metadata_jpeg_walk(const unsigned char *buf, size_t len,
		       int (*fn)(void *ud, int marker, size_t offset,
				 const unsigned char *payload, size_t n),
		       void *ud, cs_error *err);

#endif
