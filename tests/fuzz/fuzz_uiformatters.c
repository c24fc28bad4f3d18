/* Fuzz target: the UIFormatters reader, and every format it yields for a
 * few names, used on a few values. */
#include <stdint.h>
#include <stdlib.h>

#include "uiformat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {
		"A", "B", "CatalogNumber", "CatalogNumberNumeric",
		"CatalogNumberString", "AccessionNumber",
	};
	static const char *values[] = {
		"2024-000123", "123", "A", "AB-12", "2024-AB-001", "",
	};
	struct uiformat_set *set;

	if (uiformat_set_new_from_xml(&set, (const char *)data, size, NULL) < 0)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct catalog_format *fmt;
		if (uiformat_set_get_format(set, names[i], &fmt, NULL) < 0)
			continue;
		for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
			struct catalog_candidates *c;
			char *id = NULL;
			catalog_format_parse(fmt, values[v], &id, NULL);
			free(id);
			if (catalog_resolve_filename(fmt, values[v], &c, NULL) == 0)
				catalog_candidates_free(c);
		}
		catalog_format_free(fmt);
	}
	uiformat_set_free(set);
	return 0;
}
