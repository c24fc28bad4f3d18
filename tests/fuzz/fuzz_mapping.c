/* Fuzz target: the mapping-file reader.  The first byte picks the target
 * and format ('0' catalog number as CatalogNumberNumeric, '1' catalog
 * number as written, '2' alt catalog number); the rest is the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct catalog_format *cnn;
	struct mapping_reader *r;
	struct mapping_row row;
	int which, rc;
	FILE *in;

	if (size < 2)
		return 0;
	if (!cnn)
		catalog_format_new_builtin(&cnn, "CatalogNumberNumeric", NULL);
	which = (uint8_t)(data[0] - '0') % 3;
	in = fmemopen((void *)(data + 1), size - 1, "r");
	if (!in)
		return 0;
	rc = mapping_reader_new(&r, in, "fuzz.csv",
				match_target_find(which == 2 ? "alt-catalog-number" :
						  "catalog-number"),
				which == 0 ? cnn : NULL, NULL);
	while (rc == 0) {
		rc = mapping_reader_next(r, &row, NULL);
		if (rc == 0 && !row.file_name)
			break;
		if (rc == 0 && (!row.file_name[0] || !row.identifier || !row.line))
			abort();
		if (rc == CS_E_INVALID)
			rc = 0; /* that row only: read on */
	}
	mapping_reader_free(r);
	fclose(in);
	return 0;
}
