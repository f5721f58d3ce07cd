# deps.sh — sourced by scripts/test, scripts/demo and scripts/bench: installs the Debian packages
# netc needs when they are missing (as root), or says exactly which are missing.
NETC_PACKAGES=(cmake pkg-config make gcc flex bison llvm-19-dev clang-19 libclang-rt-19-dev
  libcriterion-dev libcjson-dev liblapacke-dev libopenblas-dev
  python3-torch python3-torchvision python3-numpy python3-pytest python3-onnx python3-pil
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file lld)

netc_ensure_deps() {
  local missing=()
  for p in "${NETC_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "netc: missing Debian packages: ${missing[*]}" >&2
    echo "netc: install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
