// A stand-in, written for this project, for Vitis HLS's hls_vector.h in C simulation: a
// fixed-size array of N elements with element access, broadcast construction, element-wise
// arithmetic and comparison. finn-plus's npy2vectorstream.hpp includes it in every generated
// cppsim source; only the HLS variants with hls::vector streams use it.
#ifndef BIREAL_HLS_VECTOR_H
#define BIREAL_HLS_VECTOR_H

#include <array>
#include <cstddef>

namespace hls {

template <typename T, std::size_t N>
class vector {
    std::array<T, N> data_{};

public:
    vector() = default;
    explicit vector(const T& value) { data_.fill(value); }

    T& operator[](std::size_t i) { return data_[i]; }
    const T& operator[](std::size_t i) const { return data_[i]; }
    static constexpr std::size_t size() { return N; }

    vector& operator+=(const vector& o) {
        for (std::size_t i = 0; i < N; i++) data_[i] += o.data_[i];
        return *this;
    }
    vector& operator-=(const vector& o) {
        for (std::size_t i = 0; i < N; i++) data_[i] -= o.data_[i];
        return *this;
    }
    vector& operator*=(const vector& o) {
        for (std::size_t i = 0; i < N; i++) data_[i] *= o.data_[i];
        return *this;
    }
    friend vector operator+(vector a, const vector& b) { return a += b; }
    friend vector operator-(vector a, const vector& b) { return a -= b; }
    friend vector operator*(vector a, const vector& b) { return a *= b; }
    friend bool operator==(const vector& a, const vector& b) {
        for (std::size_t i = 0; i < N; i++)
            if (!(a.data_[i] == b.data_[i])) return false;
        return true;
    }
    friend bool operator!=(const vector& a, const vector& b) { return !(a == b); }
};

}  // namespace hls

#endif  // BIREAL_HLS_VECTOR_H
