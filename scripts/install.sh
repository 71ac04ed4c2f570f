#!/bin/sh
# Builds innfer in release mode and installs the C library, its header, pkg-config and CMake
# files, and the language bindings that exist in this checkout:
#
#     scripts/install.sh [PREFIX]        (default PREFIX: /usr/local)
#
# Installs
#   PREFIX/include/innfer.h                      C API (C99, C++ compatible)
#   PREFIX/include/innfer.hpp                    C++ wrapper (if bindings/cpp/innfer.hpp exists)
#   PREFIX/lib/libinnfer.a, libinnfer.so         static and shared library
#   PREFIX/lib/pkgconfig/innfer.pc               pkg-config --cflags --libs [--static] innfer
#   PREFIX/lib/cmake/innfer/innferConfig.cmake   find_package(innfer) -> innfer::innfer (shared)
#                                                and innfer::innfer_static
#   PREFIX/share/innfer/fortran/innfer.f90       Fortran module source (if bindings/fortran has it)
#   PREFIX/share/innfer/python/innfer.py         Python ctypes module (bindings/python/innfer/sampler.py)
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (default ./target), DESTDIR (staging).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${1:-/usr/local}
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
DEST=${DESTDIR:-}$PREFIX
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR="$TARGET_DIR"

cd "$ROOT"
"$CARGO" build --release --lib --manifest-path "$ROOT/Cargo.toml" -p innfer-capi
# The system libraries a static link needs (Libs.private), as rustc reports them.
NATIVE=$("$CARGO" rustc --release --lib --manifest-path "$ROOT/Cargo.toml" -p innfer-capi \
    --crate-type staticlib -- --print native-static-libs 2>&1 |
    sed -n 's/.*native-static-libs: *//p' | tail -n 1)
[ -n "$NATIVE" ] || NATIVE="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
LIBDIR=$TARGET_DIR/release

install -d "$DEST/include" "$DEST/lib/pkgconfig" "$DEST/lib/cmake/innfer"
install -m 644 "$ROOT/include/innfer.h" "$DEST/include/innfer.h"
install -m 644 "$LIBDIR/libinnfer.a" "$DEST/lib/libinnfer.a"
install -m 755 "$LIBDIR/libinnfer.so" "$DEST/lib/libinnfer.so"

cat > "$DEST/lib/pkgconfig/innfer.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: innfer
Description: Embeddable posterior sampler for invertible neural networks (FrEIA-compatible)
Version: $VERSION
Cflags: -I\${includedir}
Libs: -L\${libdir} -linnfer
Libs.private: $NATIVE
PC

# CMake package: innfer::innfer (shared, the default) and innfer::innfer_static.
CMAKE_NATIVE=$(printf '%s' "$NATIVE" | tr -s ' ' ';')
cat > "$DEST/lib/cmake/innfer/innferConfig.cmake" <<CM
# innfer CMake package. Usage:
#   find_package(innfer CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE innfer::innfer)          # shared library
#   target_link_libraries(app PRIVATE innfer::innfer_static)   # static library
get_filename_component(_innfer_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET innfer::innfer)
  add_library(innfer::innfer SHARED IMPORTED)
  set_target_properties(innfer::innfer PROPERTIES
    IMPORTED_LOCATION "\${_innfer_prefix}/lib/libinnfer.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "\${_innfer_prefix}/include")
endif()
if(NOT TARGET innfer::innfer_static)
  add_library(innfer::innfer_static STATIC IMPORTED)
  set_target_properties(innfer::innfer_static PROPERTIES
    IMPORTED_LOCATION "\${_innfer_prefix}/lib/libinnfer.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_innfer_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$CMAKE_NATIVE")
endif()
set(innfer_INCLUDE_DIRS "\${_innfer_prefix}/include")
set(innfer_LIBRARIES innfer::innfer)
unset(_innfer_prefix)
CM

cat > "$DEST/lib/cmake/innfer/innferConfigVersion.cmake" <<CV
# innfer $VERSION: compatible with requests for the same major version (for 0.x: the same
# minor version) that are not newer than this one.
set(PACKAGE_VERSION "$VERSION")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REGEX MATCH "^([0-9]+)\\\\.([0-9]+)" _innfer_have "\${PACKAGE_VERSION}")
  set(_innfer_have_major "\${CMAKE_MATCH_1}")
  set(_innfer_have_minor "\${CMAKE_MATCH_2}")
  if(PACKAGE_FIND_VERSION_MAJOR STREQUAL _innfer_have_major AND
     (NOT _innfer_have_major STREQUAL "0" OR PACKAGE_FIND_VERSION_MINOR STREQUAL _innfer_have_minor))
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CV

if [ -f "$ROOT/bindings/cpp/innfer.hpp" ]; then
    install -m 644 "$ROOT/bindings/cpp/innfer.hpp" "$DEST/include/innfer.hpp"
fi
if [ -f "$ROOT/bindings/fortran/innfer.f90" ]; then
    install -d "$DEST/share/innfer/fortran"
    install -m 644 "$ROOT/bindings/fortran/innfer.f90" "$DEST/share/innfer/fortran/innfer.f90"
fi
if [ -f "$ROOT/bindings/python/innfer/sampler.py" ]; then
    install -d "$DEST/share/innfer/python"
    install -m 644 "$ROOT/bindings/python/innfer/sampler.py" "$DEST/share/innfer/python/innfer.py"
fi

echo "innfer $VERSION installed in $DEST"
echo "  compile: cc app.c \$(PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig pkg-config --cflags --libs innfer) -Wl,-rpath,$PREFIX/lib"
