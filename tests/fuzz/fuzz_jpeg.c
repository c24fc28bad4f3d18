/* Fuzz target: the JPEG segment walker and the EXIF reader on a buffer.
 * A JPEG they accept is stamped too, as a file in a private folder (set
 * TMPDIR to a tmpfs when fuzzing): the stamp must read back, leave the
 * image data as it was, and a second stamp must change nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walked {
	const uint8_t *data;
	size_t size, next;      /* the least offset the next marker may have */
	size_t image_at;
};

static int check_segment(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct walked *w = ud;

	if (at < w->next || at + 2 > w->size || w->data[at] != 0xff || w->data[at + 1] != marker ||
	    p < w->data + at + 2 || n > w->size || p + n > w->data + w->size)
		abort();
	w->next = (size_t)(p - w->data) + n;
	if (marker == 0xda)
		w->image_at = w->next;
	return 0;
}

static char folder[4096], file[4200];

static void remove_folder(void)
{
	unlink(file);
	rmdir(folder);
}

/* Stamps the JPEG as a file and checks what came of it. */
static void stamp_file(const uint8_t *data, size_t size, size_t image_at)
{
	/* ASCII and UNICODE UserComments, by turns. */
	static const metadata_stamp stamps[2] = {
		{ "FUZZ;1", "Fish", "fuzz", 1795622400 },
		{ "FUZZ;1", "Süßwasserfische 🐟", "fuzz", 1795622400 },
	};
	const metadata_stamp *st = &stamps[size & 1];
	char sha[65], again[65];
	metadata_info info;
	unsigned char *back;
	long long len;
	FILE *f;

	if (!folder[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(folder, sizeof folder, "%s/fuzz-jpeg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(folder))
			abort();
		snprintf(file, sizeof file, "%s/f.jpg", folder);
		atexit(remove_folder);
	}
	if (!(f = fopen(file, "wb")) || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	/* A damaged EXIF, or one too large for the stamp, is refused. */
	if (metadata_jpeg_stamp(file, st, &len, sha, NULL) != 0)
		return;
	if (len < (long long)(size - image_at) || !(back = malloc((size_t)len)) ||
	    !(f = fopen(file, "rb")) || fread(back, 1, (size_t)len, f) != (size_t)len)
		abort();
	fclose(f);
	if (memcmp(back + len - (size - image_at), data + image_at, size - image_at) != 0)
		abort(); /* the image data changed */
	free(back);
	if (metadata_read(file, &info, NULL) != 0 || strcmp(info.identifier, "FUZZ;1") != 0)
		abort(); /* the stamp does not read back */
	metadata_info_clear(&info);
	if (metadata_jpeg_stamp(file, st, NULL, again, NULL) != 0 || strcmp(sha, again) != 0)
		abort(); /* a second stamp changed the file */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walked w = { .data = data, .size = size };
	metadata_info info;
	int walked = metadata_jpeg_walk(data, size, check_segment, &w, NULL);
	int read = metadata_read_buffer(data, size, &info, NULL);

	if ((walked != 0 && walked != CS_E_INVALID) || (read != 0 && read != CS_E_INVALID))
		abort();
	/* The reader may stop at the EXIF: it accepts all the walker does. */
	if (walked == 0 && read != 0)
		abort();
	if (read == 0 && (strlen(info.identifier) >= sizeof info.identifier ||
			  (info.thumbnail == NULL) != (info.thumbnail_size == 0)))
		abort();
	metadata_info_clear(&info);
	if (walked == 0)
		stamp_file(data, size, w.image_at);
	return 0;
}
