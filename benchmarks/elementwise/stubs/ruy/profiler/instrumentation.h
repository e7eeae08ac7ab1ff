/* Stands in for ruy's profiler header, which TFLite Micro's reference kernels include for a scope label
 * that its builds compile to nothing. Written for benchmarks/elementwise.py; not ruy's code. */
#ifndef RUY_PROFILER_INSTRUMENTATION_H_STUB
#define RUY_PROFILER_INSTRUMENTATION_H_STUB

namespace ruy {
namespace profiler {
class ScopeLabel {
 public:
  template <typename... Args>
  explicit ScopeLabel(Args...) {}
};
}  // namespace profiler
}  // namespace ruy

#endif
