#include "quant/gptq_solver.h"

#include "quant/hessian.h"

namespace qsweep::quant {

namespace {

class CpuHessian : public HessianSink {
 public:
  explicit CpuHessian(int k) : acc_(k) {}
  void add_batch_rows(const float* x, int n_rows, int n_seq) override { acc_.add_batch_rows(x, n_rows, n_seq); }
  Eigen::MatrixXf h() override { return acc_.h(); }
  Eigen::MatrixXf take() override { return acc_.take(); }

 private:
  HessianAccumulator acc_;
};

class CpuSolver : public GptqSolver {
 public:
  std::string device() const override { return "cpu"; }
  std::unique_ptr<HessianSink> hessian(int k, const GptqConfig&) override { return std::make_unique<CpuHessian>(k); }
  bool quantize(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg, QuantizedWeight* out,
                std::string* err) override {
    return gptq_quantize_inplace(w, h, cfg, out, err);
  }
};

}  // namespace

GptqSolver& cpu_gptq_solver() {
  static CpuSolver s;
  return s;
}

}  // namespace qsweep::quant
