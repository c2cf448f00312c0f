#include "model/hub/hub_source.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

namespace qsweep::model {

namespace fs = std::filesystem;

const char* repo_type_name(RepoType t) { return t == RepoType::kDataset ? "dataset" : "model"; }

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool env_true(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s = v;
  std::transform(s.begin(), s.end(), s.begin(), ::toupper);
  return s == "1" || s == "ON" || s == "YES" || s == "TRUE";
}

std::string strip_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = s.find_first_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b);
}

bool valid_repo_part(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 96) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string base_name(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Glob on [p, p_end) against [s, s_end); '*' stops at '/', "**" does not.
bool glob_at(const char* p, const char* pe, const char* s, const char* se) {
  while (p < pe) {
    if (*p == '*') {
      bool any = p + 1 < pe && p[1] == '*';
      const char* rest = p + (any ? 2 : 1);
      if (any && rest < pe && *rest == '/') {
        // "**/" also matches zero directories.
        if (glob_at(rest + 1, pe, s, se)) return true;
      }
      for (const char* t = s;; ++t) {
        if (glob_at(rest, pe, t, se)) return true;
        if (t == se || (!any && *t == '/')) return false;
      }
    }
    if (s == se) return false;
    if (*p == '?') {
      if (*s == '/') return false;
    } else if (*p != *s) {
      return false;
    }
    ++p;
    ++s;
  }
  return s == se;
}

}  // namespace

bool parse_source(const std::string& text, HubSource* out, std::string* err) {
  *out = HubSource{};
  const std::string expected =
      "expected hf://ORG/NAME[@REV], hf://datasets/ORG/NAME[@REV], https://URL, file:///ABS/PATH "
      "or "
      "an absolute path";
  if (text.rfind("hf://", 0) == 0) {
    out->kind = HubSource::Kind::kHub;
    std::string rest = text.substr(5);
    if (size_t at = rest.find('@'); at != std::string::npos) {
      out->revision = rest.substr(at + 1);
      rest = rest.substr(0, at);
      if (out->revision.empty() || out->revision.find('\0') != std::string::npos ||
          out->revision.find("..") != std::string::npos || out->revision[0] == '/' ||
          out->revision.find('\\') != std::string::npos) {
        *err = "source '" + text + "': invalid revision after '@'";
        return false;
      }
    }
    if (rest.rfind("datasets/", 0) == 0) {
      out->repo_type = RepoType::kDataset;
      rest = rest.substr(9);
    } else if (rest.rfind("models/", 0) == 0) {
      rest = rest.substr(7);
    }
    size_t slash = rest.find('/');
    std::string org = slash == std::string::npos ? rest : rest.substr(0, slash);
    std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (!valid_repo_part(org) || !valid_repo_part(name)) {
      *err = "source '" + text + "': '" + rest + "' is not a repo id of the form ORG/NAME; " +
             expected;
      return false;
    }
    out->repo_id = org + "/" + name;
    return true;
  }
  if (text.rfind("https://", 0) == 0 || text.rfind("http://", 0) == 0) {
    out->kind = HubSource::Kind::kUrl;
    out->url = text;
    return true;
  }
  std::string path = text;
  if (text.rfind("file://", 0) == 0) path = text.substr(7);
  if (path.empty() || path[0] != '/') {
    *err = "source '" + text + "': a local source must be an absolute path (write " +
           "${experiment.dir}/... for a path beside the experiment); " + expected;
    return false;
  }
  out->kind = HubSource::Kind::kLocal;
  out->local_path = fs::path(path).lexically_normal();
  return true;
}

HubEnv HubEnv::from_environment() {
  HubEnv e;
  e.endpoint = strip_slashes(env_or("HF_ENDPOINT", e.endpoint));
  e.datasets_server = strip_slashes(env_or("HF_DATASETS_SERVER", e.datasets_server));
  std::string home = env_or("HOME", "/tmp");
  std::string xdg = env_or("XDG_CACHE_HOME", home + "/.cache");
  fs::path hf_home = env_or("HF_HOME", xdg + "/huggingface");
  e.hub_cache = env_or("HF_HUB_CACHE", env_or("HUGGINGFACE_HUB_CACHE", (hf_home / "hub").string()));
  e.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  e.token = env_or("HF_TOKEN", env_or("HUGGING_FACE_HUB_TOKEN", ""));
  if (e.token.empty()) {
    std::ifstream f(env_or("HF_TOKEN_PATH", (hf_home / "token").string()));
    std::string line;
    if (f && std::getline(f, line)) e.token = trim(line);
  }
  return e;
}

bool is_commit_sha(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  return true;
}

bool check_repo_path(const std::string& name, std::string* err) {
  auto fail = [&](const std::string& why) {
    std::string shown;
    for (char c : name) shown += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
    *err = "unsafe file name '" + shown + "' in the repo listing: " + why;
    return false;
  };
  if (name.empty()) return fail("empty");
  if (name.size() > 4096) return fail("too long");
  if (name[0] == '/') return fail("absolute path");
  for (unsigned char c : name) {
    if (c == 0) return fail("contains NUL");
    if (c == '\\') return fail("contains a backslash");
    if (c < 0x20 || c == 0x7f) return fail("contains a control character");
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string part =
        name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty()) return fail("empty path component");
    if (part == "." || part == "..")
      return fail("'" + part + "' component (would leave the folder)");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

bool glob_match(const std::string& pattern, const std::string& path) {
  auto full = [](const std::string& p, const std::string& s) {
    return glob_at(p.data(), p.data() + p.size(), s.data(), s.data() + s.size());
  };
  if (full(pattern, path)) return true;
  if (pattern.find('/') == std::string::npos && path.find('/') != std::string::npos)
    return full(pattern, base_name(path));
  return false;
}

std::vector<std::string> select_model_files(const std::vector<std::string>& listing) {
  static const std::set<std::string> k_always = {
      "config.json",         "generation_config.json",
      "tokenizer.json",      "tokenizer_config.json",
      "tokenizer.model",     "special_tokens_map.json",
      "added_tokens.json",   "vocab.json",
      "merges.txt",          "chat_template.json",
      "chat_template.jinja", "model.safetensors.index.json"};
  bool has_safetensors = false;
  for (const auto& f : listing)
    if (f.find('/') == std::string::npos && ends_with(f, ".safetensors")) has_safetensors = true;
  std::vector<std::string> r;
  for (const auto& f : listing) {
    if (f.find('/') != std::string::npos)
      continue;  // sub-folders hold other formats (original/, onnx/)
    if (k_always.count(f) || ends_with(f, ".safetensors")) {
      r.push_back(f);
    } else if (!has_safetensors && f.rfind("pytorch_model", 0) == 0 &&
               (ends_with(f, ".bin") || f == "pytorch_model.bin.index.json")) {
      r.push_back(f);
    }
  }
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> select_dataset_files(const std::vector<std::string>& listing) {
  static const char* k_ext[] = {".jsonl", ".json",     ".csv",     ".parquet",
                                ".txt",   ".jsonl.gz", ".json.gz", ".csv.gz"};
  std::vector<std::string> r;
  for (const auto& f : listing)
    for (const char* e : k_ext)
      if (ends_with(f, e)) {
        r.push_back(f);
        break;
      }
  std::sort(r.begin(), r.end());
  return r;
}

bool select_by_patterns(const std::vector<std::string>& listing,
                        const std::vector<std::string>& patterns, std::vector<std::string>* out,
                        std::string* err) {
  std::set<std::string> picked;
  for (const auto& pat : patterns) {
    bool any = false;
    for (const auto& f : listing)
      if (glob_match(pat, f)) {
        picked.insert(f);
        any = true;
      }
    if (!any) {
      *err = "files: '" + pat + "' matches no file of the source";
      return false;
    }
  }
  out->assign(picked.begin(), picked.end());
  return true;
}

}  // namespace qsweep::model
