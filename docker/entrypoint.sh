#!/bin/bash
# The image's entrypoint: make Vivado usable when it is mounted, then run the command as given.
#
#   VIVADO_SETTINGS  a settings64.sh to source (overrides the search below)
#   XILINX_ROOT      where Xilinx tools are mounted (default /tools/Xilinx); the newest
#                    settings64.sh under it is sourced, in either layout:
#                      $XILINX_ROOT/Vivado/<version>/settings64.sh   (Vivado <= 2024.2)
#                      $XILINX_ROOT/<version>/Vivado/settings64.sh   (Vivado >= 2025.1)
# One line on stderr says which file was sourced. Without the folder the command runs plainly.
# The command replaces this script (exec): its exit status is the container's.

xilinx_root=${XILINX_ROOT:-/tools/Xilinx}

say() { echo "entrypoint: $*" >&2; }

# the newest settings64.sh under $1 by version number, or nothing
newest_settings() {
    local root=$1 f version
    for f in "$root"/Vivado/*/settings64.sh "$root"/*/Vivado/settings64.sh; do
        [[ -f $f ]] || continue
        if [[ $f == "$root"/Vivado/* ]]; then
            version=$(basename "$(dirname "$f")")
        else
            version=$(basename "$(dirname "$(dirname "$f")")")
        fi
        printf '%s\t%s\n' "$version" "$f"
    done | sort -t $'\t' -k1,1V | tail -n 1 | cut -f 2
}

settings=
if [[ -n ${VIVADO_SETTINGS:-} ]]; then
    if [[ ! -f $VIVADO_SETTINGS ]]; then
        say "VIVADO_SETTINGS=$VIVADO_SETTINGS is not a file"
        exit 2
    fi
    settings=$VIVADO_SETTINGS
elif [[ -d $xilinx_root ]]; then
    settings=$(newest_settings "$xilinx_root")
    [[ -n $settings ]] || say "no Vivado settings64.sh under $xilinx_root: running without Vivado"
fi

if [[ -n $settings ]]; then
    say "sourcing Vivado settings $settings"
    # Xilinx's script may print: keep the command's stdout its own
    # shellcheck source=/dev/null
    source "$settings" >&2
fi

if [[ $# -eq 0 ]]; then
    set -- bash
fi
exec "$@"
