// A stand-in, written for this project, for the AXI-stream side-channel structs of Vitis HLS's
// ap_axi_sdata.h, enough for C simulation of finn-hlslib (streamtools.h includes it; its
// Qdma2Stream_Batch / Stream2Qdma_Batch use qdma_axis). Not Xilinx's header: the fields and
// accessors only, no synthesis semantics. A side channel of width 0 is kept as one bit (the
// ap_int.h of C simulation has no zero-width integers); its value is never meaningful.
#ifndef BIREAL_AP_AXI_SDATA_H
#define BIREAL_AP_AXI_SDATA_H

#include "ap_int.h"

namespace bireal_axi {
template <int W>
using side_t = ap_uint<(W > 0 ? W : 1)>;

// The fields every AXI-stream word has: data, keep, strb, user, last, id, dest.
template <typename DataT, int D, int U, int TI, int TD>
struct word {
    DataT data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    side_t<U> user;
    ap_uint<1> last;
    side_t<TI> id;
    side_t<TD> dest;
};
}  // namespace bireal_axi

// AXI-stream word with signed data.
template <int D, int U = 0, int TI = 0, int TD = 0>
struct ap_axis : bireal_axi::word<ap_int<D>, D, U, TI, TD> {};

// AXI-stream word with unsigned data.
template <int D, int U = 0, int TI = 0, int TD = 0>
struct ap_axiu : bireal_axi::word<ap_uint<D>, D, U, TI, TD> {};

// QDMA stream word: the fields of ap_axiu, read and written through accessors.
template <int D, int U = 0, int TI = 0, int TD = 0>
struct qdma_axis : bireal_axi::word<ap_uint<D>, D, U, TI, TD> {
    ap_uint<D> get_data() const { return this->data; }
    void set_data(const ap_uint<D>& d) { this->data = d; }
    ap_uint<(D + 7) / 8> get_keep() const { return this->keep; }
    void set_keep(const ap_uint<(D + 7) / 8>& k) { this->keep = k; }
    ap_uint<(D + 7) / 8> get_strb() const { return this->strb; }
    void set_strb(const ap_uint<(D + 7) / 8>& s) { this->strb = s; }
    bireal_axi::side_t<U> get_user() const { return this->user; }
    void set_user(const bireal_axi::side_t<U>& u) { this->user = u; }
    ap_uint<1> get_last() const { return this->last; }
    void set_last(const ap_uint<1>& l) { this->last = l; }
    bireal_axi::side_t<TI> get_id() const { return this->id; }
    void set_id(const bireal_axi::side_t<TI>& i) { this->id = i; }
    bireal_axi::side_t<TD> get_dest() const { return this->dest; }
    void set_dest(const bireal_axi::side_t<TD>& d) { this->dest = d; }
};

#endif  // BIREAL_AP_AXI_SDATA_H
