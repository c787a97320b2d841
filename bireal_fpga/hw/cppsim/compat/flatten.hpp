// A stand-in, written for this project, for flatten.hpp of finn-hlslib releases newer than the
// one in use: the packing helpers that finn-plus's npy2apintstream.hpp needs. This folder comes
// after finn-hlslib on the include path, so a finn-hlslib that ships its own flatten.hpp wins.
//   width_v<T>            bits of T (ap_int / ap_uint: their width; other types: sizeof * 8)
//   flatten(T (&)[N])     the N elements packed into an ap_uint, element 0 in the low bits
//   unflatten(T (&)[N], packed)   the inverse
#ifndef FLATTEN_HPP
#define FLATTEN_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ap_int.h"

template <typename T>
struct bireal_width {
    static constexpr unsigned value = sizeof(T) * 8;
};
template <int W>
struct bireal_width<ap_int<W>> {
    static constexpr unsigned value = W;
};
template <int W>
struct bireal_width<ap_uint<W>> {
    static constexpr unsigned value = W;
};
template <typename T>
constexpr unsigned width_v = bireal_width<T>::value;

template <typename T>
ap_uint<width_v<T>> bireal_to_bits(const T& v) {
    if constexpr (std::is_floating_point<T>::value) {
        std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits;
        std::memcpy(&bits, &v, sizeof(T));
        return bits;
    } else {
        return ap_uint<width_v<T>>(v);
    }
}

template <typename T>
T bireal_from_bits(const ap_uint<width_v<T>>& bits) {
    if constexpr (std::is_floating_point<T>::value) {
        std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> raw = bits.to_uint64();
        T v;
        std::memcpy(&v, &raw, sizeof(T));
        return v;
    } else {
        T v;
        v = bits;  // same width: the bits, reinterpreted
        return v;
    }
}

// Elements of up to 64 bits are gathered into 64-bit words first and the wide word written
// one 64-bit slice at a time: a range assignment into a wide ap_uint costs a shift of the
// whole word, and the weight streams of wide MVAUs are packed from 1-bit elements.
template <typename T, std::size_t N>
ap_uint<N * width_v<T>> flatten(T const (&buffer)[N]) {
    constexpr std::size_t W = width_v<T>;
    constexpr std::size_t BITS = N * W;
    ap_uint<BITS> flat = 0;
    if constexpr (W <= 64) {
        constexpr std::size_t WORDS = (BITS + 63) / 64;
        std::uint64_t words[WORDS] = {};
        const std::uint64_t mask = W == 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << W) - 1;
        for (std::size_t j = 0; j < N; j++) {
            const std::uint64_t bits = bireal_to_bits(buffer[j]).to_uint64() & mask;
            const std::size_t p = j * W, k = p / 64, off = p % 64;
            words[k] |= bits << off;
            if (off + W > 64) words[k + 1] |= bits >> (64 - off);
        }
        for (std::size_t k = 0; k < WORDS; k++) {
            const std::size_t hi = (k + 1) * 64 < BITS ? (k + 1) * 64 - 1 : BITS - 1;
            flat(hi, k * 64) = ap_uint<64>(words[k]);
        }
    } else {
        for (std::size_t j = 0; j < N; j++) flat((j + 1) * W - 1, j * W) = bireal_to_bits(buffer[j]);
    }
    return flat;
}

template <typename T, std::size_t N, int PW>
void unflatten(T (&buffer)[N], const ap_uint<PW>& flat) {
    constexpr std::size_t W = width_v<T>;
    static_assert(N * W <= PW, "unflatten: packed word narrower than the elements");
    for (std::size_t j = 0; j < N; j++) {
        ap_uint<W> bits = flat((j + 1) * W - 1, j * W);
        buffer[j] = bireal_from_bits<T>(bits);
    }
}

#endif  // FLATTEN_HPP
