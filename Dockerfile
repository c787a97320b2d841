# bireal-fpga in a container (README, "Docker"):
#   docker build -t bireal-fpga .        (offline from ./wheelhouse when it holds wheels: make wheelhouse)
#   docker run --rm -v /tools/Xilinx:/tools/Xilinx -v $PWD/out:/out bireal-fpga make build BOARD=ZCU104
# A plain command after the image name runs as given, in the project folder, with its venv on PATH
# and Vivado's settings sourced when /tools/Xilinx is mounted (docker/entrypoint.sh).
# Outputs and tool caches go to /out; `--user $(id -u):$(id -g)` makes them the caller's.
FROM debian:bookworm-slim AS base
# python3 + venv (the project's 3.11), make and g++ (Verilator builds C++), zlib headers, Debian's
# full perl (Verilator's wrapper script), git, certificates, tini (PID 1: signals, zombies).
# Versions are not pinned: bookworm's point releases replace them, and an old pin stops resolving.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv make g++ zlib1g-dev perl git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bireal-fpga

# The third-party packages (the Makefile's venv recipe): from ./wheelhouse alone when it holds
# wheels, else from the package index. A stage of its own: the wheels stay out of the image, and
# the layer depends on requirements.txt and the Makefile only. (requirements.txt in the second
# COPY only makes the pattern match when there is no wheelhouse.)
FROM base AS packages
COPY Makefile requirements.txt ./
COPY requirements.txt wheelhouse* /tmp/wheelhouse/
RUN set -- /tmp/wheelhouse/*.whl; if [ -e "$1" ]; then \
      PIP_NO_CACHE_DIR=1 make .venv/.deps-installed WHEELHOUSE=/tmp/wheelhouse; \
    else \
      PIP_NO_CACHE_DIR=1 make .venv/.deps-installed; \
    fi

# finn-hlslib (header-only, BSD-3) for cppsim, at the commit the project is checked with
# (bireal_fpga/tools.py FINN_HLSLIB_COMMIT): from ./finn-hlslib in the context when it is there
# (offline builds; `make wheelhouse` copies one), else cloned. (The Makefile in the COPY only
# makes the pattern match when there is none.)
FROM base AS hlslib
COPY Makefile finn-hlslib* /tmp/finn-hlslib/
RUN if [ -f /tmp/finn-hlslib/bnn-library.h ]; then mv /tmp/finn-hlslib /opt/finn-hlslib; \
    else git clone -q https://github.com/Xilinx/finn-hlslib /opt/finn-hlslib \
      && git -C /opt/finn-hlslib checkout -q cc8db47b59555df8b3993666cf2cfb6b9e57ff5a; fi \
 && rm -rf /opt/finn-hlslib/.git /opt/finn-hlslib/tb /opt/finn-hlslib/Makefile

# The project's files, less the wheelhouse and finn-hlslib (the context carries them for the
# stages above).
FROM base AS source
COPY . /src/
RUN rm -rf /src/wheelhouse /src/finn-hlslib

FROM base
COPY --from=packages /opt/bireal-fpga/.venv ./.venv
COPY --from=hlslib /opt/finn-hlslib /opt/finn-hlslib
COPY --from=source /src/ ./
# The project itself (editable, no index). The packages stage was built from this very
# requirements.txt, so its stamp is made current first, and `make build` never reinstalls.
# Bytecode is compiled now: at run time nothing writes into /opt/bireal-fpga (any uid reads it).
RUN touch .venv/.deps-installed \
 && make venv \
 && .venv/bin/python -m compileall -q bireal_fpga \
 && find . -path ./.venv -prune -o -exec chmod a+rX {} + \
 && mkdir -m 1777 /out
# Outputs in the mounted /out; HOME and the caches writable for any uid: the Verilator/Yosys
# result caches and YoWASP's compiled Yosys (~210 MB, ~1 min to make) persist in /out/.cache.
ENV PATH=/opt/bireal-fpga/.venv/bin:$PATH \
    HOME=/tmp \
    BUILD_ROOT=/out \
    BITSTREAMS=/out/bitstreams \
    XDG_CACHE_HOME=/out/.cache \
    FINN_HLSLIB=/opt/finn-hlslib \
    PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/bireal-fpga/docker/entrypoint.sh"]
CMD ["make", "build", "BOARD=ZCU104"]
