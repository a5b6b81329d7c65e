/* A shared library that loads but does not load cleanly: its constructor writes to stderr.
 * Built for each ABI (gcc, gcc -m32), it stands for a libcfrfix.so that would change what
 * every program prints: cfrfix-system-wide enable must refuse it after its test loads. */
#include <unistd.h>

__attribute__((constructor)) static void noisy(void) {
    static const char message[] = "noisy library loaded\n";
    (void)!write(2, message, sizeof message - 1);
}
