// Engine semantics on the tiny fixtures: loglikelihood vs logits, prefix
// reuse vs separate scoring, KV-cache decode vs prefill, rolling windows,
// generation stops, errors.

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <thread>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/engine.h"
#include "model/engine/transformer.h"
#include "tests/model/engine_test_util.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

std::unique_ptr<Engine> load(const char* name, EngineOptions o = {.threads = 2}) {
  return Engine::load(test::source_dir() / "tests/fixtures/models" / name, o);
}

/// Sum of log-softmax of whole[k] at row k-1, k in [from, whole.size()), from logits().
double logprob_from_logits(const Engine& e, const std::vector<int>& whole, size_t from,
                           bool* greedy) {
  const int V = e.config().vocab_size;
  const std::vector<float> lg = e.logits(std::vector<int>(whole.begin(), whole.end() - 1));
  double sum = 0;
  *greedy = true;
  for (size_t k = from; k < whole.size(); ++k) {
    const float* r = &lg[(k - 1) * V];
    double mx = r[0];
    int best = 0;
    for (int i = 1; i < V; ++i)
      if (r[i] > r[best]) best = i;
    mx = r[best];
    double z = 0;
    for (int i = 0; i < V; ++i) z += std::exp(r[i] - mx);
    sum += r[whole[k]] - mx - std::log(z);
    *greedy = *greedy && best == whole[k];
  }
  return sum;
}

std::vector<int> seq(int n, int start) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = 3 + (start + 37 * i) % 120;
  return v;
}

TEST(EngineApi, LoglikelihoodEqualsLogSoftmaxOfLogits) {
  for (const char* name : {"llama2", "gemma", "qwen2"}) {
    auto e = load(name);
    const std::vector<int> ctx = seq(9, 1), cont = seq(4, 50);
    std::vector<int> whole = ctx;
    whole.insert(whole.end(), cont.begin(), cont.end());
    bool greedy = false;
    const double want = logprob_from_logits(*e, whole, ctx.size(), &greedy);
    const LoglikelihoodResult got = e->loglikelihood(ctx, cont);
    EXPECT_NEAR(got.logprob, want, 1e-4) << name;
    EXPECT_LT(got.logprob, 0);
    EXPECT_EQ(got.is_greedy, greedy);
  }
}

TEST(EngineApi, IsGreedyForTheGreedyContinuationOnly) {
  auto e = load("llama3");
  const std::vector<int> ctx = seq(6, 3);
  const std::vector<int> g = e->generate(ctx, {.max_tokens = 5});
  EXPECT_TRUE(e->loglikelihood(ctx, g).is_greedy);
  std::vector<int> other = g;
  other[3] = other[3] == 10 ? 11 : 10;
  EXPECT_FALSE(e->loglikelihood(ctx, other).is_greedy);
  EXPECT_LT(e->loglikelihood(ctx, other).logprob, e->loglikelihood(ctx, g).logprob);
}

TEST(EngineApi, PrefixReuseEqualsSeparateScoring) {
  for (const char* name : {"llama3", "gemma", "mistral"}) {
    for (int budget : {4096, 16}) {  // 16: forces several forward passes per phase
      auto e = load(name, {.threads = 2, .max_batch_tokens = budget});
      std::vector<LoglikelihoodRequest> reqs;
      for (int c = 0; c < 3; ++c)
        for (int k = 0; k < 4; ++k) reqs.push_back({seq(5 + 3 * c, c), seq(1 + k * 2, 10 * k + c)});
      reqs.push_back(reqs[5]);  // duplicate request
      const auto shared = e->loglikelihood_batch(reqs, true);
      const auto separate = e->loglikelihood_batch(reqs, false);
      ASSERT_EQ(shared.size(), reqs.size());
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_NEAR(shared[i].logprob, separate[i].logprob, 1e-5) << name << " request " << i;
        EXPECT_EQ(shared[i].is_greedy, separate[i].is_greedy);
        const auto one = e->loglikelihood(reqs[i].context, reqs[i].continuation);
        EXPECT_NEAR(one.logprob, separate[i].logprob, 1e-5);
      }
    }
  }
}

TEST(EngineApi, KvCacheDecodeEqualsPrefill) {
  for (const char* name : {"llama2", "llama3", "gemma", "qwen2"}) {
    auto e = load(name);
    const Transformer& m = e->model();
    const int V = m.config().vocab_size;
    const std::vector<int> ids = seq(11, 7);
    const std::vector<float> full = e->logits(ids);
    KvCache cache = m.new_cache();
    std::vector<float> lg(size_t(V) * 4);
    // Prefill 4 tokens, then one at a time.
    std::vector<Segment> segs{{&cache, 0, 4}};
    m.forward(ids.data(), 4, segs, {0, 1, 2, 3}, lg.data());
    float worst = test::max_abs_diff(lg.data(), full.data(), size_t(V) * 4);
    for (int t = 4; t < 11; ++t) {
      std::vector<Segment> one{{&cache, 0, 1}};
      m.forward(&ids[t], 1, one, {0}, lg.data());
      worst = std::max(worst, test::max_abs_diff(lg.data(), &full[size_t(t) * V], V));
    }
    EXPECT_LE(worst, 1e-5f) << name;
  }
}

TEST(EngineApi, TruncatesLikeLmEval) {
  auto e = load("llama2", {.threads = 2, .max_length = 8});
  const std::vector<int> ctx = seq(20, 2), cont = seq(3, 9);
  // whole = 23 tokens; the last max_length + 1 = 9 are kept: 6 of context.
  const std::vector<int> kept(ctx.end() - 6, ctx.end());
  auto e_long = load("llama2");
  EXPECT_NEAR(e->loglikelihood(ctx, cont).logprob, e_long->loglikelihood(kept, cont).logprob, 1e-5);
  EXPECT_THROW(e->loglikelihood(ctx, seq(9, 1)),
               std::invalid_argument);  // continuation > max_length
}

TEST(EngineApi, RollingSumsTheDisjointWindows) {
  auto e = load("llama2");
  const std::vector<int> ids = seq(23, 4);
  // One window covering everything = log p(ids | BOS).
  const RollingResult all = e->loglikelihood_rolling(ids, 64);
  EXPECT_EQ(all.n_windows, 1);
  EXPECT_EQ(all.n_tokens, 23);
  EXPECT_NEAR(all.logprob, e->loglikelihood({1}, ids).logprob, 1e-5);
  // Windows of 10: [BOS + 0..8] -> 0..9, [9..18] -> 10..19, [12..21] -> 20..22 (context 12..19).
  const RollingResult r = e->loglikelihood_rolling(ids, 10);
  EXPECT_EQ(r.n_windows, 3);
  const std::vector<int> a(ids.begin(), ids.begin() + 10), b(ids.begin() + 10, ids.begin() + 20),
      c(ids.begin() + 20, ids.end());
  const double want =
      e->loglikelihood({1}, a).logprob +
      e->loglikelihood(std::vector<int>(ids.begin() + 9, ids.begin() + 10), b).logprob +
      e->loglikelihood(std::vector<int>(ids.begin() + 12, ids.begin() + 20), c).logprob;
  EXPECT_NEAR(r.logprob, want, 1e-4);
}

TEST(EngineApi, GenerateStopsAndSamplesReproducibly) {
  auto e = load("qwen2");
  const std::vector<int> prompt = seq(5, 1);
  const std::vector<int> g = e->generate(prompt, {.max_tokens = 8});
  ASSERT_EQ(g.size(), 8u);
  // Stop id: generation ends before it.
  const std::vector<int> s = e->generate(prompt, {.max_tokens = 8, .stop_ids = {g[3]}});
  const auto first = std::find(g.begin(), g.end(), g[3]) - g.begin();
  EXPECT_EQ(s, std::vector<int>(g.begin(), g.begin() + first));
  // Callback: stop after 2 tokens.
  const std::vector<int> c = e->generate(
      prompt, {.max_tokens = 8, .stop = [](const std::vector<int>& o) { return o.size() == 2; }});
  EXPECT_EQ(c, std::vector<int>(g.begin(), g.begin() + 2));
  GenerateOptions samp{.max_tokens = 12, .temperature = 1.5f, .top_p = 0.9f, .seed = 7};
  const auto s1 = e->generate(prompt, samp), s2 = e->generate(prompt, samp);
  EXPECT_EQ(s1, s2);
  samp.seed = 8;
  EXPECT_NE(e->generate(prompt, samp), s1);
}

TEST(EngineApi, RunsInTheCallersArena) {
  tbb::task_arena arena(1);
  auto e1 = load("gemma", {.arena = &arena});
  auto e2 = load("gemma");
  const std::vector<int> ids = seq(12, 5);
  EXPECT_LE(test::max_abs_diff(e1->logits(ids).data(), e2->logits(ids).data(), 12 * 128), 1e-5f);
}

TEST(EngineApi, ConcurrentCallsAgree) {
  auto e = load("llama3");
  const std::vector<int> ids = seq(12, 9);
  const std::vector<float> want = e->logits(ids);
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { got[t] = e->logits(ids); });
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

TEST(EngineApi, BadRequestsAreErrors) {
  auto e = load("llama2");
  EXPECT_THROW(e->logits({1, 128}), std::invalid_argument);
  EXPECT_THROW(e->loglikelihood({}, {3}), std::invalid_argument);
  EXPECT_THROW(e->loglikelihood({3}, {}), std::invalid_argument);
  EXPECT_THROW(e->loglikelihood({3}, {-1}), std::invalid_argument);
  EXPECT_THROW(e->generate({}, {}), std::invalid_argument);
  try {
    Engine::load(test::source_dir() / "tests/fixtures/models/does-not-exist");
    FAIL();
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find("does-not-exist"), std::string::npos);
  }
}

/// A Linear that wraps the dense one and counts calls: the plug-in point quant/ uses.
class CountingLinear final : public Linear {
 public:
  CountingLinear(std::unique_ptr<Linear> inner, int* calls)
      : inner_(std::move(inner)), calls_(calls) {}
  void forward(const float* x, float* y, int n) const override {
    ++*calls_;
    inner_->forward(x, y, n);
  }
  int in_features() const override { return inner_->in_features(); }
  int out_features() const override { return inner_->out_features(); }
  size_t weight_bytes() const override { return inner_->weight_bytes(); }

 private:
  std::unique_ptr<Linear> inner_;
  int* calls_;
};

TEST(EngineApi, LinearLoaderPlugsInOtherKernels) {
  int calls = 0;
  std::vector<std::string> names;
  EngineOptions o{.threads = 1};
  o.linear_loader = [&](const Checkpoint& ck, const std::string& name, int out, int in, bool bias) {
    names.push_back(name);
    return std::make_unique<CountingLinear>(load_dense_linear(ck, name, out, in, bias), &calls);
  };
  auto e = load("qwen2", o);
  EXPECT_EQ(names.size(), 2u * 7 + 1);  // 7 per layer + lm_head (untied)
  EXPECT_EQ(names.front(), "model.layers.0.self_attn.q_proj");
  auto plain = load("qwen2");
  const std::vector<int> ids = seq(6, 2);
  EXPECT_EQ(e->logits(ids), plain->logits(ids));
  EXPECT_EQ(calls, 2 * 7 + 1);  // one batched call per layer projection
}

TEST(EngineApi, TruncatedCheckpointIsAnErrorNamingFileAndTensor) {
  qsweep::testing::TempDir dir;
  const auto src = test::source_dir() / "tests/fixtures/models/gemma";
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(src / f, dir / f);
  std::filesystem::resize_file(dir / "model.safetensors",
                               std::filesystem::file_size(dir / "model.safetensors") / 2);
  try {
    Engine::load(dir.path());
    FAIL() << "loaded a truncated checkpoint";
  } catch (const std::runtime_error& ex) {
    const std::string msg = ex.what();
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor 'model."), std::string::npos) << msg;
    EXPECT_NE(msg.find("outside the data area"), std::string::npos) << msg;
  }
  // Unsupported architecture in a real folder: the documented message.
  std::string cfg = qsweep::testing::read_file(dir / "config.json");
  cfg.replace(cfg.find("GemmaForCausalLM"), 16, "Gemma3ForCausalLM");
  qsweep::testing::write_file(dir / "config.json", cfg);
  try {
    Engine::load(dir.path());
    FAIL();
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find("unsupported architecture 'Gemma3ForCausalLM'"),
              std::string::npos)
        << ex.what();
  }
}

}  // namespace
}  // namespace qsweep::model
