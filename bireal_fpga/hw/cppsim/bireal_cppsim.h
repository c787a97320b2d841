// Included first in every cppsim compile (g++ -include): what Vitis's headers would have
// declared before finn-plus's generated code and cnpy.h. cnpy.h names the type `half` (Vitis's
// hls_half.h), which the ap_types of hls4ml declare only with _AP_ENABLE_HALF_; a declaration
// is enough for its type mapping. Nothing here may include ap_int.h: the generated source
// defines AP_INT_MAX_W before its first include. This project's stand-in, not a Xilinx header.
#ifndef BIREAL_CPPSIM_H
#define BIREAL_CPPSIM_H

#ifndef _HLS_HALF_DEFINED_
class half;
#endif

#endif  // BIREAL_CPPSIM_H
