// Trigger top level (generated from the FirmwareSpec by l1ad firmware.wrapper).
// Preprocessing, both score networks (one hls4ml network function with two outputs),
// the two scores, thresholds, ABCD region bits and the trigger bit.
#include "trigger_top.h"

// Reconstruction error: sum over the score's features of cast(square, cast(diff, x - xhat)^2).
// The spec adds them one by one in the score type; sum_T is either that type (a chain of
// saturating adds) or, where provably identical, an exact type cast once at the end (an adder tree).
template <class diff_T, class square_T, class sum_T, class score_T, class xhat_T, int N>
score_T reconstruction_error(const ${nets_input_t} x[N_FEATURES], const xhat_T xhat[N_FEATURES], const int features[N]) {
    #pragma HLS INLINE
    sum_T total = 0;
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        diff_T d = x[features[i]] - xhat[features[i]];
        square_T s = d * d;
        total += s;
    }
    return score_T(total);
}

// Latent norm: sum over the score's outputs of cast(square, mu^2), mu the encoder's output
// (the latent mean); sum_T as above.
template <class square_T, class sum_T, class score_T, class mu_T, int N_MU, int N>
score_T latent_norm(const mu_T mu[N_MU], const int outputs[N]) {
    #pragma HLS INLINE
    sum_T total = 0;
    for (int i = 0; i < N; i++) {
        #pragma HLS UNROLL
        square_T s = mu[outputs[i]] * mu[outputs[i]];
        total += s;
    }
    return score_T(total);
}

void trigger_top(
    const hw_word_t objects[N_OBJECTS][3],
    score1_t &r1, score2_t &r2,
    ap_uint<1> &region_a, ap_uint<1> &region_b, ap_uint<1> &region_c, ap_uint<1> &region_d,
    ap_uint<1> &trigger
) {
    #pragma HLS ARRAY_PARTITION variable=objects complete dim=0
    #pragma HLS PIPELINE II=1

    // ---- preprocessing: (word - offset) >> shift, then the cast to the input type
    ${nets_input_t} x[N_FEATURES];
    #pragma HLS ARRAY_PARTITION variable=x complete dim=0
${preprocessing}

    // ---- both score networks, side by side
    ${ae1_out_t} xhat1[${n_out1}];
    ${ae2_out_t} xhat2[${n_out2}];
    #pragma HLS ARRAY_PARTITION variable=xhat1 complete dim=0
    #pragma HLS ARRAY_PARTITION variable=xhat2 complete dim=0
    ${nets}(x, xhat1, xhat2);

    // ---- scores
    static const int features1[${n_outputs1}] = {${outputs1}};
    static const int features2[${n_outputs2}] = {${outputs2}};
    score1_t e1 = ${score1_call};
    score2_t e2 = ${score2_call};

    // ---- thresholds and regions
    const score1_t threshold_r1 = ${threshold_r1};
    const score2_t threshold_r2 = ${threshold_r2};
    bool high1 = e1 > threshold_r1;
    bool high2 = e2 > threshold_r2;
    ap_uint<1> a = high1 && high2;
    ap_uint<1> b = high1 && !high2;
    ap_uint<1> c = !high1 && high2;
    ap_uint<1> d = !high1 && !high2;

    r1 = e1;
    r2 = e2;
    region_a = a;
    region_b = b;
    region_c = c;
    region_d = d;
    trigger = ${trigger_expr};
}
