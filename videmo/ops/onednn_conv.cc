// 2-D convolution through oneDNN, as three XLA FFI handlers for the CPU platform.
//
//   videmo_onednn_conv_fwd          x [N, H, W, Ci], w [KH, KW, Ci, Co]   -> y  [N, OH, OW, Co]
//   videmo_onednn_conv_bwd_data     dy [N, OH, OW, Co], w [KH, KW, Ci, Co] -> dx [N, H, W, Ci]
//   videmo_onednn_conv_bwd_weights  x [N, H, W, Ci], dy [N, OH, OW, Co]   -> dw [KH, KW, Ci, Co]
//
// Activations are NHWC and kernels HWIO (flax's layouts), float32 or bfloat16 (the same type
// for every operand). Attributes: stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right.
// No dilation, no groups: videmo/ops/conv.py sends only such convolutions here.
//
// oneDNN picks its own blocked layout for the weights (format "any"); the primitive, that
// layout and the reorder between it and HWIO are made once per shape and kept in a cache.
// oneDNN fixes a primitive's thread count when it makes it (with OpenMP, omp_get_max_threads()
// of the creating thread: its kernels partition the work for that many), so the cache is keyed
// by the calling thread's omp_get_max_threads() too: a caller with another OpenMP thread count
// (OMP_NUM_THREADS, omp_set_num_threads) gets a primitive made for its own.
// Primitives run with a user-provided scratchpad, so one primitive may run on several threads
// at once (XLA runs the shards of a data-parallel step concurrently).
//
// VidemoConvSupported asks, for one shape, dtype and direction, whether oneDNN can make the
// primitive on this machine (it makes and keeps it, so a run with the same thread count finds it
// ready); Python asks it
// at trace time (videmo/ops/onednn_conv.py) and sends what oneDNN refuses, e.g. bfloat16 on a
// CPU without AVX512-BF16 or AMX, to XLA's convolution instead of failing inside the step.
//
// Built by videmo/ops/native_build.py against oneDNN 3.x (the onednn-cpu-gomp wheel and its
// matching headers, onednn-devel-cpu-gomp) and jaxlib's FFI headers.

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

enum class Kind : int { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

// The shape of one convolution: everything a primitive depends on.
struct Shape {
  int64_t n, h, w, ci, kh, kw, co, oh, ow;
  int64_t stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right;
  memory::data_type type;
};

// The shape, dtype and direction, and the OpenMP thread count the primitive is made for.
using Key = std::array<int64_t, 18>;

Key MakeKey(const Shape& s, Kind kind, int threads) {
  return {s.n, s.h, s.w, s.ci, s.kh, s.kw, s.co, s.oh, s.ow, s.stride_h, s.stride_w,
          s.pad_top, s.pad_bottom, s.pad_left, s.pad_right,
          static_cast<int64_t>(s.type), static_cast<int64_t>(kind), threads};
}

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A primitive for one shape and direction, with what running it needs.
struct Plan {
  dnnl::primitive conv;
  memory::desc weights_plain;  // HWIO, as JAX holds the kernel
  memory::desc weights_inner;  // the layout the primitive wants
  bool reorder = false;        // weights_inner differs from HWIO
  dnnl::reorder weights_reorder;
  memory::desc src, dst;       // NHWC activations (for backward data: diff_dst, diff_src)
  memory::desc scratchpad;
};

struct Descs {
  memory::desc x, w_any, w_plain, y;
  memory::dims strides, pad_l, pad_r;
};

Descs MakeDescs(const Shape& s) {
  return {memory::desc({s.n, s.ci, s.h, s.w}, s.type, tag::nhwc),
          memory::desc({s.co, s.ci, s.kh, s.kw}, s.type, tag::any),
          memory::desc({s.co, s.ci, s.kh, s.kw}, s.type, tag::hwio),
          memory::desc({s.n, s.co, s.oh, s.ow}, s.type, tag::nhwc),
          {s.stride_h, s.stride_w}, {s.pad_top, s.pad_left}, {s.pad_bottom, s.pad_right}};
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Descs& d) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x,
      d.w_any, d.y, d.strides, d.pad_l, d.pad_r, UserScratchpad());
}

std::unique_ptr<Plan> MakePlan(const Shape& s, Kind kind) {
  Descs d = MakeDescs(s);
  auto plan = std::make_unique<Plan>();
  plan->weights_plain = d.w_plain;
  auto forward = ForwardDesc(d);
  if (kind == Kind::kForward) {
    plan->conv = dnnl::convolution_forward(forward);
    plan->weights_inner = forward.weights_desc();
    plan->src = forward.src_desc();
    plan->dst = forward.dst_desc();
    plan->scratchpad = forward.scratchpad_desc();
  } else if (kind == Kind::kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, d.x, d.w_any, d.y, d.strides, d.pad_l,
        d.pad_r, forward, UserScratchpad());
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->weights_inner = pd.weights_desc();
    plan->src = pd.diff_dst_desc();
    plan->dst = pd.diff_src_desc();
    plan->scratchpad = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, d.x, d.w_any, d.y, d.strides, d.pad_l,
        d.pad_r, forward, UserScratchpad());
    plan->conv = dnnl::convolution_backward_weights(pd);
    plan->weights_inner = pd.diff_weights_desc();
    plan->src = pd.src_desc();
    plan->dst = pd.diff_dst_desc();
    plan->scratchpad = pd.scratchpad_desc();
  }
  plan->reorder = plan->weights_inner != plan->weights_plain;
  if (plan->reorder) {
    // Forward and backward data read the kernel in the inner layout; backward weights writes
    // the gradient in it and hands it back as HWIO.
    plan->weights_reorder = kind == Kind::kBackwardWeights
        ? dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), plan->weights_inner, Engine(),
                                                      plan->weights_plain))
        : dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), plan->weights_plain, Engine(),
                                                      plan->weights_inner));
  }
  return plan;
}

std::mutex plans_mutex;
std::map<Key, std::unique_ptr<Plan>> plans;

// Plans are made once per (shape, direction, thread count) and never freed: a model has a
// handful of shapes, and a process one or two thread counts.
const Plan& GetPlan(const Shape& s, Kind kind) {
  Key key = MakeKey(s, kind, omp_get_max_threads());
  std::lock_guard<std::mutex> lock(plans_mutex);
  auto found = plans.find(key);
  if (found != plans.end()) return *found->second;
  auto inserted = plans.emplace(key, MakePlan(s, kind));
  return *inserted.first->second;
}

// Per-thread buffers for the scratchpad and the reordered kernel (grown, never shrunk).
struct ThreadBuffers {
  std::vector<uint8_t> scratchpad, weights;
};

uint8_t* Grow(std::vector<uint8_t>& buffer, size_t bytes) {
  if (buffer.size() < bytes) buffer.resize(bytes);
  return buffer.data();
}

void Run(const Plan& plan, Kind kind, void* in_a, void* in_b, void* out) {
  thread_local ThreadBuffers buffers;
  dnnl::stream stream(Engine());
  memory scratchpad(plan.scratchpad, Engine(),
                    Grow(buffers.scratchpad, plan.scratchpad.get_size() + 64));
  // Weights: an input (forward: in_b, backward data: in_b) or the output (backward weights).
  void* plain = kind == Kind::kBackwardWeights ? out : in_b;
  memory weights_plain(plan.weights_plain, Engine(), plain);
  memory weights = weights_plain;
  if (plan.reorder) {
    weights = memory(plan.weights_inner, Engine(),
                     Grow(buffers.weights, plan.weights_inner.get_size()));
  }
  if (plan.reorder && kind != Kind::kBackwardWeights) {
    plan.weights_reorder.execute(stream, weights_plain, weights);
  }
  if (kind == Kind::kForward) {
    memory x(plan.src, Engine(), in_a), y(plan.dst, Engine(), out);
    plan.conv.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, weights},
                               {DNNL_ARG_DST, y}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  } else if (kind == Kind::kBackwardData) {
    memory dy(plan.src, Engine(), in_a), dx(plan.dst, Engine(), out);
    plan.conv.execute(stream, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, weights},
                               {DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  } else {
    memory x(plan.src, Engine(), in_a), dy(plan.dst, Engine(), in_b);
    plan.conv.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy},
                               {DNNL_ARG_DIFF_WEIGHTS, weights},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
    if (plan.reorder) {
      plan.weights_reorder.execute(stream, weights, weights_plain);
    }
  }
  stream.wait();
}

ffi::Error Check(bool ok, const std::string& message) {
  return ok ? ffi::Error::Success() : ffi::Error(ffi::ErrorCode::kInvalidArgument, message);
}

// Shape from NHWC activations x, y and an HWIO kernel w; checks they agree.
ffi::Error ShapeOf(ffi::AnyBuffer::Dimensions x, ffi::AnyBuffer::Dimensions w,
                   ffi::AnyBuffer::Dimensions y, ffi::DataType type,
                   int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_bottom,
                   int64_t pad_left, int64_t pad_right, Shape* s) {
  if (x.size() != 4 || w.size() != 4 || y.size() != 4) {
    return Check(false, "videmo oneDNN convolution: operands must have rank 4 (NHWC, HWIO)");
  }
  if (type != ffi::DataType::F32 && type != ffi::DataType::BF16) {
    return Check(false, "videmo oneDNN convolution: dtype must be float32 or bfloat16");
  }
  *s = Shape{x[0], x[1], x[2], x[3], w[0], w[1], w[3], y[1], y[2],
             stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
             type == ffi::DataType::F32 ? memory::data_type::f32 : memory::data_type::bf16};
  bool agree = w[2] == s->ci && y[0] == s->n && y[3] == s->co &&
               s->oh == (s->h + pad_top + pad_bottom - s->kh) / stride_h + 1 &&
               s->ow == (s->w + pad_left + pad_right - s->kw) / stride_w + 1;
  return Check(agree, "videmo oneDNN convolution: operand shapes do not agree");
}

template <typename F>
ffi::Error Guarded(F&& body) {
  try {
    return body();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
}

ffi::Error Forward(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y,
                   int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_bottom,
                   int64_t pad_left, int64_t pad_right) {
  return Guarded([&]() -> ffi::Error {
    Shape s;
    ffi::Error err = ShapeOf(x.dimensions(), w.dimensions(), y->dimensions(), x.element_type(),
                             stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, &s);
    if (err.failure()) return err;
    Run(GetPlan(s, Kind::kForward), Kind::kForward, x.untyped_data(), w.untyped_data(),
        y->untyped_data());
    return ffi::Error::Success();
  });
}

ffi::Error BackwardData(ffi::AnyBuffer dy, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> dx,
                        int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_bottom,
                        int64_t pad_left, int64_t pad_right) {
  return Guarded([&]() -> ffi::Error {
    Shape s;
    ffi::Error err = ShapeOf(dx->dimensions(), w.dimensions(), dy.dimensions(), dy.element_type(),
                             stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, &s);
    if (err.failure()) return err;
    Run(GetPlan(s, Kind::kBackwardData), Kind::kBackwardData, dy.untyped_data(),
        w.untyped_data(), dx->untyped_data());
    return ffi::Error::Success();
  });
}

ffi::Error BackwardWeights(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::Result<ffi::AnyBuffer> dw,
                           int64_t stride_h, int64_t stride_w, int64_t pad_top,
                           int64_t pad_bottom, int64_t pad_left, int64_t pad_right) {
  return Guarded([&]() -> ffi::Error {
    Shape s;
    ffi::Error err = ShapeOf(x.dimensions(), dw->dimensions(), dy.dimensions(), x.element_type(),
                             stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, &s);
    if (err.failure()) return err;
    Run(GetPlan(s, Kind::kBackwardWeights), Kind::kBackwardWeights, x.untyped_data(),
        dy.untyped_data(), dw->untyped_data());
    return ffi::Error::Success();
  });
}

}  // namespace

#define VIDEMO_CONV_ATTRS                                                                 \
  .Attr<int64_t>("stride_h").Attr<int64_t>("stride_w").Attr<int64_t>("pad_top")           \
      .Attr<int64_t>("pad_bottom").Attr<int64_t>("pad_left").Attr<int64_t>("pad_right")

XLA_FFI_DEFINE_HANDLER_SYMBOL(VidemoConvForward, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() VIDEMO_CONV_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(VidemoConvBackwardData, BackwardData,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() VIDEMO_CONV_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(VidemoConvBackwardWeights, BackwardWeights,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() VIDEMO_CONV_ATTRS);

// Whether oneDNN can make the primitive for one convolution: 1 if it can, else 0 with oneDNN's
// reason in `message`. dims: n, h, w, ci, kh, kw, co, oh, ow, stride_h, stride_w, pad_top,
// pad_bottom, pad_left, pad_right; bf16: 0 for float32, 1 for bfloat16; kind: 0 forward,
// 1 backward data, 2 backward weights.
extern "C" int VidemoConvSupported(const int64_t* dims, int bf16, int kind, char* message,
                                   int message_size) {
  Shape s{dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8],
          dims[9], dims[10], dims[11], dims[12], dims[13], dims[14],
          bf16 ? memory::data_type::bf16 : memory::data_type::f32};
  std::string reason;
  try {
    GetPlan(s, static_cast<Kind>(kind));
    return 1;
  } catch (const dnnl::error& e) {
    reason = e.what();
  } catch (const std::exception& e) {
    reason = e.what();
  }
  if (message != nullptr && message_size > 0) {
    std::snprintf(message, static_cast<size_t>(message_size), "%s", reason.c_str());
  }
  return 0;
}

// How many plans (primitives) the cache holds: tests check that a new thread count makes new ones.
extern "C" int64_t VidemoPlanCount() {
  std::lock_guard<std::mutex> lock(plans_mutex);
  return static_cast<int64_t>(plans.size());
}

// The instruction set oneDNN dispatches to here (a dnnl_cpu_isa_t: the CPU's, or less where
// ONEDNN_MAX_CPU_ISA caps it).
extern "C" int VidemoEffectiveCpuIsa() { return static_cast<int>(dnnl_get_effective_cpu_isa()); }

// The oneDNN version the library was built against and runs with, for `videmo bench`.
extern "C" const char* VidemoOnednnVersion() {
  static std::string text = [] {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch);
  }();
  return text.c_str();
}
