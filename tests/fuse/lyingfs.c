/*
 * lyingfs: a FUSE passthrough filesystem that misbehaves the way real ones have, for the
 * data-first tests (tests/data_first.rs). It serves the files of BACKING, opening them BY PATH
 * on every open (as libfuse's own passthrough examples do), so a second open of a file reaches
 * whatever is at that path now, not the file the program opened.
 *
 *   lyingfs BACKING MOUNTPOINT -f [-o lie=MODE] [-o blocks=MODE] [FUSE options]
 *
 * lie=truth  SEEK_DATA/SEEK_HOLE answered from the backing file (default)
 * lie=holes  "hole over data": SEEK_HOLE says a hole starts right here, SEEK_DATA says there is
 *            no data up to the end of the file (ENXIO) - as OpenZFS 2.2.0-2.2.3 did for
 *            recently written files
 * lie=data   "data over hole": SEEK_DATA says data is right here, SEEK_HOLE says the data runs to
 *            the end of the file
 * blocks=truth|zero|full  st_blocks as the backing file has it, 0 (looks all hole), or the whole
 *            size (looks fully allocated)
 *
 * A file whose name starts with "nonseekable" is opened with FOPEN_NONSEEKABLE: the kernel then
 * refuses lseek, pread and pwrite on it (ESPIPE), as for a stream. While a file whose name starts
 * with "failstat" is open, stat and fstat on it fail with EIO (mount with -o attr_timeout=0 so
 * that every fstat reaches the server); its lookup, open and reads still work.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static struct options {
	const char *lie;
	const char *blocks;
} options; /* NULL: "truth". fuse_opt_parse frees a %s option's old value, so no literals. */

static int is(const char *option, const char *value)
{
	return option && strcmp(option, value) == 0;
}

static const struct fuse_opt option_spec[] = {
	{"lie=%s", offsetof(struct options, lie), 1},
	{"blocks=%s", offsetof(struct options, blocks), 1},
	FUSE_OPT_END,
};

static char backing[PATH_MAX];

/* How many "failstat" files are open (FUSE requests may come from several threads). */
static int failstat_open;

static int name_starts(const char *path, const char *prefix)
{
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* BACKING + path, or -ENAMETOOLONG. */
static int real_path(const char *path, char *out)
{
	int n = snprintf(out, PATH_MAX, "%s%s", backing, path);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static void lie_about_blocks(struct stat *st)
{
	if (is(options.blocks, "zero"))
		st->st_blocks = 0;
	else if (is(options.blocks, "full"))
		st->st_blocks = (st->st_size + 511) / 512;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	/* stat and fstat come without a file handle; the kernel's own revalidation during a read
	 * carries one, and keeps working. */
	if (!fi && name_starts(path, "failstat") &&
	    __atomic_load_n(&failstat_open, __ATOMIC_SEQ_CST) > 0)
		return -EIO;
	int r = real_path(path, p);
	if (r)
		return r;
	if ((fi ? fstat((int)fi->fh, st) : lstat(p, st)) < 0)
		return -errno;
	lie_about_blocks(st);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	char p[PATH_MAX];
	int r = real_path(path, p);
	if (r)
		return r;
	DIR *d = opendir(p);
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (fill(buf, e->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static void set_open_flags(const char *path, struct fuse_file_info *fi)
{
	if (name_starts(path, "nonseekable"))
		fi->nonseekable = 1;
	if (name_starts(path, "failstat"))
		__atomic_add_fetch(&failstat_open, 1, __ATOMIC_SEQ_CST);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int r = real_path(path, p);
	if (r)
		return r;
	int fd = open(p, fi->flags & ~O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	set_open_flags(path, fi);
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int r = real_path(path, p);
	if (r)
		return r;
	int fd = open(p, fi->flags, mode);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	set_open_flags(path, fi);
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = pwrite((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	if (name_starts(path, "failstat"))
		__atomic_sub_fetch(&failstat_open, 1, __ATOMIC_SEQ_CST);
	close((int)fi->fh);
	return 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int r = fi ? ftruncate((int)fi->fh, size) : (real_path(path, p) ? -1 : truncate(p, size));
	return r < 0 ? -errno : 0;
}

static int fs_unlink(const char *path)
{
	char p[PATH_MAX];
	int r = real_path(path, p);
	return r ? r : unlink(p) < 0 ? -errno : 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	char a[PATH_MAX], b[PATH_MAX];
	if (flags)
		return -EINVAL;
	int r = real_path(from, a) ? -ENAMETOOLONG : real_path(to, b);
	return r ? r : rename(a, b) < 0 ? -errno : 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	return r < 0 ? -errno : 0;
}

static off_t fs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)path;
	int fd = (int)fi->fh;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		off_t r = lseek(fd, off, whence);
		return r < 0 ? -errno : r;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (off >= st.st_size)
		return -ENXIO;
	if (is(options.lie, "holes"))
		return whence == SEEK_HOLE ? off : -ENXIO;
	if (is(options.lie, "data"))
		return whence == SEEK_DATA ? off : st.st_size;
	off_t r = lseek(fd, off, whence);
	return r < 0 ? -errno : r;
}

/* Reads must not revalidate attributes (auto_inval_data): the program's own reads of a
 * "failstat" file keep working while only stat fails. */
static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)cfg;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	return NULL;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.release = fs_release,
	.truncate = fs_truncate,
	.unlink = fs_unlink,
	.rename = fs_rename,
	.fsync = fs_fsync,
	.lseek = fs_lseek,
};

/* The first non-option argument is BACKING (taken out); the rest goes to FUSE. */
static int take_backing(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)data;
	(void)outargs;
	if (key != FUSE_OPT_KEY_NONOPT || backing[0])
		return 1;
	if (!realpath(arg, backing)) {
		perror(arg);
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&args, &options, option_spec, take_backing) == -1 || !backing[0]) {
		fprintf(stderr, "usage: lyingfs BACKING MOUNTPOINT -f [-o lie=truth|holes|data] "
				"[-o blocks=truth|zero|full]\n");
		return 2;
	}
	int r = fuse_main(args.argc, args.argv, &ops, NULL);
	fuse_opt_free_args(&args);
	return r;
}
