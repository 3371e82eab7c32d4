/*
 * decimal: exact decimal sums on text (see decimal.h).
 *
 * Digits are stored one per byte, least significant first; the number is
 * (-1)^neg * sum(d[i] * 10^(i - scale)).  Additions align the scales
 * first (widening the narrower one with zeros), then add or subtract the
 * magnitudes.  Plain schoolbook arithmetic: a control sum is a few dozen
 * digits, and the work per cell is linear in its length.
 */
#include "util/decimal.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

static void reserve(struct decimal *a, size_t n)
{
    if (n <= a->cap)
        return;
    size_t cap = a->cap ? a->cap : 16;
    while (cap < n)
        cap *= 2;
    a->d = xrealloc(a->d, cap);
    a->cap = cap;
}

/* Drop leading zeros above the point; zero is never negative. */
static void trim(struct decimal *a)
{
    while (a->n > a->scale + 1 && a->d[a->n - 1] == 0)
        a->n--;
    bool zero = true;
    for (size_t i = 0; i < a->n && zero; i++)
        zero = a->d[i] == 0;
    if (zero)
        a->neg = false;
}

/* Multiply by 10^k, keeping the value: more fraction digits. */
static int widen(struct decimal *a, size_t scale)
{
    if (scale <= a->scale)
        return 0;
    size_t k = scale - a->scale;
    if (a->n + k > DECIMAL_MAX_DIGITS)
        return -1;
    reserve(a, a->n + k);
    memmove(a->d + k, a->d, a->n);
    memset(a->d, 0, k);
    a->n += k;
    a->scale = scale;
    return 0;
}

void decimal_free(struct decimal *a)
{
    free(a->d);
    memset(a, 0, sizeof *a);
}

int decimal_parse(struct decimal *out, const char *s, size_t len)
{
    size_t i = 0, int_start, int_len, frac_start = 0, frac_len = 0;
    bool neg = false;
    long exp = 0;

    decimal_free(out);
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    int_len = i - int_start;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_len = i - frac_start;
    }
    if (!int_len && !frac_len)
        return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false;
        size_t e0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        e0 = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (exp > DECIMAL_MAX_DIGITS)
                return -1;
            exp = exp * 10 + (s[i++] - '0');
        }
        if (i == e0)
            return -1;
        if (eneg)
            exp = -exp;
    }
    if (i != len || int_len + frac_len > DECIMAL_MAX_DIGITS)
        return -1;

    /* digits = int . frac, scale = frac_len - exp */
    long scale = (long)frac_len - exp;
    size_t n = int_len + frac_len, pad = 0;
    if (scale < 0) {
        pad = (size_t)-scale;
        scale = 0;
    }
    if (n + pad > DECIMAL_MAX_DIGITS || (size_t)scale > DECIMAL_MAX_DIGITS)
        return -1;
    size_t total = n + pad;
    if (total < (size_t)scale + 1)
        total = (size_t)scale + 1;
    reserve(out, total);
    memset(out->d, 0, total);
    size_t k = pad;
    for (size_t j = frac_len; j-- > 0;)
        out->d[k++] = (unsigned char)(s[frac_start + j] - '0');
    for (size_t j = int_len; j-- > 0;)
        out->d[k++] = (unsigned char)(s[int_start + j] - '0');
    out->n = total;
    out->scale = (size_t)scale;
    out->neg = neg;
    trim(out);
    return 0;
}

/* |a| vs |b|, same scale. */
static int cmp_mag(const struct decimal *a, const struct decimal *b)
{
    size_t n = a->n > b->n ? a->n : b->n;
    for (size_t i = n; i-- > 0;) {
        int x = i < a->n ? a->d[i] : 0, y = i < b->n ? b->d[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

int decimal_add(struct decimal *acc, const struct decimal *b0)
{
    struct decimal b = {0};
    size_t scale, n;
    int rc = -1;

    if (!acc->n) {
        reserve(acc, 1);
        acc->d[0] = 0;
        acc->n = 1;
        acc->scale = 0;
        acc->neg = false;
    }
    if (!b0->n)
        return 0;
    reserve(&b, b0->n);
    memcpy(b.d, b0->d, b0->n);
    b.n = b0->n;
    b.scale = b0->scale;
    b.neg = b0->neg;
    scale = acc->scale > b.scale ? acc->scale : b.scale;
    struct decimal save = {0};
    reserve(&save, acc->n);
    memcpy(save.d, acc->d, acc->n);
    save.n = acc->n;
    save.scale = acc->scale;
    save.neg = acc->neg;
    if (widen(acc, scale) < 0 || widen(&b, scale) < 0)
        goto out;
    n = (acc->n > b.n ? acc->n : b.n) + 1;
    if (n > DECIMAL_MAX_DIGITS + 1)
        goto out;
    reserve(acc, n);
    memset(acc->d + acc->n, 0, n - acc->n);
    reserve(&b, n);
    memset(b.d + b.n, 0, n - b.n);
    if (acc->neg == b.neg) {
        int carry = 0;
        for (size_t i = 0; i < n; i++) {
            int s = acc->d[i] + b.d[i] + carry;
            acc->d[i] = (unsigned char)(s % 10);
            carry = s / 10;
        }
    } else {
        acc->n = n;
        b.n = n;
        const struct decimal *big = acc, *small = &b;
        bool neg = acc->neg;
        if (cmp_mag(acc, &b) < 0) {
            big = &b;
            small = acc;
            neg = b.neg;
        }
        int borrow = 0;
        for (size_t i = 0; i < n; i++) {
            int s = big->d[i] - small->d[i] - borrow;
            borrow = s < 0;
            acc->d[i] = (unsigned char)(s < 0 ? s + 10 : s);
        }
        acc->neg = neg;
    }
    acc->n = n;
    trim(acc);
    if (acc->n > DECIMAL_MAX_DIGITS)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        free(acc->d);
        *acc = save;
    } else {
        decimal_free(&save);
    }
    decimal_free(&b);
    return rc;
}

int decimal_add_text(struct decimal *acc, const char *s, size_t len)
{
    struct decimal b = {0};
    int rc = decimal_parse(&b, s, len);
    if (rc == 0)
        rc = decimal_add(acc, &b);
    decimal_free(&b);
    return rc;
}

int decimal_cmp(const struct decimal *a0, const struct decimal *b0)
{
    struct decimal a = {0}, b = {0};
    struct decimal zero = {.d = (unsigned char[]){0}, .n = 1};
    const struct decimal *x = a0->n ? a0 : &zero, *y = b0->n ? b0 : &zero;
    int r;
    decimal_add(&a, x);
    decimal_add(&b, y);
    size_t scale = a.scale > b.scale ? a.scale : b.scale;
    widen(&a, scale);
    widen(&b, scale);
    if (a.neg != b.neg)
        r = a.neg ? -1 : 1;
    else
        r = a.neg ? -cmp_mag(&a, &b) : cmp_mag(&a, &b);
    decimal_free(&a);
    decimal_free(&b);
    return r;
}

char *decimal_str(const struct decimal *a, bool group)
{
    size_t n = a->n ? a->n : 1;
    char *s = xmalloc(n + n / 3 + 4), *o = s;
    if (a->neg)
        *o++ = '-';
    for (size_t i = n; i-- > 0;) {
        *o++ = (char)('0' + (a->n ? a->d[i] : 0));
        if (i == a->scale && a->scale)
            *o++ = '.';
        else if (group && i > a->scale && (i - a->scale) % 3 == 0)
            *o++ = ',';
    }
    *o = 0;
    return s;
}
