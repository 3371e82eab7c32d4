/*
 * keyset: bounded-memory duplicate detection for unique and primary keys
 * (see keyset.h).
 *
 * Owns: the table (allocated on the first key), the temporary file of
 * spilled runs (anonymous: O_TMPFILE, or unlinked at once, so a crash
 * leaves nothing behind) and, during keyset_finish, one read buffer per
 * run.  keyset_free releases everything.
 *
 * An entry is kw key words and a line word (kw + 1 words, no pointers):
 *   KEYSET_INT    kw = 1: mix(key ^ seed), a bijection, so equal words
 *                 mean equal keys and the key can be recovered;
 *   KEYSET_BYTES  kw = 2: SipHash-2-4-128 of the bytes under a random key.
 * The line word is the record's line, bit 63 set when the record was
 * invalid; 0 marks an empty slot (lines start at 1).
 *
 * The table is linear probing without wrap-around: a key's home slot is
 * fastrange(word 0, home) and probing runs on into a small overflow area
 * past the last home (wrapping to slot 0 only if even that fills, which
 * the random hash makes vanishingly rare).  So listing the slots in order
 * lists the entries almost sorted by word 0, and a spill sorts them with an
 * insertion sort in close to linear time; a heapsort takes over should the
 * insertion sort ever have to move too much.
 *
 * Runs are sorted by (key words, line) and appended to one file; each run
 * holds a key at most once and runs are in line order, so in the k-way
 * merge of keyset_finish the first entry of a key is its first occurrence
 * and every other one is a repeat.  The merge reads each run through a
 * buffer of budget / runs bytes (at least 4 KiB), so it too stays within
 * the budget.
 */
#include "validate/keyset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/xmalloc.h"

#define LINE_INVALID  (1ULL << 63)
#define MIN_HOME      16
#define MIN_OVERFLOW  8
#define MIN_RUN_BYTES 4096
#define MAX_RANGES    4096 /* 96 KiB of ranges, then only the table */

/* Integer keys that arrived in increasing order, one after the other on
 * consecutive lines: keys lo..hi on lines line..line + (hi - lo). */
struct krange {
    int64_t lo, hi;
    uint64_t line;
};

struct run {
    uint64_t off; /* bytes into the file */
    uint64_t n;   /* entries */
};

struct keyset {
    enum keyset_kind kind;
    unsigned kw, ew; /* key words; entry words (kw + 1) */
    size_t budget;
    uint64_t *t;       /* slots entries of ew words */
    size_t home;       /* home slots; slots - home is the overflow area */
    size_t slots;      /* all slots */
    size_t n, limit;   /* entries; spill at limit */
    size_t last;       /* slot filled by the current record, or SIZE_MAX */
    uint64_t seed;     /* KEYSET_INT: xored in before mixing */
    uint64_t sk0, sk1; /* KEYSET_BYTES: the SipHash key */
    char *tmpdir;
    int fd;
    struct run *runs;
    size_t nruns;
    uint64_t end; /* bytes in the file */
    /* KEYSET_INT: keys above every key seen so far go into ranges instead
     * of the table (see keyset_add_int) */
    struct krange *ranges;
    size_t nranges, rcap;
    int64_t max; /* the largest key put in a range (have_max) */
    bool have_max;
    bool ranges_off; /* MAX_RANGES reached: the table alone from now on */
    bool in_range;   /* the current record's key went into the last range */
};

/* ---- hashing ------------------------------------------------------------ */

#define FMIX_C1 0xff51afd7ed558ccdULL
#define FMIX_C2 0xc4ceb9fe1a85ec53ULL

/* MurmurHash3's finaliser: a bijection on 64-bit words. */
static inline uint64_t fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= FMIX_C1;
    k ^= k >> 33;
    k *= FMIX_C2;
    k ^= k >> 33;
    return k;
}

/* The inverse of an odd number modulo 2^64 (Newton's iteration). */
static uint64_t inverse(uint64_t c)
{
    uint64_t x = c;
    for (int i = 0; i < 6; i++)
        x *= 2 - c * x;
    return x;
}

static uint64_t unfmix(uint64_t k)
{
    k ^= k >> 33;
    k *= inverse(FMIX_C2);
    k ^= k >> 33;
    k *= inverse(FMIX_C1);
    k ^= k >> 33;
    return k;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-2-4 with 128-bit output (Aumasson and Bernstein's reference,
 * CC0), reading words in host order: the hash only has to agree with
 * itself within one process. */
static void siphash128(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len,
                       uint64_t out[2])
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t m, b = (uint64_t)len << 56;
    const unsigned char *end = in + (len & ~(size_t)7);
    v1 ^= 0xee;
    for (; in != end; in += 8) {
        memcpy(&m, in, 8);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[0] = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* Lemire's fastrange: h scaled into [0, n), order-preserving. */
static inline size_t fastrange(uint64_t h, size_t n)
{
    return (size_t)(((unsigned __int128)h * n) >> 64);
}

/* ---- the set ------------------------------------------------------------ */

struct keyset *keyset_new(enum keyset_kind kind, size_t budget, const char *tmpdir)
{
    struct keyset *ks = xcalloc(1, sizeof *ks);
    uint64_t rnd[3];
    ks->kind = kind;
    ks->kw = kind == KEYSET_INT ? 1 : 2;
    ks->ew = ks->kw + 1;
    ks->budget = budget;
    ks->last = SIZE_MAX;
    ks->fd = -1;
    ks->tmpdir = xstrdup(tmpdir && *tmpdir ? tmpdir : ".");
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* no entropy source: still different per set and per process */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rnd[0] = fmix((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
        rnd[1] = fmix(rnd[0] ^ (uint64_t)(uintptr_t)ks);
        rnd[2] = fmix(rnd[1] ^ (uint64_t)ts.tv_sec);
    }
    ks->seed = rnd[0];
    ks->sk0 = rnd[1];
    ks->sk1 = rnd[2];
    return ks;
}

static void table_alloc(struct keyset *ks)
{
    size_t esize = ks->ew * sizeof(uint64_t);
    size_t total = ks->budget / esize;
    ks->home = total - total / 16;
    if (ks->home < MIN_HOME)
        ks->home = MIN_HOME;
    ks->slots = total > ks->home + MIN_OVERFLOW ? total : ks->home + MIN_OVERFLOW;
    ks->limit = ks->home / 10 * 7 + (ks->home % 10) * 7 / 10;
    /* calloc of a large block maps fresh zero pages: only the slots keys
     * land in become resident */
    ks->t = xcalloc(ks->slots, esize);
}

static inline __attribute__((always_inline)) int add(struct keyset *ks, const uint64_t *k,
                                                     unsigned kw, uint64_t line, uint64_t *first)
{
    const unsigned ew = kw + 1;
    size_t i;
    if (!ks->t)
        table_alloc(ks);
    if (ks->n + 1 >= ks->slots) {
        /* only a caller adding many keys per keyset_row_end gets here */
        fprintf(stderr, "keyset: table full (keyset_row_end not called)\n");
        abort();
    }
    for (i = fastrange(k[0], ks->home);;) {
        uint64_t *e = ks->t + i * ew;
        if (!e[kw]) {
            e[0] = k[0];
            if (kw == 2)
                e[1] = k[1];
            e[kw] = line;
            ks->n++;
            ks->last = i;
            return 1;
        }
        if (e[0] == k[0] && (kw == 1 || e[1] == k[1])) {
            *first = e[kw] & ~LINE_INVALID;
            return 0;
        }
        if (++i == ks->slots)
            i = 0;
    }
}

/*
 * Integer keys often arrive in order (order ids, line numbers): a key above
 * every key seen so far cannot be a repeat, and a run of them, each one
 * more than the last on the next line, is kept as one range instead of one
 * random slot of the table per key.  So the invariant: while ranges are on,
 * every key in the table or its spilled runs is at most max, and the
 * ranges hold the keys above the table's in order.  A key at most max is
 * looked up in the ranges (binary search; its first line follows from the
 * range's) and then in the table as before.  A range key whose record
 * turns out invalid moves into the table at keyset_row_end, marked so.
 * Past MAX_RANGES (keys in order but with gaps) the ranges stay as they
 * are, still looked up, and new keys go to the table.  Ranges are never
 * spilled, so a repeat of a range key is always found at once.
 */
static const struct krange *range_find(const struct keyset *ks, int64_t key)
{
    size_t lo = 0, hi = ks->nranges;
    while (lo < hi) { /* the first range with lo > key */
        size_t mid = lo + (hi - lo) / 2;
        if (ks->ranges[mid].lo > key)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == 0 || ks->ranges[lo - 1].hi < key)
        return NULL;
    return &ks->ranges[lo - 1];
}

int keyset_add_int(struct keyset *ks, int64_t key, uint64_t line, uint64_t *first)
{
    if (!ks->ranges_off && (!ks->have_max || key > ks->max)) {
        struct krange *r = ks->nranges ? &ks->ranges[ks->nranges - 1] : NULL;
        if (r && key == r->hi + 1 && line == r->line + (uint64_t)(r->hi - r->lo) + 1) {
            r->hi = key;
        } else if (ks->nranges < MAX_RANGES) {
            if (ks->nranges == ks->rcap) {
                ks->rcap = ks->rcap ? ks->rcap * 2 : 16;
                ks->ranges = xrealloc(ks->ranges, ks->rcap * sizeof *ks->ranges);
            }
            ks->ranges[ks->nranges++] = (struct krange){key, key, line};
        } else {
            ks->ranges_off = true;
        }
        if (!ks->ranges_off) {
            ks->max = key;
            ks->have_max = true;
            ks->in_range = true;
            return 1;
        }
    }
    if (ks->nranges) {
        const struct krange *r = range_find(ks, key);
        if (r) {
            *first = r->line + (uint64_t)(key - r->lo);
            return 0;
        }
    }
    uint64_t k = fmix((uint64_t)key ^ ks->seed);
    return add(ks, &k, 1, line, first);
}

int keyset_add_bytes(struct keyset *ks, const void *key, size_t len, uint64_t line, uint64_t *first)
{
    uint64_t k[2];
    siphash128(ks->sk0, ks->sk1, key, len, k);
    return add(ks, k, 2, line, first);
}

bool keyset_spilled(const struct keyset *ks)
{
    return ks->nruns > 0;
}

/* ---- sorting a run ------------------------------------------------------ */

static inline int ecmp(const uint64_t *a, const uint64_t *b, unsigned kw)
{
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    if (kw == 2 && a[1] != b[1])
        return a[1] < b[1] ? -1 : 1;
    uint64_t la = a[kw] & ~LINE_INVALID, lb = b[kw] & ~LINE_INVALID;
    return (la > lb) - (la < lb);
}

/* Insertion sort; false (v still a permutation) after max_moves moves. */
static bool insertion_sort(uint64_t *v, size_t n, unsigned kw, size_t max_moves)
{
    const size_t ew = kw + 1;
    size_t moves = 0;
    uint64_t tmp[3];
    for (size_t i = 1; i < n; i++) {
        if (ecmp(v + (i - 1) * ew, v + i * ew, kw) <= 0)
            continue;
        size_t j = i;
        memcpy(tmp, v + i * ew, ew * sizeof *v);
        do {
            memcpy(v + j * ew, v + (j - 1) * ew, ew * sizeof *v);
            j--;
            moves++;
        } while (j > 0 && ecmp(v + (j - 1) * ew, tmp, kw) > 0 && moves < max_moves);
        memcpy(v + j * ew, tmp, ew * sizeof *v);
        if (moves >= max_moves)
            return false;
    }
    return true;
}

static void eswap(uint64_t *a, uint64_t *b, size_t ew)
{
    uint64_t tmp[3];
    memcpy(tmp, a, ew * sizeof *a);
    memcpy(a, b, ew * sizeof *a);
    memcpy(b, tmp, ew * sizeof *a);
}

static void sift_down(uint64_t *v, size_t root, size_t n, unsigned kw)
{
    const size_t ew = kw + 1;
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n)
            return;
        if (c + 1 < n && ecmp(v + c * ew, v + (c + 1) * ew, kw) < 0)
            c++;
        if (ecmp(v + root * ew, v + c * ew, kw) >= 0)
            return;
        eswap(v + root * ew, v + c * ew, ew);
        root = c;
    }
}

static void heap_sort(uint64_t *v, size_t n, unsigned kw)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(v, i, n, kw);
    for (size_t i = n; i-- > 1;) {
        eswap(v, v + i * (kw + 1), kw + 1);
        sift_down(v, 0, i, kw);
    }
}

/* ---- spilling ----------------------------------------------------------- */

static int open_at(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    /* no O_TMPFILE here: a named file, unlinked at once */
    char *path = xasprintf("%s/.wharf-keyset-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    free(path);
    return fd;
}

static int open_tmp(struct keyset *ks, struct werr *e)
{
    const char *env = getenv("TMPDIR");
    if ((ks->fd = open_at(ks->tmpdir)) >= 0)
        return 0;
    if (env && *env && (ks->fd = open_at(env)) >= 0)
        return 0;
    if ((ks->fd = open_at("/tmp")) >= 0)
        return 0;
    werr_sys(e, "unique / primary key check: temporary file in %s", ks->tmpdir);
    return -1;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off, struct werr *e)
{
    const char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            werr_sys(e, "unique / primary key check: write temporary file");
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off, struct werr *e)
{
    char *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            werr_sys(e, "unique / primary key check: read temporary file");
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Write the table as one sorted run and empty it. */
static int spill(struct keyset *ks, struct werr *e)
{
    const size_t ew = ks->ew, esize = ew * sizeof(uint64_t);
    size_t n = 0;
    if (ks->fd < 0 && open_tmp(ks, e) < 0)
        return -1;
    for (size_t i = 0; i < ks->slots; i++) {
        uint64_t *s = ks->t + i * ew;
        if (!s[ks->kw])
            continue;
        if (n != i)
            memcpy(ks->t + n * ew, s, esize);
        n++;
    }
    if (!insertion_sort(ks->t, n, ks->kw, 16 * n + 1024))
        heap_sort(ks->t, n, ks->kw);
    if (pwrite_all(ks->fd, ks->t, n * esize, ks->end, e) < 0)
        return -1;
    ks->runs = xrealloc(ks->runs, (ks->nruns + 1) * sizeof *ks->runs);
    ks->runs[ks->nruns++] = (struct run){ks->end, n};
    ks->end += n * esize;
    if (ks->t)
        memset(ks->t, 0, ks->slots * esize);
    ks->n = 0;
    ks->last = SIZE_MAX;
    return 0;
}

int keyset_row_end(struct keyset *ks, bool row_invalid, struct werr *e)
{
    if (ks->in_range) {
        ks->in_range = false;
        if (row_invalid) {
            /* into the table, marked: it is the largest key, so new there */
            struct krange *r = &ks->ranges[ks->nranges - 1];
            int64_t key = r->hi;
            uint64_t line = r->line + (uint64_t)(r->hi - r->lo), seen;
            if (r->hi == r->lo)
                ks->nranges--;
            else
                r->hi--;
            uint64_t k = fmix((uint64_t)key ^ ks->seed);
            add(ks, &k, 1, line, &seen);
        }
    }
    if (ks->last != SIZE_MAX) {
        if (row_invalid)
            ks->t[ks->last * ks->ew + ks->kw] |= LINE_INVALID;
        ks->last = SIZE_MAX;
    }
    return ks->t && ks->n >= ks->limit ? spill(ks, e) : 0; /* no table yet: ranges only */
}

/* ---- the final merge ---------------------------------------------------- */

struct cursor {
    uint64_t *buf;
    size_t pos, len;    /* entries in buf */
    uint64_t off, left; /* file offset and entries after buf */
};

static int cursor_fill(struct keyset *ks, struct cursor *c, size_t cap, struct werr *e)
{
    size_t take = c->left < cap ? (size_t)c->left : cap;
    size_t bytes = take * ks->ew * sizeof(uint64_t);
    if (pread_all(ks->fd, c->buf, bytes, c->off, e) < 0)
        return -1;
    c->off += bytes;
    c->left -= take;
    c->pos = 0;
    c->len = take;
    return 0;
}

static inline const uint64_t *cursor_at(const struct keyset *ks, const struct cursor *c)
{
    return c->buf + c->pos * ks->ew;
}

static void heap_down(const struct keyset *ks, struct cursor *cur, size_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && ecmp(cursor_at(ks, &cur[h[c + 1]]), cursor_at(ks, &cur[h[c]]), ks->kw) < 0)
            c++;
        if (ecmp(cursor_at(ks, &cur[h[i]]), cursor_at(ks, &cur[h[c]]), ks->kw) <= 0)
            return;
        size_t t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

static void reset(struct keyset *ks)
{
    free(ks->t);
    ks->t = NULL;
    ks->n = 0;
    ks->last = SIZE_MAX;
    if (ks->fd >= 0)
        close(ks->fd);
    ks->fd = -1;
    free(ks->runs);
    ks->runs = NULL;
    ks->nruns = 0;
    ks->end = 0;
    free(ks->ranges);
    ks->ranges = NULL;
    ks->nranges = ks->rcap = 0;
    ks->have_max = ks->ranges_off = ks->in_range = false;
}

/*
 * keyset_finish: when the set spilled, the table becomes the last run, the
 * table is freed, and the runs are merged through a binary heap of
 * cursors:
 *   1. pop the smallest entry (key words, then line);
 *   2. a new key: remember it and its line, the first occurrence;
 *   3. the same key again: a repeat that keyset_add could not see, since
 *      its first occurrence had already been spilled: call fn.
 */
int keyset_finish(struct keyset *ks, keyset_dup_fn fn, void *ctx, struct werr *e)
{
    const unsigned kw = ks->kw;
    struct cursor *cur = NULL;
    size_t *h = NULL, hn = 0, cap = 0;
    uint64_t key[2] = {0, 0}, first = 0;
    bool have = false;
    int r = -1;

    if (!ks->nruns) {
        r = 0;
        goto out;
    }
    if (ks->n && spill(ks, e) < 0)
        goto out;
    free(ks->t);
    ks->t = NULL;

    cap = ks->budget / ks->nruns / (ks->ew * sizeof(uint64_t));
    if (cap * ks->ew * sizeof(uint64_t) < MIN_RUN_BYTES)
        cap = MIN_RUN_BYTES / (ks->ew * sizeof(uint64_t));
    cur = xcalloc(ks->nruns, sizeof *cur);
    h = xcalloc(ks->nruns, sizeof *h);
    for (size_t i = 0; i < ks->nruns; i++) {
        cur[i].buf = xmalloc(cap * ks->ew * sizeof(uint64_t));
        cur[i].off = ks->runs[i].off;
        cur[i].left = ks->runs[i].n;
        if (!cur[i].left)
            continue;
        if (cursor_fill(ks, &cur[i], cap, e) < 0)
            goto out;
        h[hn++] = i;
    }
    for (size_t i = hn / 2; i-- > 0;)
        heap_down(ks, cur, h, hn, i);

    while (hn) {
        struct cursor *c = &cur[h[0]];
        const uint64_t *x = cursor_at(ks, c);
        uint64_t line = x[kw] & ~LINE_INVALID;
        if (have && x[0] == key[0] && (kw == 1 || x[1] == key[1])) {
            int64_t k = (int64_t)(unfmix(x[0]) ^ ks->seed);
            fn(ctx, line, first, (x[kw] & LINE_INVALID) != 0, kw == 1 ? &k : NULL);
        } else {
            key[0] = x[0];
            key[1] = kw == 2 ? x[1] : 0;
            first = line;
            have = true;
        }
        if (++c->pos == c->len) {
            if (c->left) {
                if (cursor_fill(ks, c, cap, e) < 0)
                    goto out;
            } else {
                h[0] = h[--hn];
            }
        }
        heap_down(ks, cur, h, hn, 0);
    }
    r = 0;
out:
    for (size_t i = 0; cur && i < ks->nruns; i++)
        free(cur[i].buf);
    free(cur);
    free(h);
    reset(ks);
    return r;
}

void keyset_free(struct keyset *ks)
{
    if (!ks)
        return;
    reset(ks);
    free(ks->tmpdir);
    free(ks);
}
