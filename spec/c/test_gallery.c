/* Plain-C tests of hash.c (CRC-32 and SHA-256 test vectors) and gallery.c
 * (enrolment, k-NN against a brute-force loop, removal, the file format). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "gallery.h"
#include "hash.h"

static void test_crc32_vectors(void)
{
    CHECK(sm_crc32("123456789", 9) == 0xCBF43926u);
    CHECK(sm_crc32("", 0) == 0);
    CHECK(sm_crc32("The quick brown fox jumps over the lazy dog", 43) == 0x414FA339u);
    /* pieces in order give the checksum of the whole */
    uint32_t c = sm_crc32_update(0, "12345", 5);
    CHECK(sm_crc32_update(c, "6789", 4) == 0xCBF43926u);
}

static const char *sha_hex(const char *s, size_t len, char out[65])
{
    uint8_t d[32];
    sm_sha256(d, s, len);
    sm_hex(out, d, 32);
    return out;
}

static void test_sha256_vectors(void)
{
    char hex[65];
    /* FIPS 180-2, appendix B.1, B.2, B.3 */
    CHECK(strcmp(sha_hex("abc", 3, hex), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(strcmp(sha_hex(two, strlen(two), hex), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    sm_sha256_ctx s;
    sm_sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) sm_sha256_update(&s, a, sizeof a);
    uint8_t d[32];
    sm_sha256_final(&s, d);
    sm_hex(hex, d, 32);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    CHECK(strcmp(sha_hex("", 0, hex), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

/* A gallery of n random templates, names "p<i % ids>". */
static void fill_random(sm_gallery *g, int64_t n, int64_t ids, sm_rng *r, float *data)
{
    sm_err err;
    const char **names = malloc((size_t)n * sizeof *names);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    char (*buf)[16] = malloc((size_t)n * 16);
    for (int64_t i = 0; i < n; i++) {
        snprintf(buf[i], 16, "p%lld", (long long)(i % ids));
        names[i] = buf[i];
        lens[i] = strlen(buf[i]);
        for (int64_t j = 0; j < g->dim; j++) data[i * g->dim + j] = (float)sm_rng_normal(r);
    }
    sm_tensor t;
    int64_t shape[2] = { n, g->dim };
    sm_tensor_init(&t, data, 2, shape);
    CHECK(sm_gallery_add_check(&err, g, names, lens, n, &t) == SM_OK);
    CHECK(sm_gallery_reserve(&err, g, n, n, 16 * (size_t)n) == SM_OK);
    sm_gallery_add(g, names, lens, n, &t);
    free(names);
    free(lens);
    free(buf);
}

static double brute(const float *q, const float *t, int64_t dim, sm_metric m)
{
    double dot = 0, qq = 0, tt = 0, d2 = 0;
    for (int64_t j = 0; j < dim; j++) {
        dot += (double)q[j] * t[j]; qq += (double)q[j] * q[j]; tt += (double)t[j] * t[j];
        d2 += ((double)q[j] - t[j]) * ((double)q[j] - t[j]);
    }
    if (m == SM_DIST_EUCLIDEAN) return sqrt(d2);
    return (qq == 0 || tt == 0) ? 1.0 : 1.0 - dot / sqrt(qq * tt);
}

static void test_search_matches_brute_force(void)
{
    for (int metric = 0; metric < 2; metric++) {
        sm_metric m = metric ? SM_DIST_COSINE : SM_DIST_EUCLIDEAN;
        sm_gallery g;
        sm_err err;
        CHECK(sm_gallery_init_check(&err, 8, m, 0.5, "model", 5) == SM_OK);
        sm_gallery_init(&g, 8, m, SM_SCORE_NEAREST, 0.5, "model", 5);
        sm_rng r;
        sm_rng_seed(&r, 11);
        int64_t n = 5000, ids = 700, mq = 67, k = 5;
        float *data = malloc((size_t)(n * 8) * sizeof(float));
        fill_random(&g, n, ids, &r, data);
        CHECK(g.n == n && g.nid == ids);
        float *q = malloc((size_t)(mq * 8) * sizeof(float));
        for (int64_t i = 0; i < mq * 8; i++) q[i] = (float)sm_rng_normal(&r);
        sm_tensor qt;
        int64_t qs[2] = { mq, 8 };
        sm_tensor_init(&qt, q, 2, qs);
        CHECK(sm_gallery_search_check(&err, &g, &qt, k) == SM_OK);
        float *dist = malloc((size_t)(mq * k) * sizeof(float));
        int64_t *idx = malloc((size_t)(mq * k) * sizeof(int64_t));
        void *work = malloc(sm_gallery_search_work_bytes(mq, k, 2));
        /* template level: distance of rank j equals the j-th smallest */
        sm_gallery_search(dist, idx, &g, &qt, k, 0, 2, work);
        double *all = malloc((size_t)n * sizeof(double));
        for (int64_t i = 0; i < mq; i++) {
            for (int64_t t = 0; t < n; t++) all[t] = brute(q + i * 8, data + t * 8, 8, m);
            for (int64_t j = 0; j < k; j++) {
                CHECK_NEAR(dist[i * k + j], all[idx[i * k + j]], 2e-5);
                if (j > 0) CHECK(dist[i * k + j - 1] <= dist[i * k + j]);
            }
            /* nothing outside the list beats its last entry */
            int64_t better = 0;
            for (int64_t t = 0; t < n; t++)
                if (all[t] < dist[i * k + k - 1] - 1e-4) better++;
            CHECK(better <= k - 1);
        }
        /* identity level: distinct identities, each at its nearest template */
        sm_gallery_search(dist, idx, &g, &qt, k, 1, 2, work);
        for (int64_t i = 0; i < mq; i++) {
            for (int64_t j = 0; j < k; j++) {
                int64_t id = idx[i * k + j];
                CHECK(id >= 0 && id < ids);
                for (int64_t j2 = 0; j2 < j; j2++) CHECK(idx[i * k + j2] != id);
                double best = INFINITY;
                for (int64_t t = id; t < n; t += ids) {
                    double d = brute(q + i * 8, data + t * 8, 8, m);
                    if (d < best) best = d;
                }
                CHECK_NEAR(dist[i * k + j], best, 2e-5);
                CHECK_NEAR(sm_gallery_distance(&g, id, q + i * 8), best, 1e-9);
            }
        }
        free(all); free(work); free(idx); free(dist); free(q); free(data);
        sm_gallery_free(&g);
        sm_gallery_free(&g); /* idempotent */
    }
}

static void test_remove_keeps_order_and_owners(void)
{
    sm_gallery g;
    sm_gallery_init(&g, 4, SM_DIST_EUCLIDEAN, SM_SCORE_NEAREST, 0.5, "m", 1);
    sm_rng r;
    sm_rng_seed(&r, 5);
    float data[40 * 4];
    fill_random(&g, 40, 7, &r, data);
    int64_t id3 = sm_gallery_find(&g, "p3", 2);
    CHECK(id3 == 3);
    CHECK(sm_gallery_remove(&g, id3) == 6); /* 3, 10, 17, 24, 31, 38 */
    CHECK(g.nid == 6 && g.n == 34);
    CHECK(sm_gallery_find(&g, "p3", 2) == -1);
    CHECK(sm_gallery_find(&g, "p4", 2) == 3);
    for (int64_t t = 0; t < g.n; t++) {
        size_t len;
        const char *name = sm_gallery_name(&g, g.owner[t], &len);
        int64_t orig = t + (t >= 3) + (t >= 9) + (t >= 15) + (t >= 21) + (t >= 27) + (t >= 33);
        char want[16];
        snprintf(want, sizeof want, "p%lld", (long long)(orig % 7));
        CHECK(len == strlen(want) && memcmp(name, want, len) == 0);
        CHECK(memcmp(g.vec + t * 4, data + orig * 4, 4 * sizeof(float)) == 0);
    }
    sm_gallery_free(&g);
}

static void test_file_round_trip_and_damage(void)
{
    sm_gallery g, h;
    sm_err err;
    sm_gallery_init(&g, 3, SM_DIST_COSINE, SM_SCORE_MEAN, 0.25, "model-x", 7);
    sm_rng r;
    sm_rng_seed(&r, 9);
    float data[10 * 3];
    fill_random(&g, 10, 4, &r, data);
    size_t head_len = sm_gallery_head_len(&g), vec_len = (size_t)(g.n * g.dim) * 4;
    size_t len = head_len + vec_len + 4;
    uint8_t *buf = malloc(len);
    uint32_t crc = sm_gallery_encode_head(buf, &g);
    memcpy(buf + head_len, g.vec, vec_len);
    memcpy(buf + head_len + vec_len, &crc, 4);
    CHECK(crc == sm_crc32(buf, len - 4));
    sm_gallery_info info;
    CHECK(sm_gallery_decode_check(&err, &info, buf, len) == SM_OK);
    CHECK(info.n == 10 && info.nid == 4 && info.dim == 3 && info.metric == SM_DIST_COSINE);
    sm_gallery_init(&h, info.dim, info.metric, info.score, info.threshold, (const char *)buf + info.model_off,
                    info.model_len);
    CHECK(sm_gallery_reserve(&err, &h, info.n, info.nid, info.names_bytes) == SM_OK);
    CHECK(sm_gallery_decode(&err, &h, &info, buf) == SM_OK);
    CHECK(h.n == g.n && h.nid == g.nid && h.threshold == 0.25 && h.score == SM_SCORE_MEAN);
    CHECK(strcmp(h.model, "model-x") == 0);
    CHECK(memcmp(h.vec, g.vec, vec_len) == 0);
    CHECK(memcmp(h.owner, g.owner, (size_t)g.n * sizeof(int64_t)) == 0);
    sm_gallery_free(&h);
    /* every truncation and every single-bit flip is refused */
    for (size_t cut = 0; cut < len; cut++)
        CHECK(sm_gallery_decode_check(&err, &info, buf, cut) == SM_EFORMAT);
    int accepted = 0;
    for (size_t i = 0; i < len; i++)
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (uint8_t)(1 << b);
            if (sm_gallery_decode_check(&err, &info, buf, len) == SM_OK) accepted++;
            buf[i] ^= (uint8_t)(1 << b);
        }
    CHECK(accepted == 0);
    free(buf);
    sm_gallery_free(&g);
}

int main(void)
{
    RUN(test_crc32_vectors);
    RUN(test_sha256_vectors);
    RUN(test_search_matches_brute_force);
    RUN(test_remove_keeps_order_and_owners);
    RUN(test_file_round_trip_and_damage);
    return ctest_summary("gallery");
}
