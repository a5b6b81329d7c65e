/* futex_storm THREADS ITERATIONS SRC DIR: heavy contention on a lock built on
 * syscall(SYS_futex), the way glibc internals and Rust's std reach the variadic syscall() that
 * cfrfix exports. Every 5,000th critical section also copies SRC into DIR/futex.N with
 * syscall(SYS_copy_file_range) while holding the lock (a fallback under cfrfix-inject).
 * Prints the counter, the futex calls made and the copies; exits 1 on a wrong count or a failed
 * copy. A watchdog alarm turns a hang (lost wake-up, recursion) into a failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int lock_word; /* 0 free, 1 locked, 2 locked with waiters (Drepper, "Futexes Are Tricky") */
static long counter;
static long futex_calls;
static long copies;
static int failed;
static long iterations;
static const char *src, *dir;
static off_t src_size;

static long futex(int *uaddr, int op, int val) {
    __atomic_fetch_add(&futex_calls, 1, __ATOMIC_RELAXED);
    return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void lock(void) {
    int c = 0;
    if (__atomic_compare_exchange_n(&lock_word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    if (c != 2) c = __atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        futex(&lock_word, FUTEX_WAIT_PRIVATE, 2);
        c = __atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE);
    }
}

static void unlock(void) {
    if (__atomic_fetch_sub(&lock_word, 1, __ATOMIC_RELEASE) != 1) {
        __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
        futex(&lock_word, FUTEX_WAKE_PRIVATE, 1);
    }
}

static void copy_once(long n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/futex.%ld", dir, n % 8);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    loff_t oi = 0, oo = 0;
    long r = syscall(SYS_copy_file_range, in, &oi, out, &oo, (size_t)src_size, 0);
    if (r != src_size || oi != src_size || oo != src_size) {
        fprintf(stderr, "copy %ld: ret %ld errno %d offsets %lld/%lld\n", n, r, errno,
                (long long)oi, (long long)oo);
        failed = 1;
    }
    close(in);
    close(out);
    copies++;
}

static void *worker(void *arg) {
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        lock();
        long n = ++counter;
        if (n % 5000 == 0) copy_once(n / 5000);
        unlock();
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    int threads = atoi(argv[1]);
    iterations = atol(argv[2]);
    src = argv[3];
    dir = argv[4];
    struct stat st;
    if (stat(src, &st) != 0) return 2;
    src_size = st.st_size;
    alarm(60);
    pthread_t t[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("threads=%d counter=%ld expected=%ld futex_calls=%ld copies=%ld\n", threads, counter,
           threads * iterations, futex_calls, copies);
    return counter == threads * iterations && !failed ? 0 : 1;
}
