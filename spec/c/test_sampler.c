/* Plain-C tests of sampler.c: grouping by label, balanced pairs, P x K
 * batches, random triplets (structure and determinism for a seed) and batch
 * assembly on a tiny image. */
#include <string.h>
#include "ctest.h"
#include "sm.h"

/* 5 identities: label 3 has one image, label 0 has five, the others two. */
static const int32_t labels[] = { 0, 1, 0, 2, 3, 1, 0, 2, 4, 4, 0, 0 };
#define N ((int64_t)(sizeof labels / sizeof labels[0]))

static int64_t work[3 * N + 1];

static sm_groups groups(void)
{
    sm_groups g;
    sm_groups_build(&g, work, labels, N);
    return g;
}

static void test_groups(void)
{
    sm_err err;
    CHECK(sm_labels_check(&err, labels, N) == SM_OK);
    int32_t bad[2] = { 1, -1 };
    CHECK(sm_labels_check(&err, bad, 2) == SM_EINVAL);
    sm_groups g = groups();
    CHECK(g.count == 5);
    CHECK(g.starts[0] == 0 && g.starts[1] == 5 && g.starts[5] == N);
    int64_t first[5] = { 0, 2, 6, 10, 11 };
    for (int k = 0; k < 5; k++) CHECK(g.members[k] == first[k]);
    for (int64_t i = 0; i < N; i++) {
        int64_t grp = g.group_of[i];
        CHECK(labels[g.members[g.starts[grp]]] == labels[i]);
    }
    CHECK(sm_groups_count_min(&g, 2) == 4);
}

static void test_balanced_pairs(void)
{
    sm_groups g = groups();
    sm_err err;
    CHECK(sm_balanced_pairs_check(&err, &g) == SM_OK);
    int64_t count = sm_balanced_pairs_count(&g);
    CHECK(count == 2 * N - 1); /* the single image of label 3 has no positive */
    int64_t left[2 * N], right[2 * N], left2[2 * N], right2[2 * N];
    uint8_t same[2 * N], same2[2 * N];
    sm_rng r;
    sm_rng_seed(&r, 11);
    sm_balanced_pairs(left, right, same, &g, &r);
    int appearances[N] = { 0 };
    for (int64_t k = 0; k < count; k++) {
        appearances[left[k]]++;
        CHECK(left[k] != right[k]);
        CHECK((labels[left[k]] == labels[right[k]]) == (same[k] == 1));
    }
    for (int64_t i = 0; i < N; i++) CHECK(appearances[i] == (labels[i] == 3 ? 1 : 2));
    sm_rng_seed(&r, 11);
    sm_balanced_pairs(left2, right2, same2, &g, &r);
    CHECK(memcmp(left, left2, (size_t)count * sizeof *left) == 0);
    CHECK(memcmp(right, right2, (size_t)count * sizeof *right) == 0);
    CHECK(memcmp(same, same2, (size_t)count) == 0);

    int32_t one[3] = { 2, 2, 2 };
    int64_t w1[10];
    sm_groups_build(&g, w1, one, 3);
    CHECK(sm_balanced_pairs_check(&err, &g) == SM_EINVAL);
}

static void test_pk_batches(void)
{
    sm_groups g = groups();
    sm_err err;
    CHECK(sm_pk_check(&err, &g, 1, 2) == SM_EINVAL);
    CHECK(sm_pk_check(&err, &g, 2, 1) == SM_EINVAL);
    CHECK(sm_pk_check(&err, &g, 5, 2) == SM_EINVAL); /* only 4 eligible */
    CHECK(sm_pk_check(&err, &g, 3, 3) == SM_OK);
    CHECK(sm_pk_batch_count(&g, 3) == 2);
    int64_t out[2 * 3 * 3], scratch[4];
    sm_rng r;
    sm_rng_seed(&r, 5);
    sm_pk_batches(out, scratch, &g, 3, 3, &r);
    int seen[5] = { 0 };
    for (int b = 0; b < 2; b++)
        for (int p = 0; p < 3; p++) {
            const int64_t *ids = out + (b * 3 + p) * 3;
            int32_t label = labels[ids[0]];
            CHECK(label != 3);
            for (int k = 0; k < 3; k++) CHECK(labels[ids[k]] == label);
            if (label == 0) /* five images: drawn without replacement */
                CHECK(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
            for (int q = 0; q < p; q++) CHECK(labels[out[(b * 3 + q) * 3]] != label);
            seen[label]++;
        }
    for (int l = 0; l < 5; l++) CHECK(l == 3 ? seen[l] == 0 : seen[l] >= 1);
}

static void test_triplets(void)
{
    sm_groups g = groups();
    sm_err err;
    CHECK(sm_triplets_check(&err, &g) == SM_OK);
    int64_t a[50], p[50], n[50], scratch[4];
    sm_rng r;
    sm_rng_seed(&r, 3);
    sm_random_triplets(a, p, n, 50, scratch, &g, &r);
    for (int t = 0; t < 50; t++) {
        CHECK(a[t] != p[t] && labels[a[t]] == labels[p[t]]);
        CHECK(labels[n[t]] != labels[a[t]]);
    }
}

/* (v scale - mean) / std, scale 0.1, mean 1, std 2, in double (3
 * roundings in the kernel, 3 in the reference here: gamma_d(6) of v scale /
 * std + |mean| / std), then rounded once to float. */
static void check_assembled(float got, double v)
{
    CHECK_BOUND(got, (v * 0.1 - 1) / 2, ctest_round_bound((v * 0.1 - 1) / 2, (v * 0.1 + 1) / 2, 6));
}

static void test_batch_assemble(void)
{
    /* 3x2 gray image: rows {10, 20, 30}, {40, 50, 60} */
    uint8_t pixels[6] = { 10, 20, 30, 40, 50, 60 };
    sm_image img = { 3, 2, 1, pixels };
    const sm_image *imgs[1] = { &img };
    float d[6];
    int64_t shape[4] = { 1, 1, 2, 3 };
    sm_tensor out;
    sm_tensor_init(&out, d, 4, shape);
    sm_batch_params p = { 0.1, { 1, 0, 0, 0 }, { 2, 1, 1, 1 }, 0, 0, 0, 0 };
    sm_err err;
    CHECK(sm_batch_check(&err, &out, imgs, 1, &p) == SM_OK);
    sm_rng r;
    sm_rng_seed(&r, 1);
    sm_batch_assemble(&out, imgs, 1, &p, &r);
    for (int i = 0; i < 6; i++) check_assembled(d[i], pixels[i]);
    p.flip = 1;
    sm_batch_assemble(&out, imgs, 1, &p, &r);
    check_assembled(d[0], 30);
    check_assembled(d[5], 40);
    p.std[0] = 0;
    CHECK(sm_batch_check(&err, &out, imgs, 1, &p) == SM_EINVAL);
}

int main(void)
{
    RUN(test_groups);
    RUN(test_balanced_pairs);
    RUN(test_pk_batches);
    RUN(test_triplets);
    RUN(test_batch_assemble);
    return ctest_summary("sampler");
}
