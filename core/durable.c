#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Written bytes are handed to the disk in pieces of this size. */
#define WRITE_AHEAD (4LL << 20)

/* What a failure leaves of the target, for the message: "; PATH is
 * unchanged" when there was one to replace. */
static const char *left(const durable_file *f, char *buf, size_t len)
{
	snprintf(buf, len, "; %s is unchanged", f->path);
	return f->replace ? buf : "";
}

void durable_abort(durable_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	f->fd = -1;
	f->tmp = NULL;
}

int durable_open(durable_file *f, const char *path, mode_t mode, bool replace,
		 cs_error *err)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;

	memset(f, 0, sizeof *f);
	f->path = path;
	f->fd = -1;
	f->replace = replace;
	sha256_init(&f->sha);
	if (asprintf(&f->tmp, "%.*s.%s.XXXXXX", dirlen, path, path + dirlen) < 0) {
		f->tmp = NULL;
		return cs_error_set(err, CS_E_NOMEM, "out of memory writing %s", path);
	}
	/* mkostemp creates with O_EXCL and mode 0600. */
	if ((f->fd = mkostemp(f->tmp, O_CLOEXEC)) < 0 || fchmod(f->fd, mode) < 0) {
		int e = errno;
		if (f->fd < 0) {
			free(f->tmp);
			f->tmp = NULL;
		}
		durable_abort(f);
		return cs_error_set(err, CS_E_IO, "cannot create a file beside %s: %s: check "
				    "the folder's permissions and free space", path, strerror(e));
	}
	return 0;
}

int durable_write(durable_file *f, const void *data, size_t n, cs_error *err)
{
	const unsigned char *p = data;
	char note[600];

	sha256_update(&f->sha, data, n);
	f->size += (long long)n;
	while (n > 0) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return cs_error_set(err, CS_E_IO, "cannot write beside %s: %s: free "
					    "some space%s", f->path, strerror(errno),
					    left(f, note, sizeof note));
		p += w;
		n -= (size_t)w;
	}
	/* The disk starts on what is written while more is: the fsync at
	 * the commit then has little left to wait for. */
	if (f->size - f->started >= WRITE_AHEAD) {
		sync_file_range(f->fd, f->started, f->size - f->started, SYNC_FILE_RANGE_WRITE);
		f->started = f->size;
	}
	return 0;
}

int durable_copy_fd(durable_file *f, int fd, off_t from, const char *src,
		    cs_error *err)
{
	unsigned char buf[1 << 16];
	ssize_t n;
	int ret = 0;

	while (ret == 0 && (n = pread(fd, buf, sizeof buf, from)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cs_error_set(err, CS_E_IO, "cannot read %s: %s", src,
					    strerror(errno));
		ret = durable_write(f, buf, (size_t)n, err);
		from += n;
	}
	return ret;
}

/* The folder of path, as a string to free (NULL: out of memory). */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* The renames in a folder are durable once the folder is synced. */
static int dir_sync(const char *path, cs_error *err)
{
	char *dir = folder_of(path);
	int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	int ret = 0;

	if (!dir)
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	else if (fd < 0 || fsync(fd) < 0)
		ret = cs_error_set(err, CS_E_IO, "%s was written but its folder %s cannot "
				   "be synced: %s", path, dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/* Puts the temporary in place: over the target, or (never over another
 * file) under its name, the temporary name then going. */
static int put_in_place(durable_file *f, cs_error *err)
{
	if (f->replace) {
		if (rename(f->tmp, f->path) == 0)
			return 0;
		return cs_error_set(err, CS_E_IO, "cannot replace %s: %s; it is unchanged",
				    f->path, strerror(errno));
	}
	if (link(f->tmp, f->path) != 0)
		return cs_error_set(err, CS_E_IO, "cannot name %s: %s", f->path,
				    strerror(errno));
	unlink(f->tmp);
	return 0;
}

int durable_commit(durable_file *f, long long *size, char *sha256, cs_error *err)
{
	char note[600];
	int ret = 0;

	if (fsync(f->fd) < 0)
		ret = cs_error_set(err, CS_E_IO, "cannot write beside %s: %s%s", f->path,
				   strerror(errno), left(f, note, sizeof note));
	/* close() frees the descriptor even when it fails. */
	if (close(f->fd) < 0 && ret == 0)
		ret = cs_error_set(err, CS_E_IO, "cannot write beside %s: %s%s", f->path,
				   strerror(errno), left(f, note, sizeof note));
	f->fd = -1;
	if (ret == 0)
		ret = put_in_place(f, err);
	if (ret < 0) {
		durable_abort(f);
		return ret;
	}
	free(f->tmp);
	f->tmp = NULL;
	if (size)
		*size = f->size;
	if (sha256)
		sha256_final_hex(&f->sha, sha256);
	return dir_sync(f->path, err);
}


/* Whether a file (st) can be renamed to dst: the same filesystem. */
static bool one_filesystem(const struct stat *st, const char *dst)
{
	char *dir = folder_of(dst);
	struct stat d;
	bool same = dir && stat(dir, &d) == 0 && d.st_dev == st->st_dev;

	free(dir);
	return same;
}

bool durable_same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Hashes what fd holds and writes it to disk: the disk is asked to write
 * it first, so that it does while the hash is computed. */
static int hash_sync(int fd, const char *path, long long *size, char *sha256,
		     cs_error *err)
{
	unsigned char buf[1 << 16];
	sha256_ctx c;
	off_t at = 0;
	ssize_t n;

	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	sha256_init(&c);
	while ((n = pread(fd, buf, sizeof buf, at)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cs_error_set(err, CS_E_IO, "cannot read %s: %s", path, strerror(errno));
		sha256_update(&c, buf, (size_t)n);
		at += n;
	}
	if (fsync(fd) < 0)
		return cs_error_set(err, CS_E_IO, "cannot write %s to disk: %s", path,
				    strerror(errno));
	if (size)
		*size = (long long)at;
	if (sha256)
		sha256_final_hex(&c, sha256);
	return 0;
}

/* After a rename from src to dst that cannot stand: back, or a message
 * that says where the file is.  Returns code. */
static int move_back(const char *src, const char *dst, int code, cs_error *err)
{
	if (renameat2(AT_FDCWD, dst, AT_FDCWD, src, RENAME_NOREPLACE) == 0)
		return code;
	return cs_error_set(err, code, "%s was moved to %s and could not be put back (%s): "
			    "it stays there", src, dst, strerror(errno));
}

int durable_move(const char *src, const char *dst, long long *size, char *sha256,
		 cs_error *err)
{
	int fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ret = 0;
	struct stat before, after, there;

	if (fd < 0)
		return cs_error_set(err, CS_E_IO, "cannot read %s: %s", src, strerror(errno));
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode))
		ret = cs_error_set(err, CS_E_IO, "%s is not a file", src);
	else if (!one_filesystem(&before, dst))
		ret = 1;
	else if ((ret = hash_sync(fd, src, size, sha256, err)) == 0 &&
		 (fstat(fd, &after) < 0 || !durable_same_version(&before, &after)))
		ret = cs_error_set(err, CS_E_IO, "%s changed while it was being taken: it is "
				   "taken again once it is still", src);
	if (ret == 0 && renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
		/* EINVAL: a filesystem that cannot rename without replacing. */
		if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EPERM ||
		    errno == EACCES)
			ret = 1;
		else
			ret = cs_error_set(err, errno == EEXIST ? CS_E_CONFLICT : CS_E_IO,
					   "cannot move %s to %s: %s", src, dst, strerror(errno));
	} else if (ret == 0 && (stat(dst, &there) < 0 || !durable_same_version(&after, &there))) {
		/* Another file put in its place between the open and the rename. */
		ret = move_back(src, dst, cs_error_set(err, CS_E_IO, "%s was replaced while it "
						       "was being taken", src), err);
	}
	close(fd);
	/* Moved, not yet sure to stay so: said, and left where it is now. */
	if (ret == 0 && ((ret = dir_sync(dst, err)) < 0 || (ret = dir_sync(src, err)) < 0))
		cs_error_prefix(err, "%s was moved to %s", src, dst);
	return ret;
}
