/*
 * Data-first helper (tests/data_first/review.rs): a copy with an offset pointer where the
 * library must write the offset back without process_vm_writev (refused with EPERM by a
 * seccomp filter, as Docker's default profile does) and with no descriptor left for the pipe
 * it uses instead. The kernel's answer for such a copy is the byte count, with the offset
 * advanced; an error may only come before anything is copied.
 *
 *   writeback_no_fds SRC DST      prints: ret=R errno=E off_out=O dst_size=S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int in = open(argv[1], O_RDONLY | O_CLOEXEC);
	int out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		perror("open");
		return 1;
	}
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_writev, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
		perror("seccomp");
		return 1;
	}
	/* Fill the descriptor table: nothing is left for a pipe. */
	struct rlimit few = {32, 32};
	if (setrlimit(RLIMIT_NOFILE, &few)) {
		perror("setrlimit");
		return 1;
	}
	while (dup(0) >= 0)
		;
	loff_t off_out = 0;
	ssize_t n = copy_file_range(in, NULL, out, &off_out, 1 << 20, 0);
	int err = n < 0 ? errno : 0;
	printf("ret=%zd errno=%d off_out=%lld dst_size=%lld\n", n, err, (long long)off_out,
	       (long long)lseek(out, 0, SEEK_END));
	return 0;
}
