/* unit_support.h: helpers shared by the unit tests: exact-size input
 * copies (a read past the end trips ASan) kept until the test ends. */
#ifndef PGSB_UNIT_SUPPORT_H
#define PGSB_UNIT_SUPPORT_H

#include <stddef.h>

/* An exact-size heap copy of n bytes of s. */
char *ut_exact_copy(const char *s, size_t n);
/* Keeps s until ut_free_kept(); returns s. */
char *ut_keep(char *s);
void ut_free_kept(void);

#endif
