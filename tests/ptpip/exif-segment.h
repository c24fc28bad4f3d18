/* The Exif segment ptpip-camera puts in the JPEGs it makes, built with
 * libexif: what a real body writes of the moment of the press. */
#ifndef PTPIP_EXIF_SEGMENT_H
#define PTPIP_EXIF_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIF_MAKE "copystand-emu"

/* An APP1 segment, marker and length included: Make, Model (its first 254
 * characters), DateTime, DateTimeOriginal and DateTimeDigitized of
 * camera_us (the camera's wall time in microseconds, printed as UTC), and
 * with subsec SubSecTimeOriginal and SubSecTimeDigitized in hundredths.
 * malloc'd; NULL when out of memory. */
unsigned char *exif_segment_new(const char *model, int64_t camera_us, bool subsec,
				size_t *len);

#endif
