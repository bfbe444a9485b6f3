/*
 * sampler.c — seeded index sampling for training and batch assembly.
 *
 * Images are 0..n-1 with non-negative identity labels. sm_groups_build sorts
 * the images by (label, index) once; the samplers then draw from the groups
 * with an explicit xoshiro generator (sm_rng), so a seed fixes every index:
 *   - balanced pairs: per image one positive and one negative partner;
 *   - P x K batches: P distinct identities, K images each;
 *   - random triplets (anchor, positive, negative).
 * sm_batch_assemble turns 8-bit images into a normalised float batch
 * [N,C,H,W], with optional flip / shift / brightness / contrast drawn per
 * image. Nothing here allocates: scratch memory comes from the caller.
 */
#include <stdlib.h>
#include <string.h>
#include "sm.h"

/* ---- groups ---------------------------------------------------------------------- */

int64_t sm_groups_work_len(int64_t n) { return 3 * n + 1; }

sm_status sm_labels_check(sm_err *err, const int32_t *labels, int64_t n)
{
    if (n < 0 || n > INT32_MAX)
        return sm_fail(err, SM_EINVAL, "label count %lld out of range", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0)
            return sm_fail(err, SM_EINVAL, "label %lld is negative (%d)", (long long)i, (int)labels[i]);
    return SM_OK;
}

static int compare_keys(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* work layout: members [n], group_of [n], starts [count + 1 <= n + 1]. */
void sm_groups_build(sm_groups *g, int64_t *work, const int32_t *labels, int64_t n)
{
    int64_t *members = work, *group_of = work + n, *starts = work + 2 * n;
    /* key = label in the high 32 bits, index in the low: sorts by (label, index). */
    for (int64_t i = 0; i < n; i++)
        members[i] = ((int64_t)labels[i] << 32) | i;
    qsort(members, (size_t)n, sizeof *members, compare_keys);
    int64_t count = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = members[k] & 0xffffffff;
        if (k == 0 || labels[i] != labels[members[k - 1]])
            starts[count++] = k;
        members[k] = i;
        group_of[i] = count - 1;
    }
    starts[count] = n;
    g->n = n;
    g->count = count;
    g->members = members;
    g->starts = starts;
    g->group_of = group_of;
}

static int64_t group_size(const sm_groups *g, int64_t grp) { return g->starts[grp + 1] - g->starts[grp]; }

static int64_t random_member(const sm_groups *g, int64_t grp, sm_rng *r)
{
    return g->members[g->starts[grp] + (int64_t)sm_rng_below(r, (uint64_t)group_size(g, grp))];
}

/* A member of grp other than image i (grp must have >= 2 members): draws
 * one of the first size-1 slots and swaps i's slot for the last one. */
static int64_t random_other_member(const sm_groups *g, int64_t grp, int64_t i, sm_rng *r)
{
    int64_t size = group_size(g, grp);
    int64_t j = g->members[g->starts[grp] + (int64_t)sm_rng_below(r, (uint64_t)(size - 1))];
    return j == i ? g->members[g->starts[grp] + size - 1] : j;
}

/* A group other than grp, uniformly (needs >= 2 groups). */
static int64_t random_other_group(const sm_groups *g, int64_t grp, sm_rng *r)
{
    int64_t h = (int64_t)sm_rng_below(r, (uint64_t)(g->count - 1));
    return h >= grp ? h + 1 : h;
}

int64_t sm_groups_count_min(const sm_groups *g, int64_t min_size)
{
    int64_t c = 0;
    for (int64_t k = 0; k < g->count; k++)
        c += group_size(g, k) >= min_size;
    return c;
}

/* work[0..] = the groups with >= 2 members; returns how many. */
static int64_t list_eligible(int64_t *work, const sm_groups *g)
{
    int64_t c = 0;
    for (int64_t k = 0; k < g->count; k++)
        if (group_size(g, k) >= 2) work[c++] = k;
    return c;
}

static void shuffle(int64_t *a, int64_t n, sm_rng *r)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sm_rng_below(r, (uint64_t)(i + 1));
        int64_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

void sm_permutation(int64_t *out, int64_t n, sm_rng *r)
{
    for (int64_t i = 0; i < n; i++) out[i] = i;
    shuffle(out, n, r);
}

/* ---- balanced pairs ------------------------------------------------------------- */

sm_status sm_balanced_pairs_check(sm_err *err, const sm_groups *g)
{
    if (g->count < 2)
        return sm_fail(err, SM_EINVAL, "need at least 2 identities for negative pairs, got %lld",
                       (long long)g->count);
    return SM_OK;
}

int64_t sm_balanced_pairs_count(const sm_groups *g)
{
    int64_t positives = 0;
    for (int64_t i = 0; i < g->n; i++)
        positives += group_size(g, g->group_of[i]) >= 2;
    return positives + g->n;
}

static void shuffle_pairs(int64_t *left, int64_t *right, uint8_t *same, int64_t n, sm_rng *r)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sm_rng_below(r, (uint64_t)(i + 1));
        int64_t tl = left[i]; left[i] = left[j]; left[j] = tl;
        int64_t tr = right[i]; right[i] = right[j]; right[j] = tr;
        uint8_t ts = same[i]; same[i] = same[j]; same[j] = ts;
    }
}

void sm_balanced_pairs(int64_t *left, int64_t *right, uint8_t *same, const sm_groups *g, sm_rng *r)
{
    int64_t k = 0;
    for (int64_t i = 0; i < g->n; i++) {
        int64_t grp = g->group_of[i];
        if (group_size(g, grp) >= 2) {
            left[k] = i;
            right[k] = random_other_member(g, grp, i, r);
            same[k++] = 1;
        }
        left[k] = i;
        right[k] = random_member(g, random_other_group(g, grp, r), r);
        same[k++] = 0;
    }
    shuffle_pairs(left, right, same, k, r);
}

/* ---- P x K batches ---------------------------------------------------------------- */

sm_status sm_pk_check(sm_err *err, const sm_groups *g, int64_t P, int64_t K)
{
    if (P < 2) return sm_fail(err, SM_EINVAL, "P must be >= 2, got %lld", (long long)P);
    if (K < 2) return sm_fail(err, SM_EINVAL, "K must be >= 2, got %lld", (long long)K);
    if (P > INT32_MAX / K) return sm_fail(err, SM_EINVAL, "P*K too large");
    int64_t eligible = sm_groups_count_min(g, 2);
    if (eligible < P)
        return sm_fail(err, SM_EINVAL, "P = %lld identities needed, only %lld have 2 or more images",
                       (long long)P, (long long)eligible);
    return SM_OK;
}

int64_t sm_pk_batch_count(const sm_groups *g, int64_t P)
{
    return (sm_groups_count_min(g, 2) + P - 1) / P;
}

/* K images of grp into out: a uniform K-subset (selection sampling) when the
 * group is big enough, else every member plus draws with replacement; then
 * shuffled so the order carries no information. */
static void sample_identity(int64_t *out, const sm_groups *g, int64_t grp, int64_t K, sm_rng *r)
{
    int64_t size = group_size(g, grp), base = g->starts[grp], chosen = 0;
    if (size >= K) {
        for (int64_t t = 0; t < size && chosen < K; t++)
            if ((int64_t)sm_rng_below(r, (uint64_t)(size - t)) < K - chosen)
                out[chosen++] = g->members[base + t];
    } else {
        for (; chosen < size; chosen++) out[chosen] = g->members[base + chosen];
        for (; chosen < K; chosen++) out[chosen] = random_member(g, grp, r);
    }
    shuffle(out, K, r);
}

void sm_pk_batches(int64_t *out, int64_t *work, const sm_groups *g, int64_t P, int64_t K, sm_rng *r)
{
    int64_t eligible = list_eligible(work, g);
    shuffle(work, eligible, r);
    int64_t batches = (eligible + P - 1) / P;
    for (int64_t b = 0; b < batches; b++)
        for (int64_t p = 0; p < P; p++) {
            int64_t slot = b * P + p;
            /* past the end: wrap to the start of the order; those identities
             * are not in the last batch since eligible >= P */
            int64_t grp = work[slot < eligible ? slot : slot - eligible];
            sample_identity(out + slot * K, g, grp, K, r);
        }
}

/* ---- triplets ------------------------------------------------------------------------ */

sm_status sm_triplets_check(sm_err *err, const sm_groups *g)
{
    if (g->count < 2)
        return sm_fail(err, SM_EINVAL, "need at least 2 identities, got %lld", (long long)g->count);
    if (sm_groups_count_min(g, 2) < 1)
        return sm_fail(err, SM_EINVAL, "need an identity with 2 or more images");
    return SM_OK;
}

void sm_random_triplets(int64_t *anchor, int64_t *positive, int64_t *negative, int64_t n,
                        int64_t *work, const sm_groups *g, sm_rng *r)
{
    int64_t eligible = list_eligible(work, g);
    for (int64_t t = 0; t < n; t++) {
        int64_t grp = work[sm_rng_below(r, (uint64_t)eligible)];
        anchor[t] = random_member(g, grp, r);
        positive[t] = random_other_member(g, grp, anchor[t], r);
        negative[t] = random_member(g, random_other_group(g, grp, r), r);
    }
}

/* ---- batch assembly ------------------------------------------------------------------ */

sm_status sm_batch_check(sm_err *err, const sm_tensor *out, const sm_image *const *images,
                         int64_t n, const sm_batch_params *p)
{
    if (n < 1) return sm_fail(err, SM_EINVAL, "batch needs at least one image");
    const sm_image *first = images[0];
    for (int64_t i = 1; i < n; i++)
        if (images[i]->width != first->width || images[i]->height != first->height ||
            images[i]->channels != first->channels)
            return sm_fail(err, SM_EINVAL, "image %lld is %dx%dx%d, image 0 is %dx%dx%d", (long long)i,
                           images[i]->width, images[i]->height, images[i]->channels,
                           first->width, first->height, first->channels);
    if (out->ndim != 4 || out->shape[0] != n || out->shape[1] != first->channels ||
        out->shape[2] != first->height || out->shape[3] != first->width || !sm_tensor_is_contiguous(out))
        return sm_fail(err, SM_EINVAL, "output must be a contiguous [%lld,%d,%d,%d] tensor", (long long)n,
                       first->channels, first->height, first->width);
    if (!(p->flip >= 0 && p->flip <= 1)) return sm_fail(err, SM_EINVAL, "flip must be a probability 0..1");
    if (p->shift < 0 || p->shift > SM_IMAGE_MAX_SIDE) return sm_fail(err, SM_EINVAL, "shift must be 0..%d", SM_IMAGE_MAX_SIDE);
    if (!(p->brightness >= 0 && p->brightness <= 1)) return sm_fail(err, SM_EINVAL, "brightness must be 0..1");
    if (!(p->contrast >= 0 && p->contrast <= 1)) return sm_fail(err, SM_EINVAL, "contrast must be 0..1");
    for (int c = 0; c < first->channels; c++)
        if (p->std[c] == 0) return sm_fail(err, SM_EINVAL, "std of channel %d is 0", c + 1);
    return SM_OK;
}

/* One image's random transform (identity when augmentation is off). */
typedef struct { int flip; int64_t dx, dy; double brightness, contrast; } augment;

static double symmetric(sm_rng *r, double amount) { return (2 * sm_rng_uniform(r) - 1) * amount; }

static augment draw_augment(const sm_batch_params *p, sm_rng *r)
{
    augment a = { 0, 0, 0, 1, 1 };
    if (p->flip > 0) a.flip = sm_rng_uniform(r) < p->flip;
    if (p->shift > 0) {
        a.dx = (int64_t)sm_rng_below(r, (uint64_t)(2 * p->shift + 1)) - p->shift;
        a.dy = (int64_t)sm_rng_below(r, (uint64_t)(2 * p->shift + 1)) - p->shift;
    }
    if (p->brightness > 0) a.brightness = 1 + symmetric(r, p->brightness);
    if (p->contrast > 0) a.contrast = 1 + symmetric(r, p->contrast);
    return a;
}

static double mean_pixel(const sm_image *img)
{
    size_t n = (size_t)img->width * img->height * img->channels;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += img->data[i];
    return n ? (double)sum / (double)n : 0;
}

/* Writes one image's [C,H,W] block: out(x, y) = in(x', y - dy) with x' the
 * (possibly mirrored) column of x - dx, zero outside. */
static void assemble_one(float *out, const sm_image *img, const augment *a, const sm_batch_params *p)
{
    int64_t W = img->width, H = img->height, C = img->channels;
    int photometric = a->brightness != 1 || a->contrast != 1;
    double m = photometric ? mean_pixel(img) : 0;
    for (int64_t c = 0; c < C; c++) {
        double mul = p->scale / p->std[c], add = -p->mean[c] / p->std[c];
        for (int64_t y = 0; y < H; y++) {
            float *row = out + (c * H + y) * W;
            int64_t sy = y - a->dy;
            for (int64_t x = 0; x < W; x++) {
                int64_t sx = x - a->dx;
                double v = 0;
                if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
                    int64_t col = a->flip ? W - 1 - sx : sx;
                    v = img->data[(sy * W + col) * C + c];
                }
                if (photometric) {
                    v = ((v - m) * a->contrast + m) * a->brightness;
                    v = v < 0 ? 0 : v > 255 ? 255 : v;
                }
                row[x] = (float)(v * mul + add);
            }
        }
    }
}

void sm_batch_assemble(sm_tensor *out, const sm_image *const *images, int64_t n,
                       const sm_batch_params *p, sm_rng *r)
{
    int64_t block = out->shape[1] * out->shape[2] * out->shape[3];
    for (int64_t i = 0; i < n; i++) {
        augment a = draw_augment(p, r);
        assemble_one(out->data + i * block, images[i], &a, p);
    }
}
