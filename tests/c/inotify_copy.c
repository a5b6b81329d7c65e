/*
 * Data-first helper (tests/data_first): what an inotify watcher on the source sees while the
 * program copies it, either with copy_file_range (through the shim) or with a plain read/write
 * loop. The copy must not show up as anything but the program's own reading: no second open.
 *
 *   inotify_copy SRC DST cfr|read
 *
 * Prints the events on SRC, in order, consecutive repeats folded (the kernel folds identical
 * consecutive events too), one name per line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static const struct {
	unsigned mask;
	const char *name;
} names[] = {
	{IN_ACCESS, "ACCESS"},	     {IN_MODIFY, "MODIFY"},
	{IN_ATTRIB, "ATTRIB"},	     {IN_CLOSE_WRITE, "CLOSE_WRITE"},
	{IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
};

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch < 0 || inotify_add_watch(watch, argv[1], IN_ALL_EVENTS) < 0) {
		perror("inotify");
		return 1;
	}
	int in = open(argv[1], O_RDONLY | O_CLOEXEC);
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		perror("open");
		return 1;
	}
	if (strcmp(argv[3], "cfr") == 0) {
		ssize_t n;
		while ((n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0)) > 0)
			;
		if (n < 0) {
			perror("copy_file_range");
			return 1;
		}
	} else {
		static char buf[1 << 16];
		ssize_t n;
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n) {
				perror("write");
				return 1;
			}
	}
	close(in);
	close(out);
	char events[1 << 16] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *last = "";
	ssize_t len;
	while ((len = read(watch, events, sizeof events)) > 0) {
		for (char *p = events; p < events + len;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
				if ((e->mask & names[i].mask) && strcmp(last, names[i].name) != 0) {
					puts(names[i].name);
					last = names[i].name;
				}
			}
			p += sizeof *e + e->len;
		}
	}
	return 0;
}
