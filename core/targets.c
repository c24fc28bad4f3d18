#include "targets.h"

#include <strings.h>

/* Table ids, column widths and relationship names are those of Specify's
 * data model (specifyweb/specify/datamodel.py).  The field notebook tables
 * call their join rows "attachments", not "<table>attachments". */
static const struct match_target targets[] = {
	{ "catalog-number", "collectionObjectCatalogNumber", "collectionobject", 1,
	  "catalognumber", "catalogNumber", "Catalog Number", 32,
	  "collectionobjectattachment", 111, "collectionobjectattachments", true },
	{ "alt-catalog-number", "collectionObjectAltCatalogNumber", "collectionobject", 1,
	  "altcatalognumber", "altCatalogNumber", "Alt Cat Number", 64,
	  "collectionobjectattachment", 111, "collectionobjectattachments", false },
	{ "taxon-full-name", "taxonFullName", "taxon", 4,
	  "fullname", "fullName", "Full Name", 512,
	  "taxonattachment", 119, "taxonattachments", false },
	{ "storage-full-name", "storageFullName", "storage", 58,
	  "fullname", "fullName", "Full Name", 255,
	  "storageattachment", 148, "storageattachments", false },
	{ "collecting-event-guid", "collectingEventGuid", "collectingevent", 10,
	  "guid", "guid", "GUID", 128,
	  "collectingeventattachment", 110, "collectingeventattachments", false },
	{ "collecting-event-field-number", "collectingEventFieldnumber", "collectingevent", 10,
	  "stationfieldnumber", "stationFieldNumber", "Station Field Number", 50,
	  "collectingeventattachment", 110, "collectingeventattachments", false },
	{ "loan-number", "loanNumber", "loan", 52,
	  "loannumber", "loanNumber", "Loan Number", 50,
	  "loanattachment", 114, "loanattachments", false },
	{ "accession-number", "accessionNumber", "accession", 7,
	  "accessionnumber", "accessionNumber", "Accession Number", 60,
	  "accessionattachment", 108, "accessionattachments", false },
	{ "gift-number", "giftNumber", "gift", 131,
	  "giftnumber", "giftNumber", "Gift Number", 50,
	  "giftattachment", 144, "giftattachments", false },
	{ "preparation-barcode", "preparationBarcode", "preparation", 63,
	  "barcode", "barCode", "Bar Code", 256,
	  "preparationattachment", 117, "preparationattachments", false },
	{ "preparation-guid", "preparationGUID", "preparation", 63,
	  "guid", "guid", "Guid", 128,
	  "preparationattachment", 117, "preparationattachments", false },
	{ "borrow-invoice-number", "borrowInvoiceNumber", "borrow", 18,
	  "invoicenumber", "invoiceNumber", "Invoice Number", 50,
	  "borrowattachment", 145, "borrowattachments", false },
	{ "treatment-event-field-number", "treatmentEventFieldNumber", "treatmentevent", 122,
	  "fieldnumber", "fieldNumber", "Field Number", 50,
	  "treatmenteventattachment", 149, "treatmenteventattachments", false },
	{ "exchange-in-number", "exchangeInAttachment", "exchangein", 39,
	  "exchangeinnumber", "exchangeInNumber", "Exchange In #", 50,
	  "exchangeinattachment", 169, "exchangeinattachments", false },
	{ "exchange-out-number", "exchangeOutAttachment", "exchangeout", 40,
	  "exchangeoutnumber", "exchangeOutNumber", "Exchange Out #", 50,
	  "exchangeoutattachment", 170, "exchangeoutattachments", false },
	{ "reference-work-guid", "referenceWorkGUID", "referencework", 69,
	  "guid", "guid", "GUID", 128,
	  "referenceworkattachment", 143, "referenceworkattachments", false },
	{ "reference-work-title", "referenceWorkTitle", "referencework", 69,
	  "title", "title", "Title", 500,
	  "referenceworkattachment", 143, "referenceworkattachments", false },
	{ "locality-unique-identifier", "localityUniqueIdentifier", "locality", 2,
	  "uniqueidentifier", "uniqueIdentifier", "Unique Identifier", 128,
	  "localityattachment", 115, "localityattachments", false },
	{ "locality-guid", "localityGUID", "locality", 2,
	  "guid", "guid", "GUID", 128,
	  "localityattachment", 115, "localityattachments", false },
	{ "permit-number", "permitNumber", "permit", 6,
	  "permitnumber", "permitNumber", "Permit Number", 50,
	  "permitattachment", 116, "permitattachments", false },
	{ "agent-guid", "agentGUID", "agent", 5,
	  "guid", "guid", "GUID", 128,
	  "agentattachment", 109, "agentattachments", false },
	{ "collecting-trip-name", "collectingTripName", "collectingtrip", 87,
	  "collectingtripname", "collectingTripName", "Trip Name", 400,
	  "collectingtripattachment", 156, "collectingtripattachments", false },
	{ "deaccession-number", "deaccessionNumber", "deaccession", 163,
	  "deaccessionnumber", "deaccessionNumber", "Deacc #", 50,
	  "deaccessionattachment", 165, "deaccessionattachments", false },
	{ "field-notebook-name", "fieldNotebookName", "fieldnotebook", 83,
	  "name", "name", "Name", 32,
	  "fieldnotebookattachment", 127, "attachments", false },
	{ "field-notebook-page-number", "fieldNotebookPageNumber", "fieldnotebookpage", 85,
	  "pagenumber", "pageNumber", "Page Number", 32,
	  "fieldnotebookpageattachment", 129, "attachments", false },
	{ "field-notebook-page-description", "fieldNotebookDescription", "fieldnotebookpage", 85,
	  "description", "description", "Description", 128,
	  "fieldnotebookpageattachment", 129, "attachments", false },
	{ "disposal-number", "disposalNumber", "disposal", 34,
	  "disposalnumber", "disposalNumber", "Disposal Number", 50,
	  "disposalattachment", 166, "disposalattachments", false },
};

#define N_TARGETS (sizeof targets / sizeof targets[0])

const struct match_target *match_target_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < N_TARGETS; i++)
		if (strcasecmp(name, targets[i].name) == 0 ||
		    strcasecmp(name, targets[i].path_key) == 0)
			return &targets[i];
	return NULL;
}

size_t match_target_count(void)
{
	return N_TARGETS;
}

const struct match_target *match_target_at(size_t index)
{
	return index < N_TARGETS ? &targets[index] : NULL;
}
