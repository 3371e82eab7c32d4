/* STUB: replaced by the BagIt writer (issue 3). */
#include "seal/bag.h"
#include "util/xmalloc.h"
int bag_seal(const char *dir, const struct bag_file *files, size_t n, const struct bag_kv *info,
             size_t n_info, char tagmanifest_sha[SHA256_HEX_LEN], struct werr *e)
{ (void)files; (void)n; (void)info; (void)n_info; (void)tagmanifest_sha;
  werr_set(e, "%s: bag not implemented", dir); return -1; }
int bag_verify(const char *dir, char tagmanifest_sha[SHA256_HEX_LEN], struct report *rep, struct werr *e)
{ (void)tagmanifest_sha; (void)rep; werr_set(e, "%s: verify not implemented", dir); return -1; }
char *bag_encode_path(const char *name) { return xstrdup(name); }
