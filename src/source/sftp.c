/* STUB: replaced by the SFTP source (issue 6). */
#include "source/source.h"
static int sftp_open(struct source *s, struct werr *e)
{ (void)s; werr_set(e, "sftp source: not implemented"); return -1; }
static void sftp_close(struct source *s) { (void)s; }
const struct source_ops source_sftp_ops = { .name = "sftp", .open = sftp_open, .close = sftp_close };
