/*
 * test_keyset: the set behind unique and primaryKey against a plain
 * reference, over sequences that mix keys in order (kept as ranges), gaps,
 * repeats of range keys and of table keys, invalid records and, with a
 * small budget, spills: every occurrence after a key's first is reported
 * exactly once (at once by keyset_add_int, or late by keyset_finish with
 * the record's validity), never a first occurrence; without spills the
 * first line is the true one.  Keys in order take no table and never
 * spill.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/xmalloc.h"
#include "validate/keyset.h"

#define MAXN 6000

struct late {
    uint8_t *seen;    /* per line: reported (1 at once, 2 late) */
    uint8_t *invalid; /* per line: the validity given at keyset_row_end */
    uint64_t *first;  /* per line: the first line reported */
    int bad;
};

static void on_late(void *ctx, uint64_t line, uint64_t first, bool row_invalid,
                    const int64_t *key_int)
{
    struct late *L = ctx;
    (void)key_int;
    if (line >= MAXN + 2 || L->seen[line] || row_invalid != (L->invalid[line] != 0))
        L->bad++;
    else
        L->seen[line] = 2;
    L->first[line] = first;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One sequence: style picks how keys are made; budget small: spills. */
static void run(int style, size_t budget, uint64_t seed)
{
    struct keyset *ks = keyset_new(KEYSET_INT, budget, "/tmp");
    struct late L = {xcalloc(MAXN + 2, 1), xcalloc(MAXN + 2, 1), xcalloc(MAXN + 2, 8), 0};
    int64_t *keys = xcalloc(MAXN + 2, sizeof *keys);
    uint64_t *first_of = xcalloc(MAXN + 2, sizeof *first_of); /* reference, per line */
    struct werr e = {0};
    int64_t next = -50;
    for (uint64_t line = 2; line < MAXN + 2; line++) {
        uint64_t r = rnd(&seed) % 100;
        int64_t k;
        if (style == 0 || r < 80)
            k = next++; /* in order */
        else if (r < 85)
            k = (next += 1 + (int64_t)(rnd(&seed) % 5)); /* a gap */
        else if (r < 95)
            k = keys[2 + rnd(&seed) % (line - 1)]; /* an earlier key again */
        else
            k = -1000000 - (int64_t)(rnd(&seed) % 3000); /* below everything */
        if (style == 2 && r >= 95)
            k = (int64_t)(rnd(&seed) % 100000) * 2; /* out of order, big */
        keys[line] = k;
        first_of[line] = 0;
        for (uint64_t j = 2; j < line; j++)
            if (keys[j] == k) {
                first_of[line] = j;
                break;
            }
        uint64_t got = 0;
        int fresh = keyset_add_int(ks, k, line, &got);
        bool invalid = rnd(&seed) % 10 == 0;
        if (!fresh) {
            if (!first_of[line])
                fail_msg("style %d line %llu: key %lld called a repeat", style,
                         (unsigned long long)line, (long long)k);
            L.seen[line] = 1;
            L.first[line] = got;
            invalid = true; /* as the validator does */
        }
        L.invalid[line] = invalid;
        assert_int_equal(keyset_row_end(ks, invalid, &e), 0);
    }
    bool spilled = keyset_spilled(ks);
    assert_int_equal(keyset_finish(ks, on_late, &L, &e), 0);
    assert_int_equal(L.bad, 0);
    for (uint64_t line = 2; line < MAXN + 2; line++) {
        if (!first_of[line] && L.seen[line])
            fail_msg("style %d line %llu: a first occurrence reported", style,
                     (unsigned long long)line);
        if (first_of[line] && !L.seen[line])
            fail_msg("style %d line %llu: repeat of line %llu missed", style,
                     (unsigned long long)line, (unsigned long long)first_of[line]);
        if (first_of[line] && !spilled && L.first[line] != first_of[line])
            fail_msg("style %d line %llu: first %llu, want %llu", style, (unsigned long long)line,
                     (unsigned long long)L.first[line], (unsigned long long)first_of[line]);
    }
    keyset_free(ks);
    free(L.seen);
    free(L.invalid);
    free(L.first);
    free(keys);
    free(first_of);
}

static void test_against_reference(void **state)
{
    (void)state;
    for (int style = 0; style < 3; style++) {
        run(style, 16u * 1024 * 1024, 0x9e3779b97f4a7c15ULL + (uint64_t)style);
        run(style, 64 * 1024, 0x2545f4914f6cdd1dULL + (uint64_t)style); /* spills */
    }
}

/* Keys in order but never consecutive: past MAX_RANGES ranges the table
 * takes over, and repeats of both kinds are still found. */
static void test_many_gaps(void **state)
{
    (void)state;
    struct keyset *ks = keyset_new(KEYSET_INT, 1u << 20, "/tmp");
    struct werr e = {0};
    uint64_t first = 0;
    for (int64_t i = 0; i < 20000; i++) {
        assert_int_equal(keyset_add_int(ks, i * 3, (uint64_t)i + 2, &first), 1);
        assert_int_equal(keyset_row_end(ks, false, &e), 0);
    }
    assert_int_equal(keyset_add_int(ks, 3 * 10, 30000, &first), 0); /* in a range */
    assert_int_equal(first, 12);
    assert_int_equal(keyset_row_end(ks, true, &e), 0);
    assert_int_equal(keyset_add_int(ks, 3 * 19999, 30001, &first), 0); /* in the table */
    assert_int_equal(first, 20001);
    assert_int_equal(keyset_row_end(ks, true, &e), 0);
    struct late L = {xcalloc(MAXN + 2, 1), xcalloc(MAXN + 2, 1), xcalloc(MAXN + 2, 8), 0};
    assert_int_equal(keyset_finish(ks, on_late, &L, &e), 0); /* nothing late: no spill */
    assert_int_equal(L.bad, 0);
    keyset_free(ks);
    free(L.seen);
    free(L.invalid);
    free(L.first);
}

/* Keys in order cost no table: 100,000 of them in a 64 KiB budget never
 * spill (each would have taken a slot before), and a repeat of any of them
 * is found at once with its first line. */
static void test_in_order_never_spills(void **state)
{
    (void)state;
    struct keyset *ks = keyset_new(KEYSET_INT, 64 * 1024, "/tmp");
    struct werr e = {0};
    uint64_t first = 0;
    for (int64_t i = 1; i <= 100000; i++) {
        assert_int_equal(keyset_add_int(ks, i, (uint64_t)i + 1, &first), 1);
        assert_int_equal(keyset_row_end(ks, false, &e), 0);
    }
    assert_false(keyset_spilled(ks));
    assert_int_equal(keyset_add_int(ks, 77777, 100002, &first), 0);
    assert_int_equal(first, 77778);
    assert_int_equal(keyset_row_end(ks, true, &e), 0);
    assert_int_equal(keyset_add_int(ks, 100001, 100003, &first), 1);
    assert_int_equal(keyset_row_end(ks, false, &e), 0);
    assert_false(keyset_spilled(ks));
    keyset_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_many_gaps),
        cmocka_unit_test(test_in_order_never_spills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
