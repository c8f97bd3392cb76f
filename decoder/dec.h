/* dec.h: a strict, allocation-free (in steady state) scanner for the JSON
 * lines wal2json writes in format-version 2.  One line in, one record out;
 * every pointer in the record points into the input line or into the
 * parser's reused scratch buffer, and stays valid until the next dec_parse()
 * on the same parser.  No logging, no globals. */
#ifndef PGSB_DEC_H
#define PGSB_DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a record is: wal2json's "action" letter. */
enum dec_action {
	DEC_BEGIN = 'B',
	DEC_COMMIT = 'C',
	DEC_INSERT = 'I',
	DEC_UPDATE = 'U',
	DEC_DELETE = 'D',
	DEC_TRUNCATE = 'T',
	DEC_MESSAGE = 'M',
};

/* The JSON kind of a column value. */
enum dec_kind {
	DEC_NULL,   /* SQL NULL, or a float/numeric NaN/Infinity (wal2json says null) */
	DEC_TRUE,   /* boolean true */
	DEC_FALSE,  /* boolean false */
	DEC_NUMBER, /* bare number; text kept exactly as written ("12.50") */
	DEC_STRING, /* quoted value, unescaped (may contain NUL bytes) */
};

/* A byte string, not NUL-terminated. */
struct dec_str {
	const char *p;
	size_t len;
};

/* One entry of "columns", "identity" or "pk". */
struct dec_field {
	struct dec_str name;  /* column name, unescaped */
	struct dec_str type;  /* type as wal2json prints it ("integer", "numeric(10,2)") */
	uint32_t typeoid;     /* "typeoid"; 0 when absent */
	enum dec_kind kind;   /* DEC_NULL for "pk" entries, which carry no value */
	struct dec_str value; /* DEC_NUMBER / DEC_STRING text; empty otherwise */
};

/* One decoded wal2json line. Fields a given action does not carry are
 * zero / empty. */
struct dec_record {
	enum dec_action action;
	bool has_xid;             /* false when "xid" is absent or null */
	uint32_t xid;
	uint64_t lsn;             /* "lsn"; 0 when absent */
	uint64_t nextlsn;         /* "nextlsn" of B and C: the commit's end LSN; 0 when absent */
	struct dec_str timestamp; /* "timestamp" text; empty when absent or null */
	bool has_origin;          /* false when "origin" is absent or null */
	uint32_t origin;          /* replication origin id; 0 = local to the server */
	struct dec_str schema;    /* I/U/D/T */
	struct dec_str table;     /* I/U/D/T */
	struct dec_field *columns; /* I/U: new values; an U omits unchanged TOAST columns */
	size_t ncolumns;
	struct dec_field *identity; /* U/D: old key (or old row under REPLICA IDENTITY FULL) */
	size_t nidentity;
	struct dec_field *pk;       /* I/U/D with include-pk: primary key names and types */
	size_t npk;
	bool transactional;         /* M */
	struct dec_str prefix;      /* M */
	struct dec_str content;     /* M */
};

/* Reusable parser state: scratch space for unescaped strings and the field
 * arrays.  Grows to the largest line seen, then stays. */
struct dec_parser {
	char *scratch;
	size_t scratch_cap;
	struct dec_field *fields;
	size_t fields_cap;
};

/* Why a line was rejected. */
struct dec_error {
	size_t offset;   /* byte offset in the line where the problem was seen */
	const char *msg; /* static text, lower case, no final period */
};

void dec_parser_init(struct dec_parser *p);
void dec_parser_free(struct dec_parser *p);

/* Parses one wal2json format-version 2 line (no trailing newline needed).
 * Returns 0, or -1 with *err filled for malformed, truncated or
 * out-of-shape input (and -2 if memory could not be grown).  Never reads
 * past line[len - 1]. */
int dec_parse(struct dec_parser *p, const char *line, size_t len,
              struct dec_record *out, struct dec_error *err)
	__attribute__((warn_unused_result));

/* Parses a flat JSON object of scalars, {"name": value, ...} where each
 * value is null, true, false, a number (text kept exactly) or a string,
 * into p's reused field array (name, kind, value; type empty, typeoid 0).
 * Used for the change log's row images.  Pointers are valid until the
 * next call on p.  Returns 0, or -1 with *err (-2 out of memory). */
int dec_parse_object(struct dec_parser *p, const char *text, size_t len,
                     struct dec_field **fields, size_t *nfields, struct dec_error *err)
	__attribute__((warn_unused_result));

/* "16/B374D848" -> 0x16B374D848. Returns 0 or -1. */
int dec_parse_lsn(const char *s, size_t len, uint64_t *out)
	__attribute__((warn_unused_result));

/* Writes an LSN as Postgres prints it ("16/B374D848") into buf (>= 20 bytes). */
void dec_format_lsn(uint64_t lsn, char *buf, size_t cap);

/* True when s equals the NUL-terminated c. */
bool dec_str_eq(struct dec_str s, const char *c);

#endif
