// The project's helpers for its own cppsim drivers (bireal_fpga/cppsim/drivers.py): checks that a
// finn-hlslib function consumed and produced exactly the words of a frame, and the one stream
// reordering the drivers need (a transpose of fixed-size blocks of words). No layer arithmetic:
// the words are moved, never looked into. Written for this project, not part of finn-hlslib.
#ifndef BIREAL_DRIVER_HPP
#define BIREAL_DRIVER_HPP

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <hls_stream.h>

namespace bireal {

// Exit 1, naming the stream, unless `s` holds exactly `words` words.
template <typename T>
void expect_words(hls::stream<T>& s, std::size_t words, char const* what) {
    if (s.size() != words) {
        std::fprintf(stderr, "cppsim driver: %s holds %zu words, expected %zu\n", what, s.size(),
                     words);
        std::exit(1);
    }
}

// Moves `blocks` blocks of rows*cols words from `in` to `out`, each block transposed: the words
// come in row-major order (row r, column c at r*cols + c) and leave column-major (c, r).
template <typename T>
void transpose_blocks(hls::stream<T>& in, hls::stream<T>& out, std::size_t blocks,
                      std::size_t rows, std::size_t cols) {
    std::vector<T> block(rows * cols);
    for (std::size_t b = 0; b < blocks; b++) {
        for (std::size_t i = 0; i < rows * cols; i++) block[i] = in.read();
        for (std::size_t c = 0; c < cols; c++)
            for (std::size_t r = 0; r < rows; r++) out.write(block[r * cols + c]);
    }
}

// Moves every word of `in` to `out`, converted to `To` (a label type to its plain ap_(u)int).
template <typename To, typename From>
void convert_words(hls::stream<From>& in, hls::stream<To>& out) {
    while (!in.empty()) out.write(To(in.read()));
}

}  // namespace bireal

#endif  // BIREAL_DRIVER_HPP
