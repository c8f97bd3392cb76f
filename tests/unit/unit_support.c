/* unit_support.c: the unit tests' shared helpers (unit_support.h). */
#include "unit_support.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char **kept;
static size_t nkept, capkept;

char *ut_exact_copy(const char *s, size_t n)
{
	char *c = malloc(n ? n : 1);
	cr_assert_not_null(c);
	memcpy(c, s, n);
	return c;
}

char *ut_keep(char *s)
{
	if (nkept == capkept) {
		capkept = capkept ? 2 * capkept : 64;
		kept = realloc(kept, capkept * sizeof *kept);
		cr_assert_not_null(kept);
	}
	kept[nkept++] = s;
	return s;
}

void ut_free_kept(void)
{
	while (nkept)
		free(kept[--nkept]);
	free(kept);
	kept = NULL;
	capkept = 0;
}
