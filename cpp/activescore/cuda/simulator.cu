// CUDA driver: the CPU driver's maths (same pair evaluators, integrate_particle, Philox stream, blow-up rule) with
// the state resident on the GPU. Kernel design in kernels.cuh; this file is the host side:
//
// * Steps are queued on one stream with no host synchronisation between them. Each step is the CUB sort, the
//   gather and the fused step kernel; the global step lives in device memory (Control), so a run of 2^k steps is
//   captured once as a CUDA graph and replayed (graphs of 1, 2, 4, ..., 64 steps cover any count). Setting the
//   environment variable ACTIVESCORE_CUDA_GRAPHS=0 launches the same kernels directly instead.
// * A blow-up is recorded on the device as (first failing step, smallest original index); every kernel of a later
//   step returns at once, so the failing step's input survives in the sorted buffers. The host looks at the flag
//   once per chunk of steps (double-buffered: it waits on the previous chunk while the next one runs), so a blow-up
//   early in a long call wastes at most two chunks; advance() then reports the same error text as the CPU driver.
#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cell_list.hpp"
#include "../dispatch.hpp"
#include "../simulator.hpp"
#include "device.cuh"
#include "kernels.cuh"

namespace activescore {
namespace cuda {
namespace {

__global__ void advance_counter_kernel(Control* control, unsigned long long steps) { control->step += steps; }

constexpr int kGraphLevels = 7;                             // graphs of 1, 2, 4, ..., 64 steps
constexpr int64_t kMaxGraphSteps = int64_t(1) << (kGraphLevels - 1);
constexpr int64_t kMaxChunkSteps = 8192;                     // steps between looks at the blow-up flag

bool graphs_enabled() {
  const char* value = std::getenv("ACTIVESCORE_CUDA_GRAPHS");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

int current_device() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

// Host words the device copies its control block into: pinned, so the copies are asynchronous.
struct PinnedControl {
  Control control;
  unsigned long long poll[2];
};

struct PinnedDeleter {
  void operator()(PinnedControl* p) const { cudaFreeHost(p); }
};

std::unique_ptr<PinnedControl, PinnedDeleter> make_pinned_control() {
  void* p = nullptr;
  check(cudaMallocHost(&p, sizeof(PinnedControl)), "cudaMallocHost");
  return std::unique_ptr<PinnedControl, PinnedDeleter>(static_cast<PinnedControl*>(p));
}

template <class Real, class Pair, class Propulsion>
class CudaSimulator final : public Simulator {
  static constexpr int C = Propulsion::kComponents;
  using Set = Particles<Real, C>;

 public:
  CudaSimulator(const SystemSpec& system, const RunSpec& run, const Pair& pair, const Propulsion& propulsion,
                const double* x, const double* q, const double* radius, std::size_t n)
      : device_(current_device()), box_(Box<Real>::make(system.box_length)), interacting_(system.k != 0.0),
        use_graphs_(graphs_enabled()) {
    if (n > static_cast<std::size_t>(INT_MAX))
      throw std::invalid_argument("the CUDA backend takes at most 2^31-1 particles");
    n_ = n;
    step_ = run.step;
    double_precision_ = sizeof(Real) == sizeof(double);
    // As CpuSimulator: cell width and blow-up threshold from the largest interaction range, in the run's precision.
    min_width_ = Real(max_cutoff(system, radius, n));
    const StepParams<Real> params = StepParams<Real>::make(system, run, min_width_);
    grid_ = CellGrid<Real>::make(box_, min_width_);
    const int side = grid_.side;
    const int64_t per_chunk = (int64_t(1) << 23) / int64_t(std::max<std::size_t>(n, 1));
    chunk_steps_ = std::clamp<int64_t>(per_chunk / kMaxGraphSteps * kMaxGraphSteps, kMaxGraphSteps, kMaxChunkSteps);

    DeviceGuard guard(device_);
    cur_pos_ = DeviceArray<Vec2<Real>>(n);
    next_pos_ = DeviceArray<Vec2<Real>>(n);
    cur_q_ = DeviceArray<Real>(C * n);
    next_q_ = DeviceArray<Real>(C * n);
    cur_tag_ = DeviceArray<unsigned>(n);
    next_tag_ = DeviceArray<unsigned>(n);
    cur_radius_ = DeviceArray<Real>(n);
    next_radius_ = DeviceArray<Real>(n);
    control_ = DeviceArray<Control>(1);
    cells_ = std::make_unique<DeviceCellList>(n, side, interacting_);
    pinned_ = make_pinned_control();
    stream_ = std::make_unique<Stream>();

    args_ = StepArgs<Real, Pair, Propulsion>{cur(),
                                             next(),
                                             cells_->sorted_key(),
                                             cells_->cell_range(),
                                             cells_->key_by_tag(),
                                             cells_->slot_by_tag(),
                                             grid_,
                                             pair,
                                             propulsion,
                                             params,
                                             control_.get(),
                                             static_cast<unsigned>(n),
                                             interacting_};

    // The state starts in `next`, in original order, as if a step had just written it.
    std::vector<Vec2<Real>> host_pos(n);
    std::vector<Real> host_q(C * n), host_radius(n);
    std::vector<unsigned> host_tag(n);
    for (std::size_t i = 0; i < n; ++i) {
      host_pos[i] = Vec2<Real>{Real(x[2 * i]), Real(x[2 * i + 1])};
      host_radius[i] = Real(radius[i]);
      host_tag[i] = static_cast<unsigned>(i);
    }
    for (std::size_t a = 0; a < C * n; ++a) host_q[a] = Real(q[a]);
    upload(next_pos_.get(), host_pos.data(), n);
    upload(next_q_.get(), host_q.data(), C * n);
    upload(next_radius_.get(), host_radius.data(), n);
    upload(next_tag_.get(), host_tag.data(), n);
    reset_control(static_cast<unsigned long long>(step_));
    stream_->synchronize("CUDA simulator set-up");
  }

  ~CudaSimulator() override {
    if (stream_) cudaStreamSynchronize(stream_->get());  // no kernel may still use the buffers freed below
  }

  int64_t advance(int64_t n_steps) override {
    if (n_steps <= 0) return 0;
    if (n_ == 0) {
      step_ += n_steps;
      return n_steps;
    }
    DeviceGuard guard(device_);
    cudaStream_t s = stream_->get();
    const int64_t start = step_;
    int64_t queued = 0;
    for (int chunk = 0; queued < n_steps; ++chunk) {
      const int64_t count = std::min(n_steps - queued, chunk_steps_);
      enqueue(count);
      queued += count;
      // Look at the flag of the previous chunk while this one runs.
      const char* bad_step = reinterpret_cast<const char*>(control_.get()) + offsetof(Control, bad_step);
      check(cudaMemcpyAsync(&pinned_->poll[chunk & 1], bad_step, sizeof(unsigned long long), cudaMemcpyDeviceToHost, s),
            "cudaMemcpyAsync (blow-up flag)");
      check(cudaEventRecord(poll_[chunk & 1].get(), s), "cudaEventRecord");
      if (chunk > 0) {
        check(cudaEventSynchronize(poll_[(chunk - 1) & 1].get()), "cudaEventSynchronize");
        if (pinned_->poll[(chunk - 1) & 1] != kNoFailure) break;
      }
    }
    check(cudaMemcpyAsync(&pinned_->control, control_.get(), sizeof(Control), cudaMemcpyDeviceToHost, s),
          "cudaMemcpyAsync (control)");
    stream_->synchronize("CUDA simulator steps");
    const Control control = pinned_->control;
    if (control.bad_step == kNoFailure) {
      step_ = start + n_steps;
      return n_steps;
    }
    return recover(control, start);
  }

  void read_state(void* x, void* q) const override {
    if (n_ == 0) return;
    DeviceGuard guard(device_);
    std::vector<Vec2<Real>> pos(n_);
    std::vector<Real> qs(C * n_);
    std::vector<unsigned> tag(n_);
    download(pos.data(), next_pos_.get(), n_);
    download(qs.data(), next_q_.get(), C * n_);
    download(tag.data(), next_tag_.get(), n_);
    stream_->synchronize("read_state");
    Real* xo = static_cast<Real*>(x);
    Real* qo = static_cast<Real*>(q);
    for (std::size_t s = 0; s < n_; ++s) {
      const std::size_t i = tag[s];
      xo[2 * i] = pos[s].x;
      xo[2 * i + 1] = pos[s].y;
      for (int c = 0; c < C; ++c) qo[C * i + c] = qs[C * s + c];
    }
  }

 private:
  int device_;
  Box<Real> box_;
  bool interacting_;
  bool use_graphs_;
  Real min_width_{};
  CellGrid<Real> grid_{};
  int64_t chunk_steps_ = kMaxGraphSteps;
  StepArgs<Real, Pair, Propulsion> args_{};
  // Particle data: `cur` sorted by cell (the step's input), `next` the step's output in cur's slot order.
  DeviceArray<Vec2<Real>> cur_pos_, next_pos_;
  DeviceArray<Real> cur_q_, next_q_, cur_radius_, next_radius_;
  DeviceArray<unsigned> cur_tag_, next_tag_;
  DeviceArray<Control> control_;
  std::unique_ptr<DeviceCellList> cells_;
  std::unique_ptr<PinnedControl, PinnedDeleter> pinned_;
  Event poll_[2];
  GraphExec graphs_[kGraphLevels];
  std::unique_ptr<Stream> stream_;  // declared last: destroyed (after a synchronize) before the buffers

  Set cur() const { return Set{cur_pos_.get(), cur_q_.get(), cur_tag_.get(), cur_radius_.get()}; }
  Set next() const { return Set{next_pos_.get(), next_q_.get(), next_tag_.get(), next_radius_.get()}; }

  template <class T>
  void upload(T* device, const T* host, std::size_t count) {
    if (count > 0)
      check(cudaMemcpyAsync(device, host, count * sizeof(T), cudaMemcpyHostToDevice, stream_->get()),
            "cudaMemcpyAsync (upload)");
  }
  template <class T>
  void download(T* host, const T* device, std::size_t count) const {
    if (count > 0)
      check(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream_->get()),
            "cudaMemcpyAsync (download)");
  }
  template <class T>
  void copy_on_device(T* to, const T* from, std::size_t count) {
    if (count > 0)
      check(cudaMemcpyAsync(to, from, count * sizeof(T), cudaMemcpyDeviceToDevice, stream_->get()),
            "cudaMemcpyAsync (device to device)");
  }

  // Control = {step, no failure}, and the sort keys of the state in `next`. The caller synchronises before the
  // pinned block is written again.
  void reset_control(unsigned long long step) {
    pinned_->control = Control{step, kNoFailure, ~0u};
    upload(control_.get(), &pinned_->control, 1);
    if (n_ == 0) return;
    scatter_keys_kernel<Real, C><<<blocks_for(n_), kBlockThreads, 0, stream_->get()>>>(
        static_cast<unsigned>(n_), grid_, next(), cells_->key_by_tag(), cells_->slot_by_tag(), false);
    check_launch("scatter_keys_kernel");
  }

  // Queues `count` steps as kernel launches (also what a graph captures).
  void enqueue_steps(int count) {
    cudaStream_t s = stream_->get();
    const unsigned blocks = blocks_for(n_);
    for (int offset = 0; offset < count; ++offset) {
      cells_->sort(s);
      cells_->clear_ranges(s);
      gather_kernel<Real, C><<<blocks, kBlockThreads, 0, s>>>(static_cast<unsigned>(n_), cells_->sorted_key(),
                                                              cells_->sorted_slot(), next(), cur(),
                                                              cells_->cell_range(), interacting_, control_.get());
      step_kernel<Real, Pair, Propulsion><<<blocks, kBlockThreads, 0, s>>>(args_, static_cast<unsigned>(offset));
    }
    advance_counter_kernel<<<1, 1, 0, s>>>(control_.get(), static_cast<unsigned long long>(count));
    check_launch("step kernels");
  }

  // Queues `count` steps: as replays of the captured graphs (binary decomposition), or directly.
  void enqueue(int64_t count) {
    if (!use_graphs_) {
      enqueue_steps(static_cast<int>(count));
      return;
    }
    while (count > 0) {
      int level = 0;
      while (level + 1 < kGraphLevels && (int64_t(1) << (level + 1)) <= count) ++level;
      GraphExec& graph = graphs_[level];
      if (!graph) {
        try {
          graph.capture(stream_->get(), [&] { enqueue_steps(1 << level); });
        } catch (const std::runtime_error& e) {
          // Nothing captured has run: fall back to direct launches for good (same kernels, same results).
          std::fprintf(stderr, "activescore: CUDA graph capture failed (%s); launching kernels directly\n", e.what());
          use_graphs_ = false;
          enqueue_steps(static_cast<int>(count));
          return;
        }
      }
      check(cudaGraphLaunch(graph.get(), stream_->get()), "cudaGraphLaunch");
      count -= int64_t(1) << level;
    }
  }

  // After a blow-up: the error text (as the CPU driver writes it), then the last good state back into `next` and
  // the step counter back to the failing step, so the simulator is as the CPU one would be.
  int64_t recover(const Control& control, int64_t start) {
    const int64_t failed = static_cast<int64_t>(control.bad_step);
    std::vector<unsigned> tags(n_);
    download(tags.data(), cur_tag_.get(), n_);
    stream_->synchronize("blow-up report");
    const auto found = std::find(tags.begin(), tags.end(), control.bad_index);
    if (found == tags.end()) throw std::runtime_error("CUDA simulator: the failing particle was not found");
    const std::size_t slot = static_cast<std::size_t>(found - tags.begin());
    Vec2<Real> before{}, after{};
    download(&before, cur_pos_.get() + slot, 1);
    download(&after, next_pos_.get() + slot, 1);
    stream_->synchronize("blow-up report");
    const double dx = double(after.x) - double(before.x), dy = double(after.y) - double(before.y);
    error_ = blow_up_message(failed, (long long)control.bad_index, dx, dy, 0.5 * double(min_width_), interacting_);

    copy_on_device(next_pos_.get(), cur_pos_.get(), n_);
    copy_on_device(next_q_.get(), cur_q_.get(), C * n_);
    copy_on_device(next_tag_.get(), cur_tag_.get(), n_);
    copy_on_device(next_radius_.get(), cur_radius_.get(), n_);
    reset_control(static_cast<unsigned long long>(failed));
    stream_->synchronize("blow-up recovery");
    step_ = failed;
    return failed - start;
  }
};

}  // namespace
}  // namespace cuda

std::unique_ptr<Simulator> make_cuda_simulator(const SystemSpec& system, const RunSpec& run, bool double_precision,
                                               const double* x, const double* q, const double* radius, std::size_t n) {
  return double_precision ? make_driver<cuda::CudaSimulator, double>(system, run, x, q, radius, n)
                          : make_driver<cuda::CudaSimulator, float>(system, run, x, q, radius, n);
}

}  // namespace activescore
