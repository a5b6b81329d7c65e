/* A stand-in for a build of the library with a reachable panic (its panic handler calls
 * abort()): scripts/check-abi must refuse the abort import. */
#include <stdlib.h>

void cfrfix_would_panic(void) { abort(); }
