/*
 * ids: ULID generation.  Randomness from getrandom(2); within the same
 * millisecond the random part is incremented so ids stay strictly sorted.
 */
#include "util/ids.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned char last_rand[10];

void id_new(char out[ID_LEN])
{
    struct timespec ts;
    unsigned char bytes[16];
    uint64_t ms;
    int i;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        ms = last_ms;
        for (i = 9; i >= 0; i--)
            if (++last_rand[i] != 0)
                break;
    } else {
        size_t got = 0;
        while (got < sizeof last_rand) {
            ssize_t n = getrandom(last_rand + got, sizeof last_rand - got, 0);
            if (n > 0)
                got += (size_t)n;
        }
        last_rand[0] &= 0x7f; /* leave room to increment */
        last_ms = ms;
    }
    for (i = 0; i < 6; i++)
        bytes[i] = (unsigned char)(ms >> (40 - 8 * i));
    memcpy(bytes + 6, last_rand, 10);
    pthread_mutex_unlock(&lock);

    /* 128 bits -> 26 base32 chars, most significant first (2 pad bits). */
    for (i = 0; i < 26; i++) {
        int bit = i * 5 - 2, v = 0, k;
        for (k = 0; k < 5; k++, bit++) {
            v <<= 1;
            if (bit >= 0)
                v |= (bytes[bit / 8] >> (7 - bit % 8)) & 1;
        }
        out[i] = b32[v];
    }
    out[26] = 0;
}

int id_valid(const char *s)
{
    int i;
    for (i = 0; i < 26; i++)
        if (!s[i] || !strchr(b32, s[i]))
            return 0;
    return s[26] == 0;
}
