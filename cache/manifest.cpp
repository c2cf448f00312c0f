#include "cache/manifest.h"

#include <fmt/format.h>

namespace qsweep::cache {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

constexpr std::string_view k_format = "qsweep-artifact";

bool is_key(const std::string& s) { return Digest128::from_hex(s).has_value(); }

// A manifest file path must stay inside out/: relative, '/'-separated, no
// empty, "." or ".." components.
bool is_safe_relative(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.back() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string::npos) slash = p.size();
    std::string_view part(p.data() + start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = slash + 1;
  }
  return true;
}

// Typed field access that records the first problem in *err.
class Reader {
 public:
  explicit Reader(std::string* err) : err_(err) {}
  bool ok() const { return ok_; }

  const json* member(const json& obj, const char* name, const std::string& where) {
    auto it = obj.find(name);
    if (it == obj.end()) return fail(fmt::format("{}missing field \"{}\"", where, name));
    return &*it;
  }
  void str(const json& obj, const char* name, std::string* out, const std::string& where = "") {
    const json* v = member(obj, name, where);
    if (!v) return;
    if (!v->is_string()) return (void)fail(type_error(where, name, "a string"));
    *out = v->get<std::string>();
  }
  void i64(const json& obj, const char* name, int64_t* out, const std::string& where = "") {
    const json* v = member(obj, name, where);
    if (!v) return;
    if (!v->is_number_integer()) return (void)fail(type_error(where, name, "an integer"));
    *out = v->get<int64_t>();
  }
  void u64(const json& obj, const char* name, uint64_t* out, const std::string& where = "") {
    const json* v = member(obj, name, where);
    if (!v) return;
    if (!v->is_number_unsigned())
      return (void)fail(type_error(where, name, "a non-negative integer"));
    *out = v->get<uint64_t>();
  }
  void num(const json& obj, const char* name, double* out) {
    const json* v = member(obj, name, "");
    if (!v) return;
    if (!v->is_number()) return (void)fail(type_error("", name, "a number"));
    *out = v->get<double>();
  }
  const json* array(const json& obj, const char* name) {
    const json* v = member(obj, name, "");
    if (v && !v->is_array()) return fail(type_error("", name, "an array"));
    return v;
  }
  // Each element of an array must be an object; `where` names it for messages.
  bool element(const json& e, const std::string& where) {
    if (!e.is_object()) return fail(where + "is not an object") != nullptr;
    return true;
  }
  const json* fail(std::string msg) {
    if (ok_ && err_) *err_ = std::move(msg);
    ok_ = false;
    return nullptr;
  }

 private:
  static std::string type_error(const std::string& where, const char* name, const char* want) {
    return fmt::format("{}field \"{}\" must be {}", where, name, want);
  }
  std::string* err_;
  bool ok_ = true;
};

}  // namespace

std::string manifest_to_json(const Manifest& m) {
  ojson j;
  j["format"] = k_format;
  j["version"] = k_manifest_version;
  j["key"] = m.key;
  j["node"] = m.node;
  j["kind"] = m.kind;
  j["stage_version"] = m.stage_version;
  j["experiment"] = m.experiment;
  j["params"] = ojson(m.params);
  ojson inputs = ojson::array();
  for (const auto& in : m.inputs)
    inputs.push_back({{"name", in.name}, {"key", in.key}, {"node", in.node}});
  j["inputs"] = std::move(inputs);
  ojson fields = ojson::array();
  for (const auto& f : m.key_fields) fields.push_back({{"name", f.name}, {"value", f.value}});
  j["key_fields"] = std::move(fields);
  ojson files = ojson::array();
  for (const auto& f : m.files) {
    files.push_back(
        {{"path", f.path}, {"size", f.size}, {"mtime_ns", f.mtime_ns}, {"xxh3", f.xxh3}});
  }
  j["files"] = std::move(files);
  j["outputs"] = ojson(m.outputs);
  j["started_at"] = m.started_at;
  j["finished_at"] = m.finished_at;
  j["seconds"] = m.seconds;
  j["host"] = m.host;
  j["qsweep_version"] = m.qsweep_version;
  // Invalid UTF-8 in a string is replaced rather than thrown (never throws).
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

bool manifest_from_json(std::string_view text, Manifest* out, std::string* err) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    if (err) *err = "manifest is not valid JSON";
    return false;
  }
  if (!j.is_object()) {
    if (err) *err = "manifest is not a JSON object";
    return false;
  }
  Reader r(err);
  std::string format;
  r.str(j, "format", &format);
  if (!r.ok()) return false;
  if (format != k_format) {
    if (err) *err = fmt::format("manifest format is \"{}\", expected \"{}\"", format, k_format);
    return false;
  }
  int64_t version = 0;
  r.i64(j, "version", &version);
  if (!r.ok()) return false;
  if (version != k_manifest_version) {
    if (err) {
      *err = fmt::format(
          "manifest format version {} is not supported by this qsweep (supports {}); run `qsweep "
          "cache verify` or upgrade qsweep",
          version, k_manifest_version);
    }
    return false;
  }
  Manifest m;
  r.str(j, "key", &m.key);
  if (r.ok() && !is_key(m.key))
    r.fail(fmt::format("manifest key \"{}\" is not 32 hex digits", m.key));
  r.str(j, "node", &m.node);
  r.str(j, "kind", &m.kind);
  r.i64(j, "stage_version", &m.stage_version);
  r.str(j, "experiment", &m.experiment);
  if (const json* p = r.member(j, "params", "")) m.params = *p;
  if (const json* a = r.array(j, "inputs")) {
    for (size_t i = 0; i < a->size() && r.ok(); ++i) {
      const json& e = (*a)[i];
      std::string where = fmt::format("inputs[{}]: ", i);
      if (!r.element(e, where)) break;
      ManifestInput in;
      r.str(e, "name", &in.name, where);
      r.str(e, "key", &in.key, where);
      r.str(e, "node", &in.node, where);
      m.inputs.push_back(std::move(in));
    }
  }
  if (const json* a = r.array(j, "key_fields")) {
    for (size_t i = 0; i < a->size() && r.ok(); ++i) {
      const json& e = (*a)[i];
      std::string where = fmt::format("key_fields[{}]: ", i);
      if (!r.element(e, where)) break;
      KeyField f;
      r.str(e, "name", &f.name, where);
      r.str(e, "value", &f.value, where);
      m.key_fields.push_back(std::move(f));
    }
  }
  if (const json* a = r.array(j, "files")) {
    m.files.reserve(a->size());
    for (size_t i = 0; i < a->size() && r.ok(); ++i) {
      const json& e = (*a)[i];
      std::string where = fmt::format("files[{}]: ", i);
      if (!r.element(e, where)) break;
      ManifestFile f;
      r.str(e, "path", &f.path, where);
      r.u64(e, "size", &f.size, where);
      r.i64(e, "mtime_ns", &f.mtime_ns, where);
      r.str(e, "xxh3", &f.xxh3, where);
      if (r.ok() && !is_safe_relative(f.path)) {
        r.fail(fmt::format("{}path \"{}\" is not a relative path inside out/", where, f.path));
      }
      if (r.ok() && !is_key(f.xxh3)) {
        r.fail(fmt::format("{}xxh3 \"{}\" is not 32 hex digits", where, f.xxh3));
      }
      m.files.push_back(std::move(f));
    }
  }
  if (const json* o = r.member(j, "outputs", "")) m.outputs = *o;
  r.str(j, "started_at", &m.started_at);
  r.str(j, "finished_at", &m.finished_at);
  r.num(j, "seconds", &m.seconds);
  r.str(j, "host", &m.host);
  r.str(j, "qsweep_version", &m.qsweep_version);
  if (!r.ok()) return false;
  *out = std::move(m);
  return true;
}

}  // namespace qsweep::cache
