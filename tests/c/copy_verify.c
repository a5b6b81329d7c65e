/*
 * Data-first helper (tests/data_first): copies SRC to DST as cp does (copy_file_range with NULL
 * offsets until it returns 0 or fails), then compares DST with what the program's OWN source
 * descriptor reads, byte for byte.
 *
 *   copy_verify SRC DST VIA [RENAME_FROM RENAME_TO]
 *
 * VIA is "libc" (glibc's copy_file_range) or "syscall" (syscall(SYS_copy_file_range, ...)).
 * With RENAME_FROM/RENAME_TO, rename(2) runs after both files are open and before the copy: the
 * source's path then names another file, while the program's descriptor still reads the old one.
 *
 * Prints one line: ret=R errno=E total=T src=S same=0|1 first_diff=K invented_zeros=Z
 * where S is the bytes the source descriptor reads, first_diff the first differing offset (-1:
 * none) and invented_zeros how many destination bytes are zero where the source's are not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static ssize_t copy(int via_syscall, int in, int out, size_t len)
{
	if (via_syscall)
		return syscall(SYS_copy_file_range, in, NULL, out, NULL, len, 0);
	return copy_file_range(in, NULL, out, NULL, len, 0);
}

/* All of fd from offset 0 (from its position, for a file that cannot be read at an offset: a
 * non-seekable source the copy did not advance), or NULL; its length in *len. */
static unsigned char *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		if (n == cap && !(buf = realloc(buf, cap *= 2)))
			break;
		ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
		if (r < 0 && errno == ESPIPE)
			r = read(fd, buf + n, cap - n);
		if (r < 0) {
			perror("pread");
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 6) {
		fprintf(stderr, "usage: copy_verify SRC DST libc|syscall [RENAME_FROM RENAME_TO]\n");
		return 2;
	}
	int via_syscall = strcmp(argv[3], "syscall") == 0;
	int in = open(argv[1], O_RDONLY | O_CLOEXEC);
	int out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		perror("open");
		return 1;
	}
	if (argc == 6 && rename(argv[4], argv[5]) < 0) {
		perror("rename");
		return 1;
	}
	long total = 0;
	ssize_t n;
	while ((n = copy(via_syscall, in, out, 1 << 20)) > 0)
		total += n;
	int err = n < 0 ? errno : 0;
	size_t src_len = 0, dst_len = 0;
	unsigned char *src = read_all(in, &src_len), *dst = read_all(out, &dst_len);
	if (!src || !dst)
		return 1;
	long first_diff = src_len == dst_len ? -1 : (long)(src_len < dst_len ? src_len : dst_len);
	long zeros = 0;
	size_t common = src_len < dst_len ? src_len : dst_len;
	for (size_t i = 0; i < common; i++) {
		if (src[i] != dst[i] && (first_diff < 0 || (long)i < first_diff))
			first_diff = (long)i;
		if (dst[i] == 0 && src[i] != 0)
			zeros++;
	}
	printf("ret=%zd errno=%d total=%ld src=%zu same=%d first_diff=%ld invented_zeros=%ld\n", n,
	       err, total, src_len, first_diff < 0, first_diff, zeros);
	return 0;
}
