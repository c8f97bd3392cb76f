/* dec_lsn.c: LSNs as text, "16/B374D848", to and from uint64_t. */

#include "dec_int.h"

#include <stdio.h>

/* Parses 1 to 8 hex digits at s[*i] into *out, advancing *i. */
static int parse_lsn_half(const char *s, size_t len, size_t *i, uint32_t *out)
{
	size_t start = *i;
	uint32_t v = 0;
	int d;
	while (*i < len && *i - start <= 8 && (d = hex_digit((unsigned char)s[*i])) >= 0) {
		v = v << 4 | (uint32_t)d;
		(*i)++;
	}
	if (*i == start || *i - start > 8)
		return -1;
	*out = v;
	return 0;
}

int dec_parse_lsn(const char *s, size_t len, uint64_t *out)
{
	uint32_t hi, lo;
	size_t i = 0;
	if (parse_lsn_half(s, len, &i, &hi) != 0 || i >= len || s[i] != '/')
		return -1;
	i++;
	if (parse_lsn_half(s, len, &i, &lo) != 0 || i != len)
		return -1;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

void dec_format_lsn(uint64_t lsn, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	snprintf(buf, cap, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}
