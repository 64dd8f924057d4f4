// fmt's compiled half, built once for the static build.
//
// Debian's libfmt-dev ships only libfmt.so, so the static binaries used fmt in header-only mode,
// which compiles fmt's whole implementation (format-inl.h) into every translation unit: about a
// quarter of each file's compile time at -O2 (measured: cli/ctl_snapshots.cpp 20.3 s header-only,
// 14.8 s without). Here it is compiled once: format-inl.h defines fmt's out-of-line functions
// (FMT_FUNC is empty without FMT_HEADER_ONLY), and the templates the headers declare `extern` or
// leave to the library are instantiated for char, the only character type bulkhead formats.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;

} // namespace detail
FMT_END_NAMESPACE
