#pragma once
// Golden inputs and values for the quant tests (SPECS.md A7,
// ../shared/docs/quant_golden.json).

#include <Eigen/Dense>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "quant/gptq.h"

namespace qsweep::quant::testing {

/// quant_golden.json parsed, or null when the file is absent (`path` gets the
/// path tried). Python's NaN/Infinity tokens are read as the strings
/// "nan"/"inf"/"-inf"; use as_float().
const nlohmann::json& golden(std::string* path = nullptr);

/// A number, or one of the strings "nan", "inf", "-inf".
float as_float(const nlohmann::json& v);

/// W[i,j] = (((i*37 + j*101 + (i*j)%7) % 251) - 125)/1024, [n, k].
Eigen::MatrixXf golden_w(int n, int k);
/// X[t,j] = ((((t*17 + j*29 + (t*j)%13) % 97) - 48)/64) * (8 if j%37==0 else 1),
/// [t, k]; column `dead` (if >= 0) zeroed.
Eigen::MatrixXf golden_x(int t, int k, int dead);

/// A GptqConfig with these settings (the rest at their defaults).
inline GptqConfig gptq_config(int bits, int group, bool sym, bool act_order, bool static_groups) {
  GptqConfig c;
  c.bits = bits;
  c.group_size = group;
  c.sym = sym;
  c.act_order = act_order;
  c.static_groups = static_groups;
  return c;
}

/// Float bits as 8 lowercase hex digits.
std::string hex32(uint32_t v);
std::string float_hex(float f);

}  // namespace qsweep::quant::testing
