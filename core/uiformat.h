/* copystand — Specify's UIFormatters resource.
 *
 * The collection's field formats, as served by
 * GET /context/app.resource?name=UIFormatters: <format name="..."> entries
 * made of <field type="..." size="..." value="..."/> parts or naming a
 * Specify 6 class in <external>.  Read once, then asked for formats by name.
 */
#ifndef COPYSTAND_UIFORMAT_H
#define COPYSTAND_UIFORMAT_H

#include <stddef.h>

#include "catalog.h"
#include "error.h"

struct uiformat_set;

/* Reads the XML text; CS_E_INVALID (with the line) if it is not XML.
 * Formats copystand cannot use are kept, to explain when asked for. */
int uiformat_set_new_from_xml(struct uiformat_set **out, const char *xml,
			      size_t len, cs_error *err);
int uiformat_set_new_from_file(struct uiformat_set **out, const char *path,
			       cs_error *err);
void uiformat_set_free(struct uiformat_set *set);

/* A new format (the caller frees it) for the entry called name, or, if the
 * set has none (or set is NULL), the built-in format of that name
 * (catalog_format_new_builtin).  CS_E_NOT_FOUND lists the names there are;
 * CS_E_CONFIG says why an entry cannot be used. */
int uiformat_set_get_format(const struct uiformat_set *set, const char *name,
			    struct catalog_format **out, cs_error *err);

#endif
