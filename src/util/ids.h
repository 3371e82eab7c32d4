/*
 * ids: sortable unique ids (ULID: 48-bit millisecond time + 80 random bits,
 * Crockford base32, 26 characters).  Monotonic within one process.
 */
#ifndef WHARF_IDS_H
#define WHARF_IDS_H

#define ID_LEN 27

void id_new(char out[ID_LEN]);
/* 1 when s looks like an id (26 Crockford base32 characters). */
int id_valid(const char *s);

#endif
