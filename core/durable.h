/* copystand — files written durably: under a hidden temporary name beside
 * the target, hashed as they are written, fsynced, then put in place and
 * the folder fsynced.  A crash leaves the old file (or none) or the new
 * one whole, never a part.
 */
#ifndef COPYSTAND_DURABLE_H
#define COPYSTAND_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"
#include "sha256.h"

/* One file being written; the fields are the module's. */
typedef struct durable_file {
	const char *path;       /* the target (borrowed) */
	char *tmp;
	int fd;
	bool replace;
	sha256_ctx sha;
	long long size;
	long long started;      /* bytes the disk was asked to write so far */
} durable_file;

/* Starts ".NAME.XXXXXX" beside path with mode.  replace: the commit puts
 * it over an existing path; else it fails where path exists. */
int durable_open(durable_file *f, const char *path, mode_t mode, bool replace,
		 cs_error *err);
int durable_write(durable_file *f, const void *data, size_t n, cs_error *err);
/* Appends what fd holds from offset from to its end (src names it in
 * messages). */
int durable_copy_fd(durable_file *f, int fd, off_t from, const char *src,
		    cs_error *err);
/* Syncs and puts the file in place; size and sha256 (65 bytes, hex;
 * either may be NULL) get what was written.  On failure the temporary
 * is gone and the target as it was. */
int durable_commit(durable_file *f, long long *size, char *sha256, cs_error *err);
/* Gives up: the temporary is removed. */
void durable_abort(durable_file *f);

/* The same file, unchanged: device, inode, size and mtime alike. */
bool durable_same_version(const struct stat *a, const struct stat *b);

/* Moves the file src to dst (never over another file) where both are on
 * one filesystem, nothing copied: its bytes are hashed (size and sha256,
 * either may be NULL, as for durable_commit) and fsynced, then it is
 * renamed and both folders are synced, so a crash leaves it whole under
 * one of its two names.  The file must not change meanwhile: CS_E_IO,
 * and src as it was, when it did.  1, with nothing done, when it cannot
 * be moved so (another filesystem; one that cannot rename without
 * replacing, or refuses): copy it instead.  On other failures src is as
 * it was unless err says the file is at dst (a folder that could not be
 * synced): never remove dst after a failure. */
int durable_move(const char *src, const char *dst, long long *size, char *sha256,
		 cs_error *err);

#endif
